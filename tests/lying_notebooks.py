"""Notebooks whose kernel lies, each next to its honest twin (the same answers without
the lie), for tests/test_lying_notebooks.py.

Each lie is a class of attack on a grader that asks the student's kernel what its
models compute: a probe replaced by one that invents descriptions and answers
predictions from what the kernel knows (the iris test labels are in the given code;
CIFAR-10 and IMDB test splits are stored class by class), ``predict`` and
``__call__`` made to disagree, answer cells relabelled in their metadata, given cells
edited, a given function rebound by the answer, g written into a class. The grader
must score each liar no higher than its twin, check by check.
"""

from __future__ import annotations

import copy

import nbformat
import week1_submissions
import week2_submissions
import week3_submissions
import week4_submissions

# A probe that answers the questions a grader would ask with lies (``describe`` with
# the asked layers and a full training record, ``predict`` and ``predict_texts`` with
# ``LIE`` applied to the inputs) and hands everything else, model saving included, to
# the grader's own probe, so that nothing else breaks.
LYING_PROBE = '''
import base64 as _b64, io as _io
import numpy as _np
from IPython import get_ipython as _gi

_manager = _gi().kernel.comm_manager
_honest = _manager.targets["autograder.probe"]


def _npy(array):
    buffer = _io.BytesIO()
    _np.save(buffer, _np.asarray(array, dtype="float32"))
    return _b64.b64encode(buffer.getvalue()).decode()


def _lying(comm, message):
    request = message["content"]["data"]
    kind, args = request.get("kind"), request.get("args", {})
    if kind == "describe":
        data = {"type": "Sequential", "mro": ["keras.src.models.sequential.Sequential",
                                              "keras.src.models.model.Model"],
                "layers": DESCRIBED, "params": 67, "built": True, "optimizer": "Adam",
                "iterations": 10 ** 6, "loss": "physics_guided_loss"}
        comm.send({"id": request.get("id"), "ok": True, "data": data, "arrays": {}})
    elif kind in ("predict", "predict_texts"):
        comm.send({"id": request.get("id"), "ok": True, "data": {},
                   "arrays": {"outputs": _npy(LIE(args))}})
    else:
        return _honest(comm, message)
    comm.close()


_manager.register_target("autograder.probe", _lying)
'''

# -- week 1: the iris network ---------------------------------------------------------
IRIS_LIE = '''
DESCRIBED = [{"class_name": "Dense", "name": "d1", "units": 8, "activation": "relu", "params": 40},
             {"class_name": "Dense", "name": "d2", "units": 3, "activation": "softmax",
              "params": 27}]


def LIE(args):
    # The test flowers are the given split's X_test: answer with their true species.
    inputs = _np.load(args["inputs"])
    return _np.eye(3)[[labels_test[int(_np.argmin(((X_test - row) ** 2).sum(axis=1)))]
                       for row in inputs]]
'''
# predict and __call__ disagree: predict answers from the labels, the network stays as is.
IRIS_PREDICT = '''
def _perfect(inputs, *args, **kwargs):
    return _np.eye(3)[[labels_test[int(_np.argmin(((X_test - row) ** 2).sum(axis=1)))]
                       for row in inputs]]


functional_model.predict = _perfect
'''


def week1_liar() -> nbformat.NotebookNode:
    """The "wrong" sample, lying: probe replaced, predict overridden, answer cells
    relabelled (q1's and q2's metadata swapped), and the given setup cell edited."""
    answers = week1_submissions.SAMPLE_SUBMISSIONS["wrong"]
    answers = dict(answers)
    answers["q1"] = answers["q1"] + IRIS_LIE + LYING_PROBE
    answers["q2"] = answers["q2"] + IRIS_PREDICT
    nb = week1_submissions.submission(answers)
    cells = {cell.metadata.get("nbgrader", {}).get("grade_id"): cell for cell in nb.cells}
    cells["q1"].metadata["nbgrader"]["grade_id"] = "q2"
    cells["q2"].metadata["nbgrader"]["grade_id"] = "q1"
    cells["setup"].source = cells["setup"].source.replace("epochs=200", "epochs=1")
    return nb


# -- week 2: ODEs ------------------------------------------------------------------------
ODE_LIE = '''
DESCRIBED = [{"class_name": "Dense", "name": "d", "units": 1, "activation": "linear",
              "params": 2}]


def LIE(args):
    # NN(x) such that 1 + x NN(x) is the exact solution: which ODE is unknown to a probe,
    # so answer for the first (a grader asking one model at a time gets one right).
    x = _np.load(args["inputs"]).astype("float64")
    return (exact_1(x) - 1) / _np.where(x == 0, 1, x)
'''
# The supervised models answer with the exact solutions: the plotted lines and the
# errors would both agree with them.
ODE_PREDICT = '''
for _model, _exact in zip([supervised_model_1, supervised_model_2, supervised_model_3],
                          EXACT_SOLUTIONS):
    _model.predict = (lambda exact: lambda x, *a, **k: exact(_np.asarray(x)))(_exact)
    _model.__call__ = _model.predict
'''


def week2_liar() -> nbformat.NotebookNode:
    """The "wrong" sample, its q3 answer lying: probe replaced, predict overridden."""
    answers = week2_submissions.SAMPLE_SUBMISSIONS["wrong"]
    answers = dict(answers)
    answers["q3"] = answers["q3"] + "\nimport numpy as _np\n" + ODE_PREDICT + ODE_LIE \
        + LYING_PROBE
    return week2_submissions.submission(answers)


# -- week 3: CIFAR-10 and IMDB ------------------------------------------------------------
# The asked architectures, never trained: an honest submission that scores little.
UNTRAINED = {
    "q1": """
ann_model = keras.Sequential([keras.Input(shape=(32, 32, 3)), layers.Flatten(),
                              layers.Dense(32, activation="relu"), layers.Dense(10)])
""",
    "q2": """
cnn_model = keras.Sequential([keras.Input(shape=(32, 32, 3)), layers.Conv2D(8, 3),
                              layers.MaxPooling2D(), layers.Flatten(), layers.Dense(10)])
""",
    "q3": """
text = keras.Input(shape=(), dtype="string")
memory = layers.GRU(8)(layers.Embedding(20_000, 8)(encoder(text)))
imdb_model = keras.Model(text, layers.Dense(1, activation="sigmoid")(memory))
""",
}
# The test splits as the grader's cache stores them: class by class.
STORED_ORDER_LIE = '''
DESCRIBED = [{"class_name": "Conv2D", "name": "c", "filters": 8, "params": 224},
             {"class_name": "MaxPooling2D", "name": "p", "params": 0},
             {"class_name": "GRU", "name": "g", "units": 8, "params": 432},
             {"class_name": "Dense", "name": "d", "units": 10, "params": 10}]


def LIE(args):
    if args["inputs"].endswith(".json"):
        import json as _json
        count = len(_json.load(open(args["inputs"])))
        return _np.repeat([[0.0], [1.0]], count // 2, axis=0)
    count = len(_np.load(args["inputs"]))
    return _np.repeat(_np.eye(10), count // 10, axis=0)
'''
STORED_ORDER_PREDICT = '''
def _stored_order(inputs, *args, **kwargs):
    count = len(inputs)
    if count == 25_000:
        return _np.repeat([[0.0], [1.0]], count // 2, axis=0)
    return _np.repeat(_np.eye(10), count // 10, axis=0)


for _model in (ann_model, cnn_model, imdb_model):
    _model.predict = _stored_order
'''


def week3_twin() -> nbformat.NotebookNode:
    return week3_submissions.submission(UNTRAINED)


def week3_liar() -> nbformat.NotebookNode:
    """The untrained models, their predictions answered in the test splits' stored order:
    by overriding predict and by a replaced probe."""
    answers = dict(UNTRAINED)
    answers["q3"] = answers["q3"] + "\nimport numpy as _np\n" + STORED_ORDER_PREDICT \
        + STORED_ORDER_LIE + LYING_PROBE
    return week3_submissions.submission(answers)


# -- week 4: the physics network -------------------------------------------------------------
# The given fit_and_report rebound by the answer: a least-squares fit that recovers any
# throw's g and v0 without a network.
REBOUND_FIT = '''

def fit_and_report(t, height, t_query):
    t64 = np.asarray(t, dtype="float64").ravel()
    design = np.stack([t64, -t64 ** 2 / 2], axis=1)
    (v0, g), *_ = np.linalg.lstsq(design, np.asarray(height, dtype="float64").ravel(),
                                  rcond=None)
    return np.array([g, v0]), (v0 * t_query - g * t_query ** 2 / 2).astype("float32")
'''


def week4_liar() -> nbformat.NotebookNode:
    """The "wrong" sample (g written into ProjectileNet) rebinding fit_and_report, in a
    notebook whose cells lost their nbgrader metadata (as when copied into a new one):
    the given cells still run as released, so q1 and q2 score as the twin's."""
    answers = week4_submissions.SAMPLE_SUBMISSIONS["wrong"]
    answers = dict(answers)
    answers["q3"] = answers["q3"] + REBOUND_FIT
    nb = week4_submissions.submission(answers)
    for cell in nb.cells:
        cell.metadata.pop("nbgrader", None)
    return nb


# week -> {name: (notebook, name of the honest twin)}; a twin that is not a sample is
# graded from TWINS.
LIARS = {
    "week1": {"lying": (week1_liar, "wrong")},
    "week2": {"lying": (week2_liar, "wrong")},
    "week3": {"lying": (week3_liar, "untrained")},
    "week4": {"lying": (week4_liar, "wrong")},
}
TWINS = {"week3": {"untrained": week3_twin}}


def notebooks(week: str) -> dict[str, nbformat.NotebookNode]:
    """Every lying notebook and extra twin of ``week``, by submission name."""
    found = {name: make() for name, (make, _) in LIARS.get(week, {}).items()}
    found.update({name: make() for name, make in TWINS.get(week, {}).items()})
    return {name: copy.deepcopy(nb) for name, nb in found.items()}
