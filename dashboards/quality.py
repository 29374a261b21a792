"""Data quality: which hours came in, which were rejected and why, and which rows or files were
quarantined and why."""

from __future__ import annotations

import plotly.graph_objects as go
import polars as pl

from dashboards.context import ReportContext
from dashboards.render import Page, Panel, empty_or


def hours_in(ctx: ReportContext) -> Panel:
    panel = Panel("hours", "Rows per delivered hour",
                  "Rows landed and quarantined for every hour ingested; a rejected hour (manifest or whole-hour "
                  "failure) lands nothing and is marked.")  # fmt: skip
    df = ctx.frame("SELECT hour, status, rows_landed, rows_quarantined, reason FROM ingest_log ORDER BY hour")
    if empty_or(panel, df, "no hour has been ingested (run `fleetproof ingest` or `fleetproof run`)"):
        return panel
    hours = df["hour"].to_list()
    fig = go.Figure([
        go.Bar(x=hours, y=df["rows_landed"].to_list(), name="landed", marker_color="#1f77b4"),
        go.Bar(x=hours, y=df["rows_quarantined"].to_list(), name="quarantined", marker_color="#ff7f0e"),
    ])  # fmt: skip
    rejected = df.filter(pl.col("status") == "rejected")
    if rejected.height:
        fig.add_trace(go.Scatter(x=rejected["hour"].to_list(), y=[0] * rejected.height, mode="markers", name="rejected hour",
                                 marker={"symbol": "x", "size": 12, "color": "#d62728"}, text=rejected["reason"].to_list()))  # fmt: skip
    fig.update_layout(height=340, barmode="stack", yaxis_title="rows", xaxis_title="hour")
    return panel.show(fig)


def rejected_hours(ctx: ReportContext) -> Panel:
    panel = Panel(
        "rejected", "Rejected hours and why", "Every delivered hour the pipeline refused, with the reason and the attempts."
    )
    df = ctx.frame(
        """SELECT a.hour, count(*) AS attempts, arg_max(a.reason, a.attempted_at) AS last_reason, max(a.attempted_at) AS last_attempt,
                  any_value(l.status) AS status_now
           FROM ingest_attempts a LEFT JOIN ingest_log l USING (hour)
           WHERE a.status = 'rejected' GROUP BY a.hour ORDER BY a.hour"""
    )
    if not empty_or(panel, df, "no hour was rejected"):
        panel.table = df
    return panel


def quarantine_reasons(ctx: ReportContext) -> Panel:
    panel = Panel("quarantine", "Quarantined rows and files by feed and reason",
                  "The 25 most frequent reasons rows (or whole files) were set aside; raw values are kept in "
                  "the `quarantine` table.")  # fmt: skip
    df = ctx.frame(
        """SELECT coalesce(feed, '(file)') || ': ' || reason AS why, count(*) AS rows,
                  count(*) FILTER (row_number IS NULL) AS whole_files
           FROM quarantine GROUP BY ALL ORDER BY rows DESC LIMIT 25"""
    )
    if empty_or(panel, df, "nothing was quarantined"):
        return panel
    df = df.sort("rows")
    fig = go.Figure(go.Bar(y=[w[:90] for w in df["why"]], x=df["rows"].to_list(), orientation="h", marker_color="#ff7f0e",
                           hovertext=[f"{w}<br>{f:,} whole files" for w, f in df.select("why", "whole_files").rows()]))  # fmt: skip
    fig.update_layout(height=max(300, 24 * df.height + 100), xaxis_title="rows", yaxis={"automargin": True})
    return panel.show(fig)


def build(ctx: ReportContext) -> Page:
    page = Page("quality", "Data quality", "What came in, what was refused, and what was set aside, with reasons.")
    page.panels = [hours_in(ctx), rejected_hours(ctx), quarantine_reasons(ctx)]
    return page
