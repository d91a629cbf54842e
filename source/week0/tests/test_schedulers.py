"""Hidden checks for exercise 2: the schedulers, step by step.

Gradients chosen here go to one scheduler in a row (the given constant_steps and
adam_steps); the changes it returns are compared with the rules computed here.
Consecutive steps catch a bias correction that does not count the steps.
"""

import numpy as np
import pytest

pytestmark = pytest.mark.question("q2")
SHAPE = (3, 2)


def gradients(count: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.normal(0, 1, size=(count, *SHAPE)) * rng.uniform(0.01, 5, size=(count, 1, 1))


def adam_rule(grads, eta, rho1=0.9, rho2=0.999, delta=1e-8, reset_after=-1):
    m = v = np.zeros(SHAPE)
    t, steps = 0, []
    for index, g in enumerate(grads):
        if index == reset_after:
            m, v, t = np.zeros(SHAPE), np.zeros(SHAPE), 0
        t += 1
        m = rho1 * m + (1 - rho1) * g
        v = rho2 * v + (1 - rho2) * g ** 2
        steps.append(eta * (m / (1 - rho1 ** t)) / (np.sqrt(v / (1 - rho2 ** t)) + delta))
    return np.array(steps)


def returned_steps(oracle, name, grads, **kwargs):
    steps = oracle.call(name, grads, **kwargs)[0]
    assert steps.shape == grads.shape, (
        f"one scheduler given {len(grads)} gradients of shape {SHAPE} returned changes of "
        f"total shape {steps.shape}; `update` must return an array of the gradient's shape")
    return steps


def rounded(array) -> list:
    return np.round(np.asarray(array, dtype=float).ravel()[:3], 6).tolist()


@pytest.mark.points(1)
def test_constant(oracle, week):
    """Constant(eta) returns eta times the gradient"""
    grads = gradients(3, 1)
    steps = returned_steps(oracle, "constant_steps", grads, eta=0.3)
    assert np.allclose(steps, 0.3 * grads, rtol=0, atol=week.thresholds["adam_tolerance"]), (
        f"for eta = 0.3 and a gradient starting {rounded(grads[0])}, `Constant.update` "
        f"returned {rounded(steps[0])}; the change is eta * gradient")


@pytest.mark.points(1)
def test_adam_first_step(oracle, week):
    """Adam's first step follows the rule, bias correction included"""
    grads = gradients(1, 2)
    for eta in (0.001, 0.05):
        steps = returned_steps(oracle, "adam_steps", grads, eta=eta)
        expected = adam_rule(grads, eta)
        assert np.allclose(steps, expected, rtol=1e-7, atol=week.thresholds["adam_tolerance"]), (
            f"for eta = {eta}, Adam's first change for a gradient starting {rounded(grads[0])} "
            f"is {rounded(steps[0])}, but the rule gives {rounded(expected[0])} (about eta "
            "times the gradient's sign): divide m by 1 - rho1^t and v by 1 - rho2^t, with "
            "t = 1 at the first step, and take eta * m_hat / (sqrt(v_hat) + delta) with the "
            "defaults rho1 = 0.9, rho2 = 0.999, delta = 1e-8")


@pytest.mark.points(1)
def test_adam_consecutive_steps(oracle, week):
    """Adam's later steps count t = 2, 3, ... and reset starts afresh"""
    grads = gradients(6, 3)
    steps = returned_steps(oracle, "adam_steps", grads, eta=0.01)
    expected = adam_rule(grads, 0.01)
    tolerance = week.thresholds["adam_tolerance"]
    close = [bool(np.allclose(s, e, rtol=1e-7, atol=tolerance)) for s, e in zip(steps, expected)]
    assert all(close), (
        f"one Adam given six gradients in a row returns the right change for steps "
        f"{[t + 1 for t, ok in enumerate(close) if ok]} but not for steps "
        f"{[t + 1 for t, ok in enumerate(close) if not ok]} (step {close.index(False) + 1}: "
        f"{rounded(steps[close.index(False)])} instead of "
        f"{rounded(expected[close.index(False)])}): keep m and v from step to step and count "
        "the steps, t = 1, 2, 3, ..., in the bias correction 1 - rho^t")
    steps = returned_steps(oracle, "adam_steps", grads, eta=0.01, reset_after=3)
    expected = adam_rule(grads, 0.01, reset_after=3)
    assert np.allclose(steps, expected, rtol=1e-7, atol=tolerance), (
        "after `reset()`, Adam's next changes are not those of a new Adam (step 4 gives "
        f"{rounded(steps[3])} instead of {rounded(expected[3])}): reset sets m, v and t "
        "back to zero")
