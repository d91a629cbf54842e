"""Hidden checks for exercise 2: crossover and mutation.

Both are called with genomes made here and many seeds; the children are compared gene by
gene with their parents, the mutants with the genome they came from.
"""

import numpy as np
import pytest
from conftest import GENES

pytestmark = [pytest.mark.question("q2"), pytest.mark.usefixtures("without_gradients")]
CHILDREN, MUTANTS = 200, 300
RATES = (0.05, 0.2, 0.5)


def parents(count, seed):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(count, GENES)), rng.normal(size=(count, GENES)) + 5.0  # none equal


def children_of(oracle, parents_a, parents_b, seed):
    children = oracle.call("grader_crossover", parents_a, parents_b, seed=seed)[0]
    assert children.shape == parents_a.shape, (
        f"`crossover` returned shape {children.shape[1:]}; a child is one genome, "
        f"shape ({GENES},)")
    return children


@pytest.mark.points(1)
def test_child_genes_come_from_the_parents(oracle):
    """Every gene of a child is its parent's gene at that position"""
    parents_a, parents_b = parents(20, 1)
    children = children_of(oracle, parents_a, parents_b, 1)
    foreign = ~((children == parents_a) | (children == parents_b))
    if foreign.any():
        row, gene = np.argwhere(foreign)[0]
        assert False, (
            f"{foreign.mean():.0%} of the children's genes are neither parent's gene at that "
            f"position (for example gene {gene}: parents {parents_a[row, gene]:.3f} and "
            f"{parents_b[row, gene]:.3f}, child {children[row, gene]:.3f}): copy each gene "
            "from one parent, do not average, blend or shuffle them")


@pytest.mark.points(1)
def test_both_parents_contribute(oracle, week, measure):
    """Over many children, both parents pass on their genes"""
    parents_a, parents_b = parents(CHILDREN, 2)
    children = children_of(oracle, parents_a, parents_b, 2)
    share_a, share_b = np.mean(children == parents_a), np.mean(children == parents_b)
    wanted = week.thresholds["crossover_min_share"]
    measure("share of parent_a's genes", share_a)
    assert min(share_a, share_b) >= wanted, (
        f"over {CHILDREN} children, {share_a:.1%} of the genes came from parent_a and "
        f"{share_b:.1%} from parent_b (each should give at least {wanted:.0%}): choose at "
        "random, gene by gene or at a cut point, which parent each gene comes from")


def mutants(oracle, rate, scale, seed):
    """(fraction of changed genes per call, the changes) over MUTANTS calls."""
    genomes = np.random.default_rng(seed).normal(size=(MUTANTS, GENES))
    children, unchanged = oracle.call("grader_mutate", genomes, rate=rate, scale=scale,
                                      seed=seed)
    assert unchanged.all(), (
        "`mutate` changed the genome it was given: work on a copy (or build a new array) "
        "and return that")
    assert children.shape == genomes.shape, (
        f"`mutate` returned shape {children.shape[1:]}; return one genome, shape ({GENES},)")
    differs = children != genomes
    return differs.mean(axis=1), (children - genomes)[differs]


@pytest.mark.points(1)
def test_mutation_changes_the_asked_fraction(oracle, week, measure):
    """mutate changes each gene with probability `rate`, leaving its input unchanged"""
    tolerance = week.thresholds["mutation_rate_tolerance"]
    for k, rate in enumerate(RATES):
        changed, _ = mutants(oracle, rate, 0.3, 10 + k)
        measure(f"changed fraction at rate {rate}", changed.mean(), threshold=rate)
        assert abs(changed.mean() - rate) <= tolerance, (
            f"with rate = {rate}, `mutate` changed {changed.mean():.2%} of the genes on "
            f"average over {MUTANTS} calls (between {rate - tolerance:.1%} and "
            f"{rate + tolerance:.1%} is needed): each gene, independently, changes with "
            "probability `rate`")
        typical = np.mean(np.abs(changed - rate) <= 0.25)
        assert typical >= 0.9, (
            f"with rate = {rate}, only {typical:.0%} of {MUTANTS} calls changed a fraction of "
            f"the genes near {rate} (the average was {changed.mean():.1%}): decide for each "
            "gene separately, not once for the whole genome")


@pytest.mark.points(1)
def test_mutation_noise_has_the_asked_scale(oracle, week, measure):
    """The changes are normal noise with standard deviation `scale`"""
    tolerance = week.thresholds["mutation_scale_tolerance"]
    for k, scale in enumerate((0.1, 1.0)):
        _, changes = mutants(oracle, 1.0, scale, 20 + k)  # rate 1: every gene may change
        assert len(changes) >= MUTANTS, (
            f"`mutate` changed only {len(changes)} genes in {MUTANTS} calls at rate 1.0, too "
            "few to measure the noise")
        spread = float(np.sqrt(np.mean(changes ** 2)))
        measure(f"mutation noise at scale {scale}", spread, threshold=scale)
        # The mean of n draws of N(0, scale) is within 5 scale / sqrt(n) but for 1 in 10^6.
        centred = abs(changes.mean()) <= 5 * scale / np.sqrt(len(changes))
        assert abs(spread / scale - 1) <= tolerance and centred, (
            f"with scale = {scale}, the changes `mutate` made have mean "
            f"{changes.mean():.3f} and root mean square {spread:.3f}: add noise drawn from "
            f"N(0, scale) (rng.normal(0, scale)) to the genes that change")
