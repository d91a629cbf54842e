"""Grading in Docker: build the autograder image, grade one submission per container.

``grade_in_container`` has the contract of ``runner.grade_notebook`` (a GradingResult
back, results.json written atomically and always defined, executed.ipynb next to it),
but the grading runs in a container of its own::

    docker run --network none --read-only --tmpfs /tmp --cap-drop ALL (+ the few caps
               the grader needs to drop the kernel to a sandbox uid) --security-opt
               no-new-privileges --memory/--memory-swap --pids-limit --cpus
               -v assignments/<week>:/grader/weeks/<week>:ro   (hidden tests)
               -v <submission dir>:/grader/submission:ro
               -v <private out dir>:/grader/out                 (results, log)
               IMAGE python -m autograder.container inside ...

Inside, the grader runs as container root and the student's kernel as a sandbox uid
with no capabilities (``AUTOGRADER_IN_CONTAINER=1``: sandbox "container" mode, see
``sandbox/isolation.py``). ``/grader`` is root-only (0700), so the kernel can neither
read the hidden tests nor touch the results, although both are in its container.
A wall-clock limit stops the container; a container left by a crashed run is removed
by the next run (its owner process is gone).

The image (``autograder/Dockerfile``) is one for every week: the Python environment,
the prepared data cache and this package; the week comes in as a mount.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from autograder.errors import AutograderError
from autograder.grading.bundle import MAX_BUNDLE_BYTES
from autograder.grading.bundle import SUFFIX as BUNDLE_SUFFIX
from autograder.grading.results import GradingResult, write_atomically
from autograder.grading.runner import GRADING_MARGIN, NO_BUNDLE, finish_results, grade_notebook
from autograder.supervise import supervise
from autograder.weeks import Course, Week

DOCKERFILE = Path(__file__).with_name("Dockerfile")
# Settings (environment): the image graded in, the base it is built from, the CA bundle
# handed to pip during the build.
DEFAULT_IMAGE = os.environ.get("AUTOGRADER_IMAGE", "aml-autograder:latest")
DEFAULT_BASE_IMAGE = os.environ.get("AUTOGRADER_BASE_IMAGE", "autograder-base:bookworm")
CA_BUNDLE = Path(os.environ.get("AUTOGRADER_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt"))

# Every grading container carries this label, and its owner as host:pid:start-time, so a
# later run can tell containers whose owner died (stale) from running ones.
LABEL = "org.aml-autograder.grading"
OWNER_LABEL = "org.aml-autograder.owner"

PRIVATE = "/grader"  # root-only (0700) in the image
# What the grader needs to confine the kernel: chown its home (CHOWN), manage files the
# kernel made (DAC_OVERRIDE, FOWNER), kill its leftovers (KILL), switch to the sandbox
# uid and drop every capability on the way (SETUID, SETGID, SETPCAP). Everything else
# of Docker's default set (NET_RAW, MKNOD, SYS_CHROOT, ...) is dropped.
GRADER_CAPABILITIES = ("CHOWN", "DAC_OVERRIDE", "FOWNER", "KILL", "SETUID", "SETGID", "SETPCAP")
GRADER_MEMORY_MB = 1024  # on top of the kernel's budget: the pytest process and its checks,
# and one warm clean-room kernel (about 650 MB) started while the notebook runs
GRADER_PROCESSES = 256  # threads of the grader (TensorFlow in the checks) besides the kernel's
CONTAINER_START_MARGIN = 120.0  # seconds: container start and Python imports
GRADER_WORK, GRADER_WORK_MB = "/grader-work", 2048  # the grader's scratch (a size cap:
# tmpfs pages count in the container's memory only when used)
OUTBOX, OUTBOX_MB = "/autograder-outbox", 1024  # model archives the kernel saves


class ContainerError(AutograderError):
    """Docker is missing, not running, or the image does not exist."""


@dataclass(frozen=True)
class ContainerLimits:
    memory_mb: int
    cpus: float
    pids: int
    scratch_mb: int  # the writable /tmp (tmpfs, counted in memory_mb when used)
    wall_clock: float  # seconds before the container is killed

    @classmethod
    def for_week(cls, week: Week) -> "ContainerLimits":
        limits = week.limits
        return cls(memory_mb=limits.memory_mb + GRADER_MEMORY_MB,
                   cpus=float(os.environ.get("AUTOGRADER_DOCKER_CPUS", limits.cpus)),
                   pids=limits.processes + GRADER_PROCESSES,
                   scratch_mb=max(256, limits.file_mb),
                   wall_clock=limits.total_time + GRADING_MARGIN + CONTAINER_START_MARGIN)


def confinement_flags(limits: ContainerLimits) -> list[str]:
    """``docker run`` options shared by every grading container (here and Gradescope's test).

    Three scratch file systems, so that student code can fill only its own: /tmp (the
    kernel's home and anything it writes), the outbox (model archives; the grader
    empties it before asking for them) and the grader's own working space ($TMPDIR of
    the grader: the inputs it sends, the clean rooms' archives), which the sandbox uid
    may pass through but not write to.
    """
    flags = ["--network", "none", "--read-only",
             "--tmpfs", f"/tmp:rw,exec,size={limits.scratch_mb}m,mode=1777",
             "--tmpfs", f"{GRADER_WORK}:rw,size={GRADER_WORK_MB}m,mode=0711",
             "--tmpfs", f"{OUTBOX}:rw,size={OUTBOX_MB}m,mode=0711",
             "--env", f"TMPDIR={GRADER_WORK}", "--env", "AUTOGRADER_SCRATCH_DIR=/tmp",
             "--env", f"AUTOGRADER_OUTBOX_DIR={OUTBOX}",
             "--tmpfs", "/run:rw,size=8m,mode=0755",  # the sandbox's slot locks
             "--cap-drop", "ALL"]
    for capability in GRADER_CAPABILITIES:
        flags += ["--cap-add", capability]
    flags += ["--security-opt", "no-new-privileges",
              "--memory", f"{limits.memory_mb}m", "--memory-swap", f"{limits.memory_mb}m",
              "--pids-limit", str(limits.pids), "--cpus", f"{limits.cpus:g}"]
    return flags


# -- grading ---------------------------------------------------------------------
def grade_in_container(week: Week, notebook: Path, results_path: Path, *,
                       log: Path | None = None, bundle: Path | str | None = None,
                       image: str | None = None,
                       limits: ContainerLimits | None = None) -> GradingResult:
    """Grade ``notebook`` in a fresh container; same contract as ``grade_notebook``."""
    image = image or DEFAULT_IMAGE
    limits = limits or ContainerLimits.for_week(week)
    require_image(image)
    remove_stale_containers()
    results_path = Path(results_path)
    results_path.unlink(missing_ok=True)
    started = time.monotonic()
    # Host-side staging, root-only: the submission under a safe name, and the folder
    # the container writes results into (copied out only once it has stopped).
    work = Path(tempfile.mkdtemp(prefix="ag-docker-"))
    submission_dir, out = work / "submission", work / "out"
    submission_dir.mkdir(mode=0o700)
    out.mkdir(mode=0o700)
    name = notebook.name if _plain_name(notebook.name) else "submission.ipynb"
    shutil.copyfile(notebook, submission_dir / name)
    handed_in = [] if bundle is None else ["--bundle", str(NO_BUNDLE)]
    if bundle:  # read inside, without trust, like the notebook
        with open(bundle, "rb") as source:  # past the cap is refused inside: copy no more
            (submission_dir / (week.name + BUNDLE_SUFFIX)).write_bytes(
                source.read(MAX_BUNDLE_BYTES + 1))
        handed_in = ["--bundle", f"{PRIVATE}/submission/{week.name}{BUNDLE_SUFFIX}"]
    container = f"autograder-{_plain_name(week.name) or 'week'}-{uuid.uuid4().hex[:12]}"
    uids = sandbox_uids(week)
    sandbox_uid, slot_lock = claim_sandbox_uid(uids)
    command = [
        "docker", "run", "--name", container, "--init",
        "--label", f"{LABEL}=1", "--label", f"{OWNER_LABEL}={_owner()}",
        *confinement_flags(limits),
        "--env", f"AUTOGRADER_SANDBOX_UID_BASE={sandbox_uid}",
        "--env", f"AUTOGRADER_SANDBOX_SLOTS={uids}",
        "--mount", _bind(week.directory.resolve(), f"{PRIVATE}/weeks/{week.name}", readonly=True),
        "--mount", _bind(submission_dir, f"{PRIVATE}/submission", readonly=True),
        "--mount", _bind(out, f"{PRIVATE}/out"),
        image, "python", "-m", "autograder.container", "inside",
        "--week", f"{PRIVATE}/weeks/{week.name}",
        "--notebook", f"{PRIVATE}/submission/{name}", "--out", f"{PRIVATE}/out", *handed_in,
    ]
    stop = None
    try:
        exit = supervise(command, timeout=limits.wall_clock, log=log, own_group=False,
                         stop=lambda _: _docker("kill", container))
        if exit.timed_out:
            stop = f"grading took longer than {limits.wall_clock:.0f} s and was stopped"
        elif exit.code != 0:
            stop = _why_stopped(container, exit.code, limits)
    finally:
        _docker("rm", "--force", "--volumes", container)
        slot_lock.close()
        try:
            _collect(out, results_path, log, week.name + BUNDLE_SUFFIX)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return finish_results(week, results_path, stop, time.monotonic() - started)


def sandbox_uids(week: Week) -> int:
    """How many sandbox uids a grading of ``week`` uses at once: the student's kernel and
    the clean rooms' (one warm while the notebook runs, all of them at the end)."""
    return 2 + len(week.rooms)


def claim_sandbox_uid(count: int = 1):
    """``count`` consecutive host-wide sandbox slots for a container's kernel uids (and
    their lock, to close when the container is gone). Containers share the host's uids,
    and RLIMIT_NPROC counts per uid across all of them and the host's own gradings: two
    gradings must never share a uid, or one's processes (a fork bomb, say) starve the
    other's kernel."""
    from autograder.sandbox.kernel import UID_BASE, _claim_slot

    slot, lock = _claim_slot(count)
    return UID_BASE + slot, lock


def _collect(out: Path, results_path: Path, log: Path | None, bundle: str) -> None:
    """Copy what the container wrote (results.json, executed.ipynb, the bundle it graded,
    its log) next to results_path. Symlinks are not followed: the files are the grader's
    own, but a bind-mounted folder is no place to trust blindly."""
    for name, target in (("results.json", results_path),
                         ("executed.ipynb", results_path.with_name("executed.ipynb"))):
        source = out / name
        if source.is_file() and not source.is_symlink():
            write_atomically(target, source.read_text())
    source = out / bundle
    if source.is_file() and not source.is_symlink():
        shutil.copyfile(source, results_path.with_name(bundle))
    inner_log = out / "grader.log"
    if log and inner_log.is_file() and not inner_log.is_symlink():
        with open(log, "a") as handle:
            handle.write("\n--- grader log (inside the container) ---\n")
            handle.write(inner_log.read_text(errors="replace"))


def _why_stopped(container: str, code: int, limits: ContainerLimits) -> str:
    state = _docker("inspect", "--format", "{{.State.OOMKilled}}", container).stdout.strip()
    if state == "true":
        return (f"the grading container ran out of memory ({limits.memory_mb} MB) and was "
                "stopped")
    return f"the grading container exited with code {code}"


def inside(argv: list[str]) -> int:
    """The container's entry point: grade the mounted notebook into the mounted out dir."""
    parser = argparse.ArgumentParser(prog="autograder.container inside")
    parser.add_argument("--week", type=Path, required=True)
    parser.add_argument("--notebook", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--bundle")  # a path, or NO_BUNDLE
    args = parser.parse_args(argv)
    week = Week.load(args.week)
    result = grade_notebook(week, args.notebook, args.out / "results.json",
                            log=args.out / "grader.log", bundle=args.bundle)
    print(f"{args.notebook.name}: {result.score:g} points "
          f"({result.extra.get('isolation', 'isolation unknown')})")
    return 0


# -- containers left by a crashed run --------------------------------------------------
def remove_stale_containers() -> list[str]:
    """Remove grading containers whose owner process (on this host) is gone."""
    listed = _docker("ps", "--all", "--filter", f"label={LABEL}",
                     "--format", f'{{{{.ID}}}} {{{{.Label "{OWNER_LABEL}"}}}}')
    removed = []
    for line in listed.stdout.splitlines():
        container, _, owner = line.partition(" ")
        host, _, rest = owner.partition(":")
        pid, _, start = rest.partition(":")
        if host != socket.gethostname() or not pid.isdigit():
            continue  # another machine's (shared daemon): not ours to judge
        if _process_start(int(pid)) != start:
            _docker("rm", "--force", "--volumes", container)
            removed.append(container)
    return removed


def _owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{_process_start(os.getpid())}"


def _process_start(pid: int) -> str:
    """The process's start time in clock ticks since boot ("" if it does not exist):
    with the pid it names one process, even after the pid is reused."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""


# -- the image ---------------------------------------------------------------------
def require_image(image: str) -> None:
    if shutil.which("docker") is None:
        raise ContainerError("docker is not installed (scripts/ensure-dockerd installs it)")
    probe = _docker("image", "inspect", "--format", "{{.Id}}", image)
    if probe.returncode != 0:
        if "no such image" not in probe.stderr.lower():
            raise ContainerError(f"Docker cannot be used ({probe.stderr.strip()}); is the "
                                 "engine running? scripts/ensure-dockerd starts one")
        raise ContainerError(f"the image {image} does not exist; build it with "
                             "`autograder image build` (or scripts/build-image)")


def build_image(tag: str | None = None, base: str | None = None, *,
                course: Course | None = None, stream=None) -> str:
    """Build the autograder image from a staged context; returns the tag.

    The context holds only requirements.txt, this package (with pyproject.toml) and the
    prepared data sets of every week, so a build never sends the course's solutions or
    hidden tests to the daemon.
    """
    tag, base = tag or DEFAULT_IMAGE, base or DEFAULT_BASE_IMAGE
    course = course or Course()
    package = Path(__file__).resolve().parent
    with tempfile.TemporaryDirectory(prefix="ag-image-") as staging:
        context = Path(staging)
        shutil.copy(package.parent / "requirements.txt", context / "requirements.txt")
        (context / "src").mkdir()
        shutil.copy(package.parent / "pyproject.toml", context / "src" / "pyproject.toml")
        shutil.copytree(package, context / "src" / "autograder",
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        stage_data(course, context / "data")
        # COPY keeps the context's modes: folders and the package public whatever the
        # umask; data files keep the modes stage_data gave them.
        for path in context.rglob("*"):
            if path.is_dir():
                path.chmod(0o755)
            elif "data" not in path.relative_to(context).parts[:1]:
                path.chmod(0o644)
        started = time.monotonic()
        docker_build(context, tag, base, dockerfile=DOCKERFILE, stream=stream)
    print(f"built {tag} from {base} in {time.monotonic() - started:.0f} s", file=sys.stderr)
    return tag


def docker_build(context: Path, tag: str, base: str, *, dockerfile: Path | None = None,
                 stream=None) -> None:
    """`docker build` of a staged context with BASE_IMAGE=base; pip inside gets the host's CA
    bundle as the BuildKit secret `ca` (never stored in a layer). Output goes to `stream`."""
    command = ["docker", "build", "--build-arg", f"BASE_IMAGE={base}", "-t", tag]
    if dockerfile is not None:
        command += ["-f", str(dockerfile)]
    if CA_BUNDLE.is_file():
        command += ["--secret", f"id=ca,src={CA_BUNDLE}"]
    done = subprocess.run([*command, str(context)], stdout=stream,
                          stderr=subprocess.STDOUT if stream else None)
    if done.returncode != 0:
        raise ContainerError(f"docker build of {tag} failed (exit {done.returncode})")


def week_data_sets(course: Course) -> list[str]:
    """Every data set a week of the course reads (source/ and compiled assignments/)."""
    names = set()
    for folder in [*(course.root / "source").glob("*"), *(course.root / "assignments").glob("*")]:
        if (folder / "week.toml").is_file():
            names.update(Week.load(folder).data)
    return sorted(names)


def stage_data(course: Course, target: Path) -> None:
    """The prepared data sets of every week, for the image (see ``data_files``)."""
    target.mkdir()
    for name, (data, mode) in data_files(week_data_sets(course)).items():
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        (target / name).write_bytes(data)
        (target / name).chmod(mode)


# Applied where the data lands (image build, Gradescope's setup.sh): everything root-only,
# then the folders and the files listed in .readable opened to the kernel's uid. Modes
# are set here, not trusted from the archive: a zip extractor may drop them.
READABLE_MANIFEST = ".readable"
APPLY_DATA_MODES = (
    'chmod -R go-rwx "$1" && find "$1" -type d -exec chmod 0755 {} + && '
    'if [ -f "$1/.readable" ]; then while read -r f; do chmod 0644 "$1/$f"; done < "$1/.readable"; fi')


def data_files(names: list[str] | tuple[str, ...]) -> dict[str, tuple[bytes, int]]:
    """Data-cache files for ``names`` (prepared if missing), relative path -> (bytes, mode).

    Only what the kernel may read (``data.readable_paths``: each set's train split) is
    0644 and listed in ``.readable``; the rest (the test split, whose labels are the
    hidden tests' answers) is root-only, for the grader's ``data.load(name, "test")``.
    """
    from autograder import data

    if not names:
        return {}
    root = data.cache_dir()
    readable = {p.resolve() for p in data.readable_paths(tuple(names))}  # prepares them
    files, listed = {}, []
    for name in names:
        for path in sorted((root / name).rglob("*")):
            if path.is_file() and not path.name.startswith("."):
                relative = path.relative_to(root).as_posix()
                public = path.resolve() in readable
                files[relative] = (path.read_bytes(), 0o644 if public else 0o600)
                listed += [relative] if public else []
    files[READABLE_MANIFEST] = ("".join(f"{f}\n" for f in listed).encode(), 0o644)
    return files


# -- helpers -----------------------------------------------------------------------------
def _docker(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], capture_output=True, text=True)


def _bind(source: Path, target: str, *, readonly: bool = False) -> str:
    if "," in str(source) or "=" in str(source):
        raise ContainerError(f"cannot bind-mount {source}: its path holds ',' or '='")
    return f"type=bind,source={source},target={target}" + (",readonly" if readonly else "")


def _plain_name(name: str) -> str:
    """``name`` if it is safe as a path part and container name part, else ''."""
    ok = name and len(name) <= 100 and name[0].isalnum() and all(
        c.isalnum() or c in "._-" for c in name)
    return name if ok else ""


if __name__ == "__main__":
    if sys.argv[1:2] == ["inside"]:
        try:
            sys.exit(inside(sys.argv[2:]))
        except AutograderError as error:  # the host's finish_results writes the results
            sys.exit(f"error: {error}")
    sys.exit("usage: python -m autograder.container inside --week DIR --notebook NB --out DIR")
