"""The submission bundle: what a notebook's run hands over, as one file.

A bundle is a zip::

    manifest.json        format, week, tool and Keras versions, digest of the code cells,
                         and what it holds
    models/<name>.keras  the week's models, as the Keras archives the clean room loads
    values.json          plain values (numbers, strings, lists, dicts)
    arrays/<key>.npy     array values and the figures' line data
    figures.json         titles, labels and the keys of each line's x and y
    images/<i>.png       pictures of the figures (for the feedback page only)
    claims.json          what each model records about its training (claims)
    problems.json        what could not be handed over, and why
    execution.json       which cells ran, raised, timed out

``write_bundle`` makes one from an ``Export``; ``read_bundle`` reads one back
without trusting it: a size cap, only the members above (no absolute paths,
``..``, links or duplicates), a cap on what they unpack to, the manifest's week
and versions, every model through ``archive.check_archive``, every array through
``protocol.read_npy``, every value plain JSON. Anything else is ``BundleRefused``
with a message for the student.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import stat
import zipfile
from dataclasses import dataclass, field
from importlib.metadata import version

import nbformat
import numpy as np

import autograder
from autograder.grading.archive import ArchiveRefused, check_archive
from autograder.grading.export import Export
from autograder.grading.oracle import Axes, Line, training_claims
from autograder.sandbox import protocol
from autograder.weeks import Week

FORMAT = 1
SUFFIX = ".bundle.zip"
MAX_BUNDLE_BYTES = 100 * 2**20      # what a student uploads beside the notebook
MAX_BUNDLE_UNPACKED = 768 * 2**20   # what its members unpack to, together
MAX_MEMBERS = 4096
MAX_JSON_BYTES = 16 * 2**20         # one JSON member
NAME = r"[A-Za-z_][A-Za-z0-9_]{0,99}"
MEMBER = re.compile(rf"(manifest|values|figures|claims|problems|execution)\.json"
                    rf"|models/{NAME}\.keras|arrays/[A-Za-z0-9_-]{{1,120}}\.npy|images/\d{{1,3}}\.png")
FIXED = 0o100644 << 16  # members are regular files, readable
EPOCH = (1980, 1, 1, 0, 0, 0)  # fixed times: the same export gives the same bytes


# The release notebook's last cells (the compiler appends them): they save the bundle from
# the student's own kernel. The grader's sandbox makes the bundle itself, so grading by
# execution leaves this cell out (``alignment.align``).
CELL_ID = "submission_bundle"


def given_cells(week: Week) -> list:
    """The markdown and code cells that end every release notebook."""
    text = nbformat.v4.new_markdown_cell(
        "## Save your submission\n\n"
        "Run this cell last, after **Restart Kernel and Run All Cells**. It saves "
        f"`{week.name}{SUFFIX}` next to this notebook: your models, values and figures, which the "
        "grader checks without running your notebook again. Submit it together with the "
        f"notebook; `autograder check {week.notebook}` tells you whether it matches.",
        id=CELL_ID + "-text")
    code = nbformat.v4.new_code_cell(
        f"from autograder.student import save_bundle\n\nsave_bundle(\"{week.name}\")",
        id=CELL_ID)
    for cell, grade_id in ((text, CELL_ID + "_text"), (code, CELL_ID)):
        cell.metadata["nbgrader"] = {"grade": False, "grade_id": grade_id, "locked": True,
                                     "schema_version": 3, "solution": False, "task": False}
    return [text, code]


# After each question's cells, and before the save cells, the compiler puts a cell that
# runs that question's public checks in the student's kernel (``autograder.student.check``).
# Like the save cell, they are the student's side: grading leaves them out.
CHECK_CELL = "ag_check_"  # grade_id prefix: ag_check_q1, ..., ag_check_all


def check_cell(question: str | None):
    """The given cell that checks ``question`` (None: every question) in the notebook."""
    if question is None:
        source = ("# Every question's public checks, against this kernel's models and values.\n"
                  "from autograder.student import check_all\n\ncheck_all()")
    else:
        source = (f"# The public checks of {question}, against this kernel's models and values\n"
                  "# (seconds: nothing is run again). The hidden checks run when you submit.\n"
                  f"from autograder.student import check\n\ncheck(\"{question}\")")
    grade_id = CHECK_CELL + (question or "all")
    cell = nbformat.v4.new_code_cell(source, id=grade_id.replace("_", "-"))
    cell.metadata["nbgrader"] = {"grade": False, "grade_id": grade_id, "locked": True,
                                 "schema_version": 3, "solution": False, "task": False}
    return cell


def student_side(grade_id: str | None) -> bool:
    """A given cell that only the student's own kernel runs: grading leaves it out."""
    return grade_id == CELL_ID or (grade_id or "").startswith(CHECK_CELL)


class BundleRefused(ValueError):
    """A bundle that cannot be graded; the message is for the student."""


@dataclass
class Bundle:
    manifest: dict
    export: Export
    execution: dict = field(default_factory=dict)


def code_digest(sources) -> str:
    """The digest of code cells' sources, in order (a cell cannot hash the file it is
    saved into, so the bundle names the code instead). Blank cells are left out and
    trailing newlines ignored, as Jupyter and IPython's history do: the cells a kernel
    ran top to bottom digest as the notebook's code cells (``notebook_code``)."""
    digest = hashlib.sha256()
    for source in sources:
        if source.strip():
            data = source.rstrip("\n").encode("utf-8")
            digest.update(len(data).to_bytes(8, "big") + data)
    return digest.hexdigest()


def notebook_code(nb) -> list[str]:
    return [cell.source for cell in nb.cells if cell.cell_type == "code"]


# -- writing --------------------------------------------------------------------------------
def write_bundle(week: Week, export: Export, *, code: str, execution: dict | None = None) -> bytes:
    members: dict[str, bytes] = {}
    arrays: dict[str, np.ndarray] = {}
    values = {}
    for name, value in export.values.items():
        if isinstance(value, np.ndarray):
            arrays[f"value-{name}"] = value
            values[name] = {"array": f"value-{name}"}
        else:
            values[name] = {"value": value}
    figures = None
    if export.figures is not None:
        figures = []
        for f, axes_list in enumerate(export.figures):
            figure = []
            for a, axes in enumerate(axes_list):
                lines = []
                for i, line in enumerate(axes.lines):
                    key = f"line-{f}-{a}-{i}"
                    arrays[key + "-x"], arrays[key + "-y"] = line.x, line.y
                    lines.append({"label": line.label, "x": key + "-x", "y": key + "-y"})
                figure.append({"title": axes.title, "xlabel": axes.xlabel,
                               "ylabel": axes.ylabel, "lines": lines})
            figures.append(figure)
    for name, archive in export.archives.items():
        members[f"models/{name}.keras"] = archive.data
    for key, array in arrays.items():
        buffer = io.BytesIO()
        np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
        members[f"arrays/{key}.npy"] = buffer.getvalue()
    for i, image in enumerate(export.images[:protocol.MAX_FIGURES]):
        members[f"images/{i}.png"] = image
    documents = {"values": values, "figures": figures, "claims": export.claims,
                 "problems": export.problems, "execution": execution or {}}
    for name, document in documents.items():
        members[f"{name}.json"] = json.dumps(document, sort_keys=True).encode()
    manifest = {"format": FORMAT, "week": week.name, "tool": autograder.__version__,
                "keras": version("keras"), "code": code,
                "models": sorted(export.archives), "values": sorted(values)}
    members["manifest.json"] = json.dumps(manifest, sort_keys=True, indent=1).encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as bundle:
        for name in sorted(members):
            info = zipfile.ZipInfo(name, EPOCH)
            info.external_attr = FIXED
            # Keras archives are zips already: storing them saves the time of deflating.
            info.compress_type = zipfile.ZIP_STORED if name.endswith(".keras") else \
                zipfile.ZIP_DEFLATED
            bundle.writestr(info, members[name])
    return buffer.getvalue()


# -- reading --------------------------------------------------------------------------------
def read_bundle(data: bytes, week: Week, *, own_classes: dict[str, frozenset] | None = None,
                code: str | None = None, uploaded: bool = True) -> Bundle:
    """The bundle in ``data``, checked; ``code``: the digest its notebook must have.

    ``uploaded=False``: the grader's own bundle of an execution, whose parts were capped
    one by one when the kernel handed them over; it is not held to the upload's caps."""
    if uploaded and len(data) > MAX_BUNDLE_BYTES:
        raise BundleRefused(f"the bundle is {len(data) / 2**20:.0f} MB, over the limit of "
                            f"{MAX_BUNDLE_BYTES / 2**20:.0f} MB")
    members = _members(data, uploaded)
    manifest = _json(members, "manifest.json", dict)
    _check_manifest(manifest, week, code)
    export = Export()
    for name in week.exports.models:
        archive = members.get(f"models/{name}.keras")
        if archive is None:
            continue
        own = (own_classes or {}).get(week.exports.room_of(week.rooms, name), frozenset())
        try:
            export.archives[name] = check_archive(archive, name, own_classes=own)
        except ArchiveRefused as error:
            export.problems[name] = f"could not rebuild `{name}`: {error}"
    unexpected = [m[len("models/"):-len(".keras")] for m in members
                  if m.startswith("models/") and m[len("models/"):-len(".keras")]
                  not in week.exports.models]
    if unexpected:
        raise BundleRefused(f"the bundle holds models the week does not ask for: "
                            f"{', '.join(sorted(unexpected))[:200]}")
    for name, value in _json(members, "values.json", dict).items():
        if name not in week.exports.values:
            raise BundleRefused(f"the bundle holds a value the week does not ask for: "
                                f"{str(name)[:100]}")
        if isinstance(value, dict) and set(value) == {"array"}:
            export.values[name] = _array(members, value["array"])
        elif isinstance(value, dict) and set(value) == {"value"}:
            export.values[name] = value["value"]
        else:
            raise BundleRefused(f"the value `{name}` in the bundle is malformed")
    figures = _json(members, "figures.json", (list, type(None)))
    if figures is not None:
        export.figures = [[_axes(members, axes) for axes in _kind(figure, list)]
                          for figure in figures]
    for name, claims in _json(members, "claims.json", dict).items():
        if name in export.archives:
            export.claims[name] = training_claims(_kind(claims, dict))
    for name, problem in _json(members, "problems.json", dict).items():
        if name in (*week.exports.models, *week.exports.values, "figures"):
            export.problems.setdefault(name, str(problem)[:protocol.MAX_TEXT])
    for name in sorted((m for m in members if m.startswith("images/")),
                       key=lambda m: int(m[len("images/"):-len(".png")])):
        image = members[name]
        if len(image) <= protocol.MAX_PNG_BYTES and image[:8] == b"\x89PNG\r\n\x1a\n":
            export.images.append(image)
    return Bundle(manifest, export, _json(members, "execution.json", dict))


def _members(data: bytes, uploaded: bool) -> dict[str, bytes]:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = archive.infolist()
    except (zipfile.BadZipFile, ValueError, OSError) as error:
        raise BundleRefused(f"the bundle is not a zip file ({error})") from None
    if uploaded and len(infos) > MAX_MEMBERS:
        raise BundleRefused(f"the bundle holds {len(infos)} files, over the limit of "
                            f"{MAX_MEMBERS}")
    names = [info.filename for info in infos]
    if len(set(names)) != len(names):
        raise BundleRefused("the bundle holds a file twice")
    unpacked = 0
    for info in infos:
        mode = info.external_attr >> 16
        if not MEMBER.fullmatch(info.filename) or stat.S_ISLNK(mode) or info.is_dir():
            raise BundleRefused(f"the bundle holds an unexpected file {info.filename[:100]!r}")
        if uploaded and info.filename.endswith(".json") and info.file_size > MAX_JSON_BYTES:
            raise BundleRefused(f"{info.filename} in the bundle is over "
                                f"{MAX_JSON_BYTES / 2**20:.0f} MB")
        unpacked += info.file_size
    if uploaded and unpacked > MAX_BUNDLE_UNPACKED:
        raise BundleRefused(f"the bundle unpacks to {unpacked / 2**20:.0f} MB, over the limit "
                            f"of {MAX_BUNDLE_UNPACKED / 2**20:.0f} MB")
    try:
        # zipfile stops at each member's declared size and checks its CRC, so a member
        # cannot unpack to more than the sizes summed above.
        return {info.filename: archive.read(info) for info in infos}
    except (zipfile.BadZipFile, ValueError, OSError, NotImplementedError, EOFError) as error:
        raise BundleRefused(f"the bundle is corrupt ({error})") from None


def _check_manifest(manifest: dict, week: Week, code: str | None) -> None:
    if manifest.get("format") != FORMAT:
        raise BundleRefused(f"the bundle's format {str(manifest.get('format'))[:20]} is not "
                            f"{FORMAT}: make it again with this course's notebook")
    if manifest.get("week") != week.name:
        raise BundleRefused(f"the bundle is for {str(manifest.get('week'))[:40]}, not "
                            f"{week.name}")
    if manifest.get("keras") != version("keras"):
        raise BundleRefused(f"the bundle was made with Keras {str(manifest.get('keras'))[:20]}; "
                            f"the grader uses Keras {version('keras')} (the course's "
                            "environment)")
    if code is not None and manifest.get("code") != code:
        raise BundleRefused("the bundle does not match the notebook's code (a cell was "
                            "changed after the bundle was saved): run the notebook again "
                            "and save the bundle at its end")


def _json(members: dict, name: str, kind):
    raw = members.get(name)
    if raw is None:
        raise BundleRefused(f"the bundle lacks {name}")
    try:
        document = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        raise BundleRefused(f"{name} in the bundle is not JSON ({type(error).__name__})") \
            from None
    if not isinstance(document, kind):
        raise BundleRefused(f"{name} in the bundle is malformed")
    return document


def _kind(value, kind):
    if not isinstance(value, kind):
        raise BundleRefused("the bundle's figure data is malformed")
    return value


def _array(members: dict, key) -> np.ndarray:
    raw = members.get(f"arrays/{key}.npy") if isinstance(key, str) else None
    if raw is None:
        raise BundleRefused(f"the bundle lacks the array {str(key)[:100]!r}")
    try:
        # NaN and infinite values are the checks' to judge, as after an execution.
        return protocol.read_npy(raw)
    except protocol.ArrayRefused as error:
        raise BundleRefused(f"the array {key!r} in the bundle: {error}") from None


def _axes(members: dict, axes) -> Axes:
    axes = _kind(axes, dict)
    lines = tuple(Line(str(_kind(line, dict).get("label", ""))[:200],
                       _array(members, line.get("x")).ravel(),
                       _array(members, line.get("y")).ravel())
                  for line in _kind(axes.get("lines", []), list))
    return Axes(str(axes.get("title", ""))[:200], str(axes.get("xlabel", ""))[:200],
                str(axes.get("ylabel", ""))[:200], lines)
