"""Sybil: which account clusters were found, how big they are, and what ties their accounts
together (a network picture of a cluster, coloured by link kind, and each cluster's evidence)."""

from __future__ import annotations

import networkx as nx
import plotly.graph_objects as go
import polars as pl

from dashboards.context import ReportContext
from dashboards.render import Page, Panel, empty_or
from pipelines.sybil.links import KINDS, account_attributes

MAX_NODES = 60
"""Accounts drawn in the network picture (a larger cluster is drawn by its first accounts)."""
KIND_COLOURS = dict(zip(KINDS, ["#d62728", "#9467bd", "#e377c2", "#ff7f0e", "#8c564b", "#2ca02c", "#17becf",
                                "#1f77b4", "#bcbd22", "#7f7f7f", "#aec7e8", "#c7c7c7", "#ffbb78", "#ff9896",
                                "#c5b0d5", "#98df8a", "#f7b6d2"], strict=True))  # fmt: skip

CLUSTERS_SQL = """
SELECT c.cluster_id, count(DISTINCT c.account_id) AS accounts, count(DISTINCT t.device_id) AS devices,
       any_value(c.score) AS score,
       any_value(c.evidence ->> '$.strong_kinds') AS strong_kinds, any_value(c.evidence ->> '$.story') AS story
FROM sybil_clusters c LEFT JOIN device_tiers t ON t.epoch = c.epoch AND t.account_id = c.account_id
WHERE c.epoch = $latest GROUP BY c.cluster_id ORDER BY accounts DESC, c.cluster_id
"""


def cluster_sizes(ctx: ReportContext, clusters: pl.DataFrame) -> Panel:
    panel = Panel("sizes", "Cluster sizes (latest epoch)",
                  "How many clusters of each size the sybil detector reports, in accounts and in the devices they run.")  # fmt: skip
    if empty_or(panel, clusters, "no sybil cluster in the latest epoch"):
        return panel
    fig = go.Figure()
    for col, colour in (("accounts", "#9467bd"), ("devices", "#ff7f0e")):
        counts = clusters.group_by(col).agg(pl.len().alias("clusters")).sort(col)
        fig.add_trace(
            go.Bar(x=[str(v) for v in counts[col]], y=counts["clusters"].to_list(), name=f"by {col}", marker_color=colour)
        )
    fig.update_layout(height=320, barmode="group", xaxis={"title": "cluster size", "type": "category", "categoryorder": "array",
                      "categoryarray": [str(v) for v in sorted(set(clusters["accounts"]) | set(clusters["devices"]))]}, yaxis_title="clusters")  # fmt: skip
    return panel.show(fig)


def cluster_values(ctx: ReportContext, cluster_id: str) -> pl.DataFrame:
    """The values (of every link kind) that two or more of the cluster's accounts share, with
    how many accounts in the whole network hold each; values held by more accounts than the
    kind's ``max_n`` link nobody, as in the detector."""
    account_attributes(ctx.con, ctx.latest, 24)
    kinds = ", ".join(f"('{k}', {n})" for k, (_, n) in KINDS.items())
    return ctx.frame(
        f"""WITH members AS (SELECT DISTINCT account_id FROM sybil_clusters
                             WHERE epoch = $latest AND cluster_id = $cluster ORDER BY account_id LIMIT {MAX_NODES}),
           held AS (SELECT kind, value, count(*) AS n FROM account_attrs GROUP BY ALL),
           m AS (SELECT a.account_id, a.kind, a.value, h.n FROM account_attrs a JOIN members USING (account_id)
                 JOIN held h USING (kind, value) JOIN (VALUES {kinds}) k(kind, max_n) USING (kind) WHERE h.n <= k.max_n)
           SELECT account_id, kind, value, n, count(*) OVER (PARTITION BY kind, value) AS members FROM m
           QUALIFY count(*) OVER (PARTITION BY kind, value) >= 2""",
        {"cluster": cluster_id},
    )


def network_picture(ctx: ReportContext, clusters: pl.DataFrame) -> Panel:
    panel = Panel("network", "What ties the largest cluster together",
                  f"Accounts (dark dots, up to {MAX_NODES}) of the largest cluster and the values they share "
                  "(diamonds, one colour per kind, larger when more members share it): a funder wallet, a mailbox "
                  "pattern, a restart minute, a machine. Click a kind in the legend to hide it. Strong kinds "
                  "(funding, email, email pattern, restart, host, GPU) make a ring; the rest only corroborate.")  # fmt: skip
    if empty_or(panel, clusters, "no sybil cluster in the latest epoch"):
        return panel
    cluster_id = clusters["cluster_id"][0]
    panel.title = f"What ties cluster {cluster_id} together ({clusters['accounts'][0]} accounts)"
    shared = cluster_values(ctx, cluster_id)
    if empty_or(panel, shared, f"the accounts of {cluster_id} share no value in the last 24 hours"):
        return panel
    shared = shared.with_columns(node=pl.col("kind") + ": " + pl.col("value"))
    graph = nx.Graph()
    graph.add_edges_from(shared.select("account_id", "node").iter_rows())
    pos = nx.spring_layout(graph, seed=7)
    fig = go.Figure()
    order = shared.group_by("kind").agg(pl.len().alias("links")).sort("links", descending=True)["kind"].to_list()
    for kind in order:
        part = shared.filter(pl.col("kind") == kind)
        xs: list[float | None] = []
        ys: list[float | None] = []
        for account, node in part.select("account_id", "node").iter_rows():
            xs += [pos[account][0], pos[node][0], None]
            ys += [pos[account][1], pos[node][1], None]
        colour = KIND_COLOURS.get(kind, "#999")
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", legendgroup=kind, showlegend=False, hoverinfo="skip",
                                 line={"width": 0.6, "color": colour}, opacity=0.35))  # fmt: skip
        values = part.unique("node", keep="first", maintain_order=True)
        fig.add_trace(go.Scatter(
            x=[pos[v][0] for v in values["node"]], y=[pos[v][1] for v in values["node"]], mode="markers", name=kind,
            legendgroup=kind, marker={"symbol": "diamond", "color": colour, "size": [8 + min(m, 40) / 2 for m in values["members"]]},
            text=[f"{kind}: {str(v)[:60]}<br>{m} members share it; {n} accounts network-wide"
                  for v, m, n in values.select("value", "members", "n").rows()],
            hoverinfo="text",
        ))  # fmt: skip
    accounts = shared["account_id"].unique().sort().to_list()
    fig.add_trace(go.Scatter(x=[pos[a][0] for a in accounts], y=[pos[a][1] for a in accounts], mode="markers", name="account",
                             text=accounts, hoverinfo="text", marker={"size": 7, "color": "#333"}))  # fmt: skip
    fig.update_layout(height=560, xaxis={"visible": False}, yaxis={"visible": False})
    return panel.show(fig)


def evidence_table(ctx: ReportContext, clusters: pl.DataFrame) -> Panel:
    panel = Panel("evidence", "Clusters and their evidence (latest epoch)",
                  "Every cluster, largest first: size, score, the strong link kinds that made it a ring, and "
                  "the detector's own account of the links.")  # fmt: skip
    if not empty_or(panel, clusters, "no sybil cluster in the latest epoch"):
        panel.table = clusters
    return panel


def build(ctx: ReportContext) -> Page:
    page = Page("sybil", "Sybil", "Which account clusters were found and what ties their accounts together?")
    clusters = ctx.frame(CLUSTERS_SQL)
    page.panels = [cluster_sizes(ctx, clusters), network_picture(ctx, clusters), evidence_table(ctx, clusters)]
    return page
