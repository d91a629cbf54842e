"""A submission's written answers, read as text when it is graded.

The answer of a written question is the text of the submission's markdown cells that
carry the answer cell's grade_id. The grade_id is the student's to edit, like every
metadata field; that is harmless here, because whatever is found is only shown to a TA
as this student's answer (it never reaches a check). The text is kept, with its digest,
in ``OUT/<name>/written.json`` beside results.json, so that exporting never depends on
where the submission came from, and a TA's score stays with the text it was given for.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import nbformat

from autograder.weeks import grade_id
from autograder.written.questions import STUB, WrittenQuestion

ANSWERS_NAME = "written.json"
# Longer answers are cut here (a page of text is about 3,000 characters).
MAX_ANSWER_CHARS = 20_000
MAX_NOTEBOOK_BYTES = 50 * 2**20


def answer_digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def read_answers(notebook: Path, written: tuple[WrittenQuestion, ...]) -> dict:
    """{"answers": {question: {"cell", "text", "sha256"}}, "note": why some are missing}."""
    record: dict = {"answers": {}, "note": ""}
    try:
        if Path(notebook).stat().st_size > MAX_NOTEBOOK_BYTES:
            raise ValueError(f"it is over {MAX_NOTEBOOK_BYTES // 2**20} MB")
        nb = nbformat.read(notebook, as_version=4)
        cells = [cell for cell in nb.cells if isinstance(cell, dict)]
    except Exception as error:  # hostile input: any failure means no answers, said why
        record["note"] = f"the notebook could not be read for written answers: {error}"
        cells = []
    for question in written:
        parts = [cell.get("source", "") for cell in cells
                 if cell.get("cell_type") == "markdown"
                 and grade_id(cell) == question.cell and isinstance(cell.get("source"), str)]
        text = "\n\n".join(part.strip() for part in parts if part.strip() != STUB).strip()
        if len(text) > MAX_ANSWER_CHARS:
            text = text[:MAX_ANSWER_CHARS] + f"\n\n[cut at {MAX_ANSWER_CHARS:,} characters]"
        record["answers"][question.question] = {"cell": question.cell, "text": text,
                                                "sha256": answer_digest(text)}
    return record


def write_answers(folder: Path, record: dict) -> None:
    from autograder.grading.results import write_atomically

    write_atomically(Path(folder) / ANSWERS_NAME, json.dumps(record, indent=1) + "\n")


def load_answers(folder: Path) -> dict[str, dict]:
    """Question -> {"cell", "text", "sha256"} as recorded at grading ({} if none)."""
    try:
        data = json.loads((Path(folder) / ANSWERS_NAME).read_text())
        answers = data["answers"]
        return {str(q): {"cell": str(a["cell"]), "text": str(a["text"]),
                         "sha256": str(a["sha256"])} for q, a in answers.items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}

