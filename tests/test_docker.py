"""`autograder grade --docker`: one container per submission, and the trust boundary
holds inside it (the student's kernel shares the container with the hidden tests and
the results, yet can read or touch neither).

Uses the tiny week of batch_fixtures (checks that need no model), so a grading takes
seconds; the image, the engine and the base are made by docker_fixtures. Week 1 in a
container is graded by test_gradescope.py (same in-container grader)."""

from __future__ import annotations

import ast
import dataclasses
import json
import subprocess
import time
from pathlib import Path

import nbformat
import pytest
from batch_fixtures import HIDDEN_MARKER, make_course, run_grade, tiny_notebook
from conftest import by_question
from docker_fixtures import autograder_image, base_image  # noqa: F401  (fixtures)
from test_hostile_notebooks import DETACHED_REWRITER, FORGE_RESULTS, OPEN_A_CONNECTION

from autograder.container import (LABEL, OWNER_LABEL, ContainerLimits, grade_in_container,
                                  remove_stale_containers)
from autograder.weeks import Week

# Answers worth q1 2 of 3 (0.45 passes the 30 % and 40 % tiers) and q2 2 of 3 (the
# label is right; the tiny week's buggy check gives nobody its point).
DESERVED = {"q1": 2, "q2": 2}

# Built from parts so that the notebook's own text does not contain the marker.
LOOK_AROUND = """
import json, os
marker = "HIDDEN_SOURCE_" + "MARKER_7f3a"
print("uid", os.getuid(), "gid", os.getgid())
print([line for line in open("/proc/self/status") if line.startswith("CapEff")][0].strip())
for path in ["/grader", "/grader/weeks", "/grader/weeks/tiny/tests", "/grader/out",
             "/grader/submission"]:
    try:
        os.listdir(path)
        print("LISTED", path)
    except OSError as error:
        print("refused", path, type(error).__name__)
try:
    os.setuid(0)
    print("BECAME ROOT")
except OSError as error:
    print("setuid refused", type(error).__name__)
found = 0
for folder, dirs, files in os.walk("/"):
    if folder.startswith(("/proc", "/sys", "/dev", "/usr", "/opt/venv")):
        dirs[:] = []
        continue
    for name in files:
        try:
            text = open(os.path.join(folder, name), errors="replace").read(2_000_000)
        except OSError:
            continue
        if marker in text:
            found += 1
            print(os.path.join(folder, name)); print(text)
print("marker files found:", found)
"""


def hostile_notebook() -> nbformat.NotebookNode:
    nb = tiny_notebook(0.45, "cat")
    for code in (LOOK_AROUND, FORGE_RESULTS, DETACHED_REWRITER,
                 OPEN_A_CONNECTION.replace("{port}", "9")):
        nb.cells.append(nbformat.v4.new_code_cell(code.strip()))
    return nb


def printed(notebook: Path) -> str:
    """What the notebook's cells printed (their outputs, not their source)."""
    nb = nbformat.read(notebook, as_version=4)
    return "".join(output.get("text", "") for cell in nb.cells if cell.cell_type == "code"
                   for output in cell.get("outputs", []))


def grading_containers() -> list[str]:
    listed = subprocess.run(["docker", "ps", "--all", "--quiet", "--filter", f"label={LABEL}"],
                            capture_output=True, text=True, check=True)
    return listed.stdout.split()


@pytest.fixture
def tiny_course(tmp_path):
    return make_course(tmp_path / "course")


@pytest.mark.grading
def test_hostile_notebook_in_a_container(autograder_image, tiny_course, tmp_path):  # noqa: F811
    """The kernel runs as a sandbox uid without capabilities; /grader (hidden tests,
    results) is closed to it; forged results, a detached rewriter and connections change
    nothing; the container is gone afterwards."""
    notebook = tmp_path / "hostile.ipynb"
    nbformat.write(hostile_notebook(), notebook)
    out = tmp_path / "out"

    done = run_grade(tiny_course, str(notebook), "--docker", "--out", str(out))

    assert done.returncode == 0, done.stdout + done.stderr
    folder = out / "hostile"
    results = json.loads((folder / "results.json").read_text())
    assert by_question(results) == DESERVED, results["tests"]
    assert results["extra_data"]["final"] is True
    assert results["extra_data"]["isolation"].startswith("isolation: container; uid drop yes")
    executed = printed(folder / "executed.ipynb")
    assert "uid 61" in executed and "CapEff:\t0000000000000000" in executed, executed[-3000:]
    for path in ["/grader", "/grader/weeks", "/grader/weeks/tiny/tests", "/grader/out"]:
        assert f"refused {path} PermissionError" in executed
    assert "LISTED" not in executed and "BECAME ROOT" not in executed
    assert "setuid refused PermissionError" in executed
    assert "marker files found: 0" in executed
    assert "reached []" in executed
    shown = "".join((folder / name).read_text()
                    for name in ("results.json", "executed.ipynb", "feedback.html"))
    assert HIDDEN_MARKER not in shown
    assert grading_containers() == []
    time.sleep(2)  # a surviving rewriter would have struck by now
    assert json.loads((folder / "results.json").read_text()) == results


@pytest.mark.grading
def test_wall_clock_limit_stops_the_container(autograder_image, tiny_course, tmp_path):  # noqa: F811
    """A notebook that never ends: the container is killed at the wall-clock limit and
    results.json still says, per check, why nothing was scored."""
    week = Week.load(tiny_course / "assignments" / "tiny")
    notebook = tmp_path / "forever.ipynb"
    nbformat.write(tiny_notebook(0.45, "cat", extra="while True:\n    pass"), notebook)
    limits = dataclasses.replace(ContainerLimits.for_week(week), wall_clock=40)
    started = time.monotonic()

    result = grade_in_container(week, notebook, tmp_path / "results.json",
                                log=tmp_path / "grader.log", limits=limits)

    assert time.monotonic() - started < 40 + 30
    assert result.score == 0 and result.final
    assert "took longer than 40 s" in result.note
    assert all("took longer than 40 s" in c.output for c in result.checks), result.checks
    assert json.loads((tmp_path / "results.json").read_text()) == result.to_json()
    assert grading_containers() == []


@pytest.mark.grading
def test_a_rerun_removes_containers_of_a_dead_grader(autograder_image):  # noqa: F811
    """A grader killed mid-grading leaves its container; the next run removes it (its
    owner process is gone) but leaves another live grader's container alone."""
    import socket

    from autograder.container import _owner

    dead_owner = f"{socket.gethostname()}:999999999:12345"
    started = []
    try:
        for owner in (dead_owner, _owner()):
            run = subprocess.run(["docker", "run", "--detach", "--label", f"{LABEL}=1",
                                  "--label", f"{OWNER_LABEL}={owner}", "--network", "none",
                                  autograder_image, "sleep", "300"],
                                 capture_output=True, text=True, check=True)
            started.append(run.stdout.strip())
        removed = remove_stale_containers()
        assert [started[0][:12]] == [r[:12] for r in removed]
        assert set(grading_containers()) == {started[1][:12]}
    finally:
        subprocess.run(["docker", "rm", "--force", *started], capture_output=True)


@pytest.mark.grading
def test_a_missing_image_is_a_clear_error(base_image):  # noqa: F811
    # The engine runs (the base_image fixture starts it): the image alone is missing.
    from autograder.container import ContainerError, require_image

    with pytest.raises(ContainerError, match="autograder image build"):
        require_image("aml-autograder-does-not-exist:never")


@pytest.mark.grading
def test_image_holds_no_hidden_tests(autograder_image):  # noqa: F811
    """One image for every week: it must not carry any week's tests or solutions."""
    listing = subprocess.run(
        ["docker", "run", "--rm", "--network", "none", autograder_image, "sh", "-c",
         "find /grader -mindepth 2; find / -xdev \\( -path /proc -o -path /opt/venv \\) -prune -o "
         "-name 'test_week*.py' -print -o -name 'week.toml' -print"],
        capture_output=True, text=True, check=True)
    assert listing.stdout.strip() == "", listing.stdout


@pytest.mark.grading
def test_image_data_test_splits_are_root_only(autograder_image):  # noqa: F811
    """The image holds every week's prepared data: the kernel's uid may read the train
    splits, never a test split (its labels are what the hidden tests score against)."""
    from autograder.container import week_data_sets
    from autograder.weeks import Course

    names = week_data_sets(Course())
    if not names:
        pytest.skip("no week reads a data set")
    listing = subprocess.run(
        ["docker", "run", "--rm", "--network", "none", "--user", "61000:61000",
         autograder_image, "sh", "-c",
         "cd /opt/aml-data && for f in */*; do if head -c1 \"$f\" >/dev/null 2>&1; "
         "then echo \"readable $f\"; else echo \"refused $f\"; fi; done"],
        capture_output=True, text=True, check=True)
    lines = listing.stdout.split("\n")
    for name in names:
        assert any(line.startswith(f"readable {name}/train") for line in lines), lines
        assert any(line.startswith(f"refused {name}/test") for line in lines), lines
        assert not any(line.startswith(f"readable {name}/test") for line in lines), lines


# A week with one small model, so that after the notebook ran the grader must still
# write: the model's archive and the inputs it sends to the clean room.
MODEL_WEEK = """
title = "Tiny model week"
notebook = "tiny.ipynb"
[questions.q1]
title = "A model"
cells = ["q1"]
[exports]
models = ["model"]
[limits]
total_time = 300
"""
MODEL_CHECK = '''
import numpy as np
import pytest

pytestmark = [pytest.mark.question("q1"), pytest.mark.points(1)]


def test_adds_its_inputs(oracle):
    """The model adds its two inputs"""
    x = np.random.default_rng(0).normal(size=(20_000, 2)).astype("float32")
    y = oracle.predict("model", x, outputs=1)
    assert np.allclose(y[:, 0], x.sum(axis=1), atol=1e-4), "the model does not add its inputs"
'''
ADDING_MODEL = """
import keras, numpy as np
model = keras.Sequential([keras.Input(shape=(2,)), keras.layers.Dense(1, use_bias=False)])
model.layers[0].set_weights([np.ones((2, 1))])
"""
FILL_EVERY_WRITABLE_PLACE = """
import os, tempfile
filled = {}
for top in {"/tmp", "/var/tmp", "/dev/shm", os.path.expanduser("~"), tempfile.gettempdir(),
            "/grader-work", "/autograder-outbox", "/run", "/"}:
    written = 0
    try:
        for n in range(100_000):
            with open(os.path.join(top, f"fill-{n}"), "wb") as handle:
                for _ in range(64):  # files of 64 MB: below the kernel's file-size limit
                    handle.write(b"x" * 2**20)
                    written += 2**20
    except OSError:
        pass
    filled[top] = written // 2**20
print("filled MB", filled)
"""


@pytest.mark.grading
def test_filling_every_writable_place_costs_the_grader_nothing(autograder_image, tmp_path):  # noqa: F811
    """The notebook fills every place it can write, after its answer: the grader's own
    working space is a file system the kernel cannot write to, the outbox is emptied
    before the model is saved, and the kernel's leftovers are removed before the clean
    room starts, so the answer keeps its point and nobody is told the grader failed."""
    build = tmp_path / "course" / "assignments" / "tiny"
    (build / "tests").mkdir(parents=True)
    (build / "week.toml").write_text(MODEL_WEEK)
    (build / "tests" / "test_model.py").write_text(MODEL_CHECK)
    answer = nbformat.v4.new_code_cell(ADDING_MODEL.strip())
    answer.metadata["nbgrader"] = {"grade_id": "q1", "solution": True}
    notebook = tmp_path / "filler.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[
        answer, nbformat.v4.new_code_cell(FILL_EVERY_WRITABLE_PLACE.strip())]), notebook)
    out = tmp_path / "out"

    done = run_grade(tmp_path / "course", str(notebook), "--docker", "--out", str(out))

    assert done.returncode == 0, done.stdout + done.stderr
    results = json.loads((out / "filler" / "results.json").read_text())
    assert results["score"] == 1, results["tests"]
    printed_text = printed(out / "filler" / "executed.ipynb")
    assert "filled MB" in printed_text, printed_text[-2000:]
    filled = ast.literal_eval(printed_text.split("filled MB", 1)[1].strip().splitlines()[0])
    # /tmp (the kernel's home is on it) was full; the grader's own space was not writable.
    assert sum(filled.values()) >= 256, filled
    assert filled["/grader-work"] == 0 and filled["/autograder-outbox"] == 0, filled
