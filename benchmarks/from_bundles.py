"""Grading from bundles: throughput and memory against grading by execution and otter.

    .venv/bin/python benchmarks/from_bundles.py                  # weeks 1 and 3, 20 each
    .venv/bin/python benchmarks/from_bundles.py --weeks week1 --copies 1   # a quick trial
    (--copies week1=5,week3=5, --jobs N, --local (no Docker), --no-otter, --audit FRACTION,
     --work DIR)

One run, one machine, the same number of workers everywhere. Per week:

* Submissions: week 1, the 4 samples of tests/week1_submissions.py (correct, partial,
  wrong, crashing); week 3, the reference and the 'wrong' sample; `--copies` of each
  (default 5 and 10: 20 per week), every copy a distinct file (a markdown line at the top
  names it), its code that of its sample.
* executing: `autograder grade WEEK DIR --docker --jobs N`, which writes each submission's
  bundle beside its results, the bundle the student's own run saves (grading by execution
  and a student's run save the same bundle: tests/test_grading_from_bundles.py). Week 3
  executes all 20 (the figure to beat); week 1 executes one copy of each sample, only to
  make the bundles (otter is the figure to beat there), and a bundle serves every copy of
  its sample, since a bundle names the code it was made from, not the file.
* from bundles: the 20 notebooks with their bundles beside them (`<name>.bundle.zip`),
  `autograder grade WEEK DIR --from-bundle`, into a new output folder;
* audit: then `autograder audit OUT --fraction F` (default 0.1) on that folder, as a TA
  would after the batch (`grade --audit F` does the same in one command). The sample
  follows the folder's seed; the benchmark writes the first seed that draws round(F x N)
  submissions, so a run audits exactly its share;
* otter (week 1 only): `otter grade` on the same submissions in otter's own notebook, as
  benchmarks/otter_vs_docker.py does it (see there for how otter runs offline).

Printed: wall clock of each whole command, submissions per minute, ratios, the memory of
each grading container (median / max; see otter_vs_docker.ContainerMemory), whether every
submission got the same total from its bundle as by executing, the bundle sizes, where a
bundle grading spends its time (results.json extra_data.timing), and a class of 200
projected from the measured per-submission time.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))
import otter_vs_docker as otterbench  # noqa: E402
from autograder.audit import SEED_FILE, chosen  # noqa: E402
from autograder.batch import SIDECAR  # noqa: E402
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
def samples(week: str) -> dict[str, nbformat.NotebookNode]:
    if week == "week1":
        return {name: week1_submissions.submission(answers)
                for name, answers in week1_submissions.SAMPLE_SUBMISSIONS.items()}
    return {"reference": sample_notebooks.reference("week3", ROOT),
            **{name: week3_submissions.submission(answers)
               for name, answers in week3_submissions.SAMPLE_SUBMISSIONS.items()}}


def write_submissions(week: str, copies: int, folder: Path) -> dict[str, str]:
    """``copies`` of each sample, distinct files with their sample's code; name -> sample."""
    folder.mkdir(parents=True)
    made = {}
    for copy in range(1, copies + 1):
        for sample, notebook in samples(week).items():
            stem = f"{sample}-{copy}"
            notebook = nbformat.from_dict(json.loads(json.dumps(notebook)))
            notebook.cells.insert(0, nbformat.v4.new_markdown_cell(f"Submission {stem}"))
            nbformat.write(notebook, folder / f"{stem}.ipynb")
            made[stem] = sample
    return made


def write_otter_submissions(names: dict[str, str], work: Path) -> Path:
    """The same submissions in otter's notebook; returns otter's autograder zip."""
    student, zip_path = otterbench.build_otter_assignment(work)
    ours = work / "otter-ours"  # otter_vs_docker writes both sides; ours is not used
    otterbench.write_submissions(list(names.items()), ours, work / "subs-otter", student)
    shutil.rmtree(ours)
    return zip_path


def stage_bundles(week: str, names: dict[str, str], subs: Path, executed: Path,
                  target: Path) -> dict[str, int]:
    """The notebooks with the bundles their execution wrote (a copy's bundle is its
    sample's, when only one copy was executed); returns name -> bundle bytes."""
    target.mkdir()
    sizes = {}
    for name, sample in names.items():
        shutil.copy(subs / f"{name}.ipynb", target / f"{name}.ipynb")
        bundle = next((b for b in (executed / name / f"{week}{SUFFIX}",
                                   executed / f"{sample}-1" / f"{week}{SUFFIX}") if b.exists()),
                      None)
        if bundle is not None:
            shutil.copy(bundle, target / f"{name}{SUFFIX}")
            sizes[name] = bundle.stat().st_size
    return sizes


def fix_audit_seed(out: Path, fraction: float) -> int:
    """Write the first seed that draws round(fraction x N) of ``out``'s submissions."""
    digests = [json.loads(p.read_text())["sha256"] for p in out.glob(f"*/{SIDECAR}")]
    wanted = round(fraction * len(digests))
    for attempt in range(10_000):
        seed = f"benchmark-{attempt}"
        if sum(chosen(seed, d, fraction) for d in digests) == wanted:
            (out / SEED_FILE).write_text(seed + "\n")
            return wanted
    raise RuntimeError("no seed draws the fraction exactly")


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
    names = write_submissions(week, copies, work / "subs")
    executing = work / "subs" if week == "week3" else work / "subs-executed"
    if week != "week3":  # one copy of each sample, for its bundle
        executing.mkdir()
        for name in (n for n in names if n.endswith("-1")):
            shutil.copy(work / "subs" / f"{name}.ipynb", executing)
    runs = {"executing": grade(week, executing, work / "executed", args)}
    runs["executing"]["submissions"] = len(list(executing.glob("*.ipynb")))
    sizes = stage_bundles(week, names, work / "subs", work / "executed", work / "subs-bundles")
    out = work / "from-bundles"
    runs["from bundles"] = grade(week, work / "subs-bundles", out, args, "--from-bundle")
    audited = fix_audit_seed(out, args.audit)
    command = [BIN / "autograder", "audit", out, "--fraction", str(args.audit),
               "--jobs", str(args.jobs), *(["--docker"] if not args.local else [])]
    log(" ".join(map(str, command)))
    seconds, memory, code = otterbench.timed(
        command, lambda image: image == otterbench.OUR_IMAGE, work / "audit.log")
    log(f"  {seconds:.1f} s (exit {code})")
    runs[f"audit of {audited}"] = {"seconds": seconds, "memory": memory, "exit": code,
                                   "rows": gradebook(out), "submissions": audited}
    if week == "week1" and not args.no_otter:
        otter_zip = write_otter_submissions(names, work)
        otterbench.ensure_otter_base()
        log(f"otter image ready in {otterbench.warm_otter_image(otter_zip):.0f} s (not timed)")
        otter_out = work / "out-otter"
        otter_out.mkdir()
        command = [BIN / "otter", "grade", "-n", otterbench.OTTER_NAME, "-a", otter_zip,
                   "-o", otter_out, "--containers", str(args.jobs), "--image",
                   otterbench.OTTER_BASE, "--no-network", "--timeout", "1200",
                   work / "subs-otter"]
        log(" ".join(map(str, command)))
        seconds, memory, code = otterbench.timed(
            command, lambda image: image == otterbench.OTTER_IMAGE, work / "otter.log")
        log(f"  {seconds:.1f} s (exit {code})")
        runs["otter grade"] = {"seconds": seconds, "memory": memory, "exit": code, "rows": {}}
    return {"names": names, "runs": runs, "sizes": sizes,
            "timing": {"executing": timing(work / "executed", list(names)),
                       "from bundles": timing(out, list(names))}}


# -- report --------------------------------------------------------------------------------
def report(week: str, found: dict, args) -> None:
    names, runs = found["names"], found["runs"]
    n = len(names)
    per = {label: run["seconds"] / run.get("submissions", n) for label, run in runs.items()}
    bundles = runs["from bundles"]["seconds"]
    audit_label = next(label for label in runs if label.startswith("audit"))
    with_audit = bundles + runs[audit_label]["seconds"]
    print(f"\n== {week}: {n} submissions, {args.jobs} workers, {os.cpu_count()} cores"
          f"{' (no Docker)' if args.local else ' (--docker)'}")
    header = ["grading", "submissions", "wall s", "s per submission", "mem/worker MB median/max",
              "exit"]
    rows = []
    for label, run in runs.items():
        memory = run["memory"]
        rows.append([label, str(run.get("submissions", n)), f"{run['seconds']:.1f}",
                     f"{per[label]:.1f}",
                     f"{memory['stats_median_mb']:.0f} / {memory['stats_max_mb']:.0f}"
                     if memory["containers"] else "n/a", str(run["exit"])])
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, ["-" * w for w in widths], *rows]:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())

    print(f"from bundles: {n / bundles * 60:.1f} submissions/min; with the audit "
          f"({args.audit:g}): {n / with_audit * 60:.1f} submissions/min")
    for baseline in ("executing", "otter grade"):
        if baseline in per and runs[baseline].get("submissions", n) == n:
            print(f"  throughput vs {baseline}: {per[baseline] * n / bundles:.2f}x without "
                  f"audit, {per[baseline] * n / with_audit:.2f}x with it")
    if runs["executing"].get("submissions", n) != n:
        print(f"  (executing: {runs['executing']['submissions']} distinct notebooks, "
              f"{per['executing']:.0f} s of wall clock each with {args.jobs} workers)")

    executed, graded = runs["executing"]["rows"], runs["from bundles"]["rows"]
    modes = [graded.get(name, {}).get("mode", "-") for name in names]
    differ = [name for name, sample in names.items()
              if graded.get(name, {}).get("total") !=
              executed.get(name, executed.get(f"{sample}-1", {})).get("total")]
    print(f"from bundles: modes {dict((m, modes.count(m)) for m in sorted(set(modes)))}; "
          f"same total as executing: {n - len(differ)} of {n}"
          + (f" (differ: {', '.join(differ)})" if differ else ""))
    audits = {name: row.get("audit") for name, row in runs[audit_label]["rows"].items()
              if row.get("audit")}
    print(f"audit: {', '.join(f'{k} {v}' for k, v in sorted(audits.items())) or 'none'}")

    sizes = sorted(found["sizes"].values())
    if sizes:
        print(f"bundle sizes: median {statistics.median(sizes) / 1e6:.2f} MB, "
              f"max {sizes[-1] / 1e6:.2f} MB ({len(set(sizes))} distinct sizes)")
    for label, parts in found["timing"].items():
        # From a bundle, "notebook" is the student's own run as its record says: not spent here.
        named = {("the bundle's recorded run" if part == "notebook" and label != "executing"
                  else part): seconds for part, seconds in parts.items()}
        print(f"{label}, median seconds per submission: "
              + ", ".join(f"{part} {seconds:.1f}" for part, seconds in named.items()))
    audit_each = runs[audit_label]["seconds"] / max(1, runs[audit_label]["submissions"])
    print(f"a class of {CLASS} from bundles, projected: {CLASS * bundles / n / 60:.0f} min "
          f"({bundles / n:.1f} s of wall clock per submission with {args.jobs} workers), plus "
          f"{CLASS * args.audit * audit_each / 60:.0f} min for a {args.audit:g} audit "
          f"({audit_each:.0f} s per audited submission); executing: "
          f"{CLASS * per['executing'] / 60:.0f} min")


def copies_of(text: str):
    """--copies: "N" for every week, or "week1=5,week3=10"."""
    if "=" not in text:
        return lambda week: int(text)
    per_week = {week: int(n) for week, n in (part.split("=") for part in text.split(","))}
    return lambda week: per_week[week]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weeks", type=lambda text: text.split(","), default=["week1", "week3"])
    parser.add_argument("--copies", type=copies_of, default=copies_of("week1=5,week3=10"),
                        help="copies of each sample: N for every week, or e.g. week1=5,week3=5 "
                             "(default week1=5,week3=10: 20 submissions per week)")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--audit", type=float, default=0.1)
    parser.add_argument("--local", action="store_true", help="grade without Docker")
    parser.add_argument("--no-otter", action="store_true", help="leave otter out (week 1)")
    parser.add_argument("--work", type=Path, help="working folder (kept; default: temporary)")
    args = parser.parse_args()
    if not args.local and not otterbench.image_exists(otterbench.OUR_IMAGE):
        sys.exit(f"{otterbench.OUR_IMAGE} is missing: build it with scripts/build-image")

    work = args.work or Path(tempfile.mkdtemp(prefix="from-bundles-"))
    for week in args.weeks:  # each week's table as soon as it is measured
        report(week, run_week(week, args.copies(week), args, work / week), args)
        sys.stdout.flush()
    print(f"\nworking folder: {work}" if args.work else "")
    if not args.work:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
