"""Week-5 submissions for tests, built from the release notebook.

Each submission is the released notebook with some answer cells filled in. Run
as a script to refresh the samples kept in source/week5/samples/ (a test checks
they are up to date):

    .venv/bin/python tests/week5_submissions.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
import sample_notebooks
from sample_notebooks import fill

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "source" / "week5"
RELEASE = ROOT / "release" / "week5" / "week5.ipynb"
SAMPLES = SOURCE / "samples"
REFERENCE = sample_notebooks.reference_answers(SOURCE / "week5.ipynb")
FITNESS = REFERENCE["q1"].split("\n\n\ndef select")[0] + "\n"
SELECT = "def select" + REFERENCE["q1"].split("\n\n\ndef select")[1]
CROSSOVER = REFERENCE["q2"].split("\n\n\ndef mutate")[0] + "\n"
MUTATE = "def mutate" + REFERENCE["q2"].split("\n\n\ndef mutate")[1]

# Exercise 1: fitness as the accuracy (a plateau evolution cannot climb), and roulette-wheel
# selection, whose probabilities fitness / sum favour the worst when every value is negative.
ACCURACY_FITNESS = """
def fitness(genome, x, labels):
    return accuracy(genome, x, labels)
"""
ROULETTE_SELECT = """
def select(population, fitness, count, rng):
    probabilities = fitness / fitness.sum()
    chosen = rng.choice(len(population), size=count, p=probabilities)
    return population[chosen].copy()
"""
# Exercise 2: crossover that averages the parents (no gene is either parent's); mutation
# that decides once per genome, and then changes one gene; crossover that crashes.
AVERAGING_CROSSOVER = """
def crossover(parent_a, parent_b, rng):
    weight = rng.random()
    return weight * parent_a + (1 - weight) * parent_b
"""
ONE_GENE_MUTATE = """
def mutate(genome, rate, scale, rng):
    child = genome.copy()
    if rng.random() < rate:
        child[rng.integers(len(child))] += rng.normal(0.0, scale)
    return child
"""
CRASHING_CROSSOVER = """
def crossover(parent_a, parent_b, rng):
    cut = rng.integers(1, len(parent_a))
    return np.concatenate(parent_a[:cut], parent_b[cut:])
"""
# Exercise 3: the next generation is built but never replaces the population.
STILL_POPULATION = REFERENCE["q3"].replace("        population = np.vstack(",
                                           "        next_population = np.vstack(")
assert STILL_POPULATION != REFERENCE["q3"]
# Exercise 3: evolution, then a gradient-based polish of the best genome (banned this week).
POLISHED = "from scipy.optimize import minimize\n" + REFERENCE["q3"].replace(
    "    return best_genomes[-1], np.array(history), np.array(best_genomes)",
    """    polished = minimize(lambda genome: -fitness(genome, x, labels), best_genomes[-1],
                        method="L-BFGS-B").x
    return polished, np.array(history), np.array(best_genomes)""")
assert POLISHED.count("minimize") == 2


def submission(answers: dict[str, str]) -> nbformat.NotebookNode:
    """The release notebook with the solution regions of some cells (by grade_id) filled."""
    return fill(RELEASE, answers, keep_given=True)


# name -> answers; what each must score is in source/week5/samples/<name>.toml.
SAMPLE_SUBMISSIONS = {
    "correct": REFERENCE,
    "nearmiss": {**REFERENCE, "q1": FITNESS + "\n\n" + ROULETTE_SELECT,
                 "q2": CROSSOVER + "\n\n" + ONE_GENE_MUTATE},
    "wrong": {**REFERENCE, "q1": ACCURACY_FITNESS + "\n\n" + SELECT,
              "q2": AVERAGING_CROSSOVER + "\n\n" + MUTATE, "q3": STILL_POPULATION},
    "crashing": {**REFERENCE, "q2": CRASHING_CROSSOVER + "\n\n" + MUTATE},
    "gradients": {**REFERENCE, "q3": POLISHED},
}


def write_samples(folder: Path = SAMPLES) -> None:
    sample_notebooks.write_samples(SAMPLE_SUBMISSIONS, folder, submission)


if __name__ == "__main__":
    write_samples(Path(sys.argv[1]) if len(sys.argv) > 1 else SAMPLES)
