"""Public checks for week 3: students run these with `autograder check week3.ipynb`.

They only check that each model exists and takes and gives what the exercise says; the
hidden checks test the architectures and the accuracy on the test splits.
"""

import numpy as np
import pytest

REVIEWS = ["A wonderful film: the cast is superb and the story moving.",
           "Dull, too long, and the ending makes no sense. Avoid it."]


@pytest.mark.parametrize("question, name", [
    pytest.param("q1", "ann_model", id="q1", marks=[pytest.mark.question("q1"),
                                                    pytest.mark.points(1)]),
    pytest.param("q2", "cnn_model", id="q2", marks=[pytest.mark.question("q2"),
                                                    pytest.mark.points(1)])])
def test_model_maps_images_to_10_scores(question, name, oracle):
    """The model takes 32x32 colour images and gives 10 scores (one per class)"""
    scores = oracle.predict(name, np.zeros((4, 32, 32, 3), dtype=np.float32), outputs=10)
    assert scores.shape == (4, 10), (
        f"`{name}` gives {scores.shape[1:]} values per image; expected 10")


@pytest.mark.question("q3")
@pytest.mark.points(1)
def test_imdb_model_maps_raw_reviews_to_a_probability(oracle):
    """The IMDB model takes raw review strings and gives one probability each"""
    probabilities = oracle.predict_texts("imdb_model", REVIEWS, outputs=1)
    assert probabilities.shape == (2, 1), (
        f"`imdb_model` gives {probabilities.shape[1:]} values per review; expected 1")
    assert ((probabilities >= 0) & (probabilities <= 1)).all(), (
        "`imdb_model` should give a probability (0 to 1) per review: end it with "
        "Dense(1, activation=\"sigmoid\")")
