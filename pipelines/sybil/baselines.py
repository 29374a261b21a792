"""Two published airdrop sybil filters, implemented on the same data for comparison.

- ``attribute_components`` (Hop Protocol's method): accounts sharing any attribute value (IP,
  funder, signup IP, mailbox, host, GPU) are joined; connected components with between
  ``min_size`` and ``max_size`` accounts are sybil clusters. No weighting by rarity.
- ``funding_louvain`` (Arbitrum's method): the wallet funding graph (wallet -> funder wallet,
  from ``stake_events``), connected components split with Louvain; communities holding at least
  ``min_size`` accounts are sybil clusters.

Both read ``account_attrs`` (``pipelines.sybil.links.build_account_graph``) and return
``cluster_id, account_id``.
"""

from __future__ import annotations

import duckdb
import networkx as nx
import polars as pl

from pipelines.sybil.communities import cluster_id

HOP_KINDS = ("ip", "funding", "signup_ip", "email", "host", "gpu")


def _frame(clusters: list[list[str]]) -> pl.DataFrame:
    rows = [(cluster_id(c), a) for c in clusters for a in c]
    return pl.DataFrame(rows, schema={"cluster_id": pl.String, "account_id": pl.String}, orient="row")


def attribute_components(con: duckdb.DuckDBPyConnection, min_size: int = 3, max_size: int = 500) -> pl.DataFrame:
    kinds = ", ".join(f"'{k}'" for k in HOP_KINDS)
    rows = con.execute(f"SELECT account_id, kind || ':' || value FROM account_attrs WHERE kind IN ({kinds})").fetchall()
    graph = nx.Graph()
    graph.add_edges_from(("a:" + a, "v:" + v) for a, v in rows)
    clusters = []
    for component in nx.connected_components(graph):
        accounts = sorted(n[2:] for n in component if n.startswith("a:"))
        if min_size <= len(accounts) <= max_size:
            clusters.append(accounts)
    return _frame(sorted(clusters))


def funding_louvain(con: duckdb.DuckDBPyConnection, epoch: str, min_size: int = 20, seed: int = 0) -> pl.DataFrame:
    edges = con.execute(
        "SELECT DISTINCT wallet, funder_wallet FROM stake_events WHERE _hour <= ? AND wallet <> funder_wallet", [epoch]
    ).fetchall()
    owners = dict(
        con.execute(
            "SELECT arg_max(wallet, _hour), account_id FROM accounts WHERE _hour <= ? GROUP BY account_id", [epoch]
        ).fetchall()
    )
    graph = nx.Graph()
    graph.add_edges_from(edges)
    clusters = []
    for component in nx.connected_components(graph):
        parts = [component] if len(component) < 3 else nx.community.louvain_communities(graph.subgraph(component), seed=seed)
        for part in parts:
            accounts = sorted(owners[w] for w in part if w in owners)
            if len(accounts) >= min_size:
                clusters.append(accounts)
    return _frame(sorted(clusters))
