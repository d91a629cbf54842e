"""Submission bundles (``grading/bundle.py``) written and read back without a kernel:
a bundle carries an export exactly, and a malformed or hostile one is refused with a
message, or costs only the model it concerns."""

from __future__ import annotations

import io
import json
import warnings
import shutil
import zipfile

import nbformat
import numpy as np
import pytest
from conftest import ROOT
from test_models_as_data import GOOD, KERAS, archive, layer, sequential, write_link

from autograder.grading.archive import check_archive
from autograder.grading.bundle import (MAX_BUNDLE_BYTES, MAX_BUNDLE_UNPACKED, BundleRefused,
                                       code_digest, notebook_code, read_bundle,
                                       write_bundle)
from autograder.grading.export import Export
from autograder.grading.oracle import Axes, Line
from autograder.sandbox.execute import CellOutcome, ExecutionReport
from autograder.weeks import Course

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


@pytest.fixture(scope="module")
def week2():
    return Course(ROOT).built_week("week2")


def export() -> Export:
    x = np.linspace(0, 5, 11)
    return Export(
        archives={"physics_model_1": check_archive(archive(GOOD), "physics_model_1")},
        claims={"physics_model_1": {"iterations": 400, "optimizer": "adam", "loss": "mse"}},
        values={"PHYSICS_STEPS": 400},
        figures=[[Axes("ODE 1", "x", "u", (Line("analytic", x, x ** 2), Line("NN", x, x)))]],
        images=[PNG],
        problems={"supervised_model_1": "`supervised_model_1` is not defined"})


def test_a_bundle_carries_its_export_exactly_and_the_same_export_gives_the_same_bytes(week2):
    written = write_bundle(week2, export(), code="c0de", execution={"restarts": 0})
    assert write_bundle(week2, export(), code="c0de", execution={"restarts": 0}) == written
    bundle = read_bundle(written, week2, code="c0de")
    original, read = export(), bundle.export
    assert read.archives["physics_model_1"].data == original.archives["physics_model_1"].data
    assert read.claims == original.claims and read.values == original.values
    assert read.problems == original.problems and read.images == original.images
    (axes,), = read.figures
    assert (axes.title, axes.xlabel, axes.ylabel) == ("ODE 1", "x", "u")
    assert [line.label for line in axes.lines] == ["analytic", "NN"]
    assert np.array_equal(axes.lines[0].y, np.linspace(0, 5, 11) ** 2)
    assert bundle.execution == {"restarts": 0}
    assert bundle.manifest["week"] == "week2" and bundle.manifest["keras"] == KERAS


def test_an_array_value_round_trips_with_its_dtype(week2):
    found = export()
    found.values["PHYSICS_STEPS"] = np.arange(6, dtype=np.int64).reshape(2, 3)
    read = read_bundle(write_bundle(week2, found, code="c"), week2).export
    assert read.values["PHYSICS_STEPS"].dtype == np.int64
    assert np.array_equal(read.values["PHYSICS_STEPS"], found.values["PHYSICS_STEPS"])


def test_the_code_digest_names_the_code_cells_in_order():
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("a = 1"),
                                         nbformat.v4.new_markdown_cell("text"),
                                         nbformat.v4.new_code_cell("b = 2")])
    digest = code_digest(notebook_code(nb))
    assert digest == code_digest(["a = 1", "b = 2"])
    assert digest not in (code_digest(["b = 2", "a = 1"]), code_digest(["a = 1b = 2"]),
                          code_digest(["a = 1"]), code_digest(["a = 1", "b = 3"]))


def test_the_code_digest_matches_what_a_kernel_ran_top_to_bottom():
    """IPython's history drops trailing newlines, and Jupyter does not send blank cells to
    the kernel: the bundle cell's digest of what ran must still match the notebook's."""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("a = 1\n\n"),
                                         nbformat.v4.new_code_cell("  \n"),
                                         nbformat.v4.new_code_cell("b = 2")])
    assert code_digest(notebook_code(nb)) == code_digest(["a = 1", "b = 2"])
    assert code_digest(["a = 1", "b = 2"]) != code_digest(["a = 1", "a = 1", "b = 2"])


def rewritten(week2, *, drop=(), add=None, manifest=None, links=(), twice=()) -> bytes:
    """A good bundle with members dropped, added, written twice or the manifest changed."""
    members = {}
    with zipfile.ZipFile(io.BytesIO(write_bundle(week2, export(), code="c"))) as good:
        for name in good.namelist():
            members[name] = good.read(name)
    for name in drop:
        members.pop(name)
    if manifest:
        members["manifest.json"] = json.dumps(
            {**json.loads(members["manifest.json"]), **manifest}).encode()
    members.update(add or {})
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zipped, \
            warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate it writes
        for name, data in members.items():
            zipped.writestr(name, data)
        for name in twice:
            zipped.writestr(name, members[name])
        for name in links:
            write_link(zipped, name)
    return buffer.getvalue()


def forged_npy() -> bytes:
    header = "{'descr': '<f8', 'fortran_order': False, 'shape': (100000, 100000), }"
    return b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode()


@pytest.mark.parametrize("make, message", [
    (lambda w: b"not a zip at all", "not a zip file"),
    (lambda w: b"\x00" * (MAX_BUNDLE_BYTES + 1), "over the limit"),
    (lambda w: rewritten(w, add={"../../home/grader/.bashrc": b"x"}), "unexpected file"),
    (lambda w: rewritten(w, add={"/etc/cron.d/x": b"x"}), "unexpected file"),
    (lambda w: rewritten(w, add={"models/evil.pkl": b"\x80\x04."}), "unexpected file"),
    (lambda w: rewritten(w, links=("arrays/link.npy",)), "unexpected file"),
    (lambda w: rewritten(w, twice=("values.json",)), "holds a file twice"),
    (lambda w: rewritten(w, drop=("manifest.json",)), "lacks manifest.json"),
    (lambda w: rewritten(w, manifest={"week": "week3"}), "is for week3, not week2"),
    (lambda w: rewritten(w, manifest={"keras": "2.15.0"}), "made with Keras 2.15.0"),
    (lambda w: rewritten(w, manifest={"format": 99}), "format 99"),
    (lambda w: rewritten(w, manifest={"code": "other"}), "does not match the notebook's code"),
    (lambda w: rewritten(w, add={"models/mystery_model.keras": archive(GOOD)}),
     "models the week does not ask for: mystery_model"),
    (lambda w: rewritten(w, add={"arrays/line-0-0-0-x.npy": forged_npy()}),
     "claims 80,000,000,000 bytes|over the limit"),
    (lambda w: rewritten(w, add={"values.json": b'{"PHYSICS_STEPS": {"pickle": "x"}}'},
                         drop=("values.json",)), "malformed"),
    (lambda w: rewritten(w, add={"values.json": b"[" * 100_000}, drop=("values.json",)),
     "not JSON"),
])
def test_malformed_and_hostile_bundles_are_refused_with_a_message(week2, make, message):
    with pytest.raises(BundleRefused, match=message):
        read_bundle(make(week2), week2, code="c")


def test_a_zip_bomb_is_refused_by_its_unpacked_size(week2):
    bomb = rewritten(week2, add={"images/7.png": b"\x00" * (MAX_BUNDLE_UNPACKED + 1)})
    assert len(bomb) < MAX_BUNDLE_BYTES
    with pytest.raises(BundleRefused, match="unpacks to"):
        read_bundle(bomb, week2)


@pytest.mark.parametrize("model, message", [
    (archive(sequential(layer("Lambda", function={"class_name": "__lambda__"}))),
     "Lambda layer"),
    (b"\x89HDF\r\n\x1a\n" + b"\x00" * 100, "legacy HDF5"),
])
def test_a_model_that_cannot_be_rebuilt_costs_that_model_only(week2, model, message):
    bundle = read_bundle(rewritten(week2, add={"models/physics_model_2.keras": model}), week2)
    assert message in bundle.export.problems["physics_model_2"]
    assert "physics_model_1" in bundle.export.archives
    assert bundle.export.values == {"PHYSICS_STEPS": 400}


def test_values_the_checks_judge_and_many_figures_come_back_as_handed_over(week2):
    """NaN is for the checks to judge (as after an execution), and pictures keep their
    order past the tenth."""
    handed = export()
    handed.values["PHYSICS_STEPS"] = np.array([np.nan, 1.0])
    handed.images = [PNG + bytes([i]) for i in range(12)]
    read = read_bundle(write_bundle(week2, handed, code="c0de"), week2).export
    assert np.isnan(read.values["PHYSICS_STEPS"][0]) and read.images == handed.images


def test_the_execution_record_round_trips_and_a_forged_one_is_refused():
    report = ExecutionReport([CellOutcome(3, "q1", "error", "raised NameError: x", 1.5),
                              CellOutcome(4, None, "ok")], restarts=1, seconds=12.0)
    assert ExecutionReport.from_json(json.loads(json.dumps(report.to_json()))) == report
    for forged in (None, {"cells": "all ok"}, {"cells": [{"index": "3", "status": "ok"}]},
                   {"cells": [{"index": 3, "status": "passed", "question": "q1"}]}):
        with pytest.raises(ValueError, match="execution record is malformed"):
            ExecutionReport.from_json(forged)


def test_a_students_bundle_takes_its_execution_record_from_the_saved_outputs():
    """A student's kernel cannot record its earlier cells, so the record of a handed-in
    bundle is what the notebook's saved outputs show: which code cells raised."""
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("text"),
        nbformat.v4.new_code_cell("x = 1", outputs=[nbformat.v4.new_output(
            "stream", name="stdout", text="fine\n")]),
        nbformat.v4.new_code_cell("undefined", outputs=[nbformat.v4.new_output(
            "error", ename="NameError", evalue="name 'undefined' is not defined",
            traceback=[])])])
    report = ExecutionReport.from_outputs(nb, {2: "q2"})
    assert [(c.index, c.question, c.status) for c in report.cells] == [
        (1, None, "ok"), (2, "q2", "error")]
    assert report.problems("q2")[0].message == "raised NameError: name 'undefined' is not defined"


def test_a_renamed_release_folder_still_saves_its_weeks_bundle(tmp_path):
    """The week's name is in its week.toml, so a release folder the student renamed (or
    downloaded twice) still makes week1.bundle.zip, and another week's config is refused."""
    from autograder.student import find_week

    renamed = tmp_path / "week1 (copy)"
    shutil.copytree(ROOT / "release" / "week1", renamed)
    assert find_week("week1", renamed).name == "week1"
    with pytest.raises(ValueError, match="week1's, not week2's"):
        find_week("week2", renamed)
    # Outside a release folder, the course's own release/<week>.
    assert find_week("week3", tmp_path).directory == ROOT / "release" / "week3"
