"""Clean-room kernels started ahead of need (``cleanroom.WarmKernels``): a room set up
in a warm kernel runs in that kernel, refuses what no room may import, and a cell that
kills it gets a fresh kernel that is set up the same way. The shared room's kernel goes
on as the heir's room, which finds nothing of the shared room there and computes what a
fresh kernel would."""

from __future__ import annotations

import nbformat
import numpy as np
import pytest
from conftest import ROOT

from autograder.grading.alignment import align
from autograder.grading.bundle import read_bundle
from autograder.grading.cleanroom import SHARED, CleanRooms, WarmKernels, own_classes
from autograder.weeks import Course

pytestmark = pytest.mark.grading  # every test here starts room kernels


@pytest.fixture
def warm_kernels():
    kernels = WarmKernels(Course(ROOT).built_week("week1"))
    yield kernels
    kernels.close()


def notebook(*sources: str):
    return nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])


def test_a_room_runs_in_the_kernel_started_for_it(warm_kernels):
    session = warm_kernels.take()
    try:
        started = session.runner.km
        assert started is not None and started.has_kernel  # before any notebook was known
        report = session.execute(notebook("import keras\nx = keras.ops.ones(2)", "import pandas"))
        assert session.runner.km is started and report.restarts == 0
        assert [c.status for c in report.cells] == ["ok", "error"]
        assert "not available in the grader's clean room" in report.cells[1].message
    finally:
        session.close()


def test_a_killed_warm_kernel_is_replaced_by_one_set_up_alike(warm_kernels):
    session = warm_kernels.take()
    try:
        report = session.execute(notebook("import os\nos._exit(1)", "import sklearn"))
        assert report.restarts == 1 and not report.fatal
        assert [c.status for c in report.cells] == ["skipped", "error"]
        assert "not available in the grader's clean room" in report.cells[1].message
    finally:
        session.close()


PEEK = """

def peek(x):
    return np.array([float(name in globals()) for name in
                     ("sequential_model", "functional_model", "subclass_model")])
"""


def test_the_heir_goes_on_in_the_shared_rooms_kernel_as_in_a_fresh_one(graded_class):
    """Week 1's q3 room takes over the shared room's kernel: the shared models and inputs
    are gone from it (an IrisNet whose call borrowed the q1 model would fail, as in a room
    of its own), q3's model predicts exactly what it predicts in a fresh kernel, and a
    shared request after the hand-over gets a room of its own."""
    week = Course(ROOT).built_week("week1")
    out, _ = graded_class("week1")
    reference = nbformat.read(ROOT / "source" / "week1" / "week1.ipynb", as_version=4)
    aligned = align(week, nbformat.read(week.released_notebook, as_version=4), reference)
    answers = {q: aligned.answer_source(q) for q in week.questions}
    answers["q3"] += PEEK
    bundle = read_bundle((out / "week1" / "week1.bundle.zip").read_bytes(), week,
                         own_classes=own_classes(week, answers), uploaded=False)
    release = nbformat.read(week.released_notebook, as_version=4)
    flowers = np.random.default_rng(0).normal(size=(16, 4)).astype(np.float32)

    kernels = WarmKernels(week)
    rooms = CleanRooms(week, bundle.export.archives, answers, release, kernels=kernels)
    fresh = CleanRooms(week, bundle.export.archives, answers, release)
    try:
        shared = rooms.room(SHARED)
        before = shared.client.predict("sequential_model", flowers)
        heir = rooms.room("q3")
        assert heir.session is shared.session and not heir.problem
        assert SHARED not in rooms.rooms
        assert [p.name for p in heir.session.sandbox.inbox.iterdir()] == [
            "subclass_model.keras"]
        assert heir.client.call("peek", flowers)[0].tolist() == [0.0, 0.0, 1.0]
        assert np.array_equal(heir.client.predict("subclass_model", flowers),
                              fresh.room("q3").client.predict("subclass_model", flowers))
        again = rooms.room(SHARED)
        assert again.session is not heir.session
        assert np.array_equal(again.client.predict("sequential_model", flowers), before)
    finally:
        rooms.close()
        fresh.close()
        kernels.close()
