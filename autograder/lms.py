"""A graded folder's scores for a learning management system: the CSV that Canvas'
gradebook import reads (``autograder gradebook OUT --format canvas --roster roster.csv``).

The roster is Canvas' own gradebook export (Grades > Export), so every student row
carries the ids Canvas matches on. What Canvas reads, from its importer
(lib/gradebook_importer.rb, https://github.com/instructure/canvas-lms) and the page that
sends the changes (ui/features/gradebook_uploads/jquery/process_gradebook_upload.js);
the steps for instructors are Instructure's guide "How do I import grades in the
Gradebook?", https://community.canvaslms.com/t5/Instructor-Guide/
How-do-I-import-grades-in-the-Gradebook/ta-p/807 (one address, cut to fit):

* The header: a first cell containing "Student", a second containing "ID", then "SIS
  User ID" and "SIS Login ID", and "Section" as the last student column; any other shape
  is refused ("Invalid header row"). The columns after it are assignments.
* A row whose first cell contains "Points Possible" gives the points of the assignments
  the import creates; rows of blanks, "Muted" or "Manual Posting" are skipped.
* A row's student is found by ID (Canvas' user id), else SIS User ID, else SIS Login ID,
  else by name.
* An assignment column "Title (123)" is assignment 123; a plain title is the assignment
  of that title, or a new one.
* Every cell that differs from the score Canvas has is sent as the new grade, a blank
  cell too: a blank clears a score Canvas has. So a roster student without a score here
  gets the cell Canvas' export (the roster) shows for the assignment, which Canvas sees
  as no change, and a blank when the roster has no such column.

Matching a graded submission to roster rows (never by name: names are not unique and
Gradescope and Canvas spell them differently): each of its students (a Gradescope
group has several) by their email, compared case-insensitively with the roster's SIS
Login ID and SIS User ID; failing that, by the email's local part (before the "@"),
compared the same way. A submission without an email (an nbgrader student folder) is
matched by its student id the same way. A student matching no row or several rows, a
roster row that several submissions match, and a submission that was not graded at all
are left out and listed.
"""

from __future__ import annotations

import argparse
import csv
import io
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from autograder.errors import AutograderError
from autograder.grading.results import (GradingResult, spreadsheet_safe, gradebook_csv,
                                        write_atomically)
from autograder.weeks import MANIFEST_NAME, Course, Manifest, Week

CANVAS_COLUMNS = ("Student", "ID", "SIS User ID", "SIS Login ID", "Section")
SIS_COLUMNS = ("SIS User ID", "SIS Login ID")
POINTS_POSSIBLE = "Points Possible"
# Rows of Canvas' export that are not students; its importer skips them alike.
NOT_A_STUDENT = re.compile(r"^\s*(Muted|Manual Posting.*)?\s*$", re.IGNORECASE)
# Canvas' export names an assignment's column "Title (assignment id)".
ASSIGNMENT_ID = re.compile(r"\s+\(\d+\)\Z")


class RosterError(AutograderError):
    """A roster that is not Canvas' gradebook export: nothing is written."""


@dataclass(frozen=True)
class RosterStudent:
    name: str
    canvas_id: str  # a string: Canvas' ids are compared as written, never as numbers
    sis_user_id: str
    sis_login_id: str
    section: str
    cells: dict[str, str]  # the export's other columns (its assignments), by header

    def ids(self) -> set[str]:
        """The SIS ids a submission's email or student id is compared with."""
        return {i.strip().casefold() for i in (self.sis_user_id, self.sis_login_id)} - {""}


@dataclass(frozen=True)
class Roster:
    students: tuple[RosterStudent, ...]
    columns: tuple[str, ...]  # the header, as exported


@dataclass(frozen=True)
class Submitter:
    """One student of a graded submission (a Gradescope group submission has several)."""

    submission: str  # its folder, OUT/<submission>
    name: str  # as the submission names them, for messages
    key: str  # what they are matched by: an email, else a student id; "" if neither


@dataclass
class CanvasGrades:
    """What goes to Canvas: the assignment column, its points, a score per roster student
    (by Canvas ID), and a message for each piece of graded work that does not go."""

    assignment: str
    points_possible: float
    scores: dict[str, float] = field(default_factory=dict)
    not_written: list[str] = field(default_factory=list)


# -- the roster --------------------------------------------------------------------
def read_roster(path: Path) -> Roster:
    """Canvas' gradebook export; RosterError, saying what is wrong, if it is not one."""
    try:
        text = Path(path).read_text(encoding="utf-8-sig")  # Excel adds a BOM when saving
    except UnicodeDecodeError:
        raise RosterError(f"{path} is not a CSV file in UTF-8, as Canvas' Grades > Export "
                          "writes it") from None
    except OSError as error:
        raise RosterError(f"{path} cannot be read: {error.strerror or error}") from None
    rows = _csv_rows(text, path)
    if not rows:
        raise RosterError(f"{path} is empty; export the roster from Canvas: Grades > Export")
    header = [cell.strip() for cell in rows[0]]
    missing = [column for column in ("Student", "ID", "Section") if column not in header]
    if not any(column in header for column in SIS_COLUMNS):
        missing.append("SIS User ID or SIS Login ID")
    if missing:
        raise RosterError(f"{path} is not Canvas' gradebook export: it has no column "
                          f"{', '.join(missing)} (export it from Canvas: Grades > Export)")
    repeated = [column for column in CANVAS_COLUMNS if header.count(column) > 1]
    if repeated:
        raise RosterError(f"{path} has the column {', '.join(repeated)} more than once")
    students: list[RosterStudent] = []
    seen: set[str] = set()
    for number, row in enumerate(rows[1:], start=2):
        if (row and POINTS_POSSIBLE in row[0]) or all(NOT_A_STUDENT.match(c) for c in row):
            continue
        cells = dict(zip(header, (cell.strip() for cell in row)))  # a short row: blanks
        canvas_id = cells.get("ID", "")
        if not (canvas_id.isascii() and canvas_id.isdigit()):
            raise RosterError(f"{path}, row {number}: ID {canvas_id!r} is not a Canvas user "
                              "id (a number)")
        if canvas_id in seen:
            raise RosterError(f"{path}, row {number}: ID {canvas_id} is there twice")
        seen.add(canvas_id)
        students.append(RosterStudent(
            cells.get("Student", ""), canvas_id, cells.get("SIS User ID", ""),
            cells.get("SIS Login ID", ""), cells.get("Section", ""),
            {k: v for k, v in cells.items() if k not in CANVAS_COLUMNS}))
    if not students:
        raise RosterError(f"{path} has no student rows")
    return Roster(tuple(students), tuple(header))


def _csv_rows(text: str, path: Path) -> list[list[str]]:
    if "\x00" in text:  # Python's csv reads NULs as text: a binary file would pass
        raise RosterError(f"{path} is not a CSV file (it holds NUL bytes); export the "
                          "roster from Canvas: Grades > Export")
    # Canvas exports with semicolons when the user's setting asks for them.
    first_line = text.split("\n", 1)[0]
    delimiter = ";" if first_line.count(";") > first_line.count(",") else ","
    try:
        return list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    except csv.Error as error:
        raise RosterError(f"{path} is not a CSV file ({error})") from None


def assignment_column(roster: Roster, title: str) -> str:
    """The header to write for the assignment ``title``: the roster's column of it
    ("Title (id)", so Canvas updates that assignment), else ``title`` itself (Canvas
    then takes the assignment of that title, or creates it)."""
    found = [c for c in roster.columns if c == title or ASSIGNMENT_ID.sub("", c) == title]
    if len(found) > 1:
        raise RosterError(f"several assignments of the roster are titled {title!r} "
                          f"({', '.join(found)}); name one with --assignment, e.g. "
                          f"--assignment {found[0]!r}")
    return found[0] if found else title


# -- matching ----------------------------------------------------------------------
def submitters(students: dict[str, tuple[str, str]]) -> list[Submitter]:
    """The students of each submission, from ``batch.collect``'s (names, emails) per
    submission; Gradescope's export joins a group's names and emails with "; "."""
    found = []
    for submission, (names, emails) in sorted(students.items()):
        names, emails = str(names or ""), str(emails or "")  # a sidecar is plain JSON
        name_list = names.split("; ") if names else []
        email_list = [email.strip() for email in emails.split("; ") if email.strip()]
        if not email_list:
            # nbgrader's student folder is an id the course chose; a loose notebook has none.
            found.append(Submitter(submission, names, names.strip()))
            continue
        aligned = len(name_list) == len(email_list)
        found += [Submitter(submission, name_list[i] if aligned else names, email)
                  for i, email in enumerate(email_list)]
    return found


def roster_matches(key: str, roster: Roster) -> list[RosterStudent]:
    """The roster rows whose SIS Login ID or SIS User ID is ``key`` (an email or a student
    id), else, for an email, its local part; compared case-insensitively."""
    key = key.strip().casefold()
    if not key:
        return []
    exact = [student for student in roster.students if key in student.ids()]
    if exact or "@" not in key:
        return exact
    local_part = key.rpartition("@")[0]
    return [student for student in roster.students if local_part in student.ids()]


def canvas_grades(roster: Roster, graded: dict[str, GradingResult],
                  students: dict[str, tuple[str, str]], title: str,
                  points: float | None = None) -> CanvasGrades:
    """Each graded submission's total (``GradingResult.score``, manual entries included)
    for the roster rows its students match, and what is left out and why."""
    gradable = {name: result for name, result in graded.items() if _was_graded(result)}
    if not gradable:
        raise AutograderError("no graded submission to send to Canvas in this folder")
    # ``points``: the week's, checks and written answers (its manifest). Without one, every
    # result lists all the week's checks (those not run with 0 points), and the TAs'
    # scored written answers: the largest total is the week's points.
    grades = CanvasGrades(assignment_column(roster, title), points if points is not None
                          else max(result.max_score for result in gradable.values()))
    claims: dict[str, set[str]] = {}  # Canvas ID -> the submissions matching that student
    for submitter in submitters(students):
        who = f"{submitter.submission} ({submitter.name or 'no name'})"
        result = graded[submitter.submission]
        if submitter.submission not in gradable:
            grades.not_written.append(f"{who}: not graded ({result.note or 'no check ran'})")
        elif not submitter.key:
            grades.not_written.append(f"{who}: no email or student id to find in the roster")
        else:
            rows = roster_matches(submitter.key, roster)
            if not rows:
                grades.not_written.append(f"{who}: {submitter.key} is no roster student's "
                                          "SIS Login ID or SIS User ID")
            elif len(rows) > 1:
                grades.not_written.append(f"{who}: {submitter.key} matches several roster "
                                          f"students ({_listed(rows)}); none is written")
            else:
                claims.setdefault(rows[0].canvas_id, set()).add(submitter.submission)
    by_id = {student.canvas_id: student for student in roster.students}
    for canvas_id, submissions in claims.items():
        if len(submissions) > 1:
            grades.not_written.append(f"{_listed([by_id[canvas_id]])} is matched by several "
                                      f"submissions ({', '.join(sorted(submissions))}); none "
                                      "is written")
        else:
            grades.scores[canvas_id] = graded[next(iter(submissions))].score
    return grades


def _was_graded(result: GradingResult) -> bool:
    # A result no check ran for holds only the "grading" entry saying why (not_graded).
    return any(check.question != "-" for check in result.checks)


def _listed(rows: list[RosterStudent]) -> str:
    return ", ".join(f"{student.name} (ID {student.canvas_id})" for student in rows)


# -- the CSV Canvas imports --------------------------------------------------------
def canvas_csv(roster: Roster, grades: CanvasGrades) -> str:
    """Canvas' import format: its five student columns and the assignment, a Points
    Possible row, then every roster student in the roster's order."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([*CANVAS_COLUMNS, grades.assignment])
    writer.writerow([POINTS_POSSIBLE, "", "", "", "", _points(grades.points_possible)])
    for student in roster.students:
        if student.canvas_id in grades.scores:
            cell = _points(grades.scores[student.canvas_id])
        else:
            cell = student.cells.get(grades.assignment, "")  # as Canvas has it: unchanged
        # Names are the students' own text; the ids stay exact, Canvas matches on them.
        writer.writerow([spreadsheet_safe(student.name), student.canvas_id,
                         student.sis_user_id, student.sis_login_id,
                         spreadsheet_safe(student.section), cell])
    return buffer.getvalue()


def _points(value: float) -> str:
    """Points as Canvas' export writes them: at most two decimals, never an exponent."""
    return f"{value:.2f}".rstrip("0").rstrip(".")


# -- the command -------------------------------------------------------------------
def add_gradebook_command(commands) -> None:
    """``autograder gradebook``, on the subparsers of ``autograder``'s parser."""
    p = commands.add_parser("gradebook", help="a graded folder's gradebook again, or the CSV "
                                              "Canvas' gradebook import reads")
    p.add_argument("out", type=Path, help="a folder `autograder grade --out` wrote")
    p.add_argument("--format", choices=["csv", "canvas"], default="csv",
                   help="csv: OUT/gradebook.csv and summary.csv (default); canvas: "
                        "OUT/canvas.csv for Canvas' Grades > Import (needs --roster)")
    p.add_argument("--roster", type=Path,
                   help="Canvas' gradebook export (Grades > Export): its students and ids")
    p.add_argument("--assignment", metavar="NAME",
                   help="the Canvas assignment (default: the week's title); 'Title (id)' "
                        "as Canvas' export heads it names one assignment exactly")
    p.add_argument("--output", type=Path, metavar="FILE",
                   help="write here instead of OUT/gradebook.csv or OUT/canvas.csv")


def cmd_gradebook(args: argparse.Namespace) -> int:
    from autograder.batch import OutputLock, collect

    out = args.out.resolve()
    if args.format == "canvas" and args.roster is None:
        print("error: --format canvas needs --roster: Canvas' gradebook export "
              "(Grades > Export)", file=sys.stderr)
        return 2
    week = graded_week(out)
    roster = read_roster(args.roster) if args.format == "canvas" else None  # before writing
    with OutputLock(out):  # one writer of OUT at a time, as `grade` and `audit` hold it
        if roster is None:
            return _write_class_gradebook(week, out, args.output)
        graded, students = collect(out, week)
        grades = canvas_grades(roster, graded, students, args.assignment or week.title,
                               _full_points(week))
        target = args.output or out / "canvas.csv"
        write_atomically(target, canvas_csv(roster, grades))
    for message in grades.not_written:
        print(f"not written: {message}", file=sys.stderr)
    print(f"{target}: {grades.assignment!r} ({_points(grades.points_possible)} points): "
          f"{len(grades.scores)} of {len(roster.students)} roster students scored, the "
          "others left as Canvas has them")
    if grades.not_written:
        print(f"{len(grades.not_written)} not written (listed on stderr): fix the roster or "
              "the submission and run this again")
    print("Import it in Canvas: Grades > Import, check the changes it lists, Save.")
    # The file is written either way; the status says when graded work is not in it.
    return 1 if grades.not_written else 0


def _full_points(week: Week) -> float | None:
    """The week's points, written answers included (Canvas sets a new assignment's points
    on its first import, before TAs may have scored any written answer); None for a build
    without a manifest."""
    if not (week.directory / MANIFEST_NAME).exists():
        return None
    manifest = Manifest.load(week)
    return manifest.total + sum(question.points for question in manifest.written)


def graded_week(out: Path) -> Week:
    """The week a graded folder holds, from its submissions' sidecars."""
    from autograder.batch import read_sidecar

    weeks = {sidecar.get("week") for sidecar in map(read_sidecar, out.iterdir())
             if sidecar} if out.is_dir() else set()
    if len(weeks) != 1:
        raise AutograderError(f"{out} is not one week's graded folder "
                              "(`autograder grade --out`)")
    return Course().built_week(weeks.pop())


def _write_class_gradebook(week: Week, out: Path, output: Path | None) -> int:
    from autograder.batch import collect, write_gradebook

    if output is None:
        graded = write_gradebook(week, out)  # the writer `grade` and `audit` use
    else:
        graded, students = collect(out, week)
        write_atomically(output, gradebook_csv(week, graded, students))
    print(f"{len(graded)} result(s) of {week.name}: {output or out / 'gradebook.csv'}")
    return 0
