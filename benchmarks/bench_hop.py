"""Benchmark: ``fleetproof sybil-graph`` on Hop Protocol's 2022 airdrop transfer graph.

    uv run python benchmarks/bench_hop.py                       # ours, compared with Hop's groups
    uv run python benchmarks/bench_hop.py --louvain             # also networkx Louvain on the same graph

Reads ``../shared/hop/`` (or ``--hop DIR``; the data stays outside the repository), runs the
clustering in a fresh process (wall time and peak memory of the whole command, target <= 35 s
on 2 cores), prints cluster sizes and how hubs were handled, then compares on Hop's airdrop
candidates (the addresses in ``hop_groups.parquet``; Hop published no other labels) with
Hop's own algorithmic groups: pairwise agreement (a pair = two candidates in one group) and
how many of Hop's groups, and of those Hop eliminated, one of our clusters recovers
(Jaccard >= 0.5). ``--louvain`` runs networkx Louvain (seed 0) on the same undirected graph,
hubs included, and scores it the same way.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import polars as pl

ROOT = Path(__file__).resolve().parents[1]


def _pairs(sizes: pl.Series) -> int:
    return int((sizes * (sizes - 1) // 2).sum())


def agreement(ours: pl.DataFrame, hop: pl.DataFrame) -> dict[str, float | int]:
    """Pairwise agreement of ``address, cluster`` with Hop's ``address, group`` on Hop's candidates."""
    ours = ours.join(hop.select("address"), on="address")
    both = ours.join(hop, on="address")
    common = _pairs(both.group_by("cluster", "group").len()["len"])
    predicted = _pairs(ours.group_by("cluster").len()["len"])
    reference = _pairs(hop.group_by("group").len()["len"])
    inter = both.group_by("cluster", "group").len().rename({"len": "inter"})
    jac = (
        inter.join(ours.group_by("cluster").len().rename({"len": "n_ours"}), on="cluster")
        .join(hop.group_by("group").len().rename({"len": "n_hop"}), on="group")
        .with_columns((pl.col("inter") / (pl.col("n_ours") + pl.col("n_hop") - pl.col("inter"))).alias("jaccard"))
        .group_by("group").agg(pl.col("jaccard").max())
    )  # fmt: skip
    small = hop.filter(pl.col("group").count().over("group") <= 1000)
    small_common = _pairs(both.join(small.select("address"), on="address").group_by("cluster", "group").len()["len"])
    groups = hop.group_by("group").agg(pl.col("eliminated").first())
    matched = groups.join(jac.filter(pl.col("jaccard") >= 0.5), on="group")
    return {
        "candidates_clustered": ours.height,
        "pair_precision_vs_hop": common / predicted if predicted else float("nan"),
        "pair_recall_vs_hop": common / reference if reference else float("nan"),
        "pair_recall_hop_groups_le_1000": small_common / _pairs(small.group_by("group").len()["len"]),
        "hop_groups_recovered": matched.height,
        "hop_groups": groups.height,
        "eliminated_recovered": int(matched["eliminated"].sum()),
        "eliminated_groups": int(groups["eliminated"].sum()),
    }


def louvain(edges_path: Path) -> tuple[pl.DataFrame, float]:
    import networkx as nx

    edges = pl.read_parquet(edges_path, columns=["address_a", "address_b"])
    started = time.perf_counter()
    graph = nx.Graph()
    graph.add_edges_from(edges.iter_rows())
    parts = nx.community.louvain_communities(graph, seed=0)
    seconds = time.perf_counter() - started
    rows = [(a, k) for k, part in enumerate(parts) if len(part) >= 3 for a in part]
    return pl.DataFrame(rows, schema={"address": pl.String, "cluster": pl.Int64}, orient="row"), seconds


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--hop", type=Path, default=ROOT.parent.parent / "shared" / "hop")
    p.add_argument("--louvain", action="store_true")
    a = p.parse_args()
    edges = a.hop / "edges.parquet"
    if not edges.exists():
        p.error(f"{edges} not found (pass --hop DIR holding edges.parquet and hop_groups.parquet)")
    out = Path(tempfile.mkdtemp(prefix="fp-hop-")) / "clusters.parquet"
    cmd = [sys.executable, "-m", "pipelines.cli", "sybil-graph", "--edges", str(edges), "--out", str(out)]
    started = time.perf_counter()
    run = subprocess.run(["/usr/bin/time", "-f", "%M", *cmd], capture_output=True, text=True, check=True, cwd=ROOT)
    wall = time.perf_counter() - started
    peak_kib = int(run.stderr.strip().splitlines()[-1])
    print(run.stdout.strip())
    print(f"whole command: {wall:.1f} s wall (target <= 35 s), peak RSS {peak_kib / 1024:.0f} MiB")
    hop = pl.read_parquet(a.hop / "hop_groups.parquet").select("address", pl.col("group_id").alias("group"), "eliminated")
    ours = pl.read_parquet(out).select("address", pl.col("cluster_id").alias("cluster"))
    rows = [{"method": "fleetproof sybil-graph", **agreement(ours, hop)}]
    if a.louvain:
        parts, seconds = louvain(edges)
        print(f"networkx Louvain on the same graph: {seconds:.1f} s, {parts['cluster'].n_unique()} communities of >= 3")
        rows.append({"method": "networkx louvain", **agreement(parts, hop)})
    with pl.Config(
        tbl_cols=20, tbl_hide_dataframe_shape=True, tbl_hide_column_data_types=True, float_precision=4, tbl_width_chars=220
    ):
        print(f"against Hop's own groups ({hop['group'].n_unique()} groups, {hop.height} candidates):")
        print(pl.DataFrame(rows))


if __name__ == "__main__":
    main()
