"""Start a grading process, wait for it under a wall-clock limit, stop it, collect.

Every backend grades one submission through ``supervise``: the local sandbox (a pytest
process, ``grading/runner.py``), Docker (a ``docker run``, ``container.py``), the
Gradescope try-run (``gradescope.py``) and a Slurm task (``slurm.py``, which runs the
local or the Docker backend on its node). How a process is stopped is the backend's
(``stop``: kill the process group, or ``docker kill`` the container); waiting,
the time limit and what happens when the supervisor itself is told to stop (Ctrl-C,
Slurm's SIGTERM) are here, once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping


@dataclass(frozen=True)
class Exit:
    code: int | None  # the exit status; None: stopped at the time limit
    seconds: float

    @property
    def timed_out(self) -> bool:
        return self.code is None


def supervise(command: list[str], *, timeout: float, log: Path | None = None,
              env: Mapping[str, str] | None = None, own_group: bool = True,
              stop: Callable[[subprocess.Popen], None] | None = None) -> Exit:
    """Run ``command`` (output to ``log``, or dropped) for at most ``timeout`` seconds.

    ``own_group``: the process leads a process group of its own, which the default
    ``stop`` kills whole. If waiting is interrupted by an exception (KeyboardInterrupt,
    a signal handler's), the process is stopped before the exception goes on, so no
    grading outlives its supervisor.
    """
    stop = stop or _kill_group
    started = time.monotonic()
    log_handle = open(log, "w") if log else subprocess.DEVNULL
    try:
        process = subprocess.Popen(command, stdout=log_handle, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=own_group,
                                   env=None if env is None else dict(env))
        try:
            code = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            stop(process)
            process.wait()
            code = None
        except BaseException:
            stop(process)
            process.wait()
            raise
    finally:
        if log:
            log_handle.close()
    return Exit(code, time.monotonic() - started)


def _kill_group(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
