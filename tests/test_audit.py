"""The audit's decisions, on grading results (no grading): which submissions it
picks, and what counts as reproduced."""

from __future__ import annotations

import dataclasses

import pytest

from autograder.audit import chosen, compare, seed_of
from autograder.grading.results import CheckResult, GradingResult
from autograder.weeks import Course


@pytest.fixture(scope="module")
def week3():
    week = Course().built_week("week3")
    return dataclasses.replace(week, audit={"* test accuracy": 0.03})


def results(*checks, execution=(), note=""):
    return GradingResult("week3", [
        CheckResult(question="q2", check=name, max_score=1.0, name=name, status=status,
                    measured=[{"label": label, "value": value, "threshold": None}
                              for label, value in figures.items()])
        for name, status, figures in checks],
        extra={"execution": {"cells": list(execution)}, "note": note})


def test_figures_within_the_weeks_tolerance_reproduce(week3):
    bundled = results(("cnn", "passed", {"cnn_model test accuracy": 0.612,
                                         "cnn_model parameters": 122570}))
    rerun = results(("cnn", "failed", {"cnn_model test accuracy": 0.596,
                                       "cnn_model parameters": 122570}))
    # Across the threshold, but within the seed-to-seed spread: not the student's doing.
    assert compare(week3, bundled, rerun).outcome == "reproduced"


def test_a_figure_beyond_its_tolerance_differs_and_both_are_shown(week3):
    bundled = results(("cnn", "passed", {"cnn_model test accuracy": 0.71,
                                         "cnn_model parameters": 122570}))
    rerun = results(("cnn", "failed", {"cnn_model test accuracy": 0.52,
                                       "cnn_model parameters": 122571}))
    audit = compare(week3, bundled, rerun)
    assert audit.outcome == "differs"
    assert "cnn_model test accuracy: bundle 0.71, re-run 0.52 (tolerance 0.03)" in \
        audit.differences[0]
    # A figure the week gives no tolerance (a parameter count) must come out the same.
    assert "cnn_model parameters: bundle 122570, re-run 122571" in audit.differences[1]


def test_a_check_without_figures_must_pass_or_fail_alike(week3):
    bundled = results(("layers", "passed", {}), ("other", "failed", {}))
    assert compare(week3, bundled, results(("layers", "passed", {}), ("other", "failed", {}))
                   ).outcome == "reproduced"
    audit = compare(week3, bundled, results(("layers", "failed", {}), ("other", "failed", {})))
    assert audit.outcome == "differs" and audit.differences == [
        "layers: bundle passed, re-run failed"]


@pytest.mark.parametrize("cell, note", [
    ({"index": 7, "status": "timeout", "message": "ran longer than its 600 s limit"}, ""),
    ({"index": 7, "status": "killed-kernel", "message": "stopped the kernel"}, ""),
    (None, "grading took longer than 2700 s and was stopped"),
])
def test_a_rerun_stopped_by_the_limits_is_not_reproduced_rather_than_different(
        week3, cell, note):
    bundled = results(("cnn", "passed", {"cnn_model test accuracy": 0.71}))
    rerun = results(("cnn", "failed", {}), execution=[cell] if cell else [], note=note)
    audit = compare(week3, bundled, rerun)
    assert audit.outcome == "not reproduced"
    assert (cell and "cell 8 " + cell["message"] in audit.differences) or note in \
        audit.differences


def test_the_sample_is_fixed_by_the_folders_seed(tmp_path):
    seed = seed_of(tmp_path)
    assert seed_of(tmp_path) == seed and len(seed) == 32
    digests = [f"{i:064x}" for i in range(2000)]
    picked = [d for d in digests if chosen(seed, d, 0.1)]
    assert picked == [d for d in digests if chosen(seed, d, 0.1)]  # a rerun audits the same
    assert 120 <= len(picked) <= 280  # about a tenth
    assert set(picked) <= {d for d in digests if chosen(seed, d, 0.2)}  # more is a superset
    assert not any(chosen(seed, d, 0.0) for d in digests)
    other = tmp_path / "other"
    other.mkdir()
    assert picked != [d for d in digests if chosen(seed_of(other), d, 0.1)]  # a new folder
