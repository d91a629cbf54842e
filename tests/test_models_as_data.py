"""Fast checks of the pieces that keep a lying kernel from earning points, no kernel
needed: replies read without trusting their headers, model archives checked before
anything loads them, definitions taken with ast, submissions aligned with the release."""

from __future__ import annotations

import base64
import io
import json
import zipfile
from importlib.metadata import version

import nbformat
import numpy as np
import pytest
from conftest import ROOT
from sample_notebooks import reference

from autograder.grading.alignment import align
from autograder.grading.archive import ArchiveRefused, check_archive
from autograder.grading.bundle import student_side
from autograder.grading.cleanroom import definitions
from autograder.grading.oracle import OracleError, _decode
from autograder.sandbox import protocol
from autograder.weeks import Course

KERAS = version("keras")


# -- replies ---------------------------------------------------------------------------
def npy(array) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def test_a_plain_array_round_trips():
    array = np.arange(12, dtype=np.float32).reshape(3, 4)
    assert np.array_equal(protocol.read_npy(npy(array)), array)
    fortran = np.asfortranarray(array)
    assert np.array_equal(protocol.read_npy(npy(fortran)), array)


def test_a_forged_header_is_refused_before_allocating():
    """A header claiming a terabyte over a few bytes of data: refused, not a MemoryError."""
    header = b"{'descr': '<f8', 'fortran_order': False, 'shape': (1000000000000,), }"
    forged = b"\x93NUMPY\x01\x00" + len(header + b"\n").to_bytes(2, "little") + header + b"\n" \
        + b"\x00" * 32
    with pytest.raises(protocol.ArrayRefused, match="over the limit"):
        protocol.read_npy(forged)
    small = header.replace(b"1000000000000", b"1000")
    lying = b"\x93NUMPY\x01\x00" + len(small + b"\n").to_bytes(2, "little") + small + b"\n" \
        + b"\x00" * 32
    with pytest.raises(protocol.ArrayRefused, match="claims 8,000 bytes but carries 32"):
        protocol.read_npy(lying)
    # Through the oracle, the student reads a clear message.
    with pytest.raises(OracleError, match="could not be read"):
        _decode(base64.b64encode(forged).decode(), "predictions of `model`")


@pytest.mark.parametrize("array", [np.array([{"a": 1}], dtype=object),
                                   np.array(["text"]), np.zeros(2, dtype=[("x", "f4")])])
def test_only_plain_numbers_are_read(array):
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=True)
    with pytest.raises(protocol.ArrayRefused):
        protocol.read_npy(buffer.getvalue())


def test_probe_and_grader_share_one_protocol():
    """The probe's handlers are exactly the protocol's request kinds (it asserts so when
    installed) and the probe source carries the protocol's source."""
    from autograder.sandbox.execute import PROBE_SOURCE
    probe = (ROOT / "autograder/sandbox/probe.py").read_text()
    assert 'assert set(handlers) == set(protocol["KINDS"])' in probe
    assert "def read_npy" in PROBE_SOURCE and '"w{' not in probe and 'f"r{' not in probe


# -- archives ------------------------------------------------------------------------------
def archive(config: dict, *, keras_version: str = KERAS, extra: dict | None = None,
            links: tuple[str, ...] = ()) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zipped:
        zipped.writestr("metadata.json", json.dumps({"keras_version": keras_version}))
        zipped.writestr("config.json", json.dumps(config))
        zipped.writestr("model.weights.h5", b"\x89HDF\r\n\x1a\n")
        for name, data in (extra or {}).items():
            zipped.writestr(name, data)
        for name in links:
            write_link(zipped, name)
    return buffer.getvalue()


def write_link(zipped: zipfile.ZipFile, name: str) -> None:
    """A zip member that unpacks as a symbolic link to /etc/shadow."""
    info = zipfile.ZipInfo(name)
    info.external_attr = 0o120777 << 16
    zipped.writestr(info, "/etc/shadow")


def layer(class_name: str, module: str = "keras.layers", **config) -> dict:
    return {"module": module, "class_name": class_name, "config": config,
            "registered_name": None}


def sequential(*layers) -> dict:
    return {"module": "keras", "class_name": "Sequential", "registered_name": None,
            "config": {"name": "m", "layers": list(layers)},
            "compile_config": {"loss": {"module": "builtins", "class_name": "function",
                                        "config": "my_loss"}}}


GOOD = sequential(layer("InputLayer", batch_shape=[None, 4]),
                  layer("Dense", units=8, activation="relu",
                        kernel_initializer=layer("GlorotUniform", "keras.initializers"),
                        kernel_regularizer=layer("L2", "keras.regularizers", l2=1e-4)))


def test_keras_own_layers_are_accepted():
    checked = check_archive(archive(GOOD), "model")
    assert {"Sequential", "Dense", "L2", "GlorotUniform"} <= set(checked.classes)


@pytest.mark.parametrize("bad, message", [
    (sequential(layer("Lambda", function={"class_name": "__lambda__"})), "Lambda layer"),
    (sequential(layer("TFSMLayer", filepath="/x")), "TFSMLayer"),
    (sequential(layer("MyLayer", module=None)), "MyLayer (a class defined in the notebook)"),
    (sequential(layer("Dense", units=3, activation={"value": ["4wEAAA=="]})),
     "Python function (such as a lambda) as its activation"),
    (sequential(layer("Dense", units=3, activation={
        "module": "builtins", "class_name": "function", "config": "evil"})), "function `evil`"),
    (sequential(layer("Popen", module="subprocess")), "Popen (subprocess)"),
])
def test_what_runs_code_is_refused_with_the_layer_named(bad, message):
    with pytest.raises(ArchiveRefused, match=message.replace("(", r"\(").replace(")", r"\)")):
        check_archive(archive(bad), "model")


def test_own_classes_load_only_where_the_exercise_defines_them():
    own = {"module": None, "class_name": "IrisNet", "registered_name": "IrisNet",
           "config": {"name": "iris_net"}}
    with pytest.raises(ArchiveRefused, match="IrisNet"):
        check_archive(archive(own), "subclass_model")
    check_archive(archive(own), "subclass_model", own_classes=frozenset({"IrisNet"}))


@pytest.mark.parametrize("make, message", [
    (lambda: archive(GOOD, extra={"../../etc/cron.d/x": "x"}), "unexpected member"),
    (lambda: archive(GOOD, extra={"/abs": "x"}), "unexpected member"),
    (lambda: archive(GOOD, extra={"model.pkl": b"\x80\x04."}), "unexpected member"),
    (lambda: archive(GOOD, links=("assets/vocabulary.txt",)), "unexpected member"),
    (lambda: archive(GOOD, keras_version="2.15.0"), "saved with Keras 2.15.0"),
    (lambda: b"\x89HDF\r\n\x1a\n" + b"\x00" * 100, "legacy HDF5"),
    (lambda: b"not a zip at all", "could not be saved as a Keras archive"),
    (lambda: b"\x00" * (protocol.MAX_ARCHIVE_BYTES + 1), "over the limit"),
])
def test_malformed_and_hostile_archives_are_refused(make, message):
    with pytest.raises(ArchiveRefused, match=message):
        check_archive(make(), "model")


def test_a_zip_bomb_is_refused_by_its_unpacked_size():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zipped:
        zipped.writestr("metadata.json", json.dumps({"keras_version": KERAS}))
        zipped.writestr("config.json", json.dumps(GOOD))
        zipped.writestr("assets/big.txt", b"\x00" * (protocol.MAX_ARCHIVE_UNPACKED + 1))
    with pytest.raises(ArchiveRefused, match="unpacks to"):
        check_archive(buffer.getvalue(), "model")


# -- definitions ------------------------------------------------------------------------------
ANSWER = '''
import numpy as np
import os
from keras import layers
SCALE = 10.0
N = 2 * SCALE


def helper(x, factor=2.0):
    return x * factor


class Net(keras.Model):
    """A network."""
    SIZE = 8

    def __init__(self, **kwargs):
        super().__init__(**kwargs)

    def call(self, x):
        return x


model = Net()
model.fit(x, y)
print("trained")
'''


def test_definitions_keep_only_what_defines():
    found = definitions(ANSWER)
    assert found.names == {"np", "layers", "SCALE", "N", "helper", "Net"}
    assert "model.fit" not in found.source and "print" not in found.source
    assert "import os" not in found.source
    assert any("not os" in note for note in found.left_out)


@pytest.mark.parametrize("source, why", [
    ("@decorate\ndef f(x):\n    return x", "decorator"),
    ("def f(x=os.system('id')):\n    return x", "default values"),
    ("class A(make_base()):\n    pass", "computed base classes"),
    ("class A(keras.Model):\n    import os\n    os.system('id')", "its body may only"),
    ("class A(keras.Model):\n    x = open('/etc/passwd').read()", "only constants"),
    ("class A(keras.Model):\n    def predict(self, x):\n        return 1", "overrides Keras' `predict`"),
    ("class A(keras.Model):\n    def __call__(self, x):\n        return 1", "overrides Keras' `__call__`"),
    ("from . import secret", "may be imported"),
    ("X = compute()", "computes something"),
])
def test_code_that_runs_at_definition_is_left_out(source, why):
    found = definitions(source)
    assert found.names == set() and any(why in note for note in found.left_out), found.left_out


def test_an_answer_cannot_redefine_given_code():
    found = definitions("def fit_and_report(t, h, q):\n    return 1",
                        keep_out=frozenset({"fit_and_report"}))
    assert found.names == set() and "is given code" in found.left_out[0]


# -- alignment ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def week1():
    course = Course(ROOT)
    week = course.built_week("week1")
    return week, nbformat.read(week.released_notebook, as_version=4)


def code_of(nb) -> list[str]:
    return [cell.source for cell in nb.cells if cell.cell_type == "code"]


def test_the_reference_aligns_to_itself(week1):
    """The check and save cells run in the student's kernel only: the check cells stay
    as text in their places, so that cells are numbered as in the release."""
    week, release = week1
    handed_in = reference("week1", ROOT)
    aligned = align(week, release, handed_in)
    own_side = [c for c in handed_in.cells if student_side(c.metadata["nbgrader"]["grade_id"])]
    assert len(own_side) == len(week.questions) + 2  # a check cell each, check_all, save
    assert code_of(aligned.notebook) == [c.source for c in handed_in.cells
                                         if c.cell_type == "code" and c not in own_side]
    assert aligned.not_run == []
    checks = [(c.cell_type, c.source) for c in aligned.notebook.cells
              if student_side(c.metadata.get("nbgrader", {}).get("grade_id"))]
    assert checks == [("raw", c.source) for c in own_side[:-1]]
    assert len(aligned.notebook.cells) == len(handed_in.cells) - 1
    # What happens to a question's cells, its given training cell included, is its own.
    assert aligned.question_of_cell == week.question_of_cell(handed_in)


def test_metadata_ids_and_order_of_cells_prove_nothing(week1):
    """Relabelled answer cells, edited given cells and added cells: the given code that
    runs is the released code, and each question's answer is the code in its place."""
    week, release = week1
    reference = nbformat.read(ROOT / "source/week1/week1.ipynb", as_version=4)
    nb = nbformat.from_dict(json.loads(json.dumps(reference)))
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    code[1].metadata["nbgrader"]["grade_id"] = "q3"         # q1's answer, relabelled
    code[5].metadata["nbgrader"] = {"grade_id": "q1", "solution": True}
    code[0].source = code[0].source.replace("epochs=200", "epochs=1")  # edited given cell
    nb.cells.append(nbformat.v4.new_code_cell("compile_and_train = None"))  # after the end
    aligned = align(week, release, nb)
    ran = code_of(aligned.notebook)
    released_given = [c for c in release.cells if c.cell_type == "code"
                      and not c.metadata.get("nbgrader", {}).get("solution")]
    # Every given cell but the student's own side: the grader checks as it grades, and
    # takes its own bundle.
    own_side = [c.source for c in released_given if student_side(c.metadata.nbgrader.grade_id)]
    assert "save_bundle" in own_side[-1] and "check(\"q1\")" in own_side[0]
    assert all(c.source in ran for c in released_given if c.source not in own_side)
    assert not set(own_side) & set(ran)
    assert "epochs=1," not in "\n".join(ran) and "compile_and_train = None" not in ran
    assert "sequential_model" in aligned.answer_source("q1")
    assert "class IrisNet" in aligned.answer_source("q3")
    assert len(aligned.not_run) == 2


@pytest.mark.parametrize("nbgrader", ["hostile", ["q1"], 3, None, {"grade_id": ["q1"]},
                                      {"grade_id": {"q": 1}}])
def test_metadata_of_any_shape_is_only_a_hint(week1, nbgrader):
    """Submitted metadata is the student's: nbgrader metadata that is not a mapping, or a
    grade_id that is not text, counts as none, and the cells are placed by their text."""
    week, release = week1
    nb = reference("week1", ROOT)
    q1 = next(i for i, c in enumerate(nb.cells) if c.metadata["nbgrader"]["grade_id"] == "q1")
    nb.cells.insert(q1 + 1, nbformat.v4.new_code_cell("extra_width = 8",
                                                      metadata={"nbgrader": nbgrader}))
    for cell in nb.cells:
        if cell.cell_type == "code" and not cell.source.startswith("from autograder"):
            cell.metadata["nbgrader"] = nbgrader
    aligned = align(week, release, nb)
    assert "extra_width = 8" in aligned.answer_source("q1")
    assert "sequential_model" in aligned.answer_source("q1")
    assert aligned.not_run == []


# -- provenance -----------------------------------------------------------------------------
def test_answers_that_load_weights_or_carry_large_literals_are_flagged():
    from autograder.grading.provenance import flags
    found = flags({
        "q1": "model = build()\nmodel.set_weights(np.load('w.npy', allow_pickle=False))",
        "q2": "W = [" + ", ".join(["0.5"] * 500) + "]",
        "q3": "model = keras.saving.load_model('trained.keras')",
        "q4": "model = keras.Sequential([layers.Dense(3)])\nmodel.fit(x, y)",
    })
    assert found == ["q1 line 2: calls set_weights(...)", "q1 line 2: calls load(...)",
                     "q2 line 1: holds a literal of 500 elements",
                     "q3 line 1: calls load_model(...)"]


def test_a_room_rebuilds_the_classes_its_answer_defines(week1):
    """Week 1 asks for IrisNet; a student who named the class otherwise still gets the
    model rebuilt in q3's room, and only q3's room."""
    from autograder.grading.cleanroom import own_classes
    week, _ = week1
    answers = {"q3": "class MyNet(keras.Model):\n    def call(self, x):\n        return x\n\n"
                     "subclass_model = MyNet()",
               "q1": "class Sneaky(keras.Model):\n    pass"}
    assert own_classes(week, answers) == {"q3": frozenset({"IrisNet", "MyNet"})}


@pytest.mark.parametrize("name, rooms", [("week1", 1), ("week2", 1), ("week3", 1), ("week4", 2)])
def test_as_many_kernels_are_warmed_as_rooms_need(name, rooms):
    """week1: the shared room, which q3's then goes on in; week4: the shared room, which
    goes on as q3's, and q2's."""
    from autograder.grading.cleanroom import room_count
    assert room_count(Course(ROOT).built_week(name)) == rooms


# -- the checks' shared helpers ---------------------------------------------------------------
class FakeOracle:
    """The oracle's answers for one Dense(2 -> 3, relu) -> Dense(3 -> 2, softmax) model,
    whose predictions are computed by ``predict`` (honest, or a lie)."""

    def __init__(self, predict):
        rng = np.random.default_rng(0)
        self.w = [rng.normal(size=(2, 3)), rng.normal(size=3), rng.normal(size=(3, 2)),
                  rng.normal(size=2)]
        self._predict = predict

    def describe(self, name):
        return {"type": "IrisNet", "layers": [{"class_name": "Dense", "activation": "relu"},
                                              {"class_name": "Dense", "activation": "softmax"}]}

    def weights(self, name):
        return self.w

    def predict(self, name, inputs, outputs=None):
        return self._predict(self, inputs)


def honest(oracle, x):
    from autograder.grading.checks import ACTIVATIONS
    hidden = np.maximum(x @ oracle.w[0] + oracle.w[1], 0)
    return ACTIVATIONS["softmax"](hidden @ oracle.w[2] + oracle.w[3])


def test_outputs_are_the_layers_forward_pass_and_a_call_that_lies_fails():
    from autograder.grading import checks
    x = np.random.default_rng(1).normal(size=(30, 2))
    outputs = checks.dense_outputs(FakeOracle(honest), "m", x)
    assert np.allclose(outputs, honest(FakeOracle(honest), x))
    labels = outputs.argmax(axis=1)
    assert checks.accuracy(outputs, labels) == 1.0
    perfect = FakeOracle(lambda oracle, inputs: np.eye(2)[labels])  # answers from the labels
    with pytest.raises(AssertionError, match="do not match a forward pass"):
        checks.dense_outputs(perfect, "m", x)


def test_ast_helpers_find_calls_and_subclasses_without_running_anything():
    from autograder.grading import checks
    tree = checks.parse("import os\nclass Net(keras.Model):\n    def __init__(self):\n"
                        "        pass\n    def call(self, x):\n        return x\n"
                        "m = keras.Sequential([layers.Dense(3)])\nm.add(layers.Dense(1))\n"
                        "os.system('rm -rf /')", "q1")
    assert [c.name for c in checks.subclasses(tree, "Model")] == ["Net"]
    assert checks.methods(checks.subclasses(tree, "Model")[0]) == {"__init__", "call"}
    assert len(checks.calls(tree, "Sequential")) == 1 and len(checks.calls(tree, "add")) == 1
    with pytest.raises(AssertionError, match="syntax error on line 1"):
        checks.parse("def (:", "q2")
    description = {"layers": [{"class_name": "InputLayer"},
                              {"class_name": "Dense", "units": 8, "activation": "relu"}]}
    assert checks.layer_summary(description) == "Dense(8, relu)"
