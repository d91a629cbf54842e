"""Gradescope's results.json, the class gradebook, and the summary table.

results.json follows Gradescope's autograder specification: a top-level
``score`` and ``tests[]`` with ``name``, ``score``, ``max_score``, ``status``,
``output`` and ``visibility``. Our own details (question ids, what happened to
each cell, the sandbox used) go in the spec's ``extra_data`` fields.
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
class TestResult:
    name: str
    question: str
    max_score: float
    visibility: str = "visible"
    status: str = "failed"
    score: float = 0.0
    output: str = NOT_RUN
    # What the check measured (an accuracy, a parameter count ...): shown to the
    # student whether the check passed or not, and kept in extra_data for tools
    # such as the benchmarks. Filled through the plugin's ``measure`` fixture.
    measured: list = field(default_factory=list)

    def measure(self, label: str, value: float, threshold: float | None, text: str) -> None:
        self.measured.append({"label": label, "value": value, "threshold": threshold,
                              "text": text})

    def passed(self) -> None:
        self.status, self.score, self.output = "passed", self.max_score, ""

    def failed(self, message: str) -> None:
        # The first failure (setup or call) is the informative one.
        if self.status != "failed" or self.output == NOT_RUN:
            self.status, self.score, self.output = "failed", 0.0, message

    def to_json(self) -> dict:
        notes = [m["text"] for m in self.measured if m["text"] not in self.output]
        extra = {"question": self.question}
        if self.measured:
            extra["measured"] = [{k: m[k] for k in ("label", "value", "threshold")}
                                 for m in self.measured]
        return {"name": self.name, "score": self.score, "max_score": self.max_score,
                "status": self.status, "output": "\n".join(filter(None, [self.output, *notes])),
                "visibility": self.visibility, "extra_data": extra}


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


class ResultsFile:
    def __init__(self, path: Path):
        self.path = path

    def write(self, week, tests: list[TestResult], *, seconds: float, extra: dict) -> dict:
        data = results_json(week, tests, seconds=seconds, extra=extra)
        write_atomically(self.path, json.dumps(data, indent=1) + "\n")
        return data


def results_json(week, tests: list[TestResult], *, seconds: float, extra: dict) -> dict:
    score = sum(t.score for t in tests)
    total = sum(t.max_score for t in tests)
    lines = [f"{week.title}: {score:g} / {total:g} points"]
    for qid, question in week.questions.items():
        mine = [t for t in tests if t.question == qid]
        got = sum(t.score for t in mine)
        out_of = sum(t.max_score for t in mine)
        lines.append(f"  {qid} {question.title}: {got:g} / {out_of:g}")
    # Student code the grader did not run (outside the answer cells, or an edited
    # given cell): the student must learn it from the result, not guess it.
    lines += [f"Not run: {note}" for note in extra.get("not_run", [])]
    return {
        "score": score,
        "execution_time": round(seconds, 1),
        "output": "\n".join(lines),
        "stdout_visibility": "hidden",
        "tests": [t.to_json() for t in tests],
        "extra_data": {"week": week.name, **extra},
    }


def question_scores(results: dict) -> dict[str, tuple[float, float]]:
    scores: dict[str, list[float]] = {}
    for test in results.get("tests", []):
        qid = test.get("extra_data", {}).get("question", "?")
        got, out_of = scores.setdefault(qid, [0.0, 0.0])
        scores[qid] = [got + test["score"], out_of + test["max_score"]]
    return {q: (s[0], s[1]) for q, s in scores.items()}


def not_graded(week: str, title: str, reason: str, seconds: float = 0.0) -> dict:
    """The results.json of a submission no check could run for, saying why."""
    return {
        "score": 0.0, "execution_time": round(seconds, 1),
        "output": f"{title}: not graded: {reason}",
        "tests": [{"name": "grading", "score": 0.0, "max_score": 0.0, "status": "failed",
                   "output": f"not graded: {reason}", "visibility": "visible",
                   "extra_data": {"question": "-"}}],
        "extra_data": {"week": week},
    }


def gradebook_csv(week, graded: dict[str, dict],
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
    for name, results in sorted(graded.items()):
        per_question = question_scores(results)
        total = sum(got for got, _ in per_question.values())
        out_of = sum(most for _, most in per_question.values())
        who = list(students.get(name, ("", ""))) if students is not None else []
        extra = results.get("extra_data", {})
        flagged = "; ".join(extra.get("provenance", []))
        writer.writerow([name, *(f"{per_question.get(q, (0, 0))[0]:g}" for q in week.questions),
                         f"{total:g}", f"{out_of:g}", *(_spreadsheet_safe(w) for w in who),
                         _spreadsheet_safe(flagged), extra.get("mode", ""),
                         extra.get("audit", "")])
    return buffer.getvalue()


def _spreadsheet_safe(text: str) -> str:
    """Student-given text that a spreadsheet would run as a formula gets a leading quote."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def summary_table(week, graded: dict[str, dict]) -> str:
    questions = list(week.questions)
    header = ["submission", *questions, "total", "notes"]
    rows = []
    for name, results in sorted(graded.items()):
        per_question = question_scores(results)
        total = sum(got for got, _ in per_question.values())
        out_of = sum(most for _, most in per_question.values())
        notes = results.get("extra_data", {}).get("note", "")
        rows.append([name, *(f"{per_question.get(q, (0, 0))[0]:g}/{per_question.get(q, (0, 0))[1]:g}"
                             for q in questions), f"{total:g}/{out_of:g}", notes])
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


def class_summary(week, graded: dict[str, dict]) -> list[dict]:
    """Per question, then the total: points, count, mean, min, median, max, and how
    many submissions fall in each 20 % bucket of the points (full marks in the last)."""
    if not graded:
        return []
    per_submission = [question_scores(results) for results in graded.values()]
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
