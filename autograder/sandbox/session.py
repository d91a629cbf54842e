"""A graded notebook's lifetime: sandbox, execution, questions, teardown.

``KernelSession`` is what the trusted side holds. It runs the notebook (via
``NotebookRunner``) and then carries requests to the probe inside the kernel and
raw replies back. It does not interpret replies: ``autograder.grading.oracle``
validates them.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid

from nbformat import NotebookNode

from .execute import ExecutionReport, NotebookRunner
from .isolation import Isolation
from .kernel import Sandbox
from .limits import Limits

REPLY_MIME = "application/vnd.autograder.reply+json"


class KernelUnavailable(RuntimeError):
    """The kernel cannot be asked anything (it never started, died or hangs)."""


class KernelSession:
    def __init__(self, nb: NotebookNode, isolation: Isolation, limits: Limits, *,
                 question_of_cell: dict[int, str], slot: int = 0,
                 readable=(), env: dict[str, str] | None = None):
        self.loop = asyncio.new_event_loop()
        self.sandbox = Sandbox(isolation, limits, slot=slot, readable=readable, env=env)
        self.runner = NotebookRunner(nb, self.sandbox, question_of_cell)
        self.report: ExecutionReport | None = None

    def execute(self) -> ExecutionReport:
        self.report = self.loop.run_until_complete(self.runner.run())
        return self.report

    def ask(self, kind: str, args: dict, timeout: float) -> dict:
        """Send one request to the probe; return its raw (untrusted) reply."""
        if self.report is None:
            raise KernelUnavailable("the notebook has not been run")
        if self.report.fatal:
            raise KernelUnavailable(self.report.fatal)
        if not self.loop.run_until_complete(self.runner.alive()):
            raise KernelUnavailable("the notebook's kernel has died")
        return self.loop.run_until_complete(self._ask(kind, args, timeout))

    async def _ask(self, kind: str, args: dict, timeout: float) -> dict:
        kc = self.runner.client.kc
        request_id = uuid.uuid4().hex
        request = json.dumps({"id": request_id, "kind": kind, "args": args})
        msg_id = kc.execute(f"__ag_probe__.handle({request!r})", silent=False,
                            store_history=False, allow_stdin=False)
        deadline = time.monotonic() + timeout
        reply, done = None, False
        while not done:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                await self._recover()
                raise KernelUnavailable(f"the notebook did not answer within {timeout:.0f} s")
            try:
                msg = await kc.get_iopub_msg(timeout=min(remaining, 1.0))
            except Exception:
                if not await self.runner.alive():
                    raise KernelUnavailable("the notebook's kernel died while answering")
                continue
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            content = msg["content"]
            if msg["msg_type"] == "display_data" and reply is None:
                candidate = content.get("data", {}).get(REPLY_MIME)
                if isinstance(candidate, dict) and candidate.get("id") == request_id:
                    reply = candidate
            elif msg["msg_type"] == "error" and reply is None:
                reply = {"ok": False, "error": f"{content.get('ename')}: {content.get('evalue')}"}
            elif msg["msg_type"] == "status" and content.get("execution_state") == "idle":
                done = True
        if reply is None:
            raise KernelUnavailable("the notebook's kernel gave no answer (was the grader's "
                                    "probe removed or replaced?)")
        return reply

    async def _recover(self) -> None:
        """A request hung: interrupt it so the next request is not stuck behind it."""
        try:
            await self.runner.km.interrupt_kernel()
        except Exception:
            pass

    def put_array_file(self, name: str, data: bytes):
        return self.sandbox.put_file(name, data)

    def close(self) -> None:
        try:
            self.loop.run_until_complete(self.runner.shutdown())
        finally:
            self.sandbox.close()
            self.loop.close()
