"""``duplicate_hardware``: one physical GPU identity reported by several devices at once.

Identities are the NVML UUID, the board serial, and the PCI bus id *on the same host* (bus ids
repeat across machines, so alone they prove nothing). Null identities (Apple, consumer cards
without serials) never match. Only devices alive at the same time share an identity
(``detectors.concurrent``: a reinstalled worker's old and new registration both report the card
in the hour of the switch, one after the other). Sharing in one hour suspects; sharing in
``confirm_hours`` of the last ``window_hours`` epochs establishes it.

Honest model: a GPU is in one machine, so the devices that share its identity report from one
public IP (two when the address changes within the hour). A value that devices report from more
than ``max_ips`` addresses at once (default ``MACHINE_MAX_IPS``, the bound a host fingerprint is
held to) is not one card's identity: it is a writer's stand-in for "no value" that ingest does
not know (``[N/A]`` and its kin land as null already), or identities made up, which only the
physics (PoW timing and contention) can judge. Such a value proves nothing and is not counted.
"""

from __future__ import annotations

import polars as pl

from detectors.base import Detector, Evidence
from detectors.concurrent import OVERLAP_MINUTES, concurrent_cte
from pipelines.features import MACHINE_MAX_IPS


class DuplicateHardware(Detector):
    name = "duplicate_hardware"
    fraud_type = "duplicate_hardware"

    def __init__(
        self,
        threshold: float = 0.5,
        window_hours: int = 3,
        confirm_hours: int = 2,
        max_ips: int = MACHINE_MAX_IPS,
        overlap_minutes: int = OVERLAP_MINUTES,
    ):
        super().__init__(threshold)
        self.overlap_minutes = overlap_minutes
        self.window_hours = window_hours
        self.confirm_hours = confirm_hours
        self.max_ips = max_ips

    def score(self, evidence: Evidence) -> pl.DataFrame:
        return evidence.sql(
            """
            WITH ids AS (
                SELECT DISTINCT device_id, ip_site(ip) AS ip, 'gpu_uuid' AS kind, gpu_uuid AS value FROM hardware
                WHERE _hour = $epoch AND gpu_uuid IS NOT NULL
                UNION ALL
                SELECT DISTINCT device_id, ip_site(ip), 'gpu_serial', gpu_serial FROM hardware
                WHERE _hour = $epoch AND gpu_serial IS NOT NULL
                UNION ALL
                SELECT DISTINCT device_id, ip_site(ip), 'pci_bus_id on host', host_fingerprint || ' ' || pci_bus_id FROM hardware
                WHERE _hour = $epoch AND pci_bus_id IS NOT NULL
            ),
            shared AS (  -- one card's identity on several devices, from at most max_ips sites (an IPv6 /64 is one)
                SELECT kind, value FROM ids GROUP BY kind, value
                HAVING count(DISTINCT device_id) > 1 AND count(DISTINCT ip) <= $max_ips
            ),
            candidates AS (
                SELECT DISTINCT i.device_id, i.kind || ' ' || i.value AS grp, i.kind, i.value
                FROM ids i JOIN shared USING (kind, value)
            ),
            {CONCURRENT},
            groups AS (  -- ...alive at the same time (a reinstall's two registrations are not)
                SELECT c.kind, c.value, list(DISTINCT c.device_id ORDER BY c.device_id) AS devices
                FROM candidates c JOIN concurrent k USING (grp, device_id)
                GROUP BY c.kind, c.value HAVING count(DISTINCT c.device_id) > 1
            ),
            per_device AS (
                SELECT i.device_id, list(DISTINCT g.kind ORDER BY g.kind) AS kinds,
                       max(len(g.devices)) AS group_size,
                       min(g.kind || ' ' || g.value) AS example,
                       list_distinct(flatten(list(g.devices))) AS sharing
                FROM (SELECT DISTINCT device_id, kind, value FROM ids) i JOIN groups g USING (kind, value)
                GROUP BY i.device_id
            ),
            history AS (
                SELECT device_id, count(DISTINCT epoch) AS past_hours FROM evidence
                WHERE detector = 'duplicate_hardware' AND epoch < $epoch
                  AND epoch > hours_back($epoch, $window)
                GROUP BY device_id
            )
            SELECT p.device_id, f.account_id,
                   CASE WHEN coalesce(h.past_hours, 0) + 1 >= $confirm THEN 1.0 ELSE 0.8 END AS score,
                   CASE WHEN coalesce(h.past_hours, 0) + 1 >= $confirm THEN 'reject' ELSE 'probation' END AS action,
                   format('{} shared with {} other device(s) this hour ({}); shared in {} of the last {} hours',
                          array_to_string(p.kinds, ' and '), len(p.sharing) - 1, p.example,
                          coalesce(h.past_hours, 0) + 1, $window) AS reason,
                   CAST(json_object('kinds', p.kinds, 'group_size', p.group_size,
                        'devices', p.sharing[1:20], 'hours_shared', coalesce(h.past_hours, 0) + 1) AS VARCHAR) AS details
            FROM per_device p
            LEFT JOIN history h USING (device_id)
            LEFT JOIN device_features f ON f.device_id = p.device_id AND f.epoch = $epoch
            """.replace("{CONCURRENT}", concurrent_cte("candidates")),
            window=self.window_hours,
            confirm=self.confirm_hours,
            max_ips=self.max_ips,
            overlap_minutes=self.overlap_minutes,
        )
