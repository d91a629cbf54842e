"""Runs a submission's code cells in its confined kernel, within budgets.

Reads top to bottom like nbclient's own ``execute``, which it builds on: start
the kernel, install the probe, run each code cell, record what happened. The
differences are the budgets and recovery. A cell that outlives its timeout is
interrupted; a cell that kills or wedges the kernel is recorded, the kernel is
restarted and the notebook re-run without that cell (at most ``limits.restarts``
times, within ``limits.total_time``). Output beyond ``limits.output_kb`` is
dropped with a note. Whatever happens, ``run`` returns a report; it never hangs.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbformat import NotebookNode

from .kernel import Sandbox, SandboxKernelManager
from .protocol import MAX_TEXT

def probe_source() -> str:
    """The probe, preceded by the protocol it shares with the grader, executed into a
    namespace of its own so that neither leaves names in the notebook's."""
    protocol = Path(__file__).with_name("protocol.py").read_text()
    probe = Path(__file__).with_name("probe.py").read_text()
    return (f"_ag_protocol = {{}}\nexec({protocol!r}, _ag_protocol)\n{probe}\n"
            "_register(_ag_protocol, _answerer(_ag_protocol))\n"
            "del _answerer, _register, _ag_protocol\n")


PROBE_SOURCE = probe_source()

SEED_SOURCE = """
import random as _ag_random, numpy as _ag_np
_ag_random.seed(0); _ag_np.random.seed(0)
try:
    import keras as _ag_keras, tensorflow as _ag_tf
    _ag_keras.utils.set_random_seed(0)
    _ag_tf.config.experimental.enable_op_determinism()
    del _ag_keras, _ag_tf
except ImportError:
    pass
del _ag_random, _ag_np
"""

INTERRUPT_GRACE = 10.0  # seconds a cell gets to stop after an interrupt


@dataclass
class CellOutcome:
    index: int  # position of the cell in the notebook
    question: str | None
    status: str  # one of STATUSES
    message: str = ""
    seconds: float = 0.0


@dataclass
class ExecutionReport:
    cells: list[CellOutcome] = field(default_factory=list)
    restarts: int = 0
    seconds: float = 0.0
    output_truncated: bool = False
    fatal: str = ""  # set when no kernel is left to ask questions

    def problems(self, question: str | None = None) -> list[CellOutcome]:
        return [c for c in self.cells if c.status != "ok"
                and (question is None or c.question == question)]

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_outputs(cls, nb, question_of_cell: dict[int, str]) -> ExecutionReport:
        """What a notebook's saved outputs say of its own run (a student's, handing in a
        bundle): the code cells that show an error. Only messages depend on it."""
        cells = []
        for index, cell in enumerate(nb.cells):
            if cell.cell_type == "code":
                error = _error_output(cell)
                cells.append(CellOutcome(index, question_of_cell.get(index),
                                         "ok" if error is None else "error",
                                         "" if error is None else _raised(error)))
        return cls(cells[:MAX_CELLS])

    @classmethod
    def from_json(cls, data) -> ExecutionReport:
        """The record ``to_json`` wrote, read without trusting it (it may come from a
        student's bundle): ValueError if it is not one."""
        if not isinstance(data, dict) or not isinstance(data.get("cells", []), list) \
                or len(data.get("cells", [])) > MAX_CELLS:
            raise ValueError("the execution record is malformed")
        cells = []
        for cell in data.get("cells", []):
            if not isinstance(cell, dict) or not isinstance(cell.get("index"), int) \
                    or cell.get("status") not in STATUSES \
                    or not isinstance(cell.get("question"), (str, type(None))):
                raise ValueError("a cell in the execution record is malformed")
            cells.append(CellOutcome(cell["index"], cell["question"] and cell["question"][:100],
                                     cell["status"], str(cell.get("message", ""))[:MAX_TEXT],
                                     _number(cell.get("seconds"))))
        restarts = data.get("restarts", 0)
        return cls(cells, restarts if isinstance(restarts, int) and restarts >= 0 else 0,
                   _number(data.get("seconds")), data.get("output_truncated") is True,
                   str(data.get("fatal", ""))[:MAX_TEXT])


STATUSES = {"ok", "error", "timeout", "killed-kernel", "broken-channel", "skipped", "out-of-time"}
MAX_CELLS = 10_000


def _error_output(cell):
    return next((o for o in cell.get("outputs", []) if o.get("output_type") == "error"), None)


def _raised(error) -> str:
    return f"raised {str(error.get('ename'))[:100]}: {str(error.get('evalue'))}"[:500]


def _number(value) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) \
        and 0 <= value < 1e9 else 0.0


class CappedClient(NotebookClient):
    """nbclient's client, keeping at most ``max_output_bytes`` of output."""

    def __init__(self, nb, km, max_output_bytes: int, **kw):
        super().__init__(nb, km=km, **kw)
        self.max_output_bytes = max_output_bytes
        self.output_bytes = 0
        self.truncated = False

    def output(self, outs, msg, display_id, cell_index):
        self.output_bytes += len(json.dumps(msg["content"], default=str))
        if self.output_bytes <= self.max_output_bytes:
            return super().output(outs, msg, display_id, cell_index)
        if not self.truncated:
            self.truncated = True
            outs.append(NotebookNode(output_type="stream", name="stderr", text=(
                f"[autograder] output beyond {self.max_output_bytes // 1024} KB dropped\n")))
        return None


class NotebookRunner:
    """Executes one notebook in a sandbox and keeps the kernel for questions."""

    def __init__(self, nb: NotebookNode, sandbox: Sandbox, question_of_cell: dict[int, str],
                 prelude: str = ""):
        self.nb = nb
        self.prelude = prelude  # trusted code run after the probe, before the seeding
        self.sandbox = sandbox
        self.limits = sandbox.limits
        self.question_of_cell = question_of_cell
        self.km: SandboxKernelManager | None = None
        self.client: CappedClient | None = None
        self.report = ExecutionReport()
        self.warm = False  # a kernel was started ahead of run()
        self.setup = ""  # the id of the request that installed the probe

    async def run(self) -> ExecutionReport:
        start = time.monotonic()
        self.deadline = start + self.limits.total_time
        skip: dict[int, CellOutcome] = {}
        while True:
            failure = await self._attempt(skip)
            if failure is None or self.report.restarts >= self.limits.restarts \
                    or time.monotonic() >= self.deadline:
                break
            # A cell that ran past its limit would do so again: the re-run leaves it out
            # too, rather than spend another cell limit on it.
            skip.update({c.index: c for c in self.report.cells if c.status == "timeout"})
            skip[failure.index] = failure
            self.report.restarts += 1
            await self.shutdown()
            self.sandbox.kill_processes()
            self.sandbox.reset()
        self.report.seconds = time.monotonic() - start
        self.report.output_truncated = bool(self.client and self.client.truncated)
        if not self.report.fatal and not await self.alive():
            self.report.fatal = "the notebook's kernel is not running after execution"
        return self.report

    async def warm_up(self) -> None:
        """Start the kernel ahead of its notebook (a clean room, while the student's
        notebook runs) and send it its setup without waiting: the kernel imports
        TensorFlow while the grader goes on. The first attempt of ``run`` uses it."""
        self.warm = await self._start(wait=False)

    async def hand_on(self, setup: str) -> bool:
        """Keep this kernel for another notebook (a clean room handed on to the next): run
        the trusted ``setup`` in it now, and let the next ``run`` go on in this kernel as
        in a warm one. False if the kernel is not running or ``setup`` failed."""
        if not await self.alive() or not await self._run_source(setup):
            return False
        self.warm, self.setup, self.report = True, "", ExecutionReport()
        return True

    async def _attempt(self, skip: dict[int, CellOutcome]) -> CellOutcome | None:
        """Run every cell once; return the cell that killed the kernel, if any."""
        self.report.cells = []
        if self.warm:
            if self.setup:
                await self._reply(self.setup, timeout=120)
            started, self.warm, self.setup = True, False, ""  # a restart starts a fresh one
        else:
            started = await self._start()
        if not started:
            return None
        self.client.nb = self.nb  # a warm kernel was started before its notebook was known
        for index, cell in enumerate(self.nb.cells):
            if cell.cell_type != "code":
                continue
            question = self.question_of_cell.get(index)
            if index in skip:
                earlier = skip[index]
                self.report.cells.append(CellOutcome(
                    index, question, "skipped",
                    f"not run again: on an earlier run it {earlier.message}"))
                continue
            if time.monotonic() >= self.deadline:
                self.report.cells.append(CellOutcome(
                    index, question, "out-of-time",
                    f"not run: the notebook used its {self.limits.total_time:.0f} s budget"))
                continue
            outcome = await self._run_cell(cell, index, question)
            self.report.cells.append(outcome)
            if outcome.status in ("killed-kernel", "timeout", "broken-channel") \
                    and not await self.alive():
                return outcome
        return None

    async def _start(self, wait: bool = True) -> bool:
        """Start the kernel and install the probe (``wait=False``: send the setup and
        keep its message id in ``self.setup``); False (and ``report.fatal``) if not."""
        self.report.fatal = ""
        self.km = SandboxKernelManager(self.sandbox,
                                       max_message_bytes=self.limits.output_kb * 1024 + 2**26)
        self.client = CappedClient(self.nb, self.km,
                                   max_output_bytes=self.limits.output_kb * 1024,
                                   allow_errors=True, interrupt_on_timeout=False,
                                   timeout_func=self._cell_timeout, startup_timeout=120,
                                   iopub_timeout=10, raise_on_iopub_timeout=False)
        try:
            # The kernel's own stdout/stderr (not cell output) go to a log outside
            # the sandbox, capped by the kernel's RLIMIT_FSIZE.
            with open(self.sandbox.root / "kernel.log", "ab") as log:
                await self.km.start_kernel(env=self.sandbox.kernel_env(),
                                           cwd=str(self.sandbox.home), stdout=log, stderr=log)
            self.client.kc = self.km.client()
            self.client.kc.start_channels()
            await self.client.kc.wait_for_ready(timeout=120)
            self.setup = self.client.kc.execute(PROBE_SOURCE + self.prelude + SEED_SOURCE,
                                                silent=True, store_history=False)
            if wait:
                await self._reply(self.setup, timeout=120)
        except Exception as error:
            self.report.fatal = f"the sandboxed kernel did not start: {error}"
            return False
        return True

    async def _run_cell(self, cell, index: int, question: str | None) -> CellOutcome:
        began = time.monotonic()
        outcome = CellOutcome(index, question, "ok")
        try:
            await self.client.async_execute_cell(cell, index)
            error = _error_output(cell)
            if error is not None:
                outcome.status = "error"
                outcome.message = _raised(error)
        except CellTimeoutError:
            outcome.status = "timeout"
            outcome.message = f"ran longer than its {self._cell_timeout(cell):.0f} s limit"
            if not await self._interrupt():
                await self.shutdown()
        except DeadKernelError:
            outcome.status = "killed-kernel"
            outcome.message = ("stopped the kernel (it crashed, was killed, or ran out of "
                               f"memory: the limit is {self.limits.memory_mb} MB)")
        except Exception as error:
            # A malformed message or a wedged socket (a cell that wrote into the kernel's
            # own file descriptors): the channel cannot be trusted any more, so the kernel
            # is handled like one that died: stopped, restarted, run without this cell.
            outcome.status = "broken-channel"
            outcome.message = ("broke the kernel's connection to the grader "
                               f"({type(error).__name__}), for example by writing into the "
                               "kernel's own sockets")
            await self.shutdown()
        outcome.seconds = time.monotonic() - began
        return outcome

    def _cell_timeout(self, cell) -> int:
        remaining = self.deadline - time.monotonic()
        return max(1, int(min(self.limits.cell_timeout, remaining)))

    async def _interrupt(self) -> bool:
        """Interrupt a cell that ran too long; True when the kernel answers again."""
        try:
            await self.km.interrupt_kernel()
            return await self._run_source("pass", timeout=INTERRUPT_GRACE)
        except Exception:
            return False

    async def _run_source(self, source: str, timeout: float = 120) -> bool:
        msg_id = self.client.kc.execute(source, silent=True, store_history=False)
        return await self._reply(msg_id, timeout)

    async def _reply(self, msg_id: str, timeout: float) -> bool:
        """Wait for the reply to an execute request; True when it ran without error."""
        kc = self.client.kc
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                reply = await kc.get_shell_msg(timeout=max(0.1, deadline - time.monotonic()))
            except Exception:
                return False
            if reply["parent_header"].get("msg_id") == msg_id:
                return reply["content"].get("status") == "ok"
        return False

    async def alive(self) -> bool:
        return bool(self.km and self.km.has_kernel and await self.km.is_alive())

    async def shutdown(self) -> None:
        if self.client and self.client.kc:
            self.client.kc.stop_channels()
        if self.km and self.km.has_kernel:
            try:
                await asyncio.wait_for(self.km.shutdown_kernel(now=True), 30)
            except Exception:
                pass
        self.sandbox.kill_processes()
