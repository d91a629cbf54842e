"""Grading a class on a real one-node Slurm cluster, as an ordinary user (the TA):
the same gradebook as a local batch, and one result per submission whatever the
cluster does meanwhile (a task requeued, slurmd killed, a time limit, the
coordinating command killed and run again). The course is tests/batch_fixtures.py's
tiny week, whose gradings take seconds; the hostile notebooks are graded through the
cluster in tests/test_hostile_notebooks.py."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import nbformat
import pytest
from batch_fixtures import make_course, tiny_notebook
from conftest import grade_as_ta, without_timing

pytestmark = pytest.mark.grading  # a real cluster, real sandboxes

CLASS = {"ada": (0.6, "cat"), "bob": (0.35, "dog"), "cy": (0.1, "cat"), "dee": (0.45, "cow"),
         "eve": (0.3, "cat")}
SLEEP = "import time\ntime.sleep({seconds})"


def write_class(folder: Path, notebooks: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, (score, label, *extra) in notebooks.items():
        nbformat.write(tiny_notebook(score, label, *extra), folder / f"{name}.ipynb")
    return folder


@pytest.fixture(scope="module")
def course(slurm_cluster):
    """The tiny course, readable by the TA."""
    root = make_course(slurm_cluster.folder("course"))
    return slurm_cluster.hand_over(root)


def grade_on_slurm(ta, course: Path, inputs: Path, out: Path, *options: str, check=True):
    return ta.autograder("grade", "tiny", str(inputs), "--out", str(out), "--slurm", *options,
                         env={"AUTOGRADER_COURSE": str(course)}, check=check)


def published(out: Path) -> dict[str, tuple[int, int]]:
    """name -> (inode, mtime) of each published result: a rewrite changes them."""
    found = {}
    for folder in out.iterdir():
        if (folder / "submission.json").exists():
            found[folder.name] = (folder.stat().st_ino,
                                  (folder / "results.json").stat().st_mtime_ns)
    return found


def results(out: Path, name: str) -> dict:
    return json.loads((out / name / "results.json").read_text())


def sidecar(out: Path, name: str) -> dict:
    return json.loads((out / name / "submission.json").read_text())


def plan_folders(out: Path) -> list[Path]:
    folder = out / ".slurm"
    return sorted(p for p in folder.iterdir() if (p / "plan.json").exists()) \
        if folder.is_dir() else []


def slurm_task(ta, out: Path, name: str) -> str:
    """The Slurm id (JOB_INDEX) of the running task that grades ``name``, or ''."""
    for plan in plan_folders(out):
        entries = json.loads((plan / "plan.json").read_text())["submissions"]
        for line in ta.slurm("squeue", "--noheader", "--array", "--name",
                             f"autograder-{plan.name}", "--format", "%i|%K|%T").splitlines():
            task, index, state = line.split("|")
            if state == "RUNNING" and entries[int(index)]["name"] == name:
                return task
    return ""


def wait_for(condition, timeout: float = 120, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


# -- the same gradebook --------------------------------------------------------------
@pytest.fixture(scope="module")
def local_and_slurm(slurm_cluster, course, tmp_path_factory):
    """The class graded by a local batch (two at a time) and through Slurm (two tasks at
    once): (local out, Slurm out, the Slurm run's stdout, the rerun's stdout)."""
    inputs = slurm_cluster.hand_over(write_class(slurm_cluster.folder("class"), CLASS))
    local = tmp_path_factory.mktemp("tiny-local")
    grade_as_ta("tiny", [inputs], local, jobs=2, env={"AUTOGRADER_COURSE": str(course)})
    out = slurm_cluster.folder("graded") / "out"
    first = grade_on_slurm(slurm_cluster, course, inputs, out).stdout
    before = published(out)
    again = grade_on_slurm(slurm_cluster, course, inputs, out).stdout
    assert published(out) == before  # nothing published is rewritten
    return local, out, first, again


def test_a_class_graded_through_slurm_gets_the_local_gradebook(local_and_slurm):
    local, out, first, _ = local_and_slurm
    assert "5 submitted to Slurm" in first
    assert (out / "gradebook.csv").read_text() == (local / "gradebook.csv").read_text()
    assert (out / "summary.csv").read_text() == (local / "summary.csv").read_text()
    for name in CLASS:
        slurm_result, local_result = results(out, name), results(local, name)
        assert "bubblewrap-rootless" in slurm_result["extra_data"]["isolation"]
        ignore = frozenset({"isolation"})
        assert without_timing(slurm_result, ignore) == without_timing(local_result, ignore)
        assert sidecar(out, name)["slurm"]["restarts"] == 0


def test_running_the_same_command_again_submits_only_what_has_no_result(local_and_slurm,
                                                                         slurm_cluster):
    _, out, _, again = local_and_slurm
    assert "5 already graded" in again and "0 submitted to Slurm" in again
    assert len(plan_folders(out)) == 1
    status = slurm_cluster.autograder("status", str(out)).stdout
    assert "5 graded, 0 running, 0 queued, 0 failed" in status


# -- a disrupted class ---------------------------------------------------------------
DISRUPTED = {"ada": (0.6, "cat"), "bob": (0.35, "dog"),
             "slow": (0.6, "cat", SLEEP.format(seconds=400)),
             "requeued": (0.45, "cat", SLEEP.format(seconds=20))}


@pytest.fixture(scope="module")
def disrupted(slurm_cluster, course):
    """The class graded with a 1-minute time limit per task (``slow`` needs more); once
    ``requeued``'s task runs it is requeued, and the coordinating command is killed
    (SIGKILL) right after; then the TA runs the same command again. Returns the output
    folder, what was published before the rerun, and the rerun's stdout."""
    ta = slurm_cluster
    inputs = ta.hand_over(write_class(ta.folder("disrupted"), DISRUPTED))
    out = ta.folder("disrupted-graded") / "out"
    options = ("--time-minutes", "1", "--requeue")
    coordinator = ta.start("grade", "tiny", str(inputs), "--out", str(out), "--slurm", *options,
                           env={"AUTOGRADER_COURSE": str(course)})
    try:
        wait_for(lambda: out.exists() and slurm_task(ta, out, "requeued"),
                 what="the task of `requeued` to run")
        time.sleep(3)  # its kernel is running the notebook now
        task = slurm_task(ta, out, "requeued")
        ta.slurm("scontrol", "requeue", task)
        # Slurm holds a requeued job back (Reason=BeginTime) for the cluster's credential
        # lifetime; the coordinator dies while the task waits there.
        wait_for(lambda: ta.slurm("squeue", "--noheader", "--job", task, "--format",
                                  "%T").strip() == "PENDING", what="the requeue")
    finally:
        os.killpg(coordinator.pid, signal.SIGKILL)
        coordinator.wait()
    before = published(out)
    rerun = grade_on_slurm(ta, course, inputs, out, *options, check=False)
    return out, before, rerun


def test_a_task_past_its_time_limit_gets_a_time_out_result_for_that_submission_only(
        disrupted):
    out, _, rerun = disrupted
    slow = results(out, "slow")
    assert "reached its time limit (1 min)" in slow["extra_data"]["note"], slow
    assert slow["extra_data"]["final"] is True
    assert all(t["score"] == 0 for t in slow["tests"] if "not run" in t["output"])
    assert {name: results(out, name)["score"] for name in ("ada", "bob", "requeued")} == {
        "ada": 5, "bob": 1, "requeued": 4}
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr


def test_a_requeued_task_publishes_one_result_and_the_requeue_is_recorded(disrupted):
    out, _, _ = disrupted
    record = sidecar(out, "requeued")["slurm"]
    assert record["restarts"] >= 1, record
    assert results(out, "requeued")["score"] == 4
    assert list((out / ".slurm").glob("*/work/*")) == []  # no half-published leftovers
    assert [p.name for p in out.iterdir() if p.name.startswith("requeued")] == ["requeued"]


def test_the_coordinator_killed_and_run_again_submits_nothing_twice(disrupted):
    out, before, rerun = disrupted
    assert "0 submitted to Slurm" in rerun.stdout, rerun.stdout
    assert len(plan_folders(out)) == 1
    after = published(out)
    assert {name: after[name] for name in before} == before  # nothing rewritten
    assert sorted(after) == sorted(DISRUPTED)
    gradebook = (out / "gradebook.csv").read_text().splitlines()
    assert len(gradebook) == 1 + len(DISRUPTED)


# -- slurmd dies ---------------------------------------------------------------------
def test_slurmd_killed_mid_grading_and_restarted_leaves_one_result_each(slurm_cluster,
                                                                        course):
    ta = slurm_cluster
    notebooks = {f"s{i}": (0.6, "cat", SLEEP.format(seconds=8)) for i in range(3)}
    inputs = ta.hand_over(write_class(ta.folder("slurmd"), notebooks))
    out = ta.folder("slurmd-graded") / "out"
    grade_on_slurm(ta, course, inputs, out, "--no-wait")
    wait_for(lambda: slurm_task(ta, out, "s0"), what="a task to run")
    ta.cluster.kill_slurmd()
    time.sleep(5)
    ta.cluster.start_slurmd()
    run = grade_on_slurm(ta, course, inputs, out)
    assert "0 submitted to Slurm" in run.stdout, run.stdout
    assert {name: results(out, name)["score"] for name in notebooks} == dict.fromkeys(
        notebooks, 5)
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")
                  and p.is_dir()) == sorted(notebooks)
