"""Clean-room kernels started ahead of need (``cleanroom.WarmKernels``): a room set up
in a warm kernel runs in that kernel, refuses what no room may import, and a cell that
kills it gets a fresh kernel that is set up the same way."""

from __future__ import annotations

import nbformat
import pytest
from conftest import ROOT

from autograder.grading.cleanroom import WarmKernels
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
