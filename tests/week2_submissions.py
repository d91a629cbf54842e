"""Week-2 submissions for tests and the demo, built from the release notebook.

Each submission is the released notebook with its answer cells filled in. Run as a
script to refresh the samples kept in source/week2/samples/ (a test checks they are
up to date):

    .venv/bin/python tests/week2_submissions.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
import sample_notebooks
from sample_notebooks import fill

ROOT = Path(__file__).resolve().parent.parent
RELEASE = ROOT / "release" / "week2" / "week2.ipynb"
SAMPLES = ROOT / "source" / "week2" / "samples"

# A plausible first attempt: the right kind of network, but a constant learning rate
# and far too few steps (the loss is still falling when training stops).
PHYSICS_UNDER_TRAINED = """
def make_physics_network():
    return keras.Sequential([
        keras.Input(shape=(1,)),
        layers.Dense(32, activation="tanh"),
        layers.Dense(32, activation="tanh"),
        layers.Dense(1),
    ])


PHYSICS_LEARNING_RATE = 0.01
PHYSICS_STEPS = 30
"""
SUPERVISED = """
def train_supervised(x_train, y_train, x_val, y_val):
    network = keras.Sequential([
        keras.Input(shape=(1,)),
        layers.Rescaling(1.0, offset=-1.0),
        layers.Dense(32, activation="tanh"),
        layers.Dense(32, activation="tanh"),
        layers.Dense(1),
    ])
    steps = 30 * len(x_train) // 32
    learning_rate = keras.optimizers.schedules.ExponentialDecay(0.005, steps, 0.1)
    network.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="mse")
    network.fit(x_train, y_train, epochs=30, batch_size=32, validation_data=(x_val, y_val),
                verbose=0)
    return network
"""
# The supervised lines are a copy-paste slip that plots the exact solution again
# under the label "supervised" (a curve that does not come from the model), and the
# physics-informed lines have no label.
PLOT_FAKE_AND_UNLABELLED = """
x_plot = np.linspace(0, 5, 200).reshape(-1, 1)
fig, axs = plt.subplots(3, 1, figsize=(6, 10))
for i in range(3):
    exact = EXACT_SOLUTIONS[i]
    physics = [physics_model_1, physics_model_2, physics_model_3][i]
    axs[i].plot(x_plot, exact(x_plot), label="exact")
    axs[i].plot(x_plot, 1 + x_plot * physics.predict(x_plot, verbose=0))
    axs[i].plot(x_plot, exact(x_plot), "r:", label="supervised")
    axs[i].legend()
plt.show()
"""


def submission(answers: dict[str, str]) -> nbformat.NotebookNode:
    """The release notebook with answer cells (by nbgrader grade_id) replaced."""
    return fill(RELEASE, answers)


# name -> answers; what each must score is in source/week2/samples/<name>.toml.
SAMPLE_SUBMISSIONS = {
    "wrong": {"q1": PHYSICS_UNDER_TRAINED, "q2": SUPERVISED, "q3": PLOT_FAKE_AND_UNLABELLED},
}


def write_samples(folder: Path = SAMPLES) -> None:
    sample_notebooks.write_samples(SAMPLE_SUBMISSIONS, folder, submission)


if __name__ == "__main__":
    write_samples(Path(sys.argv[1]) if len(sys.argv) > 1 else SAMPLES)
