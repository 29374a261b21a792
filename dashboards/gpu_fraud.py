"""GPU fraud: measured throughput against the catalogue, contention when siblings are
challenged together, and bursts of new devices by model, account and ASN."""

from __future__ import annotations

import plotly.graph_objects as go
import polars as pl
from plotly.subplots import make_subplots

from dashboards.context import SAMPLE_POINTS, ReportContext
from dashboards.render import TIER_COLOURS, Page, Panel, empty_or
from detectors.pace import PACED_CTE


def throughput_vs_spec(ctx: ReportContext) -> Panel:
    panel = Panel("throughput", "Measured throughput / catalogue spec, per claimed model (latest epoch)",
                  "Boxes: every device's median proof-of-work TFLOPS over its model's catalogue figure (5th, 25th, "
                  "50th, 75th, 95th percentile, computed in SQL). Dots: devices on probation or rejected "
                  f"(at most {SAMPLE_POINTS:,}, sampled). A card far below 1 is not the model it claims.")  # fmt: skip
    boxes = ctx.frame(
        """SELECT catalogue_model AS model, count(*) AS devices,
                  quantile_cont(r, [0.05, 0.25, 0.5, 0.75, 0.95]) AS q
           FROM (SELECT catalogue_model, tflops_median / spec_tflops AS r FROM device_features
                 WHERE epoch = $latest AND spec_tflops > 0 AND tflops_median IS NOT NULL)
           GROUP BY ALL ORDER BY model"""
    )
    if empty_or(panel, boxes, "no device has a throughput measurement and a catalogue model in the latest epoch"):
        return panel
    q = boxes["q"].to_list()
    fig = go.Figure(go.Box(
        x=boxes["model"].to_list(), lowerfence=[v[0] for v in q], q1=[v[1] for v in q], median=[v[2] for v in q],
        q3=[v[3] for v in q], upperfence=[v[4] for v in q], name="all devices", marker_color="#7f9fbf",
        hovertext=[f"{n:,} devices" for n in boxes["devices"]],
    ))  # fmt: skip
    flagged = ctx.frame(
        f"""SELECT * FROM (  -- filter first: USING SAMPLE applies before WHERE in its own SELECT
                SELECT f.catalogue_model AS model, f.tflops_median / f.spec_tflops AS ratio, f.device_id, t.tier
                FROM device_features f JOIN device_tiers t USING (epoch, device_id)
                WHERE f.epoch = $latest AND f.spec_tflops > 0 AND f.tflops_median IS NOT NULL
                  AND t.tier IN ('probation', 'rejected'))
            USING SAMPLE reservoir({SAMPLE_POINTS} ROWS) REPEATABLE (7)"""
    )
    for tier in ("probation", "rejected"):
        part = flagged.filter(pl.col("tier") == tier)
        if part.height:
            fig.add_trace(go.Scattergl(x=part["model"].to_list(), y=part["ratio"].to_list(), mode="markers", name=tier,
                                       text=part["device_id"].to_list(), marker={"color": TIER_COLOURS[tier], "size": 5, "opacity": 0.6}))  # fmt: skip
    fig.add_hline(y=1.0, line_dash="dot", line_color="#888")
    fig.update_layout(height=420, yaxis_title="measured / catalogue TFLOPS", xaxis_title="claimed model")
    return panel.show(fig)


def contention(ctx: ReportContext) -> Panel:
    panel = Panel("contention", "Throughput by batch siblings (window)",
                  "TFLOPS over the model's median for the same product size (a small product fills no card) "
                  "when the backend challenged a device together with n others on the same IP or host. Real "
                  "cards keep their speed; one card shared by many virtual devices slows down as siblings are added.")  # fmt: skip
    df = ctx.frame(
        f"""WITH {PACED_CTE}
           SELECT least(batch_siblings, 8) AS siblings, count(*) AS challenges,
                  quantile_cont(pace, 0.1) AS p10, median(pace) AS p50, quantile_cont(pace, 0.9) AS p90
           FROM paced WHERE pace IS NOT NULL GROUP BY ALL ORDER BY siblings""",
        {"epoch": ctx.latest, "window": ctx.window_hours},
    )
    if empty_or(panel, df, "no answered challenge with a throughput measurement in the window"):
        return panel
    x = [str(s) if s < 8 else "8+" for s in df["siblings"]]
    fig = go.Figure(go.Bar(x=x, y=df["p50"].to_list(), name="median", marker_color="#1f77b4",
                           error_y={"type": "data", "symmetric": False,
                                    "array": (df["p90"] - df["p50"]).to_list(), "arrayminus": (df["p50"] - df["p10"]).to_list()},
                           hovertext=[f"{n:,} challenges; p10-p90 shown" for n in df["challenges"]]))  # fmt: skip
    fig.update_layout(height=340, xaxis_title="siblings in the same batch", yaxis_title="TFLOPS / model median at its size")
    return panel.show(fig)


def bursts(ctx: ReportContext) -> Panel:
    panel = Panel("bursts", "New devices per hour, by ASN, and burst-flagged devices by model, account and ASN",
                  "Where waves of new devices come from: first appearance per hour (top 8 ASNs, the rest summed), "
                  "and the top values among devices the burst detector flagged in the window.")  # fmt: skip
    first = ctx.frame(
        """WITH firsts AS (SELECT device_id, min(epoch) AS epoch, arg_min(asn, epoch) AS asn FROM device_features GROUP BY device_id),
           w AS (SELECT * FROM firsts WHERE epoch >= $since),
           top AS (SELECT asn FROM w GROUP BY asn ORDER BY count(*) DESC LIMIT 8)
           SELECT epoch, CASE WHEN asn IN (SELECT asn FROM top) THEN 'AS' || asn ELSE 'other' END AS asn, count(*) AS devices
           FROM w GROUP BY ALL ORDER BY epoch"""
    )
    flagged = ctx.frame(
        """WITH b AS (SELECT DISTINCT epoch, device_id FROM evidence WHERE detector = 'fleet_burst' AND epoch >= $since),
           f AS (SELECT f.* FROM device_features f JOIN b USING (epoch, device_id)),
           d AS (SELECT 'model' AS dimension, coalesce(catalogue_model, gpu_model) AS value, device_id FROM f
                 UNION ALL SELECT 'account', account_id, device_id FROM f
                 UNION ALL SELECT 'ASN', 'AS' || asn, device_id FROM f)
           SELECT dimension, value, count(DISTINCT device_id) AS devices FROM d WHERE value IS NOT NULL
           GROUP BY dimension, value QUALIFY row_number() OVER (PARTITION BY dimension ORDER BY devices DESC, value) <= 10"""
    )
    if empty_or(panel, first, "no device appeared in the window"):
        return panel
    fig = make_subplots(rows=1, cols=4, column_widths=[0.46, 0.18, 0.18, 0.18], horizontal_spacing=0.07,
                        subplot_titles=["first seen per hour", "burst: model", "burst: account", "burst: ASN"])  # fmt: skip
    for asn in first.group_by("asn").agg(pl.col("devices").sum()).sort("devices", descending=True)["asn"]:
        part = first.filter(pl.col("asn") == asn)
        fig.add_trace(go.Bar(x=part["epoch"].to_list(), y=part["devices"].to_list(), name=asn), row=1, col=1)
    for col, dim in ((2, "model"), (3, "account"), (4, "ASN")):
        part = flagged.filter(pl.col("dimension") == dim).sort("devices")
        fig.add_trace(go.Bar(y=part["value"].to_list(), x=part["devices"].to_list(), orientation="h", showlegend=False,
                             marker_color="#d62728", name=f"burst {dim}"), row=1, col=col)  # fmt: skip
    if flagged.height == 0:
        fig.add_annotation(text="no burst flagged in the window", xref="paper", yref="paper", x=0.8, y=0.5, showarrow=False)
    fig.update_layout(barmode="stack", height=420)
    return panel.show(fig)


def build(ctx: ReportContext) -> Page:
    page = Page("gpu_fraud", "GPU fraud", "Is each GPU the card it claims, one card per device, and where do bursts come from?")
    page.panels = [throughput_vs_spec(ctx), contention(ctx), bursts(ctx)]
    return page
