"""`autograder grade` on a class: the three input kinds, unsafe inputs, parallel
workers, resuming after SIGKILL, the gradebook and the class summary. Uses a
tiny synthetic week (batch_fixtures.py) so a grading takes seconds."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import time
import zipfile
from pathlib import Path

import pytest
from batch_fixtures import (HIDDEN_MARKER, ROOT, course_env, grade_command, gradescope_zip,
                            make_course, notebook_text, run_grade)

from autograder.batch import Progress, kill_leftovers, processes_using
from autograder.submissions import discover
from autograder.weeks import Week

SLEEP = "import time\ntime.sleep(4)"


@pytest.fixture
def course(tmp_path):
    return make_course(tmp_path / "course")


@pytest.fixture
def week(course):
    return Week.load(course / "assignments" / "tiny")


def nbgrader_tree(root: Path, students: dict[str, str]) -> Path:
    for student, text in students.items():
        folder = root / "submitted" / student / "tiny"
        folder.mkdir(parents=True)
        (folder / "tiny.ipynb").write_text(text)
        (folder / "timestamp.txt").write_text("2025-01-10 17:22:41")
    return root


# -- finding submissions (no grading) -------------------------------------------
def test_finds_folder_gradescope_zip_and_nbgrader_submissions(tmp_path, week):
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "ann.ipynb").write_text(notebook_text(0.5, "cat"))
    (folder / "notes.txt").write_text("not a notebook")
    export = gradescope_zip(tmp_path / "export.zip", {
        "submission_101": ("Bo Li", "bo@example.org", {"tiny.ipynb": notebook_text(0.3, "dog"),
                                                        "README.md": "hello"}),
        "submission_102": ("Cy Ng", "cy@example.org", {"work/tiny.ipynb": notebook_text(1, "cat"),
                                                        "scratch.ipynb": "{}"}),
        "submission_103": ("Di Ro", "di@example.org", {"a.ipynb": "{}", "b.ipynb": "{}"}),
        "submission_104": ("Ed Po", "ed@example.org", {"answers.py": "x = 1"}),
    })
    tree = nbgrader_tree(tmp_path / "nbgrader", {"fay": notebook_text(0.4, "cat")})

    found = discover([folder, export, tree], week, tmp_path / "staging")

    by_name = {s.name: s for s in found.submissions}
    assert sorted(by_name) == ["ann", "fay", "submission_101", "submission_102"]
    assert (by_name["submission_101"].student, by_name["submission_101"].email) == (
        "Bo Li", "bo@example.org")
    # The week's notebook by name wins over another notebook in the same upload.
    assert "score = 1" in by_name["submission_102"].notebook.read_text()
    assert by_name["submission_102"].notebook.is_relative_to(tmp_path / "staging")
    assert by_name["fay"].student == "fay"
    skipped = "\n".join(found.skipped)
    assert "notes.txt: ignored, not a notebook" in skipped
    assert "submission_101 (Bo Li): ignored README.md (not a notebook)" in skipped
    assert "submission_103 (Di Ro): not graded, 2 notebooks and none is named tiny.ipynb" in skipped
    assert "submission_104 (Ed Po): not graded, no notebook (.ipynb) in it" in skipped


def test_a_bundle_is_found_beside_its_notebook(tmp_path, week):
    """<notebook>.bundle.zip beside any notebook; <week>.bundle.zip only beside the one
    notebook of a folder (a student's own folder, an nbgrader tree); never a link."""
    folder = tmp_path / "folder"
    folder.mkdir()
    for name in ("ann", "bo", "cy"):
        (folder / f"{name}.ipynb").write_text(notebook_text(0.5, "cat"))
    (folder / "ann.bundle.zip").write_bytes(b"ann's")
    (folder / "tiny.bundle.zip").write_bytes(b"whose?")  # three notebooks: nobody's
    (folder / "cy.bundle.zip").symlink_to("/etc/passwd")
    tree = nbgrader_tree(tmp_path / "nbgrader", {"fay": notebook_text(0.4, "cat"),
                                                 "gus": notebook_text(0.4, "cat")})
    (tree / "submitted/fay/tiny/tiny.bundle.zip").write_bytes(b"fay's")
    export = gradescope_zip(tmp_path / "export.zip", {
        "submission_101": ("Hal", "hal@example.org", {"tiny.ipynb": notebook_text(0.3, "dog"),
                                                       "tiny.bundle.zip": "hal's"}),
        "submission_102": ("Ida", "ida@example.org", {"work/mine.ipynb": notebook_text(1, "a"),
                                                       "work/tiny.bundle.zip": "ida's"}),
        "submission_103": ("Jo", "jo@example.org", {"tiny.ipynb": notebook_text(1, "a")}),
    })

    found = discover([folder, tree, export], week, tmp_path / "staging")

    bundles = {s.name: s.bundle and s.bundle.read_bytes() for s in found.submissions}
    assert bundles == {"ann": b"ann's", "bo": None, "cy": None, "fay": b"fay's", "gus": None,
                       "submission_101": b"hal's", "submission_102": b"ida's",
                       "submission_103": None}
    skipped = "\n".join(found.skipped)
    assert "cy.bundle.zip: refused, a symbolic link" in skipped
    assert "bundle.zip" not in skipped.replace("cy.bundle.zip: refused", "")


def test_unsafe_zip_entries_are_refused_and_the_rest_is_graded(tmp_path, week):
    export = gradescope_zip(
        tmp_path / "export.zip",
        {"submission_1": ("Ok Student", "ok@example.org", {"tiny.ipynb": notebook_text(1, "cat")}),
         "submission_2": ("Big File", "big@example.org", {"tiny.ipynb": " " * 5000})},
        extra_entries={"../escaped.ipynb": "{}", "/etc/absolute.ipynb": "{}",
                       "assignment_4242_export/submission_3/../../../up.ipynb": "{}"})
    with zipfile.ZipFile(export, "a") as archive:
        link = zipfile.ZipInfo("assignment_4242_export/submission_4/tiny.ipynb")
        link.external_attr = 0o120777 << 16  # a symbolic link to a file outside
        archive.writestr(link, "/etc/passwd")
    staging = tmp_path / "inputs" / "staging"

    found = discover([export], week, staging, max_bytes=4000)

    assert [s.name for s in found.submissions] == ["submission_1"]
    skipped = "\n".join(found.skipped)
    assert "refused entry '../escaped.ipynb': its path leaves the archive" in skipped
    assert "refused entry '/etc/absolute.ipynb': an absolute path" in skipped
    assert "up.ipynb': its path leaves the archive" in skipped
    assert "submission_4/tiny.ipynb': a symbolic link" in skipped
    assert "submission_2 (Big File)/tiny.ipynb: refused, 5,000 bytes is more than the 4,000 bytes limit" in skipped
    written = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")
                     if p.is_file() and "course" not in p.parts)
    assert written == ["export.zip", "inputs/staging/submission_1/tiny.ipynb"]


def test_archives_that_are_not_exports_are_skipped_with_a_reason(tmp_path, week):
    plain = tmp_path / "plain.zip"
    with zipfile.ZipFile(plain, "w") as archive:
        archive.writestr("tiny.ipynb", notebook_text(1, "cat"))
    fake = tmp_path / "fake.zip"
    fake.write_text("not a zip at all")
    found = discover([plain, fake, tmp_path / "missing.ipynb"], week, tmp_path / "staging")
    assert found.submissions == []
    assert found.skipped == [
        f"{plain}: not a Gradescope export (it has no submission_metadata.yml at its top); "
        "nothing graded from it",
        f"{fake}: not a notebook (.ipynb), a folder or a zip",
        f"{tmp_path / 'missing.ipynb'}: does not exist"]


# -- grading ------------------------------------------------------------------------
@pytest.mark.grading
def test_grades_every_kind_in_parallel_and_summarises_the_class(tmp_path, course):
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "ann.ipynb").write_text(notebook_text(0.5, "cat"))  # 3 + 2
    (folder / "broken.ipynb").write_text("this is not json")  # 0 + 0
    export = gradescope_zip(tmp_path / "export.zip", {
        "submission_101": ("Bo Li", "=HYPERLINK(\"x\")", {"tiny.ipynb": notebook_text(0.35, "dog")}),
    })
    tree = nbgrader_tree(tmp_path / "nbgrader", {"fay": notebook_text(0.45, "cat")})
    out = tmp_path / "out"

    run = run_grade(course, str(folder), str(export), str(tree), "--out", str(out), "--jobs", "2")

    assert run.returncode == 0, run.stderr
    rows = {r["submission"]: r for r in csv.DictReader((out / "gradebook.csv").open())}
    assert {n: (r["q1"], r["q2"], r["total"], r["max"]) for n, r in rows.items()} == {
        "ann": ("3", "2", "5", "6"), "broken": ("0", "0", "0", "6"),
        "fay": ("2", "2", "4", "6"), "submission_101": ("1", "0", "1", "6")}
    assert rows["submission_101"]["student"] == "Bo Li"
    assert rows["submission_101"]["email"] == "'=HYPERLINK(\"x\")"  # no formula in a spreadsheet
    assert "ann             3/3  2/3  5/6" in run.stdout
    # Class summary: q1 scores 3, 0, 2, 1 of 3 points; q2 2, 0, 2, 0 of 3; totals 5, 0, 4, 1.
    summary = list(csv.DictReader((out / "summary.csv").open()))
    assert [(r["question"], r["points"], r["n"], r["mean"], r["min"], r["median"], r["max"])
            for r in summary] == [("q1", "3", "4", "1.50", "0", "1.5", "3"),
                                  ("q2", "3", "4", "1.00", "0", "1", "2"),
                                  ("total", "6", "4", "2.50", "0", "2.5", "5")]
    assert [[r[k] for k in ("0-19%", "20-39%", "40-59%", "60-79%", "80-100%")]
            for r in summary] == [["1", "1", "0", "1", "1"], ["2", "0", "0", "2", "0"],
                                  ["2", "0", "0", "1", "1"]]
    assert "total     6       2.50  0    2.5     5    2      0       0       1       1" in run.stdout
    for name in rows:
        page = (out / name / "feedback.html").read_text()
        assert HIDDEN_MARKER not in page and "Traceback" not in page
    assert "is not a valid Jupyter notebook" in (out / "broken" / "feedback.html").read_text()
    assert "skipped" not in run.stderr

    # A rerun keeps every result; a changed notebook alone is graded again.
    kept = {n: (out / n / "results.json").stat().st_mtime_ns for n in rows}
    (folder / "ann.ipynb").write_text(notebook_text(0.3, "cat"))
    again = run_grade(course, str(folder), str(export), str(tree), "--out", str(out))
    assert again.returncode == 0, again.stderr
    assert "3 of 4 already graded" in again.stderr
    changed = [n for n in rows if (out / n / "results.json").stat().st_mtime_ns != kept[n]]
    assert changed == ["ann"]
    rows = {r["submission"]: r["total"] for r in csv.DictReader((out / "gradebook.csv").open())}
    assert rows == {"ann": "3", "broken": "0", "fay": "4", "submission_101": "1"}


@pytest.mark.grading
def test_sigkill_then_rerun_finishes_without_losing_or_duplicating(tmp_path, course):
    folder = tmp_path / "class"
    folder.mkdir()
    (folder / "a0.ipynb").write_text(notebook_text(0.5, "cat"))
    for name in ("b1", "b2", "b3"):
        (folder / f"{name}.ipynb").write_text(notebook_text(0.5, "cat", SLEEP))
    out = tmp_path / "out"
    partial = out / ".partial"
    log = open(tmp_path / "first.log", "w")
    first = subprocess.Popen(grade_command(str(folder), "--out", str(out), "--jobs", "2"),
                             cwd=ROOT, env=course_env(course), stdout=log, stderr=log,
                             start_new_session=True)
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            in_flight = partial.is_dir() and any(partial.iterdir())
            if (out / "a0" / "submission.json").exists() and in_flight:
                break
            assert first.poll() is None, (tmp_path / "first.log").read_text()
            time.sleep(0.2)
        else:
            pytest.fail("no grading was in flight in time")
        os.killpg(first.pid, signal.SIGKILL)  # the batch and all of its process group
        first.wait()
        finished = {n: (out / n / "results.json").stat() for n in ("a0", "b1", "b2", "b3")
                    if (out / n / "submission.json").exists()}
        assert "a0" in finished and len(finished) < 4
        # The gradings in flight lead process groups of their own: they outlive the batch.
        orphans = processes_using(partial)

        rerun = run_grade(course, str(folder), "--out", str(out), "--jobs", "2")

        assert rerun.returncode == 0, rerun.stderr
        assert f"{len(finished)} of 4 already graded" in rerun.stderr
        for name in ("a0", "b1", "b2", "b3"):
            results = json.loads((out / name / "results.json").read_text())
            assert results["extra_data"]["final"] is True and results["score"] == 5, name
            assert json.loads((out / name / "submission.json").read_text())["name"] == name
        for name, before in finished.items():  # not graded again
            after = (out / name / "results.json").stat()
            assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
        rows = [r["submission"] for r in csv.DictReader((out / "gradebook.csv").open())]
        assert rows == ["a0", "b1", "b2", "b3"]
        assert list(partial.iterdir()) == []
        assert orphans and processes_using(partial) == []  # the rerun stopped them
        assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == [
            "a0", "b1", "b2", "b3", "gradebook.csv", "summary.csv"]
    finally:
        log.close()
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
        # Nothing of the killed batch may outlive the test (the rerun killed it already).
        assert kill_leftovers(partial) == []


@pytest.mark.grading
def test_a_second_batch_on_the_same_output_is_refused(tmp_path, course):
    import fcntl

    out = tmp_path / "out"
    out.mkdir()
    (tmp_path / "a.ipynb").write_text(notebook_text(0.5, "cat"))
    with open(out / ".batch.lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        run = run_grade(course, str(tmp_path / "a.ipynb"), "--out", str(out))
    assert run.returncode != 0
    assert "another `autograder grade` is writing to" in run.stderr
    assert not (out / "a").exists()


def test_progress_bar_on_a_terminal_and_lines_in_a_log():
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    terminal, log = Terminal(), io.StringIO()
    for stream in (terminal, log):
        progress = Progress(4, stream=stream)
        progress.start(4, done=1)
        progress.started("ann")
        progress.finished("ann", "5 points")
        progress.close()
    assert "\r\033[K[###############...............] 2/4 graded, 0 running" in terminal.getvalue()
    assert log.getvalue() == ("1 of 4 already graded (same notebook, same tests): kept\n"
                              "grading ann ...\n[2/4] ann: 5 points\n")


def test_an_unzipped_gradescope_export_is_read_like_the_zip(tmp_path, week):
    export = gradescope_zip(tmp_path / "export.zip", {
        "submission_7": ("Gil Ho", "gil@example.org", {"tiny.ipynb": notebook_text(1, "cat")})})
    with zipfile.ZipFile(export) as archive:
        archive.extractall(tmp_path / "unzipped")
    found = discover([tmp_path / "unzipped"], week, tmp_path / "staging")
    [submission] = found.submissions
    assert (submission.name, submission.student, submission.email) == (
        "submission_7", "Gil Ho", "gil@example.org")
    assert submission.notebook == (
        tmp_path / "unzipped/assignment_4242_export/submission_7/tiny.ipynb")
