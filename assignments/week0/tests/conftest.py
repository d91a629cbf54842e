"""Trusted helpers for week 0's checks.

Every figure is computed here: the grader's own forward pass (``checks.dense_forward``)
and cost, central finite differences of them, the Adam rule, the gates and the split
of the digits. The student's definitions run in clean rooms and only ever receive
arrays chosen here; the trained parameters they return are measured here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from autograder.grading import checks

# Seeds the notebook never sees.
NETWORK_SEED = 52_781
GATE_SEED = 6_113
DIGITS_SEED = 90_412_337
TRAIN_ROWS = 1_200

# What answers may not use (README: week 0 is NumPy only).
BANNED_MODULES = frozenset({"tensorflow", "keras", "jax", "torch", "autograd", "sklearn",
                            "scipy", "pandas"})
# Attribute names of automatic differentiation (the modules themselves are caught above);
# kept short, so that a student's own method names (backward, grad) stay allowed.
BANNED_NAMES = frozenset({"GradientTape", "value_and_grad"})


@pytest.fixture(autouse=True)
def numpy_only(request, answer_source, week):
    """Before any check of a question: the answers it runs (its own and those its room
    uses) reach for no automatic differentiation or ready-made estimator."""
    marker = request.node.get_closest_marker("question")
    if marker is None:
        return
    question = marker.args[0]
    room = week.rooms.get(question)
    found = []
    for q in [*(room.uses if room else ()), question]:
        found += checks.banned_uses(answer_source(q), modules=BANNED_MODULES,
                                    names=BANNED_NAMES, question=q)
    assert not found, (
        "this week is NumPy only: " + "; ".join(found[:5]) + ". Write the network, its "
        "gradients and the schedulers with NumPy (no automatic differentiation, no "
        "scikit-learn estimators)")


# -- the grader's own network ---------------------------------------------------------
def cost(outputs: np.ndarray, targets: np.ndarray, kind: str) -> float:
    n = len(outputs)
    if kind == "cross_entropy":
        return float(-np.sum(targets * np.log(outputs)) / n)
    return float(np.sum((outputs - targets) ** 2) / (2 * n))


def random_parameters(sizes, rng, scale=1.0) -> list[np.ndarray]:
    found = []
    for m, k in zip(sizes[:-1], sizes[1:]):
        found += [rng.normal(0, scale / np.sqrt(m), size=(m, k)), rng.normal(0, 0.5, size=k)]
    return found


def finite_differences(parameters, activations, x, y, kind, epsilon=1e-6):
    """Central differences of the grader's cost with respect to every parameter."""
    found = []
    for array in parameters:
        gradient = np.zeros_like(array)
        for index in np.ndindex(array.shape):
            kept = array[index]
            array[index] = kept + epsilon
            up = cost(checks.dense_forward(parameters, activations, x), y, kind)
            array[index] = kept - epsilon
            down = cost(checks.dense_forward(parameters, activations, x), y, kind)
            array[index] = kept
            gradient[index] = (up - down) / (2 * epsilon)
        found.append(gradient)
    return found


@dataclass(frozen=True)
class Problem:
    """A network, inputs and targets of the grader's choosing."""
    sizes: list
    activations: list
    cost: str
    x: np.ndarray
    y: np.ndarray
    parameters: list

    @property
    def kwargs(self) -> dict:
        return {"sizes": self.sizes, "activations": self.activations, "cost": self.cost}

    def describe(self) -> str:
        return (f"a network with sizes {self.sizes}, activations {self.activations} and "
                f"cost {self.cost!r}")


def problem(sizes, activations, kind, seed, samples=7) -> Problem:
    rng = np.random.default_rng(NETWORK_SEED + seed)
    x = rng.normal(0, 1.0, size=(samples, sizes[0]))
    if kind == "cross_entropy":
        y = rng.dirichlet(np.ones(sizes[-1]), size=samples)  # rows of probabilities
    else:
        y = rng.normal(0, 1.0, size=(samples, sizes[-1]))
    return Problem(list(sizes), list(activations), kind, x, y,
                   random_parameters(sizes, rng, scale=1.5))


# -- the digits -----------------------------------------------------------------------
@dataclass(frozen=True)
class DigitsSplit:
    x_train: np.ndarray   # pixels in [0, 1], columns in a secret order
    y_train: np.ndarray   # one-hot, classes in a secret order
    x_test: np.ndarray
    labels_test: np.ndarray  # in the same secret class order


@pytest.fixture(scope="session")
def digits() -> DigitsSplit:
    from sklearn.datasets import load_digits

    data = load_digits()
    rng = np.random.default_rng(DIGITS_SEED)
    rows = rng.permutation(len(data.data))
    pixels = rng.permutation(data.data.shape[1])
    classes = rng.permutation(10)  # digit d is class classes[d]
    x = data.data[:, pixels] / 16.0
    labels = classes[data.target]
    train, test = rows[:TRAIN_ROWS], rows[TRAIN_ROWS:]
    return DigitsSplit(x[train], np.eye(10)[labels[train]], x[test], labels[test])
