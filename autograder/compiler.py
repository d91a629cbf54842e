"""``autograder compile``: source/<week> -> release/<week> + assignments/<week>.

The student notebook is made with nbgrader's own preprocessors (ClearSolutions,
ClearHiddenTests, ClearOutput), so solution markers are nbgrader's
``### BEGIN SOLUTION`` / ``### END SOLUTION`` in cells whose metadata marks them
as solutions. Compiling is pure (same input, byte-identical output) and refuses
to write anything if

* a line of a reference solution or of a hidden test would reach release/, or
* the reference notebook does not pass every hidden and public check.

Beside the release it writes the student kit, ``release/<week>-kit.zip`` (``autograder.kit``:
the release folder, the tool as a wheel, the install command; leak-checked and
byte-identical too). It also writes ``assignments/<week>/manifest.json`` (``weeks.Manifest``): the checks and
their points, collected from the tests, the answer cells of each question, the written
answers TAs grade (points, prompt, rubric: ``autograder/written``), and the Gradescope
timeout and memory the week's ``[limits]`` need.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat
from nbgrader.preprocessors import ClearHiddenTests, ClearOutput, ClearSolutions

from autograder.errors import CompileError
from autograder.grading.bundle import check_cell, given_cells, student_side
from autograder.grading.results import CheckResult, read_results
from autograder.grading.runner import grade_notebook
from autograder.weeks import CONFIG_NAME, MANIFEST_NAME, Course, Manifest, Week, grade_id
from autograder.written.questions import WrittenQuestion, written_questions

SOLUTION_REGION = re.compile(r"### BEGIN SOLUTION\n(.*?)### END SOLUTION", re.S)


def compile_week(course: Course, name: str, *, verify: bool = True, log=print) -> None:
    source = course.source(name)
    week = Week.load(source)
    if week.name != name:
        raise CompileError(name, f"its week.toml says name = {week.name!r}: the name must be "
                                 "the folder's")
    nb = _read_notebook(source / week.notebook, name)
    _check_questions(week, nb, name)
    try:
        written = written_questions(week, nb)
    except ValueError as error:
        raise CompileError(name, str(error)) from None

    with tempfile.TemporaryDirectory(prefix=f"ag-compile-{name}-") as scratch:
        release = Path(scratch) / "release"
        build = Path(scratch) / "build"
        _write_release(source, week, nb, release)
        _write_build(source, build, release / week.notebook)
        _write_manifest(Week.load(build), name, written)
        check_no_leaks(source, nb, release, name)
        from autograder.kit import KIT_SUFFIX, write_kit  # (kit.py imports this module)
        kit = Path(scratch) / (name + KIT_SUFFIX)
        write_kit(source, nb, release, kit, name)
        if verify:
            log(f"{name}: running the reference solution against every check ...")
            _verify_reference(Week.load(build), source / week.notebook, Path(scratch), name)
        _replace(release, course.release(name))
        _replace(build, course.build(name))
        shutil.copyfile(kit, course.release(name).with_name(kit.name))
    log(f"{name}: wrote {course.release(name).relative_to(course.root)}/, "
        f"{course.release(name).relative_to(course.root)}{KIT_SUFFIX} and "
        f"{course.build(name).relative_to(course.root)}/")


def _read_notebook(path: Path, week: str):
    try:
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
        return nb
    except Exception as error:
        raise CompileError(week, f"{path} is not a valid notebook: {error}") from None


def _check_questions(week: Week, nb, name: str) -> None:
    grade_ids = {grade_id(cell) for cell in nb.cells}
    taken = sorted(g for g in grade_ids if student_side(g))
    if taken:
        raise CompileError(name, f"the grade_id(s) {taken} are the release's own (check and "
                                 "save cells): name the cells otherwise")
    for question in week.questions.values():
        missing = [cell for cell in question.cells if cell not in grade_ids]
        if missing:
            raise CompileError(name, f"question {question.id} names cells {missing} that the "
                                     "notebook does not have (nbgrader grade_id)")


def student_notebook(nb, week: Week):
    """nbgrader's preprocessors: solutions replaced by stubs, hidden tests and outputs
    removed; a check cell after each question's last cell and one for all before the
    given cells that save the submission's bundle."""
    nb = nbformat.from_dict(nb)
    resources: dict = {}
    for preprocessor in (ClearSolutions(enforce_metadata=True),
                         ClearHiddenTests(enforce_metadata=True), ClearOutput()):
        nb, resources = preprocessor.preprocess(nb, resources)
    owner = {cell_id: q.id for q in week.questions.values() for cell_id in q.cells}
    last = {owner[grade_id(cell)]: index for index, cell in enumerate(nb.cells)
            if grade_id(cell) in owner}  # each question's last cell, in notebook order
    after = {index: question for question, index in last.items()}
    cells = []
    for index, cell in enumerate(nb.cells):
        cell.metadata.pop("execution", None)
        cells.append(cell)
        if index in after:
            cells.append(check_cell(after[index]))
    nb.cells = cells + [check_cell(None)] + given_cells(week)
    return nb


def _write_release(source: Path, week: Week, nb, release: Path) -> None:
    release.mkdir(parents=True)
    text = nbformat.writes(student_notebook(nb, week), version=4)
    (release / week.notebook).write_text(text if text.endswith("\n") else text + "\n")
    (release / Week.RELEASE_COPY).write_text((release / week.notebook).read_text())
    shutil.copyfile(source / CONFIG_NAME, release / CONFIG_NAME)
    _copy_python_files(source / "checks", release / "checks")


def _write_build(source: Path, build: Path, released: Path) -> None:
    build.mkdir(parents=True)
    shutil.copyfile(source / CONFIG_NAME, build / CONFIG_NAME)
    # The grader aligns each submission with the released notebook (given cells run
    # as released) and takes the given definitions for its clean rooms from it.
    shutil.copyfile(released, build / Week.RELEASE_COPY)
    _copy_python_files(source / "tests", build / "tests")
    _copy_python_files(source / "checks", build / "tests" / "public")


def _write_manifest(week: Week, name: str, written: list[WrittenQuestion]) -> None:
    from autograder.gradescope import gradescope_limits

    cells = {cell: question.id for question in week.questions.values()
             for cell in question.cells}
    checks = tuple({"question": c.question, "name": c.name, "points": c.max_score}
                   for c in collect_checks(week, name))
    timeout, memory_mb = gradescope_limits(week)
    manifest = Manifest(week.name, cells, checks, timeout=timeout, memory_mb=memory_mb,
                        written=tuple(written))
    (week.directory / MANIFEST_NAME).write_text(manifest.to_json())


def collect_checks(week: Week, name: str) -> list[CheckResult]:
    """The week's checks with their points, by collecting its tests (nothing runs)."""
    with tempfile.TemporaryDirectory(prefix="ag-collect-") as scratch:
        results = Path(scratch) / "results.json"
        tests = week.directory / "tests"
        done = subprocess.run(
            [sys.executable, "-m", "pytest", str(tests), "--collect-only", "-q",
             "-p", "autograder.grading.plugin", "-p", "no:cacheprovider",
             "--rootdir", str(tests), "--ag-notebook=/nonexistent.ipynb",
             f"--ag-week={week.directory}", f"--ag-results={results}"],
            capture_output=True, text=True, env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
        collected = read_results(results) if done.returncode == 0 else None
        if collected is None:
            raise CompileError(name, f"its checks cannot be collected:\n"
                                     f"{done.stdout[-2000:]}{done.stderr[-2000:]}")
        return collected.checks


def _copy_python_files(source: Path, target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    for path in sorted(source.glob("*.py")) if source.is_dir() else []:
        shutil.copyfile(path, target / path.name)


def significant_lines(text: str) -> set[str]:
    """Lines that say something: not blank, not punctuation, not a lone keyword."""
    lines = set()
    for line in text.splitlines():
        line = line.strip()
        if len(line) >= 8 and re.search(r"[A-Za-z0-9_]{3}", line) and "SOLUTION" not in line:
            lines.add(line)
    return lines


def secret_lines(source: Path, nb) -> set[str]:
    """The lines that must not reach students: significant lines of the reference
    solutions (code and written answers with their rubrics) and of the hidden tests, less
    those that students' own material (given code, public checks) holds anyway."""
    given = []  # code the students are given anyway (it may repeat a secret line)
    secret = set()
    for cell in nb.cells:
        secret |= significant_lines("".join(SOLUTION_REGION.findall(cell.source)))
        if cell.cell_type == "code":
            given.append(SOLUTION_REGION.sub("", cell.source))
    given += [path.read_text() for path in sorted((source / "checks").glob("*.py"))]
    for path in sorted((source / "tests").glob("*.py")):
        secret |= significant_lines(path.read_text())
    given_text = "\n".join(given)
    return {line for line in secret if line not in given_text}


def check_no_leaks(source: Path, nb, release: Path, name: str) -> None:
    """Refuse (CompileError) when a secret line is in any file under ``release`` (the
    release folder, or an unpacked student kit)."""
    secret = secret_lines(source, nb)
    # The student's notebook first, so that a leak is named where students would see it
    # (its pristine copy, .release.ipynb, holds the same text).
    for path in sorted(release.rglob("*"), key=lambda p: (p.name == Week.RELEASE_COPY, p)):
        if path.is_file():
            text = _readable_text(path)
            leaked = sorted(line for line in secret if line in text)
            if leaked or "BEGIN SOLUTION" in text or "BEGIN HIDDEN" in text:
                raise CompileError(name, f"solution or hidden-test text would reach "
                                         f"release/{path.relative_to(release)}: {leaked[:3]}")


def _readable_text(path: Path) -> str:
    """What a reader of the file sees: for a notebook, its cells' text."""
    if path.suffix == ".ipynb":
        nb = nbformat.read(path, as_version=4)
        return "\n".join(cell.source for cell in nb.cells)
    return path.read_text()


def _verify_reference(week: Week, notebook: Path, scratch: Path, name: str) -> None:
    result = grade_notebook(week, notebook, scratch / "reference-results.json",
                            log=scratch / "reference.log")
    failing = [c for c in result.checks if c.status != "passed"]
    if failing:
        details = "\n".join(f"  - {c.name}: {c.output}" for c in failing)
        raise CompileError(name, f"the reference solution fails {len(failing)} check(s):\n"
                                 f"{details}")


def _replace(built: Path, target: Path) -> None:
    if target.exists():
        shutil.rmtree(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(built, target)
