"""The Slurm engine's pieces without a cluster: settings, the time limit, splitting a
class at MaxArraySize into arrays and what each sbatch asks for (against recording
stand-ins for sbatch, squeue and scontrol), first-wins publishing, and a task's SIGTERM
told apart: the time limit's gives a time-out result, an earlier one gives nothing.
tests/test_slurm.py does the same on a real cluster."""

from __future__ import annotations

import json
import os
import stat
import time
from pathlib import Path

import nbformat
import pytest
from batch_fixtures import make_course, tiny_notebook

from autograder import slurm
from autograder.batch import publish_first
from autograder.errors import ConfigError
from autograder.grading.results import read_results
from autograder.submissions import Submission
from autograder.weeks import Week


@pytest.fixture
def week(tmp_path) -> Week:
    return Week.load(make_course(tmp_path / "course") / "assignments" / "tiny")


def test_settings_come_from_autograder_toml_and_the_command_line_wins(tmp_path):
    (tmp_path / "autograder.toml").write_text(
        '[slurm]\npartition = "cpu"\naccount = "aml"\nparallel = 20\nrequeue = true\n')
    options = slurm.SlurmOptions.load(tmp_path, partition="gpu", qos=None, parallel=None)
    assert options == slurm.SlurmOptions(partition="gpu", account="aml", parallel=20,
                                         requeue=True)
    assert slurm.SlurmOptions.load(tmp_path / "nowhere") == slurm.SlurmOptions()


@pytest.mark.parametrize("line, message", [
    ("partiton = 'cpu'", "unknown settings ['partiton']"),
    ("parallel = '20'", "parallel must be a non-negative int"),
    ("parallel = -1", "parallel must be a non-negative int"),
    ("requeue = 1", "requeue must be a bool"),
])
def test_a_bad_setting_is_refused_with_its_name(tmp_path, line, message):
    (tmp_path / "autograder.toml").write_text(f"[slurm]\n{line}\n")
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        slurm.SlurmOptions.load(tmp_path)


def test_the_time_limit_leaves_the_grading_its_own_time_out_first(week):
    # tiny: total_time 120 s + the runner's 300 s margin + 60 s for the task = 8 min
    assert slurm.time_limit_minutes(week, slurm.SlurmOptions()) == 8
    assert slurm.time_limit_minutes(week, slurm.SlurmOptions(time_minutes=3)) == 3


def stand_in(folder: Path, name: str, script: str) -> None:
    path = folder / name
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


@pytest.fixture
def fake_slurm(tmp_path, monkeypatch):
    """sbatch, squeue and scontrol that record their arguments; MaxArraySize is 3."""
    bin_dir, calls = tmp_path / "bin", tmp_path / "calls"
    bin_dir.mkdir()
    record = f'printf "%s\\n" "$0" "$@" "--" >> {calls}\n'
    stand_in(bin_dir, "sbatch", record + "echo 4242\n")
    stand_in(bin_dir, "squeue", record)
    stand_in(bin_dir, "scontrol", record + 'echo "MaxArraySize            = 3"\n')
    stand_in(bin_dir, "sinfo", record + 'printf "debug*\\ncpu\\n"\n')
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")

    def sbatches() -> list[list[str]]:
        words = calls.read_text().split("\n") if calls.exists() else []
        found, current = [], []
        for word in words:
            if word == "--":
                if current and current[0].endswith("sbatch"):
                    found.append(current[1:])
                current = []
            elif word:
                current.append(word)
        return found
    return sbatches


def option(command: list[str], flag: str) -> str:
    return command[command.index(flag) + 1]


def test_a_class_beyond_max_array_size_becomes_several_arrays(week, tmp_path, fake_slurm):
    subs = []
    for i in range(7):
        path = tmp_path / f"s{i}.ipynb"
        nbformat.write(tiny_notebook(0.5, "cat"), path)
        subs.append(Submission(name=f"s{i}", notebook=path))
    out = tmp_path / "out"
    out.mkdir()
    submitted, graded, held = slurm.submit_class(
        week, out, subs, options=slurm.SlurmOptions(parallel=2, partition="cpu", qos="short"),
        from_bundle=False, allow_unconfined=False, course_root=tmp_path / "course")
    assert [s.name for s in submitted] == [f"s{i}" for i in range(7)] and not graded and not held
    commands = fake_slurm()
    assert [option(c, "--array") for c in commands] == ["0-2%2", "0-2%2", "0-0%2"]
    plans = slurm.plans(out)
    assert [[e["name"] for e in plan.entries()] for plan in plans] == [
        ["s0", "s1", "s2"], ["s3", "s4", "s5"], ["s6"]]
    for command, plan in zip(commands, plans):
        assert option(command, "--job-name") == plan.job_name
        assert option(command, "--time") == "8"
        assert option(command, "--mem") == f"{week.limits.memory_mb + 1024}M"
        assert option(command, "--cpus-per-task") == str(week.limits.cpus)
        assert option(command, "--partition") == "cpu" and option(command, "--qos") == "short"
        assert "--account" not in command and "--requeue" not in command
        assert command[-1].endswith(f"-m autograder.slurm task {plan.folder / 'plan.json'}")
    # Each task reads its own copy of what the digest names, on the shared file system.
    entry = plans[2].entries()[0]
    assert Path(entry["notebook"]).read_bytes() == subs[6].notebook.read_bytes()
    assert entry["handed_in"] == str(subs[6].notebook)


def test_a_partition_the_cluster_lacks_is_refused_before_anything_is_submitted(
        week, tmp_path, fake_slurm):
    path = tmp_path / "s.ipynb"
    nbformat.write(tiny_notebook(0.5, "cat"), path)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(slurm.SlurmError, match="no partition 'gpu'; it has cpu, debug"):
        slurm.submit_class(week, out, [Submission(name="s", notebook=path)],
                           options=slurm.SlurmOptions(partition="gpu"), from_bundle=False,
                           allow_unconfined=False, course_root=tmp_path)
    assert fake_slurm() == [] and slurm.plans(out) == []


def test_the_first_result_published_wins(tmp_path):
    target = tmp_path / "out" / "alice"
    target.parent.mkdir()
    first, second = tmp_path / "first", tmp_path / "second"
    for folder in (first, second):
        folder.mkdir()
        (folder / "results.json").write_text(folder.name)
    assert publish_first(first, target) is True
    assert publish_first(second, target) is False
    assert (target / "results.json").read_text() == "first" and second.exists()


def test_sigterm_at_the_time_limit_publishes_a_time_out_and_earlier_nothing(week, tmp_path):
    def stopped_by_slurm(week, notebook, results_path, **kwargs):
        raise slurm.Terminated()

    started = time.monotonic()
    at_the_limit = slurm._until_time_limit(stopped_by_slurm, started - 600, time_limit=600)
    result = at_the_limit(week, tmp_path / "nb.ipynb", tmp_path / "results.json")
    assert "reached its time limit (10 min)" in result.extra["note"]
    written = read_results(tmp_path / "results.json")
    assert written.final and written.score == 0
    assert all("reached its time limit" in c.output for c in written.checks)
    early = slurm._until_time_limit(stopped_by_slurm, started - 30, time_limit=600)
    with pytest.raises(slurm.Terminated):
        early(week, tmp_path / "nb.ipynb", tmp_path / "early.json")
    assert not (tmp_path / "early.json").exists()


def test_a_task_whose_submission_was_published_does_nothing(tmp_path, capsys, monkeypatch):
    out = tmp_path / "out"
    (out / "alice").mkdir(parents=True)
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"course": str(tmp_path), "out": str(out), "submissions": [
        {"name": "alice"}]}))
    monkeypatch.setenv("SLURM_RESTART_COUNT", "1")
    before = dict(os.environ)
    assert slurm.run_task(plan, 0) == 0
    assert dict(os.environ) == before  # the test process's settings are left alone
    assert "already published by an earlier run" in capsys.readouterr().out
