"""`autograder gradescope WEEK`: gradescope.yml, the autograder zip, and grading the way
Gradescope does (an image built from the zip by running setup.sh; per submission a
container with it in /autograder/submission running /autograder/run_autograder), with
results.json validated against Gradescope's published format
(tests/gradescope_results.schema.json) for a correct (with hostile code in its q1
answer) and a crashing week-1 submission (the wrong one's partial marks are graded
locally; here the environment is under test). About 5 minutes: an image build (pip from
the shared BuildKit cache) and two week-1 gradings side by side."""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import jsonschema
import nbformat
import pytest
from conftest import ROOT, by_question
from docker_fixtures import autograder_image, base_image  # noqa: F401  (fixtures)
from sample_notebooks import full_marks
from test_hostile_notebooks import (DETACHED_REWRITER, FORGE_RESULTS, OPEN_A_CONNECTION,
                                    hidden_test_lines)

from autograder import gradescope
from autograder.errors import ConfigError
from autograder.weeks import Course

SCHEMA = json.loads((ROOT / "tests" / "gradescope_results.schema.json").read_text())
SAMPLES = ROOT / "source" / "week1" / "samples"
CRASHING_DESERVES = {"q1": 6, "q2": 0, "q3": 0}


def validate(results: dict) -> None:
    jsonschema.validate(results, SCHEMA)


# -- settings and the zip (no Docker) ----------------------------------------------------
def test_every_compiled_week_has_settings_derived_from_its_build():
    """points = the sum of the checks' points; the timeout leaves the week's budget, our
    hard stop and the start; the memory holds the kernel's budget and the grader."""
    course = Course(ROOT)
    compiled = [w for w in course.weeks() if (course.build(w) / "week.toml").exists()]
    assert "week1" in compiled
    for name in compiled:
        week = course.built_week(name)
        settings = gradescope.load_settings(course, name)
        assert gradescope.check_settings(settings, week) == [], name
        assert settings.points == sum(gradescope_points(week).values()), name
        assert settings.timeout == week.limits.total_time + 300 + 60, name
        assert settings.memory_mb == week.limits.memory_mb + 1024, name
    assert gradescope.load_settings(course, "week3").bundles is True
    assert gradescope.load_settings(course, "week1").visibility == "visible"


def gradescope_points(week) -> dict[str, float]:
    """Each question's points, from the checks' markers as the compiled tests hold them."""
    from autograder.compiler import collect_checks

    points: dict[str, float] = {}
    for check in collect_checks(week, week.name):
        points[check.question] = points.get(check.question, 0.0) + check.max_score
    return points


def test_settings_mistakes_are_named(tmp_path):
    (tmp_path / "gradescope.yml").write_text(
        "week1:\n  points: 18\n  visibilty: hidden\n  questions: {q1: secret}\n  cpus: -1\n"
        "  bundles: sometimes\n")
    with pytest.raises(ConfigError) as error:
        gradescope.load_settings(Course(tmp_path), "week1")
    message = str(error.value)
    assert "'points' is derived by `autograder compile`" in message
    assert "unknown setting 'visibilty'" in message
    assert "questions.q1 is 'secret'" in message and "cpus must be a positive number" in message
    assert "bundles must be true or false, not 'sometimes'" in message
    (tmp_path / "gradescope.yml").write_text("defaults:\n  cpus: 2\n")
    with pytest.raises(ConfigError, match="week9 is not compiled"):
        gradescope.load_settings(Course(tmp_path), "week9")


def test_settings_that_do_not_fit_the_week_are_refused():
    course = Course(ROOT)
    week = course.built_week("week1")
    settings = dataclasses.replace(gradescope.load_settings(course, "week1"),
                                   questions={"q9": "hidden"})
    assert gradescope.check_settings(settings, week) == [
        "questions ['q9'] are not in week1's week.toml"]


def test_the_zip_has_what_gradescope_needs_and_is_reproducible(tmp_path):
    first = subprocess.run([str(ROOT / ".venv/bin/autograder"), "gradescope", "week1",
                            "--out", str(tmp_path / "a")], capture_output=True, text=True, cwd=ROOT)
    assert first.returncode == 0, first.stderr
    assert "total points 18" in first.stdout and "timeout 960 s" in first.stdout
    subprocess.run([str(ROOT / ".venv/bin/autograder"), "gradescope", "week1",
                    "--out", str(tmp_path / "b")], check=True, capture_output=True, cwd=ROOT)
    archive = tmp_path / "a" / "week1-gradescope.zip"
    assert archive.read_bytes() == (tmp_path / "b" / "week1-gradescope.zip").read_bytes()
    with zipfile.ZipFile(archive) as zipped:
        modes = {i.filename: (i.external_attr >> 16) & 0o777 for i in zipped.infolist()}
        settings = json.loads(zipped.read("gradescope.json"))
    assert modes["setup.sh"] == modes["run_autograder"] == 0o755
    for name in ("requirements.txt", "autograder/gradescope.py", "autograder/grading/plugin.py",
                 "assignments/week1/week.toml", "assignments/week1/tests/test_week1.py"):
        assert name in modes, name
    assert not any(name.startswith(("source/", "release/")) or "samples" in name for name in modes)
    assert settings["week"] == "week1" and settings["points"] == 18


# -- the way Gradescope runs it ------------------------------------------------------------
# Visibility is set per question here (q1 visible, the rest after the due date) to see
# it flow from the settings into every test of results.json.
TRY_SETTINGS = dict(visibility="after_due_date", questions={"q1": "visible"})


@pytest.fixture(scope="module")
def gradescope_like(base_image, tmp_path_factory):  # noqa: F811
    """The image Gradescope builds from the week-1 zip (setup.sh run on the base)."""
    course = Course(ROOT)
    settings = dataclasses.replace(gradescope.load_settings(course, "week1"), **TRY_SETTINGS)
    archive = gradescope.write_zip(course, settings, tmp_path_factory.mktemp("zip"))
    tag = "aml-autograder-gradescope-test:week1"
    gradescope.build_from_zip(archive, tag, base_image, gradescope.TRY_DOCKERFILE)
    return tag, settings


# The correct sample is graded with hostile code after its q1 answer (one grading proves
# both; code outside the answer cells would not run at all): the kernel looks around
# /autograder, forges results.json everywhere it can, leaves a detached process
# rewriting results, and tries the network.
LOOK_AROUND_AUTOGRADER = """
import os
print("uid", os.getuid(), "gid", os.getgid())
for path in ["/autograder/source", "/autograder/source/assignments/week1/tests",
             "/autograder/results", "/autograder/submission"]:
    try:
        os.listdir(path)
        print("LISTED", path)
    except OSError as error:
        print("refused", path, type(error).__name__)
"""


def hostile_correct_sample(folder: Path) -> Path:
    nb = nbformat.read(SAMPLES / "correct.ipynb", as_version=4)
    answer = next(cell for cell in nb.cells
                  if cell.metadata.get("nbgrader", {}).get("grade_id") == "q1")
    for code in (LOOK_AROUND_AUTOGRADER, FORGE_RESULTS, DETACHED_REWRITER,
                 OPEN_A_CONNECTION.replace("{port}", "9")):
        answer.source += "\n" + code.strip() + "\n"
    path = folder / "week1.ipynb"
    nbformat.write(nb, path)
    return path


@pytest.fixture(scope="module")
def graded_like_gradescope(gradescope_like, tmp_path_factory):
    """The hostile correct notebook and the crashing sample (partial marks after a kernel
    restart), each in a container of its own, side by side. Name -> (results, folder)."""
    tag, settings = gradescope_like
    folder = tmp_path_factory.mktemp("gradescope-like")
    notebooks = {"hostile": hostile_correct_sample(folder), "crashing": SAMPLES / "crashing.ipynb"}

    def grade(name: str):
        out = folder / name
        return gradescope.run_like_gradescope(tag, notebooks[name], out, settings), out

    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(zip(notebooks, pool.map(grade, notebooks)))


@pytest.mark.grading
def test_a_hostile_notebook_graded_like_gradescope(graded_like_gradescope):
    results, out = graded_like_gradescope["hostile"]
    assert_graded_like_gradescope(results, full_marks("week1", ROOT), out)
    executed = "".join(output.get("text", "") for cell in nbformat.read(
        out / "executed.ipynb", as_version=4).cells if cell.cell_type == "code"
        for output in cell.get("outputs", []))
    uid = executed.split("uid ", 1)[1].split()[0] if "uid " in executed else "?"
    assert uid.isdigit() and int(uid) >= 1000, executed[-3000:]  # a sandbox uid, not root
    for path in ["/autograder/source", "/autograder/source/assignments/week1/tests",
                 "/autograder/results", "/autograder/submission"]:
        assert f"refused {path} PermissionError" in executed, executed[-3000:]
    assert "LISTED" not in executed and "reached []" in executed
    assert json.loads((out / "results.json").read_text()) == results


@pytest.mark.grading
def test_a_crashing_sample_graded_like_gradescope(graded_like_gradescope):
    results, out = graded_like_gradescope["crashing"]
    assert_graded_like_gradescope(results, CRASHING_DESERVES, out)


def assert_graded_like_gradescope(results: dict, deserved: dict, out: Path) -> None:
    validate(results)
    assert by_question(results) == deserved, results["tests"]
    assert results["score"] == sum(deserved.values())
    assert len(results["tests"]) == 18 and results["extra_data"]["final"] is True
    for test in results["tests"]:
        expected = "visible" if test["extra_data"]["question"] == "q1" else "after_due_date"
        assert test["visibility"] == expected, test
    stdout = (out / "stdout").read_text()
    assert "isolation: container; uid drop yes" in stdout, stdout
    # The one gap left in a container: the kernel's own cap is address space (the
    # container's memory limit caps resident memory of everything in it).
    warnings = [line for line in stdout.splitlines() if line.startswith("WARNING")]
    assert all("RLIMIT_AS" in line for line in warnings), warnings
    text = json.dumps(results)
    assert [line for line in hidden_test_lines() if line in text] == []


@pytest.mark.grading
def test_manual_docker_image_is_a_thin_layer(autograder_image, tmp_path):  # noqa: F811
    """The manual-Docker image = the autograder image + the week's files (a few kB); it
    grades too: here a submission that is not a notebook, which gets a defined result."""
    settings = gradescope.load_settings(Course(ROOT), "week1")
    archive = gradescope.write_zip(Course(ROOT), settings, tmp_path / "zip")
    tag = "aml-autograder-gradescope-test:week1-manual"
    gradescope.build_from_zip(archive, tag, autograder_image, gradescope.MANUAL_DOCKERFILE)
    sizes = [int(subprocess.run(["docker", "image", "inspect", "-f", "{{.Size}}", image],
                                capture_output=True, text=True, check=True).stdout)
             for image in (autograder_image, tag)]
    assert sizes[1] - sizes[0] < 5 * 2**20, sizes
    broken = tmp_path / "week1.ipynb"
    broken.write_text("this is not a notebook")

    results = gradescope.run_like_gradescope(tag, broken, tmp_path / "results", settings)

    validate(results)
    assert results["score"] == 0 and len(results["tests"]) == 18
    assert all("not a valid Jupyter notebook" in t["output"] for t in results["tests"])


def gradescope_source(folder: Path, **settings) -> Path:
    """/autograder/source as the week-1 zip's setup leaves it (without the venv)."""
    course = Course(ROOT)
    chosen = dataclasses.replace(gradescope.load_settings(course, "week1"), **settings)
    source = folder / "source"
    (source / "assignments").mkdir(parents=True)
    (source / "gradescope.json").write_text(json.dumps(dataclasses.asdict(chosen)))
    shutil.copytree(course.build("week1"), source / "assignments" / "week1")
    return source


@pytest.mark.grading
def test_an_upload_with_its_bundle_is_graded_from_it_when_the_week_takes_bundles(
        tmp_path, graded_class):
    """run() itself, without Docker: the notebook and its bundle, uploaded together."""
    executed, _ = graded_class("week1")
    submission = tmp_path / "submission"
    submission.mkdir()
    shutil.copyfile(SAMPLES / "correct.ipynb", submission / "week1.ipynb")
    shutil.copyfile(executed / "correct" / "week1.bundle.zip", submission / "week1.bundle.zip")

    results = gradescope.run(gradescope_source(tmp_path, bundles=True), submission,
                             tmp_path / "results").to_json()

    validate(results)
    assert results["extra_data"]["mode"] == "bundle" and results["score"] == 18


def test_no_notebook_in_the_submission_gets_a_defined_result(tmp_path):
    """run() itself (as run_autograder calls it), without Docker: nothing to grade."""
    source = gradescope_source(tmp_path)
    submission = tmp_path / "submission"
    submission.mkdir()
    (submission / "answers.py").write_text("print('hi')\n")

    results = gradescope.run(source, submission, tmp_path / "results").to_json()

    validate(results)
    assert results["score"] == 0
    assert "submit one notebook named week1.ipynb" in results["tests"][0]["output"]
    assert json.loads((tmp_path / "results" / "results.json").read_text()) == results
    assert Path(tmp_path / "results").stat().st_mode & 0o077 == 0


def test_run_autograder_writes_results_whatever_happens(tmp_path):
    """A broken autograder upload (here: no settings) still gives the student a
    results.json that says it is not their fault, and a failing exit status."""
    submission = tmp_path / "submission"
    submission.mkdir()
    shutil.copyfile(SAMPLES / "correct.ipynb", submission / "week1.ipynb")

    status = gradescope.main(["run", "--source", str(tmp_path / "source"),
                              "--submission", str(submission),
                              "--results", str(tmp_path / "results")])

    results = json.loads((tmp_path / "results" / "results.json").read_text())
    validate(results)
    assert status == 1 and results["score"] == 0
    assert "this is not your fault" in results["tests"][0]["output"]
