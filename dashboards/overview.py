"""Fleet overview: how many GPUs are in each tier and why, which fraud grows, and whether the
model a device claims is the class it measures as."""

from __future__ import annotations

import plotly.graph_objects as go
import polars as pl

from dashboards.context import ReportContext
from dashboards.render import TIER_COLOURS, Page, Panel, empty_or, table_html
from pipelines.db import scalar

NOTHING = "no epoch has been processed yet (run `fleetproof run`)"


def tiers_over_time(ctx: ReportContext) -> Panel:
    panel = Panel("tiers", "Devices per tier, hour by hour", "How many GPUs are verified, standard, on probation or rejected.")
    df = ctx.frame("SELECT epoch, tier, count(*) AS devices FROM device_tiers WHERE epoch >= $since GROUP BY ALL ORDER BY epoch")
    if ctx.latest is None or empty_or(panel, df, "no device has a tier in the window"):
        panel.empty = panel.empty or NOTHING
        return panel
    fig = go.Figure()
    for tier in [t for t in TIER_COLOURS if t in set(df["tier"])] + sorted(set(df["tier"]) - set(TIER_COLOURS)):
        part = df.filter(pl.col("tier") == tier)
        fig.add_trace(go.Scatter(x=part["epoch"].to_list(), y=part["devices"].to_list(), name=tier, stackgroup="tiers",
                                 mode="lines", line={"color": TIER_COLOURS.get(tier)}))  # fmt: skip
    fig.update_layout(height=340, yaxis_title="devices", xaxis_title="epoch (UTC hour)")
    return panel.show(fig)


def fraud_over_time(ctx: ReportContext) -> Panel:
    panel = Panel("fraud-types", "Flagged devices per fraud type, hour by hour",
                  "Which fraud is growing: devices on probation or rejected, counted once per fraud type they carry.")  # fmt: skip
    df = ctx.frame(
        """SELECT epoch, fraud_type, count(*) AS devices
           FROM (SELECT epoch, unnest(fraud_types) AS fraud_type FROM device_tiers WHERE epoch >= $since)
           GROUP BY ALL ORDER BY epoch"""
    )
    if empty_or(panel, df, "no device carries a fraud type in the window"):
        return panel
    fig = go.Figure()
    for ft in df.group_by("fraud_type").agg(pl.col("devices").sum()).sort("devices", descending=True)["fraud_type"]:
        part = df.filter(pl.col("fraud_type") == ft)
        fig.add_trace(go.Scatter(x=part["epoch"].to_list(), y=part["devices"].to_list(), name=ft, mode="lines+markers"))
    fig.update_layout(height=340, yaxis_title="devices", xaxis_title="epoch (UTC hour)")
    return panel.show(fig)


def claimed_vs_measured(ctx: ReportContext) -> Panel:
    panel = Panel("models", "Model claimed vs class measured (latest epoch)",
                  "Devices by the GPU model they report and the class their proof-of-work throughput earns; "
                  "off the diagonal: a claim the physics does not back.")  # fmt: skip
    df = ctx.frame(
        """SELECT coalesce(f.catalogue_model, f.gpu_model, 'unknown') AS claimed,
                  coalesce(e.measured_class, 'not measured') AS measured, count(*) AS devices
           FROM device_features f LEFT JOIN reward_eligibility e USING (epoch, device_id)
           WHERE f.epoch = $latest GROUP BY ALL"""
    )
    if empty_or(panel, df, "no device features in the latest epoch"):
        return panel
    claimed = sorted(df["claimed"].unique().to_list())
    measured = sorted(set(df["measured"].to_list()), key=lambda m: (m == "not measured", m))
    grid = {(r["claimed"], r["measured"]): r["devices"] for r in df.iter_rows(named=True)}
    z = [[grid.get((c, m)) for m in measured] for c in claimed]
    fig = go.Figure(go.Heatmap(x=measured, y=claimed, z=z, colorscale="Blues", hoverongaps=False,
                               hovertemplate="claimed %{y}<br>measured %{x}<br>%{z} devices<extra></extra>"))  # fmt: skip
    fig.update_layout(height=max(360, 22 * len(claimed) + 120), xaxis_title="measured class", yaxis_title="claimed model")
    return panel.show(fig)


def since_yesterday(ctx: ReportContext) -> Panel:
    panel = Panel("changes", "What changed since yesterday",
                  "Devices per tier and per fraud type in the latest epoch against the last processed epoch at "
                  "least 24 hours earlier (the first processed epoch when the history is shorter).")  # fmt: skip
    if ctx.latest is None:
        panel.empty = NOTHING
        return panel
    before = scalar(ctx.con, """SELECT coalesce(max(epoch) FILTER (epoch <= hours_back($1, 24)), min(epoch))
                                FROM processed_epochs WHERE epoch <= $1""", [ctx.latest])  # fmt: skip
    if before == ctx.latest:
        panel.empty = f"{ctx.latest} is the only processed epoch; there is nothing earlier to compare with"
        return panel
    df = ctx.frame(
        """WITH t AS (SELECT * FROM device_tiers WHERE epoch IN ($latest, $before)),
           rows AS (
               SELECT 'tier' AS what, tier AS value, epoch FROM t
               UNION ALL SELECT 'fraud type', unnest(fraud_types), epoch FROM t
           )
           SELECT what, value, count(*) FILTER (epoch = $before) AS before, count(*) FILTER (epoch = $latest) AS latest,
                  count(*) FILTER (epoch = $latest) - count(*) FILTER (epoch = $before) AS change
           FROM rows GROUP BY ALL ORDER BY what DESC, latest DESC""",
        {"before": before},
    ).rename({"before": str(before), "latest": ctx.latest})
    if empty_or(panel, df, "no tiers in the latest epoch"):
        return panel
    panel.title = f"What changed since {before}"
    panel.html_body = table_html(df)
    return panel


def headline(ctx: ReportContext) -> str:
    df = ctx.frame("SELECT tier, count(*) AS devices FROM device_tiers WHERE epoch = $latest GROUP BY ALL")
    counts = dict(zip(df["tier"].to_list(), df["devices"].to_list(), strict=True))
    total = sum(counts.values())
    kpis = [("devices", total)] + [(t, counts.get(t, 0)) for t in TIER_COLOURS]
    return '<div class="kpis">' + "".join(f'<div class="kpi"><b>{v:,}</b>{k}</div>' for k, v in kpis) + "</div>"


def build(ctx: ReportContext) -> Page:
    latest = (
        f"latest epoch {ctx.latest}; time series go back up to {ctx.window_hours} hours"
        if ctx.latest
        else "nothing processed yet"
    )
    page = Page("overview", "Fleet overview", f"Tiers, fraud and claimed models across the network ({latest}).")
    summary = Panel("headline", f"Devices in the latest epoch ({ctx.latest or '-'})", "Every device with a tier, by tier.")
    if ctx.latest is None:
        summary.empty = NOTHING
    else:
        summary.html_body = headline(ctx)
    page.panels = [summary, tiers_over_time(ctx), fraud_over_time(ctx), claimed_vs_measured(ctx), since_yesterday(ctx)]
    return page
