"""Communities in the account graph, and how strongly each one looks like one operator.

The edges are the pairs ``build_account_graph`` kept (links adding up to ``min_edge_weight``,
two strong kinds shared, or a value shown to mark a group); the graph splits into connected
components, and each is split with Louvain (networkx, fixed seed: the same graph gives the same
clusters), so a weak bridge does not merge two groups. Louvain also cuts one ring into pieces
when that raises modularity a little (a ring of 68 accounts with 90% of its pairs linked came
out in four parts with 83-93% of the pairs *between* them linked; a ring of 112 whose pairs are
made in blocks, in seven): two parts are joined again, densest link first, while the density
of links between them is at least ``merge_ratio`` of the denser part's own, counting only links
with more than a time in common (``CLOCK_KINDS``: two rings with their own templates whose
scripts restart in the same half hour are linked by nearly every pair between them). Pieces of
one ring measured 0.2-1.0 (most above 0.3), two rings bridged by a few coincidences 0.04, and
rings sharing a template or honest accounts next to a ring 0.15-0.47: the last are what peeling
(``core_members``) and the reject rule are for, and two large parts each held together by
things of its own of two kinds (a funder and a referrer's code, ...) are never joined
(``_own_operators``). A community is scored by which kinds of link hold it together and how
much of it each covers (after ``core_members`` has dropped accounts tied to it by fewer operator
kinds than its typical member):

    score = 1 - prod_k (1 - strength_k * coverage_k)

where coverage_k is the share of members with a link of kind k inside the community. It is a
sybil ring only with ``min_strong_kinds`` strong kinds (funding, email, bulk email pattern,
restarts, host, GPU) each covering at least ``min_coverage`` of it, and ``score >=
min_score`` or, in a community of at least ``marks_min_accounts``, ``min_strong_kinds``
operator kinds that *mark* it (values held ``exclusive_share`` or more inside it, covering
``exclusive_coverage`` of its members: its own
template, its vendor's mailbox shape; honest crowds share their popular values with many
outsiders), or one mark and ``marked_strong_kinds`` strong kinds each covering
``min_coverage`` (a template ring before its first restart: its funders and mailbox shapes
cover part of it, so the score stays below ``min_score``). Sharing an IP, an ASN or a referral
never suffices (NAT, families, labs), nor do a server image and a reboot time (``FLEET_KINDS``:
a hosting facility's tenants): the accounts' own tie must cover ``min_coverage`` of it, an
identity shared (a funder, a mailbox, a host, a card) or a mailbox shape held by at least
``min_accounts`` members (a vendor's shape, not a pair's coincidence; and not behind one shared
address, ``SITE_KINDS``, where the shape is an institution's domain). A few accounts that all
connect from one address, or are all paid to one wallet (at most ``household_accounts``), are a
home, whatever else they share:
a parent funds the family's stakes, built its machines alike and set one reboot timer; unless
half of them share a machine (a host fingerprint): a family's members each run their own, and
one rig's GPUs registered under several accounts are one owner's; or half of them hold a
machine, card or address in turn (``TURN_KINDS``, ``detectors.timeshare``): a home's members are
online together or on their daily routines, not in shifts that keep coming back. So is a group
at one site, half of it with mailboxes at a domain only an accredited institution can register
(``pipelines.sybil.institutions``: ``.edu``, ``.ac.uk``, ...), with the same exceptions: a
university lab whose department wallet paid forty students' stakes on one workstation image,
staked by one administrator in minutes, is the institution's administration (a ninth network
written by others had such a lab rejected whole); a farmer cannot buy mailboxes there. So are
accounts each running a fleet at a site of its own, no owner holding more than
``site_accounts`` of them (``operator_sites``): a company's sites, paid by its treasury, on its
server build and mail domain; a ring spreads its cards thin over many accounts. A mail vendor's
domain is nobody's own (``contract.FREE_MAIL``), however few of the network's accounts hold it.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import networkx as nx
import numpy as np
import polars as pl
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from pipelines.sybil.institutions import is_institutional
from pipelines.sybil.links import (
    ANY_DOMAIN_SHAPE,
    BURST_KINDS,
    CLOCK_KINDS,
    FLEET_KINDS,
    KINDS,
    PAYMENT_KINDS,
    SHAPE_KINDS,
    SITE_KINDS,
    SOURCES,
    STRONG_KINDS,
    TURN_KINDS,
)

REFERRAL_KINDS = ("referral",)
"""Who referred an account: a fact of its sign-up, not of an operator's automation, so it never
makes a ring or counts among a member's kinds. Where a ring's own account referred its members,
it is one of the setup facts ``_tie_chance`` measures against the outsiders (a popular referrer's
code, held by many strangers outside the community, barely lowers the chance)."""


@dataclass(frozen=True)
class ClusterRules:
    merge_ratio: float = 0.3
    broad_share: float = 0.8
    min_accounts: int = 3
    min_score: float = 0.8
    min_strong_kinds: int = 2
    min_coverage: float = 0.5
    exclusive_share: float = 0.8
    exclusive_coverage: float = 0.8
    marks_min_accounts: int = 10
    marked_strong_kinds: int = 3
    household_accounts: int = 6
    site_accounts: int = 6
    site_devices: int = 4
    member_chance: float = 0.01
    resolution: float = 1.0
    seed: int = 0


def communities(edges: pl.DataFrame, rules: ClusterRules) -> list[list[str]]:
    """Account communities (each sorted, the list sorted) from ``a, b, weight, kinds`` edges.

    Louvain walks sets of nodes, and Python orders a set of strings by a hash salted per
    process: the graph is built over integer node ids (sorted accounts, sorted edges), so the
    same edges give the same clusters in every run."""
    names, index, ids = _indexed(edges)
    if not names:
        return []
    found = []
    shapes: dict[tuple, list[list[int]]] = {}
    held = functools.cache(lambda: _identities(edges, index))  # read once, and only if two large parts are weighed
    for nodes, rows in _components(ids, len(names), rules.min_accounts):
        parts = _component_louvain(nodes, rows, rules, shapes)
        parts = _merge_parts([(u, v, o) for u, v, _, o in rows], [sorted(p) for p in parts], rules.merge_ratio,
                             lambda i, j: _own_operators(i, j, held, rules))  # fmt: skip
        found += [sorted(names[i] for i in p) for p in parts if len(p) >= rules.min_accounts]
    return sorted(found)


def _indexed(edges: pl.DataFrame, names: list[str] | None = None) -> tuple[list[str], pl.DataFrame, pl.DataFrame]:
    """The accounts (``names``, sorted; by default those the edges tie), ``name, i`` (their
    integer ids) and the edges as ``a, b, weight, owned, u, v`` in sorted order; ``owned``: the
    pair is tied by more than the clock."""
    names = names or sorted(set(edges["a"].to_list()) | set(edges["b"].to_list()))
    if "kinds" in edges.columns:  # a pair tied by more than the clock can join two Louvain parts
        edges = edges.with_columns(owned=pl.col("kinds").list.set_difference(list(CLOCK_KINDS)).list.len() > 0)
    else:
        edges = edges.with_columns(owned=pl.lit(True))
    index = pl.DataFrame({"name": names, "i": range(len(names))}, schema={"name": pl.String, "i": pl.Int64})
    ids = (
        edges.select("a", "b", "weight", "owned")
        .sort("a", "b")
        .join(index.rename({"name": "a", "i": "u"}), on="a", maintain_order="left")
        .join(index.rename({"name": "b", "i": "v"}), on="b", maintain_order="left")
    )
    return names, index, ids


def rejoin_cores(
    edges: pl.DataFrame, cores: list[list[str]], origins: list[list[str]], rules: ClusterRules
) -> tuple[list[list[str]], list[list[str]]]:
    """Cores (``core_members``) of different communities joined again by ``_merge_parts``'s rule
    (links between them as dense as inside, counting only links with more than a time in common;
    never two operators of their own, ``_own_operators``), with their communities (``origins``)
    joined alike; the rest as they were.

    Louvain can put a piece of a ring with honest accounts tied to it by the clock (a launch
    hour's stakes, paired in blocks) and a funder some of them share; the honest accounts dilute
    the links between that piece and the rest of the ring below the merge ratio. Peeling drops
    them, and the piece is then what it was: part of the ring (a benchmark network's ring of 156,
    found as 140 and 15, their pairs between tied by its referrer and template as densely as
    inside)."""
    if len(cores) < 2:
        return cores, origins
    names = sorted({a for c in cores for a in c})
    touching = edges.filter(pl.col("a").is_in(names) | pl.col("b").is_in(names))
    _, index, ids = _indexed(touching.filter(pl.col("a").is_in(names) & pl.col("b").is_in(names)), names)
    at = {name: i for i, name in enumerate(names)}
    held = functools.cache(lambda: _identities(touching, index))  # read only if two large cores are weighed
    merged = _merge_parts(ids.select("u", "v", "owned").iter_rows(), [[at[a] for a in c] for c in cores],
                          rules.merge_ratio, lambda i, j: _own_operators(i, j, held, rules))  # fmt: skip
    if len(merged) == len(cores):
        return cores, origins
    joined = [sorted(names[i] for i in p) for p in merged]
    owner = {a: k for k, c in enumerate(joined) for a in c}
    groups: dict[int, list[str]] = {}
    untouched = []
    for origin in origins:
        k = next((owner[a] for a in origin if a in owner), None)
        if k is None:
            untouched.append(origin)
        else:
            groups.setdefault(k, []).extend(origin)
    return sorted(joined), sorted(untouched + [sorted(g) for g in groups.values()])


def _component_louvain(nodes: list[int], rows: list[tuple], rules: ClusterRules, shapes: dict) -> list[list[int]]:
    """Louvain's parts of one component (``nodes`` in walking order, ``rows`` its edges).

    Louvain's moves depend on the order it walks nodes and neighbours and on the weights, never
    on the nodes' labels (its sums are of exact integers, see ``_louvain``), so a component of
    the same shape as one already split (the same edges between the same positions, with the
    same weights, in the same order) splits the same way: ``shapes`` keeps each shape's parts by
    position. Most components are a few accounts in recurring shapes (a 100k-device hour: 2,803
    components, 918 shapes)."""
    at = {node: i for i, node in enumerate(nodes)}
    shape = (len(nodes), tuple((at[u], at[v], w) for u, v, w, _ in rows))
    if (parts := shapes.get(shape)) is None:
        graph = nx.Graph()
        graph.add_nodes_from(range(len(nodes)))
        graph.add_weighted_edges_from(shape[1])
        parts = shapes[shape] = [sorted(p) for p in _louvain(graph, rules.resolution, rules.seed)]
    return [[nodes[i] for i in p] for p in parts]


def _components(ids: pl.DataFrame, n: int, min_size: int) -> Iterator[tuple[list[int], list[tuple]]]:
    """Connected components of at least ``min_size`` nodes: each one's nodes, in the order
    networkx's ``graph.subgraph(sorted(component))`` of the whole graph walks them, and its
    ``(u, v, weight, owned)`` edges in the whole graph's (sorted) order.

    Louvain visits nodes and neighbours in that order and breaks ties by it, so a component
    built on its own in this order gives the clusters that the subgraph view gave, without the
    view's per-node filtering. The view walks the component's node set (a Python set of ints,
    iterated in hash-table order) when the component holds fewer than half the graph's nodes,
    else the graph's nodes in insertion order; each node's neighbours come in the order its
    edges were added."""
    u, v = ids["u"].to_numpy(), ids["v"].to_numpy()
    matrix = coo_matrix((np.ones(len(u), dtype=np.int8), (u, v)), shape=(n, n))
    labels = connected_components(matrix, directed=False)[1]
    big = np.bincount(labels) >= min_size
    interleaved = np.column_stack([u, v]).ravel()  # nodes in the order add_edges_from met them
    first_seen = interleaved[np.sort(np.unique(interleaved, return_index=True)[1])]
    first_seen = first_seen[big[labels[first_seen]]]
    if not len(first_seen):
        return
    first_seen = first_seen[np.argsort(labels[first_seen], kind="stable")]  # by component, insertion order within
    node_groups = np.split(first_seen, np.flatnonzero(np.diff(labels[first_seen])) + 1)
    keep = np.flatnonzero(big[labels[u]])
    keep = keep[np.argsort(labels[u][keep], kind="stable")]  # by component, each in the sorted order
    edge_labels = labels[u][keep]
    starts = np.searchsorted(edge_labels, labels[[g[0] for g in node_groups]]).tolist()
    rows = list(zip(u[keep].tolist(), v[keep].tolist(), ids["weight"].to_numpy()[keep].tolist(),
                    ids["owned"].to_numpy()[keep].tolist(), strict=True))  # fmt: skip
    ends = [*starts[1:], len(rows)]
    for members, start, end in zip(node_groups, starts, ends, strict=True):
        members = members.tolist()
        yield (list(set(sorted(members))) if 2 * len(members) < n else members), rows[start:end]


EXACT_TOTAL = 2**25
"""Louvain runs on integer weights summing to this power of two (see ``_louvain``)."""


def _louvain(graph: nx.Graph, resolution: float, seed: int) -> list[set[int]]:
    """networkx Louvain on weights that make its arithmetic exact.

    Louvain moves a node while the modularity gain is > 0. On float weights the running degree
    sums drift, and on a near-clique a node can move back and forth on gains of 1e-17 forever
    (it did: a 3,000-account network hung in ``louvain_communities``). Scaled to integers that sum
    to a power of two (a dummy edge pads the rest) every gain is an exact dyadic number, each move
    raises modularity, and the loop ends. Weights lose nothing that matters: 2**25 units over
    the component's total weight."""
    total = graph.size(weight="weight")
    if total <= 0:
        return [set(graph)]
    scale = EXACT_TOTAL / total
    exact = nx.Graph()
    exact.add_nodes_from(graph)
    exact.add_weighted_edges_from((u, v, int(w * scale)) for u, v, w in graph.edges(data="weight"))
    pad = EXACT_TOTAL - int(exact.size(weight="weight"))
    if pad > 0:  # two dummy nodes that only hold the remainder of the total
        exact.add_edge(-1, -2, weight=pad)
    parts = nx.community.louvain_communities(exact, weight="weight", resolution=resolution, seed=seed)
    return [p for p in parts if -1 not in p and -2 not in p]


IDENTITY_KINDS = ("funding", "email", "wallet", "host", "gpu")
"""What names one owner: a wallet that paid the stakes, a mailbox, a payout wallet, a machine, a
card. Accounts tied by none of them are separate owners, however alike their builds and mailbox
shapes."""


HELD_KINDS = (*IDENTITY_KINDS, "referral", "host_turns", "gpu_turns", "ip_turns")
"""Kinds whose value is one thing held (a funder, a mailbox, a payout wallet, a machine, a card,
a referrer's code, a rota), not a likeness (a template, a mailbox shape), a time or a place."""


def _identities(edges: pl.DataFrame, index: pl.DataFrame) -> dict[int, frozenset[str]]:
    """Each account's held values (``HELD_KINDS``) that tie it to another account,
    by integer node id; empty where the edges carry no ``links``."""
    if "links" not in edges.columns or not edges.height:
        return {}
    values = (
        edges.select("a", "b", "links")
        .explode("links")
        .unnest("links")
        .filter(pl.col("kind").is_in(HELD_KINDS))
        .select(pl.concat_list("a", "b").alias("name"), (pl.col("kind") + "|" + pl.col("value")).alias("value"))
        .explode("name")
        .unique()
        .join(index, on="name")
        .group_by("i")
        .agg("value")
    )
    return {i: frozenset(v) for i, v in values.iter_rows()}


def _own_operators(
    first: list[int], second: list[int], held: Callable[[], dict[int, frozenset[str]]], rules: ClusterRules
) -> bool:
    """Whether two Louvain parts are two operators: each holds ``marks_min_accounts`` or more
    accounts and is held together by things of its own of two kinds (``HELD_KINDS``: a funder
    and a referrer's code, a funder and a mailbox, ...), one held by ``exclusive_coverage`` of
    its members, the other by ``min_coverage``, each by at most the rest of that share
    (``1 - exclusive_coverage``) of the other part; and nothing held is shared by more than that
    rest of both. Two rings that bought one vendor's VM template and mailbox shape are tied by
    those likenesses across nearly every pair, as pieces of one ring are; each ring's own
    referrer and funder say which it is (a benchmark network's rings of 85 and 83 accounts, each
    referred by an account of its own and funded by its own wallet, were found as one). A funder
    of its own is not enough: one operator spreads its stakes over several wallet chains (a
    benchmark ring's two chains from one boss, its halves tied by nothing else of their own). A
    ring's branches, each with its own intermediate wallet, share the wallet that funded those;
    pieces of one ring split along small funders have nothing covering either piece: all of
    these stay joinable."""
    if min(len(first), len(second)) < rules.marks_min_accounts:
        return False
    values = held()  # each account's held values, read only now

    def coverage(part: list[int]) -> dict[str, float]:
        counts: dict[str, int] = {}
        for node in part:
            for value in values.get(node, ()):
                counts[value] = counts.get(value, 0) + 1
        return {value: n / len(part) for value, n in counts.items()}

    one, other = coverage(first), coverage(second)
    stray = 1 - rules.exclusive_coverage
    if any(c > stray and other.get(v, 0.0) > stray for v, c in one.items()):
        return False

    def own(mine: dict[str, float], theirs: dict[str, float]) -> bool:
        kept = {v: c for v, c in mine.items() if theirs.get(v, 0.0) <= stray}
        kinds = {v.split("|", 1)[0] for v, c in kept.items() if c >= rules.min_coverage}
        return max(kept.values(), default=0.0) >= rules.exclusive_coverage and len(kinds) >= 2

    return own(one, other) and own(other, one)


def _merge_parts(
    edges: Iterable[tuple[int, int, bool]],
    parts: list[list[int]],
    ratio: float,
    apart: Callable[[list[int], list[int]], bool] = lambda i, j: False,
) -> list[list[int]]:
    """Join Louvain parts, densest link first, while the links between two parts are at least
    ``ratio`` times as dense as inside the denser of the two (pieces of one near-clique), unless
    ``apart`` says the two are two operators (``_own_operators``). Only links with more than a
    time in common count (``edges``: ``u, v, owned``; see ``CLOCK_KINDS``). Link counts between
    parts are taken once and updated as parts merge."""
    members = {i: sorted(p) for i, p in enumerate(sorted(parts))}
    where = {node: i for i, part in members.items() for node in part}
    inside = dict.fromkeys(members, 0)
    between: dict[int, dict[int, int]] = {i: {} for i in members}
    for u, v, owned in edges:
        if not owned:
            continue
        i, j = where[u], where[v]
        if i == j:
            inside[i] += 1
        else:
            between[i][j] = between[i].get(j, 0) + 1
            between[j][i] = between[j].get(i, 0) + 1

    def density(i: int) -> float:
        size = len(members[i])
        return inside[i] / (size * (size - 1) / 2) if size > 1 else 1.0

    while True:
        best = None
        for i in sorted(between):
            for j, n in sorted(between[i].items()):
                if j <= i:
                    continue
                reference = max(density(i), density(j))  # 0: both parts are held together by the clock alone
                rel = n / (len(members[i]) * len(members[j])) / reference if reference > 0 else 1.0
                if rel >= ratio and (best is None or rel > best[0]) and not apart(members[i], members[j]):
                    best = (rel, i, j)
        if best is None:
            return sorted(members.values())
        _, i, j = best
        members[i] = sorted(members[i] + members.pop(j))
        inside[i] += inside.pop(j) + between[i].pop(j)
        for k, n in between.pop(j).items():
            if k == i:
                continue
            between[k].pop(j)
            between[i][k] = between[i].get(k, 0) + n
            between[k][i] = between[k].get(i, 0) + n


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


def _without_restated_payments(inside: pl.DataFrame) -> pl.DataFrame:
    """``inside`` without the stake bursts of pairs a funder ties too (``PAYMENT_KINDS``): one
    wallet staking for several accounts in one act is one fact, so a staking service's customers
    are tied by its wallet, not by its wallet and its batches."""
    funding, burst = PAYMENT_KINDS
    paid = pl.col("kind").eq(funding).any().over("ca", "a", "b")
    return inside.filter(~((pl.col("kind") == burst) & paid))


def core_members(
    edges: pl.DataFrame, clusters: list[list[str]], rules: ClusterRules, accounts: int | None = None
) -> list[list[str]]:
    """Each community without the accounts tied to it by fewer operator kinds than its typical member.

    A ring's members share many operator signals with each other (funding, mailbox shape,
    restarts, template); an honest account that happens to share a popular template and a
    restart time with part of a ring is tied by two. A kind counts for a member when it ties
    the member to at least two others. A member stays with at least
    ``min_strong_kinds`` such operator kinds among its links inside, and at least the community's
    median minus one, or ``min_strong_kinds`` kinds that each tie it to ``broad_share`` of the
    other members (a ring member whose mailbox and funding look like nobody's but who shares the
    ring's template and restart time with nearly all of it; a coincidence ties an honest account
    to the part of a ring that shares its restart bin and popular values, not to nearly all of
    it), or ``min_strong_kinds`` kinds each through one of the community's marks (its template
    and its vendor's finer mailbox shape: values nearly only the community holds; an honest
    neighbour holds one by chance, two at once are the ring's recipe), or, given the number of
    ``accounts``, ``min_strong_kinds`` kinds that are facts of its setup (funding, machine image,
    its referrer; not a mailbox shape or a time) whose ties outsiders would show at most
    ``member_chance`` times by chance (``_tie_chance``; a careful ring's community of 14 on a
    third network written by others, each member funded by one of two wallets of its own and on
    a template 15 accounts hold, 9 of them inside, was dissolved and the ring paid). Otherwise a
    member tied by only ``min_strong_kinds`` kinds also needs one of them to be *broad* or to be
    one of the community's marks (a value of ``marks_min_accounts`` or more holders, ``exclusive_share`` of
    them inside): two coincidences with part of a ring, a popular mailbox
    shape and a restart bin, are what an honest neighbour of a loosely tied ring has. A
    community this would dissolve first loses only its members tied by fewer than
    ``min_strong_kinds`` kinds, and is peeled again: an honest neighbour that Louvain put into a
    small ring's community made each ring member's ties miss *broad* by one (seed 16, network
    16: a ring of 5 never found). The peeling repeats until no member drops, so nobody stays on
    the strength of links to accounts that were dropped. The marks are those of the community
    as found (``community_marks``), and a mark ties its holders inside to each other whether or
    not the graph made all their pairs (a value of more than ``block`` holders is paired in
    blocks)."""
    stable: list[list[str]] = []
    todo = [list(c) for c in clusters]
    marks = community_marks(edges, clusters, rules)
    origin = {a: i for i, c in enumerate(clusters) for a in c}
    while todo:  # peel until stable: dropping one account can leave another tied by fewer kinds
        before = {tuple(c) for c in todo}
        pruned = _peel_once(edges, todo, rules, marks, origin, accounts)  # each community is peeled on its own links only
        stable += [c for c in pruned if tuple(c) in before]
        todo = [c for c in pruned if tuple(c) not in before]
    return sorted(stable)


def community_marks(edges: pl.DataFrame, clusters: list[list[str]], rules: ClusterRules) -> pl.DataFrame:
    """``origin, kind, value``: each community's marks, operator values of at least
    ``marks_min_accounts`` holders, ``exclusive_share`` of them inside it (its own template, its
    vendor's mailbox shape). Measured once on the communities as found: peeling drops ring
    members whose other ties have not shown yet, and counted as outsiders they would take from
    the ring the very value that marks it (seed 17, network 19: a template ring of 45 peeled to
    nothing over 13 hours). Here a time (``CLOCK_KINDS``) is no mark: an honest account restarts
    in a ring's half-hour by chance (seed 17, network 15: two home accounts held for 6 hours).
    Scoring still counts a restart time held only inside as exclusive (``score_clusters``)."""
    inside = _inside_links(edges, clusters).filter(~pl.col("kind").is_in(CLOCK_KINDS))
    return _exclusive_values(inside, rules, rules.marks_min_accounts)


def _exclusive_values(inside: pl.DataFrame, rules: ClusterRules, min_holders: int = 1) -> pl.DataFrame:
    """``origin, kind, value``: operator values held ``exclusive_share`` or more inside the
    community their links are in (``inside``: ``_inside_links``)."""
    return (
        pl.concat(
            [inside.select(pl.col("ca").alias("origin"), "kind", "value", "n", pl.col(c).alias("account")) for c in ("a", "b")]
        )
        .filter(pl.col("kind").is_in(STRONG_KINDS))
        .unique()
        .group_by("origin", "kind", "value")
        .agg(pl.len().alias("inside"), pl.col("n").first())
        .filter((pl.col("n") >= min_holders) & (pl.col("inside") >= rules.exclusive_share * pl.col("n")))
        .select("origin", "kind", "value")
    )


def _peel_once(
    edges: pl.DataFrame,
    clusters: list[list[str]],
    rules: ClusterRules,
    marks: pl.DataFrame,
    origin: dict[str, int],
    accounts: int | None = None,
) -> list[list[str]]:
    if not clusters:
        return clusters
    # operator kinds, and who referred a member (a fact of its setup, never one of its kinds: _tie_chance)
    tied = _inside_links(edges, clusters).filter(pl.col("kind").is_in(STRONG_KINDS + REFERRAL_KINDS))
    inside = tied.filter(pl.col("kind").is_in(STRONG_KINDS))
    partners = _ties(tied).group_by("ca", "account", "kind").agg(pl.len().alias("partners"))
    holders = pl.concat([inside.select("ca", "kind", "value", pl.col(c).alias("account")) for c in ("a", "b")]).unique()
    scope = pl.DataFrame(
        {"ca": range(len(clusters)), "origin": [origin[c[0]] for c in clusters]}, schema={"ca": pl.Int64, "origin": pl.Int64}
    )
    marked_holders = holders.join(scope, on="ca").join(marks, on=["origin", "kind", "value"])
    # the holders of a mark are tied by it whether or not the graph made all their pairs: a value
    # of more than `block` holders is paired in blocks (links.py), so a template held by 45 ring
    # members gave each only 21-28 partners, and "broad" (80% of the others) could never hold.
    # Popular values keep counting by partners: holding one with a whole ring is a coincidence.
    reach = (
        marked_holders.group_by("ca", "kind", "value")
        .agg(pl.len().alias("holders_inside"))
        .join(marked_holders.select("ca", "kind", "value", "account"), on=["ca", "kind", "value"])
        .group_by("ca", "account", "kind")
        .agg((pl.col("holders_inside").max() - 1).alias("co_holders"))
    )
    # a kind counts for a member when it ties it to two other members: one shared value with one
    # neighbour is what households and popular configurations give
    kinds = (
        partners.filter(pl.col("kind").is_in(STRONG_KINDS))
        .join(reach, on=["ca", "account", "kind"], how="left")
        .with_columns(pl.max_horizontal("partners", "co_holders").alias("partners"))
        .filter(pl.col("partners") >= 2)
    )
    sizes = pl.DataFrame(
        {"ca": range(len(clusters)), "size": [len(c) for c in clusters]}, schema={"ca": pl.Int64, "size": pl.Int64}
    )
    kinds = kinds.join(sizes, on="ca").with_columns(
        (pl.col("partners") >= rules.broad_share * (pl.col("size") - 1)).alias("broad")
    )
    # the typical member is counted without stake bursts: a member that staked at another time, or
    # not at all, lacks nothing a ring member must have (a launch's stakes tied 55% of a ring's
    # pairs by chance, and the members that had not staked fell below the typical count)
    per_member = kinds.group_by("ca", "account").agg(
        pl.len().alias("kinds"),
        pl.col("broad").sum().alias("broad"),
        (~pl.col("kind").is_in(BURST_KINDS)).sum().alias("kinds_but_bursts"),
    )
    per_member = per_member.with_columns(pl.col("kinds_but_bursts").median().over("ca").alias("typical"))
    marked = marked_holders.group_by("ca", "account").agg(
        pl.len().alias("marks"), pl.col("kind").n_unique().alias("marked_kinds")
    )
    per_member = per_member.join(marked, on=["ca", "account"], how="left").with_columns(
        pl.col("marks", "marked_kinds").fill_null(0)
    )
    per_member = per_member.join(
        _tie_chance(
            tied,
            pl.concat(
                [
                    kinds.select("ca", "account", "kind"),
                    partners.filter(pl.col("kind").is_in(REFERRAL_KINDS) & (pl.col("partners") >= 2)).select(
                        "ca", "account", "kind"
                    ),
                ]
            ),
            sizes,
            accounts,
            rules.min_strong_kinds,
        ),
        on=["ca", "account"],
        how="left",
    )
    near_typical = (pl.col("kinds") >= pl.col("typical") - 1) & (
        (pl.col("kinds") > rules.min_strong_kinds) | (pl.col("broad") >= 1) | (pl.col("marks") >= 1)
    )
    keep = per_member.filter(
        (pl.col("kinds") >= rules.min_strong_kinds)
        & (
            near_typical
            | (pl.col("broad") >= rules.min_strong_kinds)
            | (pl.col("marked_kinds") >= rules.min_strong_kinds)
            | (pl.col("chance").fill_null(float("inf")) <= rules.member_chance)
        )
    )
    kept = keep.group_by("ca").agg(pl.col("account").sort())
    pruned = {r["ca"]: r["account"] for r in kept.iter_rows(named=True)}
    # a community the rule would dissolve first loses only the members that cannot stay (fewer
    # than min_strong_kinds kinds): counted in its size, they can make a small ring's members
    # each miss "broad", and the rule is then applied again to the rest
    could_stay = per_member.filter(pl.col("kinds") >= rules.min_strong_kinds).group_by("ca").agg(pl.col("account").sort())
    for r in could_stay.iter_rows(named=True):
        i, fit = r["ca"], r["account"]
        if len(pruned.get(i, [])) < rules.min_accounts <= len(fit) < len(clusters[i]):
            pruned[i] = fit
    return sorted(m for i in range(len(clusters)) if len(m := pruned.get(i, [])) >= rules.min_accounts)


def _ties(inside: pl.DataFrame) -> pl.DataFrame:
    """``ca, account, kind, partner``: each member's partners inside its community, per kind."""
    return pl.concat(
        [inside.select("ca", pl.col(c).alias("account"), "kind", pl.col(o).alias("partner")) for c, o in (("a", "b"), ("b", "a"))]
    ).unique()


def _tie_chance(
    inside: pl.DataFrame, kinds: pl.DataFrame, sizes: pl.DataFrame, accounts: int | None, min_kinds: int
) -> pl.DataFrame:
    """``ca, account, chance``: how many of the ``accounts`` outside a community would share a
    member's ties to it by chance (``membership_chance``'s measure, against the community), for
    members tied by ``min_kinds`` kinds that are facts of one setup (who funded it, its machine
    image, who referred it: ``REFERRAL_KINDS``), not a likeness or a time: a mailbox's finest
    shapes are rare by construction (a name and a digit count), and a clock is shared by cron
    jobs. Per such kind that ties it to two others, the share of outsiders holding its
    least-shared tying value of that kind, multiplied over kinds, times the outsiders. Empty
    without ``accounts``."""
    if not accounts:
        return pl.DataFrame(schema={"ca": pl.Int64, "account": pl.String, "chance": pl.Float64})
    facts = pl.col("kind").is_in(SHAPE_KINDS + CLOCK_KINDS).not_()
    held = pl.concat(
        [inside.filter(facts).select("ca", "kind", "value", "n", pl.col(c).alias("account")) for c in ("a", "b")]
    ).unique()
    chance = _chance_of_ties(held, kinds, sizes, accounts, "ca", "account")
    return chance.filter(pl.col("kinds") >= min_kinds).drop("kinds")


def _chance_of_ties(
    held: pl.DataFrame, counted: pl.DataFrame, sizes: pl.DataFrame, accounts: int, group: str, member: str
) -> pl.DataFrame:
    """``group, member, chance, kinds``: per member of a group, the product over its ``counted``
    kinds of the share of the ``accounts`` outside the group that hold its least-shared value of
    that kind (``held``: ``group, member, kind, value, n``, ``n`` the value's holders), times the
    outsiders; and how many kinds went into it."""
    share = (
        held.group_by(group, "kind", "value")
        .agg(pl.col("n").max(), pl.col(member).n_unique().alias("inside"))
        .join(sizes, on=group)
        .with_columns(outsiders=(accounts - pl.col("size")).clip(lower_bound=1))
        .with_columns(q=(pl.col("n") - pl.col("inside")).clip(lower_bound=0) / pl.col("outsiders"))
    )
    return (
        held.join(share, on=[group, "kind", "value"])
        .group_by(group, member, "kind")
        .agg(pl.col("q").min(), pl.col("outsiders").first())
        .join(counted.select(group, member, "kind"), on=[group, member, "kind"])
        .group_by(group, member)
        .agg((pl.col("q").product() * pl.col("outsiders").first()).alias("chance"), pl.len().alias("kinds"))
    )


def ring_edges(edges: pl.DataFrame, rings: pl.DataFrame) -> pl.DataFrame:
    """The edges whose two accounts are members of one ring (``rings``: ``cluster_id,
    account_id``), with that ring's ``cluster_id``."""
    members = rings.select("cluster_id", "account_id")
    return (
        edges.join(members.rename({"account_id": "a"}), on="a")
        .join(members.rename({"account_id": "b", "cluster_id": "cluster_b"}), on="b")
        .filter(pl.col("cluster_id") == pl.col("cluster_b"))
        .drop("cluster_b")
    )


def membership_chance(edges: pl.DataFrame, rings: pl.DataFrame, accounts: int) -> pl.DataFrame:
    """``cluster_id, account_id, chance``: for each ring member, how many of the ``accounts`` outside
    its ring would share its ties to the ring by chance. Per operator kind that ties the member to
    at least two others, the share of the outsiders that hold the member's least-shared tying value
    of that kind; the product over those kinds (taken as independent) times the number of
    outsiders. A ring's own template or funder, held by nobody outside, gives 0; a vendor's
    mailbox shape and a restart bin that a few outsiders each share give a few percent."""
    sizes = rings.group_by("cluster_id").agg(pl.len().alias("size"))
    inside = (
        ring_edges(edges.select("a", "b", "links"), rings)
        .explode("links")
        .unnest("links")
        .filter(pl.col("kind").is_in(STRONG_KINDS))
    )
    ties = pl.concat(
        [inside.select("cluster_id", pl.col(c).alias("account_id"), "kind", "value", "n", pl.col(o).alias("partner"))
         for c, o in (("a", "b"), ("b", "a"))]
    )  # fmt: skip
    counted = ties.group_by("cluster_id", "account_id", "kind").agg(pl.col("partner").n_unique().alias("partners"))
    counted = counted.filter(pl.col("partners") >= 2).select("cluster_id", "account_id", "kind")
    held = ties.select("cluster_id", "account_id", "kind", "value", "n").unique()
    return _chance_of_ties(held, counted, sizes, accounts, "cluster_id", "account_id").drop("kinds")


def _source(kind: str) -> str:
    """The attribute a kind is read from: a mailbox's shapes are the mailbox (``SOURCES``)."""
    return SOURCES.get(kind, kind)


def operator_sites(
    members: list[str], cov: dict[str, float], fleets: dict[str, int], inside: pl.DataFrame, cluster: int, rules: ClusterRules
) -> bool:
    """Whether community ``cluster`` (its links in ``inside``) is operators' sites, one account
    each: every member runs at least ``site_devices`` devices (a multi-GPU server's worth) at an
    address of its own (no address, /24, machine or card shared between members), none reads
    another's mailbox or takes turns on a machine, card or address, and no owner (a group of
    members its shared identities join, ``IDENTITY_KINDS``) has more than ``site_accounts`` of them.

    Honest model: a company with racks in several countries registers one account per site; the
    sites share a treasury that pays their stakes, one server build and the company's mail domain,
    and two companies on a popular build with alike mailbox names fall into one community. A ring
    earns by posing as many small owners, so it spreads its cards thin over many accounts (the
    rings of four independently written networks ran 1-3 devices an account; a fake fleet of eight
    accounts of 12-13 shared hosts and addresses); a few full fleets at sites of their own gain
    nothing by being split, and every device still faces every per-device check."""
    return (
        all(fleets.get(a, 0) >= rules.site_devices for a in members)
        and all(cov.get(k, 0) == 0 for k in ("ip", "subnet", "host", "gpu"))
        and cov.get("email", 0) < rules.min_coverage
        and max((cov.get(k, 0) for k in TURN_KINDS), default=0) == 0
        and max(_owners(inside, cluster, members)) <= rules.site_accounts  # last: it builds a graph
    )


def _each_their_own(cov: dict[str, float], rules: ClusterRules, machines: bool = True) -> bool:
    """Whether a community's members read mail of their own and take no turns on a machine, card or
    address (each under ``min_coverage``), and with ``machines`` each run a machine of their own:
    the exceptions every open group (a home, an institution, a company) is held to."""
    return (
        (not machines or cov.get("host", 0) < rules.min_coverage)
        and cov.get("email", 0) < rules.min_coverage
        and max((cov.get(k, 0) for k in TURN_KINDS), default=0) < rules.min_coverage
    )


def company_office(
    members: list[str], cov: dict[str, float], offices: dict[str, tuple[str, int, int]], rules: ClusterRules
) -> bool:
    """Whether a community is one company's staff at its office: at most ``site_accounts``
    members, every one with a mailbox at one domain whose every holder in the network signed up
    at one site (``offices``: the company's own domain, used from its office), none on another's
    machine or mailbox, none taking turns on a machine, card or address.

    Honest model: a hosting company registers an account for each of a few staff, at the
    company's domain and from the office; the treasury pays their stakes, one of them referred
    the others, and they run the company's server build. A mail vendor's domain (a free or a
    throwaway one) has customers signing up elsewhere; a ring of more than ``site_accounts``
    accounts is not covered, and a few accounts at one site on a domain of their own are the
    same bound a household is (``household_accounts``)."""
    domains = {offices.get(a) for a in members}
    return (
        len(members) <= rules.site_accounts
        and len(domains) == 1
        and None not in domains
        and next(iter(domains))[2] == 1  # type: ignore[index]
        and _each_their_own(cov, rules)
    )


def organisation_fleets(
    members: list[str],
    cov: dict[str, float],
    offices: dict[str, tuple[str, int, int]],
    fleets: dict[str, int],
    rules: ClusterRules,
) -> bool:
    """Whether a community is one organisation's fleets in the open: every member runs at least
    ``site_devices`` devices, ``min_coverage`` of them with a mailbox at one domain of which
    they are ``min_coverage`` of the network's holders or more (its own domain: a mail vendor's
    customers are everywhere; a thirteenth network written by others had one of a company's 25
    rack accounts move to a personal mailbox), none on another's machine or mailbox, none taking
    turns on a machine, card or address.

    Honest model: a hosting company registers an account per region or rack at its own domain
    (``ops-eu-01@``), pays every stake from its treasury, runs one server build and stakes its
    racks in one go: one organisation, at any number of accounts, hiding nothing. A ring earns by
    posing as many small owners: it spreads its cards thin (the rings of five independently
    written networks ran 1-3 devices an account), or hides its accounts among a mail vendor's
    customers; every device still faces every per-device check."""
    return (
        at_own_domain(members, offices, rules)
        and all(fleets.get(a, 0) >= rules.site_devices for a in members)
        and _each_their_own(cov, rules)
    )


def fleets_apart(edges: pl.DataFrame, cores: list[list[str]], fleets: dict[str, int], rules: ClusterRules) -> list[list[str]]:
    """Cores with the members that run fleets set apart as a core of their own, where nothing but
    a server build and a reboot time (``FLEET_KINDS``) ties them to the rest; the rest as they
    were. Fleet runners: the owners (groups shared identities join, ``IDENTITY_KINDS``, as in
    ``_owners``) of which ``exclusive_coverage`` of the accounts report ``site_devices`` devices
    or more (``fleets``); at least ``min_accounts`` of them, and as many besides.

    Honest model: a company's racks run a popular server build, and so may a ring's proxies; a
    reboot window shared with one of the ring's members joins the two in one group of the
    build's holders, and the build then ties every pair between them. A ring earns by posing as
    many small owners and spreads its cards thin (the rings of five independently written
    networks ran 1-3 devices an account); a twenty-eighth network written by others had two
    companies and three buyers of the OTC desk that paid them, 62 devices, held with two rings
    on one EPYC build. Set apart, each group is scored on its own ties."""
    if "links" not in edges.columns:
        return cores
    found: list[list[str]] = []
    for core in cores:
        if len(core) < 2 * rules.min_accounts:
            found.append(core)
            continue
        links = (
            edges.filter(pl.col("a").is_in(core) & pl.col("b").is_in(core)).select("a", "b", "links")
            .explode("links").unnest("links").select("a", "b", "kind")
        )  # fmt: skip
        runners = sorted(
            a
            for group in _owner_groups(links, core)
            if sum(fleets.get(a, 0) >= rules.site_devices for a in group) >= rules.exclusive_coverage * len(group)
            for a in group
        )
        rest = sorted(set(core) - set(runners))
        apart = (
            min(len(runners), len(rest)) >= rules.min_accounts
            and links.filter(
                (pl.col("a").is_in(runners) != pl.col("b").is_in(runners)) & ~pl.col("kind").is_in(FLEET_KINDS)
            ).is_empty()
        )
        found += [runners, rest] if apart else [core]
    return sorted(found)


def at_own_domain(members: list[str], offices: dict[str, tuple[str, int, int]], rules: ClusterRules) -> bool:
    """Whether ``min_coverage`` of ``members`` have a mailbox at one domain of which they are
    ``min_coverage`` of the network's holders or more (``offices``: each member's domain, its
    holders in the network and their sign-up sites): an organisation's own domain, where it hides
    nothing. A mail vendor's customers are everywhere; staff change mailboxes, so most, not all."""
    at = [offices[a][:2] for a in members if a in offices]
    (domain, holders), count = max(((d, at.count(d)) for d in set(at)), key=lambda x: (x[1], x[0]), default=(("", 0), 0))
    return count >= rules.min_coverage * len(members) and count >= rules.min_coverage * holders


def _owners(inside: pl.DataFrame, cluster: int, members: list[str]) -> list[int]:
    """Sizes of the groups of a community's members that shared identities join
    (``IDENTITY_KINDS``: one funder, mailbox, machine or card), largest first."""
    groups = _owner_groups(inside.filter(pl.col("ca") == cluster), members)
    return sorted((len(g) for g in groups), reverse=True)


def _owner_groups(links: pl.DataFrame, members: list[str]) -> list[list[str]]:
    """The groups of ``members`` that shared identities (``IDENTITY_KINDS``) in ``links`` (``a, b,
    kind`` among them) join, each in ``members``' order."""
    index = {a: k for k, a in enumerate(members)}
    ties = links.filter(pl.col("kind").is_in(IDENTITY_KINDS)).select("a", "b").unique()
    rows = [index[a] for a in ties["a"].to_list()]
    cols = [index[b] for b in ties["b"].to_list()]
    graph = coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(members), len(members)))
    _, labels = connected_components(graph, directed=False)
    groups: dict[int, list[str]] = {}
    for a, label in zip(members, labels.tolist(), strict=True):
        groups.setdefault(label, []).append(a)
    return list(groups.values())


def cluster_id(members: list[str]) -> str:
    return "syb-" + hashlib.sha256("\n".join(members).encode()).hexdigest()[:12]


def _most_holding_one(holders: pl.DataFrame, kind: str) -> dict[int, int]:
    """Per community: the most of its members that hold one value of ``kind`` (an address, a wallet)."""
    return dict(
        holders.filter(pl.col("kind") == kind)
        .group_by("cluster", "value")
        .agg(pl.col("account").n_unique().alias("n"))
        .group_by("cluster")
        .agg(pl.col("n").max())
        .iter_rows()
    )


def score_clusters(
    edges: pl.DataFrame,
    clusters: list[list[str]],
    rules: ClusterRules,
    origins: list[list[str]] | None = None,
    synced: dict[int, dict] | None = None,
    fleets: dict[str, int] | None = None,
    offices: dict[str, tuple[str, int, int]] | None = None,
) -> pl.DataFrame:
    """One row per community: id, members, score, is_sybil, and the evidence as a short story.

    ``origins`` are the communities the clusters were peeled from (``core_members``): a value is
    a mark when ``exclusive_share`` of its holders are in the cluster's origin. Peeling drops a
    ring's members whose other ties have not shown yet (a template ring before its first
    restart), and counted as outsiders they would take from the ring the very template that
    marks it. ``synced`` (``outages.synchronized_outages``, by cluster index) are members that
    went silent together beyond chance: their share covers the ``restart`` kind when larger.
    ``fleets`` are the devices each account reported in the window (``operator_sites``);
    ``offices`` each member's mail domain, with how many accounts of the network hold it and at
    how many sign-up sites (``company_office``, ``organisation_fleets``)."""
    if not clusters:
        return pl.DataFrame(schema={"cluster_id": pl.String, "members": pl.List(pl.String), "score": pl.Float64,
                                    "is_sybil": pl.Boolean, "evidence": pl.String})  # fmt: skip
    inside = _without_restated_payments(_inside_links(edges, clusters))
    holders = pl.concat(  # who holds which linking value inside each community
        [inside.select(pl.col("ca").alias("cluster"), "kind", "value", "n", pl.col(c).alias("account")) for c in ("a", "b")]
    ).unique()
    coverage = holders.select("cluster", "kind", "account").unique().group_by("cluster", "kind").agg(pl.len().alias("covered"))
    # the accounts' own ties: an identity shared (a wallet, a mailbox, a host, a card) at any size; a
    # mailbox shape only when a group of min_accounts or more holds it at one domain, as 30 strangers linked by
    # anything else share coarse shapes in pairs; a stake of one amount in one quarter hour likewise
    # (a launch). Not the site a group connects from (a lab, an office: sited below)
    grouped = pl.len().over("cluster", "kind", "value") >= rules.min_accounts
    group_held = (
        holders.filter(
            pl.col("kind").is_in([k for k in STRONG_KINDS if k not in (*FLEET_KINDS, *SHAPE_KINDS, *BURST_KINDS)])
            | (
                pl.col("kind").is_in(SHAPE_KINDS + BURST_KINDS) & grouped & ~pl.col("value").str.starts_with(ANY_DOMAIN_SHAPE)
            )  # a convention across domains (links.ANY_DOMAIN_SHAPE)
        )
        .select("cluster", "kind", "account")
        .unique()
        .group_by("cluster", "kind")
        .agg(pl.len().alias("covered"))
    )
    # where a group's addresses are its site: one address, or a NAT pool within one /24, behind which
    # most of it connects (a lab, an office); or addresses from each of which more of the network's
    # accounts connect than a home holds (campuses, halls), together most of it. Proxy exits in several
    # networks, each shared by a few of a ring, are no site (a fifteenth network written by others: a
    # ring of 20 on one mail domain behind VPN exits in five /24s, three to six of the network's
    # accounts each, was read as a site's staff); three campuses' students in one community, five
    # behind each NAT of 29 or more, are (a thirteenth's). A hosting hall gives each server an address
    # of its /24: a group whose machines connect from one /24, a few accounts per address, is at one
    # site too (a seventeenth network written by others: a provider's customers, two to each of its 15
    # servers in one /24, were rejected as a ring)
    sited = (
        holders.filter(pl.col("kind").is_in(SITE_KINDS))
        .with_columns(pl.col("value").str.extract(r"^(\d+\.\d+\.\d+)\.\d+$", 1).fill_null(pl.col("value")).alias("pool"))
        .filter(
            grouped
            | ((pl.col("kind") == "ip") & (pl.col("account").n_unique().over("cluster", "kind", "pool") >= rules.min_accounts))
        )
        .with_columns(pl.col("account").n_unique().over("cluster", "pool").alias("behind"))
    )
    one_site = dict(sited.group_by("cluster").agg(pl.col("behind").max()).iter_rows())
    halls = dict(
        sited.filter(pl.col("n") > rules.household_accounts).group_by("cluster").agg(pl.col("account").n_unique()).iter_rows()
    )
    # an institution's members: mailboxes at a domain only an accredited institution can hold
    # (pipelines.sybil.institutions), read from the shapes they share inside (p4 names no domain)
    shapes = holders.filter((pl.col("kind") == "email_pattern") & pl.col("value").str.contains(r"^p[1235]\|")).with_columns(
        pl.col("value").str.split("|").list.get(1).alias("domain")
    )
    accredited = [d for d in shapes["domain"].unique().to_list() if is_institutional(d)]
    institutional = dict(
        shapes.filter(pl.col("domain").is_in(accredited)).group_by("cluster").agg(pl.col("account").n_unique()).iter_rows()
    )
    # a home: every member connects from one address (one NAT, one IPv6 /64), as a family does
    home = _most_holding_one(holders, "ip")
    # ...or who are all paid to one wallet: a family paid to a parent's wallet, its members at homes of
    # their own (a sixteenth network written by others: families of 2-5 on one payout wallet and one
    # funder, not all under one roof, were rejected as rings); rings that pay into one wallet put ten or
    # more accounts on it (one_wallet)
    one_payee = _most_holding_one(holders, "wallet")
    # values held (almost) only inside the community: an operator's mark, not a crowd's habit
    strong_holders = holders.filter(pl.col("kind").is_in(STRONG_KINDS))
    if origins is None:
        scopes = clusters
    else:  # only the communities these clusters came from (a handful of the thousands found)
        owner = {a: j for j, c in enumerate(origins) for a in c}
        scopes = [origins[j] for j in sorted({owner[c[0]] for c in clusters})]
    origin_of = {a: j for j, c in enumerate(scopes) for a in c}
    scope = pl.DataFrame(
        {"cluster": range(len(clusters)), "origin": [origin_of[c[0]] for c in clusters]},
        schema={"cluster": pl.Int64, "origin": pl.Int64},
    )
    exclusive = (
        strong_holders.join(scope, on="cluster")
        .join(
            _exclusive_values(inside if origins is None else _inside_links(edges, scopes), rules), on=["origin", "kind", "value"]
        )
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
        sync = (synced or {}).get(i)
        if sync:  # silences, as the restart kind's time of day reads them: the larger coverage, not a second signal
            cov["restart"] = max(cov.get("restart", 0.0), sync["share"])
        # kinds derived from one attribute (a mailbox and its shapes) are one signal: the strongest counts
        by_source: dict[str, float] = {}
        for kind, share in cov.items():
            by_source[_source(kind)] = max(by_source.get(_source(kind), 0.0), KINDS[kind][0] * share)
        score = 1.0
        for signal in by_source.values():
            score *= 1 - signal
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
        strong_sources = len({_source(k) for k in strong})
        own = {r["kind"]: r["covered"] for r in group_held.filter(pl.col("cluster") == i).iter_rows(named=True)}
        numbered = max((own.get(k, 0) for k in SHAPE_KINDS), default=0) >= rules.min_coverage * size
        at_site = max(one_site.get(i, 0), halls.get(i, 0)) >= rules.min_coverage * size
        if at_site:  # mailboxes at one site's domain are the site's
            for kind in SHAPE_KINDS:
                own.pop(kind, None)
        # an institution at its own site (a lab whose department wallet paid every student's stake on
        # one workstation image, staked by one administrator at once): the same exceptions as a home
        institution = at_site and institutional.get(i, 0) >= rules.min_coverage * size and _each_their_own(cov, rules)
        # ...whose members read mail of their own: one mailbox behind several of them (gmail dots and
        # +tags of one address), or one machine's GPUs under mailboxes of one shape at one domain (one
        # rig split over numbered mailboxes), are one owner's, not a family's; relatives with mailboxes
        # of their own may each register a card of the family PC
        household = (
            size <= rules.household_accounts
            and (home.get(i, 0) == size or one_payee.get(i, 0) == size)
            and _each_their_own(cov, rules, machines=numbered)  # a relative may register a card of the family PC
        )
        sites = fleets is not None and operator_sites(members, cov, fleets, inside, i, rules)
        office = company_office(members, cov, offices or {}, rules)
        organisation = fleets is not None and organisation_fleets(members, cov, offices or {}, fleets, rules)
        is_sybil = (
            size >= rules.min_accounts
            and not household  # a parent's wallet, one build, one reboot timer: one family's ties
            and not institution  # a department's wallet, one image, one administrator: one institution's
            and not sites  # a treasury, one server build, one mail domain: one company's sites
            and not office  # a treasury, one build, one referrer at the company's domain and office
            and not organisation  # fleets on an organisation's own domain: nothing hidden
            and strong_sources >= rules.min_strong_kinds
            and max(own.values(), default=0) >= rules.min_coverage * size  # the accounts' own tie, not a site's
            and (
                score >= rules.min_score
                or len({_source(k) for k in marked}) >= rules.min_strong_kinds
                or (bool(marked) and strong_sources >= rules.marked_strong_kinds)
            )
        )
        links = []
        for r in examples.filter(pl.col("cluster") == i).sort(["pairs", "kind"], descending=[True, False]).iter_rows(named=True):
            links.append({"kind": r["kind"], "pairs": r["pairs"], "coverage": round(cov.get(r["kind"], 0), 2),
                          "example": r["value"], "accounts_holding_it": r["n"]})  # fmt: skip
        story = (
            f"{size} accounts; "
            + "; ".join(
                f"{l['kind']} links {l['pairs']} pairs covering {l['coverage']:.0%} "
                # whole: a release replaces raw identifiers in free text, and a prefix of one (a host
                # fingerprint cut to 40 of its 64 characters) would pass its rewrite
                f"(e.g. {l['example']!s} held by {l['accounts_holding_it']} accounts)"
                for l in links[:5]
            )  # fmt: skip
        )
        if sync:
            story += (
                f"; {len(sync['accounts'])} of {size} went silent within {sync['minutes']} minutes of {sync['start']} "
                f"from {sync['asns']} networks (chance {sync['p_value']:.2g})"
            )
        evidence = {"story": story, "strong_kinds": strong, "exclusive_kinds": marked, "links": links, "accounts": members[:50]}
        if at_site:  # its mailbox shapes tie no member to it of its own (the reject rule reads this)
            evidence["site_mailboxes"] = True
        if institution:
            evidence["institution"] = True
        if sites:
            evidence["operator_sites"] = True
        if office:
            evidence["company_office"] = True
        if organisation:
            evidence["organisation_fleets"] = True
        if sync:
            evidence["synchronized_outage"] = sync | {"accounts": sync["accounts"][:50]}
        rows.append({"cluster_id": cluster_id(members), "members": members, "score": round(score, 4),
                     "is_sybil": is_sybil, "evidence": json.dumps(evidence)})  # fmt: skip
    return pl.DataFrame(rows)
