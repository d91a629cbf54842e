"""Hidden checks for week 3: an ANN and a CNN for CIFAR-10, a network with memory for IMDB.

Accuracy is computed here, from the model's predictions on the test split (inputs this
side sends, labels the kernel never sees: the sandbox can read only the train files).
The architecture comes from the model's own description (nested models included).
An accuracy counts only for the kind of network the exercise asks for: a CNN cannot
earn the ANN's tiers, and a model without a recurrent layer not the IMDB points.

Measured by grading the reference notebook with seeds 1 and 2 (the committed one uses 1):
ANN 56.1 / 55.6 % (tiers 30/40/50 %), CNN 70.9 / 70.5 % (needs 60 %), IMDB 91.3 / 90.6 %
(needs 90 %; a recurrent model reaches 90 % only with a thin margin).
"""

import pytest

from autograder.grading import checks

# Layers a fully connected network may use: no convolution, no recurrence, no attention.
ANN_LAYERS = {
    "InputLayer", "Flatten", "Reshape", "Dense", "Activation", "ReLU", "LeakyReLU", "PReLU",
    "ELU", "Softmax", "Dropout", "AlphaDropout", "GaussianDropout", "GaussianNoise",
    "BatchNormalization", "LayerNormalization", "GroupNormalization", "UnitNormalization",
    "Normalization", "Rescaling", "Identity", "Sequential", "Functional",
}
POOLING = ("MaxPooling", "AveragePooling", "GlobalMaxPooling", "GlobalAveragePooling")
RECURRENT = {"SimpleRNN", "LSTM", "GRU", "RNN", "ConvLSTM1D", "ConvLSTM2D", "ConvLSTM3D"}


def all_layers(description: dict) -> list[dict]:
    """Every layer, nested models' layers included, as the probe described them."""
    found = []
    for layer in description.get("layers", []):
        if isinstance(layer, dict):
            found.append(layer)
            found.extend(all_layers(layer))
    return found


def kinds(description: dict) -> list[str]:
    """Class names of all layers, a wrapper counted with what it wraps (Bidirectional(GRU))."""
    names = []
    for layer in all_layers(description):
        names.append(str(layer.get("class_name")))
        if layer.get("wrapped"):
            names.append(str(layer["wrapped"]))
    return names


def convolutions(description: dict) -> list[str]:
    return [kind for kind in kinds(description) if kind.startswith(("Conv", "DepthwiseConv",
                                                                     "SeparableConv"))]


def report_parameters(measure, oracle, name: str) -> dict:
    description = oracle.describe(name)
    count = description.get("params", 0)
    if isinstance(count, int) and not isinstance(count, bool):
        measure(f"{name} parameters", count, text=f"`{name}` has {count:,} parameters")
    return description


def check_accuracy(measure, name: str, accuracy: float, needed: float, what: str) -> None:
    text = f"`{name}` classifies {accuracy:.1%} of the {what} correctly (needs {needed:.0%})"
    measure(f"{name} test accuracy", accuracy, threshold=needed, text=text)
    assert accuracy >= needed, text  # shown once: the note repeats no failure message


# -- exercise 1: ANN --------------------------------------------------------------------
@pytest.mark.question("q1")
@pytest.mark.points(1)
def test_ann_is_fully_connected(oracle, measure):
    """The ANN is fully connected (no convolution)"""
    description = report_parameters(measure, oracle, "ann_model")
    assert "layers" in description, (
        f"`ann_model` is a {description['type']}, not a Keras model")
    other = sorted(set(kinds(description)) - ANN_LAYERS)
    assert not other, (
        f"`ann_model` uses {', '.join(other)}; the ANN may only flatten the image and use "
        "Dense layers (with normalization, dropout and activation layers)")
    assert "Dense" in kinds(description), "`ann_model` has no Dense layer"


@pytest.mark.question("q1")
@pytest.mark.points(1)
def test_ann_accuracy_tier(oracle, measure, cifar10_test, ann_tier):
    """The ANN reaches {ann_tier:.0%} test accuracy"""
    description = oracle.describe("ann_model")
    convolution = convolutions(description)
    assert not convolution, (
        f"`ann_model` uses {', '.join(sorted(set(convolution)))}: the accuracy tiers are for a "
        "network without convolution")
    images, labels = cifar10_test
    scores = oracle.predict("ann_model", images, outputs=10)
    check_accuracy(measure, "ann_model", checks.accuracy(scores, labels), ann_tier,
                   "10,000 test images")


# -- exercise 2: CNN --------------------------------------------------------------------
@pytest.mark.question("q2")
@pytest.mark.points(1)
def test_cnn_has_convolution(oracle, measure):
    """The CNN has convolution layers"""
    description = report_parameters(measure, oracle, "cnn_model")
    assert convolutions(description), (
        f"`cnn_model` has {checks.layer_summary(description)}: no convolution layer "
        "(layers.Conv2D)")


@pytest.mark.question("q2")
@pytest.mark.points(1)
def test_cnn_has_pooling(oracle):
    """The CNN has pooling layers"""
    description = oracle.describe("cnn_model")
    assert any(kind.startswith(POOLING) for kind in kinds(description)), (
        f"`cnn_model` has {checks.layer_summary(description)}: no pooling layer "
        "(layers.MaxPooling2D or layers.AveragePooling2D)")


@pytest.mark.question("q2")
@pytest.mark.points(2)
def test_cnn_accuracy(oracle, measure, week, cifar10_test):
    """The CNN reaches the asked test accuracy"""
    assert convolutions(oracle.describe("cnn_model")), (
        "`cnn_model` has no convolution layer: this accuracy is for a convolutional network")
    images, labels = cifar10_test
    scores = oracle.predict("cnn_model", images, outputs=10)
    check_accuracy(measure, "cnn_model", checks.accuracy(scores, labels),
                   week.thresholds["cnn_accuracy"], "10,000 test images")


# -- exercise 3: IMDB ---------------------------------------------------------------------
@pytest.mark.question("q3")
@pytest.mark.points(1)
def test_imdb_has_memory(oracle, measure):
    """The IMDB model has a recurrent layer"""
    description = report_parameters(measure, oracle, "imdb_model")
    assert RECURRENT & set(kinds(description)), (
        f"`imdb_model` has {checks.layer_summary(description)}: no recurrent layer "
        "(layers.SimpleRNN, LSTM or GRU, possibly inside Bidirectional)")


@pytest.mark.question("q3")
@pytest.mark.points(2)
def test_imdb_accuracy(oracle, measure, week, imdb_test):
    """The IMDB model reaches the asked test accuracy on raw reviews"""
    assert RECURRENT & set(kinds(oracle.describe("imdb_model"))), (
        "`imdb_model` has no recurrent layer: this accuracy is for a network with memory")
    reviews, labels = imdb_test
    probabilities = oracle.predict_texts("imdb_model", reviews, outputs=1)
    assert ((probabilities >= 0) & (probabilities <= 1)).all(), (
        "`imdb_model` should give a probability (0 to 1) per review: end it with "
        "Dense(1, activation=\"sigmoid\")")
    check_accuracy(measure, "imdb_model", checks.accuracy(probabilities, labels),
                   week.thresholds["imdb_accuracy"], "25,000 test reviews")
