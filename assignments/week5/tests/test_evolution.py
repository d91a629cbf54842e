"""Hidden checks for exercise 3: evolution.

The grader runs `evolve` itself, in the clean room, on three splits of the flowers it
drew with seeds the notebook never sees (classes renamed, measurements reordered), and
scores the returned genomes on the flowers it kept aside with its own forward pass. The
notebook's own record (`fitness_history`, `best_genomes`) is a claim: a few of its
generations are recomputed with the answer's `fitness` on the notebook's training data.
"""

import numpy as np
import pytest
from conftest import (EVOLVE_SEEDS, GENERATIONS, GENES, GRADER_GENERATIONS, GRADER_SIZE,
                      PROBE_SEED, own_accuracy)

pytestmark = [pytest.mark.question("q3"), pytest.mark.usefixtures("without_gradients")]
USES = ("`evolve` runs your `fitness`, `select`, `crossover` and `mutate`: when exercise 1 "
        "or 2 lost points, fix those first")


@pytest.fixture(scope="module")
def evolved(oracle, splits):
    """evolved(i) -> (best, history, best genomes) of evolve on the grader's split i."""
    cache = {}

    def run(i):
        if i not in cache:
            split = splits[i]
            best, history, bests = oracle.call(
                "grader_evolve", split.x_train, split.labels_train,
                generations=GRADER_GENERATIONS, size=GRADER_SIZE, seed=EVOLVE_SEEDS[i])
            g = GRADER_GENERATIONS
            assert best.shape == (GENES,) and history.shape == (g,) and \
                bests.shape == (g, GENES), (
                    f"`evolve(x, labels, {g}, {GRADER_SIZE}, rng)` returned shapes "
                    f"{best.shape}, {history.shape}, {bests.shape}; return the best genome "
                    f"({GENES},), the best fitness per generation ({g},) and the best genome "
                    f"per generation ({g}, {GENES})")
            cache[i] = best, history, bests
        return cache[i]
    return run


@pytest.mark.points(2)
def test_evolved_network_classifies_held_out_flowers(evolved, splits, week, measure):
    """Evolved by the grader on flowers of its own, the best genome classifies held-out flowers"""
    accuracies = [own_accuracy(evolved(i)[0], split.x_held, split.labels_held)
                  for i, split in enumerate(splits)]
    mean, wanted = float(np.mean(accuracies)), week.thresholds["held_out_accuracy"]
    measure("held-out accuracy (grader's splits)", mean, threshold=wanted,
            text=f"held-out accuracy {', '.join(f'{a:.1%}' for a in accuracies)} "
                 f"(mean {mean:.1%}, needs {wanted:.0%})")
    assert mean >= wanted, (
        f"the grader ran `evolve` ({GRADER_GENERATIONS} generations of {GRADER_SIZE}) on "
        f"{len(splits)} splits of its own; the best genomes classify "
        f"{', '.join(f'{a:.1%}' for a in accuracies)} of the held-out flowers (mean "
        f"{mean:.1%}, at least {wanted:.0%} is needed). Each generation must be built from "
        f"the previous one's parents, keeping the best (elitism). {USES}")


@pytest.mark.points(1)
def test_history_is_the_best_fitness_per_generation(oracle, evolved, splits, week):
    """evolve records each generation's best genome and its fitness"""
    best, history, bests = evolved(0)
    split = splits[0]
    assert np.array_equal(best, bests[-1]), (
        "the genome `evolve` returns is not the last generation's best genome "
        "(best_genomes[-1])")
    generations = np.array([0, 1, GRADER_GENERATIONS // 2, GRADER_GENERATIONS - 1])
    recomputed = oracle.call("grader_fitness", bests[generations], split.x_train,
                             split.labels_train)[0]
    tolerance = week.thresholds["history_tolerance"]
    assert np.allclose(history[generations], recomputed, rtol=tolerance, atol=tolerance), (
        f"in generations {generations.tolist()} `evolve` recorded the best fitness "
        f"{np.round(history[generations], 5).tolist()}, but `fitness` of the genomes it "
        f"recorded gives {np.round(recomputed, 5).tolist()}: record the fitness of the "
        "genome you record, before breeding the next generation")


@pytest.mark.points(1)
def test_notebook_history_improves(oracle, week, notebook_training_data, measure):
    """The notebook's evolution improved its best fitness, as its recorded genomes confirm"""
    history = np.asarray(oracle.value("fitness_history"), dtype=float).reshape(-1)
    bests = np.asarray(oracle.value("best_genomes"), dtype=float)
    assert history.shape == (GENERATIONS,) and bests.shape == (GENERATIONS, GENES), (
        f"`fitness_history` has shape {history.shape} and `best_genomes` {bests.shape}; the "
        f"given cell's evolution makes ({GENERATIONS},) and ({GENERATIONS}, {GENES}): run it "
        "unchanged, once")
    x_train, labels_train = notebook_training_data
    later = np.random.default_rng(PROBE_SEED).choice(np.arange(2, GENERATIONS - 1), 3,
                                                     replace=False)
    generations = np.array(sorted({0, 1, GENERATIONS - 1, *later.tolist()}))
    recomputed = oracle.call("grader_fitness", bests[generations], x_train, labels_train)[0]
    tolerance = week.thresholds["history_tolerance"]
    assert np.allclose(history[generations], recomputed, rtol=tolerance, atol=tolerance), (
        f"in generations {generations.tolist()} the notebook recorded the best fitness "
        f"{np.round(history[generations], 5).tolist()}, but your `fitness` of the genomes "
        f"recorded in `best_genomes` gives {np.round(recomputed, 5).tolist()} on the "
        "training data: run the given cell unchanged")
    gain, wanted = float(history[-1] - history[0]), week.thresholds["history_min_gain"]
    measure("notebook fitness gain", gain, threshold=wanted,
            text=f"best fitness {history[0]:.3f} in the first generation, "
                 f"{history[-1]:.3f} in the last (gain {gain:.3f}, needs {wanted})")
    assert gain >= wanted, (
        f"the notebook's best fitness went from {history[0]:.3f} in the first generation to "
        f"{history[-1]:.3f} in the last, a gain of {gain:.3f} (at least {wanted} is needed): "
        f"the population does not evolve. {USES}")
