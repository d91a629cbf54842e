"""Week 2 graded end to end: the reference, a realistic wrong submission, and the
unanswered release notebook (about 4 minutes on 2 cores: two notebooks train)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import ROOT, by_question, failed, measured, outputs, results_of
from sample_notebooks import full_marks
from week2_submissions import SAMPLE_SUBMISSIONS, write_samples

from autograder.compiler import compile_week
from autograder.grading.runner import grade_notebook
from autograder.weeks import Course

FULL_MARKS = full_marks("week2", ROOT)


@pytest.fixture(scope="module")
def week2():
    return Course(ROOT).built_week("week2")


@pytest.fixture(scope="module")
def graded(graded_class):
    """graded(name) -> results.json of source/week2/<name>, graded once per run."""
    out, _ = graded_class("week2")
    return lambda name: results_of(out, Path(name).stem)


@pytest.mark.grading
def test_reference_scores_full_marks_and_reports_its_errors(graded):
    results = graded("week2.ipynb")
    assert by_question(results) == FULL_MARKS, failed(results)
    errors = measured(results)
    for ode in (1, 2, 3):
        # Measured with seeds 0-2: at most 0.0051 and 0.028 (see week.toml).
        assert errors[f"physics-informed max error, ODE {ode}"] < 0.02
        assert errors[f"supervised max error, ODE {ode}"] < 0.05


@pytest.mark.grading
def test_wrong_sample_loses_the_right_points(graded):
    results = graded("samples/wrong.ipynb")
    assert by_question(results) == SAMPLE_SUBMISSIONS["wrong"][1], failed(results)


@pytest.mark.grading
def test_wrong_sample_says_why(graded):
    results = graded("samples/wrong.ipynb")
    q1, q3 = outputs(results, "q1"), outputs(results, "q3")
    # Under-trained: each ODE's error is named, with the tolerance.
    assert q1.count("away from the exact solution") == 3 and "within 0.05" in q1
    assert all(measured(results)[f"physics-informed max error, ODE {ode}"] > 0.05
               for ode in (1, 2, 3))
    # The "supervised" lines are the exact solution again, not the models' outputs.
    assert ("no line of the figure shows the outputs of the supervised model `supervised_model_1` "
            "(du/dx = 2x) or `supervised_model_2`") in q3
    assert "these lines have no label: the physics-informed solution of du/dx = 2x" in q3
    assert "the answer cell under exercise 3 has 0 words" in q3
    # The physics-informed lines, unlabelled but real, still count as the models' outputs.
    assert not any("physics-informed solutions' own outputs" in name for name in failed(results))


@pytest.mark.grading
def test_unanswered_release_scores_zero_with_a_message_per_question(week2, tmp_path):
    results = grade_notebook(week2, ROOT / "release/week2/week2.ipynb",
                             tmp_path / "results.json", log=tmp_path / "grader.log").to_json()
    assert results["score"] == 0 and len(results["tests"]) == 16
    for question in ("q1", "q2", "q3"):
        assert "is not answered yet" in outputs(results, question)
    assert "no figure with plotted lines is open" in outputs(results, "q3")


def test_samples_are_up_to_date(tmp_path):
    write_samples(tmp_path)
    for path in sorted((ROOT / "source/week2/samples").glob("*.ipynb")):
        assert (tmp_path / path.name).read_text() == path.read_text(), (
            f"{path.name} is stale: run .venv/bin/python tests/week2_submissions.py")


def test_committed_release_and_build_are_up_to_date(tmp_path):
    shutil.copytree(ROOT / "source" / "week2", tmp_path / "source" / "week2")
    compile_week(Course(tmp_path), "week2", verify=False, log=lambda *_: None)
    for part in ("release", "assignments"):
        assert tree(tmp_path / part / "week2") == tree(ROOT / part / "week2"), (
            f"{part}/week2 is stale: run `autograder compile week2`")


def tree(folder):
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}
