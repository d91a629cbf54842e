"""A student's check cell in a real JupyterLab, driven by headless Chromium.

    .venv/bin/python scripts/jupyterlab_check.py docs/check-in-jupyterlab.png

makes the README's picture once: week 1's release notebook, answered with the reference
solution, opened in JupyterLab; the cells up to q1's check cell run with Shift+Enter as a
student runs them, and the page is photographed with the check's table in view.
``tests/test_jupyterlab.py`` drives the same page and checks that the table renders; it
does not rewrite the picture.

Needs JupyterLab and Playwright (both in the course's environment) and Debian's
``chromium`` (Playwright's own browser download is not used).
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import nbformat

from autograder.weeks import grade_id

ROOT = Path(__file__).resolve().parent.parent
CHECK_CELL = "ag_check_q1"  # the release's check cell after exercise 1
TIMEOUT_MS = 480_000  # training q1's network 200 epochs on a busy machine


def answered_release(folder: Path) -> Path:
    """release/week1 copied into ``folder``, its notebook answered with the reference."""
    shutil.copytree(ROOT / "release" / "week1", folder)
    source = nbformat.read(ROOT / "source" / "week1" / "week1.ipynb", as_version=4)
    answers = {grade_id(c): c.source for c in source.cells
               if c.get("metadata", {}).get("nbgrader", {}).get("solution")}
    notebook = folder / "week1.ipynb"
    nb = nbformat.read(notebook, as_version=4)
    for cell in nb.cells:
        if grade_id(cell) in answers:  # as a student writes it: no solution markers
            cell.source = "\n".join(line for line in answers[grade_id(cell)].splitlines()
                                    if "### BEGIN SOLUTION" not in line
                                    and "### END SOLUTION" not in line)
    nbformat.write(nb, notebook)
    return notebook


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def run_check_cell(work: Path, screenshot: Path | None = None) -> str:
    """Open the answered notebook in JupyterLab, run it down to q1's check cell, and
    return the text of the table that cell shows (saving a picture if asked)."""
    from playwright.sync_api import sync_playwright

    notebook = answered_release(work / "week1")
    cells = nbformat.read(notebook, as_version=4).cells
    steps = next(i for i, c in enumerate(cells) if grade_id(c) == CHECK_CELL) + 1
    port, token = _free_port(), secrets.token_hex(16)
    # A student's first start, without the news announcement popping up over the cells.
    labconfig = work / "config" / "labconfig"
    labconfig.mkdir(parents=True)
    (labconfig / "page_config.json").write_text(
        '{"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": true}}')
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--port={port}",
         "--ip=127.0.0.1", f"--IdentityProvider.token={token}",
         f"--ServerApp.root_dir={notebook.parent}", "--allow-root"],
        stdout=subprocess.DEVNULL, stderr=(work / "jupyterlab.log").open("w"),
        env={**os.environ, "JUPYTER_CONFIG_DIR": str(work / "config"),
             "JUPYTER_DATA_DIR": str(work / "data"), "JUPYTER_RUNTIME_DIR": str(work / "run")},
        start_new_session=True)
    try:
        _wait_for_server(port, token, server)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=_chromium(), headless=True)
            try:
                page = browser.new_page(viewport={"width": 1200, "height": 900})
                page.goto(f"http://127.0.0.1:{port}/lab/tree/week1.ipynb?token={token}")
                page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=TIMEOUT_MS)
                page.get_by_text("Python 3 (ipykernel) | Idle").wait_for(timeout=TIMEOUT_MS)
                page.locator(".jp-Notebook .jp-Cell").first.click()
                for _ in range(steps):
                    page.keyboard.press("Shift+Enter")
                table = page.locator(".jp-Cell .jp-OutputArea-output table").first
                table.wait_for(timeout=TIMEOUT_MS)
                table.scroll_into_view_if_needed()
                if screenshot is not None:
                    page.screenshot(path=str(screenshot))
                return table.inner_text()
            finally:
                browser.close()
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=30)


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        raise SystemExit("needs Debian's chromium: apt-get install chromium")
    return path


def _wait_for_server(port: int, token: str, server: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"JupyterLab exited with code {server.returncode}")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status?token={token}",
                                   timeout=2)
            return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError("JupyterLab did not start within 60 s")


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="ag-jupyterlab-") as work:
        shown = run_check_cell(Path(work), Path(argv[0]).resolve())
    print(shown)
    print(f"wrote {argv[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
