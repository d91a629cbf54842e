"""Grades one notebook: a pytest process of its own, a hard wall-clock limit,
and a results.json that exists whatever happened.

The pytest process (trusted) rewrites results.json after every test, so if it
is killed (time limit, crash) the finished tests keep their scores and the rest
are marked as not run. If it never got as far as listing the tests, the result
is a single failed entry saying why.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Mapping

from autograder.grading.results import NOT_RUN, GradingResult, read_results, write_results
from autograder.supervise import supervise
from autograder.weeks import Week

NO_BUNDLE = ""  # grading from bundles, and this submission handed in none

# Beyond the notebook's own budget: kernel start, probe questions, teardown.
GRADING_MARGIN = 300.0


def grade_notebook(week: Week, notebook: Path, results_path: Path, *,
                   tests: Path | None = None, log: Path | None = None,
                   bundle: Path | str | None = None, visibility: str = "visible",
                   question_visibility: Mapping[str, str] | None = None,
                   questions: list[str] | None = None) -> GradingResult:
    """``bundle``: the one handed in with the notebook, graded from when it matches;
    ``NO_BUNDLE`` when one was asked for and none came (grader.log says so).
    ``visibility``: Gradescope's, for every check but those of ``question_visibility``.
    ``questions``: only their checks run (and are listed)."""
    tests = tests or week.directory / "tests"
    results_path.unlink(missing_ok=True)
    command = [
        sys.executable, "-m", "pytest", str(tests),
        "-p", "autograder.grading.plugin", "-p", "no:cacheprovider",
        "--assert=plain", "-q", "--no-header", "--rootdir", str(tests),
        f"--ag-notebook={notebook}", f"--ag-week={week.directory}",
        f"--ag-results={results_path}",
        "--ag-visibility=" + ",".join([visibility, *(f"{q}={v}" for q, v in
                                                     (question_visibility or {}).items())]),
        *([f"--ag-bundle={bundle}"] if bundle is not None else []),
        *([f"--ag-questions={','.join(questions)}"] if questions else []),
    ]
    limit = week.limits.total_time + GRADING_MARGIN
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", **week.limits.thread_env()}
    exit = supervise(command, timeout=limit, log=log, env=env)
    if exit.timed_out:
        stop = f"grading took longer than {limit:.0f} s and was stopped"
    else:
        stop = None if exit.code in (0, 1) else f"the grader exited with code {exit.code}"
    return finish_results(week, results_path, stop, exit.seconds)


def finish_results(week: Week, results_path: Path, stop: str | None,
                   seconds: float) -> GradingResult:
    """Make sure a complete results.json exists; return it."""
    result = read_results(results_path)
    if result is not None and not result.checks:
        result = None  # nothing was collected: say why instead of an empty result
    if result is not None and result.final and stop is None:
        return result
    reason = stop or "the grader stopped unexpectedly"
    if result is None:
        result = GradingResult.not_graded(week.name, week.title, reason, seconds)
    for check in result.checks:
        if check.output == NOT_RUN:
            check.output = f"not run: {reason}"
    result.extra.update(final=True, note=reason)
    write_results(results_path, result)
    return result
