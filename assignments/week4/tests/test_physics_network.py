"""Hidden checks for exercise 3: the physics network for a thrown ball.

g and v0 are read off the network's predictions here (a least-squares fit of
v0 t - g t^2 / 2 at times up to twice the measured range), so they are what the
network computes, not what it reports. The notebook's given `fit_and_report`
then trains a fresh ProjectileNet on throws made here under other gravities:
a network with g or v0 written into it cannot recover those.
"""

import pytest
from conftest import OTHER_THROWS, fit_law, throws

from autograder.grading import checks

pytestmark = pytest.mark.question("q3")
NAME, CLASS = "projectile_model", "ProjectileNet"
G_TRUE, V0_TRUE = 9.7, 20.0


@pytest.fixture(scope="module")
def learned(oracle, query_times):
    heights = oracle.predict(NAME, query_times, outputs=query_times.shape[1])
    return fit_law(query_times, heights)


def law_message(law, week, who):
    if law.rms_residual > week.thresholds["law_tolerance"]:
        return (f"{who} do not follow x(t) = v0 t - g t^2 / 2: they stray from the best such "
                f"curve by {law.rms_residual:.3g} m (RMS) at times from 0 to 10 s; `call` "
                "should return theta_v0 * t - theta_g * t**2 / 2")
    return None


@pytest.mark.points(1)
def test_is_a_model_with_two_sub_networks(oracle, answer_source):
    """ProjectileNet subclasses keras.Model and has two sub-networks"""
    description = oracle.describe(NAME)
    assert description["type"] == CLASS and checks.defined_in_notebook(description) and \
        checks.is_subclass(description, checks.KERAS_MODEL), (
            f"`{NAME}` is a {description['type']}; it should be a {CLASS}, your subclass of "
            "keras.Model")
    tree = checks.parse(answer_source("q3"), "q3")
    classes = [c for c in checks.subclasses(tree, "Model") if c.name == CLASS]
    wanted = {"__init__", "call", "physical_parameters"}
    assert classes and wanted <= checks.methods(classes[0]), (
        f"define `class {CLASS}(keras.Model)` with the methods {sorted(wanted)}")
    trainable = [layer for layer in description.get("layers", []) if layer.get("params")]
    assert len(trainable) >= 2, (
        f"`{NAME}` has {len(trainable)} part(s) with weights "
        f"({checks.layer_summary(description)}); create two sub-networks in __init__, one "
        "for theta_g and one for theta_v0")


@pytest.mark.points(1)
def test_predictions_follow_the_law(oracle, week, learned, measure):
    """Its predictions are v0 t - g t^2 / 2, also beyond the measured times"""
    measure("RMS distance from the law (m)", learned.rms_residual,
            threshold=week.thresholds["law_tolerance"],
            text=f"predictions at 0-10 s stray {learned.rms_residual:.2g} m (RMS) from "
                 f"x(t) = {learned.v0:.4f} t - {learned.g:.4f} t^2 / 2")
    problem = law_message(learned, week, f"the predictions of `{NAME}`")
    assert problem is None, problem


@pytest.mark.parametrize("quantity", ["g", "v0"])
@pytest.mark.points(1)
def test_learns_the_true_value(quantity, oracle, week, learned, measure):
    """Learns {quantity} of the measured throws"""
    assert law_message(learned, week, f"the predictions of `{NAME}`") is None, (
        f"the predictions of `{NAME}` do not follow the law (see the check above), so "
        f"{quantity} cannot be read off them")
    true = {"g": G_TRUE, "v0": V0_TRUE}[quantity]
    value = {"g": learned.g, "v0": learned.v0}[quantity]
    tolerance = week.thresholds[f"{quantity}_tolerance"]
    measure(f"learned {quantity}", value, threshold=tolerance,
            text=f"learned {quantity} = {value:.4f} (true {true}, tolerance {tolerance})")
    assert abs(value - true) <= tolerance, (
        f"`{NAME}` predicts heights with {quantity} = {value:.4f}; the throws were made with "
        f"{quantity} = {true} (within {tolerance} is needed). Start the sub-networks near "
        "values of the right size")
    reported = oracle.number(f"{quantity}_learned")
    assert abs(reported - value) <= 1e-3 * max(1.0, abs(value)), (
        f"physical_parameters() reports {quantity} = {reported:.4f}, but the network's "
        f"predictions use {quantity} = {value:.4f}")


@pytest.mark.parametrize("planet", sorted(OTHER_THROWS))
@pytest.mark.points(1)
def test_retrained_recovers_other_values(planet, oracle, week, query_times, measure):
    """Retrained on throws made elsewhere, a fresh ProjectileNet recovers their g and v0"""
    g, v0, seed = OTHER_THROWS[planet]
    t, heights = throws(g, v0, 10_000, seed)
    reply = oracle.call("fit_and_report", t[:8_000], heights[:8_000], query_times)
    assert len(reply) == 2 and reply[0].shape == (2,), (
        "`fit_and_report` (given code) returned something else than (g, v0) and predictions")
    law = fit_law(query_times, reply[1].reshape(query_times.shape))
    measure(f"retrained g ({planet})", law.g,
            text=f"throws with g = {g}, v0 = {v0}: a fresh {CLASS} learned g = {law.g:.4f}, "
                 f"v0 = {law.v0:.4f}")
    problem = law_message(law, week, f"after retraining, the predictions of a fresh {CLASS}")
    assert problem is None, problem
    g_tolerance, v0_tolerance = (week.thresholds["retrain_g_tolerance"],
                                 week.thresholds["retrain_v0_tolerance"])
    assert abs(law.g - g) <= g_tolerance and abs(law.v0 - v0) <= v0_tolerance, (
        f"trained on throws made with g = {g} and v0 = {v0}, a fresh {CLASS} learned "
        f"g = {law.g:.4f} and v0 = {law.v0:.4f} (within {g_tolerance} and {v0_tolerance} "
        "is needed): g and v0 must come from the two trainable sub-networks, not be written "
        "into the class")
    reported_g, reported_v0 = reply[0]
    assert abs(reported_g - law.g) <= 1e-3 * max(1.0, abs(law.g)) and \
        abs(reported_v0 - law.v0) <= 1e-3 * max(1.0, abs(law.v0)), (
            f"physical_parameters() reports g = {reported_g:.4f}, v0 = {reported_v0:.4f}, but "
            f"the network's predictions use g = {law.g:.4f}, v0 = {law.v0:.4f}")
