"""Write week1.ipynb here: week 1 as an otter-assign master notebook (otter-grader 7).

    .venv/bin/python benchmarks/otter_week1/make_master.py

The benchmark (benchmarks/otter_vs_docker.py) compares our grader with `otter grade`
on the same submissions, so otter needs the same assignment: this copies the exercise
text, given code and reference solutions of source/week1/week1.ipynb and adds otter's
markup (a `# ASSIGNMENT CONFIG` cell, `# BEGIN QUESTION` / `# BEGIN SOLUTION` /
`# BEGIN TESTS` raw cells) with tests equivalent to ours: per exercise 6 points,
1 public (the model maps 4 features to 3 outputs) and 5 hidden (built the asked way,
layer sizes, activations, trained, test accuracy >= 80 %). Otter's tests run inside
the student's kernel (that is how otter works), so they inspect the objects directly
and find the answer cell's source in IPython's input history (`In`).

Answer and training cells carry `metadata.otterbench.cell` = our nbgrader grade_id
(q1, q1_train, ...), so a submission to our grader can be converted to otter's
student notebook cell by cell. Run again after week 1 changes; the output is
deterministic.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_raw_cell

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
SOURCE = ROOT / "source" / "week1" / "week1.ipynb"
MASTER = HERE / "week1.ipynb"

MODELS = {"q1": "sequential_model", "q2": "functional_model", "q3": "subclass_model"}
POINTS = 6  # 1 public + 5 hidden, as in source/week1/{checks,tests}

ASSIGNMENT_CONFIG = """\
# ASSIGNMENT CONFIG
name: week1
requirements: requirements.txt
export_cell: false
generate:
  pdf: false
  show_stdout: true
tests:
  ok_format: false
"""

# The 80 % and 2,400 steps are source/week1/week.toml's thresholds.
PUBLIC_TEST = '''\
def test_{q}_maps_4_features_to_3_probabilities({model}):
    """The model takes 4 features and gives 3 outputs (one per species)"""
    import numpy as np
    probabilities = np.asarray({model}.predict(np.zeros((5, 4), dtype="float32"), verbose=0))
    assert probabilities.shape == (5, 3), (
        f"`{model}` gives {{probabilities.shape[1:]}} values per flower; expected 3")
'''

# How each exercise must be built: the object's classes, then the answer cell's AST
# (the last executed cell that assigns the variable).
ANSWER_TREE = '''\
    import ast
    trees = []
    for source in env.get("In", []):
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        if any(isinstance(target, ast.Name) and target.id == "{model}"
               for node in ast.walk(tree) if isinstance(node, ast.Assign)
               for target in node.targets):
            trees.append(tree)
    assert trees, "no cell assigns `{model}`"
    tree = trees[-1]

    def calls(name):
        return [node for node in ast.walk(tree) if isinstance(node, ast.Call)
                and getattr(node.func, "attr", getattr(node.func, "id", None)) == name]
'''

BUILT_TESTS = {
    "q1": '''\
def test_q1_is_sequential_built_from_a_list(env):
    """Built as keras.Sequential([...]) from a list of layers"""
    model = env.get("sequential_model")
    classes = [c.__name__ for c in type(model).__mro__]
    assert "Sequential" in classes, (
        f"`sequential_model` is a {type(model).__name__}, not a keras.Sequential model")
''' + ANSWER_TREE.format(model="sequential_model") + '''\
    assert [c for c in calls("Sequential") if c.args and isinstance(c.args[0], ast.List)], (
        "create the model with keras.Sequential([...]), passing a list of layers")
    assert not calls("add"), (
        "build the model from the list only: this exercise replaces model.add(...)")
''',
    "q2": '''\
def test_q2_is_built_with_the_functional_api(env):
    """Built with keras.Input, layers called on tensors, and keras.Model(inputs, outputs)"""
    model = env.get("functional_model")
    classes = [c.__name__ for c in type(model).__mro__]
    assert "Functional" in classes and "Sequential" not in classes, (
        f"`functional_model` is a {type(model).__name__}; the functional API makes a "
        "Functional model from keras.Model(inputs=..., outputs=...)")
''' + ANSWER_TREE.format(model="functional_model") + '''\
    assert calls("Input"), "start the functional model from keras.Input(shape=(4,))"
    assert calls("Model"), "finish with keras.Model(inputs=..., outputs=...)"
''',
    "q3": '''\
def test_q3_is_a_keras_model_subclass(env):
    """IrisNet subclasses keras.Model with layers made in __init__ and used in call"""
    model = env.get("subclass_model")
    classes = [c.__name__ for c in type(model).__mro__]
    assert type(model).__module__ == "__main__" and "Model" in classes, (
        f"`subclass_model` is a {type(model).__name__}; it should be an instance of a "
        "class you define, subclassing keras.Model")
    assert "Functional" not in classes, (
        "`subclass_model` should subclass keras.Model itself, not wrap a functional model")
''' + ANSWER_TREE.format(model="subclass_model") + '''\
    subclasses = [node for node in ast.walk(tree) if isinstance(node, ast.ClassDef)
                  and any(getattr(base, "attr", getattr(base, "id", None)) == "Model"
                          for base in node.bases)
                  and {"__init__", "call"} <= {item.name for item in node.body
                                               if isinstance(item, ast.FunctionDef)}]
    assert subclasses, "define a class subclassing keras.Model with both __init__ and call methods"
''',
}

HIDDEN_TESTS = ['''\
def test_{q}_layer_sizes({model}):
    """Two Dense layers: 8 hidden units, 3 outputs"""
    # Functional models list their InputLayer too; our checks skip it as well.
    dense = [(type(layer).__name__, getattr(layer, "units", None)) for layer in {model}.layers
             if type(layer).__name__ != "InputLayer"]
    assert dense == [("Dense", 8), ("Dense", 3)], (
        f"`{model}` has {{dense}}; the lecture's network is Dense(8) followed by Dense(3)")
''', '''\
def test_{q}_activations({model}):
    """ReLU in the hidden layer, softmax at the output"""
    activations = [getattr(getattr(layer, "activation", None), "__name__", None)
                   for layer in {model}.layers if type(layer).__name__ != "InputLayer"]
    assert activations == ["relu", "softmax"], (
        f"`{model}` uses the activations {{activations}}; the lecture's network uses "
        "['relu', 'softmax']")
''', '''\
def test_{q}_was_trained({model}):
    """The model was trained (200 epochs in batches of 8)"""
    import numpy as np
    optimizer = getattr({model}, "optimizer", None)
    steps = int(np.asarray(optimizer.iterations)) if optimizer is not None else 0
    assert steps >= 2400, (
        f"`{model}` made {{steps}} training steps; the given training cell makes 2400. "
        "Run the training cell after building the model")
''', '''\
def test_{q}_test_accuracy({model}):
    """Classifies the held-out test flowers accurately"""
    import numpy as np
    from sklearn.datasets import load_iris
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler
    iris = load_iris()
    X_train, X_test, _, labels = train_test_split(
        iris.data, iris.target, test_size=0.2, random_state=42, stratify=iris.target)
    features = StandardScaler().fit(X_train).transform(X_test).astype("float32")
    probabilities = np.asarray({model}.predict(features, verbose=0))
    # The predictions must come from the model's own weights (NumPy forward pass).
    functions = {{"relu": lambda x: np.maximum(x, 0), "tanh": np.tanh, "linear": lambda x: x,
                 "sigmoid": lambda x: 1 / (1 + np.exp(-x)),
                 "softmax": lambda x: np.exp(x - x.max(1, keepdims=True))
                 / np.exp(x - x.max(1, keepdims=True)).sum(1, keepdims=True)}}
    names = [getattr(getattr(layer, "activation", None), "__name__", None)
             for layer in {model}.layers if type(layer).__name__ != "InputLayer"]
    if all(name in functions for name in names):
        expected, weights = features.astype("float64"), {model}.get_weights()
        for name, kernel, bias in zip(names, weights[0::2], weights[1::2]):
            expected = functions[name](expected @ kernel + bias)
        assert np.allclose(probabilities, expected, atol=1e-4), (
            "the predictions of `{model}` do not match its own weights")
    accuracy = float(np.mean(probabilities.argmax(1) == labels))
    assert accuracy >= 0.8, (
        f"`{model}` classifies {{accuracy:.0%}} of the test flowers correctly; at least "
        "80% is needed")
''']


def test_cell(source: str, hidden: bool) -> nbformat.NotebookNode:
    config = f'""" # BEGIN TEST CONFIG\npoints: 1\nhidden: {str(hidden).lower()}\n""" # END TEST CONFIG\n'
    return new_code_cell(config + source)


def tagged(cell: nbformat.NotebookNode, grade_id: str) -> nbformat.NotebookNode:
    cell.metadata["otterbench"] = {"cell": grade_id}
    return cell


def master() -> nbformat.NotebookNode:
    source = nbformat.read(SOURCE, as_version=4)
    by_id = {cell.metadata["nbgrader"]["grade_id"]: cell for cell in source.cells}
    intro = by_id["intro"].source.replace(
        "Run `autograder check week1.ipynb` to see the public checks before you submit.",
        "Run the `grader.check(...)` cells to see the public tests before you submit.")
    cells = [new_raw_cell(ASSIGNMENT_CONFIG), new_markdown_cell(intro),
             new_code_cell(by_id["setup"].source)]
    for q, model in MODELS.items():
        solution = by_id[q].source.replace("### BEGIN SOLUTION", "# BEGIN SOLUTION").replace(
            "### END SOLUTION", "# END SOLUTION")
        cells += [
            new_raw_cell(f"# BEGIN QUESTION\nname: {q}\npoints: {POINTS}"),
            new_markdown_cell(by_id[f"{q}_text"].source),
            new_raw_cell("# BEGIN SOLUTION"),
            tagged(new_code_cell(solution), q),
            new_raw_cell("# END SOLUTION"),
            # Training belongs to the question, so otter checks it after training.
            tagged(new_code_cell(by_id[f"{q}_train"].source), f"{q}_train"),
            new_raw_cell("# BEGIN TESTS"),
            test_cell(PUBLIC_TEST.format(q=q, model=model), hidden=False),
            test_cell(BUILT_TESTS[q], hidden=True),
            *(test_cell(test.format(q=q, model=model), hidden=True) for test in HIDDEN_TESTS),
            new_raw_cell("# END TESTS"),
            new_raw_cell("# END QUESTION"),
        ]
    cells += [new_markdown_cell(by_id["compare_text"].source),
              new_code_cell(by_id["compare"].source)]
    notebook = new_notebook(cells=cells, metadata={
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"}})
    for number, cell in enumerate(notebook.cells):
        cell["id"] = f"cell-{number}"  # stable ids: the file is deterministic
    return notebook


if __name__ == "__main__":
    nbformat.write(master(), MASTER)
    print(f"wrote {MASTER.relative_to(ROOT)}")
