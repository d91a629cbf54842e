"""Hidden checks for week 2: three ODEs solved by physics-informed and supervised networks.

Every check asks the notebook for plain data through ``oracle`` and decides here:
errors are measured against exact solutions computed on this side, at points this
side chooses, and the lines of the exercise-3 figure are compared with what the
models themselves output at the plotted x.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from conftest import ODES, U0
from scipy.optimize import linear_sum_assignment

from autograder.grading import checks

PHYSICS = {ode: f"physics_model_{ode}" for ode in ODES}
SUPERVISED = {ode: f"supervised_model_{ode}" for ode in ODES}
KINDS = {"physics": "physics-informed solution", "supervised": "supervised model"}


def each_ode(question, points=1):
    """Run a check once per ODE, each worth ``points`` of ``question``."""
    return pytest.mark.parametrize("ode", [
        pytest.param(ode, id=f"ode{ode}", marks=[pytest.mark.question(question),
                                                 pytest.mark.points(points)])
        for ode in ODES])


def model_output(oracle, name: str, x: np.ndarray) -> np.ndarray:
    """``name``'s outputs at x, computed by the model the grader rebuilt from the archive
    the notebook saved (no student code runs where it is rebuilt)."""
    return oracle.predict(name, x, outputs=1)[:, :1]


def physics_solution(oracle, ode: int, x: np.ndarray) -> np.ndarray:
    # The trial solution g(x) = u(0) + x NN(x) is formed here from the network's raw
    # outputs: the form is fixed by the exercise, so a notebook that redefines its
    # `trial_solution` (or anything else) cannot change what is scored.
    x = x.reshape(-1, 1)
    return U0 + x.astype(np.float64) * model_output(oracle, PHYSICS[ode], x)


def assert_keras_model(description: dict, name: str) -> None:
    assert checks.is_subclass(description, checks.KERAS_MODEL), (
        f"`{name}` is a {description['type']}, not a Keras model")


# -- exercise 1: physics-informed ------------------------------------------------
@pytest.mark.question("q1")
@pytest.mark.points(1)
def test_physics_networks_trained_by_the_given_loop(oracle, answer_source):
    """The physics-informed networks are Keras models trained by the given loop"""
    tree = checks.parse(answer_source("q1"), "q1")
    assert not checks.calls(tree, "fit"), (
        "the physics-informed networks learn from the equation only: remove the call to "
        "fit (the given loop trains them without labels)")
    steps = oracle.number("PHYSICS_STEPS")
    for name in PHYSICS.values():
        description = oracle.describe(name)
        assert_keras_model(description, name)
        made = description.get("iterations", 0)
        assert steps >= 1 and made == steps, (
            f"`{name}` made {made} training steps, but PHYSICS_STEPS is {steps:g}: train it "
            "with the given cell, which makes PHYSICS_STEPS steps of the physics-informed loop")


@each_ode("q1")
def test_physics_solution_is_accurate(ode, oracle, week, measure, training_range_grid):
    """ODE {ode}: the physics-informed solution is within the tolerance on [0, 2]"""
    equation, solution_text, exact = ODES[ode]
    x = training_range_grid
    error = float(np.max(np.abs(physics_solution(oracle, ode, x) - exact(x.astype(np.float64)))))
    wanted = week.thresholds["physics_max_error"]
    measure(f"physics-informed max error, ODE {ode}", error, threshold=wanted,
            text=f"largest error of u(0) + x NN(x) on [0, 2]: {error:.4f} (at most {wanted:g})")
    assert error <= wanted, (
        f"for {equation}, u(0) + x·NN(x) with NN = `{PHYSICS[ode]}` is up to {error:.3f} away "
        f"from the exact solution {solution_text} on [0, 2]; it must stay within {wanted:g}. "
        "Train longer, tune the learning rate, or change the network")


# -- exercise 2: supervised -------------------------------------------------------
@pytest.mark.question("q2")
@pytest.mark.points(1)
def test_supervised_models_compiled_and_fitted(oracle, answer_source):
    """The supervised models are Keras models compiled and trained with fit"""
    tree = checks.parse(answer_source("q2"), "q2")
    assert checks.calls(tree, "compile") and checks.calls(tree, "fit"), (
        "train_supervised should compile the network and train it with fit")
    for name in SUPERVISED.values():
        description = oracle.describe(name)
        assert_keras_model(description, name)
        made = description.get("iterations", 0)
        assert description.get("optimizer") and made >= 1, (
            f"`{name}` made {made} training steps: train_supervised must return the "
            "model it trained")


@each_ode("q2")
def test_supervised_model_is_accurate(ode, oracle, week, measure, training_range_grid):
    """ODE {ode}: the supervised model is within the tolerance on [0, 2]"""
    equation, solution_text, exact = ODES[ode]
    x = training_range_grid
    predicted = model_output(oracle, SUPERVISED[ode], x)
    error = float(np.max(np.abs(predicted - exact(x.astype(np.float64)))))
    wanted = week.thresholds["supervised_max_error"]
    measure(f"supervised max error, ODE {ode}", error, threshold=wanted,
            text=f"largest error of the supervised model on [0, 2]: {error:.4f} (at most {wanted:g})")
    assert error <= wanted, (
        f"for {equation}, `{SUPERVISED[ode]}` is up to {error:.3f} away from the exact "
        f"solution {solution_text} on [0, 2]; it must stay within {wanted:g}. Train longer, "
        "tune the learning rate or batch size, or change the network")


# -- exercise 3: the extrapolation figure -----------------------------------------
MIN_POINTS = 20  # a line with fewer points is not a plotted curve of a model


@dataclass
class PlotLine:
    axes: int
    label: str
    x: np.ndarray
    y: np.ndarray

    @property
    def spans_0_to_5(self) -> bool:
        return len(self.x) >= MIN_POINTS and self.x.min() <= 0.1 and self.x.max() >= 4.9


@dataclass
class Figure:
    number: int
    lines: list[PlotLine]
    shows: dict  # (kind, ode) -> the PlotLine matched to it (one line per curve)
    partly: dict  # (kind, ode) -> a line that agrees with it but does not span [0, 5]


@dataclass
class ExtrapolationPlot:
    figure: Figure | None
    unavailable: dict  # model name -> why its outputs could not be had


@pytest.fixture(scope="module")
def extrapolation_plot(oracle, week):
    """The open figure whose lines show the most of the nine curves asked for."""
    tolerance = week.thresholds["plot_relative_tolerance"]
    unavailable: dict[str, str] = {}

    def curve(kind: str, ode: int, x: np.ndarray):
        """What curve (kind, ode) is at x, computed or asked for here; None if unavailable."""
        if kind == "exact":
            return ODES[ode][2](x)
        name = PHYSICS[ode] if kind == "physics" else SUPERVISED[ode]
        if name in unavailable:
            return None
        try:
            if kind == "physics":
                return physics_solution(oracle, ode, x).ravel()
            return model_output(oracle, name, x.reshape(-1, 1)).ravel()
        except AssertionError as error:  # OracleError, or outputs not from the weights
            unavailable[name] = str(error)
            return None

    best = None
    for number, axes_list in enumerate(oracle.figures(), start=1):
        lines = [PlotLine(a, line.label, line.x, line.y)
                 for a, axes in enumerate(axes_list) for line in axes.lines
                 if len(line.x) == len(line.y) and len(line.x) >= 2][:100]
        wanted = [(kind, ode) for kind in ("exact", "physics", "supervised") for ode in ODES]
        agrees = np.zeros((len(lines), len(wanted)), dtype=bool)
        for i, line in enumerate(lines):
            for j, (kind, ode) in enumerate(wanted):
                values = curve(kind, ode, line.x)
                agrees[i, j] = values is not None and bool(np.all(
                    np.abs(line.y - values) <= tolerance * (1 + np.abs(values))))
        spanning = np.array([line.spans_0_to_5 for line in lines], dtype=bool)
        shows, partly = {}, {}
        if lines:
            matched = agrees & spanning[:, None]
            rows, cols = linear_sum_assignment(matched, maximize=True)
            shows = {wanted[j]: lines[i] for i, j in zip(rows, cols) if matched[i, j]}
            partly = {wanted[j]: lines[i] for i, j in zip(*np.nonzero(agrees & ~spanning[:, None]))}
        figure = Figure(number, lines, shows, partly)
        if best is None or len(figure.shows) > len(best.shows):
            best = figure
    return ExtrapolationPlot(best, unavailable)


def missing_curves_message(plot: ExtrapolationPlot, kind: str, odes: list[int]) -> str:
    """Why the curves (kind, ode) for ``odes`` were not found, one reason per sentence."""
    reasons, absent = [], []
    for ode in odes:
        equation, solution_text, _ = ODES[ode]
        name = PHYSICS[ode] if kind == "physics" else SUPERVISED.get(ode)
        partial = plot.figure.partly.get((kind, ode))
        if kind != "exact" and name in plot.unavailable:
            reasons.append(f"could not check the {KINDS[kind]} for {equation}: "
                           f"{plot.unavailable[name]}")
        elif partial is not None:
            reasons.append(f"the line of the {KINDS.get(kind, 'exact solution')} for {equation} "
                           f"spans x from {partial.x.min():.2f} to {partial.x.max():.2f} only; "
                           "plot it for x from 0 to 5")
        elif kind == "exact":
            absent.append(f"{solution_text} ({equation})")
        else:
            absent.append(f"`{name}` ({equation})")
    if absent:
        what = ("the exact solution " if kind == "exact" else
                "the outputs of the physics-informed solution u(0) + x·NN(x) with NN = "
                if kind == "physics" else "the outputs of the supervised model ")
        reasons.insert(0, f"no line of the figure shows {what}{' or '.join(absent)} for x from "
                          f"0 to 5 (with at least {MIN_POINTS} points)"
                       + ("" if kind == "exact" else
                          "; a model's line must be that model's own output at the plotted x"))
    return "; ".join(reasons)


def assert_figure_shows(plot: ExtrapolationPlot, kind: str) -> None:
    assert plot.figure is not None and plot.figure.lines, (
        "no figure with lines is open after your notebook ran: draw the figure in the "
        "exercise-3 cell and do not close it")
    missing = [ode for ode in ODES if (kind, ode) not in plot.figure.shows]
    assert not missing, missing_curves_message(plot, kind, missing)


@pytest.mark.question("q3")
@pytest.mark.points(1)
def test_figure_shows_exact_solutions_on_0_to_5(extrapolation_plot):
    """The figure shows the exact solution of all three ODEs on [0, 5]"""
    assert_figure_shows(extrapolation_plot, "exact")


@pytest.mark.question("q3")
@pytest.mark.points(1)
def test_figure_shows_physics_informed_models(extrapolation_plot):
    """The figure shows the physics-informed solutions' own outputs on [0, 5]"""
    assert_figure_shows(extrapolation_plot, "physics")


@pytest.mark.question("q3")
@pytest.mark.points(1)
def test_figure_shows_supervised_models(extrapolation_plot):
    """The figure shows the supervised models' own outputs on [0, 5]"""
    assert_figure_shows(extrapolation_plot, "supervised")


@pytest.mark.question("q3")
@pytest.mark.points(1)
def test_figure_lines_are_labelled(extrapolation_plot):
    """Every curve of the figure has its own legend label"""
    figure = extrapolation_plot.figure
    shown = sorted(figure.shows.items(), key=lambda item: item[1].axes) if figure else []
    assert shown, "no line of the figure shows one of the asked curves, so none can be labelled"
    unlabelled = [f"the {KINDS.get(kind, 'exact solution')} of {ODES[ode][0]}"
                  for (kind, ode), line in shown if not line.label or line.label.startswith("_")]
    assert not unlabelled, (
        f"these lines have no label: {', '.join(unlabelled)}; pass label=... to plot and "
        "call legend()")
    for axes in {line.axes for _, line in shown}:
        labels = [line.label for _, line in shown if line.axes == axes]
        repeated = sorted({label for label in labels if labels.count(label) > 1})
        assert not repeated, (
            f"several lines of one subplot share the label {repeated[0]!r}: give each its "
            "own label so the legend tells them apart")
