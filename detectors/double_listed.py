"""``double_listed``: one GPU offered on another network: from somewhere else (a borrowed or
cloned identity), or from this machine while it earns here (the network's policy decides).

Three findings, told apart in the evidence:
- *another host*: the same NVML UUID listed elsewhere, from another IP and another host, in
  the same hour the device reports it here: one card cannot be in two places, so one of the
  two listings is a borrowed or cloned identity. Seen in one hour suspects; in
  ``confirm_hours`` of the last ``window_hours`` establishes (proof ``exact``).
- *cross-listed*: this machine itself (its GPU UUID, or its host fingerprint on a listing
  that names no card) listed on another network in the hour it earns here. Whether that is
  fraud is the network's policy (``cross_listing``): block rewards pay for a card's time, and
  the same time offered and paid elsewhere is paid twice (``hold``, the default: probation
  while it is listed, never a rejection or a slash, proof ``policy``); a network that lets
  owners fill idle time elsewhere sets ``allow``. An address alone never matches: a carrier or
  campus NAT puts hundreds of unrelated machines behind one (an independently written
  network's IP-only listings hit 34 honest NAT neighbours). Honest model: an owner who moves a
  machine between networks (for good, or here by day and there by night) is on both lists
  around the switch: the other network's crawl saw it minutes before it started here or after
  it stopped, and its old listing lingers until that crawler notices it has gone. A listing
  counts only when its time falls inside the machine's life here (a sign of the worker within
  ``life_gap_minutes`` before it and another after it: a report, heartbeat or answered
  challenge), in at least ``cross_min_hours`` of the window: a sixth network written by
  others had 6 of its 16 honest switchers held; inside their life here they were listed in at
  most 2 hours of 36, double-listers of five networks in 3 to 40.

- *refuses every rental* (suspicion): rentals that end ``failed`` or ``cancelled_by_worker``
  within ``refusal_minutes`` of their start, in an hour in which the device answered its
  challenges (none timed out) and every heartbeat: the card answers a challenge but cannot take
  a renter, so its time is somewhere else (listed on a network we do not scrape, or a relay
  for a card that serves several devices). Honest model: renters' code crashes and owners
  reboot; honest devices of four networks written by others refused 0.2-17.5% of their rentals,
  nearly all of them while down, which is downtime, not this. With x such refusals among the n
  rentals of the last ``refusal_window_hours`` that were not refused while down, the binomial
  tail at ``honest_refusal_rate`` (20%) <= ``alpha_suspect`` (1e-2, and x >= ``min_refusals``)
  holds the device in probation, never more.

Honest model: a machine with both IPv4 and IPv6 is seen at one address of each family, and
another network may see the other family than ours. Without a host fingerprint on the listing,
addresses are compared only within one family; a listing whose fingerprint differs from the
device's is another host whatever its address. Over IPv6 a machine's privacy address rotates
within its LAN's /64, so addresses are compared as sites (``contract.ip_site``). A home's IPv4
address is renewed now and then, and the other network may have seen the old one (or the new
one first): without a fingerprint, a listing from an address the device itself reported from
in the hour before, the same hour or the next is no evidence.
"""

from __future__ import annotations

import polars as pl
from scipy.stats import binom

from detectors.base import Detector, Evidence
from detectors.concurrent import worker_signs

CROSS_LISTING = {"hold", "allow"}
"""What a machine listed on another network while it earns here gets: probation, or nothing."""


class DoubleListed(Detector):
    name = "double_listed"
    fraud_type = "double_listed"

    def __init__(
        self,
        threshold: float = 0.5,
        window_hours: int = 24,
        confirm_hours: int = 3,
        cross_listing: str = "hold",
        refusal_window_hours: int = 48,
        refusal_minutes: int = 10,
        honest_refusal_rate: float = 0.2,
        min_refusals: int = 3,
        alpha_suspect: float = 1e-2,
        cross_min_hours: int = 3,
        life_gap_minutes: int = 60,
    ):
        super().__init__(threshold)
        if cross_listing not in CROSS_LISTING:
            raise ValueError(f"{self.name}: cross_listing {cross_listing!r} is not one of {sorted(CROSS_LISTING)}")
        self.window_hours = window_hours
        self.confirm_hours = confirm_hours
        self.cross_listing = cross_listing
        self.refusal_window_hours = refusal_window_hours
        self.refusal_minutes = refusal_minutes
        self.honest_refusal_rate = honest_refusal_rate
        self.min_refusals = min_refusals
        self.alpha_suspect = alpha_suspect
        self.cross_min_hours = cross_min_hours
        self.life_gap_minutes = life_gap_minutes

    def score(self, evidence: Evidence) -> pl.DataFrame:
        listed = self._listings(evidence)
        refused = self._refusals(evidence)
        both = listed.join(refused, on="device_id", how="full", coalesce=True, suffix="_refused")
        return both.select(
            "device_id",
            pl.coalesce("account_id", "account_id_refused").alias("account_id"),
            pl.max_horizontal("score", "score_refused").alias("score"),
            pl.when((pl.col("action") == "reject") | (pl.col("action_refused") == "reject"))
            .then(pl.lit("reject"))
            .otherwise(pl.lit("probation"))
            .alias("action"),
            pl.concat_str(["reason", "reason_refused"], separator="; ", ignore_nulls=True).alias("reason"),
            pl.coalesce("details", "details_refused").alias("details"),
        )

    def _refusals(self, evidence: Evidence) -> pl.DataFrame:
        """Devices that fail or cancel their rentals within minutes while answering everything else."""
        counted = evidence.sql(
            """
            WITH j AS (  -- each job once (a re-delivered row is the same job)
                SELECT job_id, arg_max(device_id, _hour) AS device_id, arg_max(status, _hour) AS status,
                       arg_max(coalesce(started_at, created_at), _hour) AS began, arg_max(ended_at, _hour) AS ended_at
                FROM jobs WHERE _hour > hours_back($epoch, $window) AND _hour <= $epoch GROUP BY job_id
            ),
            judged AS (
                SELECT j.device_id, f.account_id, strftime(j.ended_at, '%Y-%m-%dT%H') AS hour,
                       j.status IN ('failed', 'cancelled_by_worker')
                           AND date_diff('second', j.began, j.ended_at) <= $minutes * 60 AS refused,
                       coalesce(f.pow_ok > 0 AND f.pow_timeout = 0 AND f.heartbeat_total > 0
                                AND f.heartbeat_ok = f.heartbeat_total, false) AS up
                FROM j LEFT JOIN device_features f ON f.device_id = j.device_id AND f.epoch = strftime(j.ended_at, '%Y-%m-%dT%H')
            )
            SELECT device_id, any_value(account_id) FILTER (account_id IS NOT NULL) AS account_id,
                   count(*) FILTER (refused AND up) AS refused, count(*) FILTER (NOT refused OR up) AS rentals,
                   min(hour) FILTER (refused AND up) AS first_hour
            FROM judged WHERE device_id IN (SELECT device_id FROM device_features WHERE epoch = $epoch)
            GROUP BY device_id HAVING count(*) FILTER (refused AND up) >= $min_refusals
            """,
            window=self.refusal_window_hours,
            minutes=self.refusal_minutes,
            min_refusals=self.min_refusals,
        )
        tail = binom.sf(counted["refused"].to_numpy() - 1, counted["rentals"].to_numpy(), self.honest_refusal_rate)
        return (
            counted.with_columns(pl.Series("p_value", tail, dtype=pl.Float64))
            .filter(pl.col("p_value") <= self.alpha_suspect * (1 + 1e-9))
            .select(
                "device_id",
                "account_id",
                pl.lit(0.8).alias("score"),
                pl.lit("probation").alias("action"),
                pl.format(
                    "failed or cancelled {} of its {} rentals within {} minutes of their start (the last {} hours, from {}), "
                    "in hours it answered every challenge and heartbeat (p = {} under an honest {}% rate): its card's time "
                    "is somewhere else",
                    "refused",
                    "rentals",
                    pl.lit(self.refusal_minutes),
                    pl.lit(self.refusal_window_hours),
                    "first_hour",
                    pl.col("p_value").round_sig_figs(2).cast(pl.String),
                    pl.lit(round(100 * self.honest_refusal_rate, 1)),
                ).alias("reason"),
                pl.struct(
                    pl.lit("suspicion").alias("proof"),
                    pl.col("refused").alias("rentals_refused"),
                    "rentals",
                    "p_value",
                )
                .struct.json_encode()
                .alias("details"),
            )
        )

    def _listings(self, evidence: Evidence) -> pl.DataFrame:
        """Devices whose card or machine is listed on another network in the window."""
        return evidence.sql(
            """
            WITH matched AS (
                SELECT h._hour AS epoch, h.device_id, h.account_id, x.ts, x.network, x.ip AS listed_ip, h.ip,
                       'GPU UUID' AS matched_on,
                       ip_site(x.ip) <> ip_site(h.ip)  -- another address of the same IPv6 /64 is the same LAN
                       -- no fingerprint on the listing: an address of the other family is no evidence (dual stack),
                       -- nor one the device itself reported from in the hour before, this one or the next (a
                       -- home's address renewed: the other network saw it before or after we did)
                       AND coalesce(x.host_fingerprint <> h.host_fingerprint,
                                    contains(x.ip, ':') = contains(h.ip, ':') AND NOT EXISTS (
                                        SELECT 1 FROM hardware o WHERE o.device_id = h.device_id
                                        AND o._hour >= hours_back(x._hour, 1) AND o._hour <= epoch_shift(x._hour, 1)
                                        AND ip_site(o.ip) = ip_site(x.ip))) AS elsewhere
                FROM external_listings x
                JOIN hardware h ON h.gpu_uuid = x.gpu_uuid AND h._hour = x._hour
                WHERE x._hour > hours_back($epoch, $window) AND x._hour <= $epoch AND x.gpu_uuid IS NOT NULL
                UNION ALL  -- a machine listed whole (its fingerprint, no card named): each of its cards is listed
                SELECT f.epoch, f.device_id, f.account_id, x.ts, x.network, x.ip, f.ip, 'host fingerprint', false
                FROM external_listings x
                JOIN device_features f ON f.epoch = x._hour AND f.host_fingerprint = x.host_fingerprint  -- placeholders are NULL there
                WHERE x._hour > hours_back($epoch, $window) AND x._hour <= $epoch AND x.gpu_uuid IS NULL
            ),
            signs AS (  -- the worker's own signs of life around the cross-listings (detectors.concurrent)
                {SIGNS}
            ),
            lived AS (  -- cross-listings whose time falls inside the machine's life here: a sign before it and one after
                SELECT DISTINCT m.device_id, m.epoch FROM matched m JOIN signs s USING (device_id)
                WHERE NOT m.elsewhere AND s.t BETWEEN m.ts - to_minutes($gap) AND m.ts + to_minutes($gap)
                GROUP BY m.device_id, m.epoch, m.ts, m.network HAVING bool_or(s.t <= m.ts) AND bool_or(s.t >= m.ts)
            ),
            per_device AS (
                SELECT device_id, any_value(account_id) AS account_id,
                       count(DISTINCT epoch) FILTER (elsewhere) AS hours, bool_or(epoch = $epoch AND elsewhere) AS now,
                       min(network) FILTER (elsewhere) AS network, min(listed_ip) FILTER (elsewhere) AS listed_ip,
                       min(ip) FILTER (elsewhere) AS ip,
                       count(DISTINCT epoch) FILTER (NOT elsewhere AND l.epoch IS NOT NULL) AS cross_hours,
                       bool_or(epoch = $epoch AND NOT elsewhere AND l.epoch IS NOT NULL) AS cross_now,
                       min(network) FILTER (NOT elsewhere AND l.epoch IS NOT NULL) AS cross_network,
                       min(matched_on) FILTER (NOT elsewhere AND l.epoch IS NOT NULL) AS cross_on
                FROM matched LEFT JOIN lived l USING (device_id, epoch) GROUP BY device_id
            )
            SELECT device_id, account_id,
                   CASE WHEN hours >= $confirm THEN 1.0 WHEN hours > 0 THEN 0.8 ELSE 0.7 END AS score,
                   CASE WHEN hours >= $confirm THEN 'reject' ELSE 'probation' END AS action,
                   CASE WHEN hours > 0 THEN
                        format('its GPU UUID is listed on {} from {} (another host) while it reports from {}; in {} of the last {} hours',
                               network, listed_ip, ip, hours, $window)
                        ELSE format('this machine is listed on {} (its {}) while it works here (the listing''s time inside '
                                    'its life here), in {} of the last {} hours: one card''s time paid twice (policy: '
                                    'cross_listing = hold; held, never slashed)',
                                    cross_network, cross_on, cross_hours, $window) END AS reason,
                   CAST(CASE WHEN hours > 0 THEN json_object('proof', 'exact', 'network', network, 'listed_ip', listed_ip, 'ip', ip, 'hours', hours)
                             ELSE json_object('proof', 'policy', 'cross_listed_on', cross_network, 'matched_on', cross_on,
                                              'hours', cross_hours) END AS VARCHAR) AS details
            FROM per_device
            WHERE hours > 0 OR ($hold AND cross_now AND cross_hours >= $cross_min)
            """.replace(
                "{SIGNS}", worker_signs("SELECT device_id FROM matched WHERE NOT elsewhere", "hours_back($epoch, $window)")
            ),
            window=self.window_hours,
            confirm=self.confirm_hours,
            hold=self.cross_listing == "hold",
            cross_min=self.cross_min_hours,
            gap=self.life_gap_minutes,
        )
