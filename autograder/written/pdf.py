"""One PDF per submission, a page per written question, through headless Chromium.

Gradescope maps pages to questions once per assignment, so every PDF must have exactly
one page per question, in the same order. Each question is a section that ends its
page; an answer too long for one page is printed smaller, step by step, until the
PDF has the right page count (or the export says which submission did not fit).
Chromium prints the same kind of page TAs read (``pages.submission_pages``): no script,
and a Content Security Policy that forbids any. (Switching scripts off in Chromium
itself, ``--blink-settings=scriptEnabled=false``, makes its headless printing write
no file at all.)
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

# Font scales tried in turn until every question fits on its page.
SCALES = (1.0, 0.8, 0.65, 0.5, 0.4)
TIMEOUT = 120  # s for one PDF


class ChromiumMissing(RuntimeError):
    pass


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        raise ChromiumMissing(
            "--pdf needs a headless Chromium, and none is installed (on Debian or Ubuntu: "
            "apt-get install chromium); the HTML pages and written.csv need nothing")
    return path


def page_count(pdf: bytes) -> int:
    """Pages of a PDF as Chromium writes it (uncompressed page objects)."""
    return len(re.findall(rb"/Type\s*/Page(?!s)", pdf))


def print_pdf(page_html: str, target: Path, pages: int) -> float:
    """Print ``page_html`` to ``target`` with ``pages`` pages; the font scale used.
    Raises RuntimeError when Chromium fails or no scale fits."""
    browser = chromium()
    with tempfile.TemporaryDirectory(prefix="ag-pdf-") as scratch:
        scratch = Path(scratch)
        for scale in SCALES:
            source = scratch / "page.html"
            source.write_text(page_html.replace(
                "</style>", f"html {{ font-size: {scale * 100:.0f}%; }}"
                            f"body {{ font-size: {scale:.2f}em; }}</style>", 1))
            output = scratch / "page.pdf"
            output.unlink(missing_ok=True)
            done = subprocess.run(
                [browser, "--headless", "--no-sandbox", "--disable-gpu",
                 "--no-pdf-header-footer",
                 f"--user-data-dir={scratch / 'profile'}", f"--print-to-pdf={output}",
                 source.as_uri()],
                capture_output=True, text=True, timeout=TIMEOUT)
            if done.returncode != 0 or not output.exists():
                raise RuntimeError(f"Chromium could not print {target.name}: "
                                   f"{done.stderr.strip()[-500:]}")
            data = output.read_bytes()
            if page_count(data) == pages:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
                return scale
    raise RuntimeError(f"{target.name}: an answer does not fit on one page even at "
                       f"{SCALES[-1]:.0%} of the font size; grade it from the HTML pages")
