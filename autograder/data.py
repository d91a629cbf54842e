"""Data sets a week's kernel may read.

A week lists the data sets its notebook needs in ``week.toml`` (``data = [...]``).
Each is prepared once into the data cache (``$AML_DATA_DIR``, default
``~/.cache/aml-autograder``) and made readable, read-only, inside the sandbox;
the kernel finds the cache through the same ``AML_DATA_DIR`` variable.
Week 1 needs none: scikit-learn ships the iris data.
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    return Path(os.environ.get("AML_DATA_DIR", Path.home() / ".cache" / "aml-autograder"))


def readable_paths(names: tuple[str, ...]) -> tuple[Path, ...]:
    return tuple(cache_dir() / name for name in names)


def kernel_env(names: tuple[str, ...]) -> dict[str, str]:
    return {"AML_DATA_DIR": str(cache_dir())} if names else {}
