"""Week 1 graded end to end, beyond each sample's outcome (tests/test_samples.py): the
gradebook, the bundles gradings leave, the unanswered release, determinism, and
submissions that are broken in every way a real class produces."""

from __future__ import annotations

import csv
import json
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import nbformat
import pytest
from conftest import (ROOT, by_question, outputs, results_of, with_limits,
                      without_timing)
from week1_submissions import SAMPLE_SUBMISSIONS, SEQUENTIAL, submission

from autograder.grading.bundle import code_digest, notebook_code, read_bundle
from autograder.grading.cleanroom import own_classes
from autograder.grading.runner import grade_notebook
from autograder.sandbox.execute import ExecutionReport


@pytest.fixture(scope="module")
def graded_samples(graded_class):
    """`autograder grade week1 source/week1/samples ... --out DIR`, as a TA runs it."""
    return graded_class("week1")


@pytest.mark.grading
def test_gradebook_and_summary(graded_samples):
    out, stdout = graded_samples
    rows = [r for r in csv.DictReader((out / "gradebook.csv").open())
            if r["submission"] in SAMPLE_SUBMISSIONS]
    assert [r["submission"] for r in rows] == sorted(SAMPLE_SUBMISSIONS)
    assert {r["submission"]: (r["q1"], r["q2"], r["q3"], r["total"]) for r in rows}["wrong"] == (
        "4", "5", "6", "15")
    assert re.search(r"^correct +6/6  6/6  6/6  18/18", stdout, re.M), stdout


@pytest.mark.grading
def test_every_grading_leaves_the_bundle_it_graded(graded_samples, week1):
    """Grading by execution writes the submission's bundle beside results.json, and the
    checks grade what it holds: it reads back as the bundle of that very notebook (the
    digest of its code cells), with what the kernel handed over and what went wrong."""
    out, _ = graded_samples

    def bundle(name: str):
        notebook = nbformat.read(ROOT / f"source/week1/samples/{name}.ipynb", as_version=4)
        # The classes the week names (IrisNet) may rebuild the subclass model, as in grading.
        return read_bundle((out / name / "week1.bundle.zip").read_bytes(), week1,
                           own_classes=own_classes(week1, {}), code=code_digest(notebook_code(notebook)))

    correct, crashing = bundle("correct"), bundle("crashing")
    assert sorted(correct.export.archives) == sorted(week1.exports.models)
    assert ExecutionReport.from_json(correct.execution).problems() == []
    assert sorted(crashing.export.archives) == ["sequential_model"]
    assert {"functional_model", "subclass_model"} <= set(crashing.export.problems)
    assert ExecutionReport.from_json(crashing.execution).restarts == 1


@pytest.mark.grading
def test_crashing_cells_are_reported_per_question(graded_samples):
    out, _ = graded_samples
    crashing = json.loads((out / "crashing" / "results.json").read_text())
    assert "NameError: name 'undefined' is not defined" in outputs(crashing, "q2")
    assert "stopped the kernel" in outputs(crashing, "q3")
    assert crashing["extra_data"]["execution"]["restarts"] == 1


@pytest.mark.grading
def test_grading_twice_gives_the_same_results(graded_samples):
    out, _ = graded_samples
    first = results_of(out, "correct")
    second = results_of(out, "correct-again")
    assert without_timing(first) == without_timing(second)


@pytest.mark.grading
def test_unanswered_release_scores_zero_with_a_message_per_question(graded_samples):
    results = results_of(graded_samples[0], "release")
    assert results["score"] == 0
    for question, cell in (("q1", 4), ("q2", 8), ("q3", 12)):  # as numbered in the release
        assert f"cell {cell} is not answered yet" in outputs(results, question)


@pytest.mark.grading
@pytest.mark.parametrize("content, message", [
    ("this is not json", "is not a valid Jupyter notebook"),
    ('{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}', "has no code cells"),
    ('{"cells": "oops"}', "is not a valid Jupyter notebook"),
])
def test_malformed_notebook_gets_zero_and_a_clear_message(grade, tmp_path, content, message):
    path = tmp_path / "broken.ipynb"
    path.write_text(content)
    results = grade(path, "broken")
    assert results["score"] == 0 and len(results["tests"]) == 18
    assert all(message in t["output"] for t in results["tests"])


@pytest.mark.grading
def test_missing_answer_cells_are_named(graded_samples):
    results = results_of(graded_samples[0], "missing-cell")
    assert by_question(results)["q1"] == 6
    assert "no answer cell for q2" in outputs(results, "q2")


@pytest.fixture(scope="module")
def graded_with_limits(week1, tmp_path_factory):
    """Two notebooks graded side by side, each under limits of its own: one with cells that
    hang (a 90 s cell limit), one that hogs memory and prints without end (1.5 GB, 64 KB of
    output). Name -> (results, executed notebook's text)."""
    folder = tmp_path_factory.mktemp("limits")
    cases = {
        # 90 s: q1's training cell (about 30 s here, 45 s beside another grading) must fit
        # even on a loaded CI machine.
        "hanging": (dict(cell_timeout=90, total_time=600), submission({
            "q1": SEQUENTIAL, "q2": "import time\nwhile True:\n    time.sleep(1)",
            "q3": "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\n"
                  "while True:\n    pass"})),
        "hog": (dict(memory_mb=1536, output_kb=64), submission({
            "q1": SEQUENTIAL,
            "q2": "print('x' * 10_000_000)\nfor i in range(100000):\n    print(i)",
            "q3": "hog = [bytearray(2**28) for _ in range(40)]"})),
    }

    def grade(name: str):
        limits, nb = cases[name]
        week = with_limits(week1, folder / f"{name}-week", **limits)
        (folder / name).mkdir()
        nbformat.write(nb, folder / name / f"{name}.ipynb")
        results = grade_notebook(week, folder / name / f"{name}.ipynb",
                                 folder / name / "results.json", log=folder / name / "grader.log")
        return results.to_json(), (folder / name / "executed.ipynb").read_text()

    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(zip(cases, pool.map(grade, cases)))


@pytest.mark.grading
def test_a_hanging_cell_times_out_and_the_rest_still_counts(graded_with_limits):
    results, _ = graded_with_limits["hanging"]
    assert by_question(results) == {"q1": 6, "q2": 0, "q3": 0}
    assert "ran longer than its 90 s limit" in outputs(results, "q2")
    assert "ran longer than its 90 s limit" in outputs(results, "q3")
    # q2's loop stops when interrupted; only q3's, which ignores SIGINT, costs a restart,
    # and the re-run leaves out both hanging cells instead of waiting for them again.
    assert results["extra_data"]["execution"]["restarts"] == 1
    skipped = [c for c in results["extra_data"]["execution"]["cells"] if c["status"] == "skipped"]
    assert [c["question"] for c in skipped] == ["q2", "q3"], skipped
    assert all("ran longer than its 90 s limit" in c["message"] for c in skipped)


@pytest.mark.grading
def test_memory_hog_and_huge_output_are_contained(graded_with_limits):
    results, executed = graded_with_limits["hog"]
    assert by_question(results) == {"q1": 6, "q2": 0, "q3": 0}
    assert "stopped the kernel" in outputs(results, "q3")
    assert len(executed) < 200_000
    assert "output beyond 64 KB dropped" in executed


@pytest.mark.grading
def test_student_check_reports_per_question(tmp_path):
    """`autograder check` on the release folder, as a student runs it: aligned with the
    released notebook like a grading (an edited given cell runs as released, and the
    student is told)."""
    release = tmp_path / "week1"
    shutil.copytree(ROOT / "release" / "week1", release)
    partial = submission({**SAMPLE_SUBMISSIONS["partial"],
                          "q1_train": "sequential_history = None  # forgot to train"})
    nbformat.write(partial, release / "week1.ipynb")
    run = subprocess.run([sys.executable, "-m", "autograder.cli", "check",
                          str(release / "week1.ipynb")], capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 1, run.stderr
    assert "q1: Sequential from a list\n  PASS" in run.stdout
    assert "q3: Subclassed keras.Model\n  FIX" in run.stdout
    assert "cell 12 is not answered yet" in run.stdout
    assert "2 of 3 public checks pass" in run.stdout
    assert "Not run: cell 5 " in run.stdout, run.stdout
