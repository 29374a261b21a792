"""Open report pages in headless Chromium and check that every figure rendered.

Used by the browser tests and the dashboard benchmark. Drives the system's Chromium (Debian's
``chromium`` package, or ``FLEETPROOF_CHROMIUM``) through Playwright, so nothing is downloaded.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

RENDERED_JS = """() => {
  const figs = [...document.querySelectorAll('section.panel .figure')];
  return figs.every(f => f.querySelector('.plot-container .main-svg'));
}"""


def chromium_path() -> str | None:
    """``FLEETPROOF_CHROMIUM``, else the first Chromium on the PATH, else None."""
    if os.environ.get("FLEETPROOF_CHROMIUM"):
        return os.environ["FLEETPROOF_CHROMIUM"]
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


@dataclass
class PageCheck:
    """What the browser saw on one page."""

    path: Path
    figures: int = 0
    """Figure containers on the page."""
    rendered: int = 0
    """Figure containers holding Plotly's ``.plot-container`` with a ``.main-svg``."""
    empty_notes: int = 0
    errors: list[str] = field(default_factory=list)
    """Console errors and uncaught exceptions."""
    seconds: float = 0.0
    """From navigation until every figure rendered."""

    @property
    def ok(self) -> bool:
        return self.figures == self.rendered and not self.errors


@contextmanager
def chromium(executable: str | None = None) -> Iterator[Any]:
    """A headless Chromium (a Playwright ``Browser``) from the system's executable."""
    from playwright.sync_api import sync_playwright

    exe = executable or chromium_path()
    if exe is None:
        raise FileNotFoundError("no Chromium found: install Debian's `chromium` or set FLEETPROOF_CHROMIUM")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=exe, headless=True, args=["--no-sandbox", "--disable-gpu"])
        try:
            yield browser
        finally:
            browser.close()


def check_page(browser: Any, path: Path, screenshot: Path | None = None, timeout_s: float = 60.0) -> PageCheck:
    """Load ``path`` (a file), wait until every figure rendered (or the timeout), count and
    collect console errors; save a full-page screenshot when asked."""
    check = PageCheck(path)
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.on("console", lambda m: check.errors.append(f"console: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: check.errors.append(f"exception: {e}"))
    started = time.perf_counter()
    page.goto(path.resolve().as_uri(), wait_until="load", timeout=timeout_s * 1000)
    try:
        page.wait_for_function(RENDERED_JS, timeout=timeout_s * 1000)
    except Exception as e:  # noqa: BLE001 - a timeout is reported as unrendered figures
        check.errors.append(f"timeout: not every figure rendered within {timeout_s:.0f} s ({type(e).__name__})")
    check.seconds = time.perf_counter() - started
    check.figures = page.locator("section.panel .figure").count()
    check.rendered = page.locator("section.panel .figure:has(.plot-container .main-svg)").count()
    check.empty_notes = page.locator("p.empty").count()
    if screenshot is not None:
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(screenshot), full_page=True)
    page.close()
    return check
