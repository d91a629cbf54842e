"""Clean rooms of a week whose answers may use NumPy only (``[clean_room] imports``):
what definitions may import, what the room refuses at run time too, rooms that run the
definitions of the questions they build on (``uses``), and ``checks.banned_uses``, the
hidden checks' reading of answer source for banned machinery."""

from __future__ import annotations

import textwrap

import nbformat
import numpy as np
import pytest

from autograder.errors import ConfigError
from autograder.grading.checks import banned_uses
from autograder.grading.cleanroom import CleanRooms, definitions
from autograder.grading.export import Export
from autograder.grading.oracle import Oracle, OracleError
from autograder.weeks import Week

WEEK_TOML = """
name = "numpyweek"
notebook = "numpyweek.ipynb"
[questions.q1]
title = "Network"
[questions.q2]
title = "Training"
[clean_room]
imports = ["numpy", "math"]
[rooms.q1]
define = ["double", "uses_tf"]
[rooms.q2]
define = ["train", "probe_modules"]
uses = ["q1"]
[limits]
cell_timeout = 60
total_time = 120
memory_mb = 1024
"""

GIVEN = "import numpy as np\nfrom sklearn.datasets import load_digits\nOFFSET = 1.0\n"
ANSWERS = {
    "q1": "import numpy as np\nimport tensorflow as tf\n\ndef double(x):\n    return 2 * x\n"
          "\ndef uses_tf(x):\n    return tf.constant(x)\n",
    "q2": textwrap.dedent("""
        class Network:
            def fit(self, x):  # a NumPy class may have its own fit
                return double(x) + OFFSET

        def train(x):
            return Network().fit(x)

        def probe_modules(x):
            import sys
            return np.array([float(name in sys.modules) for name in ("tensorflow", "keras")])

        def sneak(x):
            return __import__("tensorflow").constant(x)
        """),
}


def write_week(folder, text=WEEK_TOML) -> Week:
    (folder / "week.toml").write_text(text)
    return Week.load(folder)


@pytest.mark.parametrize("change, message", [
    ('imports = ["numpy", "math"]', None),
    ('imports = ["numpy", "torch"]', "[clean_room] imports"),
    ('uses = ["q1"]', None),
    ('uses = ["q7"]', "unknown questions ['q7']"),
])
def test_the_config_names_known_questions_and_allowed_modules(tmp_path, change, message):
    key = change.split(" = ")[0]
    text = "\n".join(change if line.startswith(key + " = ") else line
                     for line in WEEK_TOML.splitlines())
    if message is None:
        write_week(tmp_path, text)
    else:
        with pytest.raises(ConfigError, match=message.replace("[", r"\[")):
            write_week(tmp_path, text)


def test_definitions_of_a_numpy_week_import_numpy_only_and_may_define_fit():
    numpy_only = frozenset({"numpy", "math"})
    found = definitions(ANSWERS["q1"] + ANSWERS["q2"], importable=numpy_only)
    assert {"np", "double", "Network", "train"} <= found.names and "tf" not in found.names
    assert found.left_out == ["line 2 of the answer: only math, numpy may be imported here, "
                              "not tensorflow"]
    # Where Keras can be imported, a class may not replace its machinery.
    assert "Network" not in definitions(ANSWERS["q2"]).names


@pytest.fixture(scope="module")
def rooms(tmp_path_factory):
    week = write_week(tmp_path_factory.mktemp("numpyweek"))
    release = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(GIVEN)])
    found = CleanRooms(week, {}, ANSWERS, release)
    yield found
    found.close()


def test_a_room_runs_the_definitions_of_the_questions_it_uses(rooms):
    room = rooms.room("q2")
    assert not room.problem, room.problem
    assert room.client.call("train", np.arange(3.0))[0].tolist() == [1.0, 3.0, 5.0]
    assert any("may be imported" in note for note in room.notes)  # q1's tensorflow import


def test_a_numpy_room_neither_loads_nor_lets_code_import_tensorflow(rooms):
    room = rooms.room("q2")
    assert room.client.call("probe_modules", np.zeros(1))[0].tolist() == [0.0, 0.0]
    with pytest.raises(OracleError, match="not available in the grader's clean room"):
        room.client.call("sneak", np.zeros(1))


BANNED_MODULES = frozenset({"tensorflow", "keras", "jax", "torch", "autograd", "sklearn",
                            "scipy.optimize"})
BANNED_NAMES = frozenset({"GradientTape", "minimize"})


@pytest.mark.parametrize("source", [
    "import tensorflow as tf",
    "import jax.numpy as jnp",
    "from autograd import grad",
    "from scipy import optimize",
    "from scipy.optimize import minimize",
    "from sklearn.neural_network import MLPClassifier",
    "def f():\n    import torch\n    return torch",
    "m = __import__('tensorflow')",
    "m = __import__('tensor' + 'flow')",
    "import importlib\nm = importlib.import_module('keras')",
    "f = eval('lambda: 1')",
    "exec('import keras')",
    "g = globals()",
    "import sys\nm = sys.modules",
    "def f(x, name):\n    return getattr(x, name)",
    "def f(x):\n    return getattr(x, 'GradientTape')",
    "def f(x):\n    return x.__class__.__subclasses__()",
    "def f(x):\n    return f.__globals__",
    "def f(tape):\n    return tape.GradientTape()",
    "NAME = 'keras.optimizers'",
    "def f(x):\n    return x.minimize()",
])
def test_every_way_to_reach_gradient_machinery_is_named(source):
    problems = banned_uses(source, BANNED_MODULES, BANNED_NAMES, "q1")
    assert problems and all(p.startswith("line ") and " of q1 " in p for p in problems), problems


def test_honest_numpy_answers_use_nothing_banned():
    honest = textwrap.dedent('''
        import numpy as np
        import math
        from scipy import special

        ACTIVATIONS = {"tanh": np.tanh}

        class Network:
            """Uses tensorflow's conventions for nothing."""
            def __init__(self, sizes):
                super().__init__()
                self.sizes = sizes

            def gradients(self, x, y):
                grad = np.zeros(3)
                return ACTIVATIONS["tanh"](grad), getattr(self, "sizes"), type(self).__name__
        ''')
    assert banned_uses(honest, BANNED_MODULES, BANNED_NAMES, "q1") == []


def test_a_failing_call_names_what_the_room_left_out(rooms):
    """The left-out import surfaces as a NameError; the message says why it is missing."""
    with pytest.raises(OracleError) as raised:
        Oracle(Export(), rooms).call("uses_tf", np.zeros(1))
    message = str(raised.value)
    assert "NameError" in message and "tf" in message, message
    assert "line 2 of your answer to q1: only math, numpy may be imported here, not " \
        "tensorflow" in message, message


@pytest.mark.parametrize("source", [
    "from numpy import gradient",
    "import numpy.gradient",
    "def f(x):\n    return minimize(x)",
])
def test_bare_names_are_banned_only_where_a_week_asks(source):
    """Week 5 reserves words like ``gradient``: banned also as plain and imported names.
    Elsewhere a plain name is the student's own (week 0's ``grad`` methods)."""
    names = frozenset({"gradient", "minimize"})
    assert banned_uses(source, BANNED_MODULES, names, "q1", bare_names=True)
    assert banned_uses(source, BANNED_MODULES, names, "q1") == []
