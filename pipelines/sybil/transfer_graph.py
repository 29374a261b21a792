"""Sybil clusters on a plain wallet transfer graph (``fleetproof sybil-graph``).

The wallet and transfer side of the account graph, runnable on any undirected edge list (two
address columns; extra columns are ignored). Linear in the number of edges: numpy and scipy's
connected components, no pairwise joins.

1. **Hubs from the graph's own base rate.** An address whose degree is above the
   ``hub_quantile`` of the graph's degrees (and at least ``min_hub_degree``) is a hub: an
   exchange hot wallet, a bridge or a popular contract touches thousands of unrelated
   addresses, so its edges glue nobody together. Hubs are cut from the graph and reported.
2. **Components, peeled until they are plausible.** Connected components of what is left; a
   component larger than ``max_cluster`` cannot be one operator's ring, so inside it the bar
   is halved and the addresses above it become hubs too, round after round, down to
   ``min_peel_degree``. A component still larger after the last round is left unclustered.
3. **Scoring.** A cluster of ``min_cluster`` or more addresses gets
   ``score = size_rank x (0.5 + 0.5 x star_share)``: ``size_rank`` is the share of the graph's
   non-hub addresses that sit in smaller components (how unusual this size is on this very
   graph), ``star_share`` the share of members one address is directly tied to (a funder
   spreading to many fresh wallets, the shape of an airdrop farm). It ranks clusters for
   review; it is not a probability.

Output: one row per clustered address, ``address, cluster_id, score, evidence`` (JSON).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import polars as pl
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

ADDRESS_COLUMNS = (("address_a", "address_b"), ("src", "dst"), ("source", "target"), ("from", "to"))
"""Accepted column pairs for the two ends of an edge, in this order of preference."""


@dataclass(frozen=True)
class GraphRules:
    hub_quantile: float = 0.999
    """Degrees above this quantile of the graph's own degrees are hubs (base rate, not a constant)."""
    min_hub_degree: int = 50
    """...but never below this: a funder of a 40-wallet farm must stay inside its cluster."""
    max_cluster: int = 1000
    """A component larger than this is peeled (its highest-degree addresses become hubs)."""
    min_peel_degree: int = 8
    """Peeling stops at this degree; what is still too large stays unclustered."""
    min_cluster: int = 3


@dataclass
class GraphResult:
    clusters: pl.DataFrame
    """``address, cluster_id, score, evidence``."""
    summary: dict


def read_edges(path: str | Path) -> pl.DataFrame:
    """``a, b`` (strings) from a Parquet or CSV edge list; a clear error for anything unusable."""
    path = Path(path)
    if not path.exists():
        raise ValueError(f"edge list {path} does not exist")
    if path.suffix == ".parquet":
        frame = pl.read_parquet(path)
    elif path.suffix in (".csv", ".gz") or path.name.endswith(".csv.gz"):
        frame = pl.read_csv(path, infer_schema_length=0)
    else:
        raise ValueError(f"edge list {path}: expected .parquet or .csv")
    return address_pairs(frame, str(path))


def address_pairs(frame: pl.DataFrame, source: str = "edge list") -> pl.DataFrame:
    """``a, b`` from the first accepted pair of address columns; errors name what is wrong."""
    if {"a", "b"} <= set(frame.columns):
        a, b = "a", "b"
    else:
        for a, b in ADDRESS_COLUMNS:
            if a in frame.columns and b in frame.columns:
                break
        else:
            raise ValueError(f"{source} needs two address columns, one of {ADDRESS_COLUMNS}; has {frame.columns}")
    edges = frame.select(pl.col(a).cast(pl.String).alias("a"), pl.col(b).cast(pl.String).alias("b"))
    empty = edges.with_row_index("row").filter(
        pl.col("a").is_null() | pl.col("b").is_null() | (pl.col("a") == "") | (pl.col("b") == "")
    )
    if empty.height:
        raise ValueError(f"{source}: {empty.height} edge(s) with an empty address (first at row {empty['row'][0]})")
    return edges


def _components(n: int, i: np.ndarray, j: np.ndarray, keep: np.ndarray) -> np.ndarray:
    m = keep[i] & keep[j]
    graph = coo_matrix((np.ones(int(m.sum()), dtype=np.int8), (i[m], j[m])), shape=(n, n)).tocsr()
    return connected_components(graph, directed=False)[1]


def cluster_transfer_graph(edges: pl.DataFrame, rules: GraphRules = GraphRules()) -> GraphResult:
    """Clusters of an undirected edge list (see the module docstring)."""
    edges = address_pairs(edges)
    self_loops = edges.filter(pl.col("a") == pl.col("b")).height
    pairs = (
        edges.filter(pl.col("a") != pl.col("b"))
        .select(pl.min_horizontal("a", "b").alias("a"), pl.max_horizontal("a", "b").alias("b"))
        .unique()
    )
    nodes = pl.concat([pairs["a"], pairs["b"]]).unique().sort().to_frame("address").with_row_index("i")
    index = nodes.select("address", pl.col("i").cast(pl.Int64))
    coded = pairs.join(index.rename({"address": "a", "i": "i"}), on="a").join(index.rename({"address": "b", "i": "j"}), on="b")
    i, j = coded["i"].to_numpy(), coded["j"].to_numpy()
    n = nodes.height
    degree = np.bincount(i, minlength=n) + np.bincount(j, minlength=n)
    bar = max(float(rules.min_hub_degree), float(np.quantile(degree, rules.hub_quantile)) if n else 0.0)
    hub = degree > bar
    hub_round = np.where(hub, 0, -1)
    rounds = 0
    while True:
        labels = _components(n, i, j, ~hub)
        sizes = np.bincount(labels[~hub], minlength=labels.max() + 1 if n else 0)
        oversized = np.zeros(n, dtype=bool)
        if n:
            oversized = (sizes[labels] > rules.max_cluster) & ~hub
        if not oversized.any() or bar <= rules.min_peel_degree:
            break
        rounds += 1
        bar = max(bar / 2, float(rules.min_peel_degree))
        inner = ~hub[i] & ~hub[j]
        local = np.bincount(i[inner], minlength=n) + np.bincount(j[inner], minlength=n)
        peel = oversized & (local > bar)
        hub |= peel
        hub_round[peel] = rounds
    too_large = int(oversized.sum()) if n else 0

    frame = nodes.with_columns(
        pl.Series("label", labels if n else np.zeros(0, dtype=np.int32)),
        pl.Series("hub", hub),
        pl.Series("degree", degree),
    )
    active = frame.filter(~pl.col("hub"))
    comp = active.group_by("label").agg(pl.len().alias("size"), pl.col("address").min().alias("first"))
    total = max(active.height, 1)
    # share of non-hub addresses in smaller components: how unusual a component of this size is here
    by_size = comp.group_by("size").agg((pl.col("size").sum()).alias("held")).sort("size")
    by_size = by_size.with_columns(((pl.col("held").cum_sum() - pl.col("held")) / total).alias("size_rank"))
    clusters = comp.filter((pl.col("size") >= rules.min_cluster) & (pl.col("size") <= rules.max_cluster)).join(
        by_size.select("size", "size_rank"), on="size"
    )
    label_of = frame.select("i", "label", "hub")
    e = (
        coded.select("i", "j")
        .join(label_of.rename({"i": "i", "label": "li", "hub": "hi"}), on="i")
        .join(label_of.rename({"i": "j", "label": "lj", "hub": "hj"}), on="j")
    )
    inside = e.filter(~pl.col("hi") & ~pl.col("hj") & (pl.col("li") == pl.col("lj"))).select(
        pl.col("li").alias("label"), "i", "j"
    )
    ends = pl.concat([inside.select("label", pl.col("i").alias("node")), inside.select("label", pl.col("j").alias("node"))])
    star = (
        ends.group_by("label", "node").len()
        .sort("len", descending=True)
        .group_by("label").agg(pl.col("node").first().alias("center"), pl.col("len").first().alias("center_degree"))
    )  # fmt: skip
    inner_edges = inside.group_by("label").len().rename({"len": "edges"})
    hub_touch = pl.concat([
        e.filter(~pl.col("hi") & pl.col("hj")).select(pl.col("li").alias("label"), pl.col("i").alias("node")),
        e.filter(pl.col("hi") & ~pl.col("hj")).select(pl.col("lj").alias("label"), pl.col("j").alias("node")),
    ]).group_by("label").agg(pl.col("node").n_unique().alias("members_touching_hubs"))  # fmt: skip
    clusters = (
        clusters.join(star, on="label", how="left")
        .join(inner_edges, on="label", how="left")
        .join(hub_touch, on="label", how="left")
        .join(nodes.rename({"i": "center", "address": "center_address"}), on="center", how="left")
        .with_columns(
            (pl.col("center_degree") / (pl.col("size") - 1)).alias("star_share"),
            pl.col("members_touching_hubs").fill_null(0),
        )
        .with_columns((pl.col("size_rank") * (0.5 + 0.5 * pl.col("star_share"))).round(4).alias("score"))
        .with_columns(
            ("tg-" + pl.col("first").str.slice(0, 42)).alias("cluster_id"),
            pl.struct(
                size="size", edges="edges", center=pl.col("center_address"), star_share=pl.col("star_share").round(3),
                size_rank=pl.col("size_rank").round(4), members_touching_hubs="members_touching_hubs",
            ).struct.json_encode().alias("evidence"),
        )
    )  # fmt: skip
    out = (
        active.join(clusters.select("label", "cluster_id", "score", "evidence"), on="label")
        .select("address", "cluster_id", "score", "evidence")
        .sort("cluster_id", "address")
    )
    hubs = frame.filter(pl.col("hub")).with_columns(pl.Series("round", hub_round[hub]))
    sizes_out = clusters["size"]
    summary = {
        "addresses": n,
        "edges": pairs.height,
        "self_loops_ignored": self_loops,
        "hub_bar_degree": float(max(float(rules.min_hub_degree), float(np.quantile(degree, rules.hub_quantile)) if n else 0.0)),
        "hubs_by_degree": int((hub_round == 0).sum()),
        "hubs_peeled": int((hub_round > 0).sum()),
        "peel_rounds": rounds,
        "hub_edges_cut": int((hub[i] | hub[j]).sum()) if n else 0,
        "top_hubs": hubs.sort("degree", descending=True).head(5).select("address", "degree").to_dicts(),
        "unclustered_in_oversized_components": too_large,
        "clusters": clusters.height,
        "clustered_addresses": out.height,
        "cluster_size_quantiles": {str(q): int(sizes_out.quantile(q, "nearest")) for q in (0.5, 0.9, 0.99, 1.0)}  # type: ignore[arg-type]
        if clusters.height
        else {},
        "cluster_size_buckets": {
            label: int(((sizes_out >= lo) & (sizes_out <= hi)).sum())
            for label, lo, hi in (("3-5", 3, 5), ("6-20", 6, 20), ("21-100", 21, 100), ("101-1000", 101, 1000))
        },
        "rules": asdict(rules),
    }
    return GraphResult(clusters=out, summary=summary)


def write_clusters(result: GraphResult, out: str | Path) -> None:
    """The clusters as Parquet, written atomically (a temporary file renamed into place)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    result.clusters.write_parquet(tmp)
    tmp.replace(out)


def summary_lines(summary: dict) -> list[str]:
    """The run summary as short human-readable lines (the CLI prints these)."""
    s = summary
    return [
        f"addresses {s['addresses']}, edges {s['edges']} (self loops ignored: {s['self_loops_ignored']})",
        f"hubs: {s['hubs_by_degree']} above degree {s['hub_bar_degree']:.0f} (the graph's own "
        f"{s['rules']['hub_quantile']} degree quantile, floor {s['rules']['min_hub_degree']}), "
        f"{s['hubs_peeled']} more peeled in {s['peel_rounds']} round(s) from components over "
        f"{s['rules']['max_cluster']}; {s['hub_edges_cut']} edges touching hubs cut",
        "top hubs: " + ", ".join(f"{h['address'][:12]}.. ({h['degree']})" for h in s["top_hubs"]),
        f"clusters {s['clusters']} holding {s['clustered_addresses']} addresses; sizes {json.dumps(s['cluster_size_buckets'])}, "
        f"quantiles {json.dumps(s['cluster_size_quantiles'])}; left unclustered in oversized components: "
        f"{s['unclustered_in_oversized_components']}",
    ]
