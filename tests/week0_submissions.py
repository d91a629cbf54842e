"""Week-0 submissions for tests, built from the release notebook.

Each submission is the released notebook with some answer cells filled in. Run
as a script to refresh the samples kept in source/week0/samples/ (a test checks
they are up to date):

    .venv/bin/python tests/week0_submissions.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
import sample_notebooks
from sample_notebooks import fill

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "source" / "week0"
RELEASE = ROOT / "release" / "week0" / "week0.ipynb"
SAMPLES = SOURCE / "samples"
REFERENCE = sample_notebooks.reference_answers(SOURCE / "week0.ipynb")


def edited(question: str, old: str, new: str) -> str:
    """The reference answer to ``question`` with one passage replaced."""
    assert old in REFERENCE[question], (question, old)
    return REFERENCE[question].replace(old, new)


# Near misses. The MSE's error at the output divided by every entry of y (n times the
# outputs) instead of the n samples: gradients half the right size for two outputs.
# Adam whose step count is set instead of counted: right at the first step only.
MSE_OVER_OUTPUTS = edited(
    "q1", "delta = (a - y) / n * activation_derivative",
    "delta = (a - y) / y.size * activation_derivative")
ADAM_T_NOT_COUNTED = edited("q2", "self.t += 1", "self.t = 1")

# Wrong answers. The sigmoid's derivative a (1 - a) for every layer; Constant without its
# learning rate; training that adds the changes (gradient ascent).
SIGMOID_DERIVATIVE_EVERYWHERE = edited(
    "q1", "delta = (a - y) / n * activation_derivative(self.activations[-1], zs[-1], a)",
    "delta = (a - y) / n * a * (1 - a)").replace(
    """* activation_derivative(
                    self.activations[layer - 1], zs[layer - 1], outputs[layer])""",
    "* outputs[layer] * (1 - outputs[layer])")
CONSTANT_WITHOUT_ETA = edited("q2", "return self.eta * gradient", "return gradient")
TRAINING_UPHILL = edited("q3", "network.weights[layer] \\\n                    - ",
                         "network.weights[layer] \\\n                    + ")
TRAINING_UPHILL = TRAINING_UPHILL.replace("network.biases[layer] \\\n                    - ",
                                          "network.biases[layer] \\\n                    + ")

# Crashing: the training loop reads an attribute the network does not have.
TRAINING_CRASHES = edited(
    "q3", "weight_schedulers = [make_scheduler() for _ in network.weights]",
    "weight_schedulers = [make_scheduler() for _ in network.layers]")

# Not NumPy only: the gradients of q1 by JAX's automatic differentiation.
AUTODIFF = """
import jax
import jax.numpy as jnp
""" + REFERENCE["q1"].replace("""    def gradients(self, x, y):""", """    def cost_of(self, parameters, x, y):
        a = jnp.asarray(x)
        for layer, name in enumerate(self.activations):
            z = a @ parameters[2 * layer] + parameters[2 * layer + 1]
            a = jax.nn.softmax(z, axis=1) if name == "softmax" else (
                jnp.tanh(z) if name == "tanh" else jax.nn.sigmoid(z) if name == "sigmoid"
                else jax.nn.relu(z) if name == "relu" else z)
        if self.cost == "cross_entropy":
            return -jnp.sum(y * jnp.log(a)) / len(x)
        return jnp.sum((a - y) ** 2) / (2 * len(x))

    def gradients(self, x, y):
        parameters = [p for pair in zip(self.weights, self.biases) for p in pair]
        found = jax.grad(self.cost_of)(parameters, x, y)
        return ([np.asarray(g) for g in found[0::2]], [np.asarray(g) for g in found[1::2]])

    def back_propagation(self, x, y):""")


def submission(answers: dict[str, str]) -> nbformat.NotebookNode:
    """The release notebook with the solution regions of some cells (by grade_id) filled."""
    return fill(RELEASE, answers, keep_given=True)


# name -> answers; what each must score is in source/week0/samples/<name>.toml.
SAMPLE_SUBMISSIONS = {
    "correct": REFERENCE,
    "nearmiss": {**REFERENCE, "q1": MSE_OVER_OUTPUTS, "q2": ADAM_T_NOT_COUNTED},
    "wrong": {**REFERENCE, "q1": SIGMOID_DERIVATIVE_EVERYWHERE, "q2": CONSTANT_WITHOUT_ETA,
              "q3": TRAINING_UPHILL},
    "crashing": {**REFERENCE, "q3": TRAINING_CRASHES},
    "autodiff": {**REFERENCE, "q1": AUTODIFF},
}


def write_samples(folder: Path = SAMPLES) -> None:
    sample_notebooks.write_samples(SAMPLE_SUBMISSIONS, folder, submission)


if __name__ == "__main__":
    write_samples(Path(sys.argv[1]) if len(sys.argv) > 1 else SAMPLES)
