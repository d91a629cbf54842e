"""Written answers, graded by TAs: compiled into the manifest and never released,
recorded at grading, exported as safe pages and a sheet, imported back as manual entries
that a regrade keeps. The gradings here use a stand-in grader (the checks of week 2 with
fixed scores, no kernel), so the round trip runs in seconds; the real gradings' folders
are exported in tests/test_week2_grading.py."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pytest
from conftest import ROOT

from autograder.batch import Batch
from autograder.compiler import compile_week
from autograder.errors import CompileError
from autograder.grading.results import CheckResult, GradingResult, read_results, write_results
from autograder.submissions import Submission
from autograder.weeks import Course, Manifest
from autograder.written.pages import render_markdown
from autograder.written.pdf import page_count
from autograder.written.questions import SOLUTION, written_of
from autograder.written.roundtrip import export_written, import_written

WEEK2 = Course(ROOT).built_week("week2")
HOSTILE = {
    "script": "<script>document.title = 'pwned'; alert(1)</script>",
    "handler": '<img src="x" onerror="document.title=\'pwned\'"> and <b onmouseover="alert(1)">b</b>',
    "javascript link": "[click me](javascript:document.title='pwned') and "
                       "[again](JaVaScRiPt:alert(1)) and <a href=\"javascript:alert(1)\">raw</a>",
    "math": r"$\text{<script>alert(1)</script>}$ and $\href{javascript:alert(1)}{x}$",
    "svg": "<svg onload=alert(1)><circle r=5></circle></svg>",
    "style": "<style>body{background:url(https://tracker.example/x)}</style>",
    "image": "![tracker](https://tracker.example/pixel.png)",
    "iframe": '<iframe src="https://evil.example"></iframe>',
}


# -- compiling ------------------------------------------------------------------------
@pytest.mark.parametrize("week,expected", [
    ("week1", {}), ("week2", {"q3": 2}), ("week3", {"q1": 2, "q2": 3, "q3": 2}),
    ("week4", {"q1": 2, "q2": 2})])
def test_written_questions_reach_the_manifest_and_not_the_release(week, expected):
    built = Course(ROOT).built_week(week)
    written = Manifest.load(built).written
    assert {w.question: w.points for w in written} == expected
    release = nbformat.read(ROOT / "release" / week / f"{week}.ipynb", as_version=4)
    text = "\n".join(cell.source for cell in release.cells)
    for question in written:
        assert question.rubric and question.reference and question.prompt
        for line in (question.rubric + "\n" + question.reference).splitlines():
            if len(line.strip()) > 20:
                assert line.strip() not in text
        cell = next(c for c in release.cells
                    if c.metadata.get("nbgrader", {}).get("grade_id") == question.cell)
        # nbgrader's manually graded answer cell, with the stub to replace
        assert cell.cell_type == "markdown" and cell.source == "YOUR ANSWER HERE"
        assert cell.metadata.nbgrader["grade"] and cell.metadata.nbgrader["solution"]
        assert cell.metadata.nbgrader["points"] == question.points


def test_week2s_word_count_point_is_gone():
    checks = Manifest.load(WEEK2).checks
    assert not [c for c in checks if "written" in c["name"].lower()]
    assert "answer_words" not in WEEK2.thresholds


def _source_copy(tmp_path, week="week2"):
    shutil.copytree(ROOT / "source" / week, tmp_path / "source" / week)
    return tmp_path / "source" / week / f"{week}.ipynb"


def _edit_answer_cell(path: Path, grade_id: str, edit) -> None:
    nb = nbformat.read(path, as_version=4)
    cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)
    edit(cell)
    nbformat.write(nb, path)


@pytest.mark.parametrize("edit,says", [
    (lambda cell: cell.metadata.nbgrader.pop("points"), "needs points > 0"),
    (lambda cell: setattr(cell, "source", cell.source.replace("### RUBRIC", "RUBRIC:")),
     "'### RUBRIC'"),
])
def test_a_malformed_written_cell_is_refused(tmp_path, edit, says):
    _edit_answer_cell(_source_copy(tmp_path), "q3_answer", edit)
    with pytest.raises(CompileError, match=says.replace("(", r"\(").replace(")", r"\)")):
        compile_week(Course(tmp_path), "week2", verify=False, log=lambda *_: None)


def test_a_written_cell_of_no_question_is_refused(tmp_path):
    _source_copy(tmp_path)
    config = tmp_path / "source" / "week2" / "week.toml"
    config.write_text(config.read_text().replace('cells = ["q3", "q3_answer"]', 'cells = ["q3"]'))
    with pytest.raises(CompileError, match="'q3_answer' belongs to no question"):
        compile_week(Course(tmp_path), "week2", verify=False, log=lambda *_: None)


def test_a_rubric_line_outside_the_solution_region_is_a_leak(tmp_path):
    notebook = _source_copy(tmp_path)
    nb = nbformat.read(notebook, as_version=4)
    cell = next(c for c in nb.cells if c.metadata["nbgrader"]["grade_id"] == "q3_answer")
    rubric_line = next(line for line in SOLUTION.search(cell.source).group(1).splitlines()
                       if "0 points for a description" in line)
    prompt = next(c for c in nb.cells if c.metadata["nbgrader"]["grade_id"] == "q3_question")
    prompt.source += "\n" + rubric_line
    nbformat.write(nb, notebook)
    with pytest.raises(CompileError, match="would reach"):
        compile_week(Course(tmp_path), "week2", verify=False, log=lambda *_: None)


# -- safe rendering ----------------------------------------------------------------------
class Elements(HTMLParser):
    """Every element of a page: (tag, attributes)."""

    def __init__(self, text: str):
        super().__init__()
        self.found: list[tuple[str, dict]] = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.found.append((tag, dict(attrs)))


@pytest.mark.parametrize("attack", HOSTILE)
def test_hostile_markdown_is_shown_not_run(attack):
    elements = Elements(render_markdown(HOSTILE[attack])).found
    tags = {tag for tag, _ in elements}
    assert not tags & {"script", "img", "svg", "style", "iframe", "object", "embed", "b"}
    for tag, attributes in elements:
        assert not [a for a in attributes if a.startswith("on") or a in ("src", "style")]
        assert not attributes.get("href", "https:").lower().strip().startswith(
            ("javascript:", "data:", "vbscript:"))
    # What the student wrote is still there for the TA to read, as text.
    assert "alert(1)" in render_markdown(HOSTILE[attack]) or attack in (
        "style", "image", "iframe", "javascript link")


def test_math_becomes_mathml_and_links_stay_when_safe():
    rendered = render_markdown(r"The loss is $\frac{1}{n}\sum_i e_i^2$; see "
                               "[the notes](https://example.org/notes).\n\n$$x^2$$")
    assert '<math xmlns="http://www.w3.org/1998/Math/MathML" display="inline">' in rendered
    assert "<mfrac>" in rendered and 'display="block"' in rendered
    assert '<a href="https://example.org/notes" rel="noreferrer nofollow">' in rendered


# -- the round trip, with a stand-in grader ------------------------------------------------
def stand_in_grader(week, notebook, results_path, log=None, **_):
    """Week 2's checks, all passed but those of q1 (no kernel: seconds, not minutes)."""
    checks = []
    for check in Manifest.load(week).checks:
        entry = CheckResult(question=check["question"], check=check["name"].split(": ", 1)[1],
                            max_score=check["points"], name=check["name"])
        entry.passed() if check["question"] != "q1" else entry.failed("too far off")
        checks.append(entry)
    result = GradingResult.of(week, checks, seconds=1.0, extra={"final": True})
    write_results(results_path, result)
    Path(log).write_text("stand-in grader\n")
    return result


def answered(tmp_path: Path, name: str, answer: str | None) -> Submission:
    nb = nbformat.read(ROOT / "release" / "week2" / "week2.ipynb", as_version=4)
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == "q3_answer" and answer is not None:
            cell.source = answer
    path = tmp_path / "in" / f"{name}.ipynb"
    path.parent.mkdir(exist_ok=True)
    nbformat.write(nb, path)
    return Submission(name=name, notebook=path, student=name.title(), email=f"{name}@uni.example")


@pytest.fixture
def graded(tmp_path):
    """A graded week-2 folder of four submissions: two answers, an unanswered cell, and
    one of the hostile answers."""
    subs = [answered(tmp_path, "ada", "Outside $[0, 2]$ the **supervised** model flattens."),
            answered(tmp_path, "bo", "The two leave the exact solution; no data beyond 2."),
            answered(tmp_path, "cy", None),
            answered(tmp_path, "eve", "\n\n".join(HOSTILE.values()))]
    out = tmp_path / "out"
    Batch(WEEK2, out, stand_in_grader).run(subs)
    return out, subs


def fill(out: Path, points: dict[str, str], comments: dict[str, str] | None = None) -> Path:
    """The exported sheet with ``points`` (by submission name) filled in."""
    key = json.loads((out / "written" / "key.json").read_text())
    name_of = {label: name for name, label in key["sheet"].items()}
    rows = list(csv.reader(io.StringIO((out / "written" / "written.csv").read_text())))
    for row in rows[1:]:
        name = name_of[row[0]]
        row[2] = points.get(name, row[2])
        row[3] = (comments or {}).get(name, row[3])
    sheet = out.parent / "filled.csv"
    with open(sheet, "w", newline="") as handle:
        csv.writer(handle).writerows(rows)
    return sheet


def folder_digest(out: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in out.rglob("*") if p.is_file() and ".batch.lock" not in p.name):
        digest.update(str(path.relative_to(out)).encode() + path.read_bytes())
    return digest.hexdigest()


def test_export_writes_anonymised_pages_and_a_sheet(graded):
    out, _ = graded
    done = export_written(WEEK2, out)
    assert [p.name for p in done.pages] == ["q3.html"] and done.to_grade == 4
    page = (out / "written" / "q3.html").read_text()
    sections = [attributes["id"] for tag, attributes in Elements(page).found
                if tag == "section"]
    assert len(sections) == 4 and all(re.fullmatch(r"answer-\d\d", s) for s in sections)
    for name in ("ada", "bo", "cy", "eve"):  # anonymised: no name, student or email
        assert f">{name}<" not in page and name.title() not in page and "@uni" not in page
    assert "Outside" in page and "<strong>supervised</strong>" in page and "<math" in page
    assert "(no answer)" in page  # cy left the stub
    assert "Rubric" in page and "0 points for a description" in page  # the TA sees the rubric
    assert "Content-Security-Policy" in page and "script-src" not in page  # default-src 'none'
    rows = list(csv.DictReader(io.StringIO((out / "written" / "written.csv").read_text())))
    assert list(rows[0]) == ["submission", "question", "points", "comment"]
    assert sorted(r["submission"] for r in rows) == [r["submission"] for r in rows]
    assert {r["question"] for r in rows} == {"q3"} and len(rows) == 4
    labels = json.loads((out / "written" / "key.json").read_text())["labels"]
    again = export_written(WEEK2, out)  # labels are kept across exports
    assert json.loads((out / "written" / "key.json").read_text())["labels"] == labels
    assert again.to_grade == 4


def test_import_adds_manual_entries_everywhere_and_a_regrade_keeps_them(graded):
    out, subs = graded
    export_written(WEEK2, out)
    before = {s.name: read_results(out / s.name / "results.json") for s in subs}
    sheet = fill(out, {"ada": "2", "bo": "1.5", "eve": "0"},
                 {"bo": "=HYPERLINK(\"x\") the reason is missing", "ada": "clear"})
    done = import_written(WEEK2, out, sheet)
    assert not done.errors and done.scored == 3
    assert [m.split()[1] for m in done.missing] == ["q3"]  # cy's answer is not graded yet
    for sub in subs:
        result = read_results(out / sub.name / "results.json")
        auto = [c for c in result.checks if not c.manual]
        assert [c.to_json() for c in auto] == [c.to_json() for c in before[sub.name].checks]
        manual = [c for c in result.checks if c.manual]
        expected = {"ada": 2, "bo": 1.5, "eve": 0}.get(sub.name)
        assert [c.score for c in manual] == ([expected] if expected is not None else [])
        assert result.score == before[sub.name].score + (expected or 0)
    bo = read_results(out / "bo" / "results.json")
    entry = next(c for c in bo.checks if c.manual)
    assert entry.name == "q3 (Extrapolation to [0, 5]): written answer, graded by a TA"
    assert entry.output == "=HYPERLINK(\"x\") the reason is missing" and entry.max_score == 2
    assert "the reason is missing" in (out / "bo" / "feedback.html").read_text()
    gradebook = {row["submission"]: row for row in csv.DictReader(
        open(out / "gradebook.csv"))}
    assert float(gradebook["ada"]["q3"]) == before["ada"].question_scores()["q3"][0] + 2
    summary = {row["question"]: row for row in csv.DictReader(open(out / "summary.csv"))}
    assert float(summary["q3"]["points"]) == max(
        r.question_scores()["q3"][1] for r in before.values()) + 2
    # A re-export shows the scores given, and only cy's answer left to grade.
    assert export_written(WEEK2, out).to_grade == 1

    Batch(WEEK2, out, stand_in_grader, regrade=True).run(subs)
    for sub in subs:
        again = read_results(out / sub.name / "results.json")
        assert [c.score for c in again.checks if c.manual] == (
            [{"ada": 2, "bo": 1.5, "eve": 0}[sub.name]] if sub.name != "cy" else [])


def test_a_changed_answer_loses_its_old_score(graded, tmp_path):
    out, subs = graded
    export_written(WEEK2, out)
    import_written(WEEK2, out, fill(out, {"ada": "2"}))
    resubmitted = answered(tmp_path, "ada", "A different answer, written later.")
    Batch(WEEK2, out, stand_in_grader).run([resubmitted])
    result = read_results(out / "ada" / "results.json")
    assert not [c for c in result.checks if c.manual]
    assert "changed since a TA graded it" in result.output
    assert export_written(WEEK2, out).to_grade == 4


@pytest.mark.parametrize("problem,says", [
    (lambda rows: rows[0].__setitem__(2, "score"), "no column(s) points"),
    (lambda rows: rows[1].__setitem__(0, "answer-99x"), "unknown submission"),
    (lambda rows: rows[1].__setitem__(1, "q1"), "unknown question 'q1'"),
    (lambda rows: rows[1].__setitem__(2, "3"), "not a number from 0 to 2"),
    (lambda rows: rows[1].__setitem__(2, "-1"), "not a number from 0 to 2"),
    (lambda rows: rows[1].__setitem__(2, "two"), "not a number from 0 to 2"),
    (lambda rows: rows[1].__setitem__(2, "nan"), "not a number from 0 to 2"),
    (lambda rows: rows.append(list(rows[1])), "again (first on row 2)"),
])
def test_a_malformed_sheet_is_refused_and_changes_nothing(graded, problem, says):
    out, _ = graded
    export_written(WEEK2, out)
    sheet = fill(out, {"ada": "1", "bo": "1", "cy": "0", "eve": "0"})
    rows = list(csv.reader(open(sheet)))
    problem(rows)
    with open(sheet, "w", newline="") as handle:
        csv.writer(handle).writerows(rows)
    unchanged = folder_digest(out)
    run = subprocess.run([sys.executable, "-m", "autograder.cli", "written", "import", "week2",
                          str(out), str(sheet)], capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 2, run.stderr
    assert "was not imported, nothing changed" in run.stderr and says in run.stderr
    assert folder_digest(out) == unchanged


def test_a_sheet_that_is_not_csv_is_refused(graded, tmp_path):
    out, _ = graded
    export_written(WEEK2, out)
    binary = tmp_path / "sheet.xlsx"
    binary.write_bytes(b"PK\x03\x04\xff\xfe\x00garbage")
    done = import_written(WEEK2, out, binary)
    assert done.errors and "UTF-8 CSV" in done.errors[0]
    assert not (out / "written" / "scores.json").exists()


def test_import_before_export_says_what_to_do(graded, tmp_path):
    out, _ = graded
    sheet = tmp_path / "written.csv"
    sheet.write_text("submission,question,points,comment\n")
    assert "run `autograder written export week2" in import_written(WEEK2, out, sheet).errors[0]


def test_written_answers_are_recorded_as_text_when_graded(graded):
    out, _ = graded
    recorded = json.loads((out / "eve" / "written.json").read_text())["answers"]["q3"]
    assert recorded["cell"] == "q3_answer" and "<script>" in recorded["text"]  # kept as text
    assert json.loads((out / "cy" / "written.json").read_text())["answers"]["q3"]["text"] == ""


# -- in a browser ------------------------------------------------------------------------------
def test_no_script_runs_on_the_exported_page_in_a_browser(graded):
    """Chromium opens the page with every hostile answer: the title stays, no dialog
    opens, no element carries an event handler or a javascript: link."""
    playwright = pytest.importorskip("playwright.sync_api")
    chromium = shutil.which("chromium")
    assert chromium, "Debian's chromium is needed (scripts/test installs it)"
    out, _ = graded
    export_written(WEEK2, out, anonymise=False)
    page_path = out / "written" / "q3.html"
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True,
                                    args=["--no-sandbox"])
        page = browser.new_page()
        dialogs, requests = [], []
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        page.on("request", lambda request: requests.append(request.url))
        page.goto(page_path.as_uri())
        page.wait_for_timeout(500)
        for link in page.locator("section.answer a").all():
            link.click(modifiers=[], no_wait_after=True, timeout=2000)
        page.mouse.move(10, 10)
        page.wait_for_timeout(300)
        title = page.title()
        handlers = page.evaluate("""() => [...document.querySelectorAll('*')].flatMap(e =>
            [...e.attributes].filter(a => a.name.startsWith('on') ||
              /^\\s*javascript:/i.test(a.value)).map(a => e.tagName + ' ' + a.name))""")
        eve = page.locator("section#eve").inner_text()
        browser.close()
    assert title == "q3: written answers" and not dialogs and not handlers
    assert [url for url in requests if not url.startswith("file:")] == []
    assert "<script>document.title" in eve  # shown as text, for the TA to see


def test_pdf_has_one_page_per_question_even_for_a_long_answer(graded, tmp_path):
    if not shutil.which("chromium"):
        pytest.fail("Debian's chromium is needed (scripts/test installs it)")
    out, subs = graded
    long_answer = "\n\n".join(f"Paragraph {n}: " + "the supervised model flattens " * 30
                              for n in range(12))
    Batch(WEEK2, out, stand_in_grader).run([answered(tmp_path, "ada", long_answer)])
    done = export_written(WEEK2, out, as_pdf=True)
    assert sorted(p.name for p in done.pdfs) == [f"{s.name}.pdf" for s in subs]
    for path in done.pdfs:
        assert page_count(path.read_bytes()) == len(written_of(WEEK2)) == 1
    assert not done.notes
