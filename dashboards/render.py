"""Pages as static HTML: panels (a Plotly figure, a table, or an "empty" note) in one file.

Every page of a report references the one ``plotly.min.js`` written beside it (Plotly's own
``include_plotlyjs="directory"`` convention), so the folder works offline and plotly.js is
stored once, not once per page; ``embed=True`` puts plotly.js into each page instead, for a
page that must travel alone.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from pathlib import Path

import plotly.graph_objects as go
import polars as pl
from plotly.offline import get_plotlyjs

PLOTLY_JS = "plotly.min.js"
PLOT_CONFIG = {"displaylogo": False, "responsive": True}
TIER_COLOURS = {"verified": "#2e7d32", "standard": "#1f77b4", "probation": "#ff9800", "rejected": "#d62728"}

CSS = """
body { font-family: system-ui, sans-serif; margin: 0 2rem 2rem; color: #222; }
nav { padding: .6rem 0; border-bottom: 1px solid #ddd; margin-bottom: 1rem; }
nav a { margin-right: 1rem; text-decoration: none; color: #1f4e8c; }
nav a.here { font-weight: bold; color: #222; }
section.panel { margin: 1.5rem 0; }
section.panel h2 { font-size: 1.1rem; margin-bottom: .2rem; }
p.answers { color: #555; margin-top: 0; font-size: .9rem; }
p.empty { padding: 1.5rem; background: #f5f5f5; border: 1px dashed #bbb; color: #555; }
table { border-collapse: collapse; font-size: .85rem; }
td, th { border-bottom: 1px solid #e5e5e5; padding: .25rem .6rem; text-align: left; vertical-align: top; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.kpis { display: flex; gap: 1.5rem; flex-wrap: wrap; }
.kpi { padding: .6rem 1rem; background: #f7f9fc; border-radius: 6px; }
.kpi b { display: block; font-size: 1.4rem; }
"""


@dataclass
class Panel:
    """One question on a page: its answer is a figure, a table or a note that the data is empty."""

    slug: str
    title: str
    answers: str
    figure: go.Figure | None = None
    table: pl.DataFrame | None = None
    html_body: str | None = None
    empty: str | None = None

    def show(self, figure: go.Figure) -> Panel:
        self.figure = figure
        return self

    def body(self) -> str:
        if self.empty is not None:
            return f'<p class="empty" data-empty="{self.slug}">No data: {html.escape(self.empty)}</p>'
        if self.figure is not None:
            self.figure.update_layout(margin={"l": 60, "r": 20, "t": 30, "b": 50}, template="plotly_white")
            return (
                '<div class="figure">'
                + self.figure.to_html(full_html=False, include_plotlyjs=False, config=PLOT_CONFIG, div_id=f"fig-{self.slug}")
                + "</div>"
            )
        if self.table is not None:
            return table_html(self.table)
        return self.html_body or ""


@dataclass
class Page:
    slug: str
    title: str
    intro: str
    panels: list[Panel] = field(default_factory=list)


def empty_or(panel: Panel, frame: pl.DataFrame, message: str) -> bool:
    """Mark the panel empty (with the message) when the frame has no rows; True if it was."""
    if frame.height == 0:
        panel.empty = message
        return True
    return False


def table_html(frame: pl.DataFrame, max_rows: int = 200) -> str:
    """A plain HTML table, values escaped; numbers right-aligned with thousands separators."""
    numeric = {c for c, t in frame.schema.items() if t.is_numeric()}
    head = "".join(f'<th class="{"num" if c in numeric else ""}">{html.escape(c)}</th>' for c in frame.columns)
    rows = []
    for row in frame.head(max_rows).iter_rows():
        cells = []
        for c, v in zip(frame.columns, row, strict=True):
            if c in numeric and v is not None:
                text = f"{v:,}" if isinstance(v, int) else f"{v:,.4g}"
                cells.append(f'<td class="num">{text}</td>')
            else:
                cells.append(f"<td>{html.escape('' if v is None else str(v))}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    more = f'<p class="answers">{frame.height - max_rows:,} more rows not shown.</p>' if frame.height > max_rows else ""
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>{more}"


def write_plotly_js(out_dir: Path) -> Path:
    path = out_dir / PLOTLY_JS
    path.write_text(get_plotlyjs(), encoding="utf-8")
    return path


def write_page(page: Page, path: Path, nav: list[tuple[str, str]], *, root: str = "", embed: bool = False) -> Path:
    """Write the page to ``path``; ``nav`` is (href relative to the report root, title);
    ``root`` is the prefix from the page's folder back to the report root."""
    here = f"{page.slug}.html"
    links = " ".join(f'<a href="{root}{href}" class="{"here" if href == here else ""}">{html.escape(t)}</a>' for href, t in nav)
    script = f"<script>{get_plotlyjs()}</script>" if embed else f'<script src="{root}{PLOTLY_JS}"></script>'
    sections = "\n".join(
        f'<section class="panel" id="{p.slug}"><h2>{html.escape(p.title)}</h2>'
        f'<p class="answers">{html.escape(p.answers)}</p>{p.body()}</section>'
        for p in page.panels
    )
    doc = (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>fleetproof: {html.escape(page.title)}</title>'
        f"<style>{CSS}</style>{script}</head><body><nav>{links}</nav><h1>{html.escape(page.title)}</h1>"
        f"<p>{html.escape(page.intro)}</p>\n{sections}\n</body></html>\n"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(doc, encoding="utf-8")
    return path
