"""How often this network's devices send heartbeats and its backend pings them, measured each
hour, and the liveness thresholds that follow from it.

The data contract says what a heartbeat and a ping are, not how often they come. Rules written
for one cadence misread another: with heartbeats every 30 minutes instead of 10, "at least 3
heartbeats in the hour" would make no device eligible for rewards, and every silence between
two heartbeats would look like a 14-40 minute restart. So each epoch measures the cadence
(``uptime_cadence``) and the thresholds scale with it; at the reference cadence (heartbeats every
10 minutes, 4 pings an hour) they are the fixed values the detectors were written with.

- heartbeat interval: the median over devices of each device's median gap between its
  consecutive heartbeats ending in the hour (the previous hour's last one counts), in whole
  minutes (1-60); a restart or an outage is one long gap among a device's many and moves the
  median over devices little;
- pings per hour: the median over pinged devices of their pings in the hour;
- fewer than ``MIN_DEVICES`` (10) devices measured (a tiny network, a feed outage): the reference;
  a median over fewer is not a network's cadence;
- a source absent from the whole hour (a backend that never pings, devices that send no
  heartbeats, the prober down for an hour): 0 pings an hour or 0 heartbeats needed. Silence that
  nobody could break is held against nobody: liveness is then read from the other source
  (``LIVENESS_MACROS``), instead of no device ever being up, paid, or spared downtime slashing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import duckdb

from pipelines.contract import TIME_TOLERANCE_S
from pipelines.epoch import previous as previous_epoch

REFERENCE_HEARTBEAT_MINUTES = 10
REFERENCE_PINGS_PER_HOUR = 4
MIN_DEVICES = 10

DDL = """
CREATE TABLE IF NOT EXISTS uptime_cadence (
    epoch VARCHAR PRIMARY KEY,
    heartbeat_minutes INTEGER NOT NULL,  -- typical interval between a device's heartbeats
    pings_per_hour INTEGER NOT NULL,     -- typical pings a device gets in an hour
    measured_devices INTEGER NOT NULL,   -- devices the interval was measured on (below 10: the reference is used)
    up_heartbeats INTEGER NOT NULL,      -- heartbeats an hour that make a device up: half of those expected
    reach_minutes INTEGER NOT NULL,      -- a signal this close to a challenge shows the device was alive
    restart_min_minutes INTEGER NOT NULL,  -- a heartbeat silence this long ...
    restart_max_minutes INTEGER NOT NULL   -- ... up to this long is a restart, not an outage
);
"""

HEARTBEAT_GAPS_CTE = f"""
hb AS (  -- a late row (an earlier hour's heartbeat delivered with this one) belongs to a silence already judged
    SELECT device_id, ts FROM uptime WHERE _hour = $epoch AND source = 'heartbeat' AND ok
      AND ts >= epoch_start($epoch) - to_seconds({TIME_TOLERANCE_S})  -- a clock's skew is no lateness
    UNION ALL  -- the previous hour's last heartbeat: a silence across the hour boundary counts (at one
    -- heartbeat an hour it is the only gap)
    SELECT device_id, max(ts) FROM uptime WHERE _hour = $prev AND source = 'heartbeat' AND ok GROUP BY device_id
),
gaps AS (  -- each heartbeat of the hour with the one before it
    SELECT device_id, ts, before
    FROM (SELECT device_id, ts, lag(ts) OVER (PARTITION BY device_id ORDER BY ts) AS before FROM hb)
    WHERE ts >= epoch_start($epoch) AND before IS NOT NULL
)"""
"""The hour's heartbeat gaps (``$epoch``, ``$prev``): what the cadence is measured on and what
restart gaps are picked from (``pipelines.features.GAPS_SQL``)."""

MEASURE_SQL = (
    "WITH"
    + HEARTBEAT_GAPS_CTE
    + """,
per_device AS (
    SELECT median(date_diff('millisecond', before, ts) / 60000.0) AS minutes FROM gaps WHERE ts > before GROUP BY device_id
),
pinged AS (SELECT count(*) AS pings FROM uptime WHERE _hour = $epoch AND source = 'ping' GROUP BY device_id)
SELECT (SELECT median(minutes) FROM per_device), (SELECT count(*) FROM per_device), (SELECT median(pings) FROM pinged),
       EXISTS (SELECT 1 FROM uptime WHERE _hour = $epoch AND source = 'heartbeat')
"""
)


@dataclass(frozen=True)
class Cadence:
    heartbeat_minutes: int = REFERENCE_HEARTBEAT_MINUTES
    pings_per_hour: int = REFERENCE_PINGS_PER_HOUR
    """0: the backend pinged no device this hour."""
    measured_devices: int = 0
    heartbeats: bool = True
    """False: no device sent a heartbeat this hour."""

    @property
    def up_heartbeats(self) -> int:
        """Half the heartbeats an hour brings (3 of 6 at the reference); 0 in an hour without any."""
        return max(1, math.ceil(30 / self.heartbeat_minutes)) if self.heartbeats else 0

    @property
    def reach_minutes(self) -> int:
        """A little more than one interval (12 minutes at the reference): a device alive this
        close on both sides of a challenge was reachable when it was issued."""
        return round(1.2 * self.heartbeat_minutes)

    @property
    def restart_minutes(self) -> tuple[int, int]:
        """A silence of 1.4 to 4 intervals (14-40 minutes at the reference): one or a few
        heartbeats missed, a restart; longer is an outage."""
        return round(1.4 * self.heartbeat_minutes), 4 * self.heartbeat_minutes


LIVENESS_MACROS = f"""
CREATE OR REPLACE TEMP MACRO pings_answered(ping_total, ping_ok, pings_per_hour) AS
    coalesce(pings_per_hour, {REFERENCE_PINGS_PER_HOUR}) = 0 OR (ping_total > 0 AND 2 * ping_ok >= ping_total);
CREATE OR REPLACE TEMP MACRO reachable_hour(ping_total, ping_ok, pow_ok, pings_per_hour) AS
    pings_answered(ping_total, ping_ok, pings_per_hour) OR coalesce(pow_ok, 0) > 0;
CREATE OR REPLACE TEMP MACRO answered_hour(ping_total, ping_ok, heartbeat_ok, pow_ok, pings_per_hour, up_heartbeats) AS
    coalesce(pow_ok, 0) > 0 OR CASE WHEN coalesce(pings_per_hour, {REFERENCE_PINGS_PER_HOUR}) = 0
         THEN heartbeat_ok >= coalesce(up_heartbeats, {Cadence().up_heartbeats})
         ELSE pings_answered(ping_total, ping_ok, pings_per_hour) END;
"""
"""Liveness over a device's hour (``device_features``) and the hour's ``uptime_cadence`` (null:
the reference). ``pings_answered``: most of the backend's pings answered, or the backend pinged
nobody that hour. ``reachable_hour``: that, or a proof-of-work challenge answered in the hour:
a firewall that drops the backend's probes (ICMP blocked) fails every ping of a machine that
computes every product it is sent; an answered challenge is the stronger sign of life, and one
that an uptime spoofer, down when asked, cannot give. ``answered_hour``: the device answered
its backend, by a challenge, else by pings where the hour has them, else by half its
heartbeats (what downtime slashing reads: an independently written network's machines behind
such firewalls were slashed for 24 hours "down" while every challenge they were sent was
answered)."""


def measure_cadence(con: duckdb.DuckDBPyConnection, epoch: str) -> Cadence:
    """Measure the epoch's cadence from its ``uptime`` rows and store it in ``uptime_cadence``."""
    interval, devices, pings, heartbeats = con.execute(MEASURE_SQL, {"epoch": epoch, "prev": previous_epoch(epoch)}).fetchall()[0]
    absent = {"pings_per_hour": 0} if pings is None else {}
    absent |= {"heartbeats": False} if not heartbeats else {}
    cadence = Cadence(measured_devices=int(devices), **absent)
    if devices >= MIN_DEVICES and interval is not None:
        cadence = Cadence(
            heartbeat_minutes=min(60, max(1, round(float(interval)))),
            pings_per_hour=max(1, round(float(pings))) if pings is not None else 0,
            measured_devices=int(devices),
        )
    low, high = cadence.restart_minutes
    con.execute("DELETE FROM uptime_cadence WHERE epoch = ?", [epoch])
    con.execute(
        "INSERT INTO uptime_cadence VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [epoch, cadence.heartbeat_minutes, cadence.pings_per_hour, cadence.measured_devices,
         cadence.up_heartbeats, cadence.reach_minutes, low, high],
    )  # fmt: skip
    return cadence
