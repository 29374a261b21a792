"""Account links: which accounts share which attribute values, weighted by how rare the value is.

Each account gets attribute values of several kinds (table below). Two accounts that share a
value are linked with ``strength(kind) x rarity(n)``, where n is how many accounts hold the
value and ``rarity = 1 / log2(n + 1)``: a pair sharing a funder wallet is a strong link, a
university NAT shared by fifty accounts a weak one, and values held by more than ``max_n``
accounts (a cloud ASN, an exchange's hot wallet) link nobody.

| kind | value | strength | max_n |
|---|---|---|---|
| funding | the wallet that funded the account's wallet, and that wallet's own funder | 0.6 | 300 |
| email | normalized address (gmail dots and +tags removed; +tags elsewhere) | 0.7 | 50 |
| email_pattern | domain + leading letters + shape of the rest (bulk-made addresses) | 0.35 | 150 |
| restart | a short heartbeat silence starting in the same 90-minute window (two offset grids) | 0.45 | 300 |
| hw_fingerprint | worker version + CPU model + cores + RAM | 0.25 | 300 |
| host | host fingerprint | 0.6 | 50 |
| gpu | GPU UUID | 0.6 | 20 |
| ip | public IP | 0.15 | 100 |
| subnet | IPv4 /24 | 0.05 | 300 |
| signup_ip | IP at signup | 0.15 | 100 |
| referral | referrer and referred account | 0.2 | 300 |
| created | created in the same hour | 0.05 | 300 |
"""

from __future__ import annotations

import duckdb

KINDS: dict[str, tuple[float, int]] = {
    "funding": (0.6, 300),
    "email": (0.7, 50),
    "email_pattern": (0.35, 150),
    "restart": (0.45, 300),
    "hw_fingerprint": (0.25, 300),
    "host": (0.6, 50),
    "gpu": (0.6, 20),
    "ip": (0.15, 100),
    "subnet": (0.05, 300),
    "signup_ip": (0.15, 100),
    "referral": (0.2, 300),
    "created": (0.05, 300),
}
"""kind -> (strength, max_n)."""

STRONG_KINDS = ("funding", "email", "email_pattern", "restart", "host", "gpu")
"""Kinds that can make a cluster a sybil ring; the rest only corroborate."""

ATTRS_SQL = """
CREATE OR REPLACE TEMP TABLE account_attrs AS
WITH acc AS (  -- latest version of every account
    SELECT account_id, arg_max(email, _hour) AS email, arg_max(wallet, _hour) AS wallet,
           arg_max(signup_ip, _hour) AS signup_ip, arg_max(referrer_account_id, _hour) AS referrer,
           arg_max(created_at, _hour) AS created_at
    FROM accounts WHERE _hour <= $epoch GROUP BY account_id
),
hw AS (
    SELECT DISTINCT account_id, ip, host_fingerprint, gpu_uuid,
           concat_ws('|', worker_version, cpu_model, cpu_cores, ram_gb) AS hw_fingerprint
    FROM hardware
    WHERE _hour > hours_back($epoch, $window) AND _hour <= $epoch
),
funded AS (SELECT DISTINCT wallet, funder_wallet FROM stake_events WHERE _hour <= $epoch AND funder_wallet <> wallet),
email AS (
    SELECT account_id, lower(split_part(email, '@', 2)) AS domain,
           regexp_replace(lower(split_part(email, '@', 1)), '\\+.*$', '') AS local
    FROM acc WHERE email LIKE '%@%'
),
attrs AS (
    SELECT a.account_id, 'funding' AS kind, f.funder_wallet AS value FROM acc a JOIN funded f ON f.wallet = a.wallet
    UNION ALL
    SELECT a.account_id, 'funding', f2.funder_wallet FROM acc a JOIN funded f ON f.wallet = a.wallet
    JOIN funded f2 ON f2.wallet = f.funder_wallet
    UNION ALL
    SELECT account_id, 'email',
           CASE WHEN domain IN ('gmail.com', 'googlemail.com') THEN replace(local, '.', '') || '@gmail.com'
                ELSE local || '@' || domain END FROM email
    UNION ALL
    SELECT account_id, 'email_pattern',
           domain || '|' || regexp_extract(local, '^[a-z]*') || '|' ||
           regexp_replace(regexp_replace(substr(local, length(regexp_extract(local, '^[a-z]*')) + 1), '[0-9]', '9', 'g'), '[a-z]', 'a', 'g')
    FROM email WHERE length(local) - length(regexp_extract(local, '^[a-z]*')) >= 3
    UNION ALL
    SELECT account_id, 'hw_fingerprint', hw_fingerprint FROM hw
    UNION ALL
    SELECT account_id, 'host', host_fingerprint FROM hw
    UNION ALL
    SELECT account_id, 'gpu', gpu_uuid FROM hw WHERE gpu_uuid IS NOT NULL
    UNION ALL
    SELECT account_id, 'ip', ip FROM hw
    UNION ALL
    SELECT account_id, 'subnet', regexp_extract(ip, '^(\\d+\\.\\d+\\.\\d+)\\.\\d+$', 1) FROM hw WHERE regexp_matches(ip, '^\\d+\\.\\d+\\.\\d+\\.\\d+$')
    UNION ALL
    SELECT account_id, 'signup_ip', signup_ip FROM acc
    UNION ALL
    SELECT account_id, 'referral', referrer FROM acc WHERE referrer IS NOT NULL
    UNION ALL
    SELECT referrer, 'referral', referrer FROM acc WHERE referrer IS NOT NULL
    UNION ALL
    SELECT account_id, 'created', strftime(created_at, '%Y-%m-%dT%H') FROM acc
    UNION ALL
    SELECT f.account_id, 'restart', strftime(g.gap_start, '%Y-%m-%d') || '|' || grid || '|' ||
           CAST(floor((extract('hour' FROM g.gap_start) * 60 + extract('minute' FROM g.gap_start) + offset_min) / 90) AS INTEGER)
    FROM restart_gaps g
    JOIN (SELECT DISTINCT device_id, account_id FROM device_features
          WHERE epoch > hours_back($epoch, $window) AND epoch <= $epoch) f
      USING (device_id)
    CROSS JOIN (VALUES ('a', 0), ('b', 45)) AS grids(grid, offset_min)
    WHERE g.epoch > hours_back($epoch, $window) AND g.epoch <= $epoch
)
SELECT DISTINCT account_id, kind, value FROM attrs WHERE account_id IS NOT NULL AND value IS NOT NULL AND value <> ''
"""

WEAK_KINDS = ("subnet", "created")
"""Kinds so common that they only add weight to pairs already linked by something else."""

EDGES_SQL = """
CREATE OR REPLACE TEMP TABLE account_pairs AS
WITH k AS (SELECT * FROM (VALUES {kinds}) AS k(kind, strength, max_n)),
holders AS (
    SELECT a.kind, a.value, a.account_id, count(*) OVER (PARTITION BY a.kind, a.value) AS n, k.strength, k.max_n
    FROM account_attrs a JOIN k USING (kind)
),
shared AS (SELECT kind, value, account_id, n, strength FROM holders WHERE n BETWEEN 2 AND max_n),
main AS (  -- pairs from the informative kinds
    SELECT x.account_id AS a, y.account_id AS b, x.kind, x.value, x.n, x.strength / log2(x.n + 1) AS weight
    FROM shared x JOIN shared y ON x.kind = y.kind AND x.value = y.value AND x.account_id < y.account_id
    WHERE x.kind NOT IN ({weak})
),
candidates AS (SELECT DISTINCT a, b FROM main),
weak AS (  -- common kinds only strengthen pairs that are already candidates
    SELECT c.a, c.b, x.kind, x.value, x.n, x.strength / log2(x.n + 1) AS weight
    FROM candidates c
    JOIN shared x ON x.account_id = c.a AND x.kind IN ({weak})
    JOIN shared y ON y.account_id = c.b AND y.kind = x.kind AND y.value = x.value
)
SELECT a, b, kind, max(weight) AS weight, arg_max(value, weight) AS value, min(n) AS n  -- the rarest value per kind
FROM (SELECT * FROM main UNION ALL SELECT * FROM weak) GROUP BY a, b, kind;

CREATE OR REPLACE TEMP TABLE account_edges AS
WITH kept AS (
    SELECT a, b FROM account_pairs GROUP BY a, b
    HAVING sum(weight) >= $min_weight OR count(*) FILTER (kind IN ({strong})) >= $min_strong
)
SELECT p.a, p.b, sum(p.weight) AS weight, count(*) FILTER (p.kind IN ({strong})) AS strong_kinds,
       list(p.kind ORDER BY p.kind) AS kinds,
       list(struct_pack(kind := p.kind, value := p.value, n := p.n, weight := round(p.weight, 3)) ORDER BY p.weight DESC) AS links
FROM account_pairs p JOIN kept USING (a, b) GROUP BY p.a, p.b;
DROP TABLE account_pairs;
"""


def build_account_graph(
    con: duckdb.DuckDBPyConnection, epoch: str, window_hours: int = 24, min_weight: float = 0.3, min_strong: int = 2
) -> int:
    """Temp tables ``account_attrs`` and ``account_edges`` for the epoch; returns the edge count.

    A pair is kept when its links add up to ``min_weight`` or it shares ``min_strong`` strong
    kinds (a large ring's funder is shared by so many accounts that each pair's weight is
    small, but its members also share a mailbox pattern or a restart time)."""
    con.execute(ATTRS_SQL, {"epoch": epoch, "window": window_hours})
    kinds = ", ".join(f"('{k}', {s}, {n})" for k, (s, n) in KINDS.items())
    strong = ", ".join(f"'{k}'" for k in STRONG_KINDS)
    weak = ", ".join(f"'{k}'" for k in WEAK_KINDS)
    pairs_sql, edges_sql, drop_sql = (q for q in EDGES_SQL.format(kinds=kinds, strong=strong, weak=weak).split(";") if q.strip())
    con.execute(pairs_sql)
    con.execute(edges_sql, {"min_weight": min_weight, "min_strong": min_strong})
    con.execute(drop_sql)
    return int(con.execute("SELECT count(*) FROM account_edges").fetchall()[0][0])
