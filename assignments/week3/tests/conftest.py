"""Trusted data for week 3's checks: the test splits, which never enter the kernel.

They come from the grader's data cache (``autograder.data``), where the sandbox can
read only the train files.
"""

from pathlib import Path

import numpy as np
import pytest

from autograder import data
from autograder.weeks import Week


def pytest_generate_tests(metafunc):
    """One ANN accuracy check per tier of week.toml (``ann_accuracy_tiers``)."""
    if "ann_tier" in metafunc.fixturenames:
        week = Week.load(Path(metafunc.config.getoption("--ag-week")))
        tiers = week.thresholds["ann_accuracy_tiers"]
        metafunc.parametrize("ann_tier", tiers, ids=[f"{tier:.0%}" for tier in tiers])


@pytest.fixture(scope="session")
def cifar10_test():
    """The 10,000 test images as float32 scaled to [0, 1], like the notebook's, and labels."""
    images, labels = data.load("cifar10", "test")
    return images.astype(np.float32) / 255.0, labels


@pytest.fixture(scope="session")
def imdb_test():
    """The 25,000 test reviews (str, line breaks removed like the notebook's) and labels."""
    return data.load("imdb", "test")
