"""What confinement this machine can give a student's kernel, and what is missing.

The grader never pretends: ``detect()`` probes the machine once and the
resulting ``Isolation`` names every guarantee it cannot give, so that the CLI can
say so loudly (``Isolation.missing``). Three modes confine student code:

* ``bubblewrap`` (the grader is root): the kernel runs as a sandbox uid of its own,
  in bubblewrap's namespaces, memory capped by a cgroup;
* ``bubblewrap-rootless`` (the grader is an ordinary user, as in a Slurm job, and
  the machine allows unprivileged user namespaces): the same namespaces inside a
  user namespace of bubblewrap's, but the kernel keeps the grader's uid;
* ``container`` (inside the autograder's Docker image).

Where none is possible, grading refuses (``require_confinement``) unless the user
accepts running untrusted code unconfined.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from autograder.errors import AutograderError

CGROUP_ROOT = Path("/sys/fs/cgroup")

# Set inside the autograder's Docker image: there the container itself has no
# network and its own process tree, and the image's file permissions keep the
# hidden tests and results away from the sandbox user (see autograder/Dockerfile).
CONTAINER_ENV = "AUTOGRADER_IN_CONTAINER"


@dataclass(frozen=True)
class Isolation:
    drop_privileges: bool  # kernel runs as a dedicated unprivileged uid
    private_filesystem: bool  # kernel sees only the Python env and its own workdir
    no_network: bool  # kernel has no network interface but loopback
    own_process_tree: bool  # every process the kernel starts dies with it
    memory: str  # how memory is capped: "cgroup2", "cgroup1" or "rlimit"
    how: str  # "bubblewrap", "bubblewrap-rootless", "container" or "none"

    @property
    def confined(self) -> bool:
        """Student code cannot see the hidden tests nor touch results."""
        return self.drop_privileges or self.private_filesystem or self.how == "container"

    def missing(self) -> list[str]:
        """The guarantees of the trust boundary this machine cannot give."""
        gaps = []
        if not self.confined:
            gaps.append(
                "student code runs as YOUR user: it can read the hidden tests and "
                "reference solutions and overwrite results (run the grader as root, "
                "use --docker, or allow unprivileged user namespaces for bubblewrap)"
            )
        elif self.how == "bubblewrap-rootless":
            gaps.append(
                "no uid separation: the kernel runs as your uid inside its own user "
                "namespace; it sees only the Python environment, its folders and the "
                "course data (not the hidden tests or results), but a flaw in that "
                "confinement would give it your files")
            gaps.append(
                "the process cap counts per uid: your other processes on this machine "
                "(other jobs of yours) share it with the kernel")
        if not self.private_filesystem and self.how != "container":
            gaps.append("student code can see the whole file system (bubblewrap unavailable)")
        if not self.no_network:
            gaps.append("student code can open network connections")
        if not self.own_process_tree:
            gaps.append("processes the student starts are only killed by uid, not by namespace")
        if self.memory == "rlimit":
            gaps.append("memory is capped as address space (RLIMIT_AS), not resident memory"
                        + ("" if self.drop_privileges else " (no cgroup is delegated to you)"))
        return gaps

    def describe(self) -> str:
        return (
            f"isolation: {self.how}; uid drop {'yes' if self.drop_privileges else 'NO'}; "
            f"private fs {'yes' if self.private_filesystem else 'no'}; "
            f"network {'off' if self.no_network else 'ON'}; memory cap {self.memory}"
        )


class Unconfined(AutograderError):
    """This machine cannot confine student code, and the user did not accept that."""


@functools.lru_cache(maxsize=1)
def detect() -> Isolation:
    root = os.geteuid() == 0
    in_container = os.environ.get(CONTAINER_ENV) == "1"
    # Unprivileged, bubblewrap makes a user namespace of its own first (unless it is
    # installed setuid, which Debian's is not); the trial shows whether that is allowed.
    bwrap = not in_container and _bubblewrap_works()
    memory = _memory_cgroup() if root else None
    how = "container" if in_container else "none"
    if bwrap:
        how = "bubblewrap" if root else "bubblewrap-rootless"
    return Isolation(
        drop_privileges=root,
        private_filesystem=bwrap,
        no_network=bwrap or in_container,
        own_process_tree=bwrap or in_container,
        memory=memory[0] if memory else "rlimit",
        how=how,
    )


def require_confinement(isolation: Isolation, *, allow_unconfined: bool) -> None:
    """Refuse to grade where student code would run unconfined, unless accepted."""
    if isolation.confined or allow_unconfined:
        return
    raise Unconfined(
        "this machine cannot confine student code: the grader is not root, and "
        "bubblewrap cannot create a user namespace here (is it installed? is "
        "kernel.unprivileged_userns_clone or user.max_user_namespaces 0, or does an "
        "AppArmor profile forbid it, as on Ubuntu 24.04?). Ask the administrators to "
        "allow unprivileged user namespaces for bwrap (sysctl "
        "user.max_user_namespaces > 0; on Ubuntu an AppArmor profile for bwrap), grade "
        "as root or with --docker, or pass --allow-unconfined to run untrusted code "
        "as your own user, seeing all your files")


def _bubblewrap_works() -> bool:
    if not shutil.which("bwrap"):
        return False
    trial = ["bwrap", "--ro-bind", "/", "/", "--unshare-net", "--unshare-pid",
             "--die-with-parent", "--", "true"]
    try:
        return subprocess.run(trial, capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _memory_cgroup() -> tuple[str, Path] | None:
    """A writable cgroup directory under which one group per kernel can be made."""
    v2 = CGROUP_ROOT / "cgroup.controllers"
    if v2.exists() and "memory" in v2.read_text().split():
        if os.access(CGROUP_ROOT, os.W_OK):
            return "cgroup2", CGROUP_ROOT
    v1 = CGROUP_ROOT / "memory"
    if (v1 / "memory.limit_in_bytes").exists() and os.access(v1, os.W_OK):
        return "cgroup1", v1
    return None


def memory_cgroup_parent() -> tuple[str, Path] | None:
    return _memory_cgroup() if os.geteuid() == 0 else None
