"""Grading from the bundle a submission hands in (`autograder grade --from-bundle`,
`autograder check`): the same results as grading by execution, a student's own run
making the bundle, and hostile bundles costing only what they break."""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import subprocess
import sys
import zipfile

import nbformat
import pytest
from conftest import ROOT, by_question, grade_as_ta, outputs, results_of, without_timing
from sample_notebooks import full_marks, reference
from test_models_as_data import archive, layer, sequential, write_link

from autograder.grading.bundle import CHECK_CELL, MAX_BUNDLE_BYTES
from autograder.weeks import Week

# Week -> the notebooks of its class graded again from their bundles; None: all of them.
# Weeks 3 and 4 grade slowly from bundles too (CIFAR-10 and IMDB predictions, week 4's
# retraining in the clean room): their reference and their lying notebook stand for the
# rest, to keep the suite within its hour. Weeks 0 and 5 hand over no model: their bundles
# hold values only, and every check runs the answers in the clean room.
FROM_BUNDLES = {"week0": None, "week1": None, "week2": None, "week3": ("week3", "lying"),
                "week4": ("week4", "lying"), "week5": None}


@pytest.mark.grading
@pytest.mark.parametrize("week", sorted(FROM_BUNDLES))
def test_grading_a_bundle_gives_what_grading_its_execution_gave(week, graded_class,
                                                                graded_from_bundles):
    """The notebooks of the week's class (reference, samples, lying notebooks, extras:
    ``FROM_BUNDLES``), handed in with the bundle its execution left, grade to the same
    results.json."""
    executed, _ = graded_class(week)
    from_bundles, _ = graded_from_bundles(week, FROM_BUNDLES[week])
    names = sorted(p.name for p in executed.iterdir() if (p / "results.json").exists()
                   and (FROM_BUNDLES[week] is None or p.name in FROM_BUNDLES[week]))
    assert names and names == sorted(p.name for p in from_bundles.iterdir()
                                     if (p / "results.json").exists())
    with_bundle = 0
    for name in names:
        before, after = results_of(executed, name), results_of(from_bundles, name)
        with_bundle += (executed / name / f"{week}.bundle.zip").exists()
        assert after["extra_data"]["mode"] == "bundle", (name, after["extra_data"])
        assert without_timing(after, {"mode"}) == without_timing(before, {"mode"}), name
    assert with_bundle == len(names)  # every one of them could be run


def run_like_a_student(folder, notebook) -> None:
    """The student's own Jupyter: every cell, in order, in a plain (unsandboxed) kernel."""
    run = subprocess.run([sys.executable, "-m", "jupyter", "execute", "--inplace",
                          str(notebook)], cwd=folder, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-3000:]


@pytest.mark.grading
@pytest.mark.parametrize("week", ["week1", "week2"])
def test_a_students_own_run_saves_a_bundle_that_check_and_the_grader_take(tmp_path, week):
    """Week 2 hands over figures: Jupyter's inline backend closes them after each cell
    unless the notebook keeps them open, as its setup cell does."""
    folder = tmp_path / week
    shutil.copytree(ROOT / "release" / week, folder)
    nbformat.write(reference(week, ROOT), folder / f"{week}.ipynb")
    run_like_a_student(folder, folder / f"{week}.ipynb")

    ran = nbformat.read(folder / f"{week}.ipynb", as_version=4)
    assert f"saved {week}.bundle.zip" in ran.cells[-1].outputs[0]["text"]
    # Its check cells ran on the way, each showing its table: all pass.
    checked = [cell.outputs[-1]["data"] for cell in ran.cells if cell.get("metadata", {}).get(
        "nbgrader", {}).get("grade_id", "").startswith(CHECK_CELL)]
    assert len(checked) == len(Week.load(folder).questions) + 1
    for shown in checked:
        assert "public checks pass" in shown["text/plain"] and "FIX" not in shown["text/plain"]
        assert "<table>" in shown["text/html"]
    check = subprocess.run([sys.executable, "-m", "autograder.cli", "check", f"{week}.ipynb"],
                           cwd=folder, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    assert f"{week}.bundle.zip matches the notebook" in check.stdout

    out = tmp_path / "out"
    grade_as_ta(week, [folder / f"{week}.ipynb"], out, options=["--from-bundle"])
    results = results_of(out, week)
    assert results["extra_data"]["mode"] == "bundle"
    # Full marks: every check's points (the manifest's; written answers wait for a TA).
    assert results["score"] == sum(full_marks(week, ROOT).values()), json.dumps(
        results, indent=1)[:3000]


def rewritten(bundle: bytes, *, models: dict[str, bytes] = {}, add: dict[str, bytes] = {},
              links: tuple[str, ...] = ()) -> bytes:
    """``bundle`` with models replaced, members added and links added."""
    source = zipfile.ZipFile(io.BytesIO(bundle))
    members = {name: source.read(name) for name in source.namelist()}
    members.update({f"models/{name}.keras": data for name, data in models.items()})
    members.update(add)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as target:
        for name, data in members.items():
            target.writestr(name, data)
        for name in links:
            write_link(target, name)
    return buffer.getvalue()


def pickled(archive_bytes: bytes) -> bytes:
    """A real model's archive with a pickle beside its config."""
    source = zipfile.ZipFile(io.BytesIO(archive_bytes))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as target:
        for name in source.namelist():
            target.writestr(name, source.read(name))
        target.writestr("model.pkl", b"\x80\x04cos\nsystem\n(S'id'\ntR.")
    return buffer.getvalue()


LAMBDA = archive(sequential(layer("InputLayer", batch_shape=[None, 4]),
                            layer("Lambda", function={"class_name": "__lambda__"})))
LEGACY_H5 = b"\x89HDF\r\n\x1a\n" + b"\x00" * 200


@pytest.fixture(scope="module")
def graded_hostile_bundles(graded_class, tmp_path_factory):
    """One TA batch --from-bundle: a good bundle, bundles whose models are hostile beside
    the notebook they came from, and bundles that cannot be graded at all beside the
    unanswered release (so their fallback, executing it, is quick and scores 0)."""
    executed, _ = graded_class("week1")
    good = (executed / "correct" / "week1.bundle.zip").read_bytes()
    correct = ROOT / "source/week1/samples/correct.ipynb"
    release = ROOT / "release/week1/week1.ipynb"
    sequential_model = zipfile.ZipFile(io.BytesIO(good)).read("models/sequential_model.keras")
    # The wrong sample's own bundle, its models swapped for the correct sample's (better
    # ones, trained elsewhere): it matches its notebook, and only an audit can tell.
    correct_models = {name: zipfile.ZipFile(io.BytesIO(good)).read(f"models/{name}.keras")
                      for name in ("sequential_model", "functional_model", "subclass_model")}
    swapped = rewritten((executed / "wrong" / "week1.bundle.zip").read_bytes(),
                        models=correct_models)
    cases = {
        "intact": (correct, good),
        "swapped": (ROOT / "source/week1/samples/wrong.ipynb", swapped),
        "hostile-models": (correct, rewritten(good, models={
            "functional_model": LAMBDA, "subclass_model": LEGACY_H5})),
        "pickled-model": (correct, rewritten(good, models={
            "sequential_model": pickled(sequential_model)})),
        "zip-slip": (release, rewritten(good, add={"../../../etc/cron.d/x": b"* * * * *"})),
        "symlink": (release, rewritten(good, links=("arrays/link.npy",))),
        "not-a-zip": (release, b"PK\x03\x04 but no zip after all"),
        "oversized": (release, None),
        "mismatched": (release, good),
    }
    folder = tmp_path_factory.mktemp("hostile-bundles")
    for name, (notebook, bundle) in cases.items():
        shutil.copyfile(notebook, folder / f"{name}.ipynb")
        if bundle is None:  # sparse: over the cap without taking the disk space
            with open(folder / f"{name}.bundle.zip", "wb") as handle:
                handle.truncate(MAX_BUNDLE_BYTES + 1)
        else:
            (folder / f"{name}.bundle.zip").write_bytes(bundle)
    out = tmp_path_factory.mktemp("hostile-bundles-out")
    grade_as_ta("week1", [folder], out, jobs=2, options=[
        "--from-bundle", "--audit-name", "intact", "--audit-name", "swapped"])
    return out


@pytest.mark.grading
def test_an_audit_flags_models_swapped_for_better_ones(graded_hostile_bundles):
    results = results_of(graded_hostile_bundles, "swapped")
    assert results["extra_data"]["mode"] == "bundle" and results["score"] > 15
    audit = json.loads((graded_hostile_bundles / "swapped" / "audit.json").read_text())
    assert audit["outcome"] == "differs"
    assert any("bundle passed, re-run failed" in d for d in audit["differences"]), audit
    # The audit is for the TA to judge: the score stays, the gradebook and log say it.
    rerun = results_of(graded_hostile_bundles / "swapped", "audit")
    assert rerun["score"] == 15 and results_of(graded_hostile_bundles, "swapped") == results
    rows = {r["submission"]: r for r in csv.DictReader(
        (graded_hostile_bundles / "gradebook.csv").open())}
    assert (rows["swapped"]["mode"], rows["swapped"]["audit"]) == ("bundle", "differs")
    assert (rows["intact"]["mode"], rows["intact"]["audit"]) == ("bundle", "reproduced")
    assert (rows["zip-slip"]["mode"], rows["zip-slip"]["audit"]) == ("execution", "")
    log = (graded_hostile_bundles / "swapped" / "grader.log").read_text()
    assert "--- audit: the notebook executed again ---\ndiffers" in log


@pytest.mark.grading
def test_a_good_bundle_is_graded_whatever_its_neighbours_hold(graded_hostile_bundles):
    results = results_of(graded_hostile_bundles, "intact")
    assert results["extra_data"]["mode"] == "bundle" and results["score"] == 18


@pytest.mark.grading
@pytest.mark.parametrize("name, lost, message", [
    ("hostile-models", {"q2", "q3"}, {"q2": "Lambda layer", "q3": "legacy HDF5"}),
    ("pickled-model", {"q1"}, {"q1": "unexpected member 'model.pkl'"}),
])
def test_a_hostile_model_costs_that_model_only(graded_hostile_bundles, name, lost, message):
    results = results_of(graded_hostile_bundles, name)
    assert results["extra_data"]["mode"] == "bundle"
    scores = by_question(results)
    for question in ("q1", "q2", "q3"):
        if question in lost:
            assert scores[question] < 6, outputs(results, question)
            assert message[question] in outputs(results, question)
        else:
            assert scores[question] == 6, outputs(results, question)


@pytest.mark.grading
@pytest.mark.parametrize("name, why", [
    ("zip-slip", "unexpected file"),
    ("symlink", "unexpected file"),
    ("not-a-zip", "not a zip file"),
    ("oversized", "over the limit of 100 MB"),
    ("mismatched", "does not match the notebook's code"),
])
def test_a_bundle_that_cannot_be_graded_is_set_aside_and_the_notebook_executed(
        graded_hostile_bundles, name, why):
    results = results_of(graded_hostile_bundles, name)
    assert results["extra_data"]["mode"] == "execution"
    assert why in results["extra_data"]["bundle_not_used"]
    assert results["score"] == 0 and "is not answered yet" in outputs(results, "q1")
    log = (graded_hostile_bundles / name / "grader.log").read_text()
    # A line of its own, after pytest's progress dots.
    assert re.search(r"^bundle: not used, the notebook was executed instead: .*" + re.escape(why),
                     log, re.M), log[:2000]
