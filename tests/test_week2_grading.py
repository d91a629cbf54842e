"""Week 2 graded end to end, beyond each sample's outcome (tests/test_samples.py): the
figures the reference reports, what the wrong sample's messages say beyond its outcome
file, and the unanswered release notebook (about 4 minutes on 2 cores: two notebooks
train)."""

from __future__ import annotations

import csv
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, measured, outputs, results_of

from autograder.compiler import compile_week
from autograder.grading.runner import grade_notebook
from autograder.weeks import Course


@pytest.fixture(scope="module")
def week2():
    return Course(ROOT).built_week("week2")


@pytest.fixture(scope="module")
def graded(graded_class):
    """graded(name) -> results.json of source/week2/<name>, graded once per run."""
    out, _ = graded_class("week2")
    return lambda name: results_of(out, Path(name).stem)


@pytest.mark.grading
def test_reference_reports_its_errors(graded):
    results = graded("week2.ipynb")
    errors = measured(results)
    for ode in (1, 2, 3):
        # Measured with seeds 0-2: at most 0.0051 and 0.028 (see week.toml).
        assert errors[f"physics-informed max error, ODE {ode}"] < 0.02
        assert errors[f"supervised max error, ODE {ode}"] < 0.05


@pytest.mark.grading
def test_wrong_sample_reports_its_errors(graded):
    """Under-trained: each ODE's error is measured and reported beside the message
    (source/week2/samples/wrong.toml names the messages)."""
    results = graded("samples/wrong.ipynb")
    assert all(measured(results)[f"physics-informed max error, ODE {ode}"] > 0.05
               for ode in (1, 2, 3))


@pytest.mark.grading
def test_unanswered_release_scores_zero_with_a_message_per_question(week2, tmp_path):
    results = grade_notebook(week2, ROOT / "release/week2/week2.ipynb",
                             tmp_path / "results.json", log=tmp_path / "grader.log").to_json()
    assert results["score"] == 0 and len(results["tests"]) == 15
    for question in ("q1", "q2", "q3"):
        assert "is not answered yet" in outputs(results, question)
    assert "no figure with plotted lines is open" in outputs(results, "q3")


@pytest.mark.grading
def test_a_ta_round_trip_on_the_graded_class(graded_class, week2, tmp_path):
    """The class as `autograder grade` graded it (no grading here): every submission's
    written answer is exported, the TA's sheet comes back as manual entries, and the
    auto-graded checks are untouched. (Regrading with scores: tests/test_written.py.)"""
    shared, _ = graded_class("week2")
    out = tmp_path / "out"
    shutil.copytree(shared, out)  # the shared folder stays as graded for other tests
    cli = [sys.executable, "-m", "autograder.cli", "written"]
    export = subprocess.run([*cli, "export", "week2", str(out)], capture_output=True,
                            text=True, cwd=ROOT)
    assert export.returncode == 0, export.stderr
    rows = list(csv.DictReader(open(out / "written" / "written.csv")))
    graded = sorted(p.parent.name for p in out.glob("*/results.json"))
    assert len(rows) == len(graded) and {r["question"] for r in rows} == {"q3"}
    page = (out / "written" / "q3.html").read_text()
    assert "neither has any\ninformation" in page or "neither has any information" in page
    for row in rows:
        row["points"], row["comment"] = "1", "half of it"
    with open(tmp_path / "sheet.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    before = {name: results_of(out, name) for name in graded}
    done = subprocess.run([*cli, "import", "week2", str(out), str(tmp_path / "sheet.csv")],
                          capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert f"imported {len(graded)} score(s)" in done.stdout
    for name in graded:
        after = results_of(out, name)
        manual = [t for t in after["tests"] if t["extra_data"].get("manual")]
        if before[name]["tests"][0]["name"] == "grading":  # not graded at all: no entry
            assert not manual
            continue
        assert [(t["score"], t["output"]) for t in manual] == [(1.0, "half of it")]
        assert after["score"] == before[name]["score"] + 1
        assert [t for t in after["tests"] if t not in manual] == before[name]["tests"]


def test_committed_release_and_build_are_up_to_date(tmp_path):
    shutil.copytree(ROOT / "source" / "week2", tmp_path / "source" / "week2")
    compile_week(Course(tmp_path), "week2", verify=False, log=lambda *_: None)
    for part in ("release", "assignments"):
        assert tree(tmp_path / part / "week2") == tree(ROOT / part / "week2"), (
            f"{part}/week2 is stale: run `autograder compile week2`")


def tree(folder):
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}
