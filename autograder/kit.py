"""A week's student kit: the one zip an instructor posts, ``release/<week>-kit.zip``.

It holds a single folder, ``<week>/``, with

* everything ``release/<week>/`` holds: the notebook, ``week.toml``, ``checks/`` and
  ``.release.ipynb`` (the notebook as released, which the checks align answers with);
* the course tool as a wheel built from this repository (the ``autograder`` package: the
  checks, ``save_bundle``, the data-loading helpers of ``autograder.data``);
* ``requirements.txt``: that wheel, and what the student's kernel and the checks need,
  pinned as the grader pins them (the repository's requirements.txt);
* ``README.txt``: the one install command, run from inside that folder::

      python -m pip install -r requirements.txt

  (pip reads a wheel's path in a requirements file from the current folder, not from the
  file's; a notebook's ``%pip`` runs in the notebook's folder, which is this one).

Like the release, the kit is pure: written again from the same files it is byte-identical
(entries sorted, fixed times and modes, the wheel built with a fixed SOURCE_DATE_EPOCH).
And it is refused (``CompileError``, nothing written) when a line of the week's reference
solutions or hidden tests would reach it.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from pathlib import Path

from autograder.compiler import check_no_leaks, significant_lines
from autograder.errors import CompileError
from autograder.weeks import Week

KIT_SUFFIX = "-kit.zip"
PACKAGE = "autograder"
TOOL_ROOT = Path(__file__).resolve().parent.parent  # pyproject.toml, requirements.txt

# The zip format's earliest time, for every entry of the kit and (as SOURCE_DATE_EPOCH)
# of the wheel: what was built when never makes two kits differ.
ZIP_TIME = (1980, 1, 1, 0, 0, 0)
SOURCE_DATE_EPOCH = "315532800"  # 1980-01-01T00:00:00Z

# What a student's side needs, by the names the repository's requirements.txt pins (the
# versions come from there, so that a student's checks run what the grader runs). Left
# out: otter-grader (benchmarks) and docker (grading in containers).
STUDENT_PACKAGES = (
    "tensorflow-cpu", "keras", "numpy", "scikit-learn", "matplotlib",  # the notebooks
    "pillow",  # `autograder data prepare` decodes CIFAR-10's offline copy
    # A check rebuilds the kernel's models in kernels of its own, as the grader does.
    "ipykernel", "jupyter_client", "nbclient", "nbformat",
    "pytest",  # the checks are pytest files, run by the grader's plugin
    "PyYAML",  # the `autograder` command (submissions.py)
    # The `autograder` command imports the compiler, which imports nbgrader (cli.py); it
    # also brings JupyterLab into a fresh environment.
    "nbgrader", "nbconvert",
)
# tensorflow-cpu has wheels for x86-64 only; elsewhere the same version of tensorflow
# is the CPU build (macOS on Apple silicon, Linux on ARM). Windows itself is not served:
# the tool imports fcntl, so there the kit runs in WSL, which is Linux.
TENSORFLOW_CPU = "tensorflow-cpu"
TENSORFLOW_CPU_WHERE = 'sys_platform == "linux" and platform_machine == "x86_64"'
TENSORFLOW_WHERE = 'sys_platform == "darwin" or platform_machine == "aarch64"'

# Run in the tool's copy: the build backend its pyproject.toml names, as pip would call it
# (PEP 517), without pip's index, cache or configuration.
BUILD_WHEEL = """
import importlib, sys
module, _, path = sys.argv[1].partition(":")
backend = importlib.import_module(module)
for name in filter(None, path.split(".")):
    backend = getattr(backend, name)
backend.build_wheel(sys.argv[2])
"""


def write_kit(source: Path, nb, release: Path, target: Path, name: str, *,
              tool: Path = TOOL_ROOT) -> None:
    """Write week ``name``'s kit to ``target`` from its release folder ``release`` (as the
    compiler wrote it from ``source``, whose notebook is ``nb``) and the tool at ``tool``.
    Refuse, writing nothing, if a line of a reference solution or hidden test would reach
    it."""
    files = {f"{name}/{path.relative_to(release).as_posix()}": path.read_bytes()
             for path in sorted(release.rglob("*")) if path.is_file()}
    with tempfile.TemporaryDirectory(prefix=f"ag-kit-{name}-") as scratch:
        # The package is copied once: the wheel is built from that copy and checked
        # against it, even while someone edits the tool.
        copy = Path(scratch) / "tool"
        _copy_package(tool, copy, name)
        wheel = _build_wheel(copy, Path(scratch) / "wheel", name)
        _check_wheel(wheel, copy, source, name)
        added = {f"{name}/{wheel.name}": wheel.read_bytes(),
                 f"{name}/requirements.txt": _requirements(tool, wheel.name, name).encode(),
                 f"{name}/README.txt": _readme(Week.load(release), wheel.name).encode()}
        clash = sorted(set(added) & set(files))
        if clash:
            raise CompileError(name, f"release/{clash[0]} is a name the student kit uses for "
                                     "its own file")
        files.update(added)
        # The compiler's own leak check, over what a student unpacks: each text file, and
        # the wheel's metadata (its package files are the tool's own: _check_wheel).
        kit = Path(scratch) / "scan" / (name + KIT_SUFFIX)
        for member, data in files.items():
            if member.endswith(".whl"):
                _unpack_metadata(data, kit / member)
            else:
                (kit / member).parent.mkdir(parents=True, exist_ok=True)
                (kit / member).write_bytes(data)
        check_no_leaks(source, nb, kit.parent, name)
    _write_zip(files, target)


def _copy_package(tool: Path, copy: Path, name: str) -> None:
    """pyproject.toml and the package, without compiled files, each file with the same
    mode (a wheel keeps it): the same source gives the same wheel on any checkout."""
    if not (tool / "pyproject.toml").is_file() or not (tool / PACKAGE).is_dir():
        raise CompileError(name, f"the student kit's wheel is built from the tool's source "
                                 f"tree, and {tool} has no pyproject.toml and {PACKAGE}/")
    shutil.copytree(tool / PACKAGE, copy / PACKAGE,
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    shutil.copyfile(tool / "pyproject.toml", copy / "pyproject.toml")
    for folder, _, names in os.walk(copy):
        os.chmod(folder, 0o755)
        for file in names:
            os.chmod(os.path.join(folder, file), 0o644)


def _build_wheel(copy: Path, out: Path, name: str) -> Path:
    """The tool as a wheel, built in its copy (so no ``build/`` or ``*.egg-info`` is left
    in the repository) at a fixed time."""
    out.mkdir()
    backend = tomllib.loads((copy / "pyproject.toml").read_text()).get(
        "build-system", {}).get("build-backend", "setuptools.build_meta:__legacy__")
    env = {**os.environ, "SOURCE_DATE_EPOCH": SOURCE_DATE_EPOCH,
           "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("PYTHONPATH", None)  # the copy is the only source of the package
    done = subprocess.run([sys.executable, "-c", BUILD_WHEEL, backend, str(out)], cwd=copy,
                          env=env, capture_output=True, text=True)
    wheels = sorted(out.glob("*.whl"))
    if done.returncode != 0 or len(wheels) != 1:
        raise CompileError(name, f"the tool's wheel for the student kit could not be built "
                                 f"({backend}):\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return wheels[0]


def _check_wheel(wheel: Path, built_from: Path, source: Path, name: str) -> None:
    """The wheel holds the tool's own package files and its metadata, nothing else.

    Its package files are not searched for secret lines, and that is sound for them alone:
    each is the tool's source byte for byte (checked here, against the copy the wheel was
    built from), and students are given the tool whole anyway (README, "Student: check
    before submitting"), so in the compiler's terms their text is "given". It does share
    lines with hidden tests (``import numpy as np``, the fixtures' names, Keras' layer
    names) and even with solutions (``plt.show()`` in a docstring). What else could reach
    a wheel is refused: a file that is not the package's (from source/ or assignments/), a
    compiled file, a hidden test of any week copied into the package. The metadata
    (``*.dist-info``, made from pyproject.toml) gets the compiler's leak check with the
    kit's other files. What this cannot see is a secret line written into the tool's own
    code: that would be public through the tool, with or without a kit.
    """
    # (A file with nothing significant in it, an empty __init__.py, hides nothing.)
    hidden_tests = {path.read_bytes(): path
                    for path in sorted(source.parent.glob("*/tests/*.py"))
                    if significant_lines(path.read_text())}
    with zipfile.ZipFile(wheel) as archive:
        for member in archive.namelist():
            top = member.split("/", 1)[0]
            if top.endswith(".dist-info") and "/" in member:
                continue
            data = archive.read(member)
            own = built_from / member
            if "__pycache__" in member or member.endswith(".pyc"):
                why = "a compiled file"
            elif data in hidden_tests:
                why = f"the hidden test {hidden_tests[data].relative_to(source.parent.parent)}"
            elif top != PACKAGE or ".." in member.split("/") or not own.is_file() or (
                    own.read_bytes() != data):
                why = f"not a file of the tool's {PACKAGE}/ package"
            else:
                continue
            raise CompileError(name, f"the student kit's wheel {wheel.name} would hold "
                                     f"{member}: {why}")


def _unpack_metadata(wheel: bytes, folder: Path) -> None:
    """The wheel's ``*.dist-info`` files, into ``folder`` (named as the wheel, so that a
    leak is reported at its place in the kit)."""
    with zipfile.ZipFile(io.BytesIO(wheel)) as archive:
        for member in archive.namelist():
            if member.split("/", 1)[0].endswith(".dist-info"):
                path = folder / member
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(archive.read(member))


def _requirements(tool: Path, wheel: str, name: str) -> str:
    pins = _pins(tool / "requirements.txt")
    lines = ["# The course tool and what the notebook and its checks need, pinned as the",
             "# grader pins them. From inside this folder (see README.txt):",
             "#     python -m pip install -r requirements.txt",
             f"./{wheel}"]
    for package in sorted(STUDENT_PACKAGES, key=_canonical):
        version = pins.get(_canonical(package))
        if version is None:
            raise CompileError(name, f"{tool / 'requirements.txt'} pins no version of "
                                     f"{package}, which the student kit installs")
        if _canonical(package) == TENSORFLOW_CPU:
            lines += [f"{package}=={version}; {TENSORFLOW_CPU_WHERE}",
                      f"tensorflow=={version}; {TENSORFLOW_WHERE}"]
        else:
            lines.append(f"{package}=={version}")
    return "\n".join(lines) + "\n"


def _pins(requirements: Path) -> dict[str, str]:
    """Package (canonical name) -> version, from ``name==version`` lines."""
    pins = {}
    for line in requirements.read_text().splitlines():
        pinned = re.fullmatch(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*==\s*([^\s;#]+)\s*(#.*)?",
                              line)
        if pinned:
            pins[_canonical(pinned[1])] = pinned[2]
    return pins


def _canonical(package: str) -> str:
    return re.sub(r"[-_.]+", "-", package).lower()


def _readme(week: Week, wheel: str) -> str:
    return f"""\
{week.title}

This folder is the week: the notebook ({week.notebook}), its settings (week.toml), its
public checks (checks/), and the course tool:
{wheel}.
Keep them together: the checks run from this folder.

INSTALL (once per Python environment; Python 3.11 to 3.13), from inside this folder:

    python -m pip install -r requirements.txt

In a fresh virtual environment this also installs JupyterLab (`jupyter lab`). In a
JupyterLab you already use, open {week.notebook} and run this in a cell, then restart
the kernel:

    %pip install -r requirements.txt

USE. Run the notebook's cells in order. The check cells (check("q1"), ..., check_all())
show which public checks pass and what to fix. In a terminal,

    autograder check {week.notebook}

does the same. Before you submit: Kernel > Restart Kernel and Run All Cells. The last
cell saves {week.name}.bundle.zip beside the notebook: submit it with {week.notebook}.
{_data_note(week)}
PLATFORMS. Linux (x86-64) and Windows through WSL 2 (a Linux inside Windows). macOS on
Apple silicon should work but is not tested. Windows itself (outside WSL) does not: the
tool needs a POSIX system. No sandbox is needed to check your own notebook.
"""


def _data_note(week: Week) -> str:
    if not week.data:
        return ""
    return (f"\nDATA. This week reads {', '.join(week.data)}: the notebook downloads each "
            f"through Keras the\nfirst time. `autograder data prepare {' '.join(week.data)}` "
            "keeps a copy ahead, in\n~/.cache/aml-autograder (or $AML_DATA_DIR).\n")


def _write_zip(files: dict[str, bytes], target: Path) -> None:
    """Entries sorted, each with the same time and mode: the same files give the same
    bytes. Written beside ``target`` first, so that it is never half written."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    with zipfile.ZipFile(partial, "w") as archive:
        for member in sorted(files):
            info = zipfile.ZipInfo(member, date_time=ZIP_TIME)
            info.create_system = 3  # Unix, so that the mode below is read on unpacking
            info.external_attr = 0o100644 << 16
            # The wheel is a zip already: compressing it again gains nothing.
            info.compress_type = zipfile.ZIP_STORED if member.endswith(".whl") else (
                zipfile.ZIP_DEFLATED)
            archive.writestr(info, files[member], compresslevel=9)
    partial.replace(target)
