"""A graded notebook's lifetime: sandbox, execution, questions, teardown.

``KernelSession`` is what the trusted side holds. It runs the notebook (via
``NotebookRunner``) and then carries requests to the probe inside the kernel and
raw replies back. It does not interpret replies: ``autograder.grading.oracle``
validates them.
"""

from __future__ import annotations

import asyncio
import time
import uuid

from nbformat import NotebookNode

from .execute import ExecutionReport, NotebookRunner
from .isolation import Isolation
from .kernel import Sandbox
from .limits import Limits

from .protocol import PROBE_TARGET


class KernelUnavailable(RuntimeError):
    """The kernel cannot be asked anything (it never started, died or hangs)."""


class KernelSession:
    def __init__(self, nb: NotebookNode, isolation: Isolation, limits: Limits, *,
                 question_of_cell: dict[int, str],
                 readable=(), env: dict[str, str] | None = None, prelude: str = ""):
        self.loop = asyncio.new_event_loop()
        self.sandbox = Sandbox(isolation, limits, readable=readable, env=env)
        self.runner = NotebookRunner(nb, self.sandbox, question_of_cell, prelude)
        self.report: ExecutionReport | None = None
        # Set once a request went unanswered: a kernel whose channel is silent or broken
        # gets no more requests (each would cost another timeout).
        self.silent = ""

    def warm_up(self) -> None:
        """Start the kernel before its notebook is known; ``execute`` then uses it."""
        self.loop.run_until_complete(self.runner.warm_up())

    def execute(self, nb: NotebookNode | None = None) -> ExecutionReport:
        """Run the notebook (or ``nb``, when files had to be placed in the inbox first)."""
        if nb is not None:
            self.runner.nb = nb
        self.report = self.loop.run_until_complete(self.runner.run())
        return self.report

    def hand_on(self, setup: str) -> bool:
        """Keep the running kernel for another notebook: the trusted ``setup`` runs now,
        then ``execute(nb)`` runs ``nb`` there. False if the kernel cannot be kept."""
        self.report = None
        return not self.silent and self.loop.run_until_complete(self.runner.hand_on(setup))

    def ask(self, kind: str, args: dict, timeout: float) -> dict:
        """Send one request to the probe; return its raw (untrusted) reply."""
        if self.report is None:
            raise KernelUnavailable("the notebook has not been run")
        if self.report.fatal:
            raise KernelUnavailable(self.report.fatal)
        if self.silent:
            raise KernelUnavailable(self.silent)
        if not self.loop.run_until_complete(self.runner.alive()):
            raise KernelUnavailable("the notebook's kernel has died")
        return self.loop.run_until_complete(self._ask(kind, args, timeout))

    async def _ask(self, kind: str, args: dict, timeout: float) -> dict:
        kc = self.runner.client.kc
        request_id = uuid.uuid4().hex
        comm_open = kc.session.msg("comm_open", {
            "comm_id": request_id, "target_name": PROBE_TARGET,
            "data": {"id": request_id, "kind": kind, "args": args}})
        kc.shell_channel.send(comm_open)
        msg_id = comm_open["header"]["msg_id"]
        deadline = time.monotonic() + timeout
        reply = None
        while reply is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                await self._recover()
                self.silent = f"the notebook did not answer a request within {timeout:.0f} s"
                raise KernelUnavailable(self.silent)
            try:
                msg = await kc.get_iopub_msg(timeout=min(remaining, 1.0))
            except Exception:
                if not await self.runner.alive():
                    raise KernelUnavailable("the notebook's kernel died while answering") from None
                continue
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            content = msg["content"]
            if msg["msg_type"] == "comm_msg" and content.get("comm_id") == request_id:
                reply = content.get("data")
            elif msg["msg_type"] == "comm_close" and content.get("comm_id") == request_id:
                raise KernelUnavailable("the notebook's kernel closed the request without an "
                                        "answer (was the grader's probe removed or replaced?)")
            elif msg["msg_type"] == "status" and content.get("execution_state") == "idle":
                self.silent = ("the notebook's kernel gave no answer (was the grader's probe "
                               "removed or replaced?)")
                raise KernelUnavailable(self.silent)
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
