"""Week 3 graded end to end, beyond each sample's outcome (tests/test_samples.py): the
reference reports each model's parameter count and accuracy where students read them,
and the wrong sample's feedback reports its accuracy and parameter counts.

Slow: the reference trains three networks (about 6-8 minutes on 2 cores); the wrong
sample about 2 minutes. Needs the data sets (``autograder data prepare``, or the offline
copies in $AML_DATASETS / ../shared/datasets, which grading prepares from).
"""

from __future__ import annotations

import re

import pytest
from conftest import measured, outputs, results_of


@pytest.fixture(scope="module")
def graded(graded_class):
    """`autograder grade week3 REFERENCE SAMPLES ... --out DIR`, as a TA runs it."""
    out, _ = graded_class("week3")
    return {name: results_of(out, name) for name in ("week3", "wrong")}


@pytest.mark.grading
def test_reference_reports_its_figures(graded):
    reference = graded["week3"]
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
    # Gradescope's leaderboard (week.toml): the figures, as measured.
    assert reference["leaderboard"] == [
        {"name": "CNN accuracy", "value": figures["cnn_model test accuracy"], "order": "desc"},
        {"name": "IMDB accuracy", "value": figures["imdb_model test accuracy"], "order": "desc"},
        {"name": "CNN parameters", "value": 34_282, "order": "asc"}]


@pytest.mark.grading
def test_wrong_sample_reports_its_accuracy_and_sizes(graded):
    wrong = graded["wrong"]
    q2 = outputs(wrong, "q2")
    assert re.search(r"`cnn_model` classifies \d\d\.\d% of the 10,000 test images correctly "
                     r"\(needs 60%\)", q2)
    for question, name in (("q1", "ann_model"), ("q2", "cnn_model"), ("q3", "imdb_model")):
        assert re.search(rf"`{name}` has [\d,]+ parameters", outputs(wrong, question))
