"""The budgets a student's notebook runs under (set per week in week.toml)."""

from __future__ import annotations

import os
from dataclasses import dataclass, fields


@dataclass(frozen=True)
class Limits:
    cell_timeout: float = 300.0  # seconds one cell may run
    total_time: float = 900.0  # seconds for the whole notebook, restarts included
    memory_mb: int = 4096  # resident memory of the kernel and its children
    processes: int = 512  # tasks (threads count) the sandbox uid may have
    output_kb: int = 1024  # notebook output kept; the rest is dropped with a note
    file_mb: int = 512  # largest file the kernel may write
    restarts: int = 2  # times the kernel is restarted after it died or hung
    request_timeout: float = 120.0  # seconds the kernel gets to answer one export request
    cpus: int = 2  # cores a grading may use: Slurm's --cpus-per-task, TensorFlow's threads

    @classmethod
    def from_mapping(cls, values: dict) -> "Limits":
        known = {f.name for f in fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"unknown limits {sorted(unknown)}; known: {sorted(known)}")
        return cls(**values)

    @property
    def cpu_seconds(self) -> int:
        # CPU time is summed over threads, so allow every core for the whole budget.
        return int(self.total_time * self.threads + 60)

    @property
    def threads(self) -> int:
        """Threads TensorFlow and BLAS may use: the allocation, not the node's core count
        (a Slurm node has many more cores than a task was given)."""
        return max(1, min(self.cpus, os.cpu_count() or 1))

    def thread_env(self) -> dict[str, str]:
        threads = str(self.threads)
        return {"TF_NUM_INTRAOP_THREADS": threads, "TF_NUM_INTEROP_THREADS": threads,
                "OMP_NUM_THREADS": threads, "OPENBLAS_NUM_THREADS": threads}
