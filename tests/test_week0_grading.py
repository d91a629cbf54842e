"""Week 0 graded end to end, beyond each sample's outcome (tests/test_samples.py, where
the realistic mistakes are: an MSE averaged over outputs too, Adam without its step
count, the sigmoid's derivative in every layer, Constant without eta, gradient ascent,
a training loop that raises, gradients by JAX): the figure the reference reports, and
the liar's (tests/lying_notebooks.py) baked weights measured on the grader's split.

Fast: NumPy only, no Keras in the rooms; about 15 s per notebook here.
"""

from __future__ import annotations

import pytest
from conftest import measured, results_of


@pytest.fixture(scope="module")
def graded(graded_class):
    """`autograder grade week0 REFERENCE SAMPLES LIARS ... --out DIR`, as a TA runs it."""
    out, _ = graded_class("week0")
    return {name: results_of(out, name) for name in ("week0", "lying")}


@pytest.mark.grading
def test_reference_reports_its_digits_accuracy(graded):
    figures = measured(graded["week0"])
    # 0.960-0.982 over 12 secret splits, class and pixel orders (week.toml); 0.94 passes.
    assert 0.95 <= figures["digits test accuracy"] <= 1.0


@pytest.mark.grading
def test_weights_baked_on_the_public_digits_score_chance(graded):
    """Trained offline on every public digit, test rows included, the liar's weights meet
    the grader's secret class and pixel orders: about one digit in ten."""
    assert measured(graded["lying"])["digits test accuracy"] < 0.3
