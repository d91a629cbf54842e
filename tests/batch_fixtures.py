"""A tiny course for batch-grading tests: two questions whose checks need no
model, so one grading takes seconds; submissions as notebooks, a Gradescope
export zip and an nbgrader tree."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_notebook

ROOT = Path(__file__).resolve().parent.parent

CONFIG = """
title = "Tiny week"
notebook = "tiny.ipynb"
[questions.q1]
title = "A number"
cells = ["q1"]
[questions.q2]
title = "A label"
cells = ["q2"]
[exports]
values = ["score", "label"]
[limits]
total_time = 120
"""

# The hidden tests hold a marker string that must never reach a student's page.
HIDDEN_MARKER = "HIDDEN_SOURCE_MARKER_7f3a"
TESTS = f'''
import pytest


@pytest.mark.question("q1")
@pytest.mark.parametrize("tier", [0.3, 0.4, 0.5])
@pytest.mark.points(1)
def test_tier(tier, oracle):
    """Score reaches {{tier:.0%}}"""
    score = oracle.number("score")
    assert score >= tier, f"score {{score:.2f}} is below {{tier:.0%}}"


@pytest.mark.question("q2")
@pytest.mark.points(2)
def test_label(oracle):
    """The label is 'cat'"""
    {HIDDEN_MARKER} = oracle.value("label")
    assert {HIDDEN_MARKER} == "cat", f"the label is {{{HIDDEN_MARKER}!r}}, not 'cat'"


@pytest.mark.question("q2")
@pytest.mark.points(1)
def test_buggy(oracle):
    """A check with a bug in it"""
    {HIDDEN_MARKER}_bug = None
    return {HIDDEN_MARKER}_bug + 1
'''

PLOT = "import matplotlib.pyplot as plt\nplt.plot([0, 1], [1, 0])\nplt.show()"


def make_course(root: Path) -> Path:
    """``root/assignments/tiny``: the build `autograder grade tiny` reads."""
    build = root / "assignments" / "tiny"
    (build / "tests").mkdir(parents=True)
    (build / "week.toml").write_text(CONFIG)
    (build / "tests" / "test_tiny.py").write_text(textwrap.dedent(TESTS))
    return root


def tiny_notebook(score: float, label: str, extra: str = "") -> nbformat.NotebookNode:
    """Answers q1 with ``score`` and q2 with ``label``; ``extra`` is a cell after them."""
    cells = []
    for grade_id, source in (("q1", f"score = {score!r}"), ("q2", f"label = {label!r}")):
        cell = new_code_cell(source)
        cell.metadata["nbgrader"] = {"grade_id": grade_id, "solution": True}
        cells.append(cell)
    if extra:
        cells.append(new_code_cell(extra))
    return new_notebook(cells=cells)


def notebook_text(*args, **kwargs) -> str:
    return nbformat.writes(tiny_notebook(*args, **kwargs))


def gradescope_zip(path: Path, submissions: dict[str, tuple[str, str, dict[str, str]]],
                   extra_entries: dict[str, str] | None = None) -> Path:
    """Gradescope's export layout: assignment_N_export/submission_metadata.yml and
    one submission_<id>/ folder each. ``submissions``: folder -> (name, email, files)."""
    top = "assignment_4242_export"
    metadata = []
    for folder, (name, email, _) in submissions.items():
        metadata.append(f"{folder}:\n  :submitters:\n  - :name: {name}\n    :sid: '{folder[-3:]}'\n"
                        f"    :email: {email}\n  :created_at: 2025-01-10 17:22:41.081136000 -08:00\n"
                        f"  :score: !ruby/object:BigDecimal 18:0.0\n  :status: processed\n")
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(f"{top}/submission_metadata.yml", "".join(metadata))
        for folder, (_, _, files) in submissions.items():
            for name, text in files.items():
                archive.writestr(f"{top}/{folder}/{name}", text)
        for name, text in (extra_entries or {}).items():
            archive.writestr(name, text)
    return path


def run_grade(course: Path, *args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(grade_command(*args), capture_output=True, text=True, cwd=ROOT,
                          env=course_env(course), **kwargs)


def grade_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "autograder.cli", "grade", "tiny", *args]


def course_env(course: Path) -> dict[str, str]:
    return {**os.environ, "AUTOGRADER_COURSE": str(course)}
