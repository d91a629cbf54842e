"""Trusted data and helpers for week 5's checks.

Every function of the answers runs in a clean room, called through the given
grader_* wrappers with inputs made here. The flowers evolution is scored on are
split here with a seed the notebook never sees, their classes and measurements
permuted, and the returned genome is scored with the forward pass below, not the
notebook's. The notebook's own record is checked against its training data,
regenerated here from the given code's constants.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from autograder.grading import checks

# The given code's layout and constants (cells `setup`, `network` and `q3_train`).
INPUTS, HIDDEN, CLASSES = 4, 8, 3
GENES = INPUTS * HIDDEN + HIDDEN + HIDDEN * CLASSES + CLASSES
GENERATIONS, POPULATION = 150, 60

# What the clean room's evolution gets: three splits the notebook never sees. With the
# reference (tournament of 3, uniform crossover, rate 0.1, scale 0.3, two elites) the mean
# held-out accuracy over the three was 0.956 with the secret seeds below and 0.928-0.978
# with twelve other seed sets; evolution that never replaces its population, 0.57-0.77.
SPLIT_SEEDS = (730_119, 41_207_553, 9_800_071)
EVOLVE_SEEDS = (61_342, 7_719, 402_285)
HELD_OUT_PER_CLASS = 20
GRADER_GENERATIONS, GRADER_SIZE = 120, 50
PROBE_SEED = 5_150_417  # genomes and populations the q1 and q2 checks send

# Gradient machinery the answers may not reach (README, week 5).
BANNED_MODULES = frozenset({"tensorflow", "keras", "jax", "torch", "autograd", "sklearn",
                            "scipy.optimize"})
BANNED_NAMES = frozenset({"GradientTape", "gradient", "gradients", "grad", "value_and_grad",
                          "jacobian", "backward", "minimize", "minimize_scalar",
                          "least_squares", "curve_fit", "optimizers", "optimizer", "fmin"})


# -- the grader's own network ----------------------------------------------------------
def pieces(genome: np.ndarray):
    genome = np.asarray(genome, dtype=np.float64).reshape(GENES)
    cuts = np.cumsum([INPUTS * HIDDEN, HIDDEN, HIDDEN * CLASSES])
    w1, b1, w2, b2 = np.split(genome, cuts)
    return w1.reshape(INPUTS, HIDDEN), b1, w2.reshape(HIDDEN, CLASSES), b2


def probabilities(genome: np.ndarray, x: np.ndarray) -> np.ndarray:
    w1, b1, w2, b2 = pieces(genome)
    logits = np.maximum(x @ w1 + b1, 0.0) @ w2 + b2
    logits -= logits.max(axis=1, keepdims=True)
    exps = np.exp(logits)
    return exps / exps.sum(axis=1, keepdims=True)


def own_accuracy(genome: np.ndarray, x: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(probabilities(genome, x).argmax(axis=1) == labels))


def own_fitness(genome: np.ndarray, x: np.ndarray, labels: np.ndarray) -> float:
    right = probabilities(genome, x)[np.arange(len(labels)), labels]
    return float(np.mean(np.log(np.maximum(right, 1e-12))))


# -- data --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Split:
    x_train: np.ndarray
    labels_train: np.ndarray
    x_held: np.ndarray
    labels_held: np.ndarray


def grader_split(seed: int) -> Split:
    """A stratified split of the 150 flowers (20 per class held out), standardised on its
    training part, the classes renamed and the measurements reordered at random."""
    rng = np.random.default_rng(seed)
    iris = load_iris()
    held = np.concatenate([rng.permutation(np.flatnonzero(iris.target == c))[:HELD_OUT_PER_CLASS]
                           for c in range(CLASSES)])
    train = rng.permutation(np.setdiff1d(np.arange(len(iris.target)), held))
    features, classes = rng.permutation(INPUTS), rng.permutation(CLASSES)
    x = iris.data[:, features]
    mean, std = x[train].mean(axis=0), x[train].std(axis=0)
    x = (x - mean) / std
    labels = classes[iris.target]
    return Split(x[train], labels[train], x[held], labels[held])


@pytest.fixture(scope="session")
def splits() -> list[Split]:
    return [grader_split(seed) for seed in SPLIT_SEEDS]


@pytest.fixture(scope="session")
def notebook_training_data() -> tuple[np.ndarray, np.ndarray]:
    """X_train, labels_train as the given `setup` cell makes them."""
    iris = load_iris()
    x_train, _, labels_train, _ = train_test_split(
        iris.data, iris.target, test_size=0.2, random_state=42, stratify=iris.target)
    return StandardScaler().fit(x_train).transform(x_train), labels_train


@pytest.fixture(scope="session")
def probe_rng():
    return np.random.default_rng(PROBE_SEED)


# -- no gradients --------------------------------------------------------------------------
def gradient_uses(source: str, question: str) -> list[str]:
    """checks.banned_uses, the banned names also where they are imported or used by their
    bare name (``from numpy import gradient``)."""
    return checks.banned_uses(source, modules=BANNED_MODULES, names=BANNED_NAMES,
                              question=question, bare_names=True)


@pytest.fixture
def without_gradients(request, answer_source):
    """Every hidden check first reads its question's answer: no gradient machinery."""
    question = request.node.get_closest_marker("question").args[0]
    found = gradient_uses(answer_source(question), question)
    assert not found, (
        "this week's answers may not use gradient machinery or reach for it indirectly "
        "(Keras/TensorFlow, autograd, JAX, PyTorch, scikit-learn, scipy.optimize, "
        "numerical gradients, __import__/eval/getattr with computed names): "
        + "; ".join(found[:3]))
