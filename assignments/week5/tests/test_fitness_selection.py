"""Hidden checks for exercise 1: fitness and selection.

`fitness` is compared with the mean log-probability computed here, on flowers of the
grader's own split; `select` is called with populations and fitness values made here,
with many seeds, and what it chooses is counted.
"""

import numpy as np
import pytest
from conftest import GENES, own_accuracy, own_fitness

pytestmark = [pytest.mark.question("q1"), pytest.mark.usefixtures("without_gradients")]
DRAWS, COUNT, SIZE = 200, 20, 20


def selected_rows(oracle, population, fitness_values, count, seed, draws=1):
    """The indices of the chosen rows, shape (draws, count)."""
    chosen = oracle.call("grader_select", population, fitness_values, count=count,
                         seed=seed, draws=draws)[0]
    assert chosen.shape == (draws, count, GENES), (
        f"`select(population, fitness, {count}, rng)` returned shape {chosen.shape[1:]} for a "
        f"population of shape {population.shape}; return {count} rows: shape ({count}, {GENES})")
    matches = (chosen[:, :, None, :] == population[None, None, :, :]).all(axis=3)
    found = matches.any(axis=2)
    assert found.all(), (
        f"`select` returned {int((~found).sum())} of {found.size} rows that are not "
        "rows of the population: return copies of chosen individuals, unchanged")
    return matches.argmax(axis=2)


def selection_counts(oracle, fitness_values, seed):
    """How often each individual was chosen over DRAWS calls (its index in the population)."""
    population = np.random.default_rng(seed).normal(size=(SIZE, GENES))
    chosen = selected_rows(oracle, population, fitness_values, COUNT, seed, DRAWS)
    return np.bincount(chosen.ravel(), minlength=SIZE)


def preference_problem(counts, fitness_values, wanted, what):
    advantage = float(counts @ fitness_values / counts.sum() - fitness_values.mean())
    best, worst = counts[fitness_values.argmax()], counts[fitness_values.argmin()]
    if advantage >= wanted and best > worst:
        return advantage, None
    return advantage, (
        f"with fitness values {what}, the parents `select` chose over {DRAWS} calls have a "
        f"mean fitness {advantage:+.3f} above the population's (at least +{wanted} is needed); "
        f"the fittest individual was chosen {best} times, the least fit {worst} times. "
        "Fitter individuals must be chosen more often")


@pytest.mark.points(1)
def test_fitness_is_the_mean_log_probability(oracle, week, splits, probe_rng):
    """fitness is the mean log-probability of the right class"""
    split = splits[0]
    genomes = probe_rng.normal(size=(6, GENES)) * np.array([[0.3], [1], [1], [1], [2], [3]])
    got = oracle.call("grader_fitness", genomes, split.x_train, split.labels_train)[0]
    expected = np.array([own_fitness(g, split.x_train, split.labels_train) for g in genomes])
    assert got.shape == expected.shape, (
        f"`fitness` should return one number, not an array of shape {got.shape[1:]}")
    tolerance = week.thresholds["fitness_tolerance"]
    if np.all(np.abs(got - expected) <= tolerance * np.maximum(1, np.abs(expected))):
        return
    accuracies = [own_accuracy(g, split.x_train, split.labels_train) for g in genomes]
    hint = (" (these are the accuracies: use the log-probabilities, which change with every "
            "small step of the weights)") if np.allclose(got, accuracies) else ""
    assert False, (
        f"for {len(genomes)} random genomes on {len(split.labels_train)} flowers, `fitness` "
        f"gives {np.round(got, 4).tolist()}{hint}; the mean log-probability of the right "
        f"class is {np.round(expected, 4).tolist()}")


@pytest.mark.points(1)
def test_select_returns_rows_of_the_population(oracle, probe_rng):
    """select returns `count` rows of the population"""
    population = probe_rng.normal(size=(SIZE, GENES))
    fitness_values = probe_rng.uniform(0.1, 2.0, size=SIZE)
    for count, seed in ((7, 1), (SIZE, 2), (45, 3)):
        selected_rows(oracle, population, fitness_values, count, seed)


@pytest.mark.points(1)
def test_select_prefers_fitter_individuals(oracle, week, measure):
    """select chooses fitter individuals more often (positive fitness)"""
    fitness_values = np.random.default_rng(11).permutation(np.linspace(0.1, 2.0, SIZE))
    counts = selection_counts(oracle, fitness_values, 1_000)
    wanted = week.thresholds["selection_min_advantage"]
    advantage, problem = preference_problem(counts, fitness_values, wanted,
                                            "from 0.1 to 2.0")
    measure("selection advantage (positive fitness)", advantage, threshold=wanted)
    assert problem is None, problem


@pytest.mark.points(1)
def test_select_works_for_negative_fitness(oracle, week, measure):
    """select chooses fitter individuals more often when every fitness is negative"""
    fitness_values = np.random.default_rng(12).permutation(np.linspace(-3.0, -0.1, SIZE))
    counts = selection_counts(oracle, fitness_values, 2_000)
    wanted = week.thresholds["selection_min_advantage"]
    advantage, problem = preference_problem(
        counts, fitness_values, wanted, "from -3.0 to -0.1 (negative, like this week's)")
    measure("selection advantage (negative fitness)", advantage, threshold=wanted)
    assert problem is None, problem + (
        ". Probabilities proportional to the fitness (a roulette wheel) favour the worst "
        "when the values are negative: use a tournament, ranks, or shift the values")
