"""Grading a class: grade the submissions in parallel, resumably.

The submissions come from ``autograder.submissions.discover``. Output per
submission, ``OUT/<name>/``: results.json, executed.ipynb,
grader.log, written.json (when the week has written answers), feedback.html and
submission.json (what was graded: the
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
import shutil
import signal
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from autograder.audit import read_audit
from autograder.errors import OutputBusy
from autograder.feedback import write_feedback
from autograder.grading.results import (GradingResult, class_summary, class_summary_csv,
                                        gradebook_csv, read_results, write_atomically,
                                        write_results)
from autograder.grading.runner import NO_BUNDLE
from autograder.submissions import Submission
from autograder.weeks import Week
from autograder.written.answers import read_answers, write_answers
from autograder.written.questions import written_of
from autograder.written.scores import read_scores, with_manual

PARTIAL = ".partial"  # work in progress (deleted on the next run)
SIDECAR = "submission.json"

Grader = Callable[..., GradingResult]  # grade_notebook's contract


# -- grading -------------------------------------------------------------------
@dataclass
class Outcome:
    graded: list[str] = field(default_factory=list)  # graded in this run
    reused: list[str] = field(default_factory=list)  # already graded, same content
    failed: dict[str, str] = field(default_factory=dict)  # name -> why it has no result


class Batch:
    def __init__(self, week: Week, out: Path, grader: Grader, *, jobs: int = 1,
                 regrade: bool = False, from_bundle: bool = False,
                 progress: "Progress | None" = None):
        self.week, self.out, self.grader = week, out, grader
        self.jobs, self.regrade = max(1, jobs), regrade
        self.from_bundle = from_bundle  # grade from the bundle handed in, where there is one
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
            digest = self._digest(sub)
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
                    result = future.result()
                except Exception as error:  # one submission's problem, not the batch's
                    outcome.failed[sub.name] = f"{type(error).__name__}: {error}"
                    self.progress.finished(sub.name, f"not graded: {error}")
                else:
                    outcome.graded.append(sub.name)
                    self.progress.finished(sub.name, f"{result.score:g} points")
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

    def _grade_one(self, sub: Submission, digest: str) -> GradingResult:
        work = self.partial / f"{sub.name}.{uuid.uuid4().hex[:12]}"
        work.mkdir(parents=True)
        try:
            self.progress.started(sub.name)
            result = grade_into(work, self.week, sub, digest, self.grader,
                                from_bundle=self.from_bundle, fingerprint=self.fingerprint,
                                out=self.out, interrupted=lambda: self.stopping)
            self._publish(work, self.out / sub.name)
            return result
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

    def _digest(self, sub: Submission) -> str:
        return digest_of(sub, self.from_bundle)

    def _already_graded(self, name: str, digest: str) -> bool:
        return already_graded(self.out, name, digest, self.fingerprint)


def grade_into(work: Path, week: Week, sub: Submission, digest: str, grader: Grader, *,
               from_bundle: bool, fingerprint: str, out: Path, record: dict | None = None,
               interrupted: Callable[[], bool] = lambda: False) -> GradingResult:
    """Grade ``sub`` into the empty folder ``work``: results.json, executed.ipynb,
    grader.log, written.json (the written answers, as text), feedback.html, then
    submission.json (with ``record`` added), written last: its presence means the folder
    is complete. Every engine (a local batch, a Slurm task) grades a submission this way
    and only publishes differently. The TAs' scores of written answers, kept in ``out``,
    go into results.json again (a regrade never loses them)."""
    handed_in = {"bundle": sub.bundle or NO_BUNDLE} if from_bundle else {}
    result = grader(week, sub.notebook, work / "results.json", log=work / "grader.log",
                    **handed_in)
    if interrupted():
        raise RuntimeError("the batch was interrupted")
    written = written_of(week)
    if written:
        answers = read_answers(sub.notebook, written)
        write_answers(work, answers)
        result, _ = with_manual(week, result, written, answers["answers"],
                                read_scores(out).get(sub.name, {}))
        write_results(work / "results.json", result)
    write_feedback(week, result, work / "executed.ipynb", work / "feedback.html",
                   student=sub.student or sub.name)
    sidecar = {"name": sub.name, "sha256": digest, "week": week.name,
               "week_fingerprint": fingerprint, "student": sub.student,
               "email": sub.email, "origin": sub.origin, "notebook": str(sub.notebook),
               "graded_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **(record or {})}
    write_atomically(work / SIDECAR, json.dumps(sidecar, indent=1) + "\n")
    return result


def publish_first(work: Path, target: Path) -> bool:
    """Rename the finished folder ``work`` to ``target`` unless a result is there already:
    the first to publish wins, a later duplicate (a requeued task's first run finishing
    after all) changes nothing. A rename onto a folder that is not empty fails, on a
    shared file system too, so two publishers racing cannot both win."""
    if target.exists() or target.is_symlink():
        return False
    try:
        os.rename(work, target)
    except OSError:  # ENOTEMPTY / EEXIST: another task published in between
        return False
    return True


def digest_of(sub: Submission, from_bundle: bool) -> str:
    """What was graded: the notebook, and the bundle when it is graded from one (a new
    bundle is graded again; so is the same one after a run without --from-bundle)."""
    digest = sha256_file(sub.notebook)
    if from_bundle and sub.bundle:
        digest += "+bundle:" + sha256_file(sub.bundle)
    return digest


def already_graded(out: Path, name: str, digest: str, fingerprint: str) -> bool:
    """``OUT/<name>`` holds a complete result of this content and this week build."""
    sidecar = read_sidecar(out / name)
    return (sidecar is not None and sidecar.get("sha256") == digest
            and sidecar.get("week_fingerprint") == fingerprint
            and load_results(out / name) is not None)


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
            raise OutputBusy(f"another `autograder grade` is writing to "
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


def load_results(folder: Path) -> GradingResult | None:
    """The folder's results.json if it is complete (the grader marked it final)."""
    result = read_results(folder / "results.json")
    return result if result is not None and result.final else None


def collect(out: Path, week: Week) -> tuple[dict[str, GradingResult],
                                            dict[str, tuple[str, str]]]:
    """Every complete result of ``week`` in ``out``: name -> result, name -> (student, email)."""
    graded, students = {}, {}
    for folder in sorted(p for p in out.iterdir() if p.is_dir() and not p.name.startswith(".")):
        sidecar = read_sidecar(folder)
        result = load_results(folder)
        if sidecar is None or result is None or sidecar.get("week") != week.name:
            continue
        graded[folder.name] = result
        audit = read_audit(folder, sidecar.get("sha256", ""))
        if audit is not None:  # for the gradebook only: results.json is left as graded
            result.extra["audit"] = audit.outcome
        students[folder.name] = (sidecar.get("student", ""), sidecar.get("email", ""))
    return graded, students


def write_gradebook(week: Week, out: Path) -> dict[str, GradingResult]:
    """gradebook.csv and summary.csv, rebuilt from every result in OUT (so a resumed
    batch's gradebook is whole); the results."""
    graded, students = collect(out, week)
    write_atomically(out / "gradebook.csv", gradebook_csv(week, graded, students))
    write_atomically(out / "summary.csv", class_summary_csv(class_summary(week, graded)))
    return graded


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
