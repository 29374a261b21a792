"""The challenge plan: which devices the backend should challenge together next hour.

A virtualized card hides while its slices are challenged at different times; challenged in
one synchronized batch (matmul and a VRAM challenge each) the slices contend for the one card
and show it (``detectors.virtualized_gpu``). The plan groups suspected siblings: devices that
share an IP (one group if it fits a batch; otherwise split by host), and new devices that
arrived in a burst, per account. A rejected device needs no more proof of its own, but stays
in its group as a witness while a device of the group is not rejected: the last slice of a
card whose siblings were rejected would otherwise be challenged alone, run at full speed and
age out of probation. Groups of rejected devices only are left out. Batching honest
neighbours together costs them nothing: each has its own card.
"""

from __future__ import annotations

import duckdb

PLAN_SQL = """
WITH f AS (
    SELECT d.device_id, d.ip, d.host_fingerprint, d.account_id, t.tier = 'rejected' AS rejected
    FROM device_features d JOIN device_tiers t USING (epoch, device_id)
    WHERE d.epoch = $epoch AND d.hw_reports > 0
),
by_ip AS (SELECT ip, count(*) AS n FROM f GROUP BY ip),
by_host AS (SELECT host_fingerprint, count(*) AS n FROM f GROUP BY host_fingerprint),
groups AS (
    SELECT 'ip:' || f.ip AS group_id, f.device_id, format('{} devices share IP {}', i.n, f.ip) AS reason, 1 AS priority
    FROM f JOIN by_ip i USING (ip) WHERE i.n BETWEEN 2 AND $batch
    UNION ALL
    SELECT 'host:' || f.host_fingerprint, f.device_id, format('{} devices share host {}', h.n, f.host_fingerprint), 2
    FROM f JOIN by_ip i USING (ip) JOIN by_host h USING (host_fingerprint)
    WHERE i.n > $batch AND h.n BETWEEN 2 AND $batch
    UNION ALL
    SELECT 'burst:' || f.account_id || ':' || (row_number() OVER (PARTITION BY f.account_id ORDER BY f.device_id) - 1) // $batch,
           f.device_id, 'arrived in a burst with its account''s other new devices', 3
    FROM f JOIN evidence e ON e.epoch = $epoch AND e.device_id = f.device_id AND e.detector = 'fleet_burst'
),
chosen AS (
    SELECT device_id, arg_min(group_id, priority) AS group_id, arg_min(reason, priority) AS reason
    FROM groups GROUP BY device_id
),
open_groups AS (
    SELECT c.group_id FROM chosen c JOIN f USING (device_id) GROUP BY c.group_id HAVING bool_or(NOT f.rejected)
)
SELECT $epoch AS epoch, group_id, device_id, reason
FROM chosen SEMI JOIN open_groups USING (group_id) ORDER BY group_id, device_id
"""


def build_plan(con: duckdb.DuckDBPyConnection, epoch: str, batch_size: int = 16) -> int:
    """Write the plan made from ``epoch`` (for the next hour) into ``challenge_plan``; returns
    the number of devices planned."""
    con.execute("DELETE FROM challenge_plan WHERE epoch = ?", [epoch])
    con.execute(f"INSERT INTO challenge_plan {PLAN_SQL}", {"epoch": epoch, "batch": batch_size})
    return int(con.execute("SELECT count(*) FROM challenge_plan WHERE epoch = ?", [epoch]).fetchall()[0][0])


def read_plan(con: duckdb.DuckDBPyConnection, epoch: str) -> dict[str, str]:
    """device_id -> group for the plan made from ``epoch`` (what the backend consumes)."""
    rows = con.execute("SELECT device_id, group_id FROM challenge_plan WHERE epoch = ?", [epoch]).fetchall()
    return dict(rows)
