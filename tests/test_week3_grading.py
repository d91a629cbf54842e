"""Week 3 graded end to end: the reference scores full marks, and a cheap wrong submission
loses exactly the points its answers deserve, with feedback that says why and reports
each model's parameter count.

Slow: the reference trains three networks (about 6-8 minutes on 2 cores); the wrong
sample about 2 minutes. Needs the data sets (``autograder data prepare``, or the offline
copies in $AML_DATASETS / ../shared/datasets, which grading prepares from).
"""

from __future__ import annotations

import json
import re

import pytest
from conftest import ROOT, by_question, measured, outputs, results_of
from sample_notebooks import full_marks
from week3_submissions import SAMPLE_SUBMISSIONS, write_samples

FULL_MARKS = full_marks("week3", ROOT)


@pytest.fixture(scope="module")
def graded(graded_class):
    """`autograder grade week3 REFERENCE SAMPLES ... --out DIR`, as a TA runs it."""
    out, _ = graded_class("week3")
    return {name: results_of(out, name) for name in ("week3", "wrong")}


@pytest.mark.grading
def test_reference_scores_full_marks_and_reports_its_figures(graded):
    reference = graded["week3"]
    assert by_question(reference) == FULL_MARKS, json.dumps(reference, indent=1)[:3000]
    figures = measured(reference)
    # The reference's own sizes (source/week3/week3.ipynb).
    assert figures["ann_model parameters"] == 1_709_578
    assert figures["cnn_model parameters"] == 34_282
    assert figures["imdb_model parameters"] == 842_419
    # Reported with the passed checks, where students read them.
    assert "`ann_model` has 1,709,578 parameters" in outputs(reference, "q1")
    assert "`cnn_model` has 34,282 parameters" in outputs(reference, "q2")
    assert re.search(r"`imdb_model` classifies 9\d\.\d% of the 25,000 test reviews correctly "
                     r"\(needs 90%\)", outputs(reference, "q3"))


@pytest.mark.grading
def test_wrong_sample_loses_the_right_points_and_says_why(graded):
    wrong = graded["wrong"]
    assert by_question(wrong) == SAMPLE_SUBMISSIONS["wrong"][1], json.dumps(wrong, indent=1)[:3000]
    q1, q2, q3 = (outputs(wrong, q) for q in ("q1", "q2", "q3"))
    # The convolution hidden in a nested model is found, and the tiers say why they fail.
    assert "`ann_model` uses Conv2D" in q1
    assert "the accuracy tiers are for a network without convolution" in q1
    assert "no pooling layer" in q2
    assert re.search(r"`cnn_model` classifies \d\d\.\d% of the 10,000 test images correctly "
                     r"\(needs 60%\)", q2)
    assert "`imdb_model` has" in q3 and "no recurrent layer" in q3
    for question, name in (("q1", "ann_model"), ("q2", "cnn_model"), ("q3", "imdb_model")):
        assert re.search(rf"`{name}` has [\d,]+ parameters", outputs(wrong, question))


def test_samples_are_up_to_date(tmp_path):
    write_samples(tmp_path)
    for path in sorted((ROOT / "source/week3/samples").glob("*.ipynb")):
        assert (tmp_path / path.name).read_text() == path.read_text(), (
            f"{path.name} is stale: run .venv/bin/python tests/week3_submissions.py")
