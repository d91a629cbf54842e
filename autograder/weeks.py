"""Where a week's files are, and its grading config (``week.toml``).

A course repository holds, per week::

    source/<week>/       instructor material: notebook with solutions, week.toml,
                         tests/ (hidden pytest checks), checks/ (public checks)
    release/<week>/      what students get (written by ``autograder compile``)
    assignments/<week>/  the week's autograder build: config, every test, and
                         manifest.json (what the compiler derives: see ``Manifest``)

``week.toml`` names the questions (with the nbgrader grade_ids of the cells that
answer them), the thresholds hidden tests read, and the sandbox limits.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from nbformat import NotebookNode

from autograder.errors import ConfigError
from autograder.sandbox.limits import Limits
from autograder.written.questions import WrittenQuestion

CONFIG_NAME = "week.toml"
# What definitions run in a clean room may import at most; a week may narrow it
# ([clean_room] imports), and its rooms then refuse the rest (cleanroom.py).
ROOM_IMPORTABLE = ("math", "numpy", "keras", "tensorflow")
MANIFEST_NAME = "manifest.json"


def course_root() -> Path:
    """The course repository: $AUTOGRADER_COURSE, else the one this package lives in."""
    if os.environ.get("AUTOGRADER_COURSE"):
        return Path(os.environ["AUTOGRADER_COURSE"]).resolve()
    return Path(__file__).resolve().parent.parent


def grade_id(cell) -> str | None:
    """A cell's nbgrader grade_id, or None. Submitted metadata is the student's to edit, so
    any other shape (nbgrader a string or list, a grade_id that is not text) counts as none."""
    metadata = cell.get("metadata") if isinstance(cell, dict) else None
    nbgrader = metadata.get("nbgrader") if isinstance(metadata, dict) else None
    value = nbgrader.get("grade_id") if isinstance(nbgrader, dict) else None
    return value if isinstance(value, str) else None


@dataclass(frozen=True)
class Question:
    id: str
    title: str
    cells: tuple[str, ...]


@dataclass(frozen=True)
class Room:
    """A clean room that runs the definitions of one question's answer cells.

    Models not named by any room are rebuilt in the shared room, where no
    student code runs at all (see autograder/grading/cleanroom.py).
    """
    question: str
    define: tuple[str, ...] = ()  # classes and functions the answer cells must define
    models: tuple[str, ...] = ()  # exported models rebuilt here, with those classes
    # Earlier questions whose answers' definitions run here first (a training loop needs
    # the network class of the question before it).
    uses: tuple[str, ...] = ()


@dataclass(frozen=True)
class LeaderboardColumn:
    """A column of Gradescope's leaderboard: a figure the checks measure (``measure``)."""
    name: str
    measured: str  # the figure's label, e.g. "cnn_model test accuracy"
    order: str = "desc"  # "desc": higher ranks first; "asc": lower (a parameter count)


@dataclass(frozen=True)
class Exports:
    """What the student's kernel hands over after its notebook ran (week.toml [exports])."""
    models: tuple[str, ...] = ()  # saved as Keras archives, rebuilt in a clean room
    values: tuple[str, ...] = ()  # plain values: claims, read as such
    figures: bool = False         # the data of the open figures' lines

    def room_of(self, rooms: dict[str, Room], name: str) -> str:
        """The room that answers for a model or definition: a question id, or "" (shared)."""
        for room in rooms.values():
            if name in room.models or name in room.define:
                return room.question
        return ""


@dataclass(frozen=True)
class Week:
    name: str
    title: str
    notebook: str
    questions: dict[str, Question]
    thresholds: dict = field(default_factory=dict)
    limits: Limits = Limits()
    data: tuple[str, ...] = ()  # data sets the kernel may read (see autograder.data)
    exports: Exports = Exports()
    rooms: dict[str, Room] = field(default_factory=dict)
    # measured figure (label or glob) -> largest difference an audit accepts (audit.py)
    audit: dict[str, float] = field(default_factory=dict)
    leaderboard: tuple[LeaderboardColumn, ...] = ()
    room_imports: tuple[str, ...] = ROOM_IMPORTABLE  # [clean_room] imports
    directory: Path = Path(".")

    # The released notebook as compiled, in a week's build and its release folder (hidden
    # there: students fill in <week>.ipynb; `autograder check` aligns with this copy).
    RELEASE_COPY = ".release.ipynb"

    @property
    def released_notebook(self) -> Path:
        """The notebook students got, as compiled (the compiler writes it)."""
        return self.directory / self.RELEASE_COPY

    @classmethod
    def load(cls, directory: Path) -> "Week":
        path = Path(directory) / CONFIG_NAME
        try:
            raw = tomllib.loads(path.read_text())
        except FileNotFoundError:
            raise ConfigError(f"{path} does not exist") from None
        except tomllib.TOMLDecodeError as error:
            raise ConfigError(f"{path} is not valid TOML: {error}") from None
        questions = {
            qid: Question(qid, q["title"], tuple(q.get("cells", [qid])))
            for qid, q in raw.get("questions", {}).items()
        }
        if not questions:
            raise ConfigError(f"{path} declares no [questions.*]")
        exports = raw.get("exports", {})
        rooms = {qid: Room(qid, tuple(room.get("define", [])), tuple(room.get("models", [])),
                           tuple(room.get("uses", [])))
                 for qid, room in raw.get("rooms", {}).items()}
        unknown = sorted((set(rooms) | {q for room in rooms.values() for q in room.uses})
                         - set(questions))
        if unknown:
            raise ConfigError(f"{path}: [rooms.*] names unknown questions {unknown}")
        room_imports = raw.get("clean_room", {}).get("imports", list(ROOM_IMPORTABLE))
        if not isinstance(room_imports, list) or not set(room_imports) <= set(ROOM_IMPORTABLE):
            raise ConfigError(f"{path}: [clean_room] imports is a list of modules among "
                              f"{list(ROOM_IMPORTABLE)}")
        audit = raw.get("audit", {})
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0
                   for v in audit.values()):
            raise ConfigError(f"{path}: [audit] tolerances must be numbers >= 0")
        # The week's name (it names bundles) goes with its config, so a release folder a
        # student renamed still knows its week; by default, the folder's name.
        name = raw.get("name", Path(directory).name)
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", name):
            raise ConfigError(f"{path}: name must be letters, digits, _ or -")
        return cls(
            name=name,
            title=raw.get("title", name),
            notebook=raw["notebook"],
            questions=questions,
            thresholds=raw.get("thresholds", {}),
            limits=Limits.from_mapping(raw.get("limits", {})),
            data=tuple(raw.get("data", [])),
            exports=Exports(tuple(exports.get("models", [])), tuple(exports.get("values", [])),
                            bool(exports.get("figures", False))),
            rooms=rooms,
            audit={str(k): float(v) for k, v in audit.items()},
            leaderboard=_leaderboard(raw.get("leaderboard", []), path),
            room_imports=tuple(room_imports),
            directory=Path(directory),
        )

    def question_of_cell(self, nb: NotebookNode) -> dict[int, str]:
        """Cell index -> question id, from the cells' nbgrader grade_id."""
        owner = {cell: q.id for q in self.questions.values() for cell in q.cells}
        mapping = {}
        for index, cell in enumerate(nb.cells):
            if grade_id(cell) in owner:
                mapping[index] = owner[grade_id(cell)]
        return mapping


    def missing_answers(self, nb: NotebookNode) -> dict[str, str]:
        """Question id -> message, for questions some of whose cells the notebook lacks."""
        present = {grade_id(cell) for cell in nb.cells}
        messages = {}
        for q in self.questions.values():
            missing = [cell for cell in q.cells if cell not in present]
            if missing:
                messages[q.id] = (
                    f"the notebook has no answer cell for {q.id} (missing the cell(s) "
                    f"{missing} of the released notebook): answer in the released notebook's "
                    "cells instead of deleting or re-creating them")
        return messages


def _leaderboard(raw, path: Path) -> tuple[LeaderboardColumn, ...]:
    """``[[leaderboard]]`` tables: name, measured and an optional order."""
    columns = []
    for table in raw if isinstance(raw, list) else [None]:
        if not isinstance(table, dict) or set(table) - {"name", "measured", "order"} or not all(
                isinstance(table.get(key), str) and table[key] for key in ("name", "measured")):
            raise ConfigError(f"{path}: each [[leaderboard]] has a name and the label of a "
                              "figure the checks measure (measured), and an order at most")
        if table.get("order", "desc") not in ("asc", "desc"):
            raise ConfigError(f"{path}: [[leaderboard]] {table['name']!r}: order is \"asc\" or "
                              f"\"desc\", not {table['order']!r}")
        columns.append(LeaderboardColumn(table["name"], table["measured"],
                                         table.get("order", "desc")))
    return tuple(columns)


@dataclass(frozen=True)
class Manifest:
    """What ``autograder compile`` derives for a week (``assignments/<week>/manifest.json``),
    so that nothing else repeats it: which question each answer cell belongs to, the
    checks and their points (collected from the tests), and the Gradescope timeout and
    memory that the week's ``[limits]`` need."""

    week: str
    cells: dict[str, str]  # nbgrader grade_id -> question
    checks: tuple[dict, ...]  # {"question", "name", "points"}, in the order they run
    timeout: int  # s: Gradescope's autograder timeout
    memory_mb: int  # Gradescope's container memory
    # The written answers TAs grade (autograder/written): their points are not the checks'.
    written: tuple[WrittenQuestion, ...] = ()

    @property
    def points(self) -> dict[str, float]:
        """Points per question."""
        points: dict[str, float] = {}
        for check in self.checks:
            points[check["question"]] = points.get(check["question"], 0.0) + check["points"]
        return points

    @property
    def total(self) -> float:
        return sum(check["points"] for check in self.checks)

    def to_json(self) -> str:
        return json.dumps({"week": self.week, "cells": self.cells, "checks": list(self.checks),
                           "points": self.points, "total": self.total,
                           "gradescope": {"timeout": self.timeout,
                                          "memory_mb": self.memory_mb},
                           "written": [w.to_json() for w in self.written]}, indent=1) + "\n"

    @classmethod
    def load(cls, week: Week) -> Manifest:
        path = week.directory / MANIFEST_NAME
        try:
            data = json.loads(path.read_text())
            return cls(week=data["week"], cells=data["cells"], checks=tuple(data["checks"]),
                       timeout=data["gradescope"]["timeout"],
                       memory_mb=data["gradescope"]["memory_mb"],
                       written=tuple(WrittenQuestion.from_json(w)
                                     for w in data.get("written", [])))
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise ConfigError(f"{path} is missing or damaged ({error}); run `autograder "
                              f"compile {week.name}`") from None


class Course:
    def __init__(self, root: Path | None = None):
        self.root = Path(root or course_root())

    def weeks(self) -> list[str]:
        source = self.root / "source"
        return sorted(p.name for p in source.iterdir() if (p / CONFIG_NAME).exists())

    def source(self, week: str) -> Path:
        path = self.root / "source" / week
        if not (path / CONFIG_NAME).exists():
            known = ", ".join(self.weeks()) or "none"
            raise ConfigError(f"no week '{week}' in {self.root / 'source'} (known: {known})")
        return path

    def release(self, week: str) -> Path:
        return self.root / "release" / week

    def build(self, week: str) -> Path:
        return self.root / "assignments" / week

    def built_week(self, week: str) -> Week:
        build = self.build(week)
        if not (build / CONFIG_NAME).exists():
            raise ConfigError(f"{week} is not compiled; run `autograder compile {week}`")
        return Week.load(build)
