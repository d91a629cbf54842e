"""Hidden checks for exercise 1: the network's forward pass and its gradients.

The grader sends networks, inputs and targets of its own (through the given
wrappers) and compares the answers with its own forward pass and with central
finite differences of its own cost.
"""

import numpy as np
import pytest
from conftest import finite_differences, problem

from autograder.grading import checks

pytestmark = pytest.mark.question("q1")

# (sizes, activations, cost): every activation, hidden and at the output.
FORWARD_CASES = [([3, 5, 4, 2], ["sigmoid", "tanh", "linear"], "mse"),
                 ([4, 6, 3], ["relu", "softmax"], "cross_entropy"),
                 ([2, 3, 3, 1], ["tanh", "relu", "sigmoid"], "mse")]


def layer_name(index: int, sizes, activations) -> str:
    layer = index // 2
    kind = "weights" if index % 2 == 0 else "biases"
    return (f"the {kind} of layer {layer + 1} ({sizes[layer]} -> {sizes[layer + 1]} units, "
            f"{activations[layer]!r})")


@pytest.mark.points(1)
def test_forward_matches(oracle, week):
    """forward computes the network from its weights: its own initial ones and others"""
    tolerance = week.thresholds["forward_tolerance"]
    for seed, (sizes, activations, kind) in enumerate(FORWARD_CASES):
        case = problem(sizes, activations, kind, seed)
        initial = oracle.call("network_initial", sizes=sizes, activations=activations,
                              cost=kind, seed=seed)
        shapes = [p.shape for p in initial]
        wanted = [s for m, k in zip(sizes[:-1], sizes[1:]) for s in ((m, k), (k,))]
        assert shapes == wanted, (
            f"for sizes {sizes}, `Network` stores weights and biases of shapes {shapes} "
            f"(as [W0, b0, W1, b1, ...]); expected {wanted}: weights (sizes[l], sizes[l+1]), "
            "biases (sizes[l+1],)")
        assert all(np.all(np.isfinite(p)) for p in initial) and any(
            np.any(p != 0) for p in initial[0::2]), (
            f"the initial weights for sizes {sizes} are all zero or not finite: initialise "
            "them at random")
        for name, parameters in (("its initial", initial), ("the grader's", case.parameters)):
            got = oracle.call("network_forward", case.x, *parameters, **case.kwargs)[0]
            expected = checks.dense_forward(parameters, activations, case.x)
            assert got.shape == expected.shape, (
                f"for {case.describe()} and {len(case.x)} samples, `forward` returns shape "
                f"{got.shape}; expected {expected.shape} (one row per sample)")
            error = float(np.max(np.abs(got - expected)))
            assert error <= tolerance, (
                f"for {case.describe()} with {name} weights, `forward` differs from "
                f"a_l = f_l(a_(l-1) W_l + b_l) by up to {error:.3g}: check the order "
                "x @ W + b and each activation (softmax over each row)")


def compare_gradients(oracle, week, case):
    got = oracle.call("network_gradients", case.x, case.y, *case.parameters, **case.kwargs)
    shapes = [p.shape for p in case.parameters]
    assert [g.shape for g in got] == shapes, (
        f"for {case.describe()}, `gradients` gives arrays of shapes {[g.shape for g in got]} "
        f"(as [dW0, db0, dW1, db1, ...]); expected the parameters' shapes {shapes}")
    expected = finite_differences([p.copy() for p in case.parameters], case.activations,
                                  case.x, case.y, case.cost)
    tolerance = week.thresholds["gradient_tolerance"]
    relative = week.thresholds["gradient_relative_tolerance"]
    wrong = [i for i, (g, e) in enumerate(zip(got, expected))
             if np.max(np.abs(g - e)) > tolerance + relative * np.max(np.abs(e))]
    if not wrong:
        return
    flat_got = np.concatenate([g.ravel() for g in got])
    flat_expected = np.concatenate([e.ravel() for e in expected])
    factor = float(flat_got @ flat_expected / (flat_expected @ flat_expected))
    if abs(factor - 1) > 1e-3 and np.allclose(flat_got, factor * flat_expected,
                                              atol=tolerance, rtol=relative):
        raise AssertionError(
            f"for {case.describe()}, every gradient is {factor:.4g} times the finite "
            "differences of the cost: check the cost's normalisation (the mean over the "
            "n samples only; for 'mse' C = sum over samples and outputs of (a - y)^2 / (2n))")
    last = max(wrong)
    error = float(np.max(np.abs(got[last] - expected[last])))
    after = "the layers after it agree, so " if last < len(got) - 2 else ""
    raise AssertionError(
        f"for {case.describe()}, the gradient of {layer_name(last, case.sizes, case.activations)}"
        f" differs from central finite differences of the cost by up to {error:.3g} (wrong: "
        f"{', '.join(layer_name(i, case.sizes, case.activations) for i in wrong)}); "
        f"{after}look at the error as it reaches that layer: the derivative of its activation "
        f"{case.activations[last // 2]!r}, and the products with the layer's input and weights")


@pytest.mark.points(1)
def test_gradients_sigmoid_mse(oracle, week):
    """gradients match finite differences: sigmoid layers, mean squared error"""
    compare_gradients(oracle, week, problem([3, 5, 4, 2], ["sigmoid"] * 3, "mse", 10))


@pytest.mark.points(1)
def test_gradients_tanh_relu_linear_mse(oracle, week):
    """gradients match finite differences: tanh, relu and linear layers, mean squared error"""
    compare_gradients(oracle, week, problem([3, 6, 5, 2], ["tanh", "relu", "linear"], "mse", 11))


@pytest.mark.points(1)
def test_gradients_softmax_cross_entropy(oracle, week):
    """gradients match finite differences: softmax output with the cross-entropy"""
    compare_gradients(oracle, week,
                      problem([4, 6, 5, 3], ["relu", "tanh", "softmax"], "cross_entropy", 12))
