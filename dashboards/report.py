"""The whole report: every page, device pages for the devices an analyst looks at first, and
an index, written into one folder that opens offline (``fleetproof dashboard``)."""

from __future__ import annotations

import html
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import duckdb

from dashboards import device, gpu_fraud, overview, quality, rewards, sybil
from dashboards.context import ReportContext, report_context
from dashboards.render import Page, Panel, write_page, write_plotly_js

PAGES: list[tuple[str, str, ModuleType]] = [
    ("overview", "Overview", overview),
    ("gpu_fraud", "GPU fraud", gpu_fraud),
    ("sybil", "Sybil", sybil),
    ("rewards", "Rewards", rewards),
    ("quality", "Data quality", quality),
]
"""(slug, navigation title, module with ``build(ctx) -> Page``); the file is ``<slug>.html``."""

DEFAULT_DEVICE_PAGES = 10


@dataclass
class Report:
    out_dir: Path
    pages: list[Path] = field(default_factory=list)
    device_pages: list[Path] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def index(self) -> Path:
        return self.out_dir / "index.html"


def device_file(device_id: str) -> str:
    """A file name for a device page that is safe on any file system."""
    return "devices/" + re.sub(r"[^A-Za-z0-9_.-]", "_", device_id) + ".html"


def build_report(con: duckdb.DuckDBPyConnection, out_dir: str | Path, *, devices: Sequence[str] = (),
                 window_hours: int = 168, as_of: str | None = None, embed: bool = False,
                 only: Sequence[str] | None = None) -> Report:  # fmt: skip
    """Write every page and device pages for ``devices`` (default: the most suspicious devices of
    the latest epoch) into ``out_dir``; ``as_of`` reports an earlier epoch as the latest;
    ``only`` names the pages to write (no device pages then)."""
    unknown = set(only or []) - {slug for slug, _, _ in PAGES}
    if unknown:
        raise ValueError(f"unknown page(s) {sorted(unknown)}; pages are {[s for s, _, _ in PAGES]}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ctx = report_context(con, window_hours, as_of)
    report = Report(out)
    if not embed:
        write_plotly_js(out)
    nav = [("index.html", "Index")] + [(f"{slug}.html", title) for slug, title, _ in PAGES]
    for slug, _, module in PAGES:
        if only and slug not in only:
            continue
        started = time.perf_counter()
        report.pages.append(write_page(module.build(ctx), out / f"{slug}.html", nav, embed=embed))
        report.seconds[slug] = time.perf_counter() - started
    missing = device.unknown(ctx, devices)
    if missing:
        raise ValueError(f"device(s) not in the database: {', '.join(missing)}")
    picked = list(devices) or device.most_suspicious(ctx, DEFAULT_DEVICE_PAGES)
    if not only:
        for device_id in picked:
            page = device.build(ctx, device_id)
            report.device_pages.append(write_page(page, out / device_file(device_id), nav, root="../", embed=embed))
    write_page(index_page(ctx, report, picked), report.index, nav, embed=embed)
    return report


def first_paragraph(doc: str | None) -> str:
    """A page module's first docstring paragraph without its leading "Title: "."""
    text = " ".join((doc or "").split("\n\n")[0].split())
    return text.split(": ", 1)[-1]


def index_page(ctx: ReportContext, report: Report, devices: Sequence[str]) -> Page:
    page = Page("index", "fleetproof dashboards",
                f"Latest epoch {ctx.latest or '-'}; time series cover the {ctx.window_hours} hours up to it.")  # fmt: skip
    pages = Panel("pages", "Pages", "One page per question analysts ask; each chart says what it answers.")
    pages.html_body = (
        "<ul>"
        + "".join(
            f'<li><a href="{slug}.html">{html.escape(title)}</a>: {html.escape(first_paragraph(module.__doc__))}</li>'
            for slug, title, module in PAGES
        )
        + "</ul>"
    )
    dev = Panel("devices", "Device pages", "Tier history, evidence and pay of single devices (the most suspicious "
                "of the latest epoch unless named with `--device`).")  # fmt: skip
    if devices:
        dev.html_body = "<ul>" + "".join(f'<li><a href="{device_file(d)}">{html.escape(d)}</a></li>' for d in devices) + "</ul>"
    else:
        dev.empty = "no device is on probation or rejected in the latest epoch"
    page.panels = [pages, dev]
    return page
