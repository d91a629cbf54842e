"""Making sample submissions from a week's release notebook (shared by the
tests/<week>_submissions.py modules, which hold each week's answers)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Callable

import nbformat

from autograder.weeks import Course, Manifest, grade_id


def fill(release: Path, answers: dict[str, str], *, keep_given: bool = False):
    """The release notebook with the cells named by nbgrader grade_id answered.

    With ``keep_given`` only the ``raise NotImplementedError()`` stub is replaced,
    keeping the given lines around a solution region (e.g. a seed).
    """
    nb = nbformat.read(release, as_version=4)
    for cell in nb.cells:
        if grade_id(cell) in answers:
            answer = answers[grade_id(cell)].strip()
            cell.source = (cell.source.replace("raise NotImplementedError()", answer)
                           if keep_given else answer)
    return nb


SOLUTION = re.compile(r"### BEGIN SOLUTION\n(.*?)### END SOLUTION", re.S)


def reference_answers(source: Path) -> dict[str, str]:
    """grade_id -> the code of the reference solution in the notebook ``source`` (between
    the markers), for samples that edit a passage of it."""
    answers = {}
    for cell in nbformat.read(source, as_version=4).cells:
        found = SOLUTION.search(cell.source)
        if found:
            answers[grade_id(cell)] = found.group(1)
    return answers


def write_samples(samples: dict, folder: Path, submission: Callable) -> None:
    """Write ``samples`` (name -> answers) as notebooks."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, answers in samples.items():
        nbformat.write(submission(answers), folder / f"{name}.ipynb")


def reference(week: str, root: Path):
    """The release notebook answered with the reference solution's cells (code and
    written answers), as a student who solved everything would hand it in."""
    source = nbformat.read(root / "source" / week / f"{week}.ipynb", as_version=4)
    answers = {grade_id(c): c.source for c in source.cells
               if c.get("metadata", {}).get("nbgrader", {}).get("solution")}
    return fill(root / "release" / week / f"{week}.ipynb", answers)


def full_marks(week: str, root: Path | None = None) -> dict[str, float]:
    """Each question's points, as the compiler derived them (assignments/<week>/manifest.json)."""
    return Manifest.load(Course(root).built_week(week)).points
