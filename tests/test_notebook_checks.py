"""Checks inside the notebook: ``check("q1")`` and ``check_all()`` in the student's own
kernel run the public checks as the grader does (the kernel's models go over as a bundle
and are rebuilt in a clean room), show a table, and change nothing in the kernel; the
release puts a check cell after each question, and grading leaves those cells out."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import nbformat
import pytest
from conftest import ROOT
from week1_submissions import SAMPLES

from autograder.grading.bundle import CHECK_CELL, CELL_ID, student_side
from autograder.grading.results import CheckResult, GradingResult
from autograder.student import CheckReport, check
from autograder.weeks import Course, Week


def grade_id(cell) -> str | None:
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


@pytest.mark.parametrize("name", Course(ROOT).weeks())
def test_each_question_is_followed_by_its_check_cell_and_all_are_checked_before_saving(name):
    week = Week.load(ROOT / "release" / name)
    cells = nbformat.read(week.released_notebook, as_version=4).cells
    ids = [grade_id(cell) for cell in cells]
    for question in week.questions.values():
        last = max(ids.index(cell) for cell in question.cells)
        assert ids[last + 1] == CHECK_CELL + question.id
        assert f'check("{question.id}")' in cells[last + 1].source
    assert [i for i in ids if student_side(i)][-2:] == [CHECK_CELL + "all", CELL_ID]
    assert ids[-1] == CELL_ID  # the save cell stays last: the bundle names what ran before


def test_the_table_shows_what_to_fix_and_escapes_it():
    week = Week.load(ROOT / "release" / "week1")
    fine = CheckResult("q1", "The model takes 4 features", 1.0, "Sequential")
    fine.passed()
    broken = CheckResult("q2", "The model takes 4 features", 1.0, "Functional")
    broken.failed('could not rebuild `functional_model`: <img src=x onerror="alert(1)">\n'
                  "<script>alert(2)</script>")
    report = CheckReport(week, GradingResult.of(week, [fine, broken], seconds=1.0, extra={}),
                         ["not handed over: <b>x</b>"])
    page = report._repr_html_()
    assert "<script" not in page and "<img" not in page and "<b>" not in page
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in page and "onerror=&quot;" in page
    assert re.search(r">q1</td>.*>1/1</td>.*passed", page)
    assert not report.passed
    text = repr(report)
    assert "PASS q1 The model takes 4 features (1/1)" in text
    assert "FIX  q2 The model takes 4 features (0/1)" in text
    assert "1 of 2 public checks pass" in text


def test_a_check_outside_a_release_folder_or_of_an_unknown_question_says_so(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a week's release folder"):
        check("q1", tmp_path)
    with pytest.raises(ValueError, match="week1 has no question 'q9'; its questions are q1"):
        check("q9", ROOT / "release" / "week1")


def test_a_bundle_the_grader_would_refuse_is_said_and_nothing_is_run(monkeypatch):
    """Grading would run the whole notebook instead (minutes, for week 3): a check says why
    the kernel's models cannot go over, and runs nothing."""
    import autograder.grading.runner
    import autograder.student as student

    monkeypatch.setattr(student, "ran_code", lambda: ["x = 1"])
    monkeypatch.setattr(student, "bundle_of_this_kernel", lambda week, cells: (b"x" * 10, {}))
    monkeypatch.setattr(autograder.grading.runner, "grade_notebook",
                        lambda *args, **kwargs: pytest.fail("graded a refused bundle"))
    report = check("q1", ROOT / "release" / "week1")
    assert not report.passed and report.rows() == []
    assert "no check ran: the grader cannot take this kernel's models" in repr(report)
    assert "No public check ran." in report._repr_html_()


# -- in a real kernel -------------------------------------------------------------------
# The kernel's state before and after check_all(): random generators, weights, figures.
STATE = """
def kernel_state():
    import pickle, random
    import numpy as np
    import matplotlib.pyplot as plt
    models = [globals()[n].get_weights() for n in ("sequential_model", "functional_model",
                                                    "subclass_model")
              if hasattr(globals().get(n), "get_weights")]
    return pickle.dumps((random.getstate(), np.random.get_state(), models,
                         plt.get_fignums(), plt.gcf().number if plt.get_fignums() else None))
"""
CHECK_ALL = """
from autograder.student import check, check_all
import json
before = kernel_state()
report, first = check_all(), check("q1")
json.dump({"rows": report.rows(), "q1": first.rows(), "same": before == kernel_state(),
           "html": report._repr_html_()}, open("in-kernel.json", "w"))
"""
# q1's model through a Lambda layer: it runs in the kernel, the clean room refuses it.
LAMBDA_Q1 = """
sequential_model = keras.Sequential([
    keras.Input(shape=(4,)),
    layers.Lambda(lambda x: x * 1.0),
    layers.Dense(8, activation="relu"),
    layers.Dense(3, activation="softmax"),
])
"""


def as_checked_in_a_kernel(sample: str) -> nbformat.NotebookNode:
    """A week-1 sample as a student runs it to check: two epochs instead of 200 (the public
    checks look at shapes), a cell calling check_all() and check("q1") before the save
    cell, no other check cells, and no cell that kills the kernel (it would end the run)."""
    nb = nbformat.read(SAMPLES / f"{'correct' if sample == 'lambda' else sample}.ipynb",
                       as_version=4)
    cells = []
    for cell in nb.cells:
        if student_side(grade_id(cell)) and grade_id(cell) != CELL_ID:
            continue
        if "os.kill" in cell.source or "os._exit" in cell.source:
            continue
        if grade_id(cell) == "setup":
            cell.source = cell.source.replace("epochs=200", "epochs=2")
        if grade_id(cell) == "q1" and sample == "lambda":
            cell.source = LAMBDA_Q1
        if grade_id(cell) == CELL_ID:
            cells += [nbformat.v4.new_code_cell(STATE), nbformat.v4.new_code_cell(CHECK_ALL)]
        cells.append(cell)
    nb.cells = cells
    return nb


def checked(folder, sample: str) -> tuple[dict, dict[tuple[str, str], bool], str]:
    """Run the sample as a student does (jupyter execute, every cell in order), then
    `autograder check` on it and the bundle it saved: (what check_all() and check("q1")
    showed in the kernel, (question, check) -> passed by `autograder check`, its output)."""
    shutil.copytree(ROOT / "release" / "week1", folder)
    nbformat.write(as_checked_in_a_kernel(sample), folder / "week1.ipynb")
    run = subprocess.run([sys.executable, "-m", "jupyter", "execute", "--inplace",
                          "--allow-errors", "week1.ipynb"], cwd=folder, capture_output=True,
                         text=True)
    assert run.returncode == 0 and (folder / "week1.bundle.zip").exists(), run.stderr[-3000:]
    in_kernel = json.loads((folder / "in-kernel.json").read_text())
    run = subprocess.run([sys.executable, "-m", "autograder.cli", "check", "week1.ipynb"],
                         cwd=folder, capture_output=True, text=True)
    assert run.returncode in (0, 1), run.stdout + run.stderr
    outcome, question = {}, None
    for line in run.stdout.splitlines():
        heading = re.match(r"(q\d+): ", line)
        if heading:
            question = heading.group(1)
        mark = re.match(r"  (PASS|FIX ) (.+)", line)
        if mark:
            outcome[(question, mark.group(2))] = mark.group(1) == "PASS"
    return in_kernel, outcome, run.stdout


SAMPLES_CHECKED = ["correct", "partial", "wrong", "crashing", "lambda"]


@pytest.fixture(scope="module")
def checked_samples(tmp_path_factory):
    """Each sample checked both ways; two at a time (each is a kernel or a grading)."""
    work = tmp_path_factory.mktemp("checked")
    with ThreadPoolExecutor(2) as pool:
        done = pool.map(lambda sample: checked(work / sample / "week1", sample), SAMPLES_CHECKED)
        return dict(zip(SAMPLES_CHECKED, done))


@pytest.mark.grading
@pytest.mark.parametrize("sample", SAMPLES_CHECKED)
def test_a_check_in_the_kernel_agrees_with_autograder_check(checked_samples, sample):
    in_kernel, by_cli, said = checked_samples[sample]
    assert "week1.bundle.zip matches the notebook" in said, said
    assert {(q, name): outcome == "passed" for q, name, _, outcome in in_kernel["rows"]} == by_cli
    assert [row for row in in_kernel["rows"] if row[0] == "q1"] == in_kernel["q1"]
    assert in_kernel["same"], "checking changed the kernel's random state, models or figures"
    passed = {q for (q, _), ok in by_cli.items() if ok}
    expected = {"correct": {"q1", "q2", "q3"}, "partial": {"q1", "q2"}, "wrong": {"q1", "q2", "q3"},
                "crashing": {"q1"}, "lambda": {"q2", "q3"}}[sample]
    assert passed == expected, said
    if sample == "lambda":
        q1 = in_kernel["q1"][0][3]
        assert "Lambda" in q1 and "Lambda" in in_kernel["html"], q1
