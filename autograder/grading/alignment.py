"""The code that runs is the released notebook with the student's answers in it.

A submission is the student's copy of the released notebook, and everything in
it is theirs to edit: the given cells, the answer cells, the order, and the cell
ids and nbgrader metadata that say which cell answers what. So none of that is
believed. Instead the submission is *aligned* with the release (the trusted copy
in the week's build): the released code cells are matched in order with the
submission's by their text (difflib's longest matching blocks), and then

* every given cell runs as released, whatever the student did to it;
* an answer cell runs the student's code found in its place: the submission's
  unmatched code cells between the neighbouring given cells. Where several answer
  cells share that stretch, a cell whose metadata names one of them goes there (a
  hint, only within the stretch), the rest by order;
* the student's code outside every answer cell's stretch is not run; each such
  cell is reported (an edited given cell is one of them).

``answer_source(q)`` reads exactly the code that ran for q.
"""

from __future__ import annotations

import copy
import difflib
from dataclasses import dataclass, field

import nbformat
from nbformat import NotebookNode

from autograder.grading.bundle import CELL_ID as BUNDLE_CELL
from autograder.grading.bundle import student_side
from autograder.weeks import Week, grade_id


@dataclass
class Aligned:
    notebook: NotebookNode                # what runs: released given cells, student answers
    question_of_cell: dict[int, str]      # index in ``notebook`` -> question id (answer
                                          # cells, and given cells week.toml lists)
    answers: dict[str, list[str]]         # question id -> the source of its cells, in order
    not_run: list[str] = field(default_factory=list)  # student code left out, and why
    missing: dict[str, str] = field(default_factory=dict)  # question -> deleted answer cells

    def answer_source(self, question: str) -> str:
        return "\n".join(self.answers.get(question, []))

    def answers_text(self) -> dict[str, str]:
        return {question: self.answer_source(question) for question in self.answers}


def _is_answer(cell) -> bool:
    return bool(cell.get("metadata", {}).get("nbgrader", {}).get("solution"))


def _normal(source: str) -> str:
    return "\n".join(line.rstrip() for line in source.strip().splitlines())


def align(week: Week, release: NotebookNode, submission: NotebookNode) -> Aligned:
    owner = {cell_id: q.id for q in week.questions.values() for cell_id in q.cells}
    released = [cell for cell in release.cells if cell.cell_type == "code"]
    submitted = [(index, cell) for index, cell in enumerate(submission.cells)
                 if cell.cell_type == "code"]
    matcher = difflib.SequenceMatcher(
        None, [_normal(c.source) for c in released], [_normal(c.source) for _, c in submitted],
        autojunk=False)
    # Released code cell i -> submitted position j, for cells whose text is unchanged.
    matched = {block.a + k: block.b + k for block in matcher.get_matching_blocks()
               for k in range(block.size)}

    # Each stretch between two matched cells: the released cells in it and the
    # student's unmatched cells in it.
    placed: dict[int, list] = {i: [] for i in range(len(released))}
    not_run: list[str] = []
    i, j = 0, 0
    while i <= len(released):
        end_i = next((k for k in range(i, len(released)) if k in matched), len(released))
        end_j = matched.get(end_i, len(submitted))
        stretch, extra = list(range(i, end_i)), submitted[j:end_j]
        if stretch and len(extra) == len(stretch):
            # As many cells as released: the student edited cells in place.
            for k, (index, cell) in zip(stretch, extra):
                if _is_answer(released[k]):
                    placed[k].append(cell)
                elif cell.source.strip():
                    not_run.append(_edited_note(index, released[k]))
        else:
            slots = [k for k in stretch if _is_answer(released[k])]
            given = [released[k] for k in stretch if not _is_answer(released[k])]
            _place(slots, given, extra, released, placed, not_run)
        if end_i < len(released) and _is_answer(released[end_i]):
            placed[end_i].append(submitted[end_j][1])  # an answer left as released
        i, j = end_i + 1, end_j + 1

    cells, question_of_cell, answers, missing = [], {}, {}, {}
    k = -1
    for cell in release.cells:
        if cell.cell_type != "code":
            cells.append(copy.deepcopy(cell))
            continue
        k += 1
        if grade_id(released[k]) == BUNDLE_CELL:
            continue  # the grader takes the bundle from the kernel itself
        if student_side(grade_id(released[k])):
            # A check cell runs in the student's kernel only (the grader checks as it
            # grades); kept as text, so that cells are numbered as in the release.
            cells.append(nbformat.v4.new_raw_cell(released[k].source, id=released[k].get(
                "id", "check"), metadata=copy.deepcopy(released[k].metadata)))
            continue
        if not _is_answer(released[k]):
            if owner.get(grade_id(released[k])):  # a given cell of a question (its training)
                question_of_cell[len(cells)] = owner[grade_id(released[k])]
            cells.append(copy.deepcopy(released[k]))
            continue
        question = owner.get(grade_id(released[k]))
        if not placed[k] and question:
            missing.setdefault(question, []).append(grade_id(released[k]))
        for n, student_cell in enumerate(placed[k] or [released[k]]):
            answer = copy.deepcopy(released[k])
            answer.source = student_cell.source
            answer.outputs = []
            if n and "id" in answer:
                answer.id = f"{answer.id}-{n}"
            if question:
                question_of_cell[len(cells)] = question
                answers.setdefault(question, []).append(student_cell.source)
            cells.append(answer)
    notebook = nbformat.v4.new_notebook(cells=cells, metadata=copy.deepcopy(release.metadata))
    messages = {question: (
        f"the notebook has no answer cell for {question} (the released notebook's cell(s) "
        f"{cells_of} were deleted, so they ran as released): answer in the released "
        "notebook's cells instead of deleting or re-creating them")
        for question, cells_of in missing.items()}
    return Aligned(notebook, question_of_cell, answers, not_run, messages)


def _place(slots: list[int], given: list, extra: list, released: list, placed: dict,
           not_run: list) -> None:
    """Put the student's unmatched cells of one stretch into its answer slots."""
    rest = []
    for index, cell in extra:
        edited = _edited_given(cell, given)
        if edited is not None:
            not_run.append(_edited_note(index, edited))
        elif not slots:
            if cell.source.strip():
                not_run.append(f"cell {index + 1} is outside the answer cells and differs from "
                               "the released notebook, so it was not run (write your code in "
                               "the answer cells)")
        else:
            rest.append(cell)
    if not rest:
        return
    by_id = {grade_id(released[k]): k for k in slots}
    unhinted = []
    for cell in rest:
        hinted = by_id.get(grade_id(cell))
        if hinted is not None:
            placed[hinted].append(cell)
        else:
            unhinted.append(cell)
    # By order: one cell per empty slot, the last slot takes what is left.
    empty = [k for k in slots if not placed[k]]
    for k in empty[:-1]:
        if unhinted:
            placed[k].append(unhinted.pop(0))
    placed[empty[-1] if empty else slots[-1]].extend(unhinted)


def _edited_given(cell, given: list):
    """The released given cell that ``cell`` is an edited copy of (most of its text is
    that cell's), or None."""
    text = _normal(cell.source)
    for released in given:
        original = _normal(released.source)
        if len(original) >= 40 and difflib.SequenceMatcher(
                None, original, text, autojunk=False).ratio() >= 0.75:
            return released
    return None


def _edited_note(index: int, released) -> str:
    return (f"cell {index + 1} is an edited copy of the given cell "
            f"`{grade_id(released) or 'given code'}`, so it was not run: the released cell "
            "ran instead")
