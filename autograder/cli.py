"""The ``autograder`` command: compile, check, grade."""

from __future__ import annotations

import argparse
import functools
import sys
import tempfile
from pathlib import Path

from autograder import __version__
from autograder.compiler import compile_week
from autograder.errors import AutograderError
from autograder.grading.bundle import SUFFIX as BUNDLE_SUFFIX
from autograder.grading.results import class_summary, class_summary_table, summary_table
from autograder.grading.runner import grade_notebook
from autograder.lms import add_gradebook_command, cmd_gradebook
from autograder.sandbox.isolation import detect, require_confinement
from autograder.submissions import bundle_beside
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
    p.add_argument("submissions", nargs="+", type=Path,
                   help="notebooks, folders of them, a Gradescope export zip (or its folder), "
                        "an nbgrader submitted/<student>/<week>/ tree")
    p.add_argument("--out", type=Path, required=True, help="where results go")
    p.add_argument("--jobs", "-j", type=_positive, default=1,
                   help="gradings at once (default 1; each needs a CPU core and its memory)")
    p.add_argument("--regrade", action="store_true",
                   help="grade again even submissions already graded in --out")
    p.add_argument("--from-bundle", action="store_true",
                   help="grade a submission from the bundle handed in beside its notebook "
                        "(<notebook>.bundle.zip, or <week>.bundle.zip in its own folder) "
                        "without executing it; without one, or if it does not match, the "
                        "notebook is executed and grader.log says why")
    p.add_argument("--audit", type=_fraction, default=0.0, metavar="FRACTION",
                   help="then execute again this fraction of the submissions graded from "
                        "bundles (a sample fixed by OUT/audit.seed) and compare")
    p.add_argument("--audit-name", action="append", default=[], metavar="NAME",
                   help="audit this submission too (repeat for more)")
    p.add_argument("--docker", action="store_true", help="grade each submission in a container")
    p.add_argument("--image", help="the container image (implies --docker)")
    p.add_argument("--max-notebook-mb", type=float, default=50,
                   help="refuse larger notebooks (default 50)")
    p.add_argument("--allow-unconfined", action="store_true",
                   help="grade even where student code cannot be confined (not root, no "
                        "user namespaces for bubblewrap): it then runs as you, seeing "
                        "all your files")
    slurm = p.add_argument_group("Slurm (defaults: [slurm] in the course's autograder.toml)")
    slurm.add_argument("--slurm", action="store_true",
                       help="grade as Slurm job arrays, one task per submission; --out must "
                            "be on a file system the nodes share")
    slurm.add_argument("--no-wait", action="store_true",
                       help="return once submitted (see `autograder status OUT`)")
    slurm.add_argument("--partition")
    slurm.add_argument("--account")
    slurm.add_argument("--qos")
    slurm.add_argument("--requeue", action="store_true", default=None,
                       help="let Slurm requeue a task whose node failed")
    slurm.add_argument("--parallel", type=_positive, metavar="P",
                       help="tasks of an array running at once (--array=0-N%%P)")
    slurm.add_argument("--time-minutes", type=_positive, metavar="MIN",
                       help="a shorter time limit per task than the week's budget asks")

    p = commands.add_parser("status", help="where the gradings of an output folder are: "
                                           "graded, running, queued, failed")
    p.add_argument("out", type=Path)
    p.add_argument("--cancel", action="store_true",
                   help="cancel the folder's queued and running Slurm tasks")

    p = commands.add_parser("audit", help="execute again submissions of a graded folder that "
                                          "were graded from bundles, and compare")
    p.add_argument("out", type=Path, help="a folder `autograder grade ... --from-bundle` wrote")
    p.add_argument("--fraction", type=_fraction, default=None,
                   help="the sample to audit (default 0.1; 0 with --only)")
    p.add_argument("--only", nargs="+", default=[], metavar="NAME",
                   help="audit these submissions (by folder name)")
    p.add_argument("--jobs", "-j", type=_positive, default=1)
    p.add_argument("--docker", action="store_true", help="execute in containers")
    p.add_argument("--image", help="the container image (implies --docker)")
    p.add_argument("--allow-unconfined", action="store_true",
                   help="execute even where student code cannot be confined")

    written = commands.add_parser(
        "written", help="written answers: pages and a sheet for TAs, and their scores back"
    ).add_subparsers(dest="action", required=True)
    p = written.add_parser("export", help="OUT/written/: a page per question (answers "
                                          "anonymised), written.csv to fill in")
    p.add_argument("week")
    p.add_argument("out", type=Path, help="a folder `autograder grade --out` wrote")
    p.add_argument("--names", action="store_true",
                   help="show submission names instead of anonymous labels")
    p.add_argument("--pdf", action="store_true",
                   help="also OUT/written/pdf/<submission>.pdf, a page per question "
                        "(Gradescope), through headless Chromium")
    p = written.add_parser("import", help="merge a filled-in written.csv into every result")
    p.add_argument("week")
    p.add_argument("out", type=Path)
    p.add_argument("sheet", type=Path, help="the filled-in written.csv")

    p = commands.add_parser("image", help="the autograder Docker image (one for every week)")
    p.add_argument("action", choices=["build"])
    p.add_argument("--tag", help="image name (default $AUTOGRADER_IMAGE or aml-autograder:latest)")
    p.add_argument("--base", help="base image, e.g. python:3.11-slim or Gradescope's "
                                  "(default $AUTOGRADER_BASE_IMAGE or autograder-base:bookworm, "
                                  "which scripts/make-base-image makes)")

    p = commands.add_parser("gradescope", help="what to upload to Gradescope for a week")
    p.add_argument("week")
    p.add_argument("--out", type=Path, default=Path("out/gradescope"),
                   help="where the zip goes (default out/gradescope)")
    p.add_argument("--image", metavar="TAG",
                   help="also build the manual-Docker image: the autograder image + the week")
    p.add_argument("--try", dest="tries", type=Path, nargs="+", default=[], metavar="NOTEBOOK",
                   help="grade notebooks the way Gradescope would, in the image it builds "
                        "from the zip")
    p.add_argument("--base", help="base image for --try (default: the autograder image's base)")

    p = commands.add_parser("data", help="prepare the data sets weeks read (CIFAR-10, IMDB)")
    p.add_argument("action", choices=["prepare"])
    p.add_argument("names", nargs="*", metavar="NAME",
                   help="data sets (default: all: cifar10 imdb)")

    add_gradebook_command(commands)

    args = parser.parse_args(argv)
    command = {"compile": cmd_compile, "check": cmd_check, "grade": cmd_grade,
               "status": cmd_status, "written": cmd_written,
               "audit": cmd_audit, "image": cmd_image, "gradescope": cmd_gradescope,
               "data": cmd_data, "gradebook": cmd_gradebook}[args.command]
    try:
        return command(args)
    except AutograderError as error:  # the library's errors, each with a message to act on
        print(f"error: {error}", file=sys.stderr)
        return 1


def cmd_data(args) -> int:
    """Fill the data cache ($AML_DATA_DIR) from $AML_DATASETS' offline copies or Keras."""
    from autograder import data

    for name in args.names or sorted(data.DATA_SETS):
        folder = data.prepare(name)
        print(f"{name}: ready in {folder}")
    return 0


def cmd_image(args) -> int:
    from autograder.container import build_image

    build_image(args.tag, args.base)
    return 0


def cmd_gradescope(args) -> int:
    from autograder.gradescope import command

    return command(Course(), args.week, args.out.resolve(), image=args.image,
                   base=args.base, tries=[t.resolve() for t in args.tries])


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
    bundle = bundle_beside(notebook, week)
    if bundle is None:
        print(f"No {week.name}{BUNDLE_SUFFIX} beside the notebook (its last cell saves one).")
        print(f"Running {notebook.name} and its public checks (this runs every cell) ...")
    else:
        print(f"Checking {bundle.name} with the public checks, as the grader will ...")
    with tempfile.TemporaryDirectory(prefix="ag-check-") as scratch:
        result = grade_notebook(week, notebook, Path(scratch) / "results.json",
                                tests=folder / "checks", log=Path(scratch) / "check.log",
                                bundle=bundle)
    if result.extra.get("bundle_not_used"):
        print(f"\nYour bundle cannot be graded, so your notebook was run instead: "
              f"{result.extra['bundle_not_used']}")
    elif result.mode == "bundle":
        print(f"\n{bundle.name} matches the notebook and loads in the grader's clean room.")
    for qid, question in week.questions.items():
        print(f"\n{qid}: {question.title}")
        for check in (c for c in result.checks if c.question == qid):
            print(f"  {'PASS' if check.status == 'passed' else 'FIX '} {check.check}")
            for line in check.output.splitlines() if check.status != "passed" else []:
                print(f"       {line}")
    # As when graded: given cells run as released, code outside the answer cells not at all.
    for note in result.extra.get("not_run", []):
        print(f"\nNot run: {note}")
    passed = sum(c.status == "passed" for c in result.checks)
    print(f"\n{passed} of {len(result.checks)} public checks pass. Hidden checks run "
          "when you submit.")
    return 0 if passed == len(result.checks) else 1


def cmd_grade(args) -> int:
    from autograder.batch import OutputLock

    course = Course()
    week = course.built_week(args.week)
    out = args.out.resolve()
    # Refused (no confinement) before anything is written; on Slurm the nodes decide.
    grader = None if args.slurm else _grader(args)
    with OutputLock(out):
        return _grade_batch(args, week, out, grader)


def _grade_batch(args, week: Week, out: Path, grader) -> int:
    if args.slurm and (args.docker or args.image or args.audit or args.audit_name):
        print("error: with --slurm, tasks grade in the node's sandbox (no --docker), and "
              "an audit is run afterwards: `autograder audit OUT`", file=sys.stderr)
        return 2
    from autograder.batch import Batch, Progress
    from autograder.submissions import discover

    found = discover(args.submissions, week, out / ".inputs",
                     max_bytes=int(args.max_notebook_mb * 1024 * 1024))
    for message in found.skipped:
        print(f"skipped: {message}", file=sys.stderr)
    if not found.submissions:
        print("error: no .ipynb submissions found", file=sys.stderr)
        return 2
    if args.slurm:
        return _grade_on_slurm(args, week, out, found.submissions)
    print(f"{len(found.submissions)} submission(s), {args.jobs} at a time", flush=True)
    if args.from_bundle:
        bundles = sum(sub.bundle is not None for sub in found.submissions)
        print(f"{bundles} of {len(found.submissions)} submission(s) handed in a bundle")
    batch = Batch(week, out, grader, jobs=args.jobs, regrade=args.regrade,
                  from_bundle=args.from_bundle, progress=Progress(len(found.submissions)))
    try:
        outcome = batch.run(found.submissions)
    except KeyboardInterrupt:
        print("\ninterrupted: finished results are kept; run the same command again to "
              "grade the rest", file=sys.stderr)
        return 130
    if args.audit or args.audit_name:
        from autograder.audit import audit_folder

        audit_folder(week, out, grader, fraction=args.audit, only=tuple(args.audit_name),
                     jobs=args.jobs)
    _report(week, out)
    for name, why in outcome.failed.items():
        print(f"error: {name} was not graded ({why}); run the same command again to retry",
              file=sys.stderr)
    return 1 if outcome.failed else 0


def _grade_on_slurm(args, week: Week, out: Path, submissions) -> int:
    from autograder import slurm
    from autograder.batch import Progress

    course = Course()
    options = slurm.SlurmOptions.load(
        course.root, partition=args.partition, account=args.account, qos=args.qos,
        requeue=args.requeue, parallel=args.parallel, time_minutes=args.time_minutes)
    submitted, graded, held = slurm.submit_class(
        week, out, submissions, options=options, from_bundle=args.from_bundle,
        allow_unconfined=args.allow_unconfined, course_root=course.root,
        regrade=args.regrade)
    print(f"{len(submissions)} submission(s): {len(graded)} already graded, {len(held)} "
          f"held by tasks of an earlier run, {len(submitted)} submitted to Slurm", flush=True)
    if args.no_wait:
        print(f"not waiting: `autograder status {out}` shows progress; run the same "
              "command again to wait and build the gradebook")
        return 0
    waiting = [sub.name for sub in submissions if sub.name not in graded]
    progress = Progress(len(submissions))
    progress.start(len(submissions), done=len(graded))
    states = slurm.wait(out, waiting, progress)
    progress.close()
    _report(week, out)
    failed = [name for name, state in states.items() if state != "graded"]
    for name in failed:
        log = slurm.task_log(out, name)
        print(f"error: {name} has no result (its task ended without one; log: {log}); run "
              "the same command again to retry", file=sys.stderr)
    return 1 if failed else 0


def cmd_status(args) -> int:
    from autograder import slurm

    out = args.out.resolve()
    if not out.is_dir():
        print(f"error: {out} is not a folder", file=sys.stderr)
        return 2
    if args.cancel:
        print(f"cancelling the tasks of {slurm.cancel(out)} array(s)")
    states = slurm.status(out)
    for name, state in states.items():
        print(f"{state:8} {name}")
    counts = {s: sum(v == s for v in states.values())
              for s in ("graded", "running", "queued", "failed")}
    print(", ".join(f"{n} {s}" for s, n in counts.items()))
    return 0


def _report(week: Week, out: Path) -> None:
    """The gradebook and class summary, rebuilt from every result in OUT, and printed."""
    from autograder.batch import write_gradebook

    graded = write_gradebook(week, out)
    per_question = class_summary(week, graded)
    print()
    print(summary_table(week, graded))
    print(f"\nclass summary ({len(graded)} submissions; columns after max: how many "
          "scored in each band of the points)")
    print(class_summary_table(per_question))
    print(f"\nresults: {out}/<submission>/results.json and feedback.html, "
          f"gradebook: {out / 'gradebook.csv'}, summary: {out / 'summary.csv'}")


def cmd_audit(args) -> int:
    from autograder.audit import audit_folder
    from autograder.batch import OutputLock, write_gradebook
    from autograder.lms import graded_week

    out = args.out.resolve()
    week = graded_week(out)
    fraction = args.fraction if args.fraction is not None else (0.0 if args.only else 0.1)
    with OutputLock(out):
        audits = audit_folder(week, out, _grader(args), fraction=fraction,
                              only=tuple(args.only), jobs=args.jobs)
        write_gradebook(week, out)
    print(f"{len(audits)} audited: " + ", ".join(
        f"{sum(a.outcome == o for a in audits.values())} {o}"
        for o in ("reproduced", "differs", "not reproduced")) + f"; gradebook: "
        f"{out / 'gradebook.csv'} (column audit), details: OUT/<name>/grader.log")
    return 0


def cmd_written(args) -> int:
    from autograder.written.roundtrip import export_written, import_written

    week = Course().built_week(args.week)
    out = args.out.resolve()
    if not out.is_dir():
        print(f"error: {out} is not a folder", file=sys.stderr)
        return 2
    if args.action == "export":
        done = export_written(week, out, anonymise=not args.names, as_pdf=args.pdf)
        for note in done.notes:
            print(f"note: {note}", file=sys.stderr)
        print(f"{done.submissions} submission(s), {done.to_grade} answer(s) to grade")
        for path in done.pages:
            print(f"  {path}")
        print(f"fill in {done.folder / 'written.csv'} (points, comment), then: autograder "
              f"written import {week.name} {args.out} written.csv")
        if args.pdf:
            print(f"{len(done.pdfs)} PDF(s) in {done.folder / 'pdf'}, one page per question: "
                  + ", ".join(q.question for q in done.questions))
        return 1 if args.pdf and len(done.pdfs) < done.submissions else 0
    done = import_written(week, out, args.sheet)
    if done.errors:
        print(f"error: {args.sheet} was not imported, nothing changed:", file=sys.stderr)
        for error in done.errors:
            print(f"  {error}", file=sys.stderr)
        return 2
    print(f"imported {done.scored} score(s)")
    if done.missing:
        print(f"not graded yet ({len(done.missing)}): {', '.join(done.missing)}")
    for stale in done.stale:
        print(f"note: {stale}: the answer changed since it was graded; export and grade it "
              "again", file=sys.stderr)
    _report(week, out)
    return 0


def _grader(args):
    """grade_notebook, or grading in a container with --docker / --image."""
    if args.docker or args.image:
        from autograder.container import grade_in_container  # only needed with Docker

        return functools.partial(grade_in_container,
                                 **({"image": args.image} if args.image else {}))
    isolation = detect()
    print(isolation.describe())
    require_confinement(isolation, allow_unconfined=args.allow_unconfined)
    for gap in isolation.missing():
        print(f"WARNING: {gap}", file=sys.stderr)
    return grade_notebook


def _fraction(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError("must be between 0 and 1")
    return value


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


if __name__ == "__main__":
    sys.exit(main())
