"""Public checks for week 5: students run these with `autograder check week5.ipynb`.

They only check that each function exists and returns the asked shapes; the hidden
checks compare fitness with its formula, count what selection, crossover and mutation
do over many seeded calls, and run evolution on flowers the grader chose.
"""

import numpy as np
import pytest

GENES = 67


@pytest.mark.question("q1")
@pytest.mark.points(1)
def test_fitness_and_select_shapes(oracle):
    """fitness gives one number per genome; select returns `count` genomes"""
    rng = np.random.default_rng(0)
    population = rng.normal(size=(6, GENES))
    x, labels = rng.normal(size=(10, 4)), np.arange(10) % 3
    values = oracle.call("grader_fitness", population, x, labels)[0]
    assert values.shape == (6,) and np.all(np.isfinite(values)), (
        f"`fitness` gave {values.shape[1:] or 'one number'} per genome, values "
        f"{np.round(values, 3).tolist()}; return one finite float")
    chosen = oracle.call("grader_select", population, values, count=4, seed=1)[0]
    assert chosen.shape == (1, 4, GENES), (
        f"`select(population, fitness, 4, rng)` returned shape {chosen.shape[1:]}; "
        f"expected (4, {GENES})")


@pytest.mark.question("q2")
@pytest.mark.points(1)
def test_crossover_and_mutate_shapes(oracle):
    """crossover and mutate each return one genome"""
    rng = np.random.default_rng(0)
    parents = rng.normal(size=(2, 3, GENES))
    children = oracle.call("grader_crossover", parents[0], parents[1], seed=2)[0]
    assert children.shape == (3, GENES), (
        f"`crossover` returned shape {children.shape[1:]}; expected ({GENES},)")
    mutants = oracle.call("grader_mutate", parents[0], rate=0.1, scale=0.3, seed=3)[0]
    assert mutants.shape == (3, GENES), (
        f"`mutate` returned shape {mutants.shape[1:]}; expected ({GENES},)")


@pytest.mark.question("q3")
@pytest.mark.points(1)
def test_evolve_shapes(oracle):
    """evolve returns the best genome, the history and the best genome of each generation"""
    rng = np.random.default_rng(0)
    x, labels = rng.normal(size=(30, 4)), np.arange(30) % 3
    best, history, bests = oracle.call("grader_evolve", x, labels, generations=3, size=8,
                                       seed=4)
    assert best.shape == (GENES,) and history.shape == (3,) and bests.shape == (3, GENES), (
        f"`evolve(x, labels, 3, 8, rng)` returned shapes {best.shape}, {history.shape}, "
        f"{bests.shape}; expected ({GENES},), (3,) and (3, {GENES})")
