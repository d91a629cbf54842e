"""Clean rooms: fresh sandboxed kernels that never ran the submission.

After the student's notebook ran, its kernel hands over data only (model
archives, plain values, figure data: ``export.py``) and is stopped. Every figure a
check scores is then computed from models rebuilt here:

* the **shared room** loads the archives of the week's models with Keras' safe
  mode, no custom objects, after ``archive.check_archive`` allowed every class
  they name. No student code runs in it at all.
* a **question's room** (``[rooms.qN]`` in week.toml) is for exercises that ask
  students to *define* something: a ``keras.Model`` subclass, a loss function.
  It runs, in this order, the *definitions* of the released notebook's given cells,
  and the definitions of that question's answer cells (the code that ran for it,
  see ``alignment.py``), both taken with ``ast``: imports of the course's libraries,
  ``def`` and ``class`` statements and constants. Nothing that runs when it is
  defined is kept (no decorators, calls in defaults, base classes or class bodies), a
  class may not override Keras' machinery (``fit``, ``predict``, ``__call__`` ...),
  and an answer cannot redefine a given name (the released one is used). Then the
  room loads that question's models, with the question's classes as the only
  custom objects. A room can only answer for its own question's objects.

Each room is a ``KernelSession`` like the student's (own sandbox uid, no network,
the week's limits), set up when a check first needs it. It can read only its
inbox: the archives and the inputs the checks send. Its kernel was started ahead
(``WarmKernels``): a kernel start with TensorFlow's import takes 4-5 s here (more under
load), which would otherwise be added to every grading once per room.

The shared room's kernel goes on as one question's room, the **heir** (``heir``: the
last question with a room), which saves a kernel and its TensorFlow import per
grading, a third of a week-1 grading from a bundle. This is safe because no student
code ran in the shared room: before the heir's definitions arrive, the shared room's
models and inbox are removed and the kernel is seeded again (``RETIRE``), so the heir
computes what it would in a fresh kernel. The shared room is closed for good then; the
grading plugin runs the heir question's checks last so that no shared request comes
after it (one that did would get a room of its own, in a new kernel).
"""

from __future__ import annotations

import ast
import json
import time
from dataclasses import dataclass, field

import nbformat

from autograder.grading.archive import CheckedArchive
from autograder.grading.oracle import OracleError, ProbeClient
from autograder.sandbox.execute import SEED_SOURCE
from autograder.sandbox.isolation import detect
from autograder.sandbox.protocol import ARCHIVE_SUFFIX
from autograder.sandbox.session import KernelSession
from autograder.weeks import ROOM_IMPORTABLE, Week

SHARED = ""  # the shared room's key; question rooms are keyed by question id
IMPORTABLE = frozenset(ROOM_IMPORTABLE)  # at most; a week may narrow it ([clean_room])
KERAS = frozenset({"keras", "tensorflow"})
# Keras' machinery that the grader relies on: a class may not replace it.
KERAS_MACHINERY = frozenset({
    "fit", "train_step", "test_step", "predict", "predict_step", "predict_on_batch",
    "evaluate", "compile", "compute_loss", "__call__", "get_weights", "set_weights",
    "load_weights", "save", "save_weights", "count_params", "summary", "__getattribute__",
    "__getattr__", "__setattr__", "__init_subclass__", "__class_getitem__", "__new__",
    "__del__", "__reduce__", "__reduce_ex__", "from_config", "build_from_config",
    "get_build_config", "load_own_variables", "save_own_variables", "__array__"})


# -- definitions, taken with ast ------------------------------------------------------
@dataclass
class Definitions:
    source: str
    names: set[str] = field(default_factory=set)
    classes: set[str] = field(default_factory=set)  # the classes among the names
    left_out: list[str] = field(default_factory=list)  # notes for the log and messages


def definitions(source: str, *, keep_out: frozenset = frozenset(),
                where: str = "the answer", importable: frozenset = IMPORTABLE) -> Definitions:
    """The statements of ``source`` that only define things; a note for each left out.
    ``importable``: the modules its imports may name (the week's [clean_room] imports)."""
    found = Definitions("")
    try:
        tree = ast.parse(source)
    except SyntaxError as error:
        found.left_out.append(f"{where} has a syntax error on line {error.lineno}: {error.msg}")
        return found
    kept = []
    for node in tree.body:
        problem = _problem(node, frozenset(importable))
        names = _defined_names(node)
        if problem is None and names & keep_out:
            problem = (f"`{sorted(names & keep_out)[0]}` is given code: the released "
                       "definition is used")
        if problem is None:
            kept.append(node)
            found.names |= names
            if isinstance(node, ast.ClassDef):
                found.classes.add(node.name)
        elif not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)):
            found.left_out.append(f"line {node.lineno} of {where}: {problem}")
    found.source = ast.unparse(ast.Module(body=kept, type_ignores=[]))
    return found


def _defined_names(node: ast.stmt) -> set[str]:
    if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
        return {node.name}
    if isinstance(node, ast.Assign):
        return {t.id for t in node.targets if isinstance(t, ast.Name)}
    if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
        return {node.target.id}
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        return {(a.asname or a.name).split(".")[0] for a in node.names}
    return set()


def _problem(node: ast.stmt, importable: frozenset) -> str | None:
    """Why ``node`` is not a pure definition, or None."""
    if isinstance(node, ast.Import):
        bad = [a.name for a in node.names if a.name.split(".")[0] not in importable]
        return f"only {', '.join(sorted(importable))} may be imported here, not {bad[0]}" \
            if bad else None
    if isinstance(node, ast.ImportFrom):
        if node.level or (node.module or "").split(".")[0] not in importable:
            return f"only {', '.join(sorted(importable))} may be imported here"
        return "`import *` is not kept" if any(a.name == "*" for a in node.names) else None
    if isinstance(node, ast.FunctionDef):
        return _function_problem(node)
    if isinstance(node, ast.ClassDef):
        if node.decorator_list or not all(_static(b) for b in node.bases) or any(
                not _static(k.value) for k in node.keywords):
            return f"class {node.name}: decorators and computed base classes are not kept"
        for item in node.body:
            if isinstance(item, ast.FunctionDef):
                # Where Keras cannot be imported no class is a Keras model: a NumPy
                # network may have its own fit and predict.
                if item.name in KERAS_MACHINERY and importable & KERAS:
                    return (f"class {node.name} overrides Keras' `{item.name}`, which the grader "
                            "relies on: define __init__, call and your own methods only")
                problem = _function_problem(item)
                if problem:
                    return f"class {node.name}: {problem}"
            elif isinstance(item, (ast.Assign, ast.AnnAssign)):
                if not _constant(item.value):
                    return f"class {node.name}: only constants may be set in the class body"
            elif not isinstance(item, ast.Pass) and not (
                    isinstance(item, ast.Expr) and isinstance(item.value, ast.Constant)):
                return f"class {node.name}: its body may only define methods and constants"
        return None
    if isinstance(node, (ast.Assign, ast.AnnAssign)):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        if all(isinstance(t, ast.Name) for t in targets) and _constant(node.value):
            return None
        return "only definitions and constants are kept (this statement computes something)"
    return "only definitions and constants are kept (this statement runs code)"


def _function_problem(node: ast.FunctionDef) -> str | None:
    arguments = node.args
    evaluated = [*arguments.defaults, *[d for d in arguments.kw_defaults if d is not None]]
    annotations = [a.annotation for a in [*arguments.posonlyargs, *arguments.args,
                                          *arguments.kwonlyargs, arguments.vararg,
                                          arguments.kwarg] if a is not None and a.annotation]
    if node.returns is not None:
        annotations.append(node.returns)
    if node.decorator_list:
        return f"`{node.name}` has a decorator, which is not kept"
    if not all(_constant(d) for d in evaluated) or not all(_static(a) for a in annotations):
        return f"`{node.name}`: default values must be constants"
    return None


def _static(node) -> bool:
    """A name, attribute or subscript of names: evaluating it calls nothing we did not load."""
    if isinstance(node, (ast.Name, ast.Constant)):
        return True
    if isinstance(node, ast.Attribute):
        return _static(node.value)
    if isinstance(node, ast.Subscript):
        return _static(node.value) and _static(node.slice)
    if isinstance(node, (ast.Tuple, ast.List)):
        return all(_static(e) for e in node.elts)
    return False


def _constant(node) -> bool:
    """Literals, names and arithmetic on them: ``SCALE = 10.0``, ``N = 2 * POINTS``."""
    if node is None:
        return True
    if isinstance(node, (ast.Constant, ast.Name)):
        return True
    if isinstance(node, ast.Attribute):
        return _static(node)
    if isinstance(node, ast.UnaryOp):
        return _constant(node.operand)
    if isinstance(node, ast.BinOp):
        return _constant(node.left) and _constant(node.right)
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return all(_constant(e) for e in node.elts)
    if isinstance(node, ast.Dict):
        return all(_constant(k) and _constant(v) for k, v in zip(node.keys, node.values))
    return False


def own_classes(week: Week, answers: dict[str, str]) -> dict[str, frozenset]:
    """Question -> the classes its room may rebuild models with: those the week names and
    those the answer defines (a student may name the asked class differently)."""
    return {question: frozenset(room.define) | frozenset(
                definitions(answers.get(question, ""),
                            importable=frozenset(week.room_imports)).classes)
            for question, room in week.rooms.items()}


def given_definitions(week: Week, release) -> Definitions:
    """The definitions of the released notebook's given (non-answer) code cells."""
    sources = [cell.source for cell in release.cells if cell.cell_type == "code"
               and not cell.get("metadata", {}).get("nbgrader", {}).get("solution")]
    return definitions("\n\n".join(sources), where="the given code",
                       importable=frozenset(week.room_imports))


# -- the rooms --------------------------------------------------------------------------
LOADER = """
def _ag_load(archives, own):
    import inspect
    import keras

    def from_config(cls, config):
        # A subclass saved by Keras carries its constructor's arguments (when they are
        # plain) beside name, trainable and dtype, which an __init__ without **kwargs
        # does not take: try with all, then without those, then with none.
        base = {{"name", "trainable", "dtype"}}
        rest = {{k: v for k, v in config.items() if k not in base}}
        for arguments in (config, rest, {{}}):
            try:
                return cls(**arguments)
            except TypeError:
                if arguments == {{}}:
                    raise

    from keras.src.layers.preprocessing import index_lookup

    class Lines(str):
        # Keras writes a vocabulary joined by "\\n" but reads it back with splitlines(),
        # which also splits tokens holding "\\x85" or "\\u2028" (IMDB reviews have them)
        # into repeated terms: read it back as it was written.
        def splitlines(self, keepends=False):
            return self.split("\\n")

    class VocabularyFile:
        def __init__(self, path, mode="r", *args, **kwargs):
            self.handle = open(path, mode, *args, **kwargs)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.handle.close()

        def read(self):
            return Lines(self.handle.read())

    index_lookup.open = VocabularyFile

    custom = {{}}
    for name in own:
        found = globals().get(name)
        if inspect.isclass(found) and issubclass(found, keras.Model):
            found.from_config = classmethod(from_config)  # classes may not define their own
        if found is not None:
            custom[name] = found
    errors = {{}}
    for name, path in archives.items():
        try:
            globals()[name] = keras.saving.load_model(path, custom_objects=custom,
                                                      compile=False, safe_mode=True)
        except Exception as error:
            errors[name] = f"{{type(error).__name__}}: {{error}}"[:500]
    return errors


_ag_load_errors = _ag_load({archives}, {own})
del _ag_load
"""


@dataclass
class Room:
    key: str
    session: KernelSession
    client: ProbeClient
    problem: str = ""  # why the room cannot answer at all
    notes: list[str] = field(default_factory=list)  # what was left out of the answer
    load_errors: dict = field(default_factory=dict)  # model -> why it did not load


class WarmKernels:
    """Kernels for the clean rooms, started before the rooms need them.

    One starts as the grading starts (the plugin's first hook) and imports TensorFlow
    while the grader collects its checks and the notebook runs: one only, as a warm
    kernel holds about 650 MB, which the grader's memory margin covers once
    (``container.py``). The others start once the student's kernel is stopped
    (``warm_rest``), all at once: rooms stay open until the end of grading anyway. A
    warm kernel has run nothing but the probe and the seeding that every kernel runs
    first, so a room set up in one computes what a cold one would.
    """

    def __init__(self, week: Week):
        self.week = week
        self.left = room_count(week)
        self.ready: list[KernelSession] = []
        self._warm(1)

    def warm_rest(self) -> None:
        """Start every other room's kernel (call once the student's kernel is stopped)."""
        self._warm(self.left)

    def _warm(self, count: int) -> None:
        for _ in range(min(count, self.left)):
            self.left -= 1
            session = new_room_session(self.week)
            self.ready.append(session)
            session.warm_up()

    def take(self) -> KernelSession:
        """A started kernel (or, once the expected rooms are used up, a cold session)."""
        return self.ready.pop(0) if self.ready else new_room_session(self.week)

    def close(self) -> None:
        while self.ready:
            self.ready.pop().close()


# Keras imports these when they are installed (optional integrations), which nearly
# doubles its import time (about 9 s instead of 5 s here). Nothing in a room needs
# them, and nothing run there may use them (``IMPORTABLE``), so a room refuses them.
NOT_IN_ROOMS = frozenset({"pandas", "sklearn", "scipy", "matplotlib", "jax", "torch", "PIL",
                          "autograd"})
ROOM_PRELUDE = """
import sys as _ag_sys
class _AgNotInThisRoom:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in {refused!r}:
            raise ImportError(f"{{name}} is not available in the grader's clean room")
_ag_sys.meta_path.insert(0, _AgNotInThisRoom())
del _ag_sys, _AgNotInThisRoom
"""


def refused_modules(week: Week) -> frozenset:
    """What a room of ``week`` refuses to import, at run time too: a function body can
    import what a definition may not (``__import__("tensorflow")``). A week without
    Keras in its [clean_room] imports refuses Keras and TensorFlow, so that its rooms
    also start without their 5 s import."""
    return NOT_IN_ROOMS | (KERAS - frozenset(week.room_imports))


# The shared room handed on to the heir: its models are deleted (the heir's student code
# must not find them; only archives the heir's question names may reach it) and the
# kernel is seeded as a fresh one is.
RETIRE = """
import gc as _ag_gc, keras as _ag_keras
{deletions}
_ag_keras.backend.clear_session()
_ag_gc.collect()
del _ag_gc, _ag_keras
""" + SEED_SOURCE


def new_room_session(week: Week) -> KernelSession:
    prelude = ROOM_PRELUDE.format(refused=sorted(refused_modules(week)))
    return KernelSession(nbformat.v4.new_notebook(), detect(), week.limits, question_of_cell={},
                         prelude=prelude)


def has_shared_room(week: Week) -> bool:
    """Whether a model of the week is rebuilt where no student code runs."""
    return any(not week.exports.room_of(week.rooms, m) for m in week.exports.models)


def heir(week: Week) -> str | None:
    """The question whose room goes on in the shared room's kernel: the last one (in
    week.toml's order) with a room, when the week has a shared room too."""
    with_rooms = [q for q in week.questions if q in week.rooms]
    return with_rooms[-1] if with_rooms and has_shared_room(week) else None


def room_count(week: Week) -> int:
    """How many kernels grading this week's rooms needs: one per question room, the
    shared room's being the heir's (or one for the shared room alone)."""
    return max(len(week.rooms), int(has_shared_room(week)))


class CleanRooms:
    """The week's rooms, each set up on first use and closed at the end of grading."""

    def __init__(self, week: Week, archives: dict[str, CheckedArchive],
                 answers: dict[str, str], release=None, kernels: WarmKernels | None = None):
        self.week = week
        self.kernels = kernels
        self.archives = archives
        self.answers = answers  # question id -> the code that ran for it
        self.release = release
        self.given = given_definitions(week, release) if release is not None else \
            Definitions("")
        self.rooms: dict[str, Room] = {}
        self.heir = heir(week)
        self.start_seconds = 0.0
        self.retired_seconds = 0.0  # the shared room's answers, before it was handed on

    @property
    def seconds(self) -> float:
        """Time spent starting rooms and waiting for their answers (for the benchmarks)."""
        return self.start_seconds + self.retired_seconds + sum(
            room.client.seconds for room in self.rooms.values())

    def key_of(self, name: str) -> str:
        return self.week.exports.room_of(self.week.rooms, name)

    def room(self, key: str) -> Room:
        if key not in self.rooms:
            started = time.monotonic()
            self.rooms[key] = self._start(key, self._kernel(key))
            self.start_seconds += time.monotonic() - started
        return self.rooms[key]

    def _kernel(self, key: str) -> KernelSession:
        """A kernel for room ``key``: for the heir, the shared room's, retired; else a
        warm (or cold) one."""
        shared = self.rooms.get(SHARED)
        if key and key == self.heir and shared is not None and not shared.problem:
            del self.rooms[SHARED]  # no request reaches this kernel as the shared room again
            self.retired_seconds += shared.client.seconds
            session = shared.session
            for path in session.sandbox.inbox.iterdir():
                path.unlink()
            models = [m for m in self.week.exports.models if not self.key_of(m)]
            deletions = "\n".join(f"globals().pop({name!r}, None)"
                                  for name in [*models, "_ag_load_errors"])
            if session.hand_on(RETIRE.format(deletions=deletions)):
                return session
            session.close()
        return self.kernels.take() if self.kernels else new_room_session(self.week)

    def _start(self, key: str, session: KernelSession) -> Room:
        spec = self.week.rooms.get(key)
        if spec is None:
            models = [m for m in self.week.exports.models if not self.key_of(m)]
            cells, own, notes = [], (), []
        else:
            models = list(spec.models)
            # The questions it builds on first, then its own, each taken on its own (a
            # syntax error in one costs that one's definitions only).
            answers = [definitions(self.answers.get(q, ""), keep_out=frozenset(self.given.names),
                                   where=f"your answer to {q}",
                                   importable=frozenset(self.week.room_imports))
                       for q in [*spec.uses, key]]
            own = sorted(set(spec.define).union(*(a.classes for a in answers)))
            cells = [self.given.source, *(a.source for a in answers)]
            notes = [note for a in answers for note in a.left_out]
        archives = {m: self.archives[m] for m in models if m in self.archives}
        paths = {model: str(session.put_array_file(model + ARCHIVE_SUFFIX, archive.data))
                 for model, archive in archives.items()}
        # Without archives there is nothing to load (and Keras may not be importable).
        loader = LOADER.format(archives=json.dumps(paths), own=json.dumps(list(own))) \
            if paths else "_ag_load_errors = {}"
        room = Room(key, session, ProbeClient(session), notes=notes)
        report = session.execute(nbformat.v4.new_notebook(
            cells=[nbformat.v4.new_code_cell(source) for source in [*cells, loader]]))
        if not report.fatal and not report.problems():
            try:
                room.load_errors = room.client.value("_ag_load_errors")
            except OracleError as error:
                room.problem = f"the grader's clean room did not answer ({error})"
        if report.fatal:
            room.problem = f"the grader's clean room could not start ({report.fatal})"
        elif report.problems():
            first = report.problems()[0]
            room.problem = (f"your definitions for {key} could not be run on their own: "
                            f"they {first.message}" if key else
                            f"the grader's clean room failed: {first.message}")
        return room

    def close(self) -> None:
        for room in self.rooms.values():
            room.session.close()
        self.rooms.clear()
