"""Per-student feedback page: scores per question and check, the checks'
messages, and the student's own figures from their executed notebook.

It is built from results.json (messages only: the grader never puts test source
or tracebacks of hidden tests there) and executed.ipynb (the student's outputs).
Both hold student-controlled text, so the template escapes everything
(Jinja2 with autoescape) and images are re-encoded from validated PNG/JPEG
bytes; nothing the student wrote can add markup or script to the page.
"""

from __future__ import annotations

import base64
import binascii
from pathlib import Path

import jinja2
import nbformat

from autograder.grading.results import CheckResult, GradingResult, write_atomically
from autograder.weeks import Week

IMAGE_TYPES = {"image/png": b"\x89PNG\r\n\x1a\n", "image/jpeg": b"\xff\xd8\xff"}
MAX_IMAGE_BYTES = 4 * 1024 * 1024
MAX_IMAGES = 40

TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'unsafe-inline'">
<title>{{ week.title }}: feedback for {{ student }}</title>
<style>
body { font-family: sans-serif; max-width: 60em; margin: 2em auto; padding: 0 1em; }
table { border-collapse: collapse; width: 100%; margin-bottom: 1em; }
td, th { border-bottom: 1px solid #ddd; padding: .3em .5em; text-align: left; vertical-align: top; }
.passed { color: #1a7f37; } .failed { color: #cf222e; }
pre { white-space: pre-wrap; margin: 0; font-size: 90%; }
figure { display: inline-block; margin: .5em; } img { max-width: 100%; border: 1px solid #ddd; }
</style>
</head>
<body>
<h1>{{ week.title }}</h1>
<p>Feedback for <strong>{{ student }}</strong>: <strong>{{ score|num }} / {{ out_of|num }}</strong> points.</p>
{% if note %}<p class="failed">Note: {{ note }}</p>{% endif %}
{% if not_run %}<p>The grader did not run this code of yours (given cells run as released; only
the answer cells hold your code):</p>
<ul>{% for line in not_run %}<li>{{ line }}</li>{% endfor %}</ul>{% endif %}
{% for q in questions %}
<h2>{{ q.id }}: {{ q.title }} ({{ q.score|num }} / {{ q.out_of|num }})</h2>
<table>
<tr><th>check</th><th>points</th><th>result</th></tr>
{% for t in q.tests %}
<tr><td>{{ t.name }}</td><td>{{ t.score|num }} / {{ t.max_score|num }}</td>
<td class="{{ 'passed' if t.status == 'passed' else 'failed' }}">{{ 'passed' if t.status == 'passed' else 'failed' }}
{% if t.output %}<pre>{{ t.output }}</pre>{% endif %}</td></tr>
{% endfor %}
</table>
{% endfor %}
{% if other_tests %}
<h2>Other</h2>
<table>
{% for t in other_tests %}<tr><td>{{ t.name }}</td><td><pre>{{ t.output }}</pre></td></tr>{% endfor %}
</table>
{% endif %}
<h2>Your figures</h2>
{% if figures %}
{% for f in figures %}
<figure><img alt="figure from cell {{ f.cell }}" src="data:{{ f.mime }};base64,{{ f.data }}"><figcaption>cell {{ f.cell }}</figcaption></figure>
{% endfor %}
{% if figures_dropped %}<p>{{ figures_dropped }} more figure(s) not shown.</p>{% endif %}
{% else %}
<p>{{ figures_note }}</p>
{% endif %}
</body>
</html>
"""

_ENVIRONMENT = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
_ENVIRONMENT.filters["num"] = lambda value: f"{value:g}"
_TEMPLATE = _ENVIRONMENT.from_string(TEMPLATE)


def render_feedback(week: Week, result: GradingResult, executed: Path | None, *,
                    student: str) -> str:
    shown = [c for c in result.checks if c.visibility != "hidden"]
    per_question = result.question_scores(shown_only=True)
    questions = []
    for qid, question in week.questions.items():
        got, out_of = per_question.get(qid, (0.0, 0.0))
        # A check's own title: the question is the section's heading already.
        questions.append({"id": qid, "title": question.title, "score": got, "out_of": out_of,
                          "tests": [_shown(c, c.check) for c in shown if c.question == qid]})
    other = [_shown(c, c.name) for c in shown if c.question not in week.questions]
    figures, dropped, note = _figures(executed)
    return _TEMPLATE.render(
        week=week, student=student, questions=questions, other_tests=other,
        score=sum(c.score for c in shown), out_of=sum(c.max_score for c in shown),
        note=result.note, not_run=[str(line) for line in result.extra.get("not_run", [])][:50],
        figures=figures, figures_dropped=dropped, figures_note=note)


def write_feedback(week: Week, result: GradingResult, executed: Path | None, target: Path, *,
                   student: str) -> None:
    write_atomically(target, render_feedback(week, result, executed, student=student))


def _shown(check: CheckResult, name: str) -> dict:
    return {"name": name, "score": check.score, "max_score": check.max_score,
            "status": check.status, "output": check.output}


def _figures(executed: Path | None) -> tuple[list[dict], int, str]:
    """(figures, how many were left out, why there are none)."""
    if executed is None or not executed.exists():
        return [], 0, "Your notebook did not run, so there are no figures."
    try:
        nb = nbformat.read(executed, as_version=4)
    except Exception:  # whatever the notebook holds, the page is still written
        return [], 0, "Your executed notebook could not be read, so no figures are shown."
    figures, dropped = [], 0
    for index, cell in enumerate(nb.cells):
        if cell.get("cell_type") != "code":
            continue
        for output in cell.get("outputs", []):
            data = output.get("data", {}) if isinstance(output, dict) else {}
            for mime, magic in IMAGE_TYPES.items():
                image = _image_bytes(data.get(mime), magic)
                if image is None:
                    continue
                if len(figures) < MAX_IMAGES:
                    figures.append({"cell": index + 1, "mime": mime,
                                    "data": base64.b64encode(image).decode("ascii")})
                else:
                    dropped += 1
                break  # one rendering per output
    return figures, dropped, "Your notebook made no figures."


def _image_bytes(value, magic: bytes) -> bytes | None:
    """Decoded image bytes if ``value`` is base64 of a real image of that type."""
    if isinstance(value, list):
        value = "".join(value)
    if not isinstance(value, str) or len(value) > MAX_IMAGE_BYTES * 4 // 3 + 4:
        return None
    try:
        image = base64.b64decode("".join(value.split()), validate=True)
    except (binascii.Error, ValueError):
        return None
    return image if image.startswith(magic) else None
