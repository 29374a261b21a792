"""``double_listed``: one GPU identity offered on another network from somewhere else.

Policy: listing the same GPU on several networks from the same machine is legitimate (owners
cross-list to fill idle time) and is not flagged. What is flagged is the same NVML UUID listed
elsewhere, from another IP and another host, in the same hour the device reports it here: one
card cannot be in two places, so one of the two listings is a borrowed or cloned identity.
Seen in one hour suspects; in ``confirm_hours`` of the last ``window_hours`` establishes.

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

from detectors.base import Detector, Evidence


class DoubleListed(Detector):
    name = "double_listed"
    fraud_type = "double_listed"

    def __init__(self, threshold: float = 0.5, window_hours: int = 24, confirm_hours: int = 3):
        super().__init__(threshold)
        self.window_hours = window_hours
        self.confirm_hours = confirm_hours

    def score(self, evidence: Evidence) -> pl.DataFrame:
        return evidence.sql(
            """
            WITH seen AS (
                SELECT h._hour AS epoch, h.device_id, h.account_id, x.network, x.ip AS listed_ip, h.ip
                FROM external_listings x
                JOIN hardware h ON h.gpu_uuid = x.gpu_uuid AND h._hour = x._hour
                WHERE x._hour > hours_back($epoch, $window)
                  AND x._hour <= $epoch AND x.gpu_uuid IS NOT NULL
                  AND ip_site(x.ip) <> ip_site(h.ip)  -- another address of the same IPv6 /64 is the same LAN
                  -- no fingerprint on the listing: an address of the other family is no evidence (dual stack),
                  -- nor one the device itself reported from in the hour before, this one or the next (a
                  -- home's address renewed: the other network saw it before or after we did)
                  AND coalesce(x.host_fingerprint <> h.host_fingerprint,
                               contains(x.ip, ':') = contains(h.ip, ':') AND NOT EXISTS (
                                   SELECT 1 FROM hardware o WHERE o.device_id = h.device_id
                                   AND o._hour >= hours_back(x._hour, 1) AND o._hour <= epoch_shift(x._hour, 1)
                                   AND ip_site(o.ip) = ip_site(x.ip)))
            ),
            per_device AS (
                SELECT device_id, any_value(account_id) AS account_id, count(DISTINCT epoch) AS hours,
                       bool_or(epoch = $epoch) AS now, min(network) AS network, min(listed_ip) AS listed_ip, min(ip) AS ip
                FROM seen GROUP BY device_id
            )
            SELECT device_id, account_id,
                   CASE WHEN hours >= $confirm THEN 1.0 ELSE 0.8 END AS score,
                   CASE WHEN hours >= $confirm THEN 'reject' ELSE 'probation' END AS action,
                   format('its GPU UUID is listed on {} from {} (another host) while it reports from {}; in {} of the last {} hours',
                          network, listed_ip, ip, hours, $window) AS reason,
                   CAST(json_object('network', network, 'listed_ip', listed_ip, 'ip', ip, 'hours', hours) AS VARCHAR) AS details
            FROM per_device
            """,
            window=self.window_hours,
            confirm=self.confirm_hours,
        )
