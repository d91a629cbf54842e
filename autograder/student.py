"""The student's side of a bundle: the given last cell of every release notebook runs

    from autograder.student import save_bundle
    save_bundle("week1")

in the student's own kernel, after the whole notebook ran, and writes ``week1.bundle.zip``
next to the notebook. It hands over what the grader's sandbox hands over when the grader
runs the notebook itself: the same probe (``sandbox/probe.py``) answers the same requests
(``grading/export.export``), called directly instead of over a comm, and the same writer
makes the file (``grading/bundle.write_bundle``).

Nothing here is trusted: it runs wherever the student likes, and the grader reads the
bundle as any upload (``grading/bundle.read_bundle``), grading in its clean room.

The bundle names the code it was made from: the digest of the cells this kernel ran,
in order. It matches the notebook's code cells when the notebook ran top to bottom once
("Restart Kernel and Run All Cells"), which ``autograder check`` and the grader verify.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from autograder.grading.bundle import SUFFIX, code_digest, write_bundle
from autograder.grading.cleanroom import definitions
from autograder.grading.export import export
from autograder.sandbox import probe, protocol
from autograder.weeks import CONFIG_NAME, Course, Week


class LocalKernel:
    """The running kernel, seen as ``export`` sees a sandboxed one: requests answered by
    the probe's handlers, models saved into a private temporary outbox."""

    def __init__(self, outbox: Path):
        self.answer = probe._answerer(vars(protocol))
        self.sandbox = self  # export() asks the session's sandbox for the outbox
        self.outbox = outbox

    def ask(self, kind: str, args: dict, timeout: float) -> dict:
        return self.answer({"id": kind, "kind": kind, "args": args})

    def clear_outbox(self) -> None:
        shutil.rmtree(self.outbox, ignore_errors=True)
        self.outbox.mkdir()

    def read_outbox(self, name: str, max_bytes: int) -> bytes:
        data = (self.outbox / name).read_bytes()
        if len(data) > max_bytes:
            raise OSError(f"{name} is {len(data) / 2**20:.0f} MB, over the limit of "
                          f"{max_bytes / 2**20:.0f} MB")
        return data


def ran_code() -> list[str]:
    """The cells this kernel ran since it started, in order (IPython's raw input history:
    the current cell last)."""
    from IPython import get_ipython

    shell = get_ipython()
    if shell is None:
        raise RuntimeError("save_bundle() runs in a notebook's kernel (its last cell)")
    return list(shell.history_manager.input_hist_raw[1:])


def find_week(name: str, folder: Path) -> Week:
    """The week's public settings: week.toml beside the notebook (its release folder,
    wherever the student keeps it), else the course's release/<week>."""
    week = Week.load(folder if (folder / CONFIG_NAME).exists() else Course().release(name))
    if week.name != name:
        raise ValueError(f"the {CONFIG_NAME} beside this notebook is {week.name}'s, not {name}'s")
    return week


def save_bundle(week: str, folder: str | Path = ".") -> None:
    """Write ``<folder>/<week>.bundle.zip`` from this kernel's models, values and figures."""
    folder = Path(folder)
    settings = find_week(week, folder)
    cells = ran_code()
    # Every class the notebook defined may rebuild a model here; the grader's clean room
    # decides again with its own list.
    classes = frozenset().union(*(definitions(cell).classes for cell in cells))
    own = {question: frozenset(room.define) | classes
           for question, room in settings.rooms.items()}
    with tempfile.TemporaryDirectory(prefix="ag-bundle-") as scratch:
        handed_over = export(LocalKernel(Path(scratch) / "models"), settings, own)
    data = write_bundle(settings, handed_over, code=code_digest(cells))
    path = folder / (week + SUFFIX)
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(data)
    partial.replace(path)
    for name, problem in sorted(handed_over.problems.items()):
        print(f"not in the bundle: {name}: {problem}")
    print(f"saved {path} ({len(data) / 2**20:.1f} MB): submit it with the notebook")

