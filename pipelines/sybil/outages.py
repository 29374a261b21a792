"""Synchronized outages: members of a community whose machines went silent in one quarter hour.

A script that redeploys a fleet restarts every machine it runs within minutes of each other,
wherever the machines are (proxies in several networks); honest owners restart when their
own reasons come (an update, a reboot, a power cut), so on a given quarter hour only a few
percent of a network's accounts begin a silence (``restart_gaps``: from a restart's few minutes
to two hours, as long as a hall's power or a fleet's redeploy takes). Per community and
window of ``minutes`` (anchored at each member's silence) the members that began one inside
it are counted and set against the network's own rate for that window: the accounts outside
the community that began one there, Laplace-smoothed, over the accounts outside. The binomial
tail of that many members or more, times the number of windows a day offers (two per
``minutes``, for the sliding anchor), is the chance that honest accounts line up so.

Honest model: an outage of one network (an ISP's, a campus's, a hosting hall's maintenance)
silences its accounts together, so the members that line up must connect from at least
``min_asns`` autonomous systems; an outage of the backend or a worker update pushed to
everyone raises the network's own rate for that window, and the tail with it. A city's power
cut silences homes on several networks at once, but only a community already tied by the
accounts' own ties (a funder, a mailbox) can be held on it: silences say how machines are run
(a fleet kind), so they add to the ``restart`` kind's coverage (the larger of the two: one
signal, whether a reboot timer or a script took the fleet down), and never make a ring alone
(``communities.score_clusters``); the reject rule counts the members' own links, not this.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import polars as pl
from scipy.stats import binom

SYNC_SQL = """
WITH starts AS MATERIALIZED (  -- one row per account, minute a silence began, and network (the
    -- account and ASN of the device's row in the gap's own hour)
    SELECT DISTINCT f.account_id, date_trunc('minute', r.gap_start) AS minute, f.asn
    FROM restart_gaps r JOIN device_features f ON f.epoch = r.epoch AND f.device_id = r.device_id
    WHERE r.epoch > hours_back($epoch, $window) AND r.epoch <= $epoch AND f.account_id IS NOT NULL
),
per_minute AS (SELECT minute, count(DISTINCT account_id) AS accounts FROM starts GROUP BY minute),
member_starts AS MATERIALIZED (SELECT m.cluster, s.account_id, s.minute, s.asn FROM sync_members m JOIN starts s USING (account_id)),
anchors AS (SELECT DISTINCT cluster, minute AS t FROM member_starts),
inside AS (
    SELECT a.cluster, a.t, count(DISTINCT s.account_id) AS k, count(DISTINCT s.asn) AS asns,
           list(DISTINCT s.account_id ORDER BY s.account_id) AS accounts
    FROM anchors a JOIN member_starts s ON s.cluster = a.cluster AND s.minute >= a.t AND s.minute < a.t + to_minutes($minutes)
    GROUP BY a.cluster, a.t
),
network AS (  -- accounts of the whole network that began a silence in the window (per minute: an account
    -- counted in two of its minutes makes the rate larger, never smaller)
    SELECT a.t, sum(p.accounts) AS starts
    FROM (SELECT DISTINCT t FROM anchors) a JOIN per_minute p ON p.minute >= a.t AND p.minute < a.t + to_minutes($minutes)
    GROUP BY a.t
)
SELECT i.cluster, i.t, i.k, i.asns, i.accounts, CAST(n.starts AS BIGINT) AS starts, z.size,
       (SELECT count(DISTINCT account_id) FROM device_features WHERE epoch = $epoch) AS total  -- accounts with a
       -- device this hour: fewer than the day's, so the rate is larger, never smaller
FROM inside i JOIN network n USING (t) JOIN (SELECT cluster, count(*) AS size FROM sync_members GROUP BY cluster) z USING (cluster)
ORDER BY i.cluster, i.t
"""


@dataclass(frozen=True)
class OutageRules:
    minutes: int = 15
    alpha: float = 1e-6
    min_asns: int = 2


def synchronized_outages(
    con: duckdb.DuckDBPyConnection, epoch: str, window_hours: int, clusters: list[list[str]], rules: OutageRules
) -> dict[int, dict]:
    """Per community index: the window in which most of its members began a silence, when
    chance explains it at most ``alpha`` and they span ``min_asns`` networks: ``share`` of the
    members, the ``accounts``, ``asns``, the window's ``start``, the network's ``rate`` and the
    ``p_value`` (Bonferroni over the day's windows)."""
    members = pl.DataFrame(
        [(i, a) for i, c in enumerate(clusters) for a in c], schema={"cluster": pl.Int64, "account_id": pl.String}, orient="row"
    )
    if not members.height:
        return {}
    con.register("sync_members", members.to_arrow())
    try:
        rows = pl.from_arrow(
            con.sql(SYNC_SQL, params={"epoch": epoch, "window": window_hours, "minutes": rules.minutes}).to_arrow_table()
        )
    finally:
        con.unregister("sync_members")
    if not rows.height:  # type: ignore[union-attr]
        return {}
    outside = (pl.col("total") - pl.col("size")).clip(lower_bound=0)
    rows = rows.with_columns(  # type: ignore[union-attr]
        (((pl.col("starts") - pl.col("k")).clip(lower_bound=0) + 1) / (outside + 2)).alias("rate")
    )
    windows = 2 * window_hours * 60 / rules.minutes
    as_float = [rows[c].cast(pl.Float64).to_numpy() for c in ("k", "size", "rate")]
    tail = binom.sf(as_float[0] - 1, as_float[1], as_float[2]) * windows
    scored = rows.with_columns(pl.Series("p_value", tail.clip(max=1.0)))
    best = (
        scored.filter(pl.col("asns") >= rules.min_asns)
        .sort(["cluster", "p_value", "t"])
        .group_by("cluster", maintain_order=True)
        .first()
        .filter(pl.col("p_value") <= rules.alpha)
    )
    return {
        int(r["cluster"]): {
            "share": r["k"] / r["size"],
            "accounts": r["accounts"],
            "asns": int(r["asns"]),
            "start": r["t"].isoformat(timespec="minutes"),
            "minutes": rules.minutes,
            "rate": float(f"{r['rate']:.3g}"),
            "p_value": float(f"{r['p_value']:.2g}"),
        }
        for r in best.iter_rows(named=True)
    }
