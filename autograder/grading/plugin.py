"""The pytest plugin that turns a week's tests into a graded results.json.

Loaded with ``-p autograder.grading.plugin`` into a pytest process of its own
(see ``runner.py``). A week's tests declare their worth with markers::

    pytestmark = pytest.mark.question("q1")

    @pytest.mark.points(1)
    def test_hidden_layer_is_8_relu_units(oracle):
        "The hidden layer has 8 ReLU units"
        ...

and get the submission through fixtures: ``oracle`` (models rebuilt in clean
rooms, values the notebook handed over), ``answer_source`` (the text of a
question's answer cells, for ``ast``), ``week`` (thresholds), ``execution`` (what
happened when cells ran) and ``measure`` (report a figure, e.g. an accuracy or a
parameter count, with the result).

The notebook runs once per session, lazily, in a sandbox, aligned with the
released notebook (``alignment.py``: given cells run as released); its kernel
hands over its models and values (``export.py``) and is stopped before any check
asks a clean room (``cleanroom.py``) what a model computes. A test's output shown
to students is its failure *message* only: never a traceback, never test source.
"""

from __future__ import annotations

import base64
import copy
import time
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest

from autograder.grading import provenance
from autograder.grading.alignment import Aligned, align
from autograder.grading.bundle import SUFFIX as BUNDLE_SUFFIX
from autograder.grading.bundle import (MAX_BUNDLE_BYTES, BundleRefused, code_digest,
                                       notebook_code, read_bundle, write_bundle)
from autograder.grading.cleanroom import CleanRooms, WarmKernels, heir, own_classes
from autograder.grading.export import Export, export
from autograder.grading.oracle import Oracle
from autograder.grading.results import CheckResult, GradingResult, write_results
from autograder.grading.runner import NO_BUNDLE
from autograder.sandbox.execute import ExecutionReport
from autograder.sandbox.isolation import detect
from autograder.sandbox.session import KernelSession
from autograder.weeks import Week


RECORDER = pytest.StashKey["GradingRecorder"]()  # the session's recorder, in config.stash
WARM_KERNELS = pytest.StashKey[WarmKernels]()  # the rooms' kernels, started first of all
MEASURED = "autograder.measured"  # a user_properties name: a figure a check measured


class SubmissionError(AssertionError):
    """The submission cannot be graded at all (unreadable, not a notebook...)."""


def pytest_addoption(parser):
    group = parser.getgroup("autograder")
    group.addoption("--ag-notebook", help="the submitted notebook")
    group.addoption("--ag-week", help="the week's build directory (holds week.toml)")
    group.addoption("--ag-results", help="where to write results.json")
    group.addoption("--ag-visibility", default="visible",
                    help="Gradescope visibility of the tests' results: VISIBILITY, or "
                         "VISIBILITY,q1=VISIBILITY,... to set some questions apart")
    group.addoption("--ag-bundle", help="the bundle handed in with the notebook: grade from "
                                        "it when it matches, else execute the notebook")
    group.addoption("--ag-questions", help="QID[,QID...]: only these questions' checks (a "
                                           "student's check(\"q1\") in the notebook)")


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config, parser, args):
    # The earliest moment the options are known: the first room's kernel starts importing
    # TensorFlow now, while this process imports the week's conftest (scikit-learn for
    # week 1) and collects, instead of after them.
    week = early_config.known_args_namespace.ag_week
    if week:
        early_config.stash[WARM_KERNELS] = WarmKernels(Week.load(Path(week)))


def pytest_unconfigure(config):
    # Kernels no room took (collection failed, or the checks needed fewer rooms).
    kernels = config.stash.get(WARM_KERNELS, None)
    if kernels is not None:
        kernels.close()


def pytest_configure(config):
    config.addinivalue_line("markers", "points(n): what passing this test is worth")
    config.addinivalue_line("markers", "question(id): the week.toml question it grades")
    if config.getoption("--ag-results"):
        recorder = GradingRecorder(config)
        config.stash[RECORDER] = recorder
        config.pluginmanager.register(recorder, "autograder-recorder")  # for its hooks


@pytest.hookimpl(wrapper=True)
def pytest_collection_modifyitems(config, items):
    # A wrapper: around it the recorder lists the checks in the week's order (results.json
    # keeps it). The heir question's checks run last: its room goes on in the shared
    # room's kernel, which then answers nothing more (cleanroom.py).
    only = config.getoption("--ag-questions")
    if only:  # before the recorder lists the checks: results.json holds only these
        keep = set(only.split(","))
        config.hook.pytest_deselected(items=[i for i in items if _question(i) not in keep])
        items[:] = [item for item in items if _question(item) in keep]
    listed = yield
    if config.getoption("--ag-week"):
        last = heir(Week.load(Path(config.getoption("--ag-week"))))
        items.sort(key=lambda item: _question(item) == last)
    return listed


def _question(item) -> str | None:
    marker = item.get_closest_marker("question")
    return marker.args[0] if marker and marker.args else None


# -- fixtures -----------------------------------------------------------------
@pytest.fixture(scope="session")
def week(pytestconfig) -> Week:
    return Week.load(Path(pytestconfig.getoption("--ag-week")))


@pytest.fixture(scope="session")
def submission(pytestconfig):
    """The submitted notebook, parsed and validated (never executed here)."""
    path = Path(pytestconfig.getoption("--ag-notebook"))
    try:
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
    except FileNotFoundError:
        raise SubmissionError(f"the submission {path.name} does not exist") from None
    except Exception as error:
        raise SubmissionError(
            f"{path.name} is not a valid Jupyter notebook ({type(error).__name__}: "
            f"{str(error)[:300]})") from None
    if not any(cell.cell_type == "code" for cell in nb.cells):
        raise SubmissionError(f"{path.name} has no code cells")
    return nb


@pytest.fixture(scope="session")
def release(week):
    """The released notebook as compiled (trusted), or None in a build without one."""
    if not week.released_notebook.exists():  # (test weeks)
        return None
    return nbformat.read(week.released_notebook, as_version=4)


@pytest.fixture(scope="session")
def aligned(submission, release, week) -> Aligned:
    """The code that runs: the released notebook with the student's answers in it."""
    if release is None:
        cells = week.question_of_cell(submission)
        answers: dict[str, list[str]] = {}
        for index, question in cells.items():
            answers.setdefault(question, []).append(submission.cells[index].source)
        return Aligned(submission, cells, answers, missing=week.missing_answers(submission))
    return align(week, release, submission)


@dataclass
class StudentRun:
    report: object  # sandbox.execute.ExecutionReport
    export: Export


@pytest.fixture(scope="session")
def warm_kernels(pytestconfig) -> WarmKernels:
    """The clean rooms' kernels, started in ``pytest_load_initial_conftests`` (those no
    room takes are closed in ``pytest_unconfigure``)."""
    return pytestconfig.stash[WARM_KERNELS]


@pytest.fixture(scope="session")
def student_run(aligned, submission, week, warm_kernels, pytestconfig) -> StudentRun:
    """What the checks grade: the bundle handed in with the notebook when it matches the
    notebook's code, else the bundle of a run of the notebook in its sandbox. Either way
    the checks grade what a bundle holds, read back without trusting it."""
    recorder = pytestconfig.stash.get(RECORDER, None)
    own = own_classes(week, aligned.answers_text())
    code = code_digest(notebook_code(submission))
    handed_in, why = _handed_in_bundle(pytestconfig.getoption("--ag-bundle"), week, own, code)
    if handed_in is not None:
        bundle, data, exported = handed_in, None, 0.0
        report = _execution_record(bundle.execution, submission, aligned, week)
    else:
        bundle, data, exported = _executed_bundle(aligned, week, own, code)
        report = ExecutionReport.from_json(bundle.execution)
    warm_kernels.warm_rest()
    if recorder:
        recorder.mode = "bundle" if handed_in is not None else "execution"
        recorder.bundle_note = why
        recorder.timing.update(notebook=round(report.seconds, 1), export=round(exported, 1))
        recorder.execution = report
        recorder.not_run = aligned.not_run
        recorder.missing_answers = aligned.missing
        recorder.provenance = provenance.flags(aligned.answers_text())
        # For TAs (the audit re-executes it) and feedback: the bundle graded, and the
        # notebook as it ran (the student's own outputs when graded from their bundle).
        recorder.bundle = data
        recorder.ran = (submission if handed_in is not None else aligned.notebook,
                        bundle.export.images)
    return StudentRun(report, bundle.export)


def _handed_in_bundle(path: str | None, week: Week, own: dict, code: str):
    """(the bundle, None) if the one at ``path`` can be graded, else (None, why not)."""
    if path is None:
        return None, None
    if path == NO_BUNDLE:
        return None, "no bundle was handed in with the notebook"
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_BUNDLE_BYTES + 1)
        return read_bundle(data, week, own_classes=own, code=code), None
    except OSError as error:
        return None, f"the bundle could not be read ({error.strerror or error})"
    except BundleRefused as error:
        return None, str(error)


def _executed_bundle(aligned, week: Week, own: dict, code: str):
    """Run the notebook in its sandbox, take its data, stop its kernel, and write what
    it handed over as a bundle: (the bundle read back, its bytes, seconds exporting)."""
    from autograder.data import kernel_env, readable_paths

    session = KernelSession(aligned.notebook, detect(), week.limits,
                            question_of_cell=aligned.question_of_cell,
                            readable=readable_paths(week.data), env=kernel_env(week.data))
    try:
        report = session.execute()
        started = time.monotonic()
        handed_over = export(session, week, own)
        exported = time.monotonic() - started
    finally:
        session.close()
    data = write_bundle(week, handed_over, code=code, execution=report.to_json())
    return read_bundle(data, week, own_classes=own, uploaded=False), data, exported


def _execution_record(record: dict, submission, aligned, week: Week) -> ExecutionReport:
    """A handed-in bundle's record of the run: the grader's, when a grading wrote it, else
    what the notebook's saved outputs show (a student's kernel cannot record its own
    earlier cells). Either is the student's claim, and only messages depend on it."""
    if "cells" in record:
        try:
            return ExecutionReport.from_json(record)
        except ValueError:
            pass
    owner = {source: q for q, sources in aligned.answers.items() for source in sources}
    questions = {**week.question_of_cell(submission),
                 **{i: owner[c.source] for i, c in enumerate(submission.cells)
                    if c.cell_type == "code" and c.source in owner}}
    return ExecutionReport.from_outputs(submission, questions)


@pytest.fixture(scope="session")
def clean_rooms(student_run, aligned, release, week, warm_kernels, pytestconfig):
    rooms = CleanRooms(week, student_run.export.archives,
                       {q: aligned.answer_source(q) for q in week.questions}, release,
                       kernels=warm_kernels)
    try:
        yield rooms
    finally:
        rooms.close()
        recorder = pytestconfig.stash.get(RECORDER, None)
        if recorder:
            recorder.timing["clean_room"] = round(rooms.seconds, 1)


@pytest.fixture(scope="session")
def execution(student_run):
    return student_run.report


@pytest.fixture(scope="session")
def oracle(student_run, clean_rooms) -> Oracle:
    return Oracle(student_run.export, clean_rooms)


@pytest.fixture(scope="session")
def answer_source(aligned, week, submission):
    """``answer_source("q1")``: the code that ran for q1 (text only, never executed here)."""
    def source(question: str) -> str:
        if question not in aligned.answers:
            raise SubmissionError(week.missing_answers(submission).get(
                question, f"the notebook has no answer for {question}"))
        return aligned.answer_source(question)
    return source


@pytest.fixture
def measure(request):
    """``measure("test accuracy", 0.713, threshold=0.6, text="71.3 % (needs 60 %)")``.

    Reports a figure the check measured: it is shown with the check's result,
    passed or failed, and kept in results.json (``extra_data.measured``). It travels
    as one of the test's ``user_properties``, which the recorder reads in its report.
    """
    def record(label: str, value: float, *, threshold: float | None = None,
               text: str | None = None) -> None:
        request.node.user_properties.append((MEASURED, {
            "label": label, "value": float(value), "threshold": threshold,
            "text": text or f"{label}: {value:g}"}))
    return record


# -- recording results --------------------------------------------------------
class GradingRecorder:
    def __init__(self, config):
        self.config = config
        self.week = Week.load(Path(config.getoption("--ag-week")))
        self.results_path = Path(config.getoption("--ag-results"))
        self.checks: dict[str, CheckResult] = {}
        self.execution = None
        self.not_run: list[str] = []  # student code left out by the alignment
        self.missing_answers: dict[str, str] = {}  # question -> its deleted answer cells
        self.timing: dict[str, float] = {}  # seconds: notebook, export, clean_room
        self.provenance: list[str] = []  # answers that load weights, for the TA
        self.mode = ""  # "bundle": graded from the bundle handed in; "execution"
        self.bundle_note: str | None = None  # why a handed-in bundle was not used
        self.bundle: bytes | None = None  # the bundle an execution made, kept for the TA
        self.ran = None  # (the notebook as it ran, its figures' pictures), for feedback
        self.started = time.monotonic()

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, session, config, items):
        default, *apart = config.getoption("--ag-visibility").split(",")
        visibility = dict(part.split("=", 1) for part in apart)
        for item in items:
            points = item.get_closest_marker("points")
            question = item.get_closest_marker("question")
            if points is None or question is None or question.args[0] not in self.week.questions:
                raise pytest.UsageError(
                    f"{item.nodeid}: every graded test needs @pytest.mark.points(n) and "
                    f"@pytest.mark.question(id) with an id from week.toml")
            qid = question.args[0]
            self.checks[item.nodeid] = CheckResult(
                question=qid, check=_title(item, qid), max_score=float(points.args[0]),
                question_title=self.week.questions[qid].title,
                visibility=visibility.get(qid, default))
        self.write(final=False)

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item, call):
        outcome = yield
        report = outcome.get_result()
        check = self.checks.get(item.nodeid)
        if check is None:
            return
        if report.when == "call":
            for name, figure in item.user_properties:
                if name == MEASURED:
                    check.measure(**figure)
        if report.when == "call" and report.passed:
            check.passed()
        elif report.failed or (report.when == "setup" and report.skipped):
            check.failed(self.message(call, check.question))
        if report.when == "teardown":
            self.write(final=False)

    def message(self, call, question: str) -> str:
        error = call.excinfo.value if call.excinfo else None
        if isinstance(error, AssertionError):  # includes OracleError and SubmissionError
            text = str(error).strip() or "this check failed"
        elif call.excinfo and call.excinfo.typename == "Skipped":
            text = str(error)
        else:
            # A bug in a test, not in the submission: say so without showing the
            # test's code (the traceback goes to the grader's log only).
            text = (f"the grader itself failed on this check ({type(error).__name__}); "
                    "this is not your fault, please tell your instructor")
        if question in self.missing_answers and self.missing_answers[question] not in text:
            text += "\n" + self.missing_answers[question]
        if self.execution and not isinstance(error, SubmissionError):
            text += "".join(f"\n{_describe_problem(p)}" for p in self.execution.problems(question))
        return text

    def pytest_sessionfinish(self, session):
        folder = self.results_path.parent
        if self.bundle is not None:
            folder.joinpath(self.week.name + BUNDLE_SUFFIX).write_bytes(self.bundle)
        if self.ran is not None:
            nbformat.write(_with_open_figures(*self.ran), folder / "executed.ipynb")
        self.write(final=True)

    def pytest_terminal_summary(self, terminalreporter):
        """For the TA (grader.log is pytest's output): what was not run, where a model may
        not have been trained by the notebook, and why a bundle was not graded."""
        for note in self.not_run:
            terminalreporter.write_line(f"not run: {note}")
        for flag in self.provenance:
            terminalreporter.write_line(f"provenance: {flag}")
        if self.bundle_note:
            terminalreporter.write_line(f"bundle: not used, the notebook was executed "
                                        f"instead: {self.bundle_note}")

    def write(self, final: bool):
        extra = {"final": final, "isolation": detect().describe()}
        if self.execution:
            extra["execution"] = self.execution.to_json()
        if self.not_run:
            extra["not_run"] = self.not_run
        if self.timing:
            extra["timing"] = self.timing
        if self.provenance:
            extra["provenance"] = self.provenance
        if self.mode:
            extra["mode"] = self.mode
        if self.bundle_note:
            extra["bundle_not_used"] = self.bundle_note
        write_results(self.results_path, GradingResult.of(
            self.week, list(self.checks.values()), seconds=time.monotonic() - self.started,
            extra=extra))


def _with_open_figures(nb, images: list[bytes]):
    """The notebook plus a last cell showing the figures left open at the end.

    The sandbox draws with matplotlib's Agg backend, so ``plt.show()`` displays
    nothing and keeps figures open (the checks read their data); the feedback
    page shows the student these pictures instead.
    """
    if not images:
        return nb
    nb = copy.deepcopy(nb)
    cell = nbformat.v4.new_code_cell("# [autograder] the figures open at the end of the run")
    cell.outputs = [nbformat.v4.new_output("display_data", data={
        "image/png": base64.b64encode(image).decode("ascii"), "text/plain": "<Figure>"})
        for image in images]
    nb.cells.append(cell)
    return nb


def _title(item, question: str) -> str:
    """The docstring's first line; parameters fill its {fields}, e.g. "reaches {tier:.0%}"."""
    doc = (item.function.__doc__ or item.name).strip().splitlines()[0]
    callspec = getattr(item, "callspec", None)
    if callspec is None:
        return doc
    try:
        titled = doc.format(**callspec.params)
    except (KeyError, IndexError, ValueError):
        titled = doc
    if titled == doc and callspec.id != question:  # keep parametrized names distinct
        titled += f" [{callspec.id}]"
    return titled


def _describe_problem(problem) -> str:
    where = f"cell {problem.index + 1}"
    if problem.status == "error" and "NotImplementedError" in problem.message:
        return f"Your notebook: {where} is not answered yet (it still raises NotImplementedError)."
    return f"Your notebook: {where} {problem.message}."
