"""A device: its tier history with scores, the evidence against it, and what it was paid."""

from __future__ import annotations

from collections.abc import Sequence

import plotly.graph_objects as go
import polars as pl

from dashboards.context import ReportContext
from dashboards.render import TIER_COLOURS, Page, Panel, empty_or

TIER_LEVEL = {"verified": 0, "standard": 1, "probation": 2, "rejected": 3}


def most_suspicious(ctx: ReportContext, limit: int) -> list[str]:
    """Devices on probation or rejected in the latest epoch, highest score first."""
    df = ctx.frame(
        """SELECT device_id FROM device_tiers WHERE epoch = $latest AND tier IN ('probation', 'rejected')
           ORDER BY score DESC, device_id LIMIT $limit""",
        {"limit": limit},
    )
    return df["device_id"].to_list()


def unknown(ctx: ReportContext, device_ids: Sequence[str]) -> list[str]:
    """The ids among ``device_ids`` that no device_features row names."""
    if not device_ids:
        return []
    known = ctx.frame(
        "SELECT DISTINCT device_id FROM device_features WHERE list_contains($ids, device_id)", {"ids": list(device_ids)}
    )
    return sorted(set(device_ids) - set(known["device_id"].to_list()))


def tier_history(ctx: ReportContext, device_id: str) -> Panel:
    panel = Panel("tier-history", "Tier history", "The device's tier and score in every epoch of the window.")
    df = ctx.frame(
        """SELECT epoch, tier, score, array_to_string(fraud_types, ', ') AS fraud_types FROM device_tiers
           WHERE device_id = $device AND epoch >= $since ORDER BY epoch""",
        {"device": device_id},
    )
    if empty_or(panel, df, f"{device_id} has no tier in the window"):
        return panel
    fig = go.Figure([
        go.Scatter(x=df["epoch"].to_list(), y=[TIER_LEVEL.get(t, -1) for t in df["tier"]], mode="lines+markers", name="tier",
                   line={"shape": "hv", "color": "#555"}, marker={"color": [TIER_COLOURS.get(t, "#999") for t in df["tier"]], "size": 9},
                   text=[f"{t} {f}" for t, f in df.select("tier", "fraud_types").rows()], hoverinfo="x+text"),
        go.Bar(x=df["epoch"].to_list(), y=df["score"].to_list(), name="score", yaxis="y2", opacity=0.3, marker_color="#d62728"),
    ])  # fmt: skip
    fig.update_layout(height=320, yaxis={"tickvals": list(TIER_LEVEL.values()), "ticktext": list(TIER_LEVEL), "range": [-0.5, 3.5]},
                      yaxis2={"overlaying": "y", "side": "right", "range": [0, 1.05], "title": "score"})  # fmt: skip
    return panel.show(fig)


def evidence(ctx: ReportContext, device_id: str) -> Panel:
    panel = Panel("evidence", "Evidence", "Every detector finding about the device in the window, newest first.")
    df = ctx.frame(
        """SELECT epoch, detector, fraud_type, action, round(score, 4) AS score, reason FROM evidence
           WHERE device_id = $device AND epoch >= $since ORDER BY epoch DESC, detector""",
        {"device": device_id},
    )
    if not empty_or(panel, df, f"no detector reported {device_id} in the window"):
        panel.table = df
    return panel


def pay(ctx: ReportContext, device_id: str) -> Panel:
    panel = Panel("pay", "Pay and eligibility",
                  "Base units allocated per epoch (exact), and why an epoch paid nothing (held or ineligible).")  # fmt: skip
    df = ctx.frame(
        """SELECT e.epoch, e.status, e.reason, e.measured_class, coalesce(a.amount_base_units, 0) AS units
           FROM reward_eligibility e LEFT JOIN reward_allocations a USING (epoch, device_id)
           WHERE e.device_id = $device AND e.epoch >= $since ORDER BY e.epoch""",
        {"device": device_id},
    )
    if empty_or(panel, df, f"{device_id} was not considered for rewards in the window"):
        return panel
    if df["units"].sum() == 0:
        why = df.group_by("status", "reason").agg(pl.len().alias("epochs")).sort("epochs", descending=True)
        panel.empty = f"{device_id} was paid nothing in the window: " + "; ".join(
            f"{status} ({reason or 'no reason given'}) in {n} epoch(s)" for status, reason, n in why.rows()
        )
        return panel
    colours = {"paid": "#2e7d32", "held": "#ff9800", "ineligible": "#9e9e9e"}
    fig = go.Figure(go.Bar(x=df["epoch"].to_list(), y=df["units"].to_list(), marker_color=[colours.get(s, "#555") for s in df["status"]],
                           text=df["status"].to_list(), customdata=df.select(pl.col("reason").fill_null("")).to_series().to_list(),
                           hovertemplate="%{x}: %{y:,} base units, %{text}<br>%{customdata}<extra></extra>"))  # fmt: skip
    fig.update_layout(height=300, yaxis_title="base units", xaxis_title="epoch (UTC hour)")
    return panel.show(fig)


def build(ctx: ReportContext, device_id: str) -> Page:
    info = ctx.frame(
        """SELECT account_id, gpu_model, ip, asn FROM device_features WHERE device_id = $device
           ORDER BY epoch DESC LIMIT 1""",
        {"device": device_id},
    )
    about = ", ".join(f"{k} {v}" for k, v in info.row(0, named=True).items()) if info.height else "not seen in device features"
    page = Page(f"device-{device_id}", f"Device {device_id}", f"Latest report: {about}.")
    page.panels = [tier_history(ctx, device_id), evidence(ctx, device_id), pay(ctx, device_id)]
    return page
