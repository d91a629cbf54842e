"""The TAs' scores of written answers: the sheet they fill in, and where scores live.

``OUT/written/`` of a graded folder holds

* ``written.csv``: the sheet (submission, question, points, comment), one row per
  submission and written question, pre-filled with the scores imported so far;
* ``key.json``: which label of the sheet and pages is which submission (answers are
  anonymised by default), and the digest of each answer as exported;
* ``scores.json``: every imported score with the digest of the answer it was given for.

scores.json is the one record of manual scores: ``with_manual`` turns it into results.json
entries of their own (``CheckResult.manual``), whenever a submission is graded again too,
so that regrading never loses them. A score given for an answer that has since changed
(a new submission) is not counted, and the export asks for it again. Auto-graded checks
are never touched.

An imported sheet is checked as a whole first: one bad row (unknown submission or
question, points not a number or out of range, a row twice) and nothing changes.
"""

from __future__ import annotations

import csv
import io
import json
import math
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from autograder.grading.results import (CheckResult, GradingResult, spreadsheet_safe,
                                        write_atomically)
from autograder.written.questions import WrittenQuestion

FOLDER = "written"
SHEET = "written.csv"
KEY = "key.json"
SCORES = "scores.json"
COLUMNS = ("submission", "question", "points", "comment")
MAX_COMMENT_CHARS = 5_000
MAX_SHEET_BYTES = 20 * 2**20


# -- the key: labels of anonymised submissions -----------------------------------
def labels(out: Path, names: list[str], *, anonymise: bool) -> dict[str, str]:
    """Submission name -> the label TAs see. Anonymised labels ("answer-07") are drawn at
    random once per graded folder and kept in key.json, so a re-export (after more
    submissions are graded) keeps every earlier label."""
    if not anonymise:
        return {name: name for name in names}
    key = read_key(out)
    given = dict(key.get("labels", {}))
    taken = set(given.values())
    new = [name for name in names if name not in given]
    width = max(2, len(str(len(given) + len(new))))
    free = [f"answer-{n:0{width}d}" for n in range(1, len(given) + len(new) + 1)]
    free = [label for label in free if label not in taken]
    secrets.SystemRandom().shuffle(free)  # order says nothing about who is who
    given.update(zip(new, free))
    return {name: given[name] for name in names}


def read_key(out: Path) -> dict:
    try:
        data = json.loads((Path(out) / FOLDER / KEY).read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def write_key(out: Path, week: str, anonymous: dict[str, str],
              digests: dict[str, dict[str, str]], *, sheet: dict[str, str]) -> None:
    """``anonymous``: the labels drawn for anonymised exports (kept for good); ``sheet``:
    name -> the label this export's sheet uses (an import reads the latest export's);
    ``digests``: name -> question -> digest of the answer exported. The key stays in the
    graded folder, which TAs who grade anonymously are not given."""
    known = read_key(out)
    data = {"week": week,
            "labels": {**known.get("labels", {}), **anonymous},
            "exported": {**known.get("exported", {}), **digests},
            "sheet": sheet}
    write_atomically(Path(out) / FOLDER / KEY, json.dumps(data, indent=1, sort_keys=True) + "\n")


# -- scores.json -------------------------------------------------------------------
def read_scores(out: Path) -> dict[str, dict[str, dict]]:
    """Submission -> question -> {"points", "comment", "sha256"} ({} when none yet)."""
    try:
        data = json.loads((Path(out) / FOLDER / SCORES).read_text())
        return {str(name): {str(q): {"points": float(s["points"]), "comment": str(s["comment"]),
                                     "sha256": str(s["sha256"])} for q, s in by_q.items()}
                for name, by_q in data["scores"].items()}
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        # Never silently drop what TAs graded: say so, and change nothing.
        raise ValueError(f"{Path(out) / FOLDER / SCORES} is damaged ({error}); restore it "
                         "or import the sheets again") from None


def write_scores(out: Path, week: str, scores: dict[str, dict[str, dict]]) -> None:
    write_atomically(Path(out) / FOLDER / SCORES, json.dumps(
        {"week": week, "scores": scores}, indent=1, sort_keys=True) + "\n")


# -- results.json entries ----------------------------------------------------------
def with_manual(week, result: GradingResult, written: tuple[WrittenQuestion, ...],
                answers: dict[str, dict], scores: dict[str, dict]) -> tuple[GradingResult, list[str]]:
    """``result`` with one manual entry per scored written answer whose text is still the
    one graded (earlier manual entries replaced; the checks kept as they are), and
    the questions whose score was for another text. Nothing is added to a result that
    was not graded at all."""
    checks = [check for check in result.checks if not check.manual]
    if not any(check.question != "-" for check in checks):
        return result, []  # not graded: nothing to add the TA's points to
    stale = []
    for question in written:
        score = scores.get(question.question)
        if score is None:
            continue
        answer = answers.get(question.question, {})
        if answer.get("sha256") != score["sha256"]:
            stale.append(question.question)
            continue
        entry = CheckResult(question=question.question, check="written answer, graded by "
                            "a TA", max_score=question.points, question_title=question.title,
                            name=question.name, manual=True)
        entry.status = "passed" if score["points"] >= question.points else "failed"
        entry.score = score["points"]
        entry.output = score["comment"] or "(no comment)"
        checks.append(entry)
    updated = GradingResult.of(week, checks, seconds=result.execution_time, extra=result.extra)
    updated.output = "\n".join([updated.output, *(
        f"Written answer of {q}: changed since a TA graded it, so not counted until it is "
        "graded again" for q in stale)])
    return updated, stale


# -- the sheet ---------------------------------------------------------------------
def sheet_csv(rows: list[tuple[str, str, str, str]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    for submission, question, points, comment in rows:
        writer.writerow([submission, question, points, spreadsheet_safe(comment)])
    return buffer.getvalue()


def _unquoted(comment: str) -> str:
    """A comment as the TA meant it: without the quote the export put before text a
    spreadsheet would take for a formula."""
    return comment[1:] if comment[:1] == "'" and spreadsheet_safe(comment[1:]) != comment[1:] \
        else comment


@dataclass
class Sheet:
    """A filled-in sheet, checked: scores by submission name, and what it lacks."""
    scores: dict[str, dict[str, dict]] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)  # "label question" with no points
    errors: list[str] = field(default_factory=list)


def read_sheet(path: Path, written: tuple[WrittenQuestion, ...], label_of: dict[str, str],
               exported: dict[str, dict[str, str]]) -> Sheet:
    """Check every row of a filled-in sheet. ``label_of``: submission name -> label used
    in the sheet; ``exported``: name -> question -> digest of the answer TAs were shown."""
    sheet = Sheet()
    try:
        if Path(path).stat().st_size > MAX_SHEET_BYTES:
            sheet.errors.append(f"{path} is over {MAX_SHEET_BYTES // 2**20} MB: not a sheet")
            return sheet
        text = Path(path).read_text(encoding="utf-8-sig")  # spreadsheets add a BOM
        rows = list(csv.reader(io.StringIO(text, newline="")))
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        sheet.errors.append(f"{path} cannot be read as a UTF-8 CSV file: {error}")
        return sheet
    header = [cell.strip().lower() for cell in rows[0]] if rows else []
    lacking = [column for column in COLUMNS if column not in header]
    if lacking:
        sheet.errors.append(f"{path} has no column(s) {', '.join(lacking)}: its first row must "
                            f"name the columns {', '.join(COLUMNS)} (as exported)")
        return sheet
    at = {column: header.index(column) for column in COLUMNS}
    name_of = {label: name for name, label in label_of.items()}
    by_question = {q.question: q for q in written}
    seen: dict[tuple[str, str], int] = {}
    for line, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) < len(header):
            row = row + [""] * (len(header) - len(row))
        label, qid, points_text, comment = (row[at[c]].strip() for c in COLUMNS)
        where = f"row {line}"
        name = name_of.get(label)
        if name is None:
            sheet.errors.append(f"{where}: unknown submission {label[:80]!r} (not in this "
                                "graded folder's export)")
            continue
        question = by_question.get(qid)
        if question is None:
            sheet.errors.append(f"{where}: unknown question {qid[:40]!r} (written questions: "
                                f"{', '.join(by_question) or 'none'})")
            continue
        if (label, qid) in seen:
            sheet.errors.append(f"{where}: {label} {qid} again (first on row "
                                f"{seen[(label, qid)]})")
            continue
        seen[(label, qid)] = line
        if not points_text:
            sheet.missing.append(f"{label} {qid}")
            continue
        try:
            points = float(points_text.replace(",", "."))
        except ValueError:
            points = math.nan
        if not math.isfinite(points) or not 0 <= points <= question.points:
            sheet.errors.append(f"{where}: {label} {qid}: points {points_text[:20]!r} are not "
                                f"a number from 0 to {question.points:g}")
            continue
        if len(comment) > MAX_COMMENT_CHARS:
            sheet.errors.append(f"{where}: {label} {qid}: the comment is over "
                                f"{MAX_COMMENT_CHARS:,} characters")
            continue
        digest = exported.get(name, {}).get(qid)
        if digest is None:
            sheet.errors.append(f"{where}: {label} {qid} was not exported: export again")
            continue
        sheet.scores.setdefault(name, {})[qid] = {"points": points,
                                                  "comment": _unquoted(comment),
                                                  "sha256": digest}
    for name, label in sorted(label_of.items(), key=lambda item: item[1]):
        for question in written:
            if (label, question.question) not in seen and question.question in exported.get(
                    name, {}):
                sheet.missing.append(f"{label} {question.question}")
    return sheet
