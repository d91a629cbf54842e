"""`autograder compile`: reproducible releases that never leak solutions or
hidden tests, and that refuse a reference solution failing its own checks."""

from __future__ import annotations

import shutil

import nbformat
import pytest
from conftest import ROOT

from autograder.compiler import compile_week
from autograder.errors import CompileError
from autograder.weeks import Course


@pytest.fixture
def course(tmp_path):
    """A throw-away course with week 1's source."""
    shutil.copytree(ROOT / "source" / "week1", tmp_path / "source" / "week1")
    return Course(tmp_path)


def tree(folder):
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("name", Course(ROOT).weeks())
def test_compiling_twice_is_byte_identical_and_matches_the_committed_release(tmp_path, name):
    shutil.copytree(ROOT / "source" / name, tmp_path / "source" / name)
    course = Course(tmp_path)
    compile_week(course, name, verify=False, log=lambda *_: None)
    first = tree(course.root / "release" / name), tree(course.root / "assignments" / name)
    compile_week(course, name, verify=False, log=lambda *_: None)
    assert (tree(course.root / "release" / name), tree(course.root / "assignments" / name)) == first
    assert first == (tree(ROOT / "release" / name), tree(ROOT / "assignments" / name)), (
        f"release/{name} or assignments/{name} is stale: run `autograder compile {name}`")


def test_release_has_no_solutions_and_stub_cells(course):
    compile_week(course, "week1", verify=False, log=lambda *_: None)
    release = course.root / "release" / "week1"
    nb = nbformat.read(release / "week1.ipynb", as_version=4)
    text = (release / "week1.ipynb").read_text()
    assert "BEGIN SOLUTION" not in text and "IrisNet(keras.Model)" not in text
    stubs = [c for c in nb.cells if "raise NotImplementedError()" in c.source]
    assert [c.metadata.nbgrader.grade_id for c in stubs] == ["q1", "q2", "q3"]
    assert sorted(p.name for p in release.rglob("*.py")) == ["test_public.py"]
    assert not (release / "tests").exists()


def test_a_solution_line_outside_the_markers_stops_compilation(course):
    path = course.root / "source/week1/week1.ipynb"
    nb = nbformat.read(path, as_version=4)
    nb.cells[0].source += "\n\nHint: `self.classifier = layers.Dense(3, activation=\"softmax\")`"
    nbformat.write(nb, path)
    with pytest.raises(CompileError, match="would reach release/week1.ipynb"):
        compile_week(course, "week1", verify=False, log=lambda *_: None)
    assert not (course.root / "release").exists()


def test_a_hidden_test_line_copied_into_the_release_stops_compilation(course):
    path = course.root / "source/week1/week1.ipynb"
    nb = nbformat.read(path, as_version=4)
    nb.cells[0].source += '\n\n    wanted = week.thresholds["training_steps"]'
    nbformat.write(nb, path)
    with pytest.raises(CompileError, match="solution or hidden-test text"):
        compile_week(course, "week1", verify=False, log=lambda *_: None)


def test_questions_must_name_existing_cells(course):
    config = course.root / "source/week1/week.toml"
    config.write_text(config.read_text().replace('cells = ["q3", "q3_train"]',
                                                 'cells = ["q3", "q3_fit"]'))
    with pytest.raises(CompileError, match=r"question q3 names cells \['q3_fit'\]"):
        compile_week(course, "week1", verify=False, log=lambda *_: None)


def test_a_week_toml_naming_another_week_stops_compilation(course):
    """The name in week.toml names the week's bundles: it must be the folder's."""
    config = course.root / "source/week1/week.toml"
    config.write_text(config.read_text().replace('name = "week1"', 'name = "week9"'))
    with pytest.raises(CompileError, match="week.toml says name = 'week9'"):
        compile_week(course, "week1", verify=False, log=lambda *_: None)


def test_a_cell_named_like_the_releases_own_check_cells_stops_compilation(course):
    path = course.root / "source/week1/week1.ipynb"
    nb = nbformat.read(path, as_version=4)
    nb.cells[1].metadata["nbgrader"]["grade_id"] = "ag_check_setup"
    nbformat.write(nb, path)
    with pytest.raises(CompileError, match=r"\['ag_check_setup'\] are the release's own"):
        compile_week(course, "week1", verify=False, log=lambda *_: None)


# A week whose checks need no model, so that verifying its reference takes seconds.
TINY_CONFIG = """
title = "Tiny week"
notebook = "tiny.ipynb"
[questions.q1]
title = "A number"
cells = ["q1"]
[exports]
values = ["score"]
"""
TINY_TESTS = '''
import pytest

pytestmark = pytest.mark.question("q1")


@pytest.mark.points(1)
def test_positive(oracle):
    """The score is positive"""
    assert oracle.number("score") > 0, "the score is not positive"


@pytest.mark.points(1)
def test_reaches_half(oracle):
    """The score reaches 0.5"""
    assert oracle.number("score") >= 0.5, "the score is below 0.5"
'''


def tiny_source(root, answer: str) -> Course:
    source = root / "source" / "tiny"
    (source / "tests").mkdir(parents=True)
    (source / "week.toml").write_text(TINY_CONFIG)
    (source / "tests" / "test_tiny.py").write_text(TINY_TESTS)
    cell = nbformat.v4.new_code_cell(f"### BEGIN SOLUTION\nscore = {answer}\n### END SOLUTION")
    cell.metadata["nbgrader"] = {"grade_id": "q1", "solution": True, "grade": False,
                                 "locked": False, "schema_version": 3}
    nbformat.write(nbformat.v4.new_notebook(cells=[cell]), source / "tiny.ipynb")
    return Course(root)


@pytest.mark.grading
def test_a_reference_that_fails_its_checks_stops_compilation(tmp_path):
    course = tiny_source(tmp_path / "failing", "0.3")
    with pytest.raises(CompileError) as failure:
        compile_week(course, "tiny", log=lambda *_: None)
    message = str(failure.value)
    assert "the reference solution fails 1 check(s)" in message
    assert "q1 (A number): The score reaches 0.5" in message
    assert not (course.root / "release").exists()
    passing = tiny_source(tmp_path / "passing", "0.7")
    compile_week(passing, "tiny", log=lambda *_: None)
    assert "score = 0.7" not in (passing.root / "release" / "tiny" / "tiny.ipynb").read_text()


