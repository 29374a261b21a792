"""Slashing: incidents from rejections (deception) and, where a policy asks for it, long outages
(downtime), exact shares.

An incident opens once: when a device is first rejected (``device_state.rejected_since`` is
the epoch; its id is a hash of device and that epoch, so a re-run slashes the same incident,
never a second one), or, under a policy whose ``downtime_rate`` is above 0 (the shipped one's
is 0: an outage costs rewards, not stake), when a staked device has been down
``downtime_hours`` in a row (not when its card answers under another device id of the same
account: a reinstalled worker).
Amount = rate x (accrued rewards + stake), rate ``deliberate_rate`` for deception and
``downtime_rate`` for downtime; it is taken from the device's rewards paid in the last
``accrual_days`` (a held share counts from the epoch it was released) first, then from stake
(active and cooling), and shared among the wallets pro rata to what each holds of either, so
it never exceeds what is there.
Status: ``proposed``; after ``appeal_days`` ``final`` (burned); ``reversed`` when a person's
verdict override clears the device for the incident's epoch.
"""

from __future__ import annotations

import duckdb

from pipelines.epoch import shift
from pipelines.rewards import payouts_of
from pipelines.rewards_policy import SCALE, PolicyVersion

INCIDENTS_SQL = """
CREATE OR REPLACE TEMP TABLE new_incidents AS
WITH rejected AS (
    SELECT s.device_id, 'deception' AS kind, $deliberate AS rate,
           format('rejected for {}', array_to_string(s.rejected_types, ', ')) AS reason,
           t.reasons AS evidence
    FROM device_state s JOIN device_tiers t USING (epoch, device_id)
    WHERE s.epoch = $epoch AND s.tier = 'rejected' AND s.rejected_since = $epoch
),
staked AS (SELECT DISTINCT device_id FROM stake_positions WHERE epoch = $epoch AND active_units > 0),
down_now AS MATERIALIZED (  -- an outage that reaches `hours` this epoch is one of a staked device down now;
    -- down: not answering its backend (a challenge, pings; heartbeats in an hour without pings: pipelines.cadence)
    SELECT f.device_id FROM device_features f LEFT JOIN uptime_cadence c USING (epoch)
    WHERE $downtime > 0 AND f.epoch = $epoch AND NOT answered_hour(f.ping_total, f.ping_ok, f.heartbeat_ok, f.pow_ok, c.pings_per_hour, c.up_heartbeats)
      AND f.device_id IN (SELECT device_id FROM staked)
),
starts AS MATERIALIZED (  -- of those, the ones down at the window's first hour and not in the hour before it:
    -- two one-hour lookups that leave few devices for the window's scan below (197 of 5,961 down now
    -- in a simulated 100k-device hour)
    SELECT f.device_id FROM device_features f LEFT JOIN uptime_cadence c USING (epoch)
    WHERE f.epoch = hours_back($epoch, $hours - 1)
      AND NOT answered_hour(f.ping_total, f.ping_ok, f.heartbeat_ok, f.pow_ok, c.pings_per_hour, c.up_heartbeats)
      AND f.device_id IN (SELECT device_id FROM down_now)
      AND NOT EXISTS (SELECT 1 FROM device_features b LEFT JOIN uptime_cadence bc USING (epoch)
                      WHERE b.epoch = hours_back($epoch, $hours) AND b.device_id = f.device_id
                        AND NOT answered_hour(b.ping_total, b.ping_ok, b.heartbeat_ok, b.pow_ok, bc.pings_per_hour, bc.up_heartbeats))
),
down AS (  -- down hours in the last `hours` epochs, and whether the epoch before them was down too
    SELECT device_id, count(*) FILTER (epoch > hours_back($epoch, $hours) AND NOT up) AS down_recent,
           bool_or(epoch = hours_back($epoch, $hours) AND NOT up) AS down_before
    FROM (SELECT f.device_id, f.epoch, answered_hour(f.ping_total, f.ping_ok, f.heartbeat_ok, f.pow_ok, c.pings_per_hour, c.up_heartbeats) AS up
          FROM device_features f LEFT JOIN uptime_cadence c USING (epoch)
          WHERE f.epoch >= hours_back($epoch, $hours) AND f.epoch <= $epoch
            AND f.device_id IN (SELECT device_id FROM starts))
    GROUP BY device_id
),
moved AS (  -- a card back under another device id of the same account (a reinstalled worker, a new OS) is up:
    -- the old id's outage is the old registration's, not the card's. The old id's row this epoch carries
    -- its last reported card (features carry identity through silent hours, and an outage of `hours`
    -- has a row in each of them), so one hour is read, not the day before the outage
    SELECT DISTINCT o.device_id FROM device_features o
    JOIN device_features n ON n.epoch = $epoch AND n.account_id = o.account_id AND n.gpu_uuid = o.gpu_uuid
     AND n.device_id <> o.device_id
    LEFT JOIN uptime_cadence c ON c.epoch = n.epoch
    WHERE o.epoch = $epoch AND o.device_id IN (SELECT device_id FROM starts) AND o.gpu_uuid IS NOT NULL
      AND answered_hour(n.ping_total, n.ping_ok, n.heartbeat_ok, n.pow_ok, c.pings_per_hour, c.up_heartbeats)
),
downtime AS (  -- the outage reaches `hours` this epoch (once per outage)
    SELECT d.device_id, 'downtime' AS kind, $downtime AS rate,
           format('staked device down for {} hours in a row', $hours) AS reason, '[]'::JSON AS evidence
    FROM down d JOIN staked USING (device_id)
    WHERE d.down_recent = $hours AND NOT coalesce(d.down_before, false)
      AND d.device_id NOT IN (SELECT device_id FROM rejected) AND d.device_id NOT IN (SELECT device_id FROM moved)
)
SELECT 'inc-' || substr(sha256(device_id || '|' || kind || '|' || $epoch), 1, 16) AS incident_id, *
FROM (SELECT * FROM rejected UNION ALL SELECT * FROM downtime)
"""

ACCRUALS_SQL = (
    """
CREATE OR REPLACE TEMP TABLE accruals_next AS
WITH moved AS (
    SELECT device_id, wallet, units, payout_rows FROM slashing_accruals WHERE $keep
    UNION ALL
    SELECT device_id, wallet, amount_base_units, 1 FROM ("""
    + payouts_of(
        "(SELECT * FROM reward_allocations WHERE epoch > $add_lo AND epoch <= $add_hi)",
        "(SELECT * FROM held_rewards WHERE settled_epoch > $add_lo AND settled_epoch <= $add_hi)",
    )
    + """)
    UNION ALL
    SELECT device_id, wallet, -amount_base_units, -1 FROM ("""
    + payouts_of(
        "(SELECT * FROM reward_allocations WHERE epoch > $drop_lo AND epoch <= $drop_hi)",
        "(SELECT * FROM held_rewards WHERE settled_epoch > $drop_lo AND settled_epoch <= $drop_hi)",
    )
    + """)
)
SELECT device_id, wallet, sum(units) AS units, sum(payout_rows) AS payout_rows
FROM moved GROUP BY device_id, wallet HAVING sum(payout_rows) > 0
"""
)
"""Bring ``slashing_accruals`` (what each (device, wallet) was paid in the accrual window) to
this epoch: add the payouts of the epochs since the state's own epoch, take away those that left
the window. Two epoch ranges of the ledgers are read, so the cost does not grow with history (a
scan of the window, as before, grew with every day kept; docs/scaling.md). A state from another epoch
on or after this one (a re-run, a recalculation), or from another window length, is rebuilt
from the whole window instead."""


def update_accruals(con: duckdb.DuckDBPyConnection, epoch: str, window_hours: int) -> None:
    """``ACCRUALS_SQL`` for the epoch: incremental from the stored state when it is of an earlier
    epoch and the same window, else rebuilt from the window's ledger rows."""
    state = con.execute("SELECT epoch, window_hours FROM slashing_accruals_as_of").fetchall()
    keep = bool(state) and state[0][0] < epoch and state[0][1] == window_hours
    since = state[0][0] if keep else shift(epoch, -window_hours)
    # what left the window since the state's epoch; nothing to take away from a rebuilt state
    drop = (shift(since, -window_hours), shift(epoch, -window_hours)) if keep else (since, since)
    con.execute(ACCRUALS_SQL, {"keep": keep, "add_lo": since, "add_hi": epoch, "drop_lo": drop[0], "drop_hi": drop[1]})
    con.execute(
        "DELETE FROM slashing_accruals; INSERT INTO slashing_accruals SELECT * FROM accruals_next ORDER BY device_id, wallet; "
        "DROP TABLE accruals_next; DELETE FROM slashing_accruals_as_of"
    )
    con.execute("INSERT INTO slashing_accruals_as_of VALUES (?, ?)", [epoch, window_hours])


AMOUNTS_SQL = """
INSERT INTO slashing_events
WITH accrued AS (  -- paid out in the window: allocations paid, and held shares released
    SELECT a.device_id, a.wallet, sum(a.units) AS units
    FROM slashing_accruals a JOIN new_incidents i USING (device_id)
    GROUP BY a.device_id, a.wallet
),
stake AS (
    SELECT p.device_id, p.wallet, p.active_units + p.cooling_units AS units
    FROM stake_positions p JOIN new_incidents i USING (device_id) WHERE p.epoch = $epoch
),
holdings AS (
    SELECT coalesce(a.device_id, s.device_id) AS device_id, coalesce(a.wallet, s.wallet) AS wallet,
           coalesce(a.units, 0) AS accrued, coalesce(s.units, 0) AS staked
    FROM accrued a FULL JOIN stake s ON s.device_id = a.device_id AND s.wallet = a.wallet
),
sums AS (
    SELECT i.incident_id, i.device_id, i.rate, coalesce(sum(h.accrued), 0) AS accrued, coalesce(sum(h.staked), 0) AS staked
    FROM new_incidents i LEFT JOIN holdings h USING (device_id)
    GROUP BY i.incident_id, i.device_id, i.rate
),
totals AS (SELECT *, CAST((CAST(accrued AS HUGEINT) + staked) * rate // $scale AS BIGINT) AS total FROM sums),
parts AS (
    SELECT t.incident_id, t.device_id, h.wallet, t.total, t.accrued, t.staked,
           least(t.total, t.accrued) AS from_accrued, t.total - least(t.total, t.accrued) AS from_stake,
           h.accrued AS w_accrued, h.staked AS w_staked
    FROM totals t JOIN holdings h USING (device_id)
),
shares AS (  -- floor shares; the rounding leftover goes to the wallets holding the most
    SELECT *, CASE WHEN accrued > 0 THEN CAST(from_accrued AS HUGEINT) * w_accrued // accrued ELSE 0 END
              + CASE WHEN staked > 0 THEN CAST(from_stake AS HUGEINT) * w_staked // staked ELSE 0 END AS base
    FROM parts
),
ranked AS (
    SELECT *, total - sum(base) OVER (PARTITION BY incident_id) AS leftover,
           row_number() OVER (PARTITION BY incident_id ORDER BY w_accrued + w_staked DESC, wallet) AS rank
    FROM shares
)
SELECT r.incident_id, $epoch, r.device_id, f.account_id, r.wallet,
       CAST(r.base + CASE WHEN r.rank <= r.leftover THEN 1 ELSE 0 END AS BIGINT),
       i.reason,
       CAST(json_object('kind', i.kind, 'rate_bp4', i.rate, 'from_accrued', r.from_accrued, 'from_stake', r.from_stake,
            'wallet_accrued', r.w_accrued, 'wallet_stake', r.w_staked, 'verdict', i.evidence) AS JSON),
       'proposed'
FROM ranked r JOIN new_incidents i USING (incident_id)
LEFT JOIN device_features f ON f.device_id = r.device_id AND f.epoch = $epoch
ORDER BY r.incident_id, r.wallet
"""

STATUS_SQL = """
UPDATE slashing_events s SET status = CASE
    WHEN EXISTS (SELECT 1 FROM verdict_overrides o WHERE o.device_id = s.device_id AND o.tier <> 'rejected'
                 AND s.epoch BETWEEN o.epoch_from AND o.epoch_to) THEN 'reversed'
    WHEN s.epoch <= hours_back($epoch, 24 * $appeal_days) THEN 'final'
    ELSE 'proposed' END
"""


def slash(con: duckdb.DuckDBPyConnection, epoch: str, version: PolicyVersion) -> int:
    """Open this epoch's incidents (replacing any from an earlier run of the epoch) and bring
    every incident's status up to date; returns the number of new incidents."""
    s = version.slashing
    con.execute("DELETE FROM slashing_events WHERE epoch = ?", [epoch])
    con.execute(
        INCIDENTS_SQL,
        {"epoch": epoch, "deliberate": s.deliberate_rate, "downtime": s.downtime_rate, "hours": s.downtime_hours},
    )  # fmt: skip
    update_accruals(con, epoch, 24 * s.accrual_days)
    n = int(con.execute("SELECT count(*) FROM new_incidents").fetchall()[0][0])
    if n:  # an epoch that opens none has no amounts to share: its joins would read the accruals for nothing
        con.execute(AMOUNTS_SQL, {"epoch": epoch, "scale": SCALE})
    con.execute(STATUS_SQL, {"epoch": epoch, "appeal_days": s.appeal_days})
    con.execute("DROP TABLE new_incidents")
    return n
