"""Public checks for week 0: students run these with `autograder check week0.ipynb`.

They only check shapes; the hidden checks compare the forward pass and the
gradients with the grader's own, the schedulers with their rules, and train
the networks on gates and digits the grader draws.
"""

import numpy as np
import pytest


def parameters(sizes):
    rng = np.random.default_rng(0)
    return [p for m, k in zip(sizes[:-1], sizes[1:])
            for p in (rng.normal(size=(m, k)), rng.normal(size=k))]


@pytest.mark.question("q1")
@pytest.mark.points(1)
def test_network_shapes(oracle):
    """forward returns one row per sample; gradients have the parameters' shapes"""
    sizes, activations = [3, 4, 2], ["tanh", "sigmoid"]
    x, y = np.linspace(-1, 1, 15).reshape(5, 3), np.full((5, 2), 0.5)
    params = parameters(sizes)
    outputs = oracle.call("network_forward", x, *params, sizes=sizes, activations=activations,
                          cost="mse")[0]
    assert outputs.shape == (5, 2), (
        f"`forward` returns shape {outputs.shape} for 5 samples of a [3, 4, 2] network; "
        "expected (5, 2)")
    gradients = oracle.call("network_gradients", x, y, *params, sizes=sizes,
                            activations=activations, cost="mse")
    assert [g.shape for g in gradients] == [p.shape for p in params], (
        f"`gradients` gives shapes {[g.shape for g in gradients]} (as [dW0, db0, dW1, db1]); "
        f"expected {[p.shape for p in params]}")


@pytest.mark.question("q2")
@pytest.mark.points(1)
def test_adam_shapes(oracle):
    """Adam's update returns an array of the gradient's shape"""
    gradients = np.linspace(-1, 1, 12).reshape(2, 3, 2)
    steps = oracle.call("adam_steps", gradients, eta=0.01)[0]
    assert steps.shape == (2, 3, 2), (
        f"two Adam updates with gradients of shape (3, 2) returned changes of total shape "
        f"{steps.shape}; expected (2, 3, 2)")
