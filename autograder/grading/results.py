"""Gradescope's results.json, the class gradebook, and the summary table.

results.json follows Gradescope's autograder specification: a top-level
``score`` and ``tests[]`` with ``name``, ``score``, ``max_score``, ``status``,
``output`` and ``visibility``. Our own details (question ids, what happened to
each cell, the sandbox used) go in the spec's ``extra_data`` fields.

``GradingResult`` (one submission) and ``CheckResult`` (one check) are the one model of
it: the plugin builds them, ``write_results`` is the one writer of results.json and
``read_results`` the one reader; batch, feedback, ``check``, Gradescope, the compiler and
the audit use them, never the JSON.
"""

from __future__ import annotations

import csv
import io
import json
import os
import statistics
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Callable

NOT_RUN = "not run: grading stopped before this check"


@dataclass
class CheckResult:
    """One check's outcome: a test of Gradescope's ``tests[]``."""

    question: str  # the question id from week.toml ("-" for the "grading" entry)
    check: str  # what the check asserts: its docstring's first line
    max_score: float
    question_title: str = ""
    visibility: str = "visible"
    status: str = "failed"
    score: float = 0.0
    output: str = NOT_RUN
    # What the check measured (an accuracy, a parameter count ...): shown to the
    # student whether the check passed or not, and kept in extra_data for tools
    # such as the audit and the benchmarks. Filled through the plugin's ``measure``.
    measured: list[dict] = field(default_factory=list)
    # Gradescope's test name, "q1 (title): check". Gradescope's history and rubrics key
    # on it, so it never changes for a check; given only for the "grading" entry.
    name: str = ""
    # A TA's score of a written answer (autograder/written), not a check that ran.
    manual: bool = False

    def __post_init__(self):
        self.name = self.name or f"{self.question} ({self.question_title}): {self.check}"

    def measure(self, label: str, value: float, threshold: float | None, text: str) -> None:
        self.measured.append({"label": label, "value": value, "threshold": threshold,
                              "text": text})

    def figures(self) -> dict[str, float]:
        """What the check measured, by label."""
        return {m["label"]: m["value"] for m in self.measured}

    def passed(self) -> None:
        self.status, self.score, self.output = "passed", self.max_score, ""

    def failed(self, message: str) -> None:
        # The first failure (setup or call) is the informative one.
        if self.status != "failed" or self.output == NOT_RUN:
            self.status, self.score, self.output = "failed", 0.0, message

    def to_json(self) -> dict:
        # A measured figure's sentence joins the output once (read back, it is there).
        notes = [m["text"] for m in self.measured if m.get("text") and m["text"] not in self.output]
        extra = {"question": self.question, "check": self.check}
        if self.manual:
            extra["manual"] = True
        if self.measured:
            extra["measured"] = [{k: m[k] for k in ("label", "value", "threshold")}
                                 for m in self.measured]
        return {"name": self.name, "score": self.score, "max_score": self.max_score,
                "status": self.status, "output": "\n".join(filter(None, [self.output, *notes])),
                "visibility": self.visibility, "extra_data": extra}

    @classmethod
    def from_json(cls, data: dict) -> CheckResult:
        extra = data.get("extra_data") or {}
        measured = [{"label": str(m["label"]), "value": float(m["value"]),
                     "threshold": m.get("threshold")} for m in extra.get("measured", [])]
        # Results written before "check" was kept show the whole name.
        return cls(question=str(extra.get("question", "-")),
                   check=str(extra.get("check", data["name"])),
                   max_score=float(data["max_score"]), name=str(data["name"]),
                   visibility=str(data.get("visibility", "visible")),
                   status=str(data.get("status", "failed")), score=float(data["score"]),
                   output=str(data.get("output", "")), measured=measured,
                   manual=extra.get("manual") is True)


@dataclass
class GradingResult:
    """One submission's grading: Gradescope's results.json, and our details in ``extra``
    (its ``extra_data``: the execution record, the mode, the note, timings ...)."""

    week: str
    checks: list[CheckResult]
    output: str = ""
    execution_time: float = 0.0
    extra: dict = field(default_factory=dict)
    # Gradescope's leaderboard: [{"name", "value", "order"}], from the figures of checks
    # students may see at once (``of``).
    leaderboard: list[dict] = field(default_factory=list)

    @property
    def score(self) -> float:
        return sum(c.score for c in self.checks)

    @property
    def max_score(self) -> float:
        return sum(c.max_score for c in self.checks)

    @property
    def final(self) -> bool:
        """Whether the grading finished writing it (a killed grading leaves final false)."""
        return self.extra.get("final") is True

    @property
    def note(self) -> str:
        return str(self.extra.get("note", ""))

    @property
    def mode(self) -> str:
        return str(self.extra.get("mode", ""))

    def question_scores(self, *, shown_only: bool = False) -> dict[str, tuple[float, float]]:
        """Question id -> (points, out of); ``shown_only`` leaves out hidden checks."""
        scores: dict[str, tuple[float, float]] = {}
        for check in self.checks:
            if shown_only and check.visibility == "hidden":
                continue
            got, out_of = scores.get(check.question, (0.0, 0.0))
            scores[check.question] = (got + check.score, out_of + check.max_score)
        return scores

    @classmethod
    def of(cls, week, checks: list[CheckResult], *, seconds: float,
           extra: dict) -> GradingResult:
        """The result of grading ``week``'s checks, with the summary Gradescope shows."""
        result = cls(week.name, checks, execution_time=round(seconds, 1), extra=extra)
        lines = [f"{week.title}: {result.score:g} / {result.max_score:g} points"]
        scores = result.question_scores()
        for qid, question in week.questions.items():
            got, out_of = scores.get(qid, (0.0, 0.0))
            lines.append(f"  {qid} {question.title}: {got:g} / {out_of:g}")
        # Student code the grader did not run (outside the answer cells, or an edited
        # given cell): the student must learn it from the result, not guess it.
        lines += [f"Not run: {note}" for note in extra.get("not_run", [])]
        result.output = "\n".join(lines)
        # The leaderboard is public at once: only figures of checks visible at once.
        shown = {label: value for check in checks if check.visibility == "visible"
                 for label, value in check.figures().items()}
        result.leaderboard = [{"name": column.name, "value": shown[column.measured],
                               "order": column.order}
                              for column in week.leaderboard
                              if column.measured in shown]
        return result

    @classmethod
    def not_graded(cls, week: str, title: str, reason: str,
                   seconds: float = 0.0) -> GradingResult:
        """A submission no check could run for, saying why."""
        check = CheckResult(question="-", check="grading", max_score=0.0, name="grading",
                            output=f"not graded: {reason}")
        return cls(week, [check], output=f"{title}: not graded: {reason}",
                   execution_time=round(seconds, 1))

    def to_json(self) -> dict:
        board = {"leaderboard": self.leaderboard} if self.leaderboard else {}
        return {"score": self.score, "execution_time": self.execution_time,
                "output": self.output, "stdout_visibility": "hidden", **board,
                "tests": [c.to_json() for c in self.checks],
                "extra_data": {"week": self.week, **self.extra}}

    @classmethod
    def from_json(cls, data: dict) -> GradingResult:
        """Raises KeyError, TypeError or ValueError when ``data`` is not a results.json."""
        extra = dict(data.get("extra_data") or {})
        board = data.get("leaderboard") or []
        if not isinstance(board, list) or not all(isinstance(c, dict) for c in board):
            raise ValueError("leaderboard is not a list of columns")
        return cls(str(extra.pop("week", "")), [CheckResult.from_json(t) for t in data["tests"]],
                   output=str(data.get("output", "")),
                   execution_time=float(data.get("execution_time", 0.0)), extra=extra,
                   leaderboard=board)


def write_results(path: Path, result: GradingResult) -> None:
    """results.json, atomically: the one writer."""
    write_atomically(path, json.dumps(result.to_json(), indent=1) + "\n")


def read_results(path: Path) -> GradingResult | None:
    """results.json as written by ``write_results``; None if missing or not one."""
    try:
        return GradingResult.from_json(json.loads(Path(path).read_text()))
    except (OSError, UnicodeDecodeError, KeyError, TypeError, ValueError, AttributeError):
        return None


def write_atomically(path: Path, content: str | bytes) -> None:
    """Readers see the old file or the new one, never half of one (text as UTF-8)."""
    data = content.encode("utf-8") if isinstance(content, str) else content
    write_atomically_with(path, lambda handle: handle.write(data))


def write_atomically_with(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """write(handle) into a temporary file beside `path`, then rename it into place,
    readable by the sandbox uid (0644). If anything fails, `path` is as it was."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def gradebook_csv(week, graded: dict[str, GradingResult],
                  students: dict[str, tuple[str, str]] | None = None) -> str:
    """One row per submission, one column per question, then the total (and, when
    ``students`` maps submissions to (name, email), who submitted it)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    identity = ["student", "email"] if students is not None else []
    # provenance: answers that load weights or carry large literals (see provenance.py)
    # mode: graded from the bundle handed in or by execution; audit: audit.py's outcome
    writer.writerow(["submission", *week.questions, "total", "max", *identity, "provenance",
                     "mode", "audit"])
    for name, result in sorted(graded.items()):
        per_question = result.question_scores()
        who = list(students.get(name, ("", ""))) if students is not None else []
        flagged = "; ".join(result.extra.get("provenance", []))
        writer.writerow([name, *(f"{per_question.get(q, (0, 0))[0]:g}" for q in week.questions),
                         f"{result.score:g}", f"{result.max_score:g}",
                         *(spreadsheet_safe(w) for w in who), spreadsheet_safe(flagged),
                         result.mode, result.extra.get("audit", "")])
    return buffer.getvalue()


def spreadsheet_safe(text: str) -> str:
    """Student-given text that a spreadsheet would run as a formula gets a leading quote."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def summary_table(week, graded: dict[str, GradingResult]) -> str:
    questions = list(week.questions)
    header = ["submission", *questions, "total", "notes"]
    rows = []
    for name, result in sorted(graded.items()):
        per_question = result.question_scores()
        rows.append([name, *(f"{per_question.get(q, (0, 0))[0]:g}/{per_question.get(q, (0, 0))[1]:g}"
                             for q in questions), f"{result.score:g}/{result.max_score:g}",
                     result.note])
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip()
             for row in [header, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


# -- the class, per question -------------------------------------------------
BUCKETS = 5  # distribution of each question's score in 20 % steps of its points


def bucket_labels() -> list[str]:
    step = 100 // BUCKETS
    return [f"{i * step}-{i * step + step - 1}%" for i in range(BUCKETS - 1)] + [
        f"{(BUCKETS - 1) * step}-100%"]


def class_summary(week, graded: dict[str, GradingResult]) -> list[dict]:
    """Per question, then the total: points, count, mean, min, median, max, and how
    many submissions fall in each 20 % bucket of the points (full marks in the last)."""
    if not graded:
        return []
    per_submission = [result.question_scores() for result in graded.values()]
    rows = []
    for qid in [*week.questions, "total"]:
        if qid == "total":
            scores = [sum(s[q][0] for q in s if q in week.questions) for s in per_submission]
            points = sum(r["points"] for r in rows)
        else:
            scores = [s.get(qid, (0.0, 0.0))[0] for s in per_submission]
            points = max(s.get(qid, (0.0, 0.0))[1] for s in per_submission)
        counts = [0] * BUCKETS
        for score in scores:
            bucket = int(score * BUCKETS // points) if points else 0
            counts[min(max(bucket, 0), BUCKETS - 1)] += 1
        rows.append({"question": qid, "points": points, "n": len(scores),
                     "mean": statistics.fmean(scores), "min": min(scores),
                     "median": statistics.median(scores), "max": max(scores),
                     "buckets": counts})
    return rows


def class_summary_csv(rows: list[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["question", "points", "n", "mean", "min", "median", "max", *bucket_labels()])
    for r in rows:
        writer.writerow([r["question"], f"{r['points']:g}", r["n"], f"{r['mean']:.2f}",
                         f"{r['min']:g}", f"{r['median']:g}", f"{r['max']:g}", *r["buckets"]])
    return buffer.getvalue()


def class_summary_table(rows: list[dict]) -> str:
    header = ["question", "points", "mean", "min", "median", "max", *bucket_labels()]
    body = [[r["question"], f"{r['points']:g}", f"{r['mean']:.2f}", f"{r['min']:g}",
             f"{r['median']:g}", f"{r['max']:g}", *map(str, r["buckets"])] for r in rows]
    widths = [max(len(row[i]) for row in [header, *body]) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip()
             for row in [header, *body]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
