"""Rewards: who is paid how much, by tier and measured class; whether a GPU in a large account
is paid like one in a one-GPU account; how much went to devices now known as fraud; what
probation held, released and forfeited; slashing.

Amounts are summed as exact integer base units in SQL (BIGINT: an overflow is an error, not a
rounding) and drawn in IO (1 IO = 10^8 units); hover texts carry the exact base units."""

from __future__ import annotations

import plotly.graph_objects as go
import polars as pl

from dashboards.context import ReportContext
from dashboards.render import TIER_COLOURS, Page, Panel, empty_or

UNITS_PER_IO = 10**8
ACCOUNT_SIZES = "CASE WHEN n = 1 THEN '1' WHEN n < 5 THEN '2-4' WHEN n < 20 THEN '5-19' WHEN n < 100 THEN '20-99' " \
                "WHEN n < 500 THEN '100-499' ELSE '500+' END"  # fmt: skip
SIZE_ORDER = ["1", "2-4", "5-19", "20-99", "100-499", "500+"]


def pool_split(ctx: ReportContext) -> Panel:
    panel = Panel("pool", "Pool split by tier and measured class (window)",
                  "Base units allocated to devices in the window, by the tier they held (probation, and standard "
                  "under the shipped policy: held, not yet paid) and the class they measured as.")  # fmt: skip
    df = ctx.frame(
        """SELECT e.tier, coalesce(e.measured_class, 'unmeasured') AS class, CAST(sum(a.amount_base_units) AS BIGINT) AS units
           FROM reward_allocations a JOIN reward_eligibility e USING (epoch, device_id)
           WHERE a.epoch >= $since GROUP BY ALL HAVING sum(a.amount_base_units) > 0 ORDER BY units DESC"""
    )
    if empty_or(panel, df, "nothing was paid in the window"):
        return panel
    fig = go.Figure()
    for tier in [t for t in TIER_COLOURS if t in set(df["tier"])]:
        part = df.filter(pl.col("tier") == tier).sort("class")
        fig.add_trace(go.Bar(x=part["class"].to_list(), y=[u / UNITS_PER_IO for u in part["units"]], name=tier,
                             marker_color=TIER_COLOURS[tier], customdata=part["units"].to_list(),
                             hovertemplate="%{x}: %{customdata:,} base units<extra>" + tier + "</extra>"))  # fmt: skip
    fig.update_layout(height=360, barmode="stack", yaxis_title="IO paid", xaxis_title="measured class")
    return panel.show(fig)


def pay_by_account_size(ctx: ReportContext) -> Panel:
    panel = Panel("fairness", "Pay per GPU-hour by account size (window)",
                  "Mean base units per paid device-epoch, per measured class, for accounts of 1, 2-4, ... 500+ "
                  "devices. Equal bars: a GPU in a 500-GPU account is paid like one in a one-GPU account.")  # fmt: skip
    df = ctx.frame(
        f"""WITH sizes AS (SELECT epoch, account_id, count(*) AS n FROM reward_eligibility
                           WHERE epoch >= $since GROUP BY ALL),
           paid AS (SELECT a.epoch, a.amount_base_units AS units, e.measured_class AS class, {ACCOUNT_SIZES} AS size
                    FROM reward_allocations a JOIN reward_eligibility e USING (epoch, device_id)
                    JOIN sizes s ON s.epoch = e.epoch AND s.account_id IS NOT DISTINCT FROM e.account_id
                    WHERE a.epoch >= $since AND e.status = 'paid'),
           top AS (SELECT class FROM paid GROUP BY class ORDER BY count(*) DESC LIMIT 8)
           SELECT class, size, count(*) AS device_epochs, avg(units) AS mean_units
           FROM paid WHERE class IN (SELECT class FROM top) GROUP BY ALL"""
    )
    if empty_or(panel, df, "no device was paid in the window"):
        return panel
    fig = go.Figure()
    for size in [s for s in SIZE_ORDER if s in set(df["size"])]:
        part = df.filter(pl.col("size") == size).sort("class")
        fig.add_trace(go.Bar(x=part["class"].to_list(), y=part["mean_units"].to_list(), name=f"{size} devices",
                             hovertext=[f"{n:,} device-epochs" for n in part["device_epochs"]]))  # fmt: skip
    fig.update_layout(height=360, barmode="group", yaxis_title="mean base units per device-epoch", xaxis_title="measured class",
                      legend_title="account size")  # fmt: skip
    return panel.show(fig)


def fraud_share(ctx: ReportContext) -> Panel:
    panel = Panel("fraud-share", "Share of each hour's payouts that went to devices now rejected",
                  "Base units paid out in each epoch (allocations paid, and held shares released) to devices that "
                  "are rejected in the latest epoch, over all base units paid out that epoch: what fraud took "
                  "before it was caught. Held shares of a device later rejected were forfeited, never paid.")  # fmt: skip
    df = ctx.frame(
        """WITH bad AS (SELECT device_id FROM device_tiers WHERE epoch = $latest AND tier = 'rejected')
           SELECT epoch, CAST(sum(amount_base_units) AS BIGINT) AS paid,
                  CAST(coalesce(sum(amount_base_units) FILTER (device_id IN (SELECT device_id FROM bad)), 0) AS BIGINT)
                    AS to_fraud
           FROM payouts WHERE epoch >= $since GROUP BY ALL HAVING sum(amount_base_units) > 0 ORDER BY epoch"""
    )
    if empty_or(panel, df, "nothing was paid in the window"):
        return panel
    share = [100 * f / p for f, p in zip(df["to_fraud"], df["paid"], strict=True)]
    fig = go.Figure(go.Scatter(x=df["epoch"].to_list(), y=share, mode="lines+markers", name="share", line={"color": "#d62728"},
                               customdata=df.select("to_fraud", "paid").rows(),
                               hovertemplate="%{y:.4f}%<br>%{customdata[0]:,} of %{customdata[1]:,} base units<extra></extra>"))  # fmt: skip
    fig.update_layout(height=300, yaxis_title="% of paid rewards", xaxis_title="epoch (UTC hour)")
    return panel.show(fig)


HELD_COLOURS = {"held": "#ff9800", "released": "#2e7d32", "forfeited": "#9e9e9e"}


def held_shares(ctx: ReportContext) -> Panel:
    panel = Panel("held", "Held shares: held, released and forfeited per epoch (window)",
                  "Probation holds a device's share; it is released once the device has been out of probation for "
                  "the policy's release_after_hours, and forfeited when the device is rejected.")  # fmt: skip
    df = ctx.frame(
        """SELECT held_epoch AS epoch, 'held' AS what, CAST(sum(amount_base_units) AS BIGINT) AS units
           FROM held_rewards WHERE held_epoch >= $since GROUP BY ALL
           UNION ALL
           SELECT settled_epoch, outcome, CAST(sum(amount_base_units) AS BIGINT)
           FROM held_rewards WHERE settled_epoch >= $since GROUP BY ALL
           ORDER BY epoch, what"""
    )
    if empty_or(panel, df, "nothing was held in the window"):
        return panel
    fig = go.Figure()
    for what, colour in HELD_COLOURS.items():
        part = df.filter(pl.col("what") == what)
        if part.height:
            fig.add_trace(go.Bar(x=part["epoch"].to_list(), y=[u / UNITS_PER_IO for u in part["units"]], name=what,
                                 marker_color=colour, customdata=part["units"].to_list(),
                                 hovertemplate="%{x}: %{customdata:,} base units<extra>" + what + "</extra>"))  # fmt: skip
    fig.update_layout(height=320, barmode="group", yaxis_title="IO", xaxis_title="epoch (UTC hour)")
    return panel.show(fig)


def slashing(ctx: ReportContext) -> Panel:
    panel = Panel("slashing", "Slashing by epoch, status and reason (window)",
                  "Stake and accrued rewards slashed per epoch (proposed within the appeal window, final, or "
                  "reversed on appeal), by reason.")  # fmt: skip
    df = ctx.frame(
        """SELECT epoch, status || ': ' || reason AS what, count(*) AS incidents, CAST(sum(amount_base_units) AS BIGINT) AS units
           FROM slashing_events WHERE epoch >= $since GROUP BY ALL ORDER BY epoch"""
    )
    if empty_or(panel, df, "no slashing in the window"):
        return panel
    fig = go.Figure()
    for what in df.group_by("what").agg(pl.col("units").sum()).sort("units", descending=True)["what"]:
        part = df.filter(pl.col("what") == what)
        fig.add_trace(go.Bar(x=part["epoch"].to_list(), y=[u / UNITS_PER_IO for u in part["units"]], name=what,
                             hovertext=[f"{n:,} incidents, {u:,} base units" for n, u in part.select("incidents", "units").rows()]))  # fmt: skip
    fig.update_layout(height=340, barmode="stack", yaxis_title="IO slashed", xaxis_title="epoch (UTC hour)")
    return panel.show(fig)


def build(ctx: ReportContext) -> Page:
    page = Page("rewards", "Rewards", "Who is paid how much, is pay fair across account sizes, and what did slashing take back?")
    page.panels = [pool_split(ctx), pay_by_account_size(ctx), fraud_share(ctx), held_shares(ctx), slashing(ctx)]
    return page
