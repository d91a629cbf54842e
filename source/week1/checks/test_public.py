"""Public checks for week 1: students run these with `autograder check week1.ipynb`.

They only check that each model exists and has the right shape; the hidden
checks test how it was built, its layers, its training and its accuracy.
"""

import numpy as np
import pytest

MODELS = {"q1": "sequential_model", "q2": "functional_model", "q3": "subclass_model"}


@pytest.mark.parametrize("question", [
    pytest.param(q, id=q, marks=[pytest.mark.question(q), pytest.mark.points(1)]) for q in MODELS])
def test_model_maps_4_features_to_3_probabilities(question, oracle):
    """The model takes 4 features and gives 3 outputs (one per species)"""
    name = MODELS[question]
    probabilities = oracle.predict(name, np.zeros((5, 4), dtype=np.float32), outputs=3)
    assert probabilities.shape == (5, 3), (
        f"`{name}` gives {probabilities.shape[1:]} values per flower; expected 3")
