"""Week-4 submissions for tests, built from the release notebook.

Each submission is the released notebook with some answer cells filled in. Run
as a script to refresh the samples kept in source/week4/samples/ (a test checks
they are up to date):

    .venv/bin/python tests/week4_submissions.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
import sample_notebooks
from sample_notebooks import fill

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "source" / "week4"
RELEASE = ROOT / "release" / "week4" / "week4.ipynb"
SAMPLES = SOURCE / "samples"
REFERENCE = sample_notebooks.reference_answers(SOURCE / "week4.ipynb")

# Exercise 1, realistic mistakes.
NARROWER_WITH_DROPOUT = """
regularised_model = keras.Sequential(
    [keras.Input(shape=(POINTS,))]
    + [layer for _ in range(5) for layer in (layers.Dense(64, activation="relu"),
                                               layers.Dropout(0.2))]
    + [layers.Dense(POINTS)])
"""
TOO_WEAK_L2 = """
regularised_model = keras.Sequential(
    [keras.Input(shape=(POINTS,))]
    + [layers.Dense(128, activation="relu", kernel_regularizer=regularizers.L2(1e-7))
       for _ in range(5)]
    + [layers.Dense(POINTS)])
"""
IMPROVEMENT_ON_TRAINING_LOSS = """
improvement_percent = 100 * (baseline_history.history["mse"][-1]
                             - regularised_history.history["mse"][-1]) \\
    / baseline_history.history["mse"][-1]
"""
# Exercise 2: the physics term without its threshold.
LOSS_WITHOUT_THRESHOLD = """
def physics_guided_loss(y_true, y_pred):
    mse = ops.mean(ops.square(y_true - y_pred), axis=-1)
    return mse + ops.abs(L * ops.mean(y_pred, axis=-1) - 1.0)
"""
# Exercise 3: two sub-networks, but g is written into the class.
HARD_CODED_G = """
class ProjectileNet(keras.Model):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.g_network = keras.Sequential([keras.Input(shape=(1,)), layers.Dense(1)])
        self.v0_network = keras.Sequential(
            [keras.Input(shape=(1,)), layers.Dense(1, bias_initializer="ones")])

    def call(self, t):
        one = ops.ones((1, 1))
        self.g_network(one)  # built, but g is the textbook value
        theta_v0 = 10.0 * self.v0_network(one)[0, 0]
        return theta_v0 * t - 0.5 * 9.7 * ops.square(t)

    def physical_parameters(self):
        return 9.7, float(10.0 * self.v0_network(ops.ones((1, 1)))[0, 0])
"""


def submission(answers: dict[str, str]) -> nbformat.NotebookNode:
    """The release notebook with the solution regions of some cells (by grade_id) filled:
    the release keeps the given lines around a solution (e.g. the seed)."""
    return fill(RELEASE, answers, keep_given=True)


# name -> answers; what each must score is in source/week4/samples/<name>.toml.
SAMPLE_SUBMISSIONS = {
    "correct": REFERENCE,
    "wrong": {**REFERENCE, "q1": NARROWER_WITH_DROPOUT,
              "q1_improvement": IMPROVEMENT_ON_TRAINING_LOSS,
              "q2": LOSS_WITHOUT_THRESHOLD, "q3": HARD_CODED_G},
    "weak": {"q1": TOO_WEAK_L2, "q1_improvement": REFERENCE["q1_improvement"]},
}


def write_samples(folder: Path = SAMPLES) -> None:
    sample_notebooks.write_samples(SAMPLE_SUBMISSIONS, folder, submission)


if __name__ == "__main__":
    write_samples(Path(sys.argv[1]) if len(sys.argv) > 1 else SAMPLES)
