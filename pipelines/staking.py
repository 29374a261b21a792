"""Staking ledger: who has how much stake on which device, from ``stake_events``.

Per epoch and (device, wallet): *active* stake counts towards the requirement and earns. It is
the stake held through the whole epoch: stakes and delegations minus unstakes and undelegations
up to its start, or the lowest balance any of its events left during it, if lower; never below
zero. A stake that arrives during an hour earns from the next one, and one that leaves earns
nothing in the hour it leaves: a network written by others had a ring stake 50,000 IO at HH:58
and withdraw it at HH:02 every hour, so that a position read at the end of each hour showed
it staked through the hours it was not (12 devices took 5.3% of its rewards). *Cooling* stake
(withdrawn in the last ``unstake_cooldown_days``, or staked during the epoch and there at its
end: not yet held through an hour) does not count or earn but can be slashed, so a device
staked and rejected in one hour loses that stake. The device's owner staking on their own
device and other wallets delegating to it are all co-stakers: they share its rewards and its
slashing. Events without a device (the shared pool) are kept out of device positions.
"""

from __future__ import annotations

import duckdb

from pipelines.rewards_policy import PolicyVersion

POSITIONS_SQL = """
INSERT INTO stake_positions
WITH ev AS (
    SELECT device_id, wallet, ts,
           CASE WHEN kind IN ('stake', 'delegate') THEN 1 ELSE -1 END * CAST(amount_io * 100000000 AS BIGINT) AS delta,
           kind IN ('unstake', 'undelegate') AND ts >= epoch_start($epoch) + INTERVAL 1 HOUR - to_days($cooldown) AS cooling,
           ts >= epoch_start($epoch) AS during
    FROM stake_events
    WHERE device_id IS NOT NULL AND ts < epoch_start($epoch) + INTERVAL 1 HOUR
),
pos AS (
    SELECT device_id, wallet, coalesce(sum(delta) FILTER (NOT during), 0) AS at_start, bool_or(during AND delta < 0) AS fell,
           greatest(0, sum(delta)) AS at_end, coalesce(-sum(delta) FILTER (cooling), 0) AS withdrawn
    FROM ev GROUP BY device_id, wallet
),
low AS (  -- positions something left during the epoch: the lowest balance any of its events left (events of one
    -- instant counted together); a position that only grew was lowest at the start
    SELECT device_id, wallet, min(balance) AS lowest
    FROM (SELECT e.device_id, e.wallet,
                 p.at_start + sum(e.delta) OVER (PARTITION BY e.device_id, e.wallet ORDER BY e.ts) AS balance
          FROM ev e JOIN pos p USING (device_id, wallet) WHERE e.during AND p.fell)
    GROUP BY device_id, wallet
)
SELECT $epoch, device_id, wallet, active_units, withdrawn + at_end - active_units AS cooling_units
FROM (SELECT p.*, greatest(0, least(p.at_start, coalesce(l.lowest, p.at_start))) AS active_units
      FROM pos p LEFT JOIN low l USING (device_id, wallet))
WHERE active_units > 0 OR withdrawn + at_end - active_units > 0
ORDER BY device_id, wallet
"""


def build_positions(con: duckdb.DuckDBPyConnection, epoch: str, version: PolicyVersion) -> int:
    """Write ``stake_positions`` for the epoch; returns the number of (device, wallet) positions."""
    con.execute("DELETE FROM stake_positions WHERE epoch = ?", [epoch])
    con.execute(POSITIONS_SQL, {"epoch": epoch, "cooldown": version.unstake_cooldown_days})
    return int(con.execute("SELECT count(*) FROM stake_positions WHERE epoch = ?", [epoch]).fetchall()[0][0])
