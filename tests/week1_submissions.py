"""Week-1 submissions for tests and the demo, built from the release notebook.

Each submission is the released notebook with some answer cells filled in (and,
for the hostile ones, extra cells). Run as a script to refresh the samples kept
in source/week1/samples/ (a test checks they are up to date):

    .venv/bin/python tests/week1_submissions.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
import sample_notebooks
from nbformat.v4 import new_code_cell
from sample_notebooks import fill

ROOT = Path(__file__).resolve().parent.parent
RELEASE = ROOT / "release" / "week1" / "week1.ipynb"
SAMPLES = ROOT / "source" / "week1" / "samples"

SEQUENTIAL = """
sequential_model = keras.Sequential([
    keras.Input(shape=(4,)),
    layers.Dense(8, activation="relu"),
    layers.Dense(3, activation="softmax"),
])
"""
FUNCTIONAL = """
x_in = keras.Input(shape=(4,))
x = layers.Dense(8, activation="relu")(x_in)
functional_model = keras.Model(inputs=x_in, outputs=layers.Dense(3, activation="softmax")(x))
"""
SUBCLASS = """
class IrisNet(keras.Model):
    def __init__(self):
        super().__init__()
        self.first = layers.Dense(8, activation="relu")
        self.second = layers.Dense(3, activation="softmax")

    def call(self, inputs):
        return self.second(self.first(inputs))


subclass_model = IrisNet()
"""
# Near misses, each wrong in one way a student plausibly gets wrong.
FUNCTIONAL_TANH = FUNCTIONAL.replace('activation="relu"', 'activation="tanh"')
SEQUENTIAL_WIDE_SIGMOID = SEQUENTIAL.replace('Dense(8, activation="relu")',
                                             'Dense(16, activation="sigmoid")')
FUNCTIONAL_BY_ADD = """
functional_model = keras.Sequential()
functional_model.add(keras.Input(shape=(4,)))
functional_model.add(layers.Dense(8, activation="relu"))
functional_model.add(layers.Dense(3, activation="softmax"))
"""
NOT_TRAINED = "subclass_history = None  # forgot to train"


def submission(answers: dict[str, str], extra: list[str] = (),
               extra_first: bool = False) -> nbformat.NotebookNode:
    """The release notebook with cells (by nbgrader grade_id) replaced, plus extra
    cells at the end (or right after the setup cell, with ``extra_first``)."""
    nb = fill(RELEASE, answers)
    position = 2 if extra_first else len(nb.cells)
    for number, code in enumerate(extra):
        cell = new_code_cell(code.strip())
        cell["id"] = f"extra-{number}"
        nb.cells.insert(position + number, cell)
    return nb


# name -> answers; what each must score is in source/week1/samples/<name>.toml.
SAMPLE_SUBMISSIONS = {
    "correct": {"q1": SEQUENTIAL, "q2": FUNCTIONAL, "q3": SUBCLASS},
    "partial": {"q1": SEQUENTIAL, "q2": FUNCTIONAL_TANH},
    "wrong": {"q1": SEQUENTIAL_WIDE_SIGMOID, "q2": FUNCTIONAL_BY_ADD, "q3": SUBCLASS,
              "q3_train": NOT_TRAINED},
    "crashing": {"q1": SEQUENTIAL, "q2": "functional_model = keras.Model(inputs=undefined)",
                 "q3": "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)"},
}


def _without_q2_cell() -> nbformat.NotebookNode:
    nb = submission({"q1": SEQUENTIAL})
    nb.cells = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") != "q2"]
    return nb


# Further notebooks graded in the week's class batch beside the samples (graded_class in
# tests/conftest.py), by submission name: the correct sample a second time (grading is
# deterministic), the unanswered release, and a notebook whose q2 answer cell was deleted.
CLASS_EXTRAS = {
    "correct-again": lambda: submission(SAMPLE_SUBMISSIONS["correct"]),
    "release": lambda: nbformat.read(RELEASE, as_version=4),
    "missing-cell": _without_q2_cell,
}


def write_samples(folder: Path = SAMPLES) -> None:
    sample_notebooks.write_samples(SAMPLE_SUBMISSIONS, folder, submission)


if __name__ == "__main__":
    write_samples(Path(sys.argv[1]) if len(sys.argv) > 1 else SAMPLES)
