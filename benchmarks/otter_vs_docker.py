"""Batch grading throughput and memory: our grader in Docker vs. `otter grade` (otter-grader 7).

    .venv/bin/python benchmarks/otter_vs_docker.py                 # 20 submissions, 2 workers
    .venv/bin/python benchmarks/otter_vs_docker.py --limit 2       # a quick trial
    (--jobs N, --copies N, --samples correct,partial,wrong, --work DIR, --ours local,
     --only ours|otter, --keep)

Same submissions, same machine, same run, same number of workers on both sides:

* Submissions: the 4 week-1 samples of tests/week1_submissions.py (correct, partial,
  wrong, crashing), `--copies` (default 5) of each, every copy made distinct by a
  comment line at the top of its q1 answer cell; `--limit N` keeps the first N in the
  order correct-1, partial-1, wrong-1, crashing-1, correct-2, ...
* Ours: `autograder grade week1 DIR --out OUT --docker --jobs N` (image
  aml-autograder:latest, from scripts/build-image). `--ours local` grades without
  Docker (the host sandbox) instead.
* Otter: the same submissions converted to the otter assignment's student notebook
  (benchmarks/otter_week1/week1.ipynb, built with `otter assign`; the answer and
  training cells get the same code), graded with `otter grade -a autograder.zip
  --containers N --image otterbench-base:bookworm --no-network`.

Otter offline (what this script does before timing; nothing of it is timed):
otter's grading image runs the zip's setup.sh, which downloads Miniforge from GitHub and
builds a conda env from conda-forge; neither is reachable here, and otter has no pip-only
option. So the autograder zip's two environment files are replaced: setup.sh makes a
venv with the base image's Python 3.11 and pip-installs exactly the pip list otter
generate wrote into environment.yml (otter-grader[grading,plugins]==7.0.0 + our pinned
requirements.txt, the same pins as our image), and run_autograder runs otter's own
run_otter.py from that venv. Everything else (otter's Dockerfile, run_otter.py, tests,
otter_config.json, the grading code) is otter's. Differences left: conda's python 3.13
and jupyter_server are not installed (Python 3.11 like ours), nor the apt packages
otter's setup.sh adds (build-essential, jq, libcurl...). The base image
otterbench-base:bookworm is scripts/make-base-image's debootstrapped Debian bookworm
plus the host CA bundle (PIP_CERT/REQUESTS_CA_BUNDLE: otter's `docker build` cannot
take a BuildKit secret). The otter image is built once before timing (otter grade
rebuilds it every run; the layers are cached, so that costs seconds and is timed as
part of otter's run, as a user would see it).

Timing: wall clock of each whole command (discovery, containers, results). Throughput
= submissions per minute; ratio = ours / otter.
Memory per worker: a thread reads each grading container's memory cgroup every 0.5 s
(cgroup v1: /sys/fs/cgroup/memory/docker/<id>/; v2: .../docker-<id>.scope/) and keeps,
per container, the peak of usage minus inactive file cache (what `docker stats` shows)
and the cgroup's own peak (memory.max_usage_in_bytes / memory.peak, page cache
included). The table gives the median and max over a side's containers.
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
import threading
import time
import zipfile
from pathlib import Path

import nbformat
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from sample_outcomes import expected_points  # noqa: E402
from week1_submissions import SAMPLE_SUBMISSIONS, submission  # noqa: E402

MASTER = ROOT / "benchmarks" / "otter_week1" / "week1.ipynb"
BIN = Path(sys.executable).parent
OUR_IMAGE = os.environ.get("AUTOGRADER_IMAGE", "aml-autograder:latest")
DEBIAN_BASE = "autograder-base:bookworm"  # scripts/make-base-image
OTTER_BASE = "otterbench-base:bookworm"  # DEBIAN_BASE + the host CA bundle
OTTER_NAME = "otterbench-week1"  # otter grade -n: its image is otter-grade:otterbench-week1
OTTER_IMAGE = f"otter-grade:{OTTER_NAME}"
CA_BUNDLE = Path(os.environ.get("AUTOGRADER_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt"))
QUESTIONS = ["q1", "q2", "q3"]
ANSWER_CELLS = [cell for q in QUESTIONS for cell in (q, f"{q}_train")]

OTTER_SETUP_SH = """\
#!/usr/bin/env bash
# otterbench: pip-only stand-in for otter's conda setup.sh (Miniforge and conda-forge
# are not reachable here). Installs the pip list of otter's environment.yml, written to
# requirements.txt by benchmarks/otter_vs_docker.py, with the base image's Python.
set -euo pipefail
python3 -m venv /opt/otter-env
/opt/otter-env/bin/pip install --disable-pip-version-check --no-cache-dir \\
    -r /autograder/source/requirements.txt
"""
OTTER_RUN_AUTOGRADER = """\
#!/bin/bash
# otterbench: otter's run_autograder activates the conda env; this uses the venv.
export PATH=/opt/otter-env/bin:$PATH
python /autograder/source/run_otter.py
"""
BASE_DOCKERFILE = """\
FROM {base}
COPY ca.crt /usr/local/share/otterbench-host-ca.crt
ENV PIP_CERT=/usr/local/share/otterbench-host-ca.crt \\
    REQUESTS_CA_BUNDLE=/usr/local/share/otterbench-host-ca.crt
"""


def log(message: str) -> None:
    print(f"[otterbench] {message}", file=sys.stderr, flush=True)


def run(command: list, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in command], check=True, **kwargs)


def image_exists(tag: str) -> bool:
    return subprocess.run(["docker", "image", "inspect", tag], capture_output=True).returncode == 0


# -- submissions ----------------------------------------------------------------------
def submission_names(copies: int, limit: int | None,
                     samples: list[str] | None = None) -> list[tuple[str, str]]:
    """(file stem, sample) in the order correct-1, partial-1, wrong-1, crashing-1, ..."""
    names = [(f"{sample}-{copy}", sample) for copy in range(1, copies + 1)
             for sample in SAMPLE_SUBMISSIONS if not samples or sample in samples]
    return names[:limit] if limit else names


def write_submissions(names: list[tuple[str, str]], ours: Path, otter: Path,
                      otter_student: Path) -> None:
    """Our notebook per submission, and the same answer/training code in otter's notebook."""
    ours.mkdir(parents=True)
    otter.mkdir(parents=True)
    for stem, sample in names:
        answers = SAMPLE_SUBMISSIONS[sample]
        notebook = submission(answers)
        code = {}
        for cell in notebook.cells:
            grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
            if grade_id == "q1":
                cell.source = f"# benchmark submission {stem}\n{cell.source}"
            if grade_id in ANSWER_CELLS:
                code[grade_id] = cell.source
        nbformat.write(notebook, ours / f"{stem}.ipynb")
        converted = nbformat.read(otter_student, as_version=4)
        for cell in converted.cells:
            grade_id = cell.get("metadata", {}).get("otterbench", {}).get("cell")
            if grade_id:
                cell.source = code[grade_id]
        missing = set(ANSWER_CELLS) - set(code)
        assert not missing, f"release notebook lacks answer cells {missing}"
        nbformat.write(converted, otter / f"{stem}.ipynb")


# -- otter's assignment, zip and images ---------------------------------------------------
def build_otter_assignment(work: Path) -> tuple[Path, Path]:
    """otter assign the master notebook; return (student notebook, patched autograder zip)."""
    build = work / "otter-assign"
    build.mkdir()
    shutil.copy(MASTER, build / "week1.ipynb")
    shutil.copy(ROOT / "requirements.txt", build / "requirements.txt")
    # The tests are checked against the reference once, when the image is warmed
    # (see check_reference); otter assign's own check would execute it on the host.
    run([BIN / "otter", "assign", "--no-run-tests", "week1.ipynb", "dist"], cwd=build,
        capture_output=True)
    [generated] = (build / "dist" / "autograder").glob("week1-autograder_*.zip")
    patched = work / "autograder.zip"
    with zipfile.ZipFile(generated) as source, zipfile.ZipFile(patched, "w") as target:
        for item in source.infolist():
            if item.filename in ("setup.sh", "run_autograder"):
                continue
            data = source.read(item.filename)
            target.writestr(item.filename, data)
            if item.filename == "environment.yml":
                environment = yaml.safe_load(data)
        pip = next(dep["pip"] for dep in environment["dependencies"] if isinstance(dep, dict))
        target.writestr("requirements.txt", "\n".join(pip) + "\n")
        target.writestr("setup.sh", OTTER_SETUP_SH)
        target.writestr("run_autograder", OTTER_RUN_AUTOGRADER)
    return build / "dist" / "student" / "week1.ipynb", patched


def ensure_otter_base() -> None:
    if image_exists(OTTER_BASE):
        return
    if not image_exists(DEBIAN_BASE):
        run([ROOT / "scripts" / "make-base-image", DEBIAN_BASE])
    with tempfile.TemporaryDirectory() as context:
        shutil.copy(CA_BUNDLE, Path(context) / "ca.crt")
        (Path(context) / "Dockerfile").write_text(BASE_DOCKERFILE.format(base=DEBIAN_BASE))
        run(["docker", "build", "-q", "-t", OTTER_BASE, context], capture_output=True)
    log(f"built {OTTER_BASE}")


def warm_otter_image(zip_path: Path) -> float:
    """Build otter's grading image the way `otter grade` does (same zip, base and tag), so
    the timed run reuses its layers; returns the seconds it took."""
    from otter.grade.containers import build_image
    from otter.run import AutograderConfig

    started = time.monotonic()
    build_image(str(zip_path), OTTER_BASE, OTTER_NAME,
                AutograderConfig({"zips": False, "pdf": False, "debug": False}))
    return time.monotonic() - started


# -- memory of the grading containers ------------------------------------------------------
class ContainerMemory(threading.Thread):
    """Peak memory of every container that `belongs` (by image) while running."""

    def __init__(self, belongs):
        super().__init__(daemon=True)
        self.belongs = belongs
        self.peaks: dict[str, dict[str, int]] = {}
        self.ignored: set[str] = set()
        self.most_at_once = 0
        self.done = threading.Event()

    @staticmethod
    def cgroups() -> dict[str, Path]:
        v1 = Path("/sys/fs/cgroup/memory/docker")
        if v1.is_dir():
            return {p.name: p for p in v1.iterdir() if p.is_dir() and len(p.name) == 64}
        v2 = Path("/sys/fs/cgroup/system.slice")
        return {p.name[7:-6]: p for p in v2.glob("docker-*.scope")}

    @staticmethod
    def sample(folder: Path) -> dict[str, int] | None:
        try:
            stat = dict(line.split() for line in (folder / "memory.stat").read_text().splitlines())
            if (folder / "memory.usage_in_bytes").exists():  # cgroup v1
                usage = int((folder / "memory.usage_in_bytes").read_text())
                peak = int((folder / "memory.max_usage_in_bytes").read_text())
                inactive = int(stat.get("total_inactive_file", 0))
            else:
                usage = int((folder / "memory.current").read_text())
                peak = int((folder / "memory.peak").read_text())
                inactive = int(stat.get("inactive_file", 0))
        except (OSError, ValueError):
            return None  # the container just went away
        return {"stats": usage - inactive, "cgroup_peak": peak}

    def run(self) -> None:
        while not self.done.wait(0.5):
            mine = 0
            for container, folder in self.cgroups().items():
                if container in self.ignored:
                    continue
                if container not in self.peaks:
                    image = subprocess.run(
                        ["docker", "inspect", "--format", "{{.Config.Image}}", container],
                        capture_output=True, text=True).stdout.strip()
                    if not self.belongs(image):
                        self.ignored.add(container)
                        continue
                    self.peaks[container] = {"stats": 0, "cgroup_peak": 0}
                now = self.sample(folder)
                if now:
                    mine += 1
                    for key, value in now.items():
                        self.peaks[container][key] = max(self.peaks[container][key], value)
            self.most_at_once = max(self.most_at_once, mine)

    def stop(self) -> dict:
        self.done.set()
        self.join()
        peaks = [p for p in self.peaks.values() if p["stats"]]
        summary = {"containers": len(peaks), "most_at_once": self.most_at_once}
        for key in ("stats", "cgroup_peak"):
            values = [p[key] / 2**20 for p in peaks] or [0.0]
            summary[f"{key}_median_mb"] = statistics.median(values)
            summary[f"{key}_max_mb"] = max(values)
        return summary


def timed(command: list, belongs, log_path: Path) -> tuple[float, dict, int]:
    monitor = ContainerMemory(belongs)
    monitor.start()
    started = time.monotonic()
    with open(log_path, "w") as handle:
        code = subprocess.run([str(c) for c in command], stdout=handle,
                              stderr=subprocess.STDOUT, cwd=ROOT).returncode
    seconds = time.monotonic() - started
    return seconds, monitor.stop(), code


# -- scores ------------------------------------------------------------------------------
def our_scores(out: Path) -> dict[str, list[float]]:
    with open(out / "gradebook.csv") as handle:
        return {row["submission"]: [float(row[q]) for q in QUESTIONS] + [float(row["total"])]
                for row in csv.DictReader(handle)}


def otter_scores(out: Path) -> dict[str, list[float]]:
    with open(out / "final_grades.csv") as handle:
        rows = list(csv.DictReader(handle))
    scores = {}
    for row in rows:
        if row["file"] == "points-per-question":
            continue
        values = [float(row.get(q) or 0) for q in QUESTIONS]
        scores[Path(row["file"]).stem] = values + [float(row.get("total_points_earned") or 0)]
        if row.get("grading_status", "Completed") != "Completed":
            # A container that failed (e.g. the kernel died) scores 0 for everything.
            OTTER_FAILURES[Path(row["file"]).stem] = row["grading_status"].splitlines()[0][:120]
    return scores


OTTER_FAILURES: dict[str, str] = {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=int, help="grade only the first N submissions (a trial)")
    parser.add_argument("--copies", type=int, default=5, help="copies of each sample (default 5)")
    parser.add_argument("--samples", type=lambda text: text.split(","),
                        help="only these samples, e.g. crashing or correct,partial,wrong (to "
                             "compare the cost of each kind)")
    parser.add_argument("--jobs", type=int, default=2, help="workers on both sides (default 2)")
    parser.add_argument("--ours", choices=["docker", "local"], default="docker")
    parser.add_argument("--only", choices=["ours", "otter"], help="run one side only")
    parser.add_argument("--timeout", type=int, default=1200,
                        help="otter grade --timeout per container (s)")
    parser.add_argument("--work", type=Path, help="working folder (default: a temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the working folder")
    args = parser.parse_args()

    work = args.work or Path(tempfile.mkdtemp(prefix="otterbench-"))
    work.mkdir(parents=True, exist_ok=True)
    unknown = set(args.samples or []) - set(SAMPLE_SUBMISSIONS)
    if unknown:
        parser.error(f"unknown samples {sorted(unknown)}; there are {sorted(SAMPLE_SUBMISSIONS)}")
    names = submission_names(args.copies, args.limit, args.samples)
    sides = [args.only] if args.only else ["ours", "otter"]
    log(f"{len(names)} submissions, {args.jobs} workers, working folder {work}")

    student, zip_path = build_otter_assignment(work)
    write_submissions(names, work / "subs-ours", work / "subs-otter", student)
    if "ours" in sides and args.ours == "docker":
        if "--docker" not in subprocess.run([BIN / "autograder", "grade", "--help"],
                                            capture_output=True, text=True).stdout:
            sys.exit("this autograder has no `grade --docker` yet; use --ours local")
        if not image_exists(OUR_IMAGE):
            sys.exit(f"{OUR_IMAGE} is missing: build it with scripts/build-image")
    if "otter" in sides:
        ensure_otter_base()
        log("building/reusing otter's grading image (not timed) ...")
        log(f"otter image ready in {warm_otter_image(zip_path):.0f} s")

    results = {}
    if "ours" in sides:
        out = work / "out-ours"
        command = [BIN / "autograder", "grade", "week1", work / "subs-ours", "--out", out,
                   "--jobs", str(args.jobs)] + (["--docker"] if args.ours == "docker" else [])
        log("ours: " + " ".join(map(str, command)))
        seconds, memory, code = timed(command, lambda image: image == OUR_IMAGE,
                                      work / "ours.log")
        results["ours"] = (seconds, memory, code, our_scores(out) if code == 0 else {})
        log(f"ours: {seconds:.1f} s (exit {code})")
    if "otter" in sides:
        out = work / "out-otter"
        out.mkdir()
        command = [BIN / "otter", "grade", "-n", OTTER_NAME, "-a", zip_path, "-o", out,
                   "--containers", str(args.jobs), "--image", OTTER_BASE, "--no-network",
                   "--timeout", str(args.timeout), work / "subs-otter"]
        log("otter: " + " ".join(map(str, command)))
        seconds, memory, code = timed(command, lambda image: image == OTTER_IMAGE,
                                      work / "otter.log")
        results["otter"] = (seconds, memory, code, otter_scores(out) if code == 0 else {})
        log(f"otter: {seconds:.1f} s (exit {code})")

    report(names, args, results, work)
    if not args.keep and not args.work:
        shutil.rmtree(work, ignore_errors=True)


def report(names, args, results, work: Path) -> None:
    n = len(names)
    ours_label = "ours (--docker)" if args.ours == "docker" else "ours (local, no Docker)"
    print(f"\n{n} week-1 submissions, {args.jobs} workers each, "
          f"{os.cpu_count()} cores, 1-min load average at the end {os.getloadavg()[0]:.1f}")
    header = ["grader", "wall s", "subm/min", "containers", "at once",
              "mem/worker MB (docker stats) median/max", "cgroup peak MB median/max", "exit"]
    rows = []
    for side, (seconds, memory, code, _) in results.items():
        measured = memory["containers"] > 0  # none with --ours local (no containers)
        rows.append([ours_label if side == "ours" else "otter grade", f"{seconds:.1f}",
                     f"{n / seconds * 60:.2f}", str(memory["containers"]),
                     str(memory["most_at_once"]),
                     f"{memory['stats_median_mb']:.0f} / {memory['stats_max_mb']:.0f}"
                     if measured else "n/a",
                     f"{memory['cgroup_peak_median_mb']:.0f} / {memory['cgroup_peak_max_mb']:.0f}"
                     if measured else "n/a",
                     str(code)])
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, ["-" * w for w in widths], *rows]:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
    if len(results) == 2:
        ratio = results["otter"][0] / results["ours"][0]
        print(f"throughput ratio ours/otter: {ratio:.2f}")

    print("\nscores q1 q2 q3 total (ours | otter; each question out of 6)")
    ours = results.get("ours", (0, 0, 0, {}))[3]
    otter = results.get("otter", (0, 0, 0, {}))[3]
    for stem, sample in names:
        cells = []
        for scores in (ours, otter):
            got = scores.get(stem)
            cells.append(" ".join(f"{v:g}" for v in got) if got else "-")
        expected = expected_points(ROOT, "week1", sample)
        print(f"  {stem:<12} {cells[0]:<14} | {cells[1]:<14} "
              f"(samples' expectation: {' '.join(f'{expected[q]:g}' for q in QUESTIONS)})")
        if stem in OTTER_FAILURES:
            print(f"  {'':<12} otter: {OTTER_FAILURES[stem]}")
    print(f"\nlogs: {work}/ours.log, {work}/otter.log" if args.keep or args.work else "")
    print(json.dumps({side: {"seconds": round(r[0], 1), "memory": r[1], "exit": r[2]}
                      for side, r in results.items()}, indent=None), file=sys.stderr)


if __name__ == "__main__":
    main()
