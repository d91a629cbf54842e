"""Hidden checks for exercise 1: the regularised well network.

Over-fitting is measured here: the MSE on the samples the model was fitted on
against the MSE on fresh samples from the same generator (a seed the kernel
does not know), and both against the given baseline trained in the same run.
"""

import pytest
from conftest import network_problem, regularisers

pytestmark = pytest.mark.question("q1")
NAME = "regularised_model"


@pytest.mark.points(1)
def test_same_network(oracle):
    """Same layers as the baseline: five Dense(128, relu) and Dense(200)"""
    problem = network_problem(oracle.describe(NAME), NAME)
    assert problem is None, problem


@pytest.mark.points(1)
def test_is_regularised(oracle):
    """Adds regularisation: weight penalties, dropout or noise"""
    found = regularisers(oracle.describe(NAME))
    assert found, (f"`{NAME}` has no regulariser: add kernel_regularizer=... to its Dense "
                   "layers, or Dropout / GaussianNoise layers between them")


@pytest.mark.points(1)
def test_trained_the_given_way(oracle, week):
    """Trained by the given cell (100 epochs of 40 batches)"""
    steps = oracle.describe(NAME).get("iterations")
    wanted = week.thresholds["training_steps"]
    assert steps == wanted, (
        f"`{NAME}` made {steps} training steps; the given training cell makes {wanted}. "
        "Run it unchanged, once, after building the model")


@pytest.mark.points(1)
def test_overfits_less(gap_against_baseline):
    """Over-fits less: its gap between training and fresh data is at most half the baseline's"""
    found = gap_against_baseline(NAME, "regularised")
    assert found.ratio <= found.wanted, (
        f"`{NAME}` still over-fits: its MSE on fresh samples exceeds its training MSE by "
        f"{found.gap:.5f}, {found.ratio:.0%} of the baseline's {found.baseline_gap:.5f} (at "
        f"most {found.wanted:.0%} is needed); regularise more strongly")


@pytest.mark.points(1)
def test_improves_on_fresh_data(improvement_against_baseline):
    """Its loss on fresh data is lower than the baseline's"""
    found = improvement_against_baseline(NAME, "regularised",
                                         "regularised_min_improvement")
    assert found.percent >= found.wanted, (
        f"on fresh samples `{NAME}` has an MSE of {found.fresh:.5f} against the baseline's "
        f"{found.baseline_fresh:.5f}, {found.percent:.2f} % better; at least {found.wanted} % "
        "is needed")


@pytest.mark.points(1)
def test_reports_the_improvement(oracle, week, baseline, well_losses, measure):
    """improvement_percent is the relative improvement of the test MSE, in percent"""
    expected = 100 * (baseline.test - well_losses(NAME).test) / baseline.test
    reported = oracle.number("improvement_percent")
    tolerance = week.thresholds["improvement_report_tolerance"]
    measure("test-MSE improvement (%)", expected,
            text=f"improvement_percent = {reported:.2f}; the test MSEs give {expected:.2f}")
    assert abs(reported - expected) <= tolerance, (
        f"improvement_percent is {reported:.2f}, but the test MSEs of the two models give "
        f"{expected:.2f} %: compute 100 * (baseline MSE - regularised MSE) / baseline MSE "
        "with test_mse(...)")
