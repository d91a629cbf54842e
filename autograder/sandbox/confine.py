"""First link of the kernel's launch chain: caps, then ``exec`` of the rest.

jupyter_client starts ``python -m autograder.sandbox.confine ... -- CMD`` as the
grader's user. Before any student code exists this process joins the kernel's
memory cgroup, sets resource limits that every child inherits, hands the
connection file to the sandbox uid, and then replaces itself with CMD (bubblewrap
and/or setpriv, then ipykernel). Limits are set here and not in the kernel
because the kernel runs student code, which could simply raise them back.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="confine")
    parser.add_argument("--cgroup", help="cgroup directory to join")
    parser.add_argument("--address-space", type=int, help="RLIMIT_AS in bytes")
    parser.add_argument("--cpu-seconds", type=int, required=True)
    parser.add_argument("--processes", type=int, required=True)
    parser.add_argument("--file-bytes", type=int, required=True)
    parser.add_argument("--owner", type=int, help="uid that gets the connection file")
    parser.add_argument("--shared-uid", action="store_true",
                        help="the kernel keeps the grader's uid (rootless sandbox)")
    parser.add_argument("--connection-file", required=True)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command

    if args.cgroup:
        with open(os.path.join(args.cgroup, "cgroup.procs"), "w") as procs:
            procs.write(str(os.getpid()))
    if args.owner is not None:
        os.chown(args.connection_file, args.owner, args.owner)
    limits = {
        resource.RLIMIT_CPU: args.cpu_seconds,
        resource.RLIMIT_FSIZE: args.file_bytes,
        resource.RLIMIT_CORE: 0,
    }
    if args.address_space:
        limits[resource.RLIMIT_AS] = args.address_space
    # RLIMIT_NPROC counts the tasks of a real uid. With a sandbox uid of its own the
    # kernel gets the whole budget; sharing the grader's uid (rootless), the budget
    # comes on top of what the uid runs now, so a fork bomb stops near it and the
    # grader, whose own limit is not lowered, keeps working.
    if args.owner is not None:
        limits[resource.RLIMIT_NPROC] = args.processes
    elif args.shared_uid:
        limits[resource.RLIMIT_NPROC] = args.processes + _tasks_of(os.getuid())
    for which, value in limits.items():
        resource.setrlimit(which, (value, value))
    os.execvp(command[0], command)


def _tasks_of(uid: int) -> int:
    """Threads of every process ``uid`` runs (what RLIMIT_NPROC counts)."""
    count = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/status") as status:
                fields = dict(line.split(":", 1) for line in status if ":" in line)
            if int(fields["Uid"].split()[0]) == uid:
                count += int(fields["Threads"])
        except (OSError, KeyError, ValueError):
            continue
    return count


if __name__ == "__main__":
    main(sys.argv[1:])
