"""Grading from bundles: throughput and memory against grading by execution and otter.

    .venv/bin/python benchmarks/from_bundles.py                  # weeks 1 and 3, 20 each
    .venv/bin/python benchmarks/from_bundles.py --weeks week1 --copies 1   # a quick trial
    (--jobs N, --local (no Docker), --no-otter, --audit FRACTION, --work DIR)

One run, one machine, the same number of workers everywhere. Per week:

* Submissions: week 1, the 4 samples of tests/week1_submissions.py (correct, partial,
  wrong, crashing); week 3, the reference and the 'wrong' sample; `--copies` of each
  (default 5 and 10: 20 per week), every copy made distinct by a comment line at the top
  of its first answer cell, so each has its own code digest and its own bundle.
* executing: `autograder grade WEEK DIR --docker --jobs N`. It writes each submission's
  bundle beside its results (what the student's own run would have saved: grading by
  execution and a student's run save the same bundle, tests/test_grading_from_bundles.py).
* from bundles: the same notebooks with those bundles beside them (`<name>.bundle.zip`),
  `autograder grade WEEK DIR --from-bundle`, into a new output folder;
* from bundles + audit: the same, with `--audit FRACTION` (default 0.1) into a third
  folder. Which submissions the audit draws depends on the folder's random seed, so the
  run prints how many it re-executed and what one audit cost.
* otter (week 1 only): `otter grade` on the same submissions in otter's own notebook, as
  benchmarks/otter_vs_docker.py does it (see there for how otter runs offline).

Printed: wall clock of each whole command, submissions per minute, ratios, the memory of
each grading container (median / max; see otter_vs_docker.ContainerMemory), whether every
submission got the same total both ways, the bundle sizes, where a bundle grading spends its
time (results.json extra_data.timing), and a class of 200 projected from the measured
per-submission time.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))
import otter_vs_docker as otterbench  # noqa: E402
from autograder.grading.results import read_results  # noqa: E402
import sample_notebooks  # noqa: E402
import week1_submissions  # noqa: E402
import week3_submissions  # noqa: E402

BIN = Path(sys.executable).parent
SUFFIX = ".bundle.zip"
CLASS = 200


def log(message: str) -> None:
    print(f"[from-bundles] {message}", file=sys.stderr, flush=True)


# -- submissions ----------------------------------------------------------------------
def week3_notebooks(copies: int) -> list[tuple[str, nbformat.NotebookNode]]:
    samples = {"reference": sample_notebooks.reference("week3", ROOT),
               **{name: week3_submissions.submission(answers)
                  for name, (answers, _) in week3_submissions.SAMPLE_SUBMISSIONS.items()}}
    made = []
    for copy in range(1, copies + 1):
        for name, notebook in samples.items():
            stem = f"{name}-{copy}"
            notebook = nbformat.from_dict(json.loads(json.dumps(notebook)))
            first = next(c for c in notebook.cells if sample_notebooks.grade_id(c) == "q1")
            first.source = f"# benchmark submission {stem}\n{first.source}"
            made.append((stem, notebook))
    return made


def write_week(week: str, copies: int, work: Path, otter: bool) -> tuple[list[str], Path | None]:
    """The week's submissions in work/subs (and otter's in work/subs-otter for week 1);
    returns their names and otter's autograder zip."""
    subs = work / "subs"
    if week == "week1":
        names = otterbench.submission_names(copies, None)
        student, zip_path = otterbench.build_otter_assignment(work)
        otterbench.write_submissions(names, subs, work / "subs-otter", student)
        return [stem for stem, _ in names], zip_path if otter else None
    subs.mkdir(parents=True)
    made = week3_notebooks(copies)
    for stem, notebook in made:
        nbformat.write(notebook, subs / f"{stem}.ipynb")
    return [stem for stem, _ in made], None


def stage_bundles(week: str, names: list[str], subs: Path, executed: Path, target: Path) -> dict:
    """The notebooks with the bundles their execution wrote; returns name -> bundle bytes."""
    target.mkdir()
    sizes = {}
    for name in names:
        shutil.copy(subs / f"{name}.ipynb", target / f"{name}.ipynb")
        bundle = executed / name / f"{week}{SUFFIX}"
        if bundle.exists():
            shutil.copy(bundle, target / f"{name}{SUFFIX}")
            sizes[name] = bundle.stat().st_size
    return sizes


# -- one timed grading ------------------------------------------------------------------
def grade(week: str, subs: Path, out: Path, args, *extra: str) -> dict:
    command = [BIN / "autograder", "grade", week, subs, "--out", out, "--jobs", str(args.jobs),
               *(["--docker"] if not args.local else []), *extra]
    log(" ".join(map(str, command)))
    seconds, memory, code = otterbench.timed(command, lambda image: image == otterbench.OUR_IMAGE,
                                             out.with_suffix(".log"))
    log(f"  {seconds:.1f} s (exit {code})")
    return {"seconds": seconds, "memory": memory, "exit": code, "rows": gradebook(out)}


def gradebook(out: Path) -> dict[str, dict]:
    try:
        with open(out / "gradebook.csv") as handle:
            return {row["submission"]: row for row in csv.DictReader(handle)}
    except OSError:
        return {}


def timing(out: Path, names: list[str]) -> dict[str, float]:
    """Median seconds per part of a grading (results.json extra_data.timing)."""
    parts: dict[str, list[float]] = {}
    for name in names:
        result = read_results(out / name / "results.json")
        if result is None:
            continue
        for part, seconds in result.extra.get("timing", {}).items():
            parts.setdefault(part, []).append(seconds)
        parts.setdefault("total", []).append(result.execution_time)
    return {part: statistics.median(values) for part, values in parts.items()}


def run_week(week: str, copies: int, args, work: Path) -> dict:
    work.mkdir(parents=True)
    names, otter_zip = write_week(week, copies, work, otter=not args.no_otter)
    runs = {"executing": grade(week, work / "subs", work / "executed", args)}
    sizes = stage_bundles(week, names, work / "subs", work / "executed", work / "subs-bundles")
    runs["from bundles"] = grade(week, work / "subs-bundles", work / "from-bundles", args,
                                 "--from-bundle")
    runs[f"from bundles + {args.audit:g} audit"] = grade(
        week, work / "subs-bundles", work / "audited", args, "--from-bundle",
        "--audit", str(args.audit))
    if otter_zip:
        otterbench.ensure_otter_base()
        log(f"otter image ready in {otterbench.warm_otter_image(otter_zip):.0f} s (not timed)")
        out = work / "out-otter"
        out.mkdir()
        command = [BIN / "otter", "grade", "-n", otterbench.OTTER_NAME, "-a", otter_zip,
                   "-o", out, "--containers", str(args.jobs), "--image", otterbench.OTTER_BASE,
                   "--no-network", "--timeout", "1200", work / "subs-otter"]
        log(" ".join(map(str, command)))
        seconds, memory, code = otterbench.timed(
            command, lambda image: image == otterbench.OTTER_IMAGE, work / "otter.log")
        log(f"  {seconds:.1f} s (exit {code})")
        runs["otter grade"] = {"seconds": seconds, "memory": memory, "exit": code, "rows": {}}
    return {"names": names, "runs": runs, "sizes": sizes,
            "timing": {"executing": timing(work / "executed", names),
                       "from bundles": timing(work / "from-bundles", names)}}


# -- report --------------------------------------------------------------------------------
def report(week: str, found: dict, args) -> None:
    names, runs = found["names"], found["runs"]
    n = len(names)
    executing = runs["executing"]["seconds"]
    otter = runs.get("otter grade", {}).get("seconds")
    print(f"\n== {week}: {n} submissions, {args.jobs} workers, {os.cpu_count()} cores"
          f"{' (no Docker)' if args.local else ' (--docker)'}")
    header = ["grading", "wall s", "subm/min", "vs executing", "vs otter",
              "mem/worker MB median/max", "exit"]
    rows = []
    for label, run in runs.items():
        memory = run["memory"]
        rows.append([label, f"{run['seconds']:.1f}", f"{n / run['seconds'] * 60:.2f}",
                     f"{executing / run['seconds']:.2f}x",
                     f"{otter / run['seconds']:.2f}x" if otter else "",
                     f"{memory['stats_median_mb']:.0f} / {memory['stats_max_mb']:.0f}"
                     if memory["containers"] else "n/a", str(run["exit"])])
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, ["-" * w for w in widths], *rows]:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())

    executed = runs["executing"]["rows"]
    for label, run in runs.items():
        if label in ("executing", "otter grade"):
            continue
        modes = [run["rows"].get(name, {}).get("mode", "-") for name in names]
        differ = [name for name in names
                  if run["rows"].get(name, {}).get("total") != executed.get(name, {}).get("total")]
        print(f"{label}: modes {dict((m, modes.count(m)) for m in sorted(set(modes)))}; "
              f"totals as executing: {n - len(differ)} of {n}"
              + (f" (differ: {', '.join(differ)})" if differ else ""))
        audits = {name: row.get("audit", "") for name, row in run["rows"].items()
                  if row.get("audit")}
        if audits:
            print(f"  audited {len(audits)}: "
                  + ", ".join(f"{name} {outcome}" for name, outcome in sorted(audits.items())))
            extra = run["seconds"] - runs["from bundles"]["seconds"]
            print(f"  the audit added {extra:.0f} s, {extra / len(audits):.0f} s per audited "
                  f"submission")

    sizes = sorted(found["sizes"].values())
    if sizes:
        print(f"bundle sizes: median {statistics.median(sizes) / 1e6:.2f} MB, "
              f"max {sizes[-1] / 1e6:.2f} MB ({len(sizes)} bundles)")
    for label, parts in found["timing"].items():
        print(f"{label}, median seconds per submission: "
              + ", ".join(f"{part} {seconds:.1f}" for part, seconds in parts.items()))
    per_submission = runs["from bundles"]["seconds"] / n
    print(f"a class of {CLASS} from bundles, projected: {CLASS * per_submission / 60:.0f} min "
          f"({per_submission:.1f} s per submission of wall clock with {args.jobs} workers); "
          f"executing: {CLASS * executing / n / 60:.0f} min")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weeks", type=lambda text: text.split(","), default=["week1", "week3"])
    parser.add_argument("--copies", type=int, help="copies of each sample (default: 20 per week)")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--audit", type=float, default=0.1)
    parser.add_argument("--local", action="store_true", help="grade without Docker")
    parser.add_argument("--no-otter", action="store_true", help="leave otter out (week 1)")
    parser.add_argument("--work", type=Path, help="working folder (kept; default: temporary)")
    args = parser.parse_args()
    if not args.local and not otterbench.image_exists(otterbench.OUR_IMAGE):
        sys.exit(f"{otterbench.OUR_IMAGE} is missing: build it with scripts/build-image")

    work = args.work or Path(tempfile.mkdtemp(prefix="from-bundles-"))
    found = {}
    for week in args.weeks:
        copies = args.copies or {"week1": 5, "week3": 10}[week]
        found[week] = run_week(week, copies, args, work / week)
    for week, result in found.items():
        report(week, result, args)
    print(f"\nworking folder: {work}" if args.work else "")
    if not args.work:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
