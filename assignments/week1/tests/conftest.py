"""Trusted data for week 1's checks: the notebook's split, recomputed here."""

import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler


@pytest.fixture(scope="session")
def iris_test():
    """Standardised test features and their labels (the labels never enter the kernel)."""
    iris = load_iris()
    X_train, X_test, _, labels_test = train_test_split(
        iris.data, iris.target, test_size=0.2, random_state=42, stratify=iris.target)
    scaler = StandardScaler().fit(X_train)
    return scaler.transform(X_test).astype(np.float32), labels_test
