"""Week 4 graded end to end: the reference scores full marks, and realistic mistakes
(regularisation that changes the network or is too weak to help, a loss without its
threshold, a physics network with g written into it) lose the right points with
messages that say why.

Each sample runs the whole notebook (three 100-epoch trainings on the well, one
on the projectile, two retrainings by the grader): about 2 minutes each here.
"""

from __future__ import annotations

import json

import pytest
from conftest import ROOT, by_question, failed, measured, outputs, results_of
from week4_submissions import SAMPLE_SUBMISSIONS, write_samples


@pytest.fixture(scope="module")
def graded_samples(graded_class):
    """`autograder grade week4 source/week4/samples ... --out DIR`, as a TA runs it."""
    return graded_class("week4")[0]


@pytest.mark.grading
@pytest.mark.parametrize("name", sorted(SAMPLE_SUBMISSIONS))
def test_sample_scores_what_its_answers_deserve(graded_samples, name):
    results = results_of(graded_samples, name)
    assert by_question(results) == SAMPLE_SUBMISSIONS[name][1], json.dumps(failed(results),
                                                                           indent=1)


@pytest.mark.grading
def test_reference_reports_every_measured_figure(graded_samples):
    results = results_of(graded_samples, "correct")
    figures = measured(results)
    assert figures["regularised gap / baseline gap"] <= 0.5
    assert figures["regularised improvement on fresh data (%)"] >= 1.0
    assert figures["physics-guided improvement on fresh data (%)"] >= 0.4
    assert abs(figures["learned g"] - 9.7) <= 0.1
    assert abs(figures["retrained g (mars)"] - 3.7) <= 0.25


@pytest.mark.grading
def test_near_misses_say_why(graded_samples):
    wrong = failed(results_of(graded_samples, "wrong"))
    assert len(wrong) == 5, wrong
    messages = "\n".join(wrong.values())
    assert "Dense(64, relu)" in messages and "keep the lecture's network" in messages
    assert "improvement_percent is -" in messages  # computed from the training losses
    assert "subtract the tolerance inside the ReLU" in messages
    assert messages.count("must come from the two trainable sub-networks") == 2
    assert "a fresh ProjectileNet learned g = 9.7000" in messages

    weak = results_of(graded_samples, "weak")
    assert "still over-fits" in outputs(weak, "q1")
    assert "at least 1.0 % is needed" in outputs(weak, "q1")
    for question in ("q2", "q3"):
        assert "is not answered yet" in outputs(weak, question)


def test_samples_are_up_to_date(tmp_path):
    write_samples(tmp_path)
    for path in sorted((ROOT / "source/week4/samples").glob("*.ipynb")):
        assert (tmp_path / path.name).read_text() == path.read_text(), (
            f"{path.name} is stale: run .venv/bin/python tests/week4_submissions.py")
