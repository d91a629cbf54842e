"""Gradescope: the autograder zip, the manual-Docker image, and the grader it runs.

``autograder gradescope WEEK`` reads the week's choices in ``gradescope.yml`` (visibility,
CPUs, bundles) and what the compiler derived for it (``assignments/<week>/manifest.json``:
points, timeout, memory), checks them against the compiled week, and writes
``<week>-gradescope.zip`` in Gradescope's autograder format
(https://gradescope-autograders.readthedocs.io/en/latest/specs/)::

    setup.sh          run once by Gradescope, as root, when it builds its image:
                      a venv in /opt/venv from requirements.txt, the data sets
    run_autograder    run per submission: python -m autograder.gradescope run
    requirements.txt, pyproject.toml, autograder/   the tool
    assignments/<week>/                             the week's build (hidden tests)
    data/<name>                                     prepared data sets the week reads
    gradescope.json                                 this week's settings

With ``--image TAG`` it also builds the manual-Docker image: the autograder image
(``autograder image build``; for Gradescope build it FROM Gradescope's base image) plus
a thin layer holding the same files in /autograder/source, so the week's tests never
mean a new heavy image. ``--try NOTEBOOK`` builds the image Gradescope would build from
the zip and grades the notebook in it the way Gradescope does.

At grading time (``run``) the hidden tests, the submission and the results are made
root-only before any student code runs; the student's kernel runs as a sandbox uid.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

from autograder.errors import AutograderError, ConfigError
from autograder.grading.results import GradingResult, write_results
from autograder.grading.runner import GRADING_MARGIN, NO_BUNDLE, finish_results, grade_notebook
from autograder.submissions import bundle_beside
from autograder.supervise import supervise
from autograder.weeks import Course, Manifest, Week

CONFIG_FILE = "gradescope.yml"
VISIBILITIES = ("hidden", "after_due_date", "after_published", "visible")
START_MARGIN = 60  # seconds Gradescope's timeout must leave for the container and imports
SETTINGS_FILE = "gradescope.json"


@dataclass(frozen=True)
class Settings:
    week: str
    # Derived by the compiler (manifest.json):
    points: float
    timeout: int  # s, Gradescope's autograder timeout
    memory_mb: int
    # Chosen in gradescope.yml:
    visibility: str = "after_due_date"
    questions: dict[str, str] = field(default_factory=dict)  # question id -> visibility
    cpus: float = 2.0
    bundles: bool = False  # grade from the bundle uploaded with the notebook, when it matches


def load_settings(course: Course, week: str) -> Settings:
    """The week's choices in gradescope.yml (its section over ``defaults``; a week without
    a section takes the defaults), checked for typos, and what the compiler derived for the
    week (manifest.json): its points, the timeout and memory its ``[limits]`` need."""
    path = course.root / CONFIG_FILE
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        raise ConfigError(f"{path} does not exist (it holds each week's Gradescope "
                         "visibility, CPUs and whether bundles are taken)") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"{path} is not valid YAML: {error}") from None
    values = {**(raw.get("defaults") or {}), **(raw.get(week) or {})}
    known = {"visibility", "questions", "cpus", "bundles"}
    derived = {"points", "timeout", "memory_mb"}
    problems = [f"{key!r} is derived by `autograder compile` (assignments/{week}/"
                "manifest.json); remove it" for key in values if key in derived]
    problems += [f"unknown setting {key!r} (known: {', '.join(sorted(known))})"
                 for key in values if key not in known | derived]
    for where, value in [("visibility", values.get("visibility", "after_due_date")),
                         *((f"questions.{q}", v) for q, v in (values.get("questions") or {}).items())]:
        if value not in VISIBILITIES:
            problems.append(f"{where} is {value!r}; use one of {', '.join(VISIBILITIES)}")
    if "cpus" in values and not (isinstance(values["cpus"], (int, float)) and values["cpus"] > 0):
        problems.append(f"cpus must be a positive number, not {values['cpus']!r}")
    if not isinstance(values.get("bundles", False), bool):
        problems.append(f"bundles must be true or false, not {values['bundles']!r}")
    if problems:
        raise ConfigError(f"{path} [{week}]: " + "; ".join(problems))
    manifest = Manifest.load(course.built_week(week))
    values["questions"] = dict(values.get("questions") or {})
    return Settings(week=week, points=manifest.total, timeout=manifest.timeout,
                    memory_mb=manifest.memory_mb, **values)


def gradescope_limits(week: Week) -> tuple[int, int]:
    """Gradescope's timeout (s) and memory (MB) for the week's ``[limits]``: the timeout
    leaves our own hard stop (total_time + GRADING_MARGIN) and the container's start, so
    results.json is always written before Gradescope kills the run; the memory holds the
    student's kernel and the grader."""
    from autograder.container import GRADER_MEMORY_MB

    return (int(week.limits.total_time + GRADING_MARGIN + START_MARGIN),
            int(week.limits.memory_mb + GRADER_MEMORY_MB))


def check_settings(settings: Settings, week: Week) -> list[str]:
    """What in ``settings`` does not fit the compiled week (empty when all is well)."""
    unknown = sorted(set(settings.questions) - set(week.questions))
    return [f"questions {unknown} are not in {week.name}'s week.toml"] if unknown else []


# -- the zip --------------------------------------------------------------------------
SETUP_SH = r"""#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder image (and
# `autograder gradescope --try` runs it the same way). The zip is in /autograder/source.
set -euo pipefail
SOURCE=/autograder/source
export DEBIAN_FRONTEND=noninteractive PIP_DISABLE_PIP_VERSION_CHECK=1

# Python >= 3.11 (the tool uses tomllib). Ubuntu 22.04 has 3.10 as python3, 3.11 apart.
python=""
for candidate in python3.13 python3.12 python3.11 python3; do
  if command -v "$candidate" >/dev/null &&
     "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    python=$candidate; break
  fi
done
if [ -z "$python" ]; then
  apt-get install -y --no-install-recommends python3.11 python3.11-venv
  python=python3.11
fi
"$python" -m venv --help >/dev/null 2>&1 && "$python" -c 'import ensurepip' 2>/dev/null ||
  apt-get install -y --no-install-recommends "$(basename "$python")-venv"
# setpriv drops the student's kernel to a sandbox uid; bubblewrap confines it further
# where the container allows (if not, the grader says so in its output).
command -v setpriv >/dev/null || apt-get install -y --no-install-recommends util-linux
command -v bwrap >/dev/null || apt-get install -y --no-install-recommends bubblewrap ||
  echo "setup.sh: bubblewrap not installed; the grader falls back to uid + permissions"

"$python" -m venv /opt/venv
/opt/venv/bin/pip install -r "$SOURCE/requirements.txt"

# Data sets the week reads: the kernel may read the files data/.readable lists (train
# splits), nothing else; test splits are root-only, for the hidden tests.
mkdir -p /opt/aml-data
if [ -d "$SOURCE/data" ]; then cp -r "$SOURCE/data/." /opt/aml-data/; fi
sh -c '@APPLY_DATA_MODES@' apply /opt/aml-data

# The hidden tests (and the rest of the source) are root-only from now on.
chmod -R go-rwx "$SOURCE"
"""

RUN_AUTOGRADER = r"""#!/usr/bin/env bash
# Gradescope runs this for every submission, as root, in /autograder: the submission
# is in /autograder/submission, results go to /autograder/results/results.json.
export PYTHONPATH=/autograder/source PYTHONDONTWRITEBYTECODE=1 AML_DATA_DIR=/opt/aml-data
exec /opt/venv/bin/python -m autograder.gradescope run --source /autograder/source \
  --submission /autograder/submission --results /autograder/results
"""


def _setup_sh() -> str:
    from autograder.container import APPLY_DATA_MODES

    assert "'" not in APPLY_DATA_MODES
    return SETUP_SH.replace("@APPLY_DATA_MODES@", APPLY_DATA_MODES)


def write_zip(course: Course, settings: Settings, out: Path) -> Path:
    """The autograder zip; byte-identical for the same inputs (fixed times, sorted)."""
    week = course.built_week(settings.week)
    files = _zip_files(course, week, settings)
    out.mkdir(parents=True, exist_ok=True)
    target = out / f"{week.name}-gradescope.zip"
    partial = target.with_name(target.name + ".partial")
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(files):
            data, mode = files[name]
            info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
            info.external_attr = (0o100000 | mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
    os.replace(partial, target)
    return target


def _zip_files(course: Course, week: Week, settings: Settings) -> dict[str, tuple[bytes, int]]:
    from autograder.container import data_files

    package = Path(__file__).resolve().parent
    files = {"setup.sh": (_setup_sh().encode(), 0o755),
             "run_autograder": (RUN_AUTOGRADER.encode(), 0o755),
             SETTINGS_FILE: ((json.dumps(asdict(settings), indent=1) + "\n").encode(), 0o644)}
    for name in ("requirements.txt", "pyproject.toml"):
        files[name] = ((package.parent / name).read_bytes(), 0o644)
    for name, (content, mode) in data_files(week.data).items():
        files[f"data/{name}"] = (content, mode)
    trees = [(package, "autograder"), (week.directory, f"assignments/{week.name}")]
    for root, prefix in trees:
        for path in sorted(root.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                files[f"{prefix}/{path.relative_to(root).as_posix()}"] = (path.read_bytes(), 0o644)
    return files


# -- images --------------------------------------------------------------------------
TRY_DOCKERFILE = """\
# What Gradescope builds from an autograder zip: the zip in /autograder/source,
# setup.sh run as root, run_autograder copied to /autograder.
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
COPY source/ /autograder/source/
RUN --mount=type=secret,id=ca,target=/run/secrets/ca.crt \\
    --mount=type=cache,id=autograder-pip,target=/root/.cache/pip \\
    if [ -s /run/secrets/ca.crt ]; then \\
        export PIP_CERT=/run/secrets/ca.crt REQUESTS_CA_BUNDLE=/run/secrets/ca.crt; \\
    fi \\
 && mkdir -p /autograder/results /autograder/submission \\
 && cp /autograder/source/run_autograder /autograder/run_autograder \\
 && chmod 755 /autograder/run_autograder \\
 && bash /autograder/source/setup.sh
WORKDIR /autograder
"""

MANUAL_DOCKERFILE = """\
# Gradescope's manual-Docker mode: the autograder image plus this week's files.
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
COPY source/ /autograder/source/
RUN mkdir -p /autograder/results /autograder/submission \\
 && cp /autograder/source/run_autograder /autograder/run_autograder \\
 && chmod 755 /autograder/run_autograder \\
 && chmod -R go-rwx /autograder/source
WORKDIR /autograder
"""


def build_from_zip(archive: Path, tag: str, base: str, dockerfile: str) -> str:
    """Build ``dockerfile`` with the zip's files as ``source/`` in the context."""
    from autograder.container import docker_build

    with tempfile.TemporaryDirectory(prefix="ag-gradescope-") as staging:
        context = Path(staging)
        with zipfile.ZipFile(archive) as zipped:
            for info in zipped.infolist():
                target = context / "source" / info.filename
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(zipped.read(info))
                target.chmod((info.external_attr >> 16) & 0o777 or 0o644)
        (context / "Dockerfile").write_text(dockerfile)
        docker_build(context, tag, base, stream=sys.stderr)
    return tag


def run_like_gradescope(image: str, notebook: Path, results: Path, settings: Settings) -> dict:
    """Grade ``notebook`` as Gradescope would: a container of ``image`` (as root, with the
    assignment's memory and CPUs) with the notebook in /autograder/submission, running
    /autograder/run_autograder; returns /autograder/results/results.json as the JSON
    Gradescope reads (not our model: this is Gradescope's side of the file)."""
    from autograder.container import _docker, claim_sandbox_uid, sandbox_uids

    results.mkdir(parents=True, exist_ok=True)
    # Every uid the container's kernels may use, claimed on this host: uids (and their
    # process limits) are shared with the host's other gradings. (Gradescope runs one
    # grading per machine.)
    uids = sandbox_uids(Course().built_week(settings.week))
    sandbox_uid, slot_lock = claim_sandbox_uid(uids)
    with tempfile.TemporaryDirectory(prefix="ag-submission-") as staging:
        submission = Path(staging)
        shutil.copyfile(notebook, submission / notebook.name)
        bundle = bundle_beside(notebook, Course().built_week(settings.week))
        if bundle is not None:  # uploaded together, as a student does
            shutil.copyfile(bundle, submission / bundle.name)
        name = f"autograder-gradescope-try-{os.getpid()}-{time.monotonic_ns()}"
        command = ["docker", "run", "--name", name, "--init", "--network", "none",
                   "--memory", f"{settings.memory_mb}m", "--memory-swap", f"{settings.memory_mb}m",
                   "--cpus", f"{settings.cpus:g}",
                   "--env", f"AUTOGRADER_SANDBOX_UID_BASE={sandbox_uid}",
                   "--env", f"AUTOGRADER_SANDBOX_SLOTS={uids}",
                   "-v", f"{submission}:/autograder/submission", "-v", f"{results}:/autograder/results",
                   image, "/autograder/run_autograder"]
        try:
            exit = supervise(command, timeout=settings.timeout, log=results / "stdout",
                             own_group=False, stop=lambda _: _docker("kill", name))
            if exit.timed_out:
                with open(results / "stdout", "a") as log:
                    log.write(f"killed after the {settings.timeout} s timeout\n")
        finally:
            _docker("rm", "--force", name)
            slot_lock.close()
    return json.loads((results / "results.json").read_text())


# -- at grading time (inside Gradescope's container) ----------------------------------
def run(source: Path, submission: Path, results_dir: Path) -> GradingResult:
    """Grade the submission in ``submission`` into ``results_dir/results.json``."""
    settings = Settings(**json.loads((source / SETTINGS_FILE).read_text()))
    week = Week.load(source / "assignments" / settings.week)
    results_dir.mkdir(parents=True, exist_ok=True)
    # Root-only before any student code runs: the kernel runs as a sandbox uid.
    for private in (source, submission, results_dir):
        private.chmod(0o700)
    if not _has_network():
        # No interface but loopback: the container itself is the network boundary.
        os.environ["AUTOGRADER_IN_CONTAINER"] = "1"
    from autograder.sandbox.isolation import detect

    isolation = detect()
    print(isolation.describe())
    for gap in isolation.missing():
        print(f"WARNING: {gap}")
    results_path = results_dir / "results.json"
    notebook, problem = find_notebook(submission, week)
    if notebook is None:  # no test ever ran: finish_results writes why, visible to all
        results_path.unlink(missing_ok=True)
        result = finish_results(week, results_path, problem, 0.0)
    else:
        # With bundles accepted, an upload without one (or with one that cannot be graded)
        # is executed, and results.json says why.
        bundle = (bundle_beside(notebook, week) or NO_BUNDLE) if settings.bundles else None
        result = grade_notebook(week, notebook, results_path, log=results_dir / "grader.log",
                                bundle=bundle, visibility=settings.visibility,
                                question_visibility=settings.questions)
    print(f"{week.title}: {result.score:g} / {settings.points:g} points")
    for check in result.checks:
        print(f"  {check.score:g}/{check.max_score:g} [{check.visibility}] {check.name}")
    return result


def find_notebook(submission: Path, week: Week) -> tuple[Path | None, str]:
    """The submitted notebook: the one named like the week's, else the only one."""
    notebooks = sorted(p for p in submission.rglob("*.ipynb")
                       if p.is_file() and ".ipynb_checkpoints" not in p.parts)
    named = [p for p in notebooks if p.name == week.notebook]
    if named:
        return min(named, key=lambda p: len(p.parts)), ""
    if len(notebooks) == 1:
        return notebooks[0], ""
    found = ", ".join(p.name for p in notebooks) or "no notebook"
    return None, f"submit one notebook named {week.notebook} (the submission has {found})"


def _has_network() -> bool:
    try:
        return any(name != "lo" for name in os.listdir("/sys/class/net"))
    except OSError:
        return True  # cannot tell: do not claim the container cuts the network


# -- the command -------------------------------------------------------------------------
def command(course: Course, week_name: str, out: Path, *, image: str | None = None,
            base: str | None = None, tries: list[Path] = ()) -> int:
    """``autograder gradescope WEEK``: check the settings, write the zip (and images)."""
    from autograder.container import DEFAULT_BASE_IMAGE, DEFAULT_IMAGE

    week = course.built_week(week_name)
    settings = load_settings(course, week_name)
    problems = check_settings(settings, week)
    if problems:
        for problem in problems:
            print(f"error: {CONFIG_FILE} [{week_name}]: {problem}", file=sys.stderr)
        return 2
    archive = write_zip(course, settings, out)
    print(f"wrote {archive} ({archive.stat().st_size / 2**20:.1f} MB): upload it as the "
          f"autograder of {week.name} ({week.title})")
    print(f"Gradescope settings: total points {settings.points:g}, autograder timeout "
          f"{settings.timeout} s, memory {settings.memory_mb} MB, {settings.cpus:g} CPUs; "
          f"test visibility {settings.visibility}"
          + "".join(f", {q}: {v}" for q, v in settings.questions.items()))
    if image:
        build_from_zip(archive, image, DEFAULT_IMAGE, MANUAL_DOCKERFILE)
        print(f"built {image} (the autograder image {DEFAULT_IMAGE} + {week.name}): push it "
              "for Gradescope's manual Docker configuration")
    if tries:
        tag = f"aml-autograder-gradescope-try:{week.name}"
        build_from_zip(archive, tag, base or DEFAULT_BASE_IMAGE, TRY_DOCKERFILE)
        for notebook in tries:
            folder = out / f"try-{notebook.stem}"
            results = run_like_gradescope(tag, notebook, folder, settings)
            print(f"{notebook.name}: {results['score']:g} / {settings.points:g} points "
                  f"(results: {folder / 'results.json'})")
    return 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m autograder.gradescope")
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("run", help="grade a submission (run_autograder calls this)")
    p.add_argument("--source", type=Path, default=Path("/autograder/source"))
    p.add_argument("--submission", type=Path, default=Path("/autograder/submission"))
    p.add_argument("--results", type=Path, default=Path("/autograder/results"))
    args = parser.parse_args(argv)
    try:
        run(args.source, args.submission, args.results)
    except Exception as error:  # whatever happens, Gradescope gets a results.json
        reason = (str(error) if isinstance(error, AutograderError) else
                  f"the autograder failed ({type(error).__name__}: {str(error)[:300]})")
        reason += "; this is not your fault: please tell your instructor"
        write_results(args.results / "results.json",
                      GradingResult.not_graded("", "This assignment", reason))
        print(f"error: {reason}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
