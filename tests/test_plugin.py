"""The pytest plugin on a tiny synthetic week (no TensorFlow model needed):
tiered partial credit, messages without test source, and test-authoring errors."""

from __future__ import annotations

import json
import textwrap
import time

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from autograder.grading.runner import grade_notebook
from autograder.weeks import Week

pytestmark = pytest.mark.grading  # every test here grades a tiny week end to end

CONFIG = """
title = "Tiny week"
notebook = "tiny.ipynb"
[questions.q1]
title = "A number"
cells = ["q1"]
[thresholds]
tiers = [0.3, 0.4, 0.5]
[exports]
values = ["score", "label"]
[limits]
total_time = 120
"""

TESTS = '''
import pytest

pytestmark = pytest.mark.question("q1")


@pytest.mark.parametrize("tier", [0.3, 0.4, 0.5])
@pytest.mark.points(1)
def test_tier(tier, oracle):
    """Score reaches {tier:.0%}"""
    score = oracle.number("score")
    assert score >= tier, f"score {score:.2f} is below {tier:.0%}"


@pytest.mark.points(2)
def test_buggy_check(oracle):
    """A check with a bug in it"""
    secret_threshold_expression = None
    return secret_threshold_expression + 1
'''


def make_week(tmp_path, tests: str = TESTS) -> Week:
    folder = tmp_path / "tiny"
    (folder / "tests").mkdir(parents=True)
    (folder / "week.toml").write_text(CONFIG)
    (folder / "tests" / "test_tiny.py").write_text(textwrap.dedent(tests))
    return Week.load(folder)


def notebook(tmp_path, source: str):
    cell = new_code_cell(source)
    cell.metadata["nbgrader"] = {"grade_id": "q1", "solution": True}
    path = tmp_path / "tiny.ipynb"
    nbformat.write(new_notebook(cells=[cell]), path)
    return path


def test_tiers_give_partial_credit_and_bugs_show_no_source(tmp_path):
    week = make_week(tmp_path)
    results = grade_notebook(week, notebook(tmp_path, "score = 0.45"), tmp_path / "r.json")
    tiers = [t for t in results["tests"] if "Score reaches" in t["name"]]
    assert [t["name"].split(": ")[1] for t in tiers] == [
        "Score reaches 30%", "Score reaches 40%", "Score reaches 50%"]
    assert [t["score"] for t in tiers] == [1, 1, 0]
    assert tiers[2]["output"] == "score 0.45 is below 50%"
    buggy = next(t for t in results["tests"] if "bug" in t["name"])
    assert buggy["score"] == 0 and "the grader itself failed" in buggy["output"]
    assert "secret_threshold_expression" not in json.dumps(results)
    assert results["score"] == 2 and results["extra_data"]["final"] is True


def test_a_value_that_is_not_plain_data_fails_cleanly(tmp_path):
    week = make_week(tmp_path)
    results = grade_notebook(week, notebook(tmp_path, "score = object()"), tmp_path / "r.json")
    tiers = [t for t in results["tests"] if "Score reaches" in t["name"]]
    assert all(t["score"] == 0 and "`score` is a object, not plain data" in t["output"]
               for t in tiers)


def test_a_test_without_points_is_an_authoring_error(tmp_path):
    week = make_week(tmp_path, tests="def test_unmarked(oracle):\n    pass\n")
    results = grade_notebook(week, notebook(tmp_path, "score = 1"), tmp_path / "r.json")
    assert results["score"] == 0
    assert "not graded: the grader exited with code 4" in results["tests"][0]["output"]


MEASURING_TESTS = '''
import pytest

pytestmark = [pytest.mark.question("q1"), pytest.mark.points(1)]


def test_reaches_half(oracle, measure):
    """Score reaches 50%"""
    score = oracle.number("score")
    measure("score", score, threshold=0.5, text=f"score {score:.0%} (needs 50%)")
    measure("parameters", 1234, text="1,234 parameters")
    assert score >= 0.5, "too low"
'''


def test_measured_figures_are_reported_whether_the_check_passes_or_not(tmp_path):
    week = make_week(tmp_path, tests=MEASURING_TESTS)
    passed = grade_notebook(week, notebook(tmp_path, "score = 0.75"), tmp_path / "a.json")
    test = passed["tests"][0]
    assert test["status"] == "passed"
    assert test["output"] == "score 75% (needs 50%)\n1,234 parameters"
    assert test["extra_data"]["measured"] == [
        {"label": "score", "value": 0.75, "threshold": 0.5},
        {"label": "parameters", "value": 1234.0, "threshold": None}]
    failed = grade_notebook(week, notebook(tmp_path, "score = 0.25"), tmp_path / "b.json")
    assert failed["tests"][0]["output"] == "too low\nscore 25% (needs 50%)\n1,234 parameters"


SILENT_PROBE = '''
score = 0.45
import time
from IPython import get_ipython
get_ipython().kernel.comm_manager.register_target("autograder.probe",
                                                  lambda comm, msg: time.sleep(3600))
'''


def test_a_probe_that_never_answers_costs_one_timeout(tmp_path):
    """The notebook replaces the grader's probe with one that never answers: the first
    request times out, every later one fails at once with the reason."""
    folder = make_week(tmp_path).directory
    config = folder / "week.toml"
    config.write_text(config.read_text().replace("total_time = 120",
                                                 "total_time = 120\nrequest_timeout = 10"))
    week = Week.load(folder)
    started = time.monotonic()
    results = grade_notebook(week, notebook(tmp_path, SILENT_PROBE), tmp_path / "r.json")
    seconds = time.monotonic() - started
    tiers = [t for t in results["tests"] if "Score reaches" in t["name"]]
    assert all(t["score"] == 0 and "did not answer a request within 10 s" in t["output"]
               for t in tiers), tiers
    # Two values are exported: one timeout, not two (and not one per check).
    assert seconds < 10 + 40, seconds


WRITE_INTO_EVERY_DESCRIPTOR = '''
import os
for fd in range(3, 1024):
    try:
        os.write(fd, b"\\\\x00garbage" * 1000)
    except OSError:
        pass
'''


def test_a_cell_that_breaks_the_kernels_channel_costs_only_itself(tmp_path):
    """A cell writes into every file descriptor it inherited, the kernel's ZeroMQ sockets
    among them: the kernel is handled like one that died (stopped, restarted, the notebook
    run without that cell), so the cell before it keeps its points, within seconds."""
    folder = make_week(tmp_path).directory
    config = folder / "week.toml"
    config.write_text(config.read_text().replace("total_time = 120",
                                                 "total_time = 120\ncell_timeout = 30"))
    answer = new_code_cell("score = 0.45")
    answer.metadata["nbgrader"] = {"grade_id": "q1", "solution": True}
    path = tmp_path / "tiny.ipynb"
    nbformat.write(new_notebook(cells=[answer, new_code_cell(WRITE_INTO_EVERY_DESCRIPTOR)]), path)
    started = time.monotonic()
    results = grade_notebook(Week.load(folder), path, tmp_path / "r.json")
    seconds = time.monotonic() - started
    tiers = [t["score"] for t in results["tests"] if "Score reaches" in t["name"]]
    assert tiers == [1, 1, 0], results["tests"]
    execution = results["extra_data"]["execution"]
    assert execution["restarts"] == 1
    assert any(c["status"] == "skipped" and "broke the kernel's connection" in c["message"]
               for c in execution["cells"])
    assert seconds < 30 + 60, seconds
