"""`autograder gradebook OUT --format canvas --roster roster.csv`: the CSV Canvas'
gradebook import reads, from fabricated graded folders (no grading, no kernel)."""

from __future__ import annotations

import argparse
import csv
import io
import json
import re

import pytest
from batch_fixtures import make_course

from autograder.batch import SIDECAR
from autograder.errors import AutograderError
from autograder.grading.results import CheckResult, GradingResult, write_atomically, write_results
from autograder.lms import RosterError, add_gradebook_command, cmd_gradebook
from autograder.weeks import Week

# Canvas' export: its header, the Points Possible row, a muted-assignment row, students.
# Dee has a score in Canvas already for the tiny week (assignment 77).
ROSTER = [
    ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "Tiny week (77)",
     "Current Score"],
    ["    Points Possible", "", "", "", "", "6.00", "(read only)"],
    ["", "", "", "", "", "Manual Posting", ""],
    ["Lovelace, Ada", "101", "007", "ada@uni.edu", "Lab A", "", "50"],
    ["Babbage, Charles", "102", "1815", "cbab", "Lab A", "", "0"],
    ["Hopper, Grace", "103", "1906", "ghop", "Lab B", "", ""],
    ["Dee, Dee", "104", "2001", "dee", "Lab B", "4.5", ""],
    ["Noether, Emmy", "105", "1882", "emmy", "Lab B", "", ""],
]


@pytest.fixture
def course(tmp_path, monkeypatch):
    root = make_course(tmp_path / "course")
    monkeypatch.setenv("AUTOGRADER_COURSE", str(root))  # Course() finds the tiny week here
    return root


@pytest.fixture
def week(course):
    return Week.load(course / "assignments" / "tiny")


@pytest.fixture
def out(tmp_path):
    return tmp_path / "out"


def graded_folder(out, week, name, *, q1=3, q2=3, student="", email="",
                  graded=True) -> GradingResult:
    """OUT/<name>/ as a batch leaves it: results.json (q1: three 1-point tiers, q2: 3
    points) and the sidecar with the keys batch.grade_into writes."""
    if graded:
        checks = [CheckResult(question="q1", check=f"tier {i}", max_score=1.0,
                              question_title="A number") for i in range(3)]
        checks.append(CheckResult(question="q2", check="the label", max_score=3.0,
                                  question_title="A label"))
        for check, points in zip(checks, [1.0 if i < q1 else 0.0 for i in range(3)] + [q2]):
            check.status, check.score, check.output = "passed" if points else "failed", points, ""
        result = GradingResult.of(week, checks, seconds=1.0, extra={"final": True})
    else:
        result = GradingResult.not_graded(week.name, week.title, "the notebook is not JSON")
        result.extra.update(final=True, note="the notebook is not JSON")
    write_results(out / name / "results.json", result)
    write_atomically(out / name / SIDECAR, json.dumps({
        "name": name, "sha256": "0" * 64, "week": week.name, "week_fingerprint": "f",
        "student": student, "email": email, "origin": f"{name}.ipynb",
        "notebook": f"{name}.ipynb", "graded_at": "2025-01-10T17:22:41+0000"}))
    return result


def write_roster(path, rows=ROSTER, delimiter=","):
    with open(path, "w", newline="", encoding="utf-8") as handle:
        csv.writer(handle, delimiter=delimiter).writerows(rows)
    return path


def gradebook(*argv: str) -> int:
    """`autograder gradebook ...` through its own parser and command."""
    parser = argparse.ArgumentParser(prog="autograder")
    add_gradebook_command(parser.add_subparsers(dest="command", required=True))
    return cmd_gradebook(parser.parse_args(["gradebook", *map(str, argv)]))


def canvas_reads(text: str) -> tuple[str, str, dict[str, str]]:
    """What Canvas' importer (lib/gradebook_importer.rb) takes from the file: the
    assignment header, its Points Possible and each student's cell by Canvas ID, or
    AssertionError where it would say "Invalid header row"."""
    rows = list(csv.reader(io.StringIO(text, newline="")))
    header = rows[0]
    assert len(header) > 3 and "Student" in header[0] and "ID" in header[1]
    assert re.search(r"SIS\s+User\s+ID", header[2]) and re.search(r"SIS\s+Login\s+ID",
                                                                   header[3])
    assert "Section" in header[4]  # the last student column: the rest are assignments
    points = next(row for row in rows[1:] if "Points Possible" in row[0])
    cells = {row[1]: row[5] for row in rows[1:] if "Points Possible" not in row[0]}
    return header[5], points[5], cells


@pytest.fixture
def class_folder(out, week):
    graded_folder(out, week, "submission_1", q1=3, q2=3, student="Ada Lovelace",
                  email="ADA@uni.edu")  # the SIS Login ID itself, in another case
    graded_folder(out, week, "submission_2", q1=1, q2=0, student="Charles Babbage",
                  email="cbab@gmail.com")  # the login is the email's local part
    graded_folder(out, week, "submission_3", q1=2, q2=3, student="Grace Hopper; Dee Dee",
                  email="ghop@uni.edu; dee@uni.edu")  # a group: both get the score
    graded_folder(out, week, "submission_4", q1=3, q2=3, student="Mallory",
                  email="mallory@evil.example")  # nobody on the roster
    return out


def test_the_file_is_canvas_import_format_with_each_matched_students_total(
        class_folder, tmp_path, capsys):
    code = gradebook(class_folder, "--format", "canvas", "--roster",
                     write_roster(tmp_path / "roster.csv"))
    text = (class_folder / "canvas.csv").read_text()
    rows = list(csv.reader(io.StringIO(text)))
    # Canvas' documented columns exactly, its assignment column as the roster heads it.
    assert rows[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section",
                       "Tiny week (77)"]
    assert rows[1] == ["Points Possible", "", "", "", "", "6"]
    assert rows[2:] == [
        ["Lovelace, Ada", "101", "007", "ada@uni.edu", "Lab A", "6"],
        ["Babbage, Charles", "102", "1815", "cbab", "Lab A", "1"],
        ["Hopper, Grace", "103", "1906", "ghop", "Lab B", "5"],
        ["Dee, Dee", "104", "2001", "dee", "Lab B", "5"],
        # no submission: the cell Canvas has (blank), so the import changes nothing
        ["Noether, Emmy", "105", "1882", "emmy", "Lab B", ""]]
    assert canvas_reads(text) == ("Tiny week (77)", "6", {
        "101": "6", "102": "1", "103": "5", "104": "5", "105": ""})
    printed = capsys.readouterr()
    assert printed.err == ("not written: submission_4 (Mallory): mallory@evil.example is no "
                           "roster student's SIS Login ID or SIS User ID\n")
    assert "4 of 5 roster students scored" in printed.out
    assert "1 not written" in printed.out and code == 1


def test_a_roster_student_without_a_submission_keeps_the_score_canvas_has(
        out, week, tmp_path):
    graded_folder(out, week, "ada", q1=1, q2=0, student="Ada", email="ada@uni.edu")
    assert gradebook(out, "--format", "canvas", "--roster",
                     write_roster(tmp_path / "roster.csv")) == 0
    _, _, cells = canvas_reads((out / "canvas.csv").read_text())
    # Dee's 4.5 goes back as it is (a blank would clear it in Canvas), Ada's is ours.
    assert cells == {"101": "1", "102": "", "103": "", "104": "4.5", "105": ""}


def test_without_the_column_in_the_roster_the_weeks_title_makes_a_new_assignment(
        out, week, tmp_path):
    graded_folder(out, week, "ada", student="Ada", email="ada@uni.edu")
    roster = [row[:5] for row in ROSTER]  # an export before the week existed in Canvas
    assert gradebook(out, "--format", "canvas", "--roster",
                     write_roster(tmp_path / "roster.csv", roster)) == 0
    title, points, cells = canvas_reads((out / "canvas.csv").read_text())
    assert (title, points) == ("Tiny week", "6")
    assert cells == {"101": "6", "102": "", "103": "", "104": "", "105": ""}
    assert gradebook(out, "--format", "canvas", "--roster", tmp_path / "roster.csv",
                     "--assignment", "Notebook 1", "--output", tmp_path / "nb1.csv") == 0
    assert canvas_reads((tmp_path / "nb1.csv").read_text())[0] == "Notebook 1"


def test_ambiguous_matches_and_unusable_submissions_are_listed_not_written(
        out, week, tmp_path, capsys):
    roster = [*ROSTER[:3], ["Sam One", "201", "", "sam", "A", "", ""],
              ["Sam Two", "202", "sam", "sam2", "A", "", ""],
              ["Kim", "203", "s203", "kim", "A", "", ""],
              ["Lee", "204", "s204", "lee", "A", "", ""]]
    graded_folder(out, week, "twice_a", student="Kim", email="kim@uni.edu")
    graded_folder(out, week, "twice_b", student="Kim K", email="KIM@other.org")
    graded_folder(out, week, "sam", student="Sam", email="sam@gmail.com")  # two local parts
    graded_folder(out, week, "broken", student="Lee", email="lee@uni.edu", graded=False)
    graded_folder(out, week, "loose")  # a loose notebook: no name, no email
    assert gradebook(out, "--format", "canvas", "--roster",
                     write_roster(tmp_path / "roster.csv", roster)) == 1
    _, _, cells = canvas_reads((out / "canvas.csv").read_text())
    assert cells == {"201": "", "202": "", "203": "", "204": ""}
    assert capsys.readouterr().err.splitlines() == [
        "not written: broken (Lee): not graded (the notebook is not JSON)",
        "not written: loose (no name): no email or student id to find in the roster",
        "not written: sam (Sam): sam@gmail.com matches several roster students "
        "(Sam One (ID 201), Sam Two (ID 202)); none is written",
        "not written: Kim (ID 203) is matched by several submissions (twice_a, twice_b); "
        "none is written"]


def test_an_nbgrader_student_id_matches_the_sis_user_id(out, week, tmp_path):
    graded_folder(out, week, "1815", q1=2, q2=0, student="1815")  # submitted/1815/tiny/
    assert gradebook(out, "--format", "canvas", "--roster",
                     write_roster(tmp_path / "roster.csv")) == 0
    assert canvas_reads((out / "canvas.csv").read_text())[2]["102"] == "2"


def test_names_a_spreadsheet_would_run_are_made_safe_and_ids_stay_exact(
        out, week, tmp_path):
    roster = [ROSTER[0][:6], ['=HYPERLINK("http://x.example","Ada")', "101", "-0042",
                              "ada@uni.edu", "@Lab", ""]]
    graded_folder(out, week, "ada", student="Ada", email="ada@uni.edu")
    gradebook(out, "--format", "canvas", "--roster", write_roster(tmp_path / "r.csv", roster))
    rows = list(csv.reader(io.StringIO((out / "canvas.csv").read_text())))
    assert rows[2] == ["'=HYPERLINK(\"http://x.example\",\"Ada\")", "101", "-0042",
                       "ada@uni.edu", "'@Lab", "6"]


def test_a_semicolon_export_with_a_bom_is_read(out, week, tmp_path):
    graded_folder(out, week, "ada", q1=0, q2=3, student="Ada", email="ada@uni.edu")
    path = write_roster(tmp_path / "roster.csv", delimiter=";")
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())  # Excel's BOM
    assert gradebook(out, "--format", "canvas", "--roster", path) == 0
    assert canvas_reads((out / "canvas.csv").read_text())[2]["101"] == "3"


@pytest.mark.parametrize("content, says", [
    (b"Student,ID,SIS Login ID\nAda,101,ada\n", "no column Section"),
    (b"Student,SIS Login ID,Section\nAda,ada,A\n", "no column ID"),
    (b"Student,ID,Section\nAda,101,A\n", "no column SIS User ID or SIS Login ID"),
    (b"Student,ID,SIS Login ID,Section\nAda,101,ada,A\nBo,101,bo,A\n", "ID 101 is there twice"),
    (b"Student,ID,SIS Login ID,Section\nAda,ada,ada,A\n", "is not a Canvas user id"),
    (b"Student,ID,SIS Login ID,Section\nPoints Possible,,,\n", "no student rows"),
    (b"PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00\xb4\xe7\xa2", "not a CSV file in UTF-8"),
    (b"Student,ID\x00,SIS Login ID,Section\n", "not a CSV file"),
    (b"", "is empty"),
])
def test_a_malformed_roster_is_refused_and_nothing_is_written(out, week, tmp_path,
                                                              content, says):
    graded_folder(out, week, "ada", student="Ada", email="ada@uni.edu")
    (tmp_path / "roster.csv").write_bytes(content)
    with pytest.raises(RosterError, match=re.escape(says)):
        gradebook(out, "--format", "canvas", "--roster", tmp_path / "roster.csv")
    assert not (out / "canvas.csv").exists()


def test_an_assignment_title_the_roster_has_twice_must_be_named_with_its_id(
        out, week, tmp_path):
    graded_folder(out, week, "ada", student="Ada", email="ada@uni.edu")
    roster = [[*ROSTER[0][:6], "Tiny week (78)"], [*ROSTER[3][:6], "2"]]
    path = write_roster(tmp_path / "roster.csv", roster)
    with pytest.raises(RosterError, match=re.escape("--assignment 'Tiny week (77)'")):
        gradebook(out, "--format", "canvas", "--roster", path)
    assert not (out / "canvas.csv").exists()
    assert gradebook(out, "--format", "canvas", "--roster", path,
                     "--assignment", "Tiny week (78)") == 0
    assert canvas_reads((out / "canvas.csv").read_text())[:2] == ("Tiny week (78)", "6")


def test_canvas_needs_a_roster_and_a_graded_folder(out, week, tmp_path, capsys):
    graded_folder(out, week, "ada", student="Ada", email="ada@uni.edu")
    assert gradebook(out, "--format", "canvas") == 2
    assert "--format canvas needs --roster" in capsys.readouterr().err
    with pytest.raises(AutograderError, match="not one week's graded folder"):
        gradebook(tmp_path, "--format", "canvas", "--roster", write_roster(tmp_path / "r.csv"))


def test_the_default_format_writes_the_class_gradebook_again(out, week, tmp_path):
    graded_folder(out, week, "ada", q1=2, q2=3, student="Ada", email="ada@uni.edu")
    assert gradebook(out) == 0
    rows = list(csv.DictReader(io.StringIO((out / "gradebook.csv").read_text())))
    assert [(r["submission"], r["total"], r["student"]) for r in rows] == [("ada", "5", "Ada")]
    assert (out / "summary.csv").exists()
    assert gradebook(out, "--output", tmp_path / "copy.csv") == 0
    assert (tmp_path / "copy.csv").read_text() == (out / "gradebook.csv").read_text()
