"""Where a model came from: answer cells that load weights or carry large literals.

A model trained elsewhere (on the public test split, say) and pasted into an
answer is not a lie about what it computes, and the clean room scores it as the
model it is. Whether it was earned is a question for the TA, so such answers are
flagged, with the line, in grader.log, in results.json (``extra_data.provenance``)
and in the gradebook's ``provenance`` column. Read with ``ast``, never run.
"""

from __future__ import annotations

import ast

# Calls that bring weights, models or data from files into an answer.
LOADERS = {"set_weights", "load_weights", "load_model", "load", "loads", "loadtxt",
           "genfromtxt", "fromfile", "frombuffer", "load_variables", "urlopen",
           "urlretrieve", "get_file", "b64decode", "decompress"}
LARGE_TEXT = 2_000     # characters of one string or bytes literal
LARGE_SEQUENCE = 200   # elements of one list, tuple or set literal


def flags(answers: dict[str, str]) -> list[str]:
    """One line per suspicious statement, by question: "q3 line 4: calls load_weights"."""
    found = []
    for question, source in answers.items():
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            what = _suspicious(node)
            if what:
                found.append(f"{question} line {getattr(node, 'lineno', '?')}: {what}")
    return sorted(set(found), key=found.index)


def _suspicious(node: ast.AST) -> str | None:
    if isinstance(node, ast.Call):
        name = node.func.attr if isinstance(node.func, ast.Attribute) else \
            node.func.id if isinstance(node.func, ast.Name) else ""
        if name in LOADERS:
            return f"calls {name}(...)"
    if isinstance(node, ast.Constant) and isinstance(node.value, (str, bytes)) \
            and len(node.value) > LARGE_TEXT:
        return f"holds a literal of {len(node.value):,} characters"
    if isinstance(node, (ast.List, ast.Tuple, ast.Set)) and len(node.elts) > LARGE_SEQUENCE:
        return f"holds a literal of {len(node.elts):,} elements"
    return None
