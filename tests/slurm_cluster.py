"""A real one-node Slurm cluster for the tests, from Debian's packages (slurmctld, slurmd,
slurm-client, munge; ``scripts/setup`` installs them when run as root).

Everything lives in one folder: the munge key and socket, slurm.conf, the daemons'
state, logs and pid files. Process tracking is ``proctrack/linuxproc`` and tasks are
launched with ``task/none``, so neither a cgroup freezer nor systemd is needed. The
daemons run as root and are stopped by process id; jobs are submitted as an ordinary
user (``USER``, created if missing), as on a campus cluster.

By hand (as root)::

    .venv/bin/python tests/slurm_cluster.py start /tmp/cluster   # prints SLURM_CONF=...
    runuser -u aml-ta -- env SLURM_CONF=/tmp/cluster/slurm.conf sinfo
    .venv/bin/python tests/slurm_cluster.py stop /tmp/cluster
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

USER = "aml-ta"  # the TA: an ordinary user without any privilege
# The node offers more CPUs than this machine has, so that two tasks of 2 CPUs each
# (the weeks' `cpus`) run at once, as on two cores of a real node.
NODE_CPUS, NODE_MEMORY_MB = 4, 16000
# A job step credential's lifetime (Slurm's default: 120 s). A requeued job waits this
# long before it starts again, while the node still refuses its old credential: the
# tests' requeue then takes seconds, not minutes, and needs no forced start (a start
# forced sooner fails to launch with "Job credential revoked").
CRED_EXPIRE_SECONDS = 15

CONFIG = """\
ClusterName=aml-test
SlurmctldHost={host}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket={folder}/munge/munge.socket,cred_expire={cred_expire}
CredType=cred/munge
StateSaveLocation={folder}/state
SlurmdSpoolDir={folder}/spool
SlurmctldPidFile={folder}/slurmctld.pid
SlurmdPidFile={folder}/slurmd.pid
SlurmctldLogFile={folder}/slurmctld.log
SlurmdLogFile={folder}/slurmd.log
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
SlurmdParameters=config_overrides
ReturnToService=2
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
KillWait=30
SchedulerParameters=sched_interval=2
NodeName={host} CPUs={cpus} RealMemory={memory} State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
"""


class OneNodeCluster:
    def __init__(self, folder: Path, user: str = USER):
        self.folder, self.user = Path(folder), user
        self.conf = self.folder / "slurm.conf"

    @property
    def env(self) -> dict[str, str]:
        return {"SLURM_CONF": str(self.conf)}

    def start(self) -> "OneNodeCluster":
        missing = [c for c in ("munged", "slurmctld", "slurmd", "sbatch", "runuser")
                   if subprocess.run(["which", c], capture_output=True).returncode]
        if missing:
            raise RuntimeError(f"Slurm is not installed ({', '.join(missing)} missing): run "
                               "scripts/setup as root")
        ensure_user(self.user)
        for sub in ("munge", "state", "spool"):
            (self.folder / sub).mkdir(parents=True, exist_ok=True)
        # Clients of every user reach munge's socket and read slurm.conf.
        for folder in (self.folder, self.folder / "munge"):
            folder.chmod(0o755)
        key = self.folder / "munge" / "munge.key"
        if not key.exists():
            key.write_bytes(os.urandom(1024))
        key.chmod(0o600)
        host = socket.gethostname()
        self.conf.write_text(CONFIG.format(host=host, folder=self.folder, cpus=NODE_CPUS,
                                           memory=NODE_MEMORY_MB, ctld_port=free_port(),
                                           slurmd_port=free_port(),
                                           cred_expire=CRED_EXPIRE_SECONDS))
        self.conf.chmod(0o644)
        munge = self.folder / "munge"
        subprocess.run(["munged", f"--key-file={key}", f"--socket={munge}/munge.socket",
                        f"--pid-file={munge}/munged.pid", f"--log-file={munge}/munged.log",
                        f"--seed-file={munge}/munged.seed", "--force"], check=True)
        subprocess.run(["slurmctld", "-f", str(self.conf)], check=True)
        self.start_slurmd()
        return self

    def start_slurmd(self) -> None:
        subprocess.run(["slurmd", "-f", str(self.conf)], check=True)
        self.wait_until_idle()

    def kill_slurmd(self) -> None:
        _kill_pid_file(self.folder / "slurmd.pid", signal.SIGKILL)

    def wait_until_idle(self, timeout: float = 60) -> None:
        """Until the node takes jobs (idle, mixed or allocated)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = self.run("sinfo", "--noheader", "--format", "%t").stdout.strip()
            if state.rstrip("*") in ("idle", "mix", "alloc"):
                return
            time.sleep(0.5)
        raise RuntimeError(f"the node did not come up (state {state!r}); logs in {self.folder}")

    def stop(self) -> None:
        for pid_file in ("slurmd.pid", "slurmctld.pid", "munge/munged.pid"):
            _kill_pid_file(self.folder / pid_file, signal.SIGTERM)

    def run(self, *command: str, **kwargs) -> subprocess.CompletedProcess:
        """``command`` as the TA, against this cluster."""
        return subprocess.run(self.as_user(*command), capture_output=True, text=True, **kwargs)

    def as_user(self, *command: str) -> list[str]:
        env = [f"{k}={v}" for k, v in self.env.items()]
        passed = [f"{k}={os.environ[k]}" for k in ("AML_DATA_DIR", "AML_DATASETS",
                                                   "AUTOGRADER_COURSE") if k in os.environ]
        return ["runuser", "-u", self.user, "--", "env", f"HOME={home_of(self.user)}",
                "PATH=/usr/local/bin:/usr/bin:/bin", *env, *passed, *command]


class readable_by_everyone:
    """Let other users traverse ``paths`` and their parents while in use (o+x, restored):
    the TA runs this checkout's Python environment, which may live under /root."""

    def __init__(self, *paths: Path):
        self.paths, self.changed = paths, {}

    def __enter__(self):
        for path in self.paths:
            for folder in reversed([path, *path.parents] if path.is_dir() else path.parents):
                mode = folder.stat().st_mode
                if not mode & 0o001:
                    self.changed[folder] = mode
                    folder.chmod(mode | 0o001)
        return self

    def __exit__(self, *exc):
        for folder, mode in self.changed.items():
            folder.chmod(mode & 0o7777)


def ensure_user(user: str) -> None:
    if subprocess.run(["id", user], capture_output=True).returncode:
        subprocess.run(["useradd", "--create-home", "--shell", "/bin/bash", user], check=True)


def home_of(user: str) -> str:
    import pwd

    return pwd.getpwnam(user).pw_dir


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("", 0))
        return probe.getsockname()[1]


def _kill_pid_file(path: Path, sig: int) -> None:
    try:
        pid = int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
        time.sleep(0.1)


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("start", "stop"):
        sys.exit("usage: slurm_cluster.py start|stop FOLDER")
    cluster = OneNodeCluster(Path(sys.argv[2]).resolve())
    if sys.argv[1] == "start":
        cluster.start()
        print(f"SLURM_CONF={cluster.conf}")
    else:
        cluster.stop()
