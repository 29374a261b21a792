"""``spoofed_uptime``: the device says it is alive while every backend probe says it is not.

An hour is suspicious when heartbeats arrive (the device's own claim) while the backend's
pings fail and its proof-of-work challenges go unanswered (two independent probes).

Honest model: honest outages stop heartbeats too; honest NAT devices lose some pings but answer
their PoW. One honest device does look like this: a worker behind NAT whose GPU has hung (the
worker heartbeats, the NAT eats pings, the GPU answers nothing). Holding its rewards while it
does no work is right; slashing it is not, so ``suspect_hours`` such hours in the window put a
device in probation (proof ``suspicion``), and only ``confirm_hours`` (a whole day of claiming
to be online without a single answered probe) establish it. Behind NAT, where pings always
fail, one timed-out challenge makes such an hour by chance: on 60 random networks (seeds 14-16)
86 honest devices had one such hour in 48, and two had two (10 and 25 hours apart), none three.
Chance hours are independent, so each hour asked for divides the false alarms by the chance
rate times the window; ``suspect_hours`` is 3. An hour in which the challenge service itself
failed (``challenge_outages``, written by the features stage) is never suspicious: behind NAT, three
hours of that outage would otherwise put every device whose pings fail in probation. Waiting
costs nothing: a device that fails most pings earns no uptime, so it is not paid while it waits.
``min_heartbeats`` and ``min_pings`` are counts at the reference cadence (heartbeats every 10
minutes, 4 pings an hour) and scale with each hour's measured cadence (``pipelines.cadence``).
"""

from __future__ import annotations

import polars as pl

from detectors.base import Detector, Evidence
from pipelines.cadence import REFERENCE_HEARTBEAT_MINUTES, REFERENCE_PINGS_PER_HOUR


class SpoofedUptime(Detector):
    name = "spoofed_uptime"
    fraud_type = "spoofed_uptime"

    def __init__(
        self,
        threshold: float = 0.5,
        window_hours: int = 24,
        min_heartbeats: int = 3,
        min_pings: int = 3,
        max_ping_ok_share: float = 0.25,
        suspect_hours: int = 3,
        confirm_hours: int = 24,
    ):
        super().__init__(threshold)
        self.window_hours = window_hours
        self.min_heartbeats = min_heartbeats
        self.min_pings = min_pings
        self.max_ping_ok_share = max_ping_ok_share
        self.suspect_hours = suspect_hours
        self.confirm_hours = confirm_hours

    def score(self, evidence: Evidence) -> pl.DataFrame:
        return evidence.sql(
            """
            WITH outage AS (  -- hours the challenge service failed (recorded by the features stage): challenges timed
                -- out, none counted as a reachable device's own; such an hour's timeouts are nobody's evidence
                SELECT epoch FROM challenge_outages WHERE epoch > hours_back($epoch, $window) AND epoch <= $epoch
            ),
            hours AS (  -- min_heartbeats and min_pings are counts at the reference cadence
                -- (heartbeats every 10 minutes, 4 pings an hour), scaled to the hour's own (pipelines.cadence)
                SELECT f.device_id, f.epoch, f.account_id, f.heartbeat_ok, f.ping_ok, f.ping_total, f.pow_timeout, f.pow_ok,
                       f.heartbeat_ok >= greatest(1, ceil($min_hb * $ref_minutes / coalesce(c.heartbeat_minutes, $ref_minutes)))
                       AND f.ping_total >= greatest(1, ceil($min_pings * coalesce(c.pings_per_hour, $ref_pings) / $ref_pings))
                       AND f.ping_ok <= $ping_share * f.ping_total
                       AND f.pow_timeout > 0 AND f.pow_ok = 0 AND f.epoch NOT IN (SELECT epoch FROM outage) AS suspicious
                FROM device_features f LEFT JOIN uptime_cadence c ON c.epoch = f.epoch
                WHERE f.epoch > hours_back($epoch, $window)
                  AND f.epoch <= $epoch
            ),
            per_device AS (
                SELECT device_id, count(*) FILTER (suspicious) AS bad_hours,
                       sum(heartbeat_ok) FILTER (suspicious) AS heartbeats,
                       sum(ping_ok) FILTER (suspicious) AS pings_ok,
                       sum(ping_total) FILTER (suspicious) AS pings,
                       sum(pow_timeout) FILTER (suspicious) AS timeouts
                FROM hours GROUP BY device_id
            )
            SELECT p.device_id, f.account_id,
                   least(1.0, 0.5 + 0.5 * p.bad_hours / $confirm) AS score,
                   CASE WHEN p.bad_hours >= $confirm THEN 'reject' ELSE 'probation' END AS action,
                   format('in {} of the last {} hours heartbeats said online ({} ok) while pings failed ({} of {} ok) and {} PoW challenge(s) timed out',
                          p.bad_hours, $window, p.heartbeats, p.pings_ok, p.pings, p.timeouts) AS reason,
                   CAST(json_object('proof', CASE WHEN p.bad_hours >= $confirm THEN 'statistical' ELSE 'suspicion' END,
                        'suspicious_hours', p.bad_hours, 'heartbeats_ok', p.heartbeats,
                        'pings_ok', p.pings_ok, 'pings', p.pings, 'pow_timeouts', p.timeouts) AS VARCHAR) AS details
            FROM per_device p
            JOIN device_features f ON f.device_id = p.device_id AND f.epoch = $epoch
            WHERE p.bad_hours >= $suspect
            """,
            window=self.window_hours,
            min_hb=self.min_heartbeats,
            min_pings=self.min_pings,
            ref_minutes=float(REFERENCE_HEARTBEAT_MINUTES),
            ref_pings=float(REFERENCE_PINGS_PER_HOUR),
            ping_share=self.max_ping_ok_share,
            suspect=self.suspect_hours,
            confirm=self.confirm_hours,
        )
