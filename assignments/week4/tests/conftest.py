"""Trusted data for week 4's checks.

The notebook's data are regenerated here from the given code's constants, and
the over-fitting is measured on fresh samples from the same generator with a
seed the kernel never sees. The projectile network is retrained on throws made
here under other gravities. Losses are computed here from predictions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from autograder.grading import checks

# The given code's constants (cells `well_data` and `projectile_data` of week4.ipynb).
L, N_LEVEL, POINTS, SAMPLES, DATA_SEED = 2.0, 10, 200, 2_000, 2024
NORM_TOLERANCE = 0.01
FIT_FRACTION = 0.8  # train_well_model's validation_split=0.2: Keras fits on the first 80 %

# Seeds and planets the notebook never sees.
FRESH_SEED, FRESH_SAMPLES = 730_214_989, 2_000
OTHER_THROWS = {"mars": (3.7, 12.0, 55_102), "jupiter": (24.8, 8.0, 91_877)}
QUERY_SEED = 4_410

# -- the infinite well (exercises 1 and 2) ------------------------------------------
def well_samples(samples: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    # The same arithmetic as the notebook's well_samples (float32 throughout).
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, L, size=(samples, POINTS)).astype("float32")
    return x, ((2 / L) * np.sin(N_LEVEL * np.pi * x / L) ** 2).astype("float32")


@dataclass(frozen=True)
class WellData:
    x_fit: np.ndarray    # the samples the models were fitted on
    y_fit: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    x_fresh: np.ndarray  # same generator, a seed the kernel does not know
    y_fresh: np.ndarray


@pytest.fixture(scope="session")
def well() -> WellData:
    x, y = well_samples(SAMPLES, DATA_SEED)
    split = int(0.8 * SAMPLES)
    fit = int(split * FIT_FRACTION)
    x_fresh, y_fresh = well_samples(FRESH_SAMPLES, FRESH_SEED)
    return WellData(x[:fit], y[:fit], x[split:], y[split:], x_fresh, y_fresh)


@dataclass(frozen=True)
class WellLosses:
    training: float  # MSE on the samples it was fitted on
    fresh: float     # MSE on fresh samples
    test: float      # MSE on the notebook's test split

    @property
    def gap(self) -> float:
        return self.fresh - self.training


# Layers that add no weights and are the identity at inference: allowed in exercise 1.
REGULARISING_LAYERS = {"Dropout", "GaussianNoise", "GaussianDropout", "AlphaDropout",
                       "SpatialDropout1D", "ActivityRegularization"}
HIDDEN_UNITS = [128] * 5


def network_problem(description: dict, name: str) -> str | None:
    """Why `name` is not the lecture's network (layer sizes, activations), or None."""
    layers = checks.layers(description)
    dense = [layer for layer in layers if layer.get("class_name") == "Dense"]
    units = [layer.get("units") for layer in dense]
    activations = [layer.get("activation") for layer in dense]
    others = [layer for layer in layers if layer.get("class_name") != "Dense"]
    if units != HIDDEN_UNITS + [POINTS] or activations != ["relu"] * 5 + ["linear"]:
        return (f"`{name}` has {checks.layer_summary(description)}; keep the lecture's network: "
                "five Dense(128, relu) layers and Dense(200) without activation")
    with_weights = [layer.get("class_name") for layer in others if layer.get("params")]
    if with_weights:
        return (f"`{name}` adds layers with weights of their own ({', '.join(with_weights)}); "
                "regularise without adding weights: penalties, dropout or noise")
    return None


def regularisers(description: dict) -> list[str]:
    found = []
    for layer in checks.layers(description):
        if layer.get("class_name") in REGULARISING_LAYERS:
            found.append(layer["class_name"])
        for key in ("kernel_regularizer", "bias_regularizer", "activity_regularizer"):
            if layer.get(key):
                found.append(f"{key}={layer[key]}")
    return found


@pytest.fixture(scope="session")
def well_losses(oracle, well, week):
    """well_losses(name) -> WellLosses of a model trained the given way, from the
    predictions of the model the grader rebuilt."""
    cache: dict[str, WellLosses] = {}

    def measure(name: str) -> WellLosses:
        if name not in cache:
            steps = oracle.describe(name).get("iterations")
            wanted = week.thresholds["training_steps"]
            assert steps == wanted, (
                f"`{name}` made {steps} training steps instead of the given {wanted}, so its "
                "over-fitting cannot be compared with the baseline's; train it with the given "
                "cell, once")
            def mse(x, y):
                return float(np.mean((oracle.predict(name, x, outputs=POINTS) - y) ** 2))
            cache[name] = WellLosses(mse(well.x_fit, well.y_fit), mse(well.x_fresh, well.y_fresh),
                                     mse(well.x_test, well.y_test))
        return cache[name]
    return measure


@pytest.fixture(scope="session")
def baseline(oracle, well, week, well_losses) -> WellLosses:
    """The given baseline's losses, once it is certain it is the given one, trained as given
    (the given cells run as released whatever the notebook did to them: see the README's
    alignment; the values they hand over are still claims, checked here)."""
    try:  # plain data (nested lists) or an array
        x_train = np.asarray(oracle.value("x_train"), dtype=np.float32)
    except (TypeError, ValueError):
        x_train = np.zeros((0,))
    assert x_train.ndim == 2 and x_train.shape[0] > len(well.x_fit) and \
        np.array_equal(x_train[:len(well.x_fit)], well.x_fit), (
            "`x_train` is not the given training data; run the given cells unchanged")
    description = oracle.describe("baseline_model")
    problem = network_problem(description, "baseline_model")
    assert problem is None and not regularisers(description), (
        "`baseline_model` is not the given network; run the given cells unchanged")
    steps = description.get("iterations")
    assert steps == week.thresholds["training_steps"], (
        f"`baseline_model` made {steps} training steps instead of the given "
        f"{week.thresholds['training_steps']}; run the given cells unchanged, once")
    losses = well_losses("baseline_model")
    assert losses.gap >= week.thresholds["baseline_min_gap"], (
        f"the baseline's over-fitting gap is only {losses.gap:.5f}: it was not trained "
        "the given way; run the given cells unchanged")
    return losses



# Exercises 1 and 2 improve on the baseline the same way; these two measure it.
@dataclass(frozen=True)
class GapRatio:
    gap: float           # fresh MSE - training MSE of the improved model
    baseline_gap: float
    wanted: float        # the largest ratio that passes

    @property
    def ratio(self) -> float:
        return self.gap / self.baseline_gap


@dataclass(frozen=True)
class FreshImprovement:
    fresh: float           # MSE on fresh samples of the improved model
    baseline_fresh: float
    wanted: float          # the smallest improvement that passes, in percent

    @property
    def percent(self) -> float:
        return 100 * (self.baseline_fresh - self.fresh) / self.baseline_fresh


@pytest.fixture
def gap_against_baseline(baseline, well_losses, week, measure):
    """gap_against_baseline(name, label) -> GapRatio, measured and reported."""
    def compare(name: str, label: str) -> GapRatio:
        found = GapRatio(well_losses(name).gap, baseline.gap, week.thresholds["max_gap_ratio"])
        measure(f"{label} gap / baseline gap", found.ratio, threshold=found.wanted,
                text=f"over-fitting gap (fresh MSE - training MSE): {found.gap:.5f}, baseline "
                     f"{found.baseline_gap:.5f}, ratio {found.ratio:.2f} "
                     f"(needs at most {found.wanted})")
        return found
    return compare


@pytest.fixture
def improvement_against_baseline(baseline, well_losses, week, measure):
    """improvement_against_baseline(name, label, threshold) -> FreshImprovement,
    measured and reported; `threshold` names week.toml's smallest improvement."""
    def compare(name: str, label: str, threshold: str) -> FreshImprovement:
        found = FreshImprovement(well_losses(name).fresh, baseline.fresh,
                                 week.thresholds[threshold])
        measure(f"{label} improvement on fresh data (%)", found.percent, threshold=found.wanted,
                text=f"MSE on fresh samples: {found.fresh:.5f}, baseline "
                     f"{found.baseline_fresh:.5f}, improvement {found.percent:.2f} % "
                     f"(needs {found.wanted} %)")
        return found
    return compare


# -- the projectile (exercise 3) -----------------------------------------------------
def throws(g: float, v0: float, samples: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    t = rng.uniform(0, 5.0, size=(samples, 100)).astype("float32")
    return t, (v0 * t - g * t ** 2 / 2).astype("float32")


@pytest.fixture(scope="session")
def query_times() -> np.ndarray:
    """Times up to 10 s: twice the measured range, so the law must hold beyond it."""
    return np.random.default_rng(QUERY_SEED).uniform(0, 10.0, size=(16, 100)).astype("float32")


@dataclass(frozen=True)
class Law:
    g: float
    v0: float
    rms_residual: float  # of the predictions around v0 t - g t^2 / 2


def fit_law(t: np.ndarray, heights: np.ndarray) -> Law:
    """The least-squares (g, v0) of predicted heights, and how far they stray from that law."""
    t = t.astype(np.float64).ravel()
    design = np.stack([t, -t ** 2 / 2], axis=1)
    (v0, g), *_ = np.linalg.lstsq(design, heights.ravel(), rcond=None)
    residual = heights.ravel() - design @ np.array([v0, g])
    return Law(float(g), float(v0), float(np.sqrt(np.mean(residual ** 2))))
