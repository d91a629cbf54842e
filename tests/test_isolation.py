"""What the sandbox gives on this machine, and that an unprivileged grader says
loudly which guarantees are missing instead of pretending."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from conftest import ROOT

from autograder.sandbox.isolation import detect


def test_as_root_every_guarantee_holds():
    if os.geteuid() != 0:
        pytest.skip("needs root")
    isolation = detect()
    assert isolation.missing() == [], isolation.describe()


def test_an_unprivileged_grader_names_the_missing_guarantees(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root to become an unprivileged user")
    script = ("from autograder.sandbox.isolation import detect\n"
              "for gap in detect().missing(): print(gap)")
    run = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                          sys.executable, "-c", script], capture_output=True, text=True,
                         cwd=ROOT, env={"PATH": os.environ["PATH"], "HOME": str(tmp_path)})
    assert run.returncode == 0, run.stderr
    assert "student code runs as YOUR user" in run.stdout
    assert "can open network connections" in run.stdout
    assert "whole file system" in run.stdout


def test_concurrent_sandboxes_never_share_a_uid():
    """Two gradings at once (two TAs, or a batch) must not kill or throttle each other."""
    if os.geteuid() != 0:
        pytest.skip("needs root")
    from autograder.sandbox.kernel import Sandbox
    from autograder.sandbox.limits import Limits

    first, second = Sandbox(detect(), Limits()), Sandbox(detect(), Limits())
    try:
        assert first.uid != second.uid
        uid = first.uid
        first.close()
        third = Sandbox(detect(), Limits())
        assert third.uid == uid  # a closed sandbox's slot is free again
        third.close()
    finally:
        first.close()
        second.close()
