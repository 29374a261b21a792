"""Staking ledger: who has how much stake on which device, from ``stake_events``.

Per epoch and (device, wallet): *active* stake (stakes and delegations minus unstakes and
undelegations up to the end of the epoch, never below zero) counts towards the requirement
and earns; *cooling* stake (withdrawn in the last ``unstake_cooldown_days``) no longer counts
or earns but can still be slashed. The device's owner staking on their own device and other
wallets delegating to it are all co-stakers: they share its rewards and its slashing.
Events without a device (the shared pool) are kept out of device positions.
"""

from __future__ import annotations

import duckdb

from pipelines.rewards_policy import PolicyVersion

POSITIONS_SQL = """
INSERT INTO stake_positions
WITH ev AS (
    SELECT device_id, wallet, kind, ts, CAST(amount_io * 100000000 AS BIGINT) AS units
    FROM stake_events
    WHERE device_id IS NOT NULL AND ts < epoch_start($epoch) + INTERVAL 1 HOUR
)
SELECT $epoch, device_id, wallet,
       greatest(0, sum(CASE WHEN kind IN ('stake', 'delegate') THEN units ELSE -units END)) AS active_units,
       coalesce(sum(units) FILTER (kind IN ('unstake', 'undelegate')
                AND ts >= epoch_start($epoch) + INTERVAL 1 HOUR - to_days($cooldown)), 0) AS cooling_units
FROM ev GROUP BY device_id, wallet
HAVING active_units > 0 OR cooling_units > 0
ORDER BY device_id, wallet
"""


def build_positions(con: duckdb.DuckDBPyConnection, epoch: str, version: PolicyVersion) -> int:
    """Write ``stake_positions`` for the epoch; returns the number of (device, wallet) positions."""
    con.execute("DELETE FROM stake_positions WHERE epoch = ?", [epoch])
    con.execute(POSITIONS_SQL, {"epoch": epoch, "cooldown": version.unstake_cooldown_days})
    return int(con.execute("SELECT count(*) FROM stake_positions WHERE epoch = ?", [epoch]).fetchall()[0][0])
