"""Time to grade one week-1 submission vs. time to just execute it.

    .venv/bin/python benchmarks/week1_grading_overhead.py [--repeat N]

Both are measured in the same run on the same notebook (the reference
solution): bare execution with `jupyter nbconvert --to notebook --execute`
(unconfined, no checks), then `autograder grade` (sandboxed kernel, probe,
hidden and public checks, results.json). Prints the median of each and their
ratio.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "source" / "week1" / "week1.ipynb"


def timed(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, cwd=ROOT)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    bin_dir = Path(sys.executable).parent
    execute, grade = [], []
    with tempfile.TemporaryDirectory() as scratch:
        for n in range(args.repeat):
            execute.append(timed([str(bin_dir / "jupyter"), "nbconvert", "--to", "notebook",
                                  "--execute", "--ExecutePreprocessor.timeout=600",
                                  f"--output-dir={scratch}", f"--output=run{n}", str(NOTEBOOK)]))
            grade.append(timed([str(bin_dir / "autograder"), "grade", "week1", str(NOTEBOOK),
                                "--out", f"{scratch}/grade{n}"]))
    bare, graded = statistics.median(execute), statistics.median(grade)
    print(f"week 1 reference notebook, {args.repeat} run(s) each, median:")
    print(f"  execute only (nbconvert --execute): {bare:6.1f} s")
    print(f"  grade (sandbox + all checks):       {graded:6.1f} s")
    print(f"  grading overhead: {graded / bare:.2f}x bare execution (+{graded - bare:.1f} s)")


if __name__ == "__main__":
    main()
