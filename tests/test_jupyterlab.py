"""The README's picture of a check cell is a real page: the suite opens the answered
week-1 notebook in JupyterLab with headless Chromium (scripts/jupyterlab_check.py), runs it
down to q1's check cell as a student does, and reads the table the cell shows. The picture
itself is made once by that script; the suite does not rewrite it."""

from __future__ import annotations

import sys

import pytest
from conftest import ROOT

sys.path.insert(0, str(ROOT / "scripts"))
from jupyterlab_check import run_check_cell  # noqa: E402


@pytest.mark.grading  # a real kernel trains q1's network
def test_a_check_cell_renders_its_table_in_jupyterlab(tmp_path):
    shown = run_check_cell(tmp_path)
    lines = [line.split("\t") for line in shown.strip().splitlines()]
    assert lines[0] == ["question", "check", "points", "passed, or what to fix"]
    assert lines[1:] == [["q1", "The model takes 4 features and gives 3 outputs (one per species)",
                          "1/1", "passed"]]


def test_the_readme_shows_the_picture_the_script_makes():
    picture = ROOT / "docs" / "check-in-jupyterlab.png"
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "docs/check-in-jupyterlab.png" in (ROOT / "README.md").read_text()
    assert "scripts/jupyterlab_check.py" in (ROOT / "README.md").read_text()
