"""Public checks for week 2: students run these with `autograder check week2.ipynb`.

They only check that the six models exist and map x to one value, and that a figure
is open; the hidden checks test the training, the accuracy on [0, 2] and what the
figure's lines show.
"""

import numpy as np
import pytest

MODELS = {"q1": "physics_model_{}", "q2": "supervised_model_{}"}


@pytest.mark.parametrize("question", [
    pytest.param(q, id=q, marks=[pytest.mark.question(q), pytest.mark.points(1)]) for q in MODELS])
def test_models_map_x_to_one_value(question, oracle):
    """The three models each take x (shape (1,)) and give one value"""
    for ode in (1, 2, 3):
        name = MODELS[question].format(ode)
        outputs = oracle.predict(name, np.linspace(0, 2, 5, dtype=np.float32).reshape(-1, 1))
        assert outputs.reshape(5, -1).shape == (5, 1), (
            f"`{name}` gives {outputs.shape[1:]} values per x; expected 1")


@pytest.mark.question("q3")
@pytest.mark.points(1)
def test_a_figure_is_open(oracle):
    """A figure with plotted lines is open after the notebook ran"""
    figures = oracle.figures()
    lines = sum(len(axes.lines) for figure in figures for axes in figure)
    assert lines, ("no figure with plotted lines is open: draw the exercise-3 figure with "
                   "plt.plot/ax.plot and do not close it")
