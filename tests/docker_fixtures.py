"""Docker for the Docker and Gradescope tests: an engine, the base image, the autograder
image. The tests make what is missing themselves (scripts/ensure-dockerd starts dockerd,
scripts/make-base-image debootstraps a base when none can be pulled) and skip only when
they cannot: not root.

Measured on the CI-like machine (2 shared cores): dockerd start 1 s; base image from
debootstrap 60-80 s (an import of the cached rootfs: seconds); the autograder image
2 min 20 s from nothing (pip downloads included), seconds when cached.
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import time

import pytest
from conftest import ROOT


def require_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("Docker tests need root: they start dockerd, debootstrap a base image "
                    "and check that the grader drops student code to a sandbox uid")


@functools.lru_cache(maxsize=1)
def _engine_and_base() -> str:
    """Start dockerd if none runs and make the base image; returns the base image."""
    for script in ("ensure-dockerd", "make-base-image"):
        started = time.monotonic()
        done = subprocess.run([str(ROOT / "scripts" / script)], capture_output=True, text=True)
        assert done.returncode == 0, f"scripts/{script} failed:\n{done.stdout}\n{done.stderr}"
        print(f"scripts/{script}: {time.monotonic() - started:.0f} s: {done.stdout.strip()}",
              file=sys.stderr)
    from autograder.container import DEFAULT_BASE_IMAGE
    return DEFAULT_BASE_IMAGE


@functools.lru_cache(maxsize=1)
def _autograder_image() -> str:
    _engine_and_base()
    from autograder.container import DEFAULT_IMAGE
    started = time.monotonic()
    done = subprocess.run([str(ROOT / ".venv/bin/autograder"), "image", "build"],
                          capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, f"autograder image build failed:\n{done.stdout[-3000:]}\n" \
                                 f"{done.stderr[-3000:]}"
    print(f"autograder image build: {time.monotonic() - started:.0f} s", file=sys.stderr)
    return DEFAULT_IMAGE


@pytest.fixture(scope="session")
def base_image() -> str:
    require_root()
    return _engine_and_base()


@pytest.fixture(scope="session")
def autograder_image() -> str:
    require_root()
    return _autograder_image()
