"""``burst``: devices arriving in a wave (+20,000 RTX 4070s overnight, 1.8M fake GPUs at once).

For each dimension (claimed model, account, ASN, as in the device's first hardware report) it
counts devices seen for the first time each hour. A *burst* is an hour (among the last
``recent_hours``, so a device that sent its first hardware report an hour late still joins its
wave) whose new devices for one value reach ``min_devices`` and ``factor`` x (that value's mean
new devices per hour earlier in the window + 1). A *ramp* is a value
adding devices in at least ``ramp_hours`` of the last ``ramp_window_hours`` hours, ``ramp_min``
in all: a steady linear build-up that stays under the burst bar each hour. The new devices get
the evidence (which wave, how big, against what baseline).

Honest model: operators onboard whole racks at once and a popular new card arrives in waves,
so a wave alone proves nothing. Waves only suspect, and only the devices of a wave that had
the chance to prove themselves and did not: a device challenged at least twice while
reachable (seen alive around the challenge) that has not answered one challenge in the window
with every sampled entry verified (one lost challenge is an honest worker's bad luck). A device that answered correctly is a real GPU doing the work (if it is a
virtualized slice or a misnamed card, the other detectors judge that); a new rack still in
maintenance has not been asked yet. Fake devices never get there.
The first hour the database holds has no history and is never a burst.
"""

from __future__ import annotations

import polars as pl

from detectors.base import Detector, Evidence


class FleetBurst(Detector):
    name = "fleet_burst"
    fraud_type = "burst"

    def __init__(
        self,
        threshold: float = 0.5,
        window_hours: int = 24,
        recent_hours: int = 3,
        min_devices: int = 20,
        factor: float = 5.0,
        ramp_window_hours: int = 6,
        ramp_hours: int = 4,
        ramp_min: int = 30,
    ):
        super().__init__(threshold)
        self.window_hours = window_hours
        self.recent_hours = recent_hours
        self.min_devices = min_devices
        self.factor = factor
        self.ramp_window_hours = ramp_window_hours
        self.ramp_hours = ramp_hours
        self.ramp_min = ramp_min

    def score(self, evidence: Evidence) -> pl.DataFrame:
        return evidence.sql(
            """
            WITH first_seen AS (  -- when each device appeared, and what its first hardware report said
                SELECT device_id, min(epoch) AS first_epoch,
                       arg_min(catalogue_model, epoch) FILTER (hw_reports > 0) AS model,
                       arg_min(account_id, epoch) FILTER (hw_reports > 0) AS account,
                       arg_min(CAST(asn AS VARCHAR), epoch) FILTER (hw_reports > 0) AS asn
                FROM device_features WHERE epoch <= $epoch GROUP BY device_id
            ),
            history_start AS (SELECT min(epoch) AS e FROM device_features),
            arrivals AS (  -- each device under each dimension, in the hour it first appeared
                SELECT fs.device_id, fs.first_epoch, d.dim, d.value
                FROM first_seen fs
                CROSS JOIN LATERAL (VALUES ('model', fs.model), ('account', fs.account), ('asn', fs.asn)) AS d(dim, value)
                WHERE fs.first_epoch > (SELECT e FROM history_start) AND d.value IS NOT NULL
                  AND fs.first_epoch > hours_back($epoch, $window)
            ),
            hourly AS (SELECT dim, value, first_epoch, count(*) AS n FROM arrivals GROUP BY ALL),
            bursts AS (  -- recent arrival hours far above the value's earlier arrival rate
                SELECT h.dim, h.value, h.first_epoch, h.n,
                       coalesce((SELECT sum(e.n) FROM hourly e WHERE e.dim = h.dim AND e.value = h.value
                                 AND e.first_epoch < h.first_epoch), 0) / $window AS per_hour
                FROM hourly h
                WHERE h.first_epoch > hours_back($epoch, $recent)
                  AND h.n >= $min_devices
            ),
            ramps AS (
                SELECT dim, value, sum(n) AS n, count(*) AS hours FROM hourly
                WHERE first_epoch > hours_back($epoch, $ramp_window)
                GROUP BY ALL HAVING count(*) >= $ramp_hours AND sum(n) >= $ramp_min AND max(first_epoch) = $epoch
            ),
            hits AS (
                SELECT a.device_id, b.dim, b.value,
                       format('one of {} devices with {} {} that appeared in {} (baseline {:.1f}/hour)',
                              b.n, b.dim, b.value, b.first_epoch, b.per_hour) AS what
                FROM bursts b JOIN arrivals a ON a.dim = b.dim AND a.value = b.value AND a.first_epoch = b.first_epoch
                WHERE b.n >= $factor * (b.per_hour + 1)
                UNION ALL
                SELECT a.device_id, r.dim, r.value,
                       format('one of {} devices added with {} {} over {} of the last {} hours', r.n, r.dim, r.value, r.hours, $ramp_window)
                FROM ramps r JOIN arrivals a ON a.dim = r.dim AND a.value = r.value
                 AND a.first_epoch > hours_back($epoch, $ramp_window)
            ),
            unproven AS (  -- asked while reachable, never answered with every sampled entry verified
                SELECT device_id FROM device_features
                WHERE epoch > hours_back($epoch, $window) AND epoch <= $epoch
                GROUP BY device_id
                HAVING sum(pow_reachable) >= 2  -- one lost challenge is an honest worker's bad luck
                   AND NOT (sum(pow_ok) > 0 AND sum(samples_total) > 0 AND sum(samples_bad) = 0)
            )
            SELECT h.device_id, f.account_id, least(1.0, 0.55 + 0.1 * count(DISTINCT h.dim)) AS score, 'probation' AS action,
                   string_agg(DISTINCT h.what, '; ' ORDER BY h.what) AS reason,
                   CAST(json_object('proof', 'suspicion',
                        'matches', list(DISTINCT {'dimension': h.dim, 'value': h.value} ORDER BY {'dimension': h.dim, 'value': h.value})) AS VARCHAR) AS details
            FROM hits h LEFT JOIN device_features f ON f.device_id = h.device_id AND f.epoch = $epoch
            WHERE h.device_id IN (SELECT device_id FROM unproven)
            GROUP BY h.device_id, f.account_id
            """,
            window=self.window_hours,
            recent=self.recent_hours,
            min_devices=self.min_devices,
            factor=self.factor,
            ramp_window=self.ramp_window_hours,
            ramp_hours=self.ramp_hours,
            ramp_min=self.ramp_min,
        )
