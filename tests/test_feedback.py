"""The per-student feedback page: scores, messages, the student's own figures,
everything escaped, nothing of the hidden tests."""

from __future__ import annotations

import base64
import io
import re
from pathlib import Path

import matplotlib
import nbformat
import pytest
from markupsafe import escape
from batch_fixtures import HIDDEN_MARKER, make_course, tiny_notebook
from nbformat.v4 import new_code_cell, new_notebook, new_output

from autograder.batch import Batch
from autograder.submissions import Submission
from autograder.feedback import render_feedback
from autograder.grading.results import GradingResult
from autograder.grading.runner import grade_notebook
from autograder.weeks import Week

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

HOSTILE = "<script>alert('x')</script>"

# A plot made the usual way: in the sandbox (Agg backend) plt.show() displays
# nothing and the figure stays open; the grader renders it for the feedback page.
SHOW_PLOT = """
import matplotlib.pyplot as plt
plt.plot([0, 1, 2], [2, 0, 1])
plt.show()
"""


@pytest.fixture
def week(tmp_path) -> Week:
    return Week.load(make_course(tmp_path / "course") / "assignments" / "tiny")


def png() -> bytes:
    figure = plt.figure(figsize=(1, 1))
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return buffer.getvalue()


def test_student_text_is_escaped_and_only_real_images_are_shown(tmp_path, week):
    image = png()
    executed = tmp_path / "executed.ipynb"
    cell = new_code_cell("plot()")
    cell.outputs = [
        new_output("display_data", data={"image/png": base64.b64encode(image).decode(),
                                         "text/plain": HOSTILE}),
        # Not base64 of a PNG: an attribute break-out attempt, a JPEG labelled PNG, SVG.
        new_output("display_data", data={"image/png": '"><script>alert(1)</script>'}),
        new_output("display_data", data={"image/png": base64.b64encode(b"GIF89a...").decode()}),
        new_output("display_data", data={"image/svg+xml": f"<svg>{HOSTILE}</svg>"}),
        new_output("stream", name="stdout", text=HOSTILE),
    ]
    nbformat.write(new_notebook(cells=[new_code_cell("x = 1"), cell]), executed)
    results = {
        "score": 1.0,
        "tests": [
            {"name": f"q1 (A number): {HOSTILE}", "score": 1.0, "max_score": 1.0,
             "status": "passed", "output": "", "visibility": "visible",
             "extra_data": {"question": "q1", "check": HOSTILE}},
            {"name": "q2 (A label): The label is 'cat'", "score": 0.0, "max_score": 2.0,
             "status": "failed", "output": f"the label is {HOSTILE!r}, not 'cat'",
             "visibility": "visible",
             "extra_data": {"question": "q2", "check": "The label is 'cat'"}},
            {"name": "q2 (A label): secret check", "score": 0.0, "max_score": 1.0,
             "status": "failed", "output": "secret message", "visibility": "hidden",
             "extra_data": {"question": "q2", "check": "secret check"}},
        ],
        "extra_data": {"note": HOSTILE, "not_run": [f"cell 3 ... {HOSTILE}"]},
    }

    page = render_feedback(week, GradingResult.from_json(results), executed, student=HOSTILE)

    assert "<script" not in page and "<svg" not in page
    # student (title, text), test name, message, note, what was not run
    assert page.count(escape(HOSTILE)) == 6
    assert "The grader did not run this code of yours" in page
    images = re.findall(r'src="data:image/png;base64,([^"]*)"', page)
    assert [base64.b64decode(i) for i in images] == [image]
    assert "cell 2" in page
    assert "secret" not in page  # a test hidden from students stays hidden
    assert "1 / 3" in page  # the visible tests' points


def test_a_missing_or_unreadable_executed_notebook_still_gives_a_page(tmp_path, week):
    results = GradingResult("tiny", [])
    assert "did not run" in render_feedback(week, results, tmp_path / "none.ipynb", student="a")
    bad = tmp_path / "bad.ipynb"
    bad.write_text("{not json")
    assert "could not be read" in render_feedback(week, results, bad, student="a")


@pytest.mark.grading
def test_graded_feedback_shows_the_plot_messages_and_no_hidden_source(tmp_path, week):
    notebook = tmp_path / "ann.ipynb"
    nbformat.write(tiny_notebook(0.45, HOSTILE, SHOW_PLOT), notebook)
    out = tmp_path / "out"

    outcome = Batch(week, out, grade_notebook).run(
        [Submission("ann", notebook, student="Ann Example")])

    assert outcome.graded == ["ann"]
    page = (out / "ann" / "feedback.html").read_text()
    assert "Feedback for <strong>Ann Example</strong>: <strong>2 / 6</strong> points" in page
    assert "<h2>q1: A number (2 / 3)</h2>" in page
    assert "score 0.45 is below 50%" in page
    assert escape(f"the label is {HOSTILE!r}, not 'cat'") in page
    assert "the grader itself failed on this check (TypeError)" in page
    images = re.findall(r'src="data:image/png;base64,([^"]*)"', page)
    assert len(images) == 1 and base64.b64decode(images[0]).startswith(b"\x89PNG")
    assert "<script" not in page
    # The hidden tests' source and tracebacks stay in the grader's log.
    assert HIDDEN_MARKER not in page and "Traceback" not in page
    assert HIDDEN_MARKER in Path(out / "ann" / "grader.log").read_text()
