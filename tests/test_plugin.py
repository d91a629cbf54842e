"""The pytest plugin on a tiny synthetic week (no TensorFlow model needed): tiered
partial credit, messages without test source and test-authoring errors, in process with
pytester and a fake oracle (seconds); what needs a real kernel, end to end."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

# Imported here, not in pytester's runs: it snapshots sys.modules around each in-process run
# and drops what the run imported, and NumPy cannot be imported twice in one process.
import autograder.grading.plugin  # noqa: F401
from autograder.grading.runner import finish_results, grade_notebook
from autograder.weeks import Week


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


def make_week(tmp_path, tests: str = TESTS, config: str = CONFIG) -> Week:
    folder = tmp_path / "tiny"
    (folder / "tests").mkdir(parents=True)
    (folder / "week.toml").write_text(config)
    (folder / "tests" / "test_tiny.py").write_text(textwrap.dedent(tests))
    return Week.load(folder)


def notebook(tmp_path, source: str):
    cell = new_code_cell(source)
    cell.metadata["nbgrader"] = {"grade_id": "q1", "solution": True}
    path = tmp_path / "tiny.ipynb"
    nbformat.write(new_notebook(cells=[cell]), path)
    return path


FAKE_ORACLE = """
import pytest


class FakeOracle:
    \"\"\"Plain data, as the clean room's oracle gives it.\"\"\"

    def __init__(self, values):
        self.values = values

    def number(self, name):
        return float(self.values[name])


@pytest.fixture(scope="session")
def oracle():
    return FakeOracle({values!r})
"""


def graded_in_process(pytester, tests: str, values: dict, *options: str,
                      config: str = CONFIG, conftest: str = ""):
    """The plugin grading ``tests`` in this process, the oracle a fake: (results.json or
    None, pytest's outcome)."""
    week = make_week(pytester.path / "build", tests, config)
    pytester.makeconftest(conftest + FAKE_ORACLE.format(values=values))
    # Not test_*.py: this session's assertion rewriting would rewrite it, and a check's
    # message would then carry pytest's explanation, which graded checks never have.
    pytester.makepyfile(checks_tiny=textwrap.dedent(tests))
    results = pytester.path / "results.json"
    outcome = pytester.runpytest_inprocess(
        "-p", "autograder.grading.plugin", "-p", "no:cacheprovider", "--assert=plain",
        "-o", "python_files=checks_*.py", "checks_tiny.py",
        f"--ag-week={week.directory}", f"--ag-results={results}",
        f"--ag-notebook={pytester.path / 'unused.ipynb'}", *options)
    return (json.loads(results.read_text()) if results.exists() else None), outcome


def test_tiers_give_partial_credit_and_bugs_show_no_source(pytester):
    results, _ = graded_in_process(pytester, TESTS, {"score": 0.45})
    tiers = [t for t in results["tests"] if "Score reaches" in t["name"]]
    assert [t["name"] for t in tiers] == [
        "q1 (A number): Score reaches 30%", "q1 (A number): Score reaches 40%",
        "q1 (A number): Score reaches 50%"]
    assert [t["score"] for t in tiers] == [1, 1, 0]
    assert tiers[2]["output"] == "score 0.45 is below 50%"
    buggy = next(t for t in results["tests"] if "bug" in t["name"])
    assert buggy["score"] == 0 and "the grader itself failed" in buggy["output"]
    assert "secret_threshold_expression" not in json.dumps(results)
    assert results["score"] == 2 and results["extra_data"]["final"] is True


@pytest.mark.grading
def test_a_value_that_is_not_plain_data_fails_cleanly(tmp_path):
    week = make_week(tmp_path)
    result = grade_notebook(week, notebook(tmp_path, "score = object()"), tmp_path / "r.json")
    tiers = [c for c in result.checks if "Score reaches" in c.name]
    assert tiers and all(c.score == 0 and "`score` is a object, not plain data" in c.output
                         for c in tiers)


def test_a_test_without_points_is_an_authoring_error(pytester):
    results, outcome = graded_in_process(pytester, "def test_unmarked(oracle):\n    pass\n",
                                         {})
    assert outcome.ret == pytest.ExitCode.USAGE_ERROR
    assert "every graded test needs @pytest.mark.points(n)" in outcome.stderr.str()
    assert not results["tests"]
    # As the runner finishes it: one failed entry saying why nothing was graded.
    week = Week.load(pytester.path / "build" / "tiny")
    finished = finish_results(week, pytester.path / "results.json",
                              f"the grader exited with code {int(outcome.ret)}", 0.0)
    assert finished.checks[0].output == "not graded: the grader exited with code 4"


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


@pytest.mark.parametrize("score, output", [
    (0.75, "score 75% (needs 50%)\n1,234 parameters"),
    (0.25, "too low\nscore 25% (needs 50%)\n1,234 parameters"),
])
def test_measured_figures_are_reported_whether_the_check_passes_or_not(pytester, score,
                                                                      output):
    results, _ = graded_in_process(pytester, MEASURING_TESTS, {"score": score})
    test = results["tests"][0]
    assert test["status"] == ("passed" if score >= 0.5 else "failed")
    assert test["output"] == output
    assert test["extra_data"]["measured"] == [
        {"label": "score", "value": score, "threshold": 0.5},
        {"label": "parameters", "value": 1234.0, "threshold": None}]


TWO_QUESTIONS = TESTS + '''

@pytest.mark.question("q2")
@pytest.mark.points(1)
def test_label(oracle):
    """The label is given"""
'''


def test_visibility_is_set_per_question_as_results_are_made(pytester):
    """Gradescope's settings give a default and exceptions per question; the plugin writes
    them into results.json itself, so nothing patches the file afterwards."""
    config = CONFIG.replace("[thresholds]",
                            '[questions.q2]\ntitle = "A label"\ncells = ["q2"]\n[thresholds]')
    results, _ = graded_in_process(pytester, TWO_QUESTIONS, {"score": 0.45},
                                   "--ag-visibility=after_due_date,q2=visible", config=config)
    seen = {t["name"]: t["visibility"] for t in results["tests"]}
    assert seen["q2 (A label): The label is given"] == "visible"
    assert {v for n, v in seen.items() if n.startswith("q1 ")} == {"after_due_date"}


SILENT_PROBE = '''
score = 0.45
import time
from IPython import get_ipython
get_ipython().kernel.comm_manager.register_target("autograder.probe",
                                                  lambda comm, msg: time.sleep(3600))
'''


@pytest.mark.grading
def test_a_probe_that_never_answers_costs_one_timeout(tmp_path):
    """The notebook replaces the grader's probe with one that never answers: the first
    request times out, every later one fails at once with the reason."""
    folder = make_week(tmp_path).directory
    config = folder / "week.toml"
    config.write_text(config.read_text().replace("total_time = 120",
                                                 "total_time = 120\nrequest_timeout = 10"))
    week = Week.load(folder)
    started = time.monotonic()
    result = grade_notebook(week, notebook(tmp_path, SILENT_PROBE), tmp_path / "r.json")
    seconds = time.monotonic() - started
    tiers = [c for c in result.checks if "Score reaches" in c.name]
    assert tiers and all(c.score == 0 and "did not answer a request within 10 s" in c.output
                         for c in tiers), tiers
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


@pytest.mark.grading
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
    result = grade_notebook(Week.load(folder), path, tmp_path / "r.json")
    seconds = time.monotonic() - started
    tiers = [c.score for c in result.checks if "Score reaches" in c.name]
    assert tiers == [1, 1, 0], result.checks
    execution = result.extra["execution"]
    assert execution["restarts"] == 1
    assert any(c["status"] == "skipped" and "broke the kernel's connection" in c["message"]
               for c in execution["cells"])
    assert seconds < 30 + 60, seconds


# -- the grader's own start-up --------------------------------------------------------
ROOMS_CONFIG = """
title = "A week with rooms"
notebook = "tiny.ipynb"
[questions.q1]
title = "Shared"
cells = ["q1"]
[questions.q2]
title = "Defined"
cells = ["q2"]
[questions.q3]
title = "Shared again"
cells = ["q3"]
[exports]
models = ["plain_model", "own_model"]
[rooms.q2]
define = ["OwnNet"]
models = ["own_model"]
"""

RECORDING_TESTS = """
import pytest
from pathlib import Path

pytestmark = pytest.mark.points(1)


def ran(name):
    with open(Path.cwd() / "events.txt", "a") as events:
        events.write(name + "\\n")


@pytest.mark.parametrize("question", [
    pytest.param(q, id=q, marks=pytest.mark.question(q)) for q in ["q1", "q2", "q3"]])
def test_first(question):
    ran(f"first[{question}]")


@pytest.mark.question("q2")
def test_second_q2():
    ran("second[q2]")


@pytest.mark.question("q1")
def test_second_q1():
    ran("second[q1]")
"""


def test_rooms_kernels_start_first_and_the_heirs_checks_run_last(pytester, monkeypatch):
    """q2's room goes on in the shared room's kernel (cleanroom.heir), so q2's checks run
    after all others, while results.json keeps the week's order; the rooms' kernel starts
    before the week's conftest is imported (week 1's imports scikit-learn for 1.5 s)."""
    from autograder.grading import plugin

    class RecordedWarmKernels:
        def __init__(self, week):
            (pytester.path / "events.txt").open("a").write(f"kernels for {week.name}\n")

        def close(self):
            pass

    monkeypatch.setattr(plugin, "WarmKernels", RecordedWarmKernels)
    conftest = "from pathlib import Path\n" \
        "(Path.cwd() / 'events.txt').open('a').write('conftest\\n')\n"
    results, outcome = graded_in_process(pytester, RECORDING_TESTS, {}, config=ROOMS_CONFIG,
                                         conftest=conftest)
    assert outcome.ret == 0
    assert (pytester.path / "events.txt").read_text().split("\n")[:-1] == [
        "kernels for tiny", "conftest", "first[q1]", "first[q3]", "second[q1]",
        "first[q2]", "second[q2]"]
    assert [t["name"].split(": ")[1] for t in results["tests"]] == [
        "test_first[q1]", "test_first[q2]", "test_first[q3]", "test_second_q2",
        "test_second_q1"]


# -- the grader's own start-up --------------------------------------------------------
def test_reading_a_notebook_does_not_build_jsonschemas_iri_parser():
    """Three processes read notebooks in every grading; jsonschema's optional IRI parser
    cost each of them 1.3-1.6 s (a quarter of a week-1 grading from a bundle)."""
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, autograder.grading.plugin, nbformat; "
         "print(sys.modules.get('rfc3987_syntax') is not None)"],
        capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == "False"


def test_notebooks_are_still_validated():
    broken = new_notebook(cells=[new_code_cell("x = 1")])
    del broken.cells[0]["outputs"]
    with pytest.raises(nbformat.ValidationError):
        nbformat.validate(broken)
