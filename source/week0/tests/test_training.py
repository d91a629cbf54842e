"""Hidden checks for exercise 3: the training loop.

The given fit_gate and fit_digits run train (with the answers to exercises 1 and 2)
in the clean room, on data drawn here: the four rows of a gate in an order drawn
here, XOR and XNOR; and the digits split with a secret seed, their classes and
pixels in a secret order. The trained networks are measured here by the grader's
own forward pass, from the parameters they return.
"""

import numpy as np
import pytest
from conftest import GATE_SEED

from autograder.grading import checks

pytestmark = pytest.mark.question("q3")
GATE_SIZES, GATE_ACTIVATIONS = [2, 8, 1], ["tanh", "sigmoid"]
DIGITS_SIZES, DIGITS_ACTIVATIONS = [64, 32, 10], ["tanh", "softmax"]
GATES = {"XOR": [0, 1, 1, 0], "XNOR": [1, 0, 0, 1]}
INPUTS = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)


def trained(parameters, sizes, what):
    shapes = [p.shape for p in parameters]
    wanted = [s for m, k in zip(sizes[:-1], sizes[1:]) for s in ((m, k), (k,))]
    assert shapes == wanted, (
        f"{what} returned parameters of shapes {shapes}; the network {sizes} has {wanted}: "
        "`train` must update network.weights and network.biases in place")
    assert all(np.all(np.isfinite(p)) for p in parameters), (
        f"{what} returned parameters that are not finite: training diverged")
    return parameters


@pytest.mark.points(1)
def test_learns_gates(oracle):
    """Learns the XOR and XNOR gates: all four outputs on the right side of 0.5"""
    rng = np.random.default_rng(GATE_SEED)
    for offset, (gate, truth) in enumerate(GATES.items()):
        order = rng.permutation(4)
        x, y = INPUTS[order], np.array(truth, dtype=float)[order][:, None]
        parameters = trained(oracle.call("fit_gate", x, y, seed=GATE_SEED + offset),
                             GATE_SIZES, "fit_gate")
        outputs = checks.dense_forward(parameters, GATE_ACTIVATIONS, x).ravel()
        right = (outputs > 0.5) == (y.ravel() > 0.5)
        assert right.all(), (
            f"trained on the {gate} gate, the network gives {np.round(outputs, 3).tolist()} "
            f"for the inputs {x.astype(int).tolist()}, whose targets are "
            f"{y.ravel().astype(int).tolist()}: {int((~right).sum())} of 4 on the wrong side "
            "of 0.5. Does `train` subtract each scheduler's change, batch after batch, every "
            "epoch?")


@pytest.mark.points(2)
def test_learns_digits(oracle, digits, week, measure):
    """Learns the digits: accuracy on digits it was not trained on"""
    parameters = trained(oracle.call("fit_digits", digits.x_train, digits.y_train, seed=3),
                         DIGITS_SIZES, "fit_digits")
    outputs = checks.dense_forward(parameters, DIGITS_ACTIVATIONS, digits.x_test)
    accuracy = checks.accuracy(outputs, digits.labels_test)
    wanted = week.thresholds["digits_min_accuracy"]
    measure("digits test accuracy", accuracy, threshold=wanted,
            text=f"{accuracy:.1%} of {len(digits.labels_test)} held-out digits "
                 f"(needs {wanted:.0%})")
    assert accuracy >= wanted, (
        f"trained by the given fit_digits on {len(digits.x_train)} digits drawn by the grader, "
        f"the network classifies {accuracy:.1%} of the other {len(digits.labels_test)} right; "
        f"at least {wanted:.0%} is needed. Check that `train` goes through every batch of "
        "every epoch and subtracts the changes of one scheduler per parameter array")
