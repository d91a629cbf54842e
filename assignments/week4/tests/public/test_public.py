"""Public checks for week 4: students run these with `autograder check week4.ipynb`.

They only check that each answer exists and has the right shape; the hidden
checks measure over-fitting on fresh data, test the loss against its formula,
and retrain the physics network on throws made elsewhere.
"""

import numpy as np
import pytest


@pytest.mark.question("q1")
@pytest.mark.points(1)
def test_regularised_model_maps_200_positions_to_200_densities(oracle):
    """regularised_model maps 200 positions to 200 densities"""
    inputs = np.linspace(0, 2, 600, dtype=np.float32).reshape(3, 200)
    densities = oracle.predict("regularised_model", inputs)
    assert densities.shape == (3, 200), (
        f"`regularised_model` gives an array of shape {densities.shape} for 3 samples; "
        "expected (3, 200)")


@pytest.mark.question("q2")
@pytest.mark.points(1)
def test_physics_guided_loss_gives_one_value_per_sample(oracle):
    """physics_guided_loss(y_true, y_pred) gives one finite loss per sample"""
    y_true = np.full((4, 200), 0.5, dtype=np.float32)
    y_pred = np.linspace(0, 1, 800, dtype=np.float32).reshape(4, 200)
    loss = oracle.call("physics_guided_loss", y_true, y_pred)[0]
    assert loss.shape == (4,), (
        f"`physics_guided_loss` returned shape {loss.shape} for 4 samples; expected (4,): "
        "take the means over the last axis only")


@pytest.mark.question("q3")
@pytest.mark.points(1)
def test_projectile_model_maps_times_to_heights(oracle):
    """projectile_model maps a batch of 100 times to 100 heights"""
    times = np.linspace(0, 5, 200, dtype=np.float32).reshape(2, 100)
    heights = oracle.predict("projectile_model", times)
    assert heights.shape == (2, 100), (
        f"`projectile_model` gives an array of shape {heights.shape} for 2 x 100 times; "
        "expected (2, 100)")
