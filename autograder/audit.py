"""Auditing bundle-graded submissions: run the notebook again and compare.

A bundle is what the student says their run produced. The audit re-executes a sample of
the notebooks graded from bundles (in the week's sandbox and limits, exactly as grading by
execution does) and compares what the checks measured both ways:

* every figure a check measured (``measure(...)``: an accuracy, an error, a learned
  constant) must agree within the week's tolerance for it (``[audit]`` in week.toml, set
  from the spread measured between runs with different seeds); a figure the week gives no
  tolerance must agree to 1e-6 (parameter counts);
* a check that measures no figure (an architecture, an activation) must pass or fail alike.

The outcome is one of ``reproduced``; ``differs`` (each difference with both figures);
``not reproduced`` (the re-run hit a limit: time-out, memory; expected for students who
trained on a GPU or for hours). An audit never changes a score: it is written to
``OUT/<name>/audit.json`` (the re-run's results.json and grader.log in ``audit/``), a
section of the submission's grader.log and the ``audit`` column of gradebook.csv.

Which submissions: those whose ``hash(seed, submission digest)`` falls below the fraction,
the seed kept in ``OUT/audit.seed`` (so a resumed or repeated run audits the same ones),
plus every one the TA names.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import secrets
import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

from autograder.grading.results import GradingResult, read_results, write_atomically
from autograder.weeks import Week

SEED_FILE = "audit.seed"
RESULT_FILE = "audit.json"
EXACT = 1e-6  # a figure the week gives no tolerance: it must come out the same
UNREPRODUCIBLE = {"timeout", "killed-kernel", "out-of-time"}


@dataclass
class Audit:
    outcome: str  # "reproduced", "differs" or "not reproduced"
    differences: list[str] = field(default_factory=list)
    digest: str = ""  # the submission audited (notebook + bundle)

    def summary(self) -> str:
        return self.outcome + "".join(f"\n  {d}" for d in self.differences)


def seed_of(out: Path) -> str:
    """The output folder's audit seed, made once."""
    path = out / SEED_FILE
    if not path.exists():
        write_atomically(path, secrets.token_hex(16) + "\n")
    return path.read_text().strip()


def chosen(seed: str, digest: str, fraction: float) -> bool:
    """Whether the submission with ``digest`` is in the audited ``fraction``."""
    draw = int.from_bytes(hashlib.sha256(f"{seed}:{digest}".encode()).digest()[:8], "big")
    return draw < fraction * 2**64


def compare(week: Week, bundled: GradingResult, rerun: GradingResult) -> Audit:
    """The audit's outcome from the bundle-graded results and the re-executed ones."""
    execution = rerun.extra.get("execution", {})
    stopped = [f"cell {c['index'] + 1} {c['message']}" for c in execution.get("cells", [])
               if c.get("status") in UNREPRODUCIBLE]
    if stopped or "was stopped" in rerun.note:
        return Audit("not reproduced", [*stopped, *([rerun.note] if rerun.note else [])][:10])
    again = {c.name: c for c in rerun.checks}
    differences = []
    for check in bundled.checks:
        other = again.get(check.name)
        if other is None:
            differences.append(f"{check.name}: not run again")
            continue
        figures, rerun_figures = check.figures(), other.figures()
        for label, value in figures.items():
            tolerance = tolerance_of(week, label)
            if label not in rerun_figures:
                differences.append(f"{check.name}: {label}: bundle {value:.6g}, re-run "
                                   "measured nothing")
            elif abs(rerun_figures[label] - value) > tolerance:
                differences.append(f"{check.name}: {label}: bundle {value:.6g}, re-run "
                                   f"{rerun_figures[label]:.6g} (tolerance {tolerance:g})")
        if not figures and check.status != other.status:
            differences.append(f"{check.name}: bundle {check.status}, re-run {other.status}")
    return Audit("differs" if differences else "reproduced", differences)


def tolerance_of(week: Week, label: str) -> float:
    """The week's ``[audit]`` tolerance for a measured figure (its label, or a glob)."""
    for pattern, tolerance in week.audit.items():
        if fnmatch.fnmatchcase(label, pattern):
            return tolerance
    return EXACT


def audit_submission(week: Week, folder: Path, grader, notebook: Path, digest: str) -> Audit:
    """Re-execute ``notebook`` into ``folder/audit/`` and compare with ``folder``'s results."""
    work = folder / "audit"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    rerun = grader(week, notebook, work / "results.json", log=work / "grader.log")
    found = compare(week, read_results(folder / "results.json"), rerun)
    found.digest = digest
    write_atomically(folder / RESULT_FILE, json.dumps(asdict(found), indent=1) + "\n")
    log = folder / "grader.log"
    section = f"\n--- audit: the notebook executed again ---\n{found.summary()}\n"
    write_atomically(log, (log.read_text() if log.exists() else "") + section)
    return found


def read_audit(folder: Path, digest: str) -> Audit | None:
    """The audit of the submission in ``folder``, if it audited this very submission."""
    try:
        data = json.loads((folder / RESULT_FILE).read_text())
        found = Audit(**data)
    except (OSError, ValueError, TypeError):
        return None
    return found if found.digest == digest else None


def audit_folder(week: Week, out: Path, grader, *, fraction: float = 0.0,
                 only: tuple[str, ...] = (), jobs: int = 1, log=print) -> dict[str, Audit]:
    """Audit the bundle-graded submissions of ``out`` that the seed picks, and ``only``."""
    from autograder.batch import load_results, read_sidecar

    seed = seed_of(out)
    todo, done = [], {}
    for folder in sorted(p for p in out.iterdir() if p.is_dir() and not p.name.startswith(".")):
        sidecar, result = read_sidecar(folder), load_results(folder)
        if sidecar is None or result is None or sidecar.get("week") != week.name:
            continue
        digest = sidecar.get("sha256", "")
        named = folder.name in only
        if not named and not (result.mode == "bundle" and chosen(seed, digest, fraction)):
            continue
        earlier = read_audit(folder, digest)
        if earlier is not None:
            done[folder.name] = earlier
        else:
            todo.append((folder, Path(sidecar["notebook"]), digest))
    unknown = sorted(set(only) - {f.name for f in out.iterdir() if f.is_dir()})
    for name in unknown:
        log(f"audit: no graded submission named {name} in {out}")
    if todo:
        log(f"audit: executing {len(todo)} notebook(s) again (seed in {out / SEED_FILE})")
    with ThreadPoolExecutor(max_workers=max(1, jobs), thread_name_prefix="audit") as pool:
        futures = {folder.name: pool.submit(audit_submission, week, folder, grader, notebook,
                                            digest)
                   for folder, notebook, digest in todo}
        for name, future in futures.items():
            done[name] = future.result()
    for name, found in sorted(done.items()):
        log(f"audit: {name}: {found.summary()}")
    return done
