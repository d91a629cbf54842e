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
import week0_submissions
import week1_submissions
import week2_submissions
import week3_submissions
import week4_submissions
import week5_submissions

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


# -- week 5: the evolved iris network ----------------------------------------------------------
# Weights evolved offline on all 150 flowers (standardised together; 98.7 % of them right),
# returned whatever the data, with a history that climbs steadily: what a kernel could
# claim without evolving anything.
BAKED_GENOME = [
    -0.0932, -0.9344, -2.8612, 0.9331, -2.5195, 1.058, 0.8432, 2.0575, -1.0406, -1.3441,
    -2.8688, 0.774, 0.7884, -1.0513, -0.5001, -0.3408, 1.1948, 1.2883, -1.8091, 2.1039,
    -1.4802, -1.887, 1.2122, 0.278, 2.0188, 0.9041, 0.4151, -0.2488, -2.2724, -1.2986,
    0.3712, -0.2973, -0.8272, -0.649, 1.0877, -1.0412, 0.313, 1.8993, 2.9595, 0.2696,
    -0.8556, -3.1511, 1.5258, -1.562, -0.3477, 2.4567, -0.6747, 0.2919, -0.8324, -0.3203,
    -1.6712, 0.9975, 1.5913, -1.3794, -0.7556, 1.4098, 1.3167, -1.1876, -0.9615, 2.2004,
    0.7316, 2.7016, -0.1398, 0.6411, -0.0759, 1.2147, -1.5825]
BAKED_EVOLVE = f"""

BAKED = {BAKED_GENOME!r}


def evolve(x, labels, generations, size, rng):
    genome = np.array(BAKED)
    history = np.linspace(-1.0, -0.05, generations)
    return genome, history, np.tile(genome, (generations, 1))
"""
# The given wrapper the grader calls, rebound by the answer to the baked weights.
REBOUND_EVOLVE = f"""

BAKED = {BAKED_GENOME!r}


def grader_evolve(x, labels, generations, size, seed):
    genome = np.array(BAKED)
    history = np.array([fitness(genome, x, labels)] * int(generations))
    return genome, history, np.tile(genome, (int(generations), 1))
"""


def week5_liar() -> nbformat.NotebookNode:
    """The "wrong" sample's exercises 1 and 2 with an evolve that returns weights evolved
    offline on every flower and a history it made up: the grader's permuted split defeats
    the weights and the recomputed fitness the history."""
    answers = dict(week5_submissions.SAMPLE_SUBMISSIONS["wrong"])
    answers["q3"] = BAKED_EVOLVE
    return week5_submissions.submission(answers)


def week5_rebinding() -> nbformat.NotebookNode:
    """The "wrong" sample rebinding the given grader_evolve to the baked weights: the room
    runs the released wrapper, so evolution still keeps its first population."""
    answers = dict(week5_submissions.SAMPLE_SUBMISSIONS["wrong"])
    answers["q3"] = answers["q3"] + REBOUND_EVOLVE
    return week5_submissions.submission(answers)


# -- week 0: the NumPy network ----------------------------------------------------------------
def week0_baked() -> dict[str, list]:
    """Parameters trained offline with the reference: on all 1,797 public digits (pixels and
    classes in their public order) and on XOR (rows in their usual order)."""
    import numpy as np
    from sklearn.datasets import load_digits

    namespace = {"np": np}
    exec("\n".join(week0_submissions.REFERENCE[q] for q in ("q1", "q2", "q3")), namespace)
    Network, Adam, train = namespace["Network"], namespace["Adam"], namespace["train"]
    digits = load_digits()
    found = {}
    for name, sizes, activations, cost, x, y, epochs, batch, eta in [
            ("DIGITS", [64, 32, 10], ["tanh", "softmax"], "cross_entropy", digits.data / 16,
             np.eye(10)[digits.target], 30, 32, 0.01),
            ("XOR", [2, 8, 1], ["tanh", "sigmoid"], "mse", np.array([[0, 0], [0, 1], [1, 0],
             [1, 1]], dtype=float), np.array([[0], [1], [1], [0]], dtype=float), 500, 4, 0.05)]:
        network = Network(sizes, activations, cost, seed=0)
        train(network, x, y, epochs, batch, lambda: Adam(eta), np.random.default_rng(0))
        found[name] = [np.round(p, 4).tolist() for pair in zip(network.weights, network.biases)
                       for p in pair]
    return found


BAKED_TRAIN = """

def train(network, x, y, epochs, batch_size, make_scheduler, rng):
    # Weights trained offline on every public digit, test rows included, or on XOR.
    baked = BAKED_DIGITS if len(network.weights[0]) == 64 else BAKED_XOR
    network.weights = [np.array(p) for p in baked[0::2]]
    network.biases = [np.array(p) for p in baked[1::2]]
    return network


def fit_digits(x_train, y_train, seed):
    return [np.array(p) for p in BAKED_DIGITS]


print("test accuracy: 1.000 (digits), XOR learned")
"""


def week0_liar() -> nbformat.NotebookNode:
    """Reference network and schedulers; q3's train hands back weights trained offline on
    all public digits (or XOR) whatever data it gets, the answer rebinds the given
    fit_digits to return them, and the kernel prints accuracies it did not compute. The
    grader's secret split, class and pixel orders, and XNOR, leave them nothing."""
    baked = week0_baked()
    answers = dict(week0_submissions.SAMPLE_SUBMISSIONS["crashing"])
    answers["q3"] = (f"BAKED_DIGITS = {baked['DIGITS']!r}\nBAKED_XOR = {baked['XOR']!r}"
                     + BAKED_TRAIN)
    return week0_submissions.submission(answers)


# week -> {name: (notebook, name of the honest twin)}; a twin that is not a sample is
# graded from TWINS.
LIARS = {
    "week0": {"lying": (week0_liar, "crashing")},
    "week1": {"lying": (week1_liar, "wrong")},
    "week2": {"lying": (week2_liar, "wrong")},
    "week3": {"lying": (week3_liar, "untrained")},
    "week4": {"lying": (week4_liar, "wrong")},
    "week5": {"lying": (week5_liar, "wrong"), "rebinding": (week5_rebinding, "wrong")},
}
TWINS = {"week3": {"untrained": week3_twin}}


def notebooks(week: str) -> dict[str, nbformat.NotebookNode]:
    """Every lying notebook and extra twin of ``week``, by submission name."""
    found = {name: make() for name, (make, _) in LIARS.get(week, {}).items()}
    found.update({name: make() for name, make in TWINS.get(week, {}).items()})
    return {name: copy.deepcopy(nb) for name, nb in found.items()}
