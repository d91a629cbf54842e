"""The student kit (autograder/kit.py): release/<week>-kit.zip, what an instructor posts.

Fast tier: no kernel starts. Kits are written from the committed release folders, with
the tool's wheel built from this repository; the install test makes a fresh virtual
environment whose dependencies are this environment's (offline), see there.
"""

from __future__ import annotations

import ast
import io
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import nbformat
import pytest
from conftest import ROOT
from packaging.markers import Marker
from packaging.requirements import Requirement

from autograder.compiler import SOLUTION_REGION, secret_lines
from autograder.errors import CompileError
from autograder.kit import write_kit
from autograder.weeks import Course, Week

WEEKS = Course(ROOT).weeks()
WHEEL = re.compile(r"[^/]+/aml_autograder-[^/]+-py3-none-any\.whl")


def write(target: Path, name: str, *, release: Path | None = None, tool: Path = ROOT) -> Path:
    course = Course(ROOT)
    source = course.source(name)
    nb = nbformat.read(source / Week.load(source).notebook, as_version=4)
    write_kit(source, nb, release or course.release(name), target, name, tool=tool)
    return target


def members(kit: Path | io.BytesIO) -> dict[str, bytes]:
    with zipfile.ZipFile(kit) as archive:
        return {member: archive.read(member) for member in archive.namelist()}


def wheel_of(files: dict[str, bytes]) -> dict[str, bytes]:
    (name,) = [member for member in files if WHEEL.fullmatch(member)]
    return members(io.BytesIO(files[name]))


def secrets(source: Path) -> set[str]:
    """What must not reach students, by the compiler's rule (tests/test_compile.py tests
    the rule itself)."""
    return secret_lines(source, nbformat.read(source / Week.load(source).notebook,
                                              as_version=4))


def readable(member: str, data: bytes) -> str:
    if member.endswith(".ipynb"):
        nb = nbformat.reads(data.decode(), as_version=4)
        return "\n".join(cell.source for cell in nb.cells)
    return data.decode()


@pytest.fixture(scope="module")
def kits(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("kits")
    return {name: write(folder / f"{name}-kit.zip", name) for name in WEEKS}


def test_writing_the_kit_again_gives_the_same_bytes(tmp_path):
    """Each write builds the wheel anew: the two kits, wheels included, are identical."""
    egg_infos = sorted(ROOT.glob("*.egg-info"))
    first = write(tmp_path / "first" / "week1-kit.zip", "week1")
    again = write(tmp_path / "week1-kit.zip", "week1")
    assert again.read_bytes() == first.read_bytes()
    with zipfile.ZipFile(again) as archive:
        infos = archive.infolist()
    assert [i.filename for i in infos] == sorted(i.filename for i in infos)
    assert {(i.date_time, i.external_attr >> 16) for i in infos} == {((1980, 1, 1, 0, 0, 0),
                                                                     0o100644)}
    # The wheel was built in a copy: nothing of the build is left in the repository.
    assert not (ROOT / "build").exists() and sorted(ROOT.glob("*.egg-info")) == egg_infos


@pytest.mark.parametrize("name", WEEKS)
def test_the_kit_is_the_release_folder_and_the_tool_as_a_wheel(kits, name):
    files = members(kits[name])
    release = Course(ROOT).release(name)
    released = {f"{name}/{p.relative_to(release).as_posix()}": p.read_bytes()
                for p in release.rglob("*") if p.is_file()}
    assert {m: files[m] for m in released} == released  # .release.ipynb and checks/ too
    (wheel_name,) = set(files) - set(released) - {f"{name}/requirements.txt",
                                                    f"{name}/README.txt"}
    assert WHEEL.fullmatch(wheel_name)
    wheel = wheel_of(files)
    assert {"autograder/student.py", "autograder/data.py", "autograder/cli.py"} <= set(wheel)
    assert not [m for m in wheel if "__pycache__" in m or m.endswith(".pyc")]
    (entry_points,) = [data for m, data in wheel.items() if m.endswith("entry_points.txt")]
    assert "autograder = autograder.cli:main" in entry_points.decode()
    requirements = files[f"{name}/requirements.txt"].decode().splitlines()
    assert f"./{wheel_name.split('/')[1]}" in requirements
    assert "python -m pip install -r requirements.txt" in files[f"{name}/README.txt"].decode()


@pytest.mark.parametrize("name", WEEKS)
def test_no_kit_holds_a_line_of_a_solution_or_hidden_test(kits, name):
    """Every text file of the kit against the week's secret lines, as the compiler counts
    them; the wheel's package files must be the tool's source byte for byte (that is what
    students are given as the tool), its metadata is searched like the rest, and no file
    of it is a hidden test of any week."""
    source = Course(ROOT).source(name)
    secret = secrets(source)
    assert secret, "the week has no secret lines: this test would check nothing"
    hidden_tests = {p.read_bytes() for p in (ROOT / "source").glob("*/tests/*.py")}
    files = members(kits[name])
    texts = {m: readable(m, data) for m, data in files.items() if not WHEEL.fullmatch(m)}
    for member, data in wheel_of(files).items():
        assert data not in hidden_tests, member
        if member.startswith("autograder/"):
            assert data == (ROOT / member).read_bytes(), f"{member} is not the tool's source"
        else:
            texts[member] = data.decode()
    for member, text in texts.items():
        leaked = sorted(line for line in secret if line in text)
        assert not leaked, f"{member}: {leaked[:3]}"
        assert "BEGIN SOLUTION" not in text and "BEGIN HIDDEN" not in text, member


def a_secret_line(name: str, text: str) -> str:
    """One of week ``name``'s secret lines that ``text`` holds (without quotes, so that it
    can go into a TOML string)."""
    return sorted(line for line in secrets(ROOT / "source" / name)
                  if line in text and '"' not in line and "\\" not in line)[0]


def solutions(name: str) -> str:
    source = ROOT / "source" / name
    nb = nbformat.read(source / Week.load(source).notebook, as_version=4)
    return "".join("".join(SOLUTION_REGION.findall(cell.source)) for cell in nb.cells)


def test_a_solution_line_planted_in_the_released_notebook_is_refused(tmp_path):
    release = tmp_path / "release" / "week1"
    shutil.copytree(Course(ROOT).release("week1"), release)
    nb = nbformat.read(release / "week1.ipynb", as_version=4)
    line = a_secret_line("week1", solutions("week1"))
    nb.cells.append(nbformat.v4.new_markdown_cell(f"Hint:\n{line}"))
    nbformat.write(nb, release / "week1.ipynb")
    target = tmp_path / "week1-kit.zip"
    with pytest.raises(CompileError,
                       match=r"would reach release/week1-kit\.zip/week1/week1\.ipynb"):
        write(target, "week1", release=release)
    assert not target.exists()


def tool_copy(folder: Path) -> Path:
    shutil.copytree(ROOT / "autograder", folder / "autograder",
                    ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "requirements.txt"):
        shutil.copyfile(ROOT / name, folder / name)
    return folder


def test_a_hidden_test_line_planted_in_the_wheel_s_metadata_is_refused(tmp_path):
    tool = tool_copy(tmp_path / "tool")
    line = a_secret_line("week1", (ROOT / "source/week1/tests/test_week1.py").read_text())
    pyproject = tool / "pyproject.toml"
    pyproject.write_text(re.sub(r'(?m)^description = ".*"$', f'description = "{line}"',
                                pyproject.read_text()))
    target = tmp_path / "week1-kit.zip"
    with pytest.raises(CompileError, match=r"would reach release/week1-kit\.zip/week1/"
                                           r"aml_autograder-0\.1\.0-py3-none-any\.whl/"
                                           r"aml_autograder-0\.1\.0\.dist-info/METADATA"):
        write(target, "week1", tool=tool)
    assert not target.exists()


def test_a_hidden_test_file_inside_the_tool_s_package_is_refused(tmp_path):
    tool = tool_copy(tmp_path / "tool")
    shutil.copyfile(ROOT / "source/week2/tests/test_week2.py",
                    tool / "autograder" / "test_week2.py")
    target = tmp_path / "week1-kit.zip"
    with pytest.raises(CompileError, match=r"would hold autograder/test_week2\.py: the hidden "
                                           r"test source/week2/tests/test_week2\.py"):
        write(target, "week1", tool=tool)
    assert not target.exists()


def test_the_documented_command_installs_the_tool_into_a_fresh_environment(tmp_path, kits):
    """`python -m pip install -r requirements.txt`, run inside the unpacked kit, in a new
    virtual environment. To stay offline and fast, that environment sees this one's
    packages (all but the tool itself) and pip may not use an index: so this checks that
    pip finds the wheel by the kit's relative path, that every pin is satisfied by exactly
    what the grader runs, and that the installed tool imports and runs from elsewhere
    than the repository. It does not download anything nor try other platforms."""
    with zipfile.ZipFile(kits["week1"]) as archive:
        archive.extractall(tmp_path / "unpacked")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    ours = Path(sysconfig.get_paths()["purelib"])
    dependencies = tmp_path / "dependencies"
    dependencies.mkdir()
    for entry in ours.iterdir():
        if not entry.name.startswith(("aml_autograder", "__editable__")):
            (dependencies / entry.name).symlink_to(entry)
    python = venv / "bin" / "python"
    purelib = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()"
                                            "['purelib'])"], capture_output=True, text=True,
                             check=True).stdout.strip()
    Path(purelib, "dependencies.pth").write_text(f"{dependencies}\n")
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    env.update(PIP_CONFIG_FILE=os.devnull, PYTHONNOUSERSITE="1")

    install = subprocess.run([python, "-m", "pip", "install", "--no-index", "-r",
                              "requirements.txt"], cwd=tmp_path / "unpacked" / "week1",
                             env=env, capture_output=True, text=True)
    assert install.returncode == 0, install.stdout[-3000:] + install.stderr[-3000:]
    assert "Successfully installed aml-autograder-0.1.0" in install.stdout

    imported = subprocess.run(
        [python, "-c", "import autograder, autograder.student, autograder.data; "
                       "print(autograder.__file__)"],
        cwd=tmp_path, env=env, capture_output=True, text=True)
    assert imported.returncode == 0, imported.stderr[-3000:]
    assert Path(imported.stdout.strip()).is_relative_to(venv)
    command = subprocess.run([venv / "bin" / "autograder", "--version"], cwd=tmp_path,
                             env=env, capture_output=True, text=True)
    assert command.stdout.strip() == "autograder 0.1.0", command.stderr[-3000:]


# What a student's side runs: the command, the notebook's own calls, the checks (the
# grading plugin, in a pytest process of its own) and the kernels they start (the probe in
# `python -m ipykernel_launcher`, sandbox/kernel.py).
STUDENT_MODULES = ("autograder.cli", "autograder.student", "autograder.data",
                   "autograder.grading.plugin", "autograder.grading.cleanroom",
                   "autograder.sandbox.probe", "autograder.sandbox.kernel",
                   "ipykernel_launcher")
IMPORTED_DISTRIBUTIONS = """
import importlib, importlib.metadata as metadata, json, sys
before = set(sys.modules)
for module in sys.argv[1:]:
    importlib.import_module(module)
tops = {name.partition(".")[0] for name in set(sys.modules) - before}
owners = metadata.packages_distributions()
print(json.dumps(sorted({d for top in tops for d in owners.get(top, [])})))
"""


def imported_by_the_weeks() -> set[str]:
    """Top-level modules the release notebooks and public checks import."""
    sources = [path.read_text() for path in ROOT.glob("release/*/checks/*.py")]
    for notebook in ROOT.glob("release/*/*.ipynb"):
        sources += [cell.source for cell in nbformat.read(notebook, as_version=4).cells
                    if cell.cell_type == "code"]
    tops = set()
    for source in sources:
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Import):
                tops |= {alias.name.partition(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                tops.add(node.module.partition(".")[0])
    return tops


def installed_with(requirements: list[str]) -> set[str]:
    """Canonical names of the distributions these requirements install here, dependencies
    (and their extras) included."""
    from importlib import metadata

    found, todo = set(), [Requirement(line) for line in requirements]
    while todo:
        requirement = todo.pop()
        if requirement.marker and not requirement.marker.evaluate({"extra": ""}):
            continue
        name = re.sub(r"[-_.]+", "-", requirement.name).lower()
        key = (name, tuple(sorted(requirement.extras)))
        if key in found:
            continue
        found.add(key)
        for line in metadata.distribution(name).requires or []:
            needed = Requirement(line)
            if not needed.marker or any(needed.marker.evaluate({"extra": extra})
                                        for extra in ("", *requirement.extras)):
                needed.marker = None
                todo.append(needed)
    return {name for name, _ in found}


def test_the_kit_s_requirements_bring_what_the_student_side_imports(kits):
    files = members(kits["week1"])
    lines = [line for line in files["week1/requirements.txt"].decode().splitlines()
             if line and not line.startswith(("#", "./"))]
    pinned = {re.sub(r"[-_.]+", "-", Requirement(line).name).lower() for line in lines}
    assert not pinned & {"otter-grader", "docker"}, "grader-only packages in the kit"
    assert all("==" in line for line in lines)
    brought = installed_with(lines)

    done = subprocess.run([sys.executable, "-c", IMPORTED_DISTRIBUTIONS, *STUDENT_MODULES],
                          cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    from importlib import metadata
    owners = metadata.packages_distributions()
    imported = set(json.loads(done.stdout)) | {d for top in imported_by_the_weeks()
                                               for d in owners.get(top, [])}
    imported = {re.sub(r"[-_.]+", "-", d).lower() for d in imported} - {"aml-autograder"}
    assert {"tensorflow-cpu", "keras", "nbgrader", "pytest", "ipykernel"} <= imported
    assert imported <= brought, f"imported but not installed by the kit: {imported - brought}"
    assert "jupyterlab" in brought  # the kit's README says a fresh environment gets it


@pytest.mark.parametrize("platform, machine, tensorflow", [
    ("linux", "x86_64", "tensorflow-cpu"),  # and WSL
    ("linux", "aarch64", "tensorflow"),
    ("darwin", "arm64", "tensorflow"),
])
def test_each_platform_gets_one_tensorflow(kits, platform, machine, tensorflow):
    lines = members(kits["week1"])["week1/requirements.txt"].decode().splitlines()
    chosen = [Requirement(line).name for line in lines if "tensorflow" in line
              and not line.startswith("#")
              and Marker(line.split(";", 1)[1]).evaluate({"sys_platform": platform,
                                                          "platform_machine": machine})]
    assert chosen == [tensorflow]
