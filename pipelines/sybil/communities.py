"""Communities in the account graph, and how strongly each one looks like one operator.

The edges are the pairs ``build_account_graph`` kept (links adding up to ``min_edge_weight``,
two strong kinds shared, or a value shown to mark a group); the graph splits into connected components. A dense component (edge
density >= ``dense``: one ring, every member tied to every other) is one community; a sparse
one is split with Louvain (networkx, fixed seed: the same graph gives the same clusters), so
a weak bridge does not merge two groups. A community is scored by which kinds of link
hold it together and how much of it each covers (after ``core_members`` has dropped accounts
tied to it by fewer operator kinds than its typical member):

    score = 1 - prod_k (1 - strength_k * coverage_k)

where coverage_k is the share of members with a link of kind k inside the community. It is a
sybil ring only with ``min_strong_kinds`` strong kinds (funding, email, bulk email pattern,
restarts, host, GPU) each covering at least ``min_coverage`` of it, and ``score >=
min_score`` or, in a community of at least ``marks_min_accounts``, ``min_strong_kinds``
operator kinds that *mark* it (values held ``exclusive_share`` or more inside it, covering
``exclusive_coverage`` of its members: its own
template, its vendor's mailbox shape; honest crowds share their popular values with many
outsiders). Sharing an IP, an ASN or a referral never suffices (NAT, families, labs).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import networkx as nx
import polars as pl

from pipelines.sybil.links import KINDS, STRONG_KINDS


@dataclass(frozen=True)
class ClusterRules:
    dense: float = 0.3
    min_accounts: int = 3
    min_score: float = 0.8
    min_strong_kinds: int = 2
    min_coverage: float = 0.5
    exclusive_share: float = 0.8
    exclusive_coverage: float = 0.8
    marks_min_accounts: int = 10
    resolution: float = 1.0
    seed: int = 0


def communities(edges: pl.DataFrame, rules: ClusterRules) -> list[list[str]]:
    """Account communities (each sorted, the list sorted) from ``a, b, weight, kinds`` edges.

    Louvain walks sets of nodes, and Python orders a set of strings by a hash salted per
    process: the graph is built over integer node ids (sorted accounts, sorted edges), so the
    same edges give the same clusters in every run."""
    names = sorted(set(edges["a"].to_list()) | set(edges["b"].to_list()))
    index = {name: i for i, name in enumerate(names)}
    graph = nx.Graph()
    graph.add_weighted_edges_from(
        (index[a], index[b], w) for a, b, w in edges.select("a", "b", "weight").sort("a", "b").iter_rows()
    )
    found = []
    for component in nx.connected_components(graph):
        if len(component) < rules.min_accounts:
            continue
        sub = graph.subgraph(sorted(component))
        if nx.density(sub) >= rules.dense:
            found.append(sorted(names[i] for i in component))
            continue
        parts = nx.community.louvain_communities(sub, weight="weight", resolution=rules.resolution, seed=rules.seed)
        found += [sorted(names[i] for i in p) for p in parts if len(p) >= rules.min_accounts]
    return sorted(found)


def _inside_links(edges: pl.DataFrame, clusters: list[list[str]]) -> pl.DataFrame:
    """``ca, a, b, kind, value, n, weight``: the links of pairs whose two accounts share a community."""
    membership = pl.DataFrame(
        {"account": [a for c in clusters for a in c], "cluster": [i for i, c in enumerate(clusters) for _ in c]},
        schema={"account": pl.String, "cluster": pl.Int64},
    )
    return (
        edges.join(membership.rename({"account": "a", "cluster": "ca"}), on="a")
        .join(membership.rename({"account": "b", "cluster": "cb"}), on="b")
        .filter(pl.col("ca") == pl.col("cb"))
        .drop("weight", "kinds")
        .explode("links")
        .unnest("links")
    )


def core_members(edges: pl.DataFrame, clusters: list[list[str]], rules: ClusterRules) -> list[list[str]]:
    """Each community without the accounts tied to it by fewer operator kinds than its typical member.

    A ring's members share many operator signals with each other (funding, mailbox shape,
    restarts, template); an honest account that happens to share a popular template and a
    restart time with part of a ring is tied by two. A kind counts for a member when it ties
    the member to at least two others. A member stays with at least
    ``min_strong_kinds`` such operator kinds among its links inside, and at least the community's
    median minus one; the peeling repeats until no member drops, so nobody stays on the
    strength of links to accounts that were dropped."""
    stable: list[list[str]] = []
    todo = [list(c) for c in clusters]
    while todo:  # peel until stable: dropping one account can leave another tied by fewer kinds
        before = {tuple(c) for c in todo}
        pruned = _peel_once(edges, todo, rules)  # each community is peeled on its own links only
        stable += [c for c in pruned if tuple(c) in before]
        todo = [c for c in pruned if tuple(c) not in before]
    return sorted(stable)


def _peel_once(edges: pl.DataFrame, clusters: list[list[str]], rules: ClusterRules) -> list[list[str]]:
    if not clusters:
        return clusters
    inside = _inside_links(edges, clusters).filter(pl.col("kind").is_in(STRONG_KINDS))
    ties = pl.concat(
        [inside.select("ca", pl.col(c).alias("account"), "kind", pl.col(o).alias("partner")) for c, o in (("a", "b"), ("b", "a"))]
    ).unique()
    # a kind counts for a member when it ties it to two other members: one shared value with one
    # neighbour is what households and popular configurations give
    kinds = ties.group_by("ca", "account", "kind").agg(pl.len().alias("partners")).filter(pl.col("partners") >= 2)
    per_member = kinds.group_by("ca", "account").agg(pl.len().alias("kinds"))
    per_member = per_member.with_columns(pl.col("kinds").median().over("ca").alias("typical"))
    keep = per_member.filter(
        (pl.col("kinds") >= rules.min_strong_kinds) & (pl.col("kinds") >= pl.col("typical") - 1)
    )  # fmt: skip
    kept = keep.group_by("ca").agg(pl.col("account").sort())
    pruned = {r["ca"]: r["account"] for r in kept.iter_rows(named=True)}
    return sorted(m for i in range(len(clusters)) if len(m := pruned.get(i, [])) >= rules.min_accounts)


def cluster_id(members: list[str]) -> str:
    return "syb-" + hashlib.sha256("\n".join(members).encode()).hexdigest()[:12]


def score_clusters(edges: pl.DataFrame, clusters: list[list[str]], rules: ClusterRules) -> pl.DataFrame:
    """One row per community: id, members, score, is_sybil, and the evidence as a short story."""
    if not clusters:
        return pl.DataFrame(schema={"cluster_id": pl.String, "members": pl.List(pl.String), "score": pl.Float64,
                                    "is_sybil": pl.Boolean, "evidence": pl.String})  # fmt: skip
    inside = _inside_links(edges, clusters)
    holders = pl.concat(  # who holds which linking value inside each community
        [inside.select(pl.col("ca").alias("cluster"), "kind", "value", "n", pl.col(c).alias("account")) for c in ("a", "b")]
    ).unique()
    coverage = holders.select("cluster", "kind", "account").unique().group_by("cluster", "kind").agg(pl.len().alias("covered"))
    # values held (almost) only inside the community: an operator's mark, not a crowd's habit
    strong_holders = holders.filter(pl.col("kind").is_in(STRONG_KINDS))
    exclusive = (
        strong_holders.group_by("cluster", "kind", "value")
        .agg(pl.len().alias("inside"), pl.col("n").first())
        .filter(pl.col("inside") >= rules.exclusive_share * pl.col("n"))
        .join(strong_holders, on=["cluster", "kind", "value"])
        .group_by("cluster", "kind")
        .agg(pl.col("account").n_unique().alias("covered"))
    )
    examples = (
        # weights are float sums whose last bits depend on summation order: round them, and break
        # ties by value, so the example (and the evidence text) is the same run to run
        inside.with_columns(pl.col("weight").round(9).alias("weight_key"))
        .sort(["weight_key", "value"], descending=[True, False], maintain_order=True)
        .group_by("ca", "kind", maintain_order=True)
        .agg(pl.len().alias("pairs"), pl.col("value").first().alias("value"), pl.col("n").first().alias("n"))
        .rename({"ca": "cluster"})
    )
    rows = []
    for i, members in enumerate(clusters):
        size = len(members)
        cov = {r["kind"]: r["covered"] / size for r in coverage.filter(pl.col("cluster") == i).iter_rows(named=True)}
        score = 1.0
        for kind, share in cov.items():
            score *= 1 - KINDS[kind][0] * share
        score = 1 - score
        strong = [k for k in STRONG_KINDS if cov.get(k, 0) >= rules.min_coverage]
        excl = {r["kind"]: r["covered"] / size for r in exclusive.filter(pl.col("cluster") == i).iter_rows(named=True)}
        # in a community of a few, values held only inside it are how the community was found,
        # not evidence beyond it (three datacenter operators with one email style and one server model)
        marked = (
            sorted(k for k, share in excl.items() if share >= rules.exclusive_coverage)
            if size >= rules.marks_min_accounts
            else []
        )
        is_sybil = (
            size >= rules.min_accounts
            and len(strong) >= rules.min_strong_kinds
            and (score >= rules.min_score or len(marked) >= rules.min_strong_kinds)
        )
        links = []
        for r in examples.filter(pl.col("cluster") == i).sort(["pairs", "kind"], descending=[True, False]).iter_rows(named=True):
            links.append({"kind": r["kind"], "pairs": r["pairs"], "coverage": round(cov.get(r["kind"], 0), 2),
                          "example": r["value"], "accounts_holding_it": r["n"]})  # fmt: skip
        story = (
            f"{size} accounts; "
            + "; ".join(
                f"{l['kind']} links {l['pairs']} pairs covering {l['coverage']:.0%} "
                f"(e.g. {l['example']!s:.40} held by {l['accounts_holding_it']} accounts)"
                for l in links[:5]
            )  # fmt: skip
        )
        evidence = {"story": story, "strong_kinds": strong, "exclusive_kinds": marked, "links": links, "accounts": members[:50]}
        rows.append({"cluster_id": cluster_id(members), "members": members, "score": round(score, 4),
                     "is_sybil": is_sybil, "evidence": json.dumps(evidence)})  # fmt: skip
    return pl.DataFrame(rows)
