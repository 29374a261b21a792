"""``spoofed_uptime``: the device says it is alive while every backend probe says it is not.

An hour is suspicious when heartbeats arrive (the device's own claim) while the backend's
pings fail and its proof-of-work challenges go unanswered (two independent probes).

A careful relay answers the pings too and wakes the machine for each challenge: its answers
then come long after the computation it reports. A round trip (``responded_at - issued_at``,
both on the backend's clock) is the multiplication the worker reports (``compute_ms``), the
network (well under a second), and generating the matrices from the seed and hashing the
product on its CPU, which grow with n^2: per device, the rest of the round trip is its own
multiple of n^2 (the median over the window's lone matmul answers) and a little noise. An answer
later than that by more than ``late_seconds`` is time the worker does not account for; a slow or
busy CPU is its own multiple, and only lone challenges count (case-mates generating matrices in
one batch share a CPU: a network written by others had honest datacenter hosts answer batches
more than 15 s late). On five networks written by others no honest lone matmul answer came more
than 2.8 s after that (178,000 answers of some 6,000 honest devices); a sixth's careful relays
woke their machines in 18-40 s. ``late_hours`` hours with such an answer in the window put the
device in probation (a stall is one hour), never more: the relay itself is not seen.

Honest model: honest outages stop heartbeats too; honest NAT devices lose some pings but answer
their PoW. One honest device does look like this: a worker behind NAT whose GPU has hung (the
worker heartbeats, the NAT eats pings, the GPU answers nothing). Holding its rewards while it
does no work is right; slashing it is not, so ``suspect_hours`` such hours in the window put a
device in probation (proof ``suspicion``), and only ``confirm_hours`` (a whole day of claiming
to be online without a single answered probe) establish it. Behind NAT, where pings always
fail, one timed-out challenge makes such an hour by chance: on 60 random networks (seeds 14-16)
86 honest devices had one such hour in 48, and two had two (10 and 25 hours apart), none three.
Chance hours are independent, so each hour asked for divides the false alarms by the chance
rate times the window; ``suspect_hours`` is 3. That rate is the simulator's: a twentieth network
written by others had carrier-NAT devices lose more challenges, and 15 of its 71 had three such
hours or more (up to five in 48). So a device whose pings are dropped on the way is not judged
here at all: over ``recurrence_hours`` it answered no ping, while it answered challenges in hours
whose pings all failed. A failed ping says nothing about it, and its timeouts while it heartbeats
are ``failed_pow``'s to judge, at that detector's stated rate (a GPU hung behind NAT is held
there, never rejected here). Across eleven networks written by others, every such device was
honest. An hour in which the challenge service itself
failed (``challenge_outages``, written by the features stage) is never suspicious: behind NAT, three
hours of that outage would otherwise put every device whose pings fail in probation. Waiting
costs nothing: a device that fails most pings earns no uptime, so it is not paid while it waits.
*Dark again*: a box that holds the device's address can answer the pings as well as the
heartbeats all night while the GPU is off; only the challenges tell, and ``failed_pow`` lets the
device go six hours after each night. An honest worker hangs now and then while its host answers,
once; a gamer's evening loses a challenge or two. ``dark_runs`` separate stretches of at least
``dark_run_hours`` hours within ``recurrence_hours`` in which every challenge found the device
alive (``pow_reachable``) and none was answered put the device in probation, never more (on
three networks written by others no honest device had two such stretches, three had one).

``min_heartbeats`` and ``min_pings`` are counts at the reference cadence (heartbeats every 10
minutes, 4 pings an hour) and scale with each hour's measured cadence (``pipelines.cadence``).
"""

from __future__ import annotations

import polars as pl

from detectors.base import Detector, Evidence
from pipelines.cadence import REFERENCE_HEARTBEAT_MINUTES, REFERENCE_PINGS_PER_HOUR

LATE_ANSWERS_CTE = """
    lone AS (  -- lone matmul answers in the window, with the time beyond the reported computation
        SELECT device_id, _hour AS epoch, CAST(n AS DOUBLE) * n AS n2,
               epoch_ms(responded_at) - epoch_ms(issued_at) - compute_ms AS over_ms
        FROM pow
        WHERE _hour > hours_back($epoch, $window) AND _hour <= $epoch AND kind = 'matmul' AND status = 'ok'
          AND batch_id IS NULL AND compute_ms > 0 AND responded_at IS NOT NULL AND n > 0
    ),
    own_cpu AS (  -- the device's own multiple of n^2 (its CPU's generation and hashing)
        SELECT device_id, median(over_ms / n2) AS ms_per_n2, count(*) AS answers FROM lone GROUP BY device_id
    ),
    late AS (
        SELECT l.device_id, any_value(c.answers) AS lone_answers, count(*) AS late_answers,
               count(DISTINCT l.epoch) AS late_hours, min(l.epoch) AS late_first,
               max(l.over_ms - c.ms_per_n2 * l.n2) / 1000 AS late_worst_s
        FROM lone l JOIN own_cpu c USING (device_id)
        WHERE l.over_ms - c.ms_per_n2 * l.n2 > $late_ms
        GROUP BY l.device_id
    )"""
"""Per device with a lone matmul answer later than ``$late_ms`` beyond its own CPU's time:
``lone_answers``, ``late_answers``, ``late_hours``, ``late_first``, ``late_worst_s``."""


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
        late_seconds: float = 10.0,
        late_hours: int = 3,
        recurrence_hours: int = 48,
        dark_run_hours: int = 3,
        dark_runs: int = 2,
    ):
        super().__init__(threshold)
        self.window_hours = window_hours
        self.min_heartbeats = min_heartbeats
        self.min_pings = min_pings
        self.max_ping_ok_share = max_ping_ok_share
        self.suspect_hours = suspect_hours
        self.confirm_hours = confirm_hours
        self.late_seconds = late_seconds
        self.late_hours = late_hours
        self.recurrence_hours = recurrence_hours
        self.dark_run_hours = dark_run_hours
        self.dark_runs = dark_runs

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
            ping_blocked AS (  -- pings never answered over recurrence_hours, while challenges were answered in hours whose
                -- pings all failed: the probes are dropped on the way (carrier NAT, a firewall), so a failed ping says
                -- nothing and such a device's hours are no evidence here; its timeouts are failed_pow's to judge
                SELECT device_id FROM device_features
                WHERE epoch > hours_back($epoch, $recur_window) AND epoch <= $epoch
                  AND device_id IN (SELECT device_id FROM hours WHERE suspicious)  -- only those it could concern
                GROUP BY device_id
                HAVING coalesce(sum(ping_ok), 0) = 0 AND count(*) FILTER (ping_total > 0 AND ping_ok = 0 AND pow_ok > 0) > 0
            ),
            per_device AS (
                SELECT device_id, count(*) FILTER (suspicious) AS bad_hours,
                       sum(heartbeat_ok) FILTER (suspicious) AS heartbeats,
                       sum(ping_ok) FILTER (suspicious) AS pings_ok,
                       sum(ping_total) FILTER (suspicious) AS pings,
                       sum(pow_timeout) FILTER (suspicious) AS timeouts
                FROM hours WHERE device_id NOT IN (SELECT device_id FROM ping_blocked) GROUP BY device_id
            ),
            {LATE},
            dark_candidates AS (  -- devices with enough dark hours in the recurrence window to make the runs asked for
                SELECT device_id FROM device_features
                WHERE epoch > hours_back($epoch, $recur_window) AND epoch <= $epoch
                  AND pow_reachable > 0 AND pow_timeout_reachable = pow_reachable
                GROUP BY device_id HAVING count(*) >= $dark_run * $dark_runs
            ),
            dark_hours AS (  -- a dark hour: pings or heartbeats around every challenge (pow_reachable), none answered;
                -- an hour without a reachable challenge and without an answer neither breaks nor extends a run
                SELECT f.device_id, f.epoch, f.pow_reachable > 0 AND f.pow_timeout_reachable = f.pow_reachable AS dark
                FROM device_features f JOIN dark_candidates USING (device_id)
                WHERE f.epoch > hours_back($epoch, $recur_window) AND f.epoch <= $epoch
                  AND ((f.pow_reachable > 0 AND f.pow_timeout_reachable = f.pow_reachable) OR f.pow_ok > 0)
                  AND f.epoch NOT IN (SELECT epoch FROM challenge_outages
                                      WHERE epoch > hours_back($epoch, $recur_window) AND epoch <= $epoch)
            ),
            dark_runs AS (
                SELECT device_id, min(epoch) AS run_from, count(*) AS run_hours
                FROM (SELECT *, row_number() OVER (PARTITION BY device_id ORDER BY epoch)
                                - row_number() OVER (PARTITION BY device_id, dark ORDER BY epoch) AS run FROM dark_hours)
                WHERE dark GROUP BY device_id, run HAVING count(*) >= $dark_run
            ),
            recurring AS (
                SELECT device_id, count(*) AS runs, CAST(sum(run_hours) AS BIGINT) AS hours,
                       string_agg(format('{} h from {}', run_hours, run_from), ', ' ORDER BY run_from) AS stretches
                FROM dark_runs GROUP BY device_id HAVING count(*) >= $dark_runs
            ),
            held AS (
                SELECT device_id FROM per_device WHERE bad_hours >= $suspect
                UNION SELECT device_id FROM late WHERE late_hours >= $late_hours
                UNION SELECT device_id FROM recurring
            )
            SELECT h.device_id, f.account_id,
                   least(1.0, 0.5 + 0.5 * coalesce(p.bad_hours, 0) / $confirm) AS score,
                   CASE WHEN p.bad_hours >= $confirm THEN 'reject' ELSE 'probation' END AS action,
                   concat_ws('; ',
                       CASE WHEN p.bad_hours >= $suspect THEN
                           format('in {} of the last {} hours heartbeats said online ({} ok) while pings failed ({} of {} ok) and {} PoW challenge(s) timed out',
                                  p.bad_hours, $window, p.heartbeats, p.pings_ok, p.pings, p.timeouts) END,
                       CASE WHEN l.late_hours >= $late_hours THEN
                           format('in {} of the last {} hours lone challenges were answered up to {} s after the computation it '
                                  'reported and its own generation time ({} of {} lone answers, first {}): the machine was woken '
                                  'by the challenge while something else kept it looking online',
                                  l.late_hours, $window, CAST(round(l.late_worst_s) AS BIGINT), l.late_answers, l.lone_answers, l.late_first) END,
                       CASE WHEN r.runs IS NOT NULL THEN
                           format('{} separate stretches of {} or more hours in the last {} ({}) in which pings or heartbeats '
                                  'answered around every challenge and none was answered: something keeps the device looking '
                                  'alive while its GPU is not there, again (a worker hung once is one stretch)',
                                  r.runs, $dark_run, $recur_window, r.stretches) END
                   ) AS reason,
                   CAST(json_object('proof', CASE WHEN p.bad_hours >= $confirm THEN 'statistical' ELSE 'suspicion' END,
                        'suspicious_hours', coalesce(p.bad_hours, 0), 'heartbeats_ok', p.heartbeats,
                        'pings_ok', p.pings_ok, 'pings', p.pings, 'pow_timeouts', p.timeouts,
                        'late_hours', coalesce(l.late_hours, 0), 'late_answers', coalesce(l.late_answers, 0),
                        'lone_answers', l.lone_answers, 'late_worst_s', round(l.late_worst_s, 1),
                        'dark_stretches', coalesce(r.runs, 0), 'dark_hours', coalesce(r.hours, 0)) AS VARCHAR) AS details
            FROM held h
            JOIN device_features f ON f.device_id = h.device_id AND f.epoch = $epoch
            LEFT JOIN per_device p ON p.device_id = h.device_id
            LEFT JOIN late l ON l.device_id = h.device_id
            LEFT JOIN recurring r ON r.device_id = h.device_id
            """.replace("{LATE}", LATE_ANSWERS_CTE),
            window=self.window_hours,
            min_hb=self.min_heartbeats,
            min_pings=self.min_pings,
            ref_minutes=float(REFERENCE_HEARTBEAT_MINUTES),
            ref_pings=float(REFERENCE_PINGS_PER_HOUR),
            ping_share=self.max_ping_ok_share,
            suspect=self.suspect_hours,
            confirm=self.confirm_hours,
            late_ms=1000.0 * self.late_seconds,
            late_hours=self.late_hours,
            recur_window=self.recurrence_hours,
            dark_run=self.dark_run_hours,
            dark_runs=self.dark_runs,
        )
