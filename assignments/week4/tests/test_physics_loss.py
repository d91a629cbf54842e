"""Hidden checks for exercise 2: the physics-guided loss and the network trained with it.

The loss function is called on predictions built here with known deviations
from unitarity (L * mean(y_pred) - 1), one sample at a time and in a batch, and
what it adds to the MSE (computed here) is compared with the physics term; the
network trained with it is measured like exercise 1's.
"""

import numpy as np
import pytest
from conftest import L, NORM_TOLERANCE, network_problem, regularisers, well_samples

pytestmark = pytest.mark.question("q2")
LOSS, MODEL = "physics_guided_loss", "physics_model"
# Deviations L * mean(y_pred) - 1 of the rows sent to the loss.
WITHIN = [0.0, 0.004, -0.006, 0.009, -0.0095, 0.0]
BEYOND = [0.2, -0.2, 0.05, -0.03, 0.5, 0.012]
MIXED = [0.3, -0.3, 0.004, 0.05, -0.02, 0.0]


def predictions_with(deviations, seed):
    """y_true rows of the well, and y_pred rows near them whose L * mean - 1 is as given."""
    y_true = well_samples(len(deviations), seed)[1]
    noisy = y_true + np.random.default_rng(seed).normal(0, 0.2, y_true.shape).astype("float32")
    target_mean = (1 + np.asarray(deviations)) / L
    y_pred = noisy - noisy.mean(axis=1, keepdims=True) + target_mean[:, None]
    return y_true, y_pred.astype("float32")


def losses(oracle, y_true, y_pred):
    """The loss of a batch: one value per sample, or a single value for the batch."""
    results = oracle.call(LOSS, y_true, y_pred)
    assert len(results) == 1, f"`{LOSS}` should return one array, not {len(results)} values"
    result = results[0]
    assert result.shape == (len(y_true),) or result.size == 1, (
        f"`{LOSS}` returned shape {result.shape} for a batch of {len(y_true)} samples; "
        f"return one loss per sample (shape ({len(y_true)},))")
    return result.reshape(-1)


def one_at_a_time(oracle, y_true, y_pred):
    """The loss of each sample, sent as a batch of one."""
    return np.array([losses(oracle, y_true[i:i + 1], y_pred[i:i + 1])[0]
                     for i in range(len(y_true))])


def mse(y_true, y_pred):
    return np.mean((y_true.astype(np.float64) - y_pred.astype(np.float64)) ** 2, axis=1)


@pytest.mark.points(1)
def test_loss_is_the_mse_within_the_tolerance(oracle, week):
    """Equals the MSE when |L * mean(y_pred) - 1| is within NORM_TOLERANCE"""
    y_true, y_pred = predictions_with(WITHIN, 11)
    got, expected = one_at_a_time(oracle, y_true, y_pred), mse(y_true, y_pred)
    assert np.max(np.abs(got - expected)) <= week.thresholds["loss_tolerance"], (
        f"for samples whose L * mean(y_pred) - 1 is {WITHIN}, all within NORM_TOLERANCE = "
        f"{NORM_TOLERANCE}, `{LOSS}` gives {np.round(got, 5).tolist()}, but the physics "
        f"term should be 0 there, leaving the MSE {np.round(expected, 5).tolist()}: "
        "subtract the tolerance inside the ReLU")


@pytest.mark.points(1)
def test_loss_penalises_the_deviation_beyond(oracle, week):
    """Beyond the tolerance, adds a penalty that grows one to one with |L * mean(y_pred) - 1|"""
    y_true, y_pred = predictions_with(BEYOND, 12)
    penalty = one_at_a_time(oracle, y_true, y_pred) - mse(y_true, y_pred)
    offset = penalty - np.abs(BEYOND)  # -NORM_TOLERANCE for the formula
    tolerance = week.thresholds["loss_tolerance"]
    assert np.all(penalty > 0) and np.ptp(offset) <= 2 * tolerance, (
        f"for samples whose L * mean(y_pred) - 1 is {BEYOND}, `{LOSS}` adds "
        f"{np.round(penalty, 5).tolist()} to the MSE; the physics term should grow with "
        "|L * mean(y_pred) - 1| one to one, above and below 1: "
        "ReLU(|L * mean(y_pred) - 1| - NORM_TOLERANCE)")


@pytest.mark.points(1)
def test_loss_is_computed_per_sample(oracle, week):
    """Each sample's loss depends on that sample only"""
    y_true, y_pred = predictions_with(MIXED, 13)
    alone = one_at_a_time(oracle, y_true, y_pred)
    together = losses(oracle, y_true, y_pred)
    if together.size == 1:  # a loss that returns the batch's mean
        alone = alone.mean(keepdims=True)
    assert np.max(np.abs(together - alone)) <= week.thresholds["loss_tolerance"], (
        f"`{LOSS}` gives {np.round(together, 5).tolist()} for a batch of samples whose "
        f"L * mean(y_pred) - 1 is {MIXED}, but {np.round(alone, 5).tolist()} when they "
        "come one at a time: take the MSE and the mean over each sample's 200 values "
        "(axis=-1), not over the whole batch")


@pytest.mark.points(1)
def test_trained_with_the_loss(oracle, week):
    """physics_model is the baseline network trained with physics_guided_loss"""
    description = oracle.describe(MODEL)
    problem = network_problem(description, MODEL)
    assert problem is None and not regularisers(description), (
        f"`{MODEL}` is not the given network without regularisers; run the given cell unchanged")
    assert LOSS in str(description.get("loss")), (
        f"`{MODEL}` was compiled with the loss {description.get('loss')}, not `{LOSS}`")
    steps, wanted = description.get("iterations"), week.thresholds["training_steps"]
    assert steps == wanted, (
        f"`{MODEL}` made {steps} training steps; the given training cell makes {wanted}")


@pytest.mark.points(1)
def test_overfits_less(gap_against_baseline):
    """Over-fits less: its gap between training and fresh data is at most half the baseline's"""
    found = gap_against_baseline(MODEL, "physics-guided")
    assert found.ratio <= found.wanted, (
        f"trained with `{LOSS}`, the network's MSE on fresh samples exceeds its training MSE "
        f"by {found.gap:.5f}, {found.ratio:.0%} of the baseline's {found.baseline_gap:.5f} (at "
        f"most {found.wanted:.0%} is needed)")


@pytest.mark.points(1)
def test_improves_on_fresh_data(improvement_against_baseline):
    """Its loss on fresh data is lower than the baseline's"""
    found = improvement_against_baseline(MODEL, "physics-guided",
                                         "physics_min_improvement")
    assert found.percent >= found.wanted, (
        f"on fresh samples the network trained with `{LOSS}` has an MSE of {found.fresh:.5f} "
        f"against the baseline's {found.baseline_fresh:.5f}, {found.percent:.2f} % better; at "
        f"least {found.wanted} % is needed")
