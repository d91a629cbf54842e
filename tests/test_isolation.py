"""What the sandbox gives on this machine, and that an unprivileged grader says
loudly which guarantees are missing instead of pretending."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from conftest import ROOT

from autograder.sandbox.isolation import detect


def test_as_root_every_guarantee_holds():
    if os.geteuid() != 0:
        pytest.skip("needs root")
    isolation = detect()
    assert isolation.missing() == [], isolation.describe()


def as_nobody(script: str, home: Path, path: str = os.environ["PATH"]):
    """``python -c script`` as an unprivileged user (nobody), with ``path`` as $PATH."""
    if os.geteuid() != 0:
        pytest.skip("needs root to become an unprivileged user")
    return subprocess.run([shutil.which("setpriv"), "--reuid=65534", "--regid=65534", "--clear-groups",
                           sys.executable, "-c", script], capture_output=True, text=True,
                          cwd=ROOT, env={"PATH": path, "HOME": str(home)})


def test_an_unprivileged_grader_gets_the_rootless_sandbox_and_names_what_it_lacks(tmp_path):
    script = ("from autograder.sandbox.isolation import detect\n"
              "print(detect().how)\n"
              "for gap in detect().missing(): print(gap)")
    run = as_nobody(script, tmp_path)
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines()[0] == "bubblewrap-rootless"
    assert "no uid separation" in run.stdout
    assert "process cap counts per uid" in run.stdout
    assert "RLIMIT_AS" in run.stdout
    assert "whole file system" not in run.stdout and "network" not in run.stdout


def test_where_nothing_can_confine_student_code_grading_refuses_unless_accepted():
    """Not root and no bubblewrap (or no user namespaces): the TA is told why and what to
    ask for, and grades unconfined only when saying so."""
    tmp_path = Path(tempfile.mkdtemp(prefix="ag-unconfined-"))
    grade = ("import sys\nfrom autograder.cli import main\n"
             f"sys.exit(main(['grade', 'week1', {str(tmp_path)!r}, '--out', "
             f"{str(tmp_path / 'out')!r}] + sys.argv[1:]))")
    tmp_path.chmod(0o777)
    refused = as_nobody(grade, tmp_path, path="/nonexistent")
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "cannot confine student code" in refused.stderr
    assert "user.max_user_namespaces" in refused.stderr and "--allow-unconfined" in refused.stderr
    accepted = as_nobody(grade.replace("sys.argv[1:]", "['--allow-unconfined']"), tmp_path,
                         path="/nonexistent")
    assert "student code runs as YOUR user" in accepted.stderr
    assert "no .ipynb submissions found" in accepted.stderr  # past the refusal
    shutil.rmtree(tmp_path)


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
