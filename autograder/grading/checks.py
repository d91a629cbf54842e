"""Trusted helpers that weeks' tests share: reading model descriptions, computing
metrics, and inspecting answer source with ``ast`` (parsed, never executed)."""

from __future__ import annotations

import ast
import re

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


# -- what answer source may not reach -------------------------------------------------
# Ways to reach a module or object without naming it where ``ast`` sees it: dynamic
# import and evaluation, the interpreter's namespaces, and the attributes that lead
# from any object to them (``f.__globals__``, ``().__class__.__subclasses__()``).
DYNAMIC_NAMES = frozenset({"__import__", "importlib", "eval", "exec", "compile", "globals",
                           "locals", "vars", "__builtins__", "builtins", "sys", "breakpoint"})
ATTRIBUTE_CALLS = frozenset({"getattr", "setattr", "delattr", "hasattr"})
HARMLESS_DUNDERS = frozenset({"__init__", "__call__", "__name__", "__doc__", "__len__",
                              "__repr__", "__str__"})
_DOTTED = re.compile(r"[A-Za-z_][\w.]*")


def banned_uses(source: str, modules: frozenset, names: frozenset = frozenset(),
                question: str = "the answer", *, bare_names: bool = False) -> list[str]:
    """Where ``source`` reaches for a banned module (``modules``: imports of it or of its
    submodules, its dotted name in a string), a banned attribute (``names``, such as
    ``GradientTape`` or ``minimize``), or for the machinery that could reach either
    unseen (``__import__``, ``eval``, ``getattr`` with a computed name, dunder
    attributes). With ``bare_names`` the names are banned as plain names and imported
    names too (``from numpy import gradient``), for a week whose banned names are words
    students would otherwise be free to use. One message per line; an empty list when
    it uses none."""
    tree = parse(source, question)
    def banned_module(dotted: str) -> bool:
        parts = dotted.split(".")
        return any(".".join(parts[:i]) in modules for i in range(1, len(parts) + 1))

    found = []
    for node in ast.walk(tree):
        line = getattr(node, "lineno", 0)
        problem = None
        if isinstance(node, ast.Import):
            bad = [a.name for a in node.names if banned_module(a.name)
                   or (bare_names and a.name.split(".")[-1] in names)]
            problem = f"imports {bad[0]}" if bad else None
        elif isinstance(node, ast.ImportFrom):
            full = [f"{node.module}.{a.name}" for a in node.names]
            if banned_module(node.module or "") or any(banned_module(f) for f in full):
                problem = f"imports from {node.module}"
            elif bare_names and any(a.name in names for a in node.names):
                problem = f"imports `{next(a.name for a in node.names if a.name in names)}`"
        elif isinstance(node, ast.Name) and node.id in DYNAMIC_NAMES:
            problem = f"uses `{node.id}`"
        elif bare_names and isinstance(node, ast.Name) and node.id in names:
            problem = f"uses `{node.id}`"
        elif isinstance(node, ast.Attribute):
            if node.attr in names:
                problem = f"uses `{node.attr}`"
            elif node.attr.startswith("__") and node.attr not in HARMLESS_DUNDERS:
                problem = f"reaches into `{node.attr}`"
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                and node.func.id in ATTRIBUTE_CALLS:
            attribute = node.args[1] if len(node.args) > 1 else None
            if not (isinstance(attribute, ast.Constant) and isinstance(attribute.value, str)):
                problem = f"calls {node.func.id} with a computed name (use a dict instead)"
            elif attribute.value in names or attribute.value.startswith("__"):
                problem = f"calls {node.func.id}(..., {attribute.value!r})"
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) \
                and _DOTTED.fullmatch(node.value) and (
                    banned_module(node.value) or node.value.split(".")[-1] in names):
            problem = f"names {node.value!r}"
        if problem:
            found.append(f"line {line} of {question} {problem}")
    return sorted(set(found), key=lambda text: int(text.split()[1]))
