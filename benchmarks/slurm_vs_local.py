"""The overhead of grading through Slurm: the same week-1 class graded by a local batch
with 2 workers and through a one-node Slurm cluster with 2 tasks at once.

    .venv/bin/python benchmarks/slurm_vs_local.py [--count 8] [--work DIR]   (as root)

Both gradings run as the same ordinary user (the TA of tests/slurm_cluster.py), so both
use the rootless sandbox and differ only in the engine. The class is the week's samples
and reference, repeated to ``--count`` notebooks. Prints both wall times, their ratio
and whether the gradebooks are equal. Root is needed only to start the cluster's daemons
and to become the TA.
"""

from __future__ import annotations

import argparse
import itertools
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from slurm_cluster import OneNodeCluster, readable_by_everyone  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=8)
    parser.add_argument("--work", type=Path, help="keep the outputs here (default: a temp dir)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root: it starts Slurm's daemons and grades as an ordinary user")
    work = Path(args.work or tempfile.mkdtemp(prefix="bench-slurm-")).resolve()
    work.mkdir(parents=True, exist_ok=True)
    cluster = OneNodeCluster(work / "cluster")
    cluster.start()
    try:
        with readable_by_everyone(Path(os.path.realpath(sys.executable)), ROOT, work):
            run(cluster, work, args.count)
    finally:
        cluster.stop()


def run(cluster: OneNodeCluster, work: Path, count: int) -> None:
    week = ROOT / "source" / "week1"
    notebooks = sorted((week / "samples").glob("*.ipynb")) + [week / "week1.ipynb"]
    inputs = work / "class"
    inputs.mkdir(exist_ok=True)
    for n, notebook in zip(range(count), itertools.cycle(notebooks)):
        shutil.copyfile(notebook, inputs / f"s{n + 1}-{notebook.stem}.ipynb")
    subprocess.run(["chown", "-R", cluster.user, str(work)], check=True)
    grade = [sys.executable, "-m", "autograder.cli", "grade", "week1", str(inputs)]
    timings = {}
    for engine, options in (("local, 2 workers", ["--jobs", "2"]),
                            ("Slurm, 2 tasks at once", ["--slurm"])):
        out = work / ("local" if "local" in engine else "slurm")
        shutil.rmtree(out, ignore_errors=True)
        started = time.perf_counter()
        done = subprocess.run(cluster.as_user(*grade, "--out", str(out), *options),
                              capture_output=True, text=True, cwd=ROOT)
        timings[engine] = time.perf_counter() - started
        if done.returncode != 0:
            sys.exit(f"{engine} failed:\n{done.stdout}\n{done.stderr}")
    local, slurm = timings.values()
    same = (work / "local" / "gradebook.csv").read_text() == \
        (work / "slurm" / "gradebook.csv").read_text()
    print(f"week 1, {count} submissions graded by execution, rootless sandbox, same machine "
          f"({os.cpu_count()} cores):")
    for engine, seconds in timings.items():
        print(f"  {engine:24} {seconds:7.1f} s")
    print(f"  Slurm / local: {slurm / local:.2f}x ({slurm - local:+.1f} s); gradebooks "
          f"{'equal' if same else 'DIFFER'}; outputs in {work}")


if __name__ == "__main__":
    main()
