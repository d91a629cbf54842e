"""Week 5 graded end to end, beyond each sample's outcome (tests/test_samples.py, where
the realistic mistakes are: roulette selection on negative fitness, mutation decided once
per genome, fitness as the accuracy, crossover that averages, evolution that never
replaces its population, a crossover that crashes): the figures the reference reports.

Each grading runs the notebook (one evolution of 150 generations, about 2 s) and the
grader's own evolutions in the clean room (three of 120 generations): about 15 s each here.
"""

from __future__ import annotations

import pytest
from conftest import measured, results_of


@pytest.fixture(scope="module")
def graded_samples(graded_class):
    """`autograder grade week5 source/week5/samples ... --out DIR`, as a TA runs it."""
    return graded_class("week5")[0]


@pytest.mark.grading
def test_reference_reports_every_measured_figure(graded_samples):
    results = results_of(graded_samples, "correct")
    figures = measured(results)
    assert figures["held-out accuracy (grader's splits)"] >= 0.9
    assert figures["notebook fitness gain"] >= 0.5
    assert figures["selection advantage (negative fitness)"] >= 0.5
    assert abs(figures["changed fraction at rate 0.2"] - 0.2) <= 0.01
    assert abs(figures["share of parent_a's genes"] - 0.5) <= 0.02


@pytest.mark.grading
def test_roulette_selection_favours_the_worst_on_negative_fitness(graded_samples):
    """The near miss's roulette wheel prefers the fitter on positive values only."""
    figures = measured(results_of(graded_samples, "nearmiss"))
    assert figures["selection advantage (positive fitness)"] >= 0.1
    assert figures["selection advantage (negative fitness)"] < 0
