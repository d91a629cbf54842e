"""Each week's reference solution: execution time, grading time and margins.

    .venv/bin/python benchmarks/weeks.py [week ...]      (default: every week)

For every week, in the same run and on the same reference notebook
(source/<week>/<week>.ipynb):

1. bare execution: nbclient runs the notebook in a plain, unconfined kernel
   and records each cell's time; cells are summed per exercise (question) by
   their nbgrader grade_id, the cells of no question count as "given";
2. grading: ``grade_notebook`` against the compiled week (sandboxed kernel,
   every hidden and public check), timed as a whole; the sandbox's own cell
   times are summed per exercise the same way.

Then it prints, per week and exercise, both times, the score, and every figure
a check measured (``measure`` fixture: accuracies, errors, gaps, learned
constants) next to the threshold it was compared with. The last column is the
grader's overhead: grading time over bare execution time, and the clean room's
share of the grading time: handing the models over (export) plus starting the
clean rooms and computing every scored figure there (``extra_data.timing``).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from autograder.data import kernel_env, prepare_for  # noqa: E402
from autograder.grading.results import GradingResult  # noqa: E402
from autograder.grading.runner import grade_notebook  # noqa: E402
from autograder.weeks import Course  # noqa: E402


def cell_seconds(cell) -> float:
    timing = cell.get("metadata", {}).get("execution", {})
    try:
        start = datetime.fromisoformat(timing["iopub.execute_input"].replace("Z", "+00:00"))
        end = datetime.fromisoformat(timing["shell.execute_reply"].replace("Z", "+00:00"))
    except (KeyError, ValueError):
        return 0.0
    return (end - start).total_seconds()


def execute_bare(path: Path, week) -> tuple[float, dict[str, float]]:
    """Run the notebook unconfined, as `jupyter nbconvert --execute` would."""
    nb = nbformat.read(path, as_version=4)
    question_of_cell = week.question_of_cell(nb)
    started = time.perf_counter()
    saved = dict(os.environ)
    os.environ.update(kernel_env(week.data))
    try:
        NotebookClient(nb, timeout=week.limits.cell_timeout, kernel_name="python3",
                       resources={"metadata": {"path": str(path.parent)}}).execute()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    total = time.perf_counter() - started
    per_question: dict[str, float] = {}
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            key = question_of_cell.get(index, "given")
            per_question[key] = per_question.get(key, 0.0) + cell_seconds(cell)
    return total, per_question


def grade(week, path: Path, scratch: Path) -> tuple[float, GradingResult]:
    started = time.perf_counter()
    results = grade_notebook(week, path, scratch / "results.json", log=scratch / "grader.log")
    return time.perf_counter() - started, results


def sandbox_seconds(result: GradingResult) -> dict[str, float]:
    per_question: dict[str, float] = {}
    for cell in result.extra.get("execution", {}).get("cells", []):
        key = cell.get("question") or "given"
        per_question[key] = per_question.get(key, 0.0) + cell.get("seconds", 0.0)
    return per_question


def figures(result: GradingResult, question: str) -> list[str]:
    shown = []
    for check in result.checks:
        if check.question != question:
            continue
        for m in check.measured:
            threshold = m["threshold"]
            if threshold is None:
                shown.append(f"{m['label']} {m['value']:g}")
            else:
                shown.append(f"{m['label']} {m['value']:.4g} vs {threshold:.4g}")
    return list(dict.fromkeys(shown))  # tier tests repeat a figure


def report(name: str, week, bare: float, bare_q: dict, graded: float,
           result: GradingResult) -> None:
    scores = result.question_scores()
    sandbox_q = sandbox_seconds(result)
    print(f"\n{name}: {week.title}")
    print(f"  {'exercise':10} {'execute s':>9} {'in grader s':>11} {'score':>7}  measured (threshold)")
    for qid in ["given", *week.questions]:
        got, most = scores.get(qid, (0.0, 0.0))
        score = f"{got:g}/{most:g}" if qid != "given" else ""
        print(f"  {qid:10} {bare_q.get(qid, 0):9.1f} {sandbox_q.get(qid, 0):11.1f} {score:>7}  "
              + "; ".join(figures(result, qid) if qid != "given" else []))
    print(f"  total: executed in {bare:.1f} s, graded in {graded:.1f} s "
          f"({result.score:g}/{result.max_score:g} points); grading overhead "
          f"{graded / bare:.2f}x (+{graded - bare:.1f} s)")
    timing = result.extra.get("timing", {})
    moved = timing.get("export", 0.0) + timing.get("clean_room", 0.0)
    print(f"  clean room: export {timing.get('export', 0.0):.1f} s + rooms "
          f"{timing.get('clean_room', 0.0):.1f} s = {moved:.1f} s, {moved / graded:.1%} of the "
          f"grading time (notebook {timing.get('notebook', 0.0):.1f} s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("weeks", nargs="*")
    args = parser.parse_args()
    course = Course(ROOT)
    for name in args.weeks or course.weeks():
        week = course.built_week(name)
        prepare_for(week.data)
        notebook = course.source(name) / week.notebook
        bare, bare_q = execute_bare(notebook, week)
        with tempfile.TemporaryDirectory(prefix=f"bench-{name}-") as scratch:
            graded, results = grade(week, notebook, Path(scratch))
        report(name, week, bare, bare_q, graded, results)


if __name__ == "__main__":
    main()
