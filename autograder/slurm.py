"""Grading a class on a Slurm cluster: one array task per submission.

The coordinator (``autograder grade WEEK INPUT... --out OUT --slurm``), on a login node:

1. finds the submissions as a local batch does and leaves out those with a result for
   the same content and week build, and those a task of an earlier run still holds
   (queued or running, asked of ``squeue``): a rerun submits only what has no result;
2. copies each remaining notebook (and bundle) into ``OUT/.slurm/<plan>/`` on the shared
   file system, with the plan (``plan.json``: task index -> submission), after the
   week's data sets are prepared into ``$AML_DATA_DIR``, which the tasks inherit;
3. submits the plan with ``sbatch --array=0-N%P`` (one plan per ``MaxArraySize``
   submissions), the week's limits as ``--time``, ``--mem`` and ``--cpus-per-task``;
4. waits until every submission has a result or left the queue, and builds the
   gradebook as a local batch does (``--no-wait`` returns at once; ``autograder status
   OUT`` tells where things are).

Each task (``python -m autograder.slurm task PLAN``) grades its submission exactly as a
local worker does (``batch.grade_into``, in the local sandbox: rootless, as Slurm runs
jobs as the user who submitted them) and publishes the
folder with ``batch.publish_first``: a requeued task whose first run finished after all
changes nothing. Slurm ends a task at its time limit with SIGTERM, then SIGKILL
``KillWait`` seconds later: in between the task stops its grading and publishes a
time-out result. A SIGTERM well before the limit (``scancel``, ``scontrol requeue``,
preemption) publishes nothing: the requeued run, or the next run of the command, grades
that submission.

Every Slurm command (sbatch, squeue, scancel, sinfo, scontrol) goes through ``_slurm``;
nothing else talks to the cluster. sacct is not needed: every outcome is a result file.
"""

from __future__ import annotations

import json
import math
import os
import pwd
import shlex
import shutil
import signal
import subprocess
import sys
import time
import tomllib
import uuid
from dataclasses import dataclass, fields, replace
from pathlib import Path

from autograder.batch import (Grader, Progress, already_graded, digest_of, grade_into,
                              load_results, publish_first, read_sidecar, week_fingerprint)
from autograder.errors import AutograderError, ConfigError
from autograder.grading.runner import GRADING_MARGIN, finish_results
from autograder.submissions import Submission
from autograder.weeks import Week

SLURM = ".slurm"  # OUT/.slurm/<plan>/: plan.json, inputs/, work/, logs/
JOB_PREFIX = "autograder-"  # job name: autograder-<plan>
START_MARGIN = 60.0  # s on top of the grading's own limit: task start, feedback, publishing
GRADER_MEMORY_MB = 1024  # the pytest process and a warm clean room, beside the kernel
# A SIGTERM this close to the time limit (or later) is the time limit's: Slurm checks
# limits about twice a minute. (A quarter of the limit at most, for very short limits.)
TIME_LIMIT_SLACK = 60.0
QUEUED = {"PENDING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "CONFIGURING", "SUSPENDED",
          "RESIZING"}
RUNNING = {"RUNNING", "COMPLETING", "STAGE_OUT", "SIGNALING"}


class SlurmError(AutograderError):
    """A Slurm command failed or is missing; the message has its own words."""


@dataclass(frozen=True)
class SlurmOptions:
    """``[slurm]`` in the course's autograder.toml, then the command line."""
    partition: str = ""
    account: str = ""
    qos: str = ""
    requeue: bool = False  # let Slurm requeue a task whose node failed
    parallel: int = 0  # tasks of one array running at once (sbatch --array=...%P); 0: no cap
    time_minutes: int = 0  # a shorter --time than the week's budget asks (site limits)

    @classmethod
    def load(cls, course_root: Path, **overrides) -> "SlurmOptions":
        path = course_root / "autograder.toml"
        values = {}
        if path.exists():
            try:
                values = tomllib.loads(path.read_text()).get("slurm", {})
            except tomllib.TOMLDecodeError as error:
                raise ConfigError(f"{path}: {error}") from None
        defaults = {f.name: f.default for f in fields(cls)}
        unknown = set(values) - set(defaults)
        if unknown:
            raise ConfigError(f"{path} [slurm]: unknown settings {sorted(unknown)}; known: "
                              f"{sorted(defaults)}")
        for key, value in values.items():
            if type(value) is not type(defaults[key]) or (
                    isinstance(value, int) and not isinstance(value, bool) and value < 0):
                raise ConfigError(f"{path} [slurm]: {key} must be a "
                                  f"{'non-negative ' if type(defaults[key]) is int else ''}"
                                  f"{type(defaults[key]).__name__}, not {value!r}")
        options = cls(**values)
        return replace(options, **{k: v for k, v in overrides.items() if v not in (None, "")})


# -- the coordinator ---------------------------------------------------------------
@dataclass(frozen=True)
class Plan:
    """One sbatch array: a folder under OUT/.slurm holding plan.json and its inputs."""
    folder: Path

    @property
    def id(self) -> str:
        return self.folder.name

    @property
    def job_name(self) -> str:
        return JOB_PREFIX + self.id

    def entries(self) -> list[dict]:
        try:
            return json.loads((self.folder / "plan.json").read_text())["submissions"]
        except (OSError, ValueError, KeyError):
            return []  # a plan the coordinator did not finish writing: never submitted


def plans(out: Path) -> list[Plan]:
    folder = out / SLURM
    return sorted((Plan(p) for p in folder.iterdir() if (p / "plan.json").exists()),
                  key=lambda plan: plan.id) if folder.is_dir() else []


def submit_class(week: Week, out: Path, submissions: list[Submission], *,
                 options: SlurmOptions, from_bundle: bool, allow_unconfined: bool,
                 course_root: Path, regrade: bool = False,
                 ) -> tuple[list[Submission], list[str], dict[str, str]]:
    """Submit what has no result (``regrade``: whatever its result) and no live task:
    (submitted, already graded, held by a live task: name -> state). The caller holds
    ``OutputLock(out)``."""
    fingerprint = week_fingerprint(week)
    live = live_tasks(out)
    todo, graded, held = [], [], {}
    for sub in submissions:
        digest = digest_of(sub, from_bundle)
        if not regrade and already_graded(out, sub.name, digest, fingerprint):
            graded.append(sub.name)
        elif sub.name in live:
            held[sub.name] = live[sub.name]
        else:
            todo.append((sub, digest))
    if not todo:
        return [], graded, held
    _check_partition(options.partition)
    _prepare_data(week)
    limit, minutes = max_array_size(), time_limit_minutes(week, options)
    for start in range(0, len(todo), limit):
        chunk = todo[start:start + limit]
        for sub, _ in chunk:  # a stale result (other content, other build) makes way
            _move_aside(out, sub.name)
        plan = _write_plan(out, week, chunk, from_bundle=from_bundle,
                           allow_unconfined=allow_unconfined, course_root=course_root,
                           time_limit=minutes * 60)
        _sbatch(plan, len(chunk), week, options, minutes)
    return [sub for sub, _ in todo], graded, held


def time_limit_minutes(week: Week, options: SlurmOptions) -> int:
    """--time: the grading's own limit and margins, so the runner's time-out comes first."""
    seconds = week.limits.total_time + GRADING_MARGIN + START_MARGIN
    minutes = math.ceil(seconds / 60)
    return min(minutes, options.time_minutes) if options.time_minutes else minutes


def _write_plan(out: Path, week: Week, chunk, *, from_bundle: bool,
                allow_unconfined: bool, course_root: Path, time_limit: float) -> Plan:
    # Numbered, so plans sort in the order they were made (the caller holds the lock).
    number = len(list((out / SLURM).glob("*"))) + 1 if (out / SLURM).is_dir() else 1
    plan = Plan(out / SLURM / f"{number:04d}-{time.strftime('%Y%m%d-%H%M%S')}-"
                f"{uuid.uuid4().hex[:6]}")
    inputs = plan.folder / "inputs"
    for folder in (inputs, plan.folder / "work", plan.folder / "logs"):
        folder.mkdir(parents=True)
    entries = []
    for index, (sub, digest) in enumerate(chunk):
        # The exact content the digest names, on the shared file system.
        notebook = inputs / f"{index}.ipynb"
        shutil.copyfile(sub.notebook, notebook)
        bundle = None
        if sub.bundle:
            bundle = inputs / f"{index}.bundle.zip"
            shutil.copyfile(sub.bundle, bundle)
        entries.append({"name": sub.name, "notebook": str(notebook),
                        "bundle": str(bundle) if bundle else None, "sha256": digest,
                        "student": sub.student, "email": sub.email, "origin": sub.origin,
                        "handed_in": str(sub.notebook)})
    document = {"week": str(week.directory), "course": str(course_root), "out": str(out),
                "from_bundle": from_bundle,
                "allow_unconfined": allow_unconfined, "time_limit": time_limit,
                "submissions": entries}
    staged = plan.folder / "plan.json.tmp"
    staged.write_text(json.dumps(document, indent=1) + "\n")
    os.rename(staged, plan.folder / "plan.json")
    return plan


def _sbatch(plan: Plan, count: int, week: Week, options: SlurmOptions, minutes: int) -> str:
    array = f"0-{count - 1}" + (f"%{options.parallel}" if options.parallel else "")
    command = [
        "sbatch", "--parsable", "--job-name", plan.job_name, "--array", array,
        "--time", str(minutes),
        "--mem", f"{week.limits.memory_mb + GRADER_MEMORY_MB}M",
        "--cpus-per-task", str(week.limits.cpus), "--ntasks", "1",
        "--output", str(plan.folder / "logs" / "%a.log"), "--chdir", str(plan.folder),
    ]
    for flag, value in (("--partition", options.partition), ("--account", options.account),
                        ("--qos", options.qos)):
        if value:
            command += [flag, value]
    if options.requeue:
        command.append("--requeue")
    # exec: the task itself receives Slurm's signals, not a shell in between.
    command += ["--wrap", f"exec {shlex.quote(sys.executable)} -m autograder.slurm task "
                          f"{shlex.quote(str(plan.folder / 'plan.json'))}"]
    return _slurm(*command).strip().split(";")[0]


def _check_partition(partition: str) -> None:
    """A partition the cluster does not have fails here, before anything is copied."""
    if partition:
        known = {p.rstrip("*") for p in _slurm("sinfo", "--noheader", "--format",
                                               "%P").split()}
        if partition not in known:
            raise SlurmError(f"the cluster has no partition {partition!r}; it has "
                             f"{', '.join(sorted(known)) or 'none'} (sinfo)")


def _move_aside(out: Path, name: str) -> None:
    target = out / name
    if target.exists() or target.is_symlink():
        stale = out / SLURM / "replaced"
        stale.mkdir(parents=True, exist_ok=True)
        os.rename(target, stale / f"{name}.{uuid.uuid4().hex[:8]}")


def _prepare_data(week: Week) -> None:
    """Nodes are often offline: the data sets go into $AML_DATA_DIR before any task."""
    if week.data:
        from autograder import data

        for name in week.data:
            data.prepare(name)


# -- where things are --------------------------------------------------------------
def live_tasks(out: Path) -> dict[str, str]:
    """Submissions of ``out`` a queued or running task holds: name -> "queued"/"running"."""
    by_job = {plan.job_name: plan for plan in plans(out)}
    if not by_job:
        return {}
    listing = _slurm("squeue", "--noheader", "--array", "--user", _user(),
                     "--format", "%j|%K|%T")
    held = {}
    for line in listing.splitlines():
        job, _, rest = line.partition("|")
        index, _, state = rest.partition("|")
        plan = by_job.get(job)
        if plan is None or not index.isdigit():
            continue
        entries = plan.entries()
        if int(index) < len(entries):
            kind = "running" if state in RUNNING else "queued" if state in QUEUED else None
            if kind:
                held[entries[int(index)]["name"]] = kind
    return held


def status(out: Path) -> dict[str, str]:
    """Every submission of ``out`` (a result folder, or named by a plan): graded /
    running / queued / failed (no result, and no task holds it)."""
    live = live_tasks(out)
    names = {entry["name"] for plan in plans(out) for entry in plan.entries()}
    names |= {p.name for p in out.iterdir() if p.is_dir() and not p.name.startswith(".")}
    states = {}
    for name in sorted(names):
        if load_results(out / name) is not None and read_sidecar(out / name):
            states[name] = "graded"
        else:
            states[name] = live.get(name, "failed")
    return states


def task_log(out: Path, name: str) -> Path | None:
    """The log of the latest task that graded ``name``."""
    for plan in reversed(plans(out)):
        for index, entry in enumerate(plan.entries()):
            if entry["name"] == name:
                return plan.folder / "logs" / f"{index}.log"
    return None


def cancel(out: Path) -> int:
    """scancel this folder's queued and running tasks; how many jobs were asked."""
    names = [plan.job_name for plan in plans(out)]
    if names:
        _slurm("scancel", "--user", _user(), "--name", ",".join(names))
    return len(names)


def wait(out: Path, names: list[str], progress: Progress, *, poll: float = 2.0) -> dict[str, str]:
    """Until each of ``names`` has a result or no task holds it; their states. A task
    counts as ended without a result only when two polls in a row say so (a requeued
    task passes through states squeue may not list)."""
    reported: set[str] = set()
    missing_before: set[str] = set()
    while True:
        states = status(out)
        missing = {name for name in names if states.get(name, "failed") == "failed"}
        for name in names:
            if name in reported:
                continue
            if states.get(name) == "graded":
                progress.finished(name, f"{load_results(out / name).score:g} points")
                reported.add(name)
            elif name in missing and name in missing_before:
                progress.finished(name, "no result: its task ended without one")
                reported.add(name)
        if len(reported) == len(names):
            return {name: states.get(name, "failed") for name in names}
        missing_before = missing
        time.sleep(poll)


def max_array_size() -> int:
    """Tasks one array may have (scontrol show config: MaxArraySize; indices stop below)."""
    return int(cluster_config().get("MaxArraySize", "1001"))


def cluster_config() -> dict[str, str]:
    config = {}
    for line in _slurm("scontrol", "show", "config").splitlines():
        key, sep, value = line.partition("=")
        if sep:
            config[key.strip()] = value.strip()
    return config


def _user() -> str:
    """Who runs this: squeue and scancel look at this user's jobs only."""
    return pwd.getpwuid(os.getuid()).pw_name


def _slurm(*command: str) -> str:
    if shutil.which(command[0]) is None:
        raise SlurmError(f"{command[0]} is not installed here: grade with --slurm on a "
                         "machine where Slurm's commands work (a login node)")
    run = subprocess.run(command, capture_output=True, text=True)
    if run.returncode != 0:
        raise SlurmError(f"{' '.join(command[:2])} failed: {run.stderr.strip() or run.stdout}")
    return run.stdout


# -- one task, on a node --------------------------------------------------------------
class Terminated(BaseException):
    """Slurm sent SIGTERM (time limit, scancel, requeue, preemption)."""


def run_task(plan_file: Path, index: int) -> int:
    started = time.monotonic()
    document = json.loads(plan_file.read_text())
    entry = document["submissions"][index]
    out, name = Path(document["out"]), entry["name"]
    restarts = int(os.environ.get("SLURM_RESTART_COUNT", "0"))
    if (out / name).exists():  # an earlier run of this task published: nothing to do
        print(f"{name}: already published by an earlier run; nothing to do", flush=True)
        return 0
    os.environ["AUTOGRADER_COURSE"] = document["course"]  # the course the TA graded from
    week = Week.load(Path(document["week"]))
    grader = _task_grader(document["allow_unconfined"])
    sub = Submission(name=name, notebook=Path(entry["notebook"]), student=entry["student"],
                     email=entry["email"], origin=entry["origin"],
                     bundle=Path(entry["bundle"]) if entry["bundle"] else None)
    record = {"notebook": entry["handed_in"], "engine": "slurm",
              "slurm": {"job": os.environ.get("SLURM_ARRAY_JOB_ID", ""), "task": index,
                        "restarts": restarts, "node": os.environ.get("SLURMD_NODENAME", "")}}
    if restarts:
        print(f"{name}: requeued {restarts} time(s); grading again", flush=True)
    work = plan_file.parent / "work" / f"{index}.{restarts}.{uuid.uuid4().hex[:8]}"
    work.mkdir(parents=True)

    def on_sigterm(signum, frame):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # Slurm may repeat it
        raise Terminated()
    signal.signal(signal.SIGTERM, on_sigterm)
    timed = _until_time_limit(grader, started, document["time_limit"])
    try:
        result = grade_into(work, week, sub, entry["sha256"], timed,
                            from_bundle=document["from_bundle"],
                            fingerprint=week_fingerprint(week), out=out, record=record)
    except Terminated:
        print(f"{name}: stopped by Slurm before its time limit (cancelled or requeued); "
              "no result published", flush=True)
        shutil.rmtree(work, ignore_errors=True)
        return 143
    if publish_first(work, out / name):
        print(f"{name}: {result.score:g} points, published", flush=True)
    else:
        print(f"{name}: an earlier run published first; this result is dropped", flush=True)
        shutil.rmtree(work, ignore_errors=True)
    return 0


def _until_time_limit(grader: Grader, started: float, time_limit: float) -> Grader:
    """``grader``, but Slurm's SIGTERM at the time limit ends in a time-out result."""
    def grade(week, notebook, results_path, **kwargs):
        try:
            return grader(week, notebook, results_path, **kwargs)
        except Terminated:
            elapsed = time.monotonic() - started
            if elapsed < time_limit - min(TIME_LIMIT_SLACK, time_limit / 4):
                raise
            return finish_results(week, results_path, "the Slurm task reached its time limit "
                                  f"({time_limit / 60:.0f} min) and was stopped", elapsed)
    return grade


def _task_grader(allow_unconfined: bool) -> Grader:
    """The local sandbox, on the node: as root if Slurm runs tasks as root (rare), else
    the rootless one; refused where neither works (the task log says why)."""
    from autograder.grading.runner import grade_notebook
    from autograder.sandbox.isolation import detect, require_confinement

    isolation = detect()
    print(isolation.describe(), flush=True)
    require_confinement(isolation, allow_unconfined=allow_unconfined)
    return grade_notebook


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] != "task":
        print("usage: python -m autograder.slurm task PLAN (run by sbatch)", file=sys.stderr)
        return 2
    try:
        return run_task(Path(argv[1]), int(os.environ["SLURM_ARRAY_TASK_ID"]))
    except AutograderError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
