"""``fleetproof sybil-graph``: clusters of a plain transfer edge list, hubs kept from gluing them."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from pipelines.cli import main
from pipelines.sybil.transfer_graph import GraphRules, cluster_transfer_graph, read_edges


def synthetic_edges() -> pl.DataFrame:
    """Two farms (a funder fanning out to fresh wallets, a chain of intermediates), honest pairs,
    and an exchange hot wallet that every honest user and one farm wallet have touched."""
    rows = [("farmA", f"a{k}") for k in range(30)]
    rows += [("farmB", "midB1"), ("midB1", "midB2")] + [("midB2", f"b{k}") for k in range(12)]
    rows += [(f"h{k}", f"h{k}x") for k in range(200)]  # honest: one counterparty each
    rows += [("exchange", f"h{k}") for k in range(200)] + [("exchange", "a3")]
    return pl.DataFrame(rows, schema=["address_a", "address_b"], orient="row")


def test_farms_clustered_and_exchange_glues_nobody() -> None:
    result = cluster_transfer_graph(synthetic_edges(), GraphRules(min_hub_degree=50, max_cluster=100))
    clusters = result.clusters.group_by("cluster_id").agg(pl.col("address").sort())
    members = sorted(clusters["address"].to_list(), key=len)
    assert members[-1] == sorted(["farmA"] + [f"a{k}" for k in range(30)])
    assert members[-2] == sorted(["farmB", "midB1", "midB2"] + [f"b{k}" for k in range(12)])
    assert len(members) == 2  # honest wallets stay in pairs: the exchange was cut as a hub
    assert result.summary["hubs_by_degree"] == 1 and result.summary["top_hubs"][0]["address"] == "exchange"
    farm = result.clusters.filter(pl.col("address") == "a0").row(0, named=True)
    evidence = json.loads(farm["evidence"])
    assert evidence["center"] == "farmA" and evidence["star_share"] == 1.0 and evidence["members_touching_hubs"] == 1
    chain = result.clusters.filter(pl.col("address") == "b0")["score"][0]
    assert 0 < chain < farm["score"] <= 1


def test_oversized_component_is_peeled_not_reported() -> None:
    # two farms bridged by a busier wallet (a deposit address both used): too large together,
    # separable once the busiest address is peeled
    rows = [("f1", f"x{k}") for k in range(40)] + [("f2", f"y{k}") for k in range(40)]
    rows += [("bridge", f"x{k}") for k in range(30)] + [("bridge", f"y{k}") for k in range(30)]
    edges = pl.DataFrame(rows, schema=["src", "dst"], orient="row")
    result = cluster_transfer_graph(edges, GraphRules(min_hub_degree=100, max_cluster=60, min_peel_degree=8))
    assert result.summary["hubs_peeled"] >= 1 and result.summary["peel_rounds"] >= 1
    assert result.clusters.filter(pl.col("address") == "bridge").is_empty()
    sizes = sorted(result.clusters.group_by("cluster_id").len()["len"].to_list())
    assert sizes == [41, 41]


def test_cli_writes_parquet_and_rejects_bad_input(tmp_path: Path, capsys) -> None:
    edges = tmp_path / "edges.csv"
    synthetic_edges().write_csv(edges)
    out = tmp_path / "clusters.parquet"
    assert main(["sybil-graph", "--edges", str(edges), "--out", str(out)]) == 0
    table = pl.read_parquet(out)
    assert table.columns == ["address", "cluster_id", "score", "evidence"] and table.height == 31 + 15
    assert "hubs: 1 above degree" in capsys.readouterr().out
    bad = tmp_path / "bad.csv"
    bad.write_text("address_a,address_b\nw1,w2\nw3,\n")
    assert main(["sybil-graph", "--edges", str(bad), "--out", str(out)]) == 2
    assert "1 edge(s) with an empty address (first at row 1)" in capsys.readouterr().err
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("x,y\n1,2\n")
    with pytest.raises(ValueError, match="needs two address columns"):
        read_edges(wrong)
