"""Rentals known by now: a job shows in ``jobs`` only once it has ended.

Honest model: a renter holds a card's memory and shares its time, so what a card fails or
refuses while rented is the rental's doing. A job still running is not in ``jobs`` yet; the
detectors that excuse rentals read the same set: the jobs delivered up to the epoch that ran
into the window (``$window`` hours back).
"""

from __future__ import annotations

RENTALS_CTE = """rentals AS MATERIALIZED (  -- jobs known by now that ran in the window (detectors.rentals)
    SELECT device_id, coalesce(started_at, created_at) AS from_ts, ended_at AS to_ts FROM jobs
    WHERE _hour <= $epoch AND ended_at > epoch_start(hours_back($epoch, $window))
)"""
"""The CTE ``rentals(device_id, from_ts, to_ts)``; the query binds ``$epoch`` and ``$window``."""

RENTAL_COVER_CTE = """rental_cover AS (  -- per device rented in the window: its known rentals' first end, last start and last end,
    -- and the share of the window they covered (the window's hours are those of its challenges: hours_back($window - 1)
    -- to $epoch); a card renters keep busy is likely rented now, by a job not yet in jobs
    SELECT device_id, min(to_ts) AS first_end, max(from_ts) AS last_start, max(to_ts) AS last_end,
           sum(greatest(0, date_diff('second', greatest(from_ts, epoch_start(hours_back($epoch, $window - 1))),
                                     least(to_ts, epoch_start($epoch) + INTERVAL 1 HOUR)))) / (3600 * $window) AS covered
    FROM rentals GROUP BY device_id
)"""
"""The CTE ``rental_cover(device_id, first_end, last_start, last_end, covered)`` over ``rentals``."""
