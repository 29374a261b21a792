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
