"""Week 4 graded end to end, beyond each sample's outcome (tests/test_samples.py, where
the realistic mistakes are: regularisation that changes the network or is too weak to
help, a loss without its threshold, a physics network with g written into it): the
figures the reference reports.

Each sample runs the whole notebook (three 100-epoch trainings on the well, one
on the projectile, two retrainings by the grader): about 2 minutes each here.
"""

from __future__ import annotations

import pytest
from conftest import measured, results_of


@pytest.fixture(scope="module")
def graded_samples(graded_class):
    """`autograder grade week4 source/week4/samples ... --out DIR`, as a TA runs it."""
    return graded_class("week4")[0]


@pytest.mark.grading
def test_reference_reports_every_measured_figure(graded_samples):
    results = results_of(graded_samples, "correct")
    figures = measured(results)
    assert figures["regularised gap / baseline gap"] <= 0.5
    assert figures["regularised improvement on fresh data (%)"] >= 1.0
    assert figures["physics-guided improvement on fresh data (%)"] >= 0.4
    assert abs(figures["learned g"] - 9.7) <= 0.1
    assert abs(figures["retrained g (mars)"] - 3.7) <= 0.25
