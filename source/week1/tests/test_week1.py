"""Hidden checks for week 1: the iris network built three ways.

Every check asks the ``oracle`` (models rebuilt in clean rooms) for plain data and
decides here. Accuracy is computed here by a forward pass of the model's own layers on
test flowers whose labels stay on this side, after the model's predictions were found
to agree with it, so they cannot come from anywhere but that network.
"""

import ast

import pytest

from autograder.grading import checks

MODELS = {"q1": "sequential_model", "q2": "functional_model", "q3": "subclass_model"}


def each_exercise(points):
    """Run a check once per exercise, each counted under its own question."""
    return pytest.mark.parametrize("question", [
        pytest.param(q, id=q, marks=[pytest.mark.question(q), pytest.mark.points(points)])
        for q in MODELS])


@pytest.mark.question("q1")
@pytest.mark.points(1)
def test_q1_is_sequential_built_from_a_list(oracle, answer_source):
    """Built as keras.Sequential([...]) from a list of layers"""
    description = oracle.describe("sequential_model")
    assert checks.is_subclass(description, checks.SEQUENTIAL), (
        f"`sequential_model` is a {description['type']}, not a keras.Sequential model")
    tree = checks.parse(answer_source("q1"), "q1")
    from_list = [call for call in checks.calls(tree, "Sequential")
                 if call.args and isinstance(call.args[0], ast.List)]
    assert from_list, "create the model with keras.Sequential([...]), passing a list of layers"
    assert not checks.calls(tree, "add"), (
        "build the model from the list only: this exercise replaces model.add(...)")


@pytest.mark.question("q2")
@pytest.mark.points(1)
def test_q2_is_built_with_the_functional_api(oracle, answer_source):
    """Built with keras.Input, layers called on tensors, and keras.Model(inputs, outputs)"""
    description = oracle.describe("functional_model")
    assert checks.is_subclass(description, checks.FUNCTIONAL) and not checks.is_subclass(
        description, checks.SEQUENTIAL), (
        f"`functional_model` is a {description['type']}; the functional API makes a "
        "Functional model from keras.Model(inputs=..., outputs=...)")
    tree = checks.parse(answer_source("q2"), "q2")
    assert checks.calls(tree, "Input"), "start the functional model from keras.Input(shape=(4,))"
    assert checks.calls(tree, "Model"), "finish with keras.Model(inputs=..., outputs=...)"


@pytest.mark.question("q3")
@pytest.mark.points(1)
def test_q3_is_a_keras_model_subclass(oracle, answer_source):
    """IrisNet subclasses keras.Model with layers made in __init__ and used in call"""
    description = oracle.describe("subclass_model")
    assert checks.defined_in_notebook(description) and checks.is_subclass(
        description, checks.KERAS_MODEL), (
        f"`subclass_model` is a {description['type']}; it should be an instance of a "
        "class you define, subclassing keras.Model")
    assert not checks.is_subclass(description, checks.FUNCTIONAL), (
        "`subclass_model` should subclass keras.Model itself, not wrap a functional model")
    tree = checks.parse(answer_source("q3"), "q3")
    classes = [c for c in checks.subclasses(tree, "Model") if {"__init__", "call"} <= checks.methods(c)]
    assert classes, "define a class subclassing keras.Model with both __init__ and call methods"


@each_exercise(points=1)
def test_layer_sizes(question, oracle):
    """Two Dense layers: 8 hidden units, 3 outputs"""
    name = MODELS[question]
    description = oracle.describe(name)
    dense = checks.layers(description)
    units = [layer.get("units") for layer in dense]
    assert [layer.get("class_name") for layer in dense] == ["Dense", "Dense"] and units == [8, 3], (
        f"`{name}` has {checks.layer_summary(description)}; the lecture's network is "
        "Dense(8) followed by Dense(3)")


@each_exercise(points=1)
def test_activations(question, oracle):
    """ReLU in the hidden layer, softmax at the output"""
    name = MODELS[question]
    activations = [layer.get("activation") for layer in checks.layers(oracle.describe(name))]
    assert activations == ["relu", "softmax"], (
        f"`{name}` uses the activations {activations}; the lecture's network uses "
        "['relu', 'softmax']")


@each_exercise(points=1)
def test_was_trained(question, oracle, week):
    """The model was trained (200 epochs in batches of 8)"""
    name = MODELS[question]
    steps = oracle.describe(name).get("iterations", 0)
    wanted = week.thresholds["training_steps"]
    assert isinstance(steps, int) and steps >= wanted, (
        f"`{name}` made {steps} training steps; the given training cell makes {wanted}. "
        "Run the training cell after building the model")


@each_exercise(points=1)
def test_test_accuracy(question, oracle, week, iris_test):
    """Classifies the held-out test flowers accurately"""
    name = MODELS[question]
    features, labels = iris_test
    accuracy = checks.accuracy(checks.dense_outputs(oracle, name, features), labels)
    wanted = week.thresholds["test_accuracy"]
    assert accuracy >= wanted, (
        f"`{name}` classifies {accuracy:.0%} of the test flowers correctly; at least "
        f"{wanted:.0%} is needed")
