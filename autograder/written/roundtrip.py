"""``autograder written export`` and ``autograder written import``: a TA's round trip.

Export reads a graded folder (``autograder grade --out OUT``) and writes ``OUT/written/``:
a page per question (``<question>.html``), the sheet to fill in (``written.csv``), and,
with ``pdf``, ``pdf/<submission>.pdf``. Import checks a filled-in sheet as a whole, then
keeps its scores in ``OUT/written/scores.json`` and rewrites every results.json,
feedback.html, gradebook.csv and summary.csv from them. Both hold the folder's batch
lock, so they never interleave with a grading of the same folder.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from autograder.batch import OutputLock, collect, load_results, read_sidecar, write_gradebook
from autograder.errors import ConfigError
from autograder.feedback import write_feedback
from autograder.grading.results import write_atomically, write_results
from autograder.written import pages, pdf
from autograder.written.answers import load_answers
from autograder.written.questions import written_of
from autograder.written.scores import (FOLDER, SHEET, labels, read_key, read_scores,
                                       read_sheet, sheet_csv, with_manual, write_key,
                                       write_scores)


@dataclass
class Exported:
    folder: Path
    questions: tuple = ()  # the written questions, in page order
    pages: list[Path] = field(default_factory=list)
    pdfs: list[Path] = field(default_factory=list)
    submissions: int = 0
    to_grade: int = 0  # answers without a (current) score
    notes: list[str] = field(default_factory=list)


def export_written(week, out: Path, *, anonymise: bool = True, as_pdf: bool = False) -> Exported:
    written = _written(week)
    if as_pdf:
        pdf.chromium()  # before writing anything: say at once that it cannot be done
    with OutputLock(out):
        graded, _ = collect(out, week)
        names = sorted(graded)
        answers = {name: load_answers(out / name) for name in names}
        label_of = labels(out, names, anonymise=anonymise)
        scores = read_scores(out)
        report = Exported(out / FOLDER, written, submissions=len(names))
        unrecorded = [name for name in names if not answers[name]]
        if unrecorded:
            report.notes.append(
                f"{len(unrecorded)} submission(s) were graded before written answers were "
                f"recorded ({', '.join(unrecorded[:5])}): grade them again with --regrade")
        by_label = sorted(names, key=lambda name: label_of[name])
        for question in written:
            shown = [(label_of[name], answers[name].get(question.question, {}).get("text", ""))
                     for name in by_label]
            path = report.folder / f"{question.question}.html"
            write_atomically(path, pages.question_page(week.title, question, shown))
            report.pages.append(path)
        rows = []
        for name in by_label:
            for question in written:
                answer = answers[name].get(question.question, {})
                score = scores.get(name, {}).get(question.question)
                current = score is not None and score["sha256"] == answer.get("sha256")
                report.to_grade += not current
                rows.append((label_of[name], question.question,
                             f"{score['points']:g}" if current else "",
                             score["comment"] if current else ""))
        write_key(out, week.name, label_of if anonymise else {},
                  {name: {q: a["sha256"] for q, a in answers[name].items()} for name in names},
                  sheet={name: label_of[name] for name in names})
        write_atomically(report.folder / SHEET, sheet_csv(rows))
        if as_pdf:
            for name in names:
                html = pages.submission_pages(week.title, name, written, {
                    q: a["text"] for q, a in answers[name].items()})
                target = report.folder / "pdf" / f"{name}.pdf"
                try:
                    pdf.print_pdf(html, target, pages=len(written))
                    report.pdfs.append(target)
                except (RuntimeError, OSError) as error:
                    report.notes.append(str(error))
    return report


@dataclass
class Imported:
    errors: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    scored: int = 0  # scores taken from the sheet
    stale: list[str] = field(default_factory=list)  # "name question": answer changed


def import_written(week, out: Path, sheet_path: Path) -> Imported:
    written = _written(week)
    with OutputLock(out):
        key = read_key(out)
        if key.get("week") != week.name or not isinstance(key.get("sheet"), dict):
            return Imported(errors=[f"{out} has no export of {week.name}'s written answers: "
                                    f"run `autograder written export {week.name} {out}` first"])
        sheet = read_sheet(sheet_path, written, key["sheet"], key.get("exported", {}))
        report = Imported(errors=sheet.errors, missing=sheet.missing)
        if sheet.errors:
            return report  # nothing changes
        scores = read_scores(out)
        for name, by_question in sheet.scores.items():
            scores.setdefault(name, {}).update(by_question)
            report.scored += len(by_question)
        write_scores(out, week.name, scores)
        graded, _ = collect(out, week)
        for name in sorted(graded):
            folder = out / name
            result = load_results(folder)
            if result is None:
                continue
            updated, stale = with_manual(week, result, written, load_answers(folder),
                                         scores.get(name, {}))
            report.stale += [f"{name} {q}" for q in stale]
            write_results(folder / "results.json", updated)
            sidecar = read_sidecar(folder) or {}
            write_feedback(week, updated, folder / "executed.ipynb", folder / "feedback.html",
                           student=sidecar.get("student") or name)
        write_gradebook(week, out)
    return report


def _written(week):
    written = written_of(week)
    if not written:
        raise ConfigError(f"{week.name} has no written answers (no manually graded answer "
                          "cells in its source notebook)")
    return written
