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
def test_overfits_less(oracle, week, baseline, well_losses, given_cells_unchanged, measure):
    """Over-fits less: its gap between training and fresh data is at most half the baseline's"""
    given_cells_unchanged("q1_train")
    losses = well_losses(NAME)
    ratio = losses.gap / baseline.gap
    wanted = week.thresholds["max_gap_ratio"]
    measure("regularised gap / baseline gap", ratio, threshold=wanted,
            text=f"over-fitting gap (fresh MSE - training MSE): {losses.gap:.5f}, baseline "
                 f"{baseline.gap:.5f}, ratio {ratio:.2f} (needs at most {wanted})")
    assert ratio <= wanted, (
        f"`{NAME}` still over-fits: its MSE on fresh samples exceeds its training MSE by "
        f"{losses.gap:.5f}, {ratio:.0%} of the baseline's {baseline.gap:.5f} (at most "
        f"{wanted:.0%} is needed); regularise more strongly")


@pytest.mark.points(1)
def test_improves_on_fresh_data(oracle, week, baseline, well_losses, given_cells_unchanged,
                                measure):
    """Its loss on fresh data is lower than the baseline's"""
    given_cells_unchanged("q1_train")
    losses = well_losses(NAME)
    improvement = 100 * (baseline.fresh - losses.fresh) / baseline.fresh
    wanted = week.thresholds["regularised_min_improvement"]
    measure("regularised improvement on fresh data (%)", improvement, threshold=wanted,
            text=f"MSE on fresh samples: {losses.fresh:.5f}, baseline {baseline.fresh:.5f}, "
                 f"improvement {improvement:.2f} % (needs {wanted} %)")
    assert improvement >= wanted, (
        f"on fresh samples `{NAME}` has an MSE of {losses.fresh:.5f} against the baseline's "
        f"{baseline.fresh:.5f}, {improvement:.2f} % better; at least {wanted} % is needed")


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
