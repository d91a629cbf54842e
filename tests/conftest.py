"""Shared fixtures: grading a notebook exactly as `autograder grade` does."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from autograder.grading.runner import grade_notebook  # noqa: E402
from autograder.weeks import Course, Week  # noqa: E402


pytest_plugins = ["pytester"]  # the plugin's in-process tests (tests/test_plugin.py)


def pytest_collection_modifyitems(items):
    """The fast tier first (tests not marked ``grading``), so that a broken piece shows in
    minutes rather than after the gradings; each tier keeps its own order."""
    items.sort(key=lambda item: item.get_closest_marker("grading") is not None)


@pytest.fixture(scope="session")
def week1() -> Week:
    return Course(ROOT).built_week("week1")


@pytest.fixture
def grade(tmp_path, week1):
    """grade(nb or path, name, week=week1) -> results.json as a dict; files in tmp_path/name."""
    def run(notebook, name: str = "submission", week: Week = week1) -> dict:
        folder = tmp_path / name
        folder.mkdir()
        if isinstance(notebook, Path):
            path = notebook
        else:
            path = folder / f"{name}.ipynb"
            nbformat.write(notebook, path)
        return grade_notebook(week, path, folder / "results.json",
                              log=folder / "grader.log").to_json()
    return run


def with_limits(week: Week, folder: Path, **limits) -> Week:
    """A copy of ``week``'s build in ``folder`` with some limits changed."""
    shutil.copytree(week.directory, folder)
    config = folder / "week.toml"
    text = config.read_text().split("[limits]")[0] + "[limits]\n"
    merged = {**week.limits.__dict__, **limits}
    text += "".join(f"{key} = {value!r}\n" for key, value in merged.items())
    config.write_text(text)
    return Week.load(folder)


def by_question(results: dict) -> dict[str, float]:
    scores: dict[str, float] = {}
    for test in results["tests"]:
        question = test["extra_data"]["question"]
        scores[question] = scores.get(question, 0) + test["score"]
    return scores


def failed(results: dict) -> dict[str, str]:
    """Name -> message of every check that did not pass."""
    return {t["name"]: t["output"] for t in results["tests"] if t["status"] != "passed"}


def measured(results: dict) -> dict[str, float]:
    """Label -> value of every figure the checks measured (extra_data.measured)."""
    return {m["label"]: m["value"] for t in results["tests"]
            for m in t.get("extra_data", {}).get("measured", [])}


@pytest.fixture(scope="session")
def graded_class(tmp_path_factory):
    """graded_class(week) -> (out, stdout): `autograder grade WEEK ... --out OUT` as a TA
    runs it, once per test run, on everything the tests of that week read: the reference
    (``source/<week>/<week>.ipynb``, graded as ``<week>``), the samples, the lying
    notebooks with their twins (tests/lying_notebooks.py) and the week's own further
    cases (``CLASS_EXTRAS`` in tests/<week>_submissions.py, if the week has one). One
    grading per notebook, shared by every test."""
    import importlib

    import lying_notebooks

    done: dict[str, tuple[Path, str]] = {}

    def grade(week: str) -> tuple[Path, str]:
        if week not in done:
            extra = tmp_path_factory.mktemp(f"{week}-extra")
            try:
                own = getattr(importlib.import_module(f"{week}_submissions"), "CLASS_EXTRAS", {})
            except ModuleNotFoundError as error:
                if error.name != f"{week}_submissions":
                    raise
                own = {}  # a week whose samples are notebooks written by hand
            extras = {**lying_notebooks.notebooks(week),
                      **{name: make() for name, make in own.items()}}
            for name, nb in extras.items():
                nbformat.write(nb, extra / f"{name}.ipynb")
            source = ROOT / "source" / week
            out = tmp_path_factory.mktemp(f"{week}-class")
            inputs = [*sorted((source / "samples").glob("*.ipynb")), extra,
                      source / f"{week}.ipynb"]
            # Two at a time: much of a small model's training is single-threaded
            # Python, so two gradings share the two cores well.
            done[week] = (out, grade_as_ta(week, inputs, out, jobs=2))
        return done[week]
    return grade


@pytest.fixture(scope="session")
def graded_from_bundles(graded_class, tmp_path_factory):
    """graded_from_bundles(week, names=None) -> (out, stdout): the notebooks of
    ``graded_class(week)`` (those named, or all) handed in with the bundle its grading
    wrote (``<name>.ipynb`` + ``<name>.bundle.zip``), graded again with `autograder grade
    WEEK FOLDER --from-bundle`. Once per week: the first call's ``names`` hold."""
    done: dict[str, tuple[Path, str]] = {}

    def grade(week: str, names: tuple[str, ...] | None = None) -> tuple[Path, str]:
        if week not in done:
            executed, _ = graded_class(week)
            handed_in = tmp_path_factory.mktemp(f"{week}-handed-in")
            for folder in sorted(executed.iterdir()):
                sidecar = folder / "submission.json"
                if not sidecar.exists() or (names is not None and folder.name not in names):
                    continue
                shutil.copyfile(json.loads(sidecar.read_text())["notebook"],
                                handed_in / f"{folder.name}.ipynb")
                bundle = folder / f"{week}.bundle.zip"
                if bundle.exists():
                    shutil.copyfile(bundle, handed_in / f"{folder.name}.bundle.zip")
            out = tmp_path_factory.mktemp(f"{week}-from-bundles")
            done[week] = (out, grade_as_ta(week, [handed_in], out, jobs=2,
                                           options=["--from-bundle"]))
        return done[week]
    return grade


def results_of(out: Path, name: str) -> dict:
    return json.loads((out / name / "results.json").read_text())


def grade_as_ta(week: str, inputs: list[Path], out: Path, jobs: int = 1,
                env: dict[str, str] | None = None, options: list[str] = ()) -> str:
    """`autograder grade WEEK INPUT... --out OUT --jobs N [OPTION...]`, as a TA runs it; its
    stdout. ``env``: variables to set for it."""
    run = subprocess.run([sys.executable, "-m", "autograder.cli", "grade", week,
                          *map(str, inputs), "--out", str(out), "--jobs", str(jobs),
                          *options],
                         capture_output=True, text=True, cwd=ROOT,
                         env={**os.environ, **(env or {})})
    assert run.returncode == 0, run.stderr
    return run.stdout


TIMING = {"execution_time", "seconds", "timing"}


def without_timing(value, also: frozenset = frozenset()):
    """``value`` (results.json) without what varies from run to run, nor the keys ``also``."""
    if isinstance(value, dict):
        return {k: without_timing(v, also) for k, v in value.items()
                if k not in TIMING and k not in also}
    if isinstance(value, list):
        return [without_timing(v, also) for v in value]
    return value


def outputs(results: dict, question: str) -> str:
    return "\n".join(t["output"] for t in results["tests"] if t["extra_data"]["question"] == question)


def dump(results: dict) -> str:
    return json.dumps(results, indent=1)


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory):
    """A one-node Slurm cluster (tests/slurm_cluster.py) and a TA, an ordinary user, who
    submits to it: ``TA``. Started once, stopped by process id at the end."""
    from slurm_cluster import OneNodeCluster, readable_by_everyone

    if os.geteuid() != 0:
        pytest.skip("starting Slurm's daemons and becoming a TA need root")
    folder = Path(tempfile.mkdtemp(prefix="aml-slurm-"))
    cluster = OneNodeCluster(folder)
    try:
        cluster.start()
        with readable_by_everyone(Path(os.path.realpath(sys.executable)), ROOT):
            yield TA(cluster)
    finally:
        cluster.stop()
        shutil.rmtree(folder, ignore_errors=True)


class TA:
    """What the TA does on the cluster's login node, as the TA's own uid."""

    def __init__(self, cluster):
        import pwd

        self.cluster, self.uid = cluster, pwd.getpwnam(cluster.user).pw_uid
        self.home = Path(tempfile.mkdtemp(prefix="aml-ta-"))
        os.chown(self.home, self.uid, -1)

    def folder(self, name: str) -> Path:
        """A folder of the TA's (the shared file system)."""
        path = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=self.home))
        os.chown(path, self.uid, -1)
        return path

    def hand_over(self, path: Path) -> Path:
        """Make ``path`` (a folder of the root's tests) the TA's."""
        for entry in [path, *path.rglob("*")]:
            os.chown(entry, self.uid, -1, follow_symlinks=False)
        return path

    def autograder(self, *args: str, env: dict[str, str] | None = None,
                   check: bool = True) -> subprocess.CompletedProcess:
        """`autograder ARGS...` as the TA (``env``: variables to set for it)."""
        command = [sys.executable, "-m", "autograder.cli", *args]
        extra = [f"{k}={v}" for k, v in (env or {}).items()]
        run = subprocess.run(self.cluster.as_user(*extra, *command), capture_output=True,
                             text=True, cwd=ROOT)
        if check:
            assert run.returncode == 0, run.stdout + run.stderr
        return run

    def start(self, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
        """`autograder ARGS...` as the TA, in the background (a process group of its own)."""
        command = [sys.executable, "-m", "autograder.cli", *args]
        extra = [f"{k}={v}" for k, v in (env or {}).items()]
        return subprocess.Popen(self.cluster.as_user(*extra, *command), cwd=ROOT,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                start_new_session=True)

    def slurm(self, *command: str) -> str:
        run = self.cluster.run(*command)
        assert run.returncode == 0, run.stderr
        return run.stdout
