"""Week-3 sample submissions for tests and the demo, built from the release notebook.

Run as a script to refresh the samples kept in source/week3/samples/ (a test checks
they are up to date):

    .venv/bin/python tests/week3_submissions.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
import sample_notebooks
from sample_notebooks import fill

ROOT = Path(__file__).resolve().parent.parent
RELEASE = ROOT / "release" / "week3" / "week3.ipynb"
SAMPLES = ROOT / "source" / "week3" / "samples"

# Wrong in the ways the hidden checks look for, and cheap to run (about a minute of training).
# The ANN hides a convolution inside a nested model: it loses the architecture point and
# every accuracy tier, whatever its accuracy.
ANN_WITH_CONVOLUTION = """
features = keras.Sequential([layers.Conv2D(8, 3, strides=2, activation="relu"), layers.Flatten()])
ann_model = keras.Sequential([keras.Input(shape=(32, 32, 3)), features, layers.Dense(10)])
train(ann_model, epochs=1)
"""
# Convolution without pooling, one epoch on 2,000 images: far below 60 %.
CNN_WITHOUT_POOLING_UNDERTRAINED = """
cnn_model = keras.Sequential([
    keras.Input(shape=(32, 32, 3)),
    layers.Conv2D(8, 3, activation="relu"),
    layers.Flatten(),
    layers.Dense(10),
])
cnn_model.compile(optimizer="adam", metrics=["accuracy"],
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
cnn_model.fit(x_train[:2000], y_train[:2000], epochs=1, verbose=2)
"""
# Averaged word embeddings: takes raw text, gives a probability, but has no memory.
IMDB_WITHOUT_MEMORY = """
text = keras.Input(shape=(), dtype="string")
words = layers.Embedding(20_000, 8)(encoder(text))
imdb_model = keras.Model(text, layers.Dense(1, activation="sigmoid")(
    layers.GlobalAveragePooling1D()(words)))
imdb_model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
imdb_model.fit(train_ds.take(30), epochs=1, verbose=2)
"""


def submission(answers: dict[str, str]) -> nbformat.NotebookNode:
    """The release notebook with answer cells (by nbgrader grade_id) replaced."""
    return fill(RELEASE, answers)


# name -> answers; what each must score is in source/week3/samples/<name>.toml.
SAMPLE_SUBMISSIONS = {
    "wrong": {"q1": ANN_WITH_CONVOLUTION, "q2": CNN_WITHOUT_POOLING_UNDERTRAINED,
              "q3": IMDB_WITHOUT_MEMORY},
}


def write_samples(folder: Path = SAMPLES) -> None:
    sample_notebooks.write_samples(SAMPLE_SUBMISSIONS, folder, submission)


if __name__ == "__main__":
    write_samples(Path(sys.argv[1]) if len(sys.argv) > 1 else SAMPLES)
