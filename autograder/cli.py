"""The ``autograder`` command: compile, check, grade."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from autograder import __version__
from autograder.compiler import compile_week
from autograder.grading.results import gradebook_csv, summary_table, write_atomically
from autograder.grading.runner import grade_notebook
from autograder.sandbox.isolation import detect
from autograder.weeks import CONFIG_NAME, Course, Week


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="autograder", description=__doc__)
    parser.add_argument("--version", action="version", version=f"autograder {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    p = commands.add_parser("compile", help="write release/<week> and assignments/<week>")
    p.add_argument("weeks", nargs="*", help="weeks to compile (default: every week)")
    p.add_argument("--no-verify", action="store_true",
                   help="skip running the reference solution against the checks")

    p = commands.add_parser("check", help="run a release notebook and its public checks")
    p.add_argument("notebook", type=Path)

    p = commands.add_parser("grade", help="grade submissions against a week's checks")
    p.add_argument("week")
    p.add_argument("submissions", nargs="+", type=Path, help="notebooks or folders of them")
    p.add_argument("--out", type=Path, required=True, help="where results go")

    args = parser.parse_args(argv)
    return {"compile": cmd_compile, "check": cmd_check, "grade": cmd_grade}[args.command](args)


def cmd_compile(args) -> int:
    course = Course()
    for week in args.weeks or course.weeks():
        compile_week(course, week, verify=not args.no_verify)
    return 0


def cmd_check(args) -> int:
    notebook = args.notebook.resolve()
    folder = notebook.parent
    if not (folder / CONFIG_NAME).exists():
        print(f"error: {folder} has no {CONFIG_NAME}; check a notebook inside its release "
              "folder (e.g. release/week1/week1.ipynb)", file=sys.stderr)
        return 2
    week = Week.load(folder)
    print(f"Running {notebook.name} and its public checks (this runs every cell) ...")
    with tempfile.TemporaryDirectory(prefix="ag-check-") as scratch:
        results = grade_notebook(week, notebook, Path(scratch) / "results.json",
                                 tests=folder / "checks", log=Path(scratch) / "check.log")
    for qid, question in week.questions.items():
        print(f"\n{qid}: {question.title}")
        for test in (t for t in results["tests"] if t["extra_data"].get("question") == qid):
            mark = "PASS" if test["status"] == "passed" else "FIX "
            print(f"  {mark} {test['name'].split(': ', 1)[-1]}")
            for line in test["output"].splitlines() if test["status"] != "passed" else []:
                print(f"       {line}")
    passed = sum(t["status"] == "passed" for t in results["tests"])
    print(f"\n{passed} of {len(results['tests'])} public checks pass. Hidden checks run "
          "when you submit.")
    return 0 if passed == len(results["tests"]) else 1


def cmd_grade(args) -> int:
    course = Course()
    week = course.built_week(args.week)
    submissions = _expand(args.submissions)
    if not submissions:
        print("error: no .ipynb submissions found", file=sys.stderr)
        return 2
    isolation = detect()
    print(isolation.describe())
    for gap in isolation.missing():
        print(f"WARNING: {gap}", file=sys.stderr)
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    graded = {}
    for name, path in submissions.items():
        target = out / name
        target.mkdir(parents=True, exist_ok=True)
        print(f"grading {name} ...", flush=True)
        graded[name] = grade_notebook(week, path, target / "results.json",
                                      log=target / "grader.log")
        print(f"  {graded[name]['score']:g} points", flush=True)
    write_atomically(out / "gradebook.csv", gradebook_csv(week, graded))
    print()
    print(summary_table(week, graded))
    print(f"\nresults: {out}/<submission>/results.json, gradebook: {out / 'gradebook.csv'}")
    return 0


def _expand(paths: list[Path]) -> dict[str, Path]:
    """Submission name -> notebook; folders contribute their *.ipynb files."""
    found: dict[str, Path] = {}
    for path in paths:
        notebooks = sorted(path.glob("*.ipynb")) if path.is_dir() else [path]
        for notebook in notebooks:
            name, n = notebook.stem, 2
            while name in found:
                name, n = f"{notebook.stem}-{n}", n + 1
            found[name] = notebook.resolve()
    return found


if __name__ == "__main__":
    sys.exit(main())
