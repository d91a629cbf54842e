"""Grading a class: find the submissions, grade them in parallel, resumably.

Inputs (``discover``): notebooks, folders of notebooks, a Gradescope "Export
Submissions" zip (or its unzipped folder), and an nbgrader
``submitted/<student>/<week>/`` tree. Everything in them is student-made, so
odd entries (zip paths leaving the archive, links, huge or non-notebook files)
are skipped with a message instead of stopping the batch.

Output per submission, ``OUT/<name>/``: results.json, executed.ipynb,
grader.log, feedback.html and submission.json (what was graded: the
notebook's sha256, the week build's fingerprint, the student). A grading works
in ``OUT/.partial/`` and its folder is renamed into place when everything in it
is written, so ``OUT/<name>/`` is either absent or complete. A rerun skips
submissions whose folder holds a result for the same notebook content and the
same week build; a batch killed at any moment (even SIGKILL) therefore
finishes on the next run without losing or duplicating a result. The gradebook
and class summary are rebuilt from every result at the end.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import signal
import stat
import sys
import threading
import time
import uuid
import zipfile
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Callable

import yaml

from autograder.feedback import write_feedback
from autograder.grading.results import write_atomically
from autograder.weeks import Week

# A week-1 notebook with all its plots is about 1 MB; 50 MB leaves room for
# heavy outputs and still refuses files that are not a notebook submission.
MAX_NOTEBOOK_BYTES = 50 * 1024 * 1024
METADATA_NAME = "submission_metadata.yml"  # Gradescope's export index
PARTIAL = ".partial"  # work in progress (deleted on the next run)
INPUTS = ".inputs"  # notebooks taken out of zips
SIDECAR = "submission.json"
IGNORED_PARTS = {"__MACOSX", ".ipynb_checkpoints"}

Grader = Callable[..., dict]  # grade_notebook's contract


@dataclass(frozen=True)
class Submission:
    name: str  # unique and safe as a folder name: OUT/<name>/
    notebook: Path
    student: str = ""
    email: str = ""
    origin: str = ""  # where it came from, for messages


@dataclass
class Found:
    submissions: list[Submission] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # one message per thing not graded


# -- finding submissions -------------------------------------------------------
def discover(paths: list[Path], week: Week, staging: Path, *,
             max_bytes: int = MAX_NOTEBOOK_BYTES) -> Found:
    """Every submission in ``paths``; notebooks taken out of zips go to ``staging``."""
    found = Found()
    names: set[str] = set()

    def add(name: str, notebook: Path, **identity) -> None:
        base, n = _safe_name(name), 2
        unique = base
        while unique in names:
            unique, n = f"{base}-{n}", n + 1
        names.add(unique)
        found.submissions.append(Submission(unique, notebook, **identity))

    for path in paths:
        if not path.exists():
            found.skipped.append(f"{path}: does not exist")
        elif path.is_dir():
            _discover_folder(path, week, staging, max_bytes, add, found.skipped)
        elif path.suffix == ".ipynb":
            if _size_ok(path, max_bytes, found.skipped):
                add(path.stem, path.resolve(), origin=str(path))
        elif zipfile.is_zipfile(path):
            _discover_gradescope_zip(path, week, staging, max_bytes, add, found.skipped)
        else:
            found.skipped.append(f"{path}: not a notebook (.ipynb), a folder or a zip")
    return found


def _discover_folder(folder: Path, week: Week, staging, max_bytes, add, skipped) -> None:
    if _gradescope_index(folder) is not None:
        _discover_gradescope_folder(folder, week, max_bytes, add, skipped)
        return
    submitted = folder / "submitted" if (folder / "submitted").is_dir() else folder
    if any((student / week.name).is_dir() for student in submitted.iterdir() if student.is_dir()):
        _discover_nbgrader(submitted, week, max_bytes, add, skipped)
        return
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".") or path.is_dir():
            continue
        if path.suffix != ".ipynb":
            skipped.append(f"{path}: ignored, not a notebook (.ipynb)")
        elif _size_ok(path, max_bytes, skipped):
            add(path.stem, path.resolve(), origin=str(path))


def _discover_nbgrader(submitted: Path, week: Week, max_bytes, add, skipped) -> None:
    """nbgrader's ``submitted/<student>/<assignment>/<notebook>.ipynb`` (+ timestamp.txt)."""
    for student in sorted(p for p in submitted.iterdir() if p.is_dir()):
        folder = student / week.name
        if not folder.is_dir():
            skipped.append(f"{student}: no {week.name}/ folder (nothing submitted for this week)")
            continue
        files = {str(p.relative_to(folder)): p for p in sorted(folder.rglob("*"))
                 if p.is_file() or p.is_symlink()}
        files.pop("timestamp.txt", None)  # nbgrader's own
        path = _notebook_of(files, week, student.name, max_bytes, skipped)
        if path is not None:
            add(student.name, path.resolve(), student=student.name, origin=str(path))


def _notebook_of(files: dict[str, Path], week: Week, label: str, max_bytes,
                 skipped) -> Path | None:
    """The one notebook to grade among a student folder's files, or None (with the
    reason in ``skipped``): a symbolic link or an oversized file is refused."""
    chosen = _choose_notebook(files, week, label, skipped)
    if chosen is None:
        return None
    path = files[chosen]
    if path.is_symlink():
        skipped.append(f"{path}: refused, a symbolic link in a student folder")
        return None
    return path if _size_ok(path, max_bytes, skipped) else None


def _gradescope_index(folder: Path) -> Path | None:
    """Where submission_metadata.yml is: the folder or its only subfolder."""
    if (folder / METADATA_NAME).is_file():
        return folder
    children = [p for p in folder.iterdir() if p.is_dir() and p.name not in IGNORED_PARTS]
    if len(children) == 1 and (children[0] / METADATA_NAME).is_file():
        return children[0]
    return None


def _discover_gradescope_folder(folder: Path, week: Week, max_bytes, add, skipped) -> None:
    root = _gradescope_index(folder)
    metadata = _read_metadata((root / METADATA_NAME).read_bytes(), str(root), skipped)
    for sub in sorted(p for p in root.iterdir() if p.is_dir()):
        files = {str(p.relative_to(sub)): p for p in sorted(sub.rglob("*"))
                 if (p.is_file() or p.is_symlink()) and not _ignored(p.relative_to(sub).parts)}
        student, email = metadata.pop(sub.name, ("", ""))
        label = f"{sub.name} ({student})" if student else sub.name
        path = _notebook_of(files, week, label, max_bytes, skipped)
        if path is not None:
            add(sub.name, path.resolve(), student=student, email=email, origin=str(path))
    for sub, (student, _) in metadata.items():
        skipped.append(f"{sub} ({student}): listed in {METADATA_NAME} but has no files")


def _discover_gradescope_zip(archive_path: Path, week: Week, staging: Path, max_bytes,
                             add, skipped) -> None:
    """Gradescope's export: ``[assignment_N_export/]submission_metadata.yml`` and one
    ``submission_<id>/`` folder per submission, holding what the student uploaded."""
    try:
        archive = zipfile.ZipFile(archive_path)
    except (zipfile.BadZipFile, OSError) as error:
        skipped.append(f"{archive_path}: not a readable zip ({error})")
        return
    with archive:
        entries: dict[tuple[str, ...], zipfile.ZipInfo] = {}
        for info in archive.infolist():
            if info.is_dir():
                continue
            problem, parts = _unsafe_entry(info)
            if problem:
                skipped.append(f"{archive_path}: refused entry {info.filename!r}: {problem}")
            elif not _ignored(parts):
                entries[parts] = info
        index = [p for p in entries if p[-1] == METADATA_NAME and len(p) <= 2]
        if len(index) != 1:
            skipped.append(f"{archive_path}: not a Gradescope export (it has no "
                           f"{METADATA_NAME} at its top); nothing graded from it")
            return
        root = index[0][:-1]
        raw = _read_entry(archive, entries[index[0]], 10 * max_bytes)
        metadata = _read_metadata(raw, f"{archive_path}:{METADATA_NAME}", skipped) if raw else {}
        folders: dict[str, dict[str, zipfile.ZipInfo]] = {}
        for parts, info in entries.items():
            if parts[:len(root)] != root or len(parts) < len(root) + 2:
                continue
            folder, inner = parts[len(root)], "/".join(parts[len(root) + 1:])
            folders.setdefault(folder, {})[inner] = info
        for folder, files in sorted(folders.items()):
            student, email = metadata.pop(folder, ("", ""))
            label = f"{archive_path.name}:{folder}" + (f" ({student})" if student else "")
            chosen = _choose_notebook(files, week, label, skipped)
            if chosen is None:
                continue
            info = files[chosen]
            if info.file_size > max_bytes:
                skipped.append(f"{label}/{chosen}: refused, {_mb(info.file_size)} is more "
                               f"than the {_mb(max_bytes)} limit")
                continue
            data = _read_entry(archive, info, max_bytes)
            if data is None:
                skipped.append(f"{label}/{chosen}: refused, it unpacks to more than "
                               f"{_mb(max_bytes)} or cannot be read")
                continue
            target = staging / _safe_name(folder) / _safe_name(PurePosixPath(chosen).name)
            _write_bytes_atomically(target, data)
            add(folder, target.resolve(), student=student, email=email,
                origin=f"{archive_path}:{'/'.join(root + (folder, chosen))}")
        for folder, (student, _) in metadata.items():
            skipped.append(f"{archive_path.name}:{folder} ({student}): listed in "
                           f"{METADATA_NAME} but has no files")


def _unsafe_entry(info: zipfile.ZipInfo) -> tuple[str, tuple[str, ...]]:
    """Why a zip entry must not be used ('' if it may), and its path parts."""
    name = info.filename.replace("\\", "/")
    parts = PurePosixPath(name).parts
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        return "an absolute path", parts
    if ".." in parts:
        return "its path leaves the archive (..)", parts
    if stat.S_ISLNK(info.external_attr >> 16):
        return "a symbolic link", parts
    return "", tuple(p for p in parts if p not in ("", "."))


def _read_entry(archive: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int) -> bytes | None:
    """At most ``limit`` bytes (the size in the zip's header may lie), else None."""
    try:
        with archive.open(info) as handle:
            data = handle.read(limit + 1)
    except (RuntimeError, zipfile.BadZipFile, OSError, NotImplementedError, EOFError):
        return None  # encrypted, corrupt, unsupported compression
    return data if len(data) <= limit else None


class _MetadataLoader(yaml.SafeLoader):
    """Safe YAML that reads Ruby-tagged values (``!ruby/object:BigDecimal``) as plain data."""


def _untagged(loader, _suffix, node):
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node, deep=True)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_scalar(node)


_MetadataLoader.add_multi_constructor("!", _untagged)


def _read_metadata(raw: bytes, where: str, skipped: list[str]) -> dict[str, tuple[str, str]]:
    """Submission folder -> (names, emails) from Gradescope's submission_metadata.yml::

        submission_12345:
          :submitters:
          - :name: Ada Lovelace
            :sid: '1815'
            :email: ada@example.org
          :created_at: ...
    """
    try:
        data = yaml.load(raw, Loader=_MetadataLoader)
    except yaml.YAMLError as error:
        skipped.append(f"{where}: unreadable ({str(error)[:200]}); submissions are graded "
                       "without student names")
        return {}
    if not isinstance(data, dict):
        return {}

    def field_of(record, key):
        value = record.get(f":{key}", record.get(key, "")) if isinstance(record, dict) else ""
        return str(value) if value is not None else ""

    identities = {}
    for folder, record in data.items():
        if not isinstance(record, dict):
            continue
        submitters = record.get(":submitters", record.get("submitters"))
        submitters = submitters if isinstance(submitters, list) else []
        names = [field_of(s, "name") for s in submitters]
        emails = [field_of(s, "email") for s in submitters]
        identities[str(folder)] = ("; ".join(filter(None, names)),
                                   "; ".join(filter(None, emails)))
    return identities


def _choose_notebook(files: dict[str, object], week: Week, label: str,
                     skipped: list[str]) -> str | None:
    """The week's notebook by name, else the only notebook; say why if neither."""
    notebooks = [f for f in files if f.endswith(".ipynb")]
    others = sorted(f for f in files if not f.endswith(".ipynb"))
    if others:
        shown = ", ".join(others[:5]) + (f" and {len(others) - 5} more" if len(others) > 5 else "")
        skipped.append(f"{label}: ignored {shown} (not a notebook)")
    named = sorted((f for f in notebooks if PurePosixPath(f).name == week.notebook), key=len)
    if named:
        return named[0]
    if len(notebooks) == 1:
        return notebooks[0]
    if not notebooks:
        skipped.append(f"{label}: not graded, no notebook (.ipynb) in it")
    else:
        skipped.append(f"{label}: not graded, {len(notebooks)} notebooks and none is named "
                       f"{week.notebook}: {', '.join(sorted(notebooks))}")
    return None


def _ignored(parts) -> bool:
    return any(p in IGNORED_PARTS or p.startswith("._") for p in parts)


def _size_ok(path: Path, max_bytes: int, skipped: list[str]) -> bool:
    size = path.stat().st_size
    if size > max_bytes:
        skipped.append(f"{path}: refused, {_mb(size)} is more than the {_mb(max_bytes)} limit")
    return size <= max_bytes


def _safe_name(name: str) -> str:
    """A folder name that cannot escape OUT or hide: letters, digits, ._@+- only."""
    safe = re.sub(r"[^A-Za-z0-9._@+-]", "_", name).lstrip(".-+@")[:100]
    return safe or "submission"


def _mb(size: int) -> str:
    return f"{size / 1024 / 1024:.1f} MB" if size >= 100 * 1024 else f"{size:,} bytes"


def _write_bytes_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
    tmp.write_bytes(data)
    os.replace(tmp, path)


# -- grading -------------------------------------------------------------------
@dataclass
class Outcome:
    graded: list[str] = field(default_factory=list)  # graded in this run
    reused: list[str] = field(default_factory=list)  # already graded, same content
    failed: dict[str, str] = field(default_factory=dict)  # name -> why it has no result


class Batch:
    def __init__(self, week: Week, out: Path, grader: Grader, *, jobs: int = 1,
                 regrade: bool = False, progress: "Progress | None" = None):
        self.week, self.out, self.grader = week, out, grader
        self.jobs, self.regrade = max(1, jobs), regrade
        self.progress = progress or Progress(0, stream=None)
        self.partial = out / PARTIAL
        self.fingerprint = week_fingerprint(week)
        self.stopping = False

    def run(self, submissions: list[Submission]) -> Outcome:
        """Grade what is not graded yet. The caller holds ``OutputLock(out)``."""
        outcome = Outcome()
        clean_partial(self.partial)
        todo = []
        for sub in submissions:
            digest = sha256_file(sub.notebook)
            if not self.regrade and self._already_graded(sub.name, digest):
                outcome.reused.append(sub.name)
            else:
                todo.append((sub, digest))
        self.progress.start(len(submissions), done=len(outcome.reused))
        pool = ThreadPoolExecutor(max_workers=self.jobs, thread_name_prefix="grade")
        try:
            futures = {pool.submit(self._grade_one, sub, digest): sub for sub, digest in todo}
            for future in as_completed(futures):
                sub = futures[future]
                try:
                    results = future.result()
                except Exception as error:  # one submission's problem, not the batch's
                    outcome.failed[sub.name] = f"{type(error).__name__}: {error}"
                    self.progress.finished(sub.name, f"not graded: {error}")
                else:
                    outcome.graded.append(sub.name)
                    self.progress.finished(sub.name, f"{results.get('score', 0):g} points")
        except KeyboardInterrupt:
            # Running gradings are separate process groups: stop them, keep what
            # is finished, and let a rerun do the rest.
            self.stopping = True
            pool.shutdown(wait=False, cancel_futures=True)
            kill_leftovers(self.partial)
            pool.shutdown(wait=True)
            clean_partial(self.partial)
            raise
        finally:
            pool.shutdown(wait=True)
            self.progress.close()
        return outcome

    def _grade_one(self, sub: Submission, digest: str) -> dict:
        work = self.partial / f"{sub.name}.{uuid.uuid4().hex[:12]}"
        work.mkdir(parents=True)
        try:
            self.progress.started(sub.name)
            results = self.grader(self.week, sub.notebook, work / "results.json",
                                  log=work / "grader.log")
            if self.stopping:
                raise RuntimeError("the batch was interrupted")
            write_feedback(self.week, results, work / "executed.ipynb", work / "feedback.html",
                           student=sub.student or sub.name)
            sidecar = {"name": sub.name, "sha256": digest, "week": self.week.name,
                       "week_fingerprint": self.fingerprint, "student": sub.student,
                       "email": sub.email, "origin": sub.origin, "notebook": str(sub.notebook),
                       "graded_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
            # Written last: its presence means the folder is complete.
            write_atomically(work / SIDECAR, json.dumps(sidecar, indent=1) + "\n")
            self._publish(work, self.out / sub.name)
            return results
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def _publish(self, work: Path, target: Path) -> None:
        """Rename the finished folder into place (a rename is atomic)."""
        old = None
        if target.exists() or target.is_symlink():
            old = self.partial / f"{target.name}.old.{uuid.uuid4().hex[:12]}"
            os.rename(target, old)
        os.rename(work, target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)

    def _already_graded(self, name: str, digest: str) -> bool:
        sidecar = read_sidecar(self.out / name)
        return (sidecar is not None and sidecar.get("sha256") == digest
                and sidecar.get("week_fingerprint") == self.fingerprint
                and load_results(self.out / name) is not None)


class OutputLock:
    """One batch per output folder at a time (an flock, released when we die).
    Held from finding the submissions (zips unpack into OUT) to the gradebook."""

    def __init__(self, out: Path):
        self.path = out / ".batch.lock"

    def __enter__(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.handle = open(self.path, "w")
        try:
            fcntl.flock(self.handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.handle.close()
            raise SystemExit(f"error: another `autograder grade` is writing to "
                             f"{self.path.parent}; wait for it or use another --out") from None
        return self

    def __exit__(self, *exc):
        self.handle.close()


def read_sidecar(folder: Path) -> dict | None:
    try:
        data = json.loads((folder / SIDECAR).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def load_results(folder: Path) -> dict | None:
    """results.json if it is complete (the grader marked it final)."""
    try:
        results = json.loads((folder / "results.json").read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(results, dict) or results.get("extra_data", {}).get("final") is not True:
        return None
    return results


def collect(out: Path, week: Week) -> tuple[dict[str, dict], dict[str, tuple[str, str]]]:
    """Every complete result of ``week`` in ``out``: name -> results, name -> (student, email)."""
    graded, students = {}, {}
    for folder in sorted(p for p in out.iterdir() if p.is_dir() and not p.name.startswith(".")):
        sidecar = read_sidecar(folder)
        results = load_results(folder)
        if sidecar is None or results is None or sidecar.get("week") != week.name:
            continue
        graded[folder.name] = results
        students[folder.name] = (sidecar.get("student", ""), sidecar.get("email", ""))
    return graded, students


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    except OSError:
        digest.update(b"<unreadable>")  # graded anyway: the grader reports why it fails
    return digest.hexdigest()


def week_fingerprint(week: Week) -> str:
    """Changes when the week's build (config or any test) changes: results are then stale."""
    digest = hashlib.sha256()
    for path in sorted(week.directory.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            digest.update(str(path.relative_to(week.directory)).encode() + b"\0")
            digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


# -- leftovers of a killed run ---------------------------------------------------
def kill_leftovers(partial: Path) -> list[int]:
    """SIGKILL the gradings a killed batch left running (their command line names a
    folder under ``partial``); their sandboxes die with them. Returns the pids
    still alive 30 s later (none, normally)."""
    victims = processes_using(partial)
    for pid in victims:
        try:
            # The grader leads its own process group (runner: start_new_session).
            if os.getpgid(pid) == pid:
                os.killpg(pid, signal.SIGKILL)
            else:
                os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    deadline = time.monotonic() + 30
    while victims and time.monotonic() < deadline:
        victims = [pid for pid in victims if Path(f"/proc/{pid}").exists()
                   and not _is_zombie(pid)]
        time.sleep(0.1)
    return victims


def processes_using(partial: Path) -> list[int]:
    """Processes whose command line names a folder under ``partial``."""
    marker = str(partial) + "/"
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            command = (proc / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if marker in command and not _is_zombie(int(proc.name)):
            found.append(int(proc.name))
    return found


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True


def clean_partial(partial: Path) -> None:
    if partial.exists():
        kill_leftovers(partial)
        shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True, exist_ok=True)


# -- progress --------------------------------------------------------------------
class Progress:
    """A progress bar on a terminal (redrawn in place), one line per event otherwise."""

    WIDTH = 30

    def __init__(self, total: int, stream=sys.stderr):
        self.stream, self.total, self.done, self.running = stream, total, 0, set()
        self.tty = bool(stream) and hasattr(stream, "isatty") and stream.isatty()
        self.started_at = time.monotonic()
        self.lock = threading.Lock()

    def start(self, total: int, done: int = 0) -> None:
        self.total, self.done = total, done
        if done:
            self._line(f"{done} of {total} already graded (same notebook, same tests): kept")
        self._draw()

    def started(self, name: str) -> None:
        with self.lock:
            self.running.add(name)
            if not self.tty:
                self._line(f"grading {name} ...")
            self._draw()

    def finished(self, name: str, what: str) -> None:
        with self.lock:
            self.running.discard(name)
            self.done += 1
            self._line(f"[{self.done}/{self.total}] {name}: {what}")
            self._draw()

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()

    def _line(self, text: str) -> None:
        if not self.stream:
            return
        self.stream.write(("\r\033[K" if self.tty else "") + text + "\n")
        self.stream.flush()

    def _draw(self) -> None:
        if not self.tty or not self.total:
            return
        filled = self.WIDTH * self.done // self.total
        elapsed = time.monotonic() - self.started_at
        self.stream.write(f"\r\033[K[{'#' * filled}{'.' * (self.WIDTH - filled)}] "
                          f"{self.done}/{self.total} graded, {len(self.running)} running, "
                          f"{elapsed:.0f} s")
        self.stream.flush()
