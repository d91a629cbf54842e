"""One submission's sandbox: its directories, its uid, and its confined kernel.

Layout of a sandbox: three folders of the grader's, mode 0711, each on the file
system the grader chose for it, so that what student code can fill is never where
the grader writes (in Docker each is a tmpfs of its own: ``autograder.container``)::

    root/inbox         arrays the grader sends to the kernel; read-only for the kernel
                       ($TMPDIR: the grader's own space)
    scratch/home       the kernel's cwd and $HOME, owned by the sandbox uid
    scratch/ipc        ZeroMQ sockets and connection file (IPC transport: the kernel
                       has no network namespace in common with the grader)
                       ($AUTOGRADER_SCRATCH_DIR, default $TMPDIR)
    outbox/            model archives the kernel saves for the grader, emptied by the
                       grader before it asks (``clear_outbox``) and read with O_NOFOLLOW
                       and a size cap (``read_outbox``) ($AUTOGRADER_OUTBOX_DIR)

The kernel is launched as ``confine`` (cgroup, rlimits) -> ``bwrap`` (empty
network, own pid tree, a file system holding only the Python environment, the
sandbox and the data it may read) -> ``setpriv`` (sandbox uid, no capabilities,
no new privileges) -> ``ipykernel``. Each link is skipped only when
``isolation.detect()`` says the machine cannot do it, and then the CLI says so.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import shutil
import signal
import stat
import sys
import tempfile
import time
from pathlib import Path

import zmq
import zmq.asyncio
from jupyter_client.manager import AsyncKernelManager

from . import confine
from .isolation import Isolation, memory_cgroup_parent
from .limits import Limits

UID_BASE = int(os.environ.get("AUTOGRADER_SANDBOX_UID_BASE", "61000"))
# Sandbox uids are UID_BASE .. UID_BASE + MAX_SLOTS - 1 (in a container: the slots
# the host claimed for it).
MAX_SLOTS = int(os.environ.get("AUTOGRADER_SANDBOX_SLOTS", "1000"))
# Slot locks: host-wide for root; an ordinary user (a rootless sandbox, a Slurm job)
# keeps them in a runtime folder of its own.
LOCK_DIR = Path(os.environ.get("AUTOGRADER_LOCK_DIR") or (
    "/run/autograder" if os.geteuid() == 0 else
    os.path.join(os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir(),
                 f"autograder-{os.getuid()}")))
# Where student-writable folders live; unset, both are the grader's $TMPDIR.
SCRATCH_DIR = os.environ.get("AUTOGRADER_SCRATCH_DIR") or None
OUTBOX_DIR = os.environ.get("AUTOGRADER_OUTBOX_DIR") or None
# Shared folders any uid may write to when the kernel has no private file system
# (in Docker): the sandbox uid's leftovers there are removed when it closes.
SHARED_SCRATCH = ("/tmp", "/var/tmp", "/dev/shm")
SYSTEM_DIRS = ("/usr", "/etc", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")


class Sandbox:
    """Directories, uid and launch command for one confined kernel."""

    def __init__(self, isolation: Isolation, limits: Limits, *,
                 readable: tuple[Path, ...] = (), env: dict[str, str] | None = None):
        self.isolation = isolation
        self.limits = limits
        self.readable = tuple(Path(p).resolve() for p in readable)
        self.extra_env = dict(env or {})
        # Each live sandbox on the machine has a uid of its own, so that killing
        # "everything of this uid" and RLIMIT_NPROC never touch another grading.
        slot, self._slot_lock = _claim_slot() if isolation.drop_privileges else (0, None)
        self.uid = UID_BASE + slot if isolation.drop_privileges else os.getuid()
        self.gid = UID_BASE + slot if isolation.drop_privileges else os.getgid()
        self.name = f"autograder-{slot}-{os.getpid()}"
        self.root = _private_dir("ag-sandbox-", None)
        self.scratch = _private_dir("ag-scratch-", SCRATCH_DIR)
        self.home = self.scratch / "home"
        self.ipc = self.scratch / "ipc"
        self.inbox = self.root / "inbox"
        self.outbox = _private_dir("ag-outbox-", OUTBOX_DIR) / "models"
        self.cgroup: Path | None = None
        self.kill_processes()  # leftovers of an earlier run with the same uid
        self.reset()

    # -- directories -----------------------------------------------------
    def reset(self) -> None:
        """Fresh home and ipc directories (also used before a kernel restart)."""
        for path, mode in ((self.home, 0o700), (self.ipc, 0o700), (self.outbox, 0o700)):
            shutil.rmtree(path, ignore_errors=True)
            path.mkdir(mode=mode)
            os.chown(path, self.uid, self.gid)
        self.inbox.mkdir(mode=0o755, exist_ok=True)

    def put_file(self, name: str, data: bytes) -> Path:
        """Place a file the grader sends (inputs to evaluate) where the kernel can read it."""
        path = self.inbox / name
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        return path

    def clear_outbox(self) -> None:
        """Empty the outbox before asking the kernel to save into it: whatever the
        notebook left there is not the grader's, and must not take the space."""
        for entry in os.scandir(self.outbox):
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path, ignore_errors=True)
            else:
                os.unlink(entry.path)

    def read_outbox(self, name: str, max_bytes: int) -> bytes:
        """A file the kernel saved into its outbox, read without trusting it: no links,
        a regular file owned by the sandbox's uid, at most ``max_bytes``."""
        if "/" in name or name in ("", ".", ".."):
            raise OSError(f"{name!r} is not a file name")
        directory = os.open(self.outbox, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        try:
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=directory)
        finally:
            os.close(directory)
        with os.fdopen(fd, "rb") as handle:
            status = os.fstat(handle.fileno())
            if not stat.S_ISREG(status.st_mode) or status.st_uid != self.uid:
                raise OSError(f"{name} is not a file the notebook saved")
            if status.st_size > max_bytes:
                raise OSError(f"{name} is {status.st_size / 2**20:.0f} MB, over the limit of "
                              f"{max_bytes / 2**20:.0f} MB")
            data = handle.read(max_bytes + 1)
        if len(data) > max_bytes:
            raise OSError(f"{name} is over the limit of {max_bytes / 2**20:.0f} MB")
        return data

    # -- launching -------------------------------------------------------
    def kernel_env(self) -> dict[str, str]:
        tmp = "/tmp" if self.isolation.private_filesystem else str(self.home / ".tmp")
        env = {
            "PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin",
            "HOME": str(self.home),
            "TMPDIR": tmp,
            "LANG": "C.UTF-8",
            "MPLBACKEND": "Agg",
            "MPLCONFIGDIR": str(self.home / ".matplotlib"),
            "KERAS_HOME": str(self.home / ".keras"),
            "IPYTHONDIR": f"{tmp}/ipython",
            "PYTHONNOUSERSITE": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
            # Determinism: same submission, same score.
            "PYTHONHASHSEED": "0",
            "TF_DETERMINISTIC_OPS": "1",
            "TF_CPP_MIN_LOG_LEVEL": "2",
            "CUDA_VISIBLE_DEVICES": "",
            **self.limits.thread_env(),
        }
        env.update(self.extra_env)
        return env

    def kernel_command(self, connection_file: str) -> list[str]:
        limits = self.limits
        memory = self.limits.memory_mb * 2**20
        cmd = [sys.executable, confine.__file__,
               "--cpu-seconds", str(limits.cpu_seconds),
               "--processes", str(limits.processes),
               "--file-bytes", str(limits.file_mb * 2**20),
               "--connection-file", connection_file]
        self.cgroup = self._make_cgroup(memory)
        if self.cgroup:
            cmd += ["--cgroup", str(self.cgroup)]
        else:
            cmd += ["--address-space", str(memory)]
        if self.isolation.drop_privileges:
            cmd += ["--owner", str(self.uid)]
        elif self.isolation.private_filesystem:
            cmd += ["--shared-uid"]
        cmd.append("--")
        if self.isolation.private_filesystem:
            cmd += self._bubblewrap()
        if self.isolation.drop_privileges:
            cmd += ["setpriv", f"--reuid={self.uid}", f"--regid={self.gid}", "--clear-groups",
                    "--no-new-privs", "--inh-caps=-all", "--bounding-set=-all", "--"]
        if not self.isolation.private_filesystem:
            (self.home / ".tmp").mkdir(exist_ok=True)
            os.chown(self.home / ".tmp", self.uid, self.gid)
        # No parent polling: in its own pid namespace the kernel's parent is pid 1,
        # which ipykernel reads as "orphaned"; bwrap's --die-with-parent does that job.
        cmd += [sys.executable, "-m", "ipykernel_launcher", "-f", connection_file,
                "--IPKernelApp.parent_handle=0"]
        return cmd

    def _bubblewrap(self) -> list[str]:
        args = ["bwrap", "--die-with-parent", "--new-session", "--unshare-net",
                "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try"]
        for path in SYSTEM_DIRS:
            if os.path.islink(path):
                args += ["--symlink", os.readlink(path), path]
            elif os.path.isdir(path):
                args += ["--ro-bind", path, path]
        args += ["--proc", "/proc", "--dev", "/dev", "--perms", "1777", "--tmpfs", "/tmp"]
        binds = [("--ro-bind", path) for path in sorted(self._python_dirs() | set(map(str, self.readable)))]
        binds += [("--bind", str(self.home)), ("--bind", str(self.ipc)), ("--ro-bind", str(self.inbox)),
                  ("--bind", str(self.outbox))]
        # bwrap makes missing parents of a mount point mode 0700, which the sandbox
        # uid could not traverse: make them 0755 first (they hold nothing else).
        parents = sorted({str(parent) for _, path in binds for parent in Path(path).parents
                          if str(parent) not in ("/", "/tmp")}, key=lambda p: p.count("/"))
        for parent in parents:
            if not any(parent == s or parent.startswith(s + "/") for s in SYSTEM_DIRS):
                args += ["--perms", "0755", "--dir", parent]
        for option, path in binds:
            args += [option, path, path]
        args += ["--chdir", str(self.home), "--"]
        return args

    @staticmethod
    def _python_dirs() -> set[str]:
        """The interpreter and its libraries, wherever they live (venv, pyenv, /usr)."""
        dirs = {sys.prefix, sys.base_prefix, sys.exec_prefix,
                str(Path(os.path.realpath(sys.executable)).parent.parent)}
        return {d for d in dirs if not any(d == s or d.startswith(s + "/") for s in SYSTEM_DIRS)}

    def _make_cgroup(self, memory: int) -> Path | None:
        found = memory_cgroup_parent()
        if not found:
            return None
        kind, parent = found
        group = parent / self.name
        try:
            group.mkdir(exist_ok=True)
            if kind == "cgroup2":
                (group / "memory.max").write_text(str(memory))
                if (group / "memory.swap.max").exists():
                    (group / "memory.swap.max").write_text("0")
            else:
                (group / "memory.limit_in_bytes").write_text(str(memory))
        except OSError:
            return None
        return group

    # -- cleaning up -----------------------------------------------------
    def kill_processes(self) -> None:
        """Kill everything the student started, detached or not."""
        if self.cgroup and self.cgroup.exists():
            kill_file = self.cgroup / "cgroup.kill"
            if kill_file.exists():
                kill_file.write_text("1")
            for _ in range(50):
                pids = [int(p) for p in (self.cgroup / "cgroup.procs").read_text().split()]
                if not pids:
                    break
                for pid in pids:
                    _kill(pid)
                time.sleep(0.1)
        if self.isolation.drop_privileges:
            for _ in range(50):
                pids = [pid for pid, uid in _processes() if uid == self.uid]
                if not pids:
                    break
                for pid in pids:
                    _kill(pid)
                time.sleep(0.1)

    def close(self) -> None:
        self.kill_processes()
        if self.cgroup and self.cgroup.exists():
            try:
                self.cgroup.rmdir()
            except OSError:
                pass
        for folder in (self.root, self.scratch, self.outbox.parent):
            shutil.rmtree(folder, ignore_errors=True)
        if self.isolation.drop_privileges and not self.isolation.private_filesystem:
            _remove_files_of(self.uid, SHARED_SCRATCH)
        if self._slot_lock:
            self._slot_lock.close()
            self._slot_lock = None


def _private_dir(prefix: str, parent: str | None) -> Path:
    """A folder of the grader's (root-owned, 0711: the sandbox uid may pass, not list)."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=parent)).resolve()
    os.chmod(path, 0o711)
    return path


def _remove_files_of(uid: int, folders) -> None:
    """Remove what ``uid`` left in shared folders (its processes are dead by now), so a
    notebook that filled /tmp does not leave the grader's next kernels without space."""
    for top in folders:
        for folder, dirs, files in os.walk(top, topdown=False):
            for name in files + dirs:
                path = os.path.join(folder, name)
                try:
                    if os.lstat(path).st_uid == uid:
                        (os.rmdir if name in dirs and not os.path.islink(path)
                         else os.unlink)(path)
                except OSError:
                    pass


class _SlotLocks:
    """The flocks of claimed slots, released together."""

    def __init__(self, handles):
        self.handles = handles

    def close(self) -> None:
        for handle in self.handles:
            handle.close()


def _claim_slot(count: int = 1):
    """The first ``count`` consecutive free sandbox slots, held by flocks until closed
    or our death: (first slot, locks)."""
    LOCK_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)
    for first in range(MAX_SLOTS - count + 1):
        handles = []
        for slot in range(first, first + count):
            handle = open(LOCK_DIR / f"slot-{slot}.lock", "w")
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                handles.append(handle)
            except BlockingIOError:
                handle.close()
                break
        if len(handles) == count:
            return first, _SlotLocks(handles)
        _SlotLocks(handles).close()
    raise RuntimeError(f"no {count} free consecutive sandbox slots of {MAX_SLOTS}")


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _processes():
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                yield int(entry.name), entry.stat().st_uid
            except FileNotFoundError:
                continue


class SandboxKernelManager(AsyncKernelManager):
    """A jupyter_client kernel manager that launches into a ``Sandbox``."""

    def __init__(self, sandbox: Sandbox, max_message_bytes: int, **kwargs):
        context = zmq.asyncio.Context()
        # A hostile kernel must not be able to exhaust the grader's memory with one
        # giant message, nor make it reconnect to a socket path it swapped.
        context.setsockopt(zmq.MAXMSGSIZE, max_message_bytes)
        context.setsockopt(zmq.RECONNECT_IVL, -1)
        super().__init__(transport="ipc", ip=str(sandbox.ipc / "kernel"),
                         connection_file=str(sandbox.ipc / "kernel.json"),
                         context=context, **kwargs)
        self.sandbox = sandbox

    async def interrupt_kernel(self) -> None:
        """Interrupt over the control channel (Jupyter's "message" interrupt mode):
        a signal from here cannot reach a kernel in its own pid namespace and session."""
        self._connect_control_socket()
        self.session.send(self._control_socket, self.session.msg("interrupt_request", content={}))

    def format_kernel_cmd(self, extra_arguments=None) -> list[str]:
        return self.sandbox.kernel_command(self.connection_file)

    async def _async_launch_kernel(self, kernel_cmd, **kw):
        await super()._async_launch_kernel(kernel_cmd, **kw)
        # Reconnection is off, so the client may only connect once the kernel has
        # made every socket.
        ports = [self.shell_port, self.iopub_port, self.stdin_port, self.hb_port,
                 self.control_port]
        deadline = time.monotonic() + 120
        while not all(os.path.exists(f"{self.ip}-{port}") for port in ports):
            if not await self.is_alive():
                raise RuntimeError("the kernel exited while starting")
            if time.monotonic() > deadline:
                raise RuntimeError("the kernel did not start within 120 s")
            await asyncio.sleep(0.05)
