"""Finding the submissions of a class: notebooks, folders, exports, nbgrader trees.

Inputs (``discover``): notebooks, folders of notebooks, a Gradescope "Export
Submissions" zip (or its unzipped folder), and an nbgrader
``submitted/<student>/<week>/`` tree. Everything in them is student-made, so
odd entries (zip paths leaving the archive, links, huge or non-notebook files)
are skipped with a message instead of stopping the batch.
"""

from __future__ import annotations

import re
import stat
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import yaml

from autograder.grading.bundle import MAX_BUNDLE_BYTES
from autograder.grading.bundle import SUFFIX as BUNDLE_SUFFIX
from autograder.grading.results import write_atomically
from autograder.weeks import Week

# A week-1 notebook with all its plots is about 1 MB; 50 MB leaves room for
# heavy outputs and still refuses files that are not a notebook submission.
MAX_NOTEBOOK_BYTES = 50 * 1024 * 1024
METADATA_NAME = "submission_metadata.yml"  # Gradescope's export index
IGNORED_PARTS = {"__MACOSX", ".ipynb_checkpoints"}


@dataclass(frozen=True)
class Submission:
    name: str  # unique and safe as a folder name: OUT/<name>/
    notebook: Path
    student: str = ""
    email: str = ""
    origin: str = ""  # where it came from, for messages
    bundle: Path | None = None  # handed in beside the notebook (``bundle_beside``)


@dataclass
class Found:
    submissions: list[Submission] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # one message per thing not graded


# -- finding submissions -------------------------------------------------------
def discover(paths: list[Path], week: Week, staging: Path, *,
             max_bytes: int = MAX_NOTEBOOK_BYTES) -> Found:
    """Every submission in ``paths``; notebooks taken out of zips go to ``staging``."""
    found = Found()
    names: set[str] = set()

    def add(name: str, notebook: Path, **identity) -> None:
        base, n = _safe_name(name), 2
        unique = base
        while unique in names:
            unique, n = f"{base}-{n}", n + 1
        names.add(unique)
        bundle = bundle_beside(notebook, week, found.skipped)
        found.submissions.append(Submission(unique, notebook, bundle=bundle, **identity))

    for path in paths:
        if not path.exists():
            found.skipped.append(f"{path}: does not exist")
        elif path.is_dir():
            _discover_folder(path, week, staging, max_bytes, add, found.skipped)
        elif path.suffix == ".ipynb":
            if _size_ok(path, max_bytes, found.skipped):
                add(path.stem, path.resolve(), origin=str(path))
        elif zipfile.is_zipfile(path):
            _discover_gradescope_zip(path, week, staging, max_bytes, add, found.skipped)
        else:
            found.skipped.append(f"{path}: not a notebook (.ipynb), a folder or a zip")
    return found


def bundle_beside(notebook: Path, week: Week, skipped: list[str] | None = None) -> Path | None:
    """The bundle handed in with ``notebook``: ``<stem>.bundle.zip`` beside it, or
    ``<week>.bundle.zip`` when it is the only notebook in its folder (a student's folder,
    an nbgrader tree, a release folder). A link is refused, like a linked notebook."""
    folder = notebook.parent
    alone = len([p for p in folder.glob("*.ipynb") if not p.name.startswith(".")]) == 1
    for path in (folder / name for name in bundle_names(notebook.name, alone, week)):
        if path.is_symlink():
            if skipped is not None:
                skipped.append(f"{path}: refused, a symbolic link (the notebook is executed)")
            return None
        if path.is_file():
            return path
    return None


def bundle_names(notebook: str, alone: bool, week: Week) -> list[str]:
    """The names a notebook's bundle may have beside it, in order of preference."""
    return [PurePosixPath(notebook).stem + BUNDLE_SUFFIX,
            *([week.name + BUNDLE_SUFFIX] if alone else [])]


def _discover_folder(folder: Path, week: Week, staging, max_bytes, add, skipped) -> None:
    if _gradescope_index(folder) is not None:
        _discover_gradescope_folder(folder, week, max_bytes, add, skipped)
        return
    submitted = folder / "submitted" if (folder / "submitted").is_dir() else folder
    if any((student / week.name).is_dir() for student in submitted.iterdir() if student.is_dir()):
        _discover_nbgrader(submitted, week, max_bytes, add, skipped)
        return
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".") or path.is_dir() or path.name.endswith(BUNDLE_SUFFIX):
            continue
        if path.suffix != ".ipynb":
            skipped.append(f"{path}: ignored, not a notebook (.ipynb)")
        elif _size_ok(path, max_bytes, skipped):
            add(path.stem, path.resolve(), origin=str(path))


def _discover_nbgrader(submitted: Path, week: Week, max_bytes, add, skipped) -> None:
    """nbgrader's ``submitted/<student>/<assignment>/<notebook>.ipynb`` (+ timestamp.txt)."""
    for student in sorted(p for p in submitted.iterdir() if p.is_dir()):
        folder = student / week.name
        if not folder.is_dir():
            skipped.append(f"{student}: no {week.name}/ folder (nothing submitted for this week)")
            continue
        files = {str(p.relative_to(folder)): p for p in sorted(folder.rglob("*"))
                 if p.is_file() or p.is_symlink()}
        files.pop("timestamp.txt", None)  # nbgrader's own
        path = _notebook_of(files, week, student.name, max_bytes, skipped)
        if path is not None:
            add(student.name, path.resolve(), student=student.name, origin=str(path))


def _notebook_of(files: dict[str, Path], week: Week, label: str, max_bytes,
                 skipped) -> Path | None:
    """The one notebook to grade among a student folder's files, or None (with the
    reason in ``skipped``): a symbolic link or an oversized file is refused."""
    chosen = _choose_notebook(files, week, label, skipped)
    if chosen is None:
        return None
    path = files[chosen]
    if path.is_symlink():
        skipped.append(f"{path}: refused, a symbolic link in a student folder")
        return None
    return path if _size_ok(path, max_bytes, skipped) else None


def _gradescope_index(folder: Path) -> Path | None:
    """Where submission_metadata.yml is: the folder or its only subfolder."""
    if (folder / METADATA_NAME).is_file():
        return folder
    children = [p for p in folder.iterdir() if p.is_dir() and p.name not in IGNORED_PARTS]
    if len(children) == 1 and (children[0] / METADATA_NAME).is_file():
        return children[0]
    return None


def _discover_gradescope_folder(folder: Path, week: Week, max_bytes, add, skipped) -> None:
    root = _gradescope_index(folder)
    metadata = _read_metadata((root / METADATA_NAME).read_bytes(), str(root), skipped)
    for sub in sorted(p for p in root.iterdir() if p.is_dir()):
        files = {str(p.relative_to(sub)): p for p in sorted(sub.rglob("*"))
                 if (p.is_file() or p.is_symlink()) and not _ignored(p.relative_to(sub).parts)}
        student, email = metadata.pop(sub.name, ("", ""))
        label = f"{sub.name} ({student})" if student else sub.name
        path = _notebook_of(files, week, label, max_bytes, skipped)
        if path is not None:
            add(sub.name, path.resolve(), student=student, email=email, origin=str(path))
    for sub, (student, _) in metadata.items():
        skipped.append(f"{sub} ({student}): listed in {METADATA_NAME} but has no files")


def _discover_gradescope_zip(archive_path: Path, week: Week, staging: Path, max_bytes,
                             add, skipped) -> None:
    """Gradescope's export: ``[assignment_N_export/]submission_metadata.yml`` and one
    ``submission_<id>/`` folder per submission, holding what the student uploaded."""
    try:
        archive = zipfile.ZipFile(archive_path)
    except (zipfile.BadZipFile, OSError) as error:
        skipped.append(f"{archive_path}: not a readable zip ({error})")
        return
    with archive:
        entries: dict[tuple[str, ...], zipfile.ZipInfo] = {}
        for info in archive.infolist():
            if info.is_dir():
                continue
            problem, parts = _unsafe_entry(info)
            if problem:
                skipped.append(f"{archive_path}: refused entry {info.filename!r}: {problem}")
            elif not _ignored(parts):
                entries[parts] = info
        index = [p for p in entries if p[-1] == METADATA_NAME and len(p) <= 2]
        if len(index) != 1:
            skipped.append(f"{archive_path}: not a Gradescope export (it has no "
                           f"{METADATA_NAME} at its top); nothing graded from it")
            return
        root = index[0][:-1]
        raw = _read_entry(archive, entries[index[0]], 10 * max_bytes)
        metadata = _read_metadata(raw, f"{archive_path}:{METADATA_NAME}", skipped) if raw else {}
        folders: dict[str, dict[str, zipfile.ZipInfo]] = {}
        for parts, info in entries.items():
            if parts[:len(root)] != root or len(parts) < len(root) + 2:
                continue
            folder, inner = parts[len(root)], "/".join(parts[len(root) + 1:])
            folders.setdefault(folder, {})[inner] = info
        for folder, files in sorted(folders.items()):
            student, email = metadata.pop(folder, ("", ""))
            label = f"{archive_path.name}:{folder}" + (f" ({student})" if student else "")
            chosen = _choose_notebook(files, week, label, skipped)
            if chosen is None:
                continue
            info = files[chosen]
            if info.file_size > max_bytes:
                skipped.append(f"{label}/{chosen}: refused, {_mb(info.file_size)} is more "
                               f"than the {_mb(max_bytes)} limit")
                continue
            data = _read_entry(archive, info, max_bytes)
            if data is None:
                skipped.append(f"{label}/{chosen}: refused, it unpacks to more than "
                               f"{_mb(max_bytes)} or cannot be read")
                continue
            target = staging / _safe_name(folder) / _safe_name(PurePosixPath(chosen).name)
            write_atomically(target, data)
            _stage_bundle(archive, files, chosen, week, target, f"{label}", skipped)
            add(folder, target.resolve(), student=student, email=email,
                origin=f"{archive_path}:{'/'.join(root + (folder, chosen))}")
        for folder, (student, _) in metadata.items():
            skipped.append(f"{archive_path.name}:{folder} ({student}): listed in "
                           f"{METADATA_NAME} but has no files")


def _stage_bundle(archive: zipfile.ZipFile, files: dict[str, zipfile.ZipInfo], chosen: str,
                  week: Week, target: Path, label: str, skipped: list[str]) -> None:
    """Stage the bundle uploaded beside the chosen notebook (if any) beside its copy."""
    folder = PurePosixPath(chosen).parent
    alone = sum(PurePosixPath(f).parent == folder for f in files if f.endswith(".ipynb")) == 1
    for name in bundle_names(chosen, alone, week):
        info = files.get(str(folder / name))
        if info is None:
            continue
        data = _read_entry(archive, info, MAX_BUNDLE_BYTES)
        if data is None:
            skipped.append(f"{label}/{folder / name}: refused, over the bundle limit of "
                           f"{_mb(MAX_BUNDLE_BYTES)} (the notebook is executed)")
        else:
            write_atomically(target.with_name(target.stem + BUNDLE_SUFFIX), data)
        return


def _unsafe_entry(info: zipfile.ZipInfo) -> tuple[str, tuple[str, ...]]:
    """Why a zip entry must not be used ('' if it may), and its path parts."""
    name = info.filename.replace("\\", "/")
    parts = PurePosixPath(name).parts
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        return "an absolute path", parts
    if ".." in parts:
        return "its path leaves the archive (..)", parts
    if stat.S_ISLNK(info.external_attr >> 16):
        return "a symbolic link", parts
    return "", tuple(p for p in parts if p not in ("", "."))


def _read_entry(archive: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int) -> bytes | None:
    """At most ``limit`` bytes (the size in the zip's header may lie), else None."""
    try:
        with archive.open(info) as handle:
            data = handle.read(limit + 1)
    except (RuntimeError, zipfile.BadZipFile, OSError, NotImplementedError, EOFError):
        return None  # encrypted, corrupt, unsupported compression
    return data if len(data) <= limit else None


class _MetadataLoader(yaml.SafeLoader):
    """Safe YAML that reads Ruby-tagged values (``!ruby/object:BigDecimal``) as plain data."""


def _untagged(loader, _suffix, node):
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node, deep=True)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_scalar(node)


_MetadataLoader.add_multi_constructor("!", _untagged)


def _read_metadata(raw: bytes, where: str, skipped: list[str]) -> dict[str, tuple[str, str]]:
    """Submission folder -> (names, emails) from Gradescope's submission_metadata.yml::

        submission_12345:
          :submitters:
          - :name: Ada Lovelace
            :sid: '1815'
            :email: ada@example.org
          :created_at: ...
    """
    try:
        data = yaml.load(raw, Loader=_MetadataLoader)
    except yaml.YAMLError as error:
        skipped.append(f"{where}: unreadable ({str(error)[:200]}); submissions are graded "
                       "without student names")
        return {}
    if not isinstance(data, dict):
        return {}

    def field_of(record, key):
        value = record.get(f":{key}", record.get(key, "")) if isinstance(record, dict) else ""
        return str(value) if value is not None else ""

    identities = {}
    for folder, record in data.items():
        if not isinstance(record, dict):
            continue
        submitters = record.get(":submitters", record.get("submitters"))
        submitters = submitters if isinstance(submitters, list) else []
        names = [field_of(s, "name") for s in submitters]
        emails = [field_of(s, "email") for s in submitters]
        identities[str(folder)] = ("; ".join(filter(None, names)),
                                   "; ".join(filter(None, emails)))
    return identities


def _choose_notebook(files: dict[str, object], week: Week, label: str,
                     skipped: list[str]) -> str | None:
    """The week's notebook by name, else the only notebook; say why if neither."""
    notebooks = [f for f in files if f.endswith(".ipynb")]
    others = sorted(f for f in files if not f.endswith((".ipynb", BUNDLE_SUFFIX)))
    if others:
        shown = ", ".join(others[:5]) + (f" and {len(others) - 5} more" if len(others) > 5 else "")
        skipped.append(f"{label}: ignored {shown} (not a notebook)")
    named = sorted((f for f in notebooks if PurePosixPath(f).name == week.notebook), key=len)
    if named:
        return named[0]
    if len(notebooks) == 1:
        return notebooks[0]
    if not notebooks:
        skipped.append(f"{label}: not graded, no notebook (.ipynb) in it")
    else:
        skipped.append(f"{label}: not graded, {len(notebooks)} notebooks and none is named "
                       f"{week.notebook}: {', '.join(sorted(notebooks))}")
    return None


def _ignored(parts) -> bool:
    return any(p in IGNORED_PARTS or p.startswith("._") for p in parts)


def _size_ok(path: Path, max_bytes: int, skipped: list[str]) -> bool:
    size = path.stat().st_size
    if size > max_bytes:
        skipped.append(f"{path}: refused, {_mb(size)} is more than the {_mb(max_bytes)} limit")
    return size <= max_bytes


def _safe_name(name: str) -> str:
    """A folder name that cannot escape OUT or hide: letters, digits, ._@+- only."""
    safe = re.sub(r"[^A-Za-z0-9._@+-]", "_", name).lstrip(".-+@")[:100]
    return safe or "submission"


def _mb(size: int) -> str:
    return f"{size / 1024 / 1024:.1f} MB" if size >= 100 * 1024 else f"{size:,} bytes"


