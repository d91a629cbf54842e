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

import contextlib
import html
import shutil
import sys
import tempfile
from pathlib import Path

import nbformat

from autograder.grading.bundle import (SUFFIX, BundleRefused, code_digest, read_bundle,
                                      write_bundle)
from autograder.grading.cleanroom import definitions
from autograder.grading.export import export
from autograder.grading.results import GradingResult
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
        raise RuntimeError("save_bundle() and the checks run in a notebook's kernel")
    return list(shell.history_manager.input_hist_raw[1:])


def find_week(name: str, folder: Path) -> Week:
    """The week's public settings: week.toml beside the notebook (its release folder,
    wherever the student keeps it), else the course's release/<week>."""
    week = Week.load(folder if (folder / CONFIG_NAME).exists() else Course().release(name))
    if week.name != name:
        raise ValueError(f"the {CONFIG_NAME} beside this notebook is {week.name}'s, not {name}'s")
    return week


def bundle_of_this_kernel(settings: Week, cells: list[str]) -> tuple[bytes, dict[str, str]]:
    """This kernel's models, values and figures as a bundle naming ``cells``: (its bytes,
    what could not be handed over and why)."""
    # Every class the notebook defined may rebuild a model here; the grader's clean room
    # decides again with its own list.
    classes = frozenset().union(*(definitions(cell).classes for cell in cells))
    own = {question: frozenset(room.define) | classes
           for question, room in settings.rooms.items()}
    with _current_figure_kept(), tempfile.TemporaryDirectory(prefix="ag-bundle-") as scratch:
        handed_over = export(LocalKernel(Path(scratch) / "models"), settings, own)
    return write_bundle(settings, handed_over, code=code_digest(cells)), handed_over.problems


@contextlib.contextmanager
def _current_figure_kept():
    """Reading the figures makes each current in turn; the notebook's next ``plt.plot``
    must still draw where it would have."""
    pyplot = sys.modules.get("matplotlib.pyplot")  # never imported here for nothing
    current = pyplot.gcf().number if pyplot is not None and pyplot.get_fignums() else None
    try:
        yield
    finally:
        if current is not None and pyplot.fignum_exists(current):
            pyplot.figure(current)


def save_bundle(week: str, folder: str | Path = ".") -> None:
    """Write ``<folder>/<week>.bundle.zip`` from this kernel's models, values and figures."""
    folder = Path(folder)
    data, problems = bundle_of_this_kernel(find_week(week, folder), ran_code())
    path = folder / (week + SUFFIX)
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(data)
    partial.replace(path)
    for name, problem in sorted(problems.items()):
        print(f"not in the bundle: {name}: {problem}")
    print(f"saved {path} ({len(data) / 2**20:.1f} MB): submit it with the notebook")


# -- checks in the notebook ---------------------------------------------------------------
def check(question: str, folder: str | Path = ".") -> "CheckReport":
    """Run ``question``'s public checks against this kernel, as the grader would: its
    models and values go over as a bundle, which the grader's own code reads back and
    rebuilds in a clean room (``autograder check`` with a bundle, for one question)."""
    return _check(folder, [question])


def check_all(folder: str | Path = ".") -> "CheckReport":
    """Every question's public checks against this kernel (see ``check``)."""
    return _check(folder, None)


def _check(folder: str | Path, questions: list[str] | None) -> "CheckReport":
    from autograder.grading.runner import grade_notebook

    folder = Path(folder)
    settings = _week_beside(folder)
    unknown = sorted(set(questions or ()) - set(settings.questions))
    if unknown:
        raise ValueError(f"{settings.name} has no question {unknown[0]!r}; its questions are "
                         f"{', '.join(settings.questions)}")
    cells = ran_code()
    data, problems = bundle_of_this_kernel(settings, cells)
    try:  # a bundle the grader refuses would be graded by running the notebook: not here
        read_bundle(data, settings, code=code_digest(cells))
    except BundleRefused as error:
        return CheckReport(settings, GradingResult(settings.name, []), [
            f"no check ran: the grader cannot take this kernel's models and values ({error})"])
    with tempfile.TemporaryDirectory(prefix="ag-check-") as scratch:
        scratch = Path(scratch)
        # What this kernel ran, as a notebook: the grader aligns it with the release and
        # takes each answer from it, and its code is what the bundle names.
        notebook = scratch / settings.notebook
        nbformat.write(nbformat.v4.new_notebook(
            cells=[nbformat.v4.new_code_cell(cell) for cell in cells]), notebook)
        bundle = scratch / (settings.name + SUFFIX)
        bundle.write_bytes(data)
        result = grade_notebook(settings, notebook, scratch / "results.json",
                                tests=settings.directory / "checks", log=scratch / "check.log",
                                bundle=bundle, questions=questions)
    # What could not be handed over, when checking everything (a question's own checks
    # say so for its models, and the others' are not finished yet).
    notes = [f"not handed over: {name}: {problem}" for name, problem in sorted(problems.items())
             if questions is None]
    if result.extra.get("bundle_not_used"):
        notes.append(f"the grader could not read this kernel's bundle: "
                     f"{result.extra['bundle_not_used']}")
    if len(set(filter(str.strip, cells))) < len([c for c in cells if c.strip()]):
        notes.append("some cells ran more than once: before you submit, restart the kernel "
                     "and run all cells")
    return CheckReport(settings, result, notes)


def _week_beside(folder: Path) -> Week:
    """The release folder a check runs in: week.toml and checks/ beside the notebook."""
    if not (folder / CONFIG_NAME).exists() or not (folder / "checks").is_dir():
        raise FileNotFoundError(f"{folder.resolve()} is not a week's release folder (it has no "
                                f"{CONFIG_NAME} and checks/): open the notebook where it was "
                                "released")
    return Week.load(folder)


class CheckReport:
    """The outcome of ``check``: a table in a notebook (HTML), text in a terminal."""

    def __init__(self, week: Week, result, notes: list[str]):
        self.week, self.result, self.notes = week, result, notes

    @property
    def passed(self) -> bool:
        return bool(self.result.checks) and all(c.status == "passed" for c in self.result.checks)

    def rows(self) -> list[tuple[str, str, str, str]]:
        """(question, check, points, "passed" or what to fix) per check."""
        return [(c.question, c.check, f"{c.score:g}/{c.max_score:g}",
                 "passed" if c.status == "passed" else c.output.strip() or "failed")
                for c in self.result.checks]

    def summary(self) -> str:
        if not self.result.checks:
            return "No public check ran."
        passed = sum(c.status == "passed" for c in self.result.checks)
        return (f"{passed} of {len(self.result.checks)} public checks pass. Hidden checks run "
                "when you submit.")

    def __repr__(self) -> str:
        lines = []
        for question, name, points, outcome in self.rows():
            mark = "PASS" if outcome == "passed" else "FIX "
            lines.append(f"{mark} {question} {name} ({points})")
            if outcome != "passed":
                lines += [f"       {line}" for line in outcome.splitlines()]
        return "\n".join(lines + self.notes + [self.summary()])

    def _repr_html_(self) -> str:
        def cell(text: str) -> str:
            return html.escape(text).replace("\n", "<br>")

        left = 'style="text-align:left"'
        rows = "".join(
            f"<tr><td {left}>{cell(q)}</td><td {left}>{cell(name)}</td><td {left}>{cell(points)}"
            f"</td><td style=\"text-align:left;color:"
            f"{'#1a7f37' if outcome == 'passed' else '#b42318'}\">{cell(outcome)}</td></tr>"
            for q, name, points, outcome in self.rows())
        heads = "".join(f"<th {left}>{head}</th>" for head in
                        ("question", "check", "points", "passed, or what to fix"))
        notes = "".join(f"<p>{cell(note)}</p>" for note in self.notes)
        return (f"<table><thead><tr>{heads}</tr></thead><tbody>{rows}</tbody></table>"
                f"{notes}<p>{cell(self.summary())}</p>")

