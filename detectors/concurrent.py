"""One identity on two registrations is evidence only while both are alive at the same time.

Honest model: a worker reinstalled (or moved to a fresh install) registers the same card under a
new device id; for the hour of the switch both ids report its UUID, serial and bus id. The old
registration falls silent as the new one starts, so their activity does not overlap. Slices of a
virtualized card, or a cloned identity, answer pings, heartbeats and challenges side by side all
hour. A device counts as sharing an identity only when its activity over this hour and the one
before (hardware reports, heartbeats, answered challenges: first to last) overlaps another
sharer's by at least ``overlap_minutes``. Before this, 24 reinstalls on a 600-device network had
22 honest devices rejected as "2 devices on one machine report the same GPU identity". A ping is
not a sign of the registration's life: the backend pings an address, and the machine there
answers whichever worker runs on it (a sixth network written by others kept answering the old
id's pings after a reinstall on the same box, and 14 of its reinstalled devices were rejected).
"""

from __future__ import annotations

OVERLAP_MINUTES = 15
"""Two registrations of one card alive together this long are not a switch (which takes the
minutes between stopping one worker and starting the next); slices of one card overlap the whole
hour, and at one heartbeat per half hour still by about an hour over the two hours looked at."""


def worker_signs(devices: str, first_hour: str) -> str:
    """SQL rows ``(device_id, t)``: each sign of the worker's own life (a hardware report, an ok
    heartbeat, an answered challenge) of the devices in ``devices`` (a subquery), from the epoch
    ``first_hour`` (an SQL expression) to ``$epoch``. A ping is not one: the backend pings an
    address, and the machine there answers whichever worker runs on it."""
    return f"""
        SELECT device_id, ts AS t FROM hardware
        WHERE _hour >= {first_hour} AND _hour <= $epoch AND device_id IN ({devices})
        UNION ALL
        SELECT device_id, ts FROM uptime
        WHERE _hour >= {first_hour} AND _hour <= $epoch AND ok AND source = 'heartbeat' AND device_id IN ({devices})
        UNION ALL
        SELECT device_id, responded_at FROM pow
        WHERE _hour >= {first_hour} AND _hour <= $epoch AND status = 'ok' AND responded_at IS NOT NULL
          AND device_id IN ({devices})"""


def concurrent_cte(candidates: str) -> str:
    """CTEs ``active`` and ``concurrent(grp, device_id)`` over ``candidates(device_id, grp)``
    (devices and the identity value they share): the members alive at the same time as another
    member of their group for at least ``$overlap_minutes``."""
    return f"""
active AS (  -- first and last sign of life of each candidate over this hour and the one before
    SELECT device_id, min(t) AS first_seen, max(t) AS last_seen
    FROM ({worker_signs(f"SELECT device_id FROM {candidates}", "hours_back($epoch, 1)")}) GROUP BY device_id
),
concurrent AS (
    SELECT DISTINCT a.grp, a.device_id
    FROM {candidates} a JOIN {candidates} b ON b.grp = a.grp AND b.device_id <> a.device_id
    JOIN active x ON x.device_id = a.device_id
    JOIN active y ON y.device_id = b.device_id
    WHERE least(x.last_seen, y.last_seen) - greatest(x.first_seen, y.first_seen) >= to_minutes($overlap_minutes)
)"""
