"""Which cells are written answers, and what a TA needs to grade them.

In the source notebook a written answer is nbgrader's manually graded answer cell: a
markdown cell whose nbgrader metadata says ``solution`` and ``grade``, with its
``points``. Its solution region holds a reference answer, then a line ``### RUBRIC``
and the rubric::

    ### BEGIN SOLUTION
    What a good answer says ...

    ### RUBRIC
    - 1 point: ...
    ### END SOLUTION

nbgrader's ClearSolutions replaces the region in the release, so neither reaches
students (the compiler's leak check makes sure). The prompt is the markdown cell just
before the answer cell, as released.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

RUBRIC_LINE = re.compile(r"^### RUBRIC[ \t]*$", re.M)
SOLUTION = re.compile(r"### BEGIN SOLUTION\n(.*?)### END SOLUTION", re.S)
# What nbgrader's ClearSolutions leaves in a markdown answer cell.
STUB = "YOUR ANSWER HERE"


@dataclass(frozen=True)
class WrittenQuestion:
    cell: str  # the answer cell's nbgrader grade_id
    question: str  # the question id of week.toml it belongs to
    title: str
    points: float
    prompt: str  # markdown, as released
    rubric: str  # markdown, never released
    reference: str  # markdown, never released

    @property
    def name(self) -> str:
        """The manual entry's name in results.json (Gradescope keys on it: never changes)."""
        return f"{self.question} ({self.title}): written answer, graded by a TA"

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> WrittenQuestion:
        return cls(**{**data, "points": float(data["points"])})


def is_written(cell) -> bool:
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return cell.get("cell_type") == "markdown" and bool(meta.get("solution")) and bool(
        meta.get("grade"))


def written_questions(week, nb) -> list[WrittenQuestion]:
    """The source notebook's written answers, in notebook order. Raises ValueError with
    the reason when one is malformed (the compiler says it)."""
    owner = {grade_id: q for q in week.questions.values() for grade_id in q.cells}
    found, seen = [], set()
    for index, cell in enumerate(nb.cells):
        if not is_written(cell):
            continue
        meta = cell.metadata["nbgrader"]
        grade_id = meta.get("grade_id", "")
        question = owner.get(grade_id)
        if question is None:
            raise ValueError(f"the written answer cell {grade_id!r} belongs to no question "
                             "(list it in a question's cells in week.toml)")
        if question.id in seen:
            raise ValueError(f"{question.id} has more than one written answer cell: give "
                             "each written answer a question of its own")
        seen.add(question.id)
        points = meta.get("points")
        if isinstance(points, bool) or not isinstance(points, (int, float)) or points <= 0:
            raise ValueError(f"the written answer cell {grade_id!r} needs points > 0 in its "
                             "nbgrader metadata")
        region = SOLUTION.search(cell.source)
        parts = RUBRIC_LINE.split(region.group(1), maxsplit=1) if region else []
        if len(parts) != 2 or not parts[1].strip():
            raise ValueError(f"the written answer cell {grade_id!r} needs a solution region "
                             "with a reference answer, a line '### RUBRIC' and the rubric")
        previous = nb.cells[index - 1] if index else None
        prompt = previous.source if previous is not None and previous.cell_type == "markdown" \
            else ""
        found.append(WrittenQuestion(grade_id, question.id, question.title, float(points),
                                     prompt.strip(), parts[1].strip(), parts[0].strip()))
    return found


def written_of(week) -> tuple[WrittenQuestion, ...]:
    """The written questions of a compiled week (its manifest); none for a week built
    without a manifest (a hand-made build, as some tests use)."""
    from autograder.weeks import MANIFEST_NAME, Manifest

    if not (week.directory / MANIFEST_NAME).exists():
        return ()
    return Manifest.load(week).written
