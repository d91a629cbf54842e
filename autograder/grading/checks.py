"""Trusted helpers that weeks' tests share: reading model descriptions, computing
metrics, and inspecting answer source with ``ast`` (parsed, never executed)."""

from __future__ import annotations

import ast

import numpy as np

FUNCTIONAL = "keras.src.models.functional.Functional"
SEQUENTIAL = "keras.src.models.sequential.Sequential"
KERAS_MODEL = "keras.src.models.model.Model"


# -- model descriptions (from oracle.describe) ----------------------------------
def layers(description: dict, *, skip=("InputLayer",)) -> list[dict]:
    return [layer for layer in description.get("layers", []) if layer.get("class_name") not in skip]


def layer_summary(description: dict) -> str:
    parts = []
    for layer in layers(description):
        detail = ", ".join(str(layer[k]) for k in ("units", "filters", "activation") if k in layer)
        parts.append(f"{layer.get('class_name')}({detail})")
    return ", ".join(parts) or "no layers"


def is_subclass(description: dict, qualified_name: str) -> bool:
    return qualified_name in description.get("mro", [])


def defined_in_notebook(description: dict) -> bool:
    mro = description.get("mro", [])
    return bool(mro) and mro[0].startswith("__main__.")


# -- metrics --------------------------------------------------------------------
def accuracy(scores: np.ndarray, labels: np.ndarray) -> float:
    """Share of rows whose highest score is the true label (or > 0.5 for one column)."""
    if scores.ndim == 2 and scores.shape[1] > 1:
        predicted = scores.argmax(axis=1)
    else:
        predicted = (scores.reshape(-1) > 0.5).astype(int)
    return float(np.mean(predicted == np.asarray(labels).reshape(-1)))


ACTIVATIONS = {
    "linear": lambda z: z,
    "relu": lambda z: np.maximum(z, 0),
    "tanh": np.tanh,
    "sigmoid": lambda z: 1 / (1 + np.exp(-z)),
    "softmax": lambda z: np.exp(z - z.max(axis=1, keepdims=True))
    / np.exp(z - z.max(axis=1, keepdims=True)).sum(axis=1, keepdims=True),
}


def dense_forward(weights: list[np.ndarray], activations: list[str], inputs: np.ndarray):
    """The forward pass of a stack of Dense layers, computed here from its weights.

    None when an activation is not one we can compute, so callers skip the check.
    """
    if len(weights) != 2 * len(activations) or any(a not in ACTIVATIONS for a in activations):
        return None
    values = np.asarray(inputs, dtype=np.float64)
    for (kernel, bias), activation in zip(zip(weights[::2], weights[1::2]), activations):
        if kernel.ndim != 2 or kernel.shape[0] != values.shape[1] or bias.shape != kernel.shape[1:]:
            return None
        values = ACTIVATIONS[activation](values @ kernel + bias)
    return values


def dense_outputs(oracle, name: str, inputs: np.ndarray, *, atol: float = 1e-4) -> np.ndarray:
    """``name``'s outputs at ``inputs``, computed here by a NumPy forward pass of its Dense
    layers (weights and activations of the rebuilt model), after checking that the model's
    own predictions agree. For a class students define, whose ``call`` runs their code in
    its clean room, this is what makes a ``call`` that answers from anything but its
    layers (a lookup of known labels, say) fail instead of score."""
    description = oracle.describe(name)
    activations = [layer.get("activation") for layer in layers(description)]
    expected = dense_forward(oracle.weights(name), activations, inputs)
    assert expected is not None, (
        f"`{name}` has {layer_summary(description)}: its outputs can be checked only for "
        f"Dense layers with the activations {sorted(ACTIVATIONS)}")
    predicted = oracle.predict(name, inputs, outputs=expected.shape[1])
    assert np.allclose(predicted, expected, atol=atol), (
        f"the predictions of `{name}` do not match a forward pass through its own layers: "
        "`call` must compute the network from its layers")
    return expected


# -- answer source ----------------------------------------------------------------
def parse(source: str, question: str) -> ast.Module:
    try:
        return ast.parse(source)
    except SyntaxError as error:
        raise AssertionError(f"the answer to {question} has a syntax error on line "
                             f"{error.lineno}: {error.msg}") from None


def _name(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return ""


def calls(tree: ast.AST, name: str) -> list[ast.Call]:
    """Calls to ``name(...)`` or ``anything.name(...)``."""
    return [n for n in ast.walk(tree) if isinstance(n, ast.Call) and _name(n.func) == name]


def subclasses(tree: ast.AST, base: str) -> list[ast.ClassDef]:
    return [n for n in ast.walk(tree)
            if isinstance(n, ast.ClassDef) and any(_name(b) == base for b in n.bases)]


def methods(cls: ast.ClassDef) -> set[str]:
    return {n.name for n in cls.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
