"""Blocking data-quality bars, shared by ``fleetproof run`` and the Dagster asset checks.

An hour must pass the ingest bars before its epoch is computed, and the verification bar
before its tiers are assigned; a failing bar stops that epoch (and, since tiers carry state
from hour to hour, every later one) until the data is fixed or the bar is changed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import duckdb

from pipelines.contract import FEEDS
from pipelines.db import one, scalar
from pipelines.features import SAMPLED_KINDS_SQL
from pipelines.ingest import REPEAT_REASON
from pipelines.policy import Quality


@dataclass(frozen=True)
class Outcome:
    """One bar's verdict for one hour, with the measured value next to the threshold."""

    name: str
    passed: bool
    description: str | None
    metadata: dict[str, object] = field(default_factory=dict)


def manifest_accepted(con: duckdb.DuckDBPyConnection, epoch: str) -> Outcome:
    row = one(con, "SELECT status, reason FROM ingest_log WHERE hour = ?", [epoch])
    status, reason = row if row else ("missing", "the hour was never ingested")
    return Outcome(
        "manifest_accepted",
        status == "ingested",
        None if status == "ingested" else f"{epoch} {status}: {reason}",
        {"hour": epoch, "status": status, "reason": reason or ""},
    )


def quarantine_share(con: duckdb.DuckDBPyConnection, epoch: str, max_share: float) -> Outcome:
    row = one(con, "SELECT rows_in, rows_quarantined FROM ingest_log WHERE hour = ?", [epoch])
    rows_in, quarantined = row if row else (0, 0)
    # identical repeats (an at-least-once delivery) are kept out of quarantine's count and the rows in
    repeated = one(con, "SELECT count(*) FROM quarantine WHERE hour = ? AND reason = ?", [epoch, REPEAT_REASON])[0]
    rows_in, quarantined = rows_in - repeated, quarantined - repeated
    share = quarantined / rows_in if rows_in else 0.0
    return Outcome(
        "quarantine_share",
        share <= max_share,
        None if share <= max_share else f"{share:.2%} of the rows quarantined (max {max_share:.2%})",
        {"hour": epoch, "share": share, "max_share": max_share, "rows_in": rows_in, "rows_quarantined": quarantined},
    )


def required_rows(con: duckdb.DuckDBPyConnection, epoch: str, minimum: dict[str, int]) -> Outcome:
    unknown = sorted(set(minimum) - set(FEEDS))
    if unknown:
        raise ValueError(f"min_rows names unknown feeds {unknown}; known: {sorted(FEEDS)}")
    landed = {f: int(scalar(con, f"SELECT count(*) FROM {f} WHERE _hour = ?", [epoch])) for f in minimum}
    short = sorted(f for f in minimum if landed[f] < minimum[f])
    return Outcome(
        "required_rows",
        not short,
        f"too few rows in {', '.join(short)}" if short else None,
        {"hour": epoch, **{f"{f}_rows": landed[f] for f in minimum}, **{f"{f}_min": m for f, m in minimum.items()}},
    )


def sample_verification_rate(con: duckdb.DuckDBPyConnection, epoch: str, min_rate: float) -> Outcome:
    """Answered (``ok``) challenges whose samples were checked, over all answered challenges of
    the kinds the backend samples this hour (an answer of such a kind without samples cannot be
    verified and counts against the rate; a kind never sampled is the backend's choice:
    ``features.SAMPLED_KINDS_SQL``)."""
    answered, checked = one(
        con,
        f"WITH sampled AS ({SAMPLED_KINDS_SQL}) "
        "SELECT count(*), count(c.challenge_id) FILTER (c.samples_total > 0) FROM pow p "
        "LEFT JOIN pow_checks c ON c.challenge_id = p.challenge_id AND c._hour = p._hour "
        "WHERE p._hour = $epoch AND p.status = 'ok' "
        "AND (p.kind IN (SELECT kind FROM sampled) OR NOT EXISTS (SELECT 1 FROM sampled))",
        {"epoch": epoch},
    )  # type: ignore[misc]
    rate = checked / answered if answered else 1.0
    return Outcome(
        "sample_verification_rate",
        rate >= min_rate,
        None if rate >= min_rate else f"{answered - checked} answered challenges could not be verified",
        {"hour": epoch, "rate": rate, "min_rate": min_rate, "answered": answered, "checked": checked},
    )


WRONG_SAMPLE_BAR_MIN = 10
"""Fewer wrong answers than this never fail ``wrong_sample_share``: a handful of devices is no fleet."""


def wrong_sample_share(con: duckdb.DuckDBPyConnection, epoch: str, max_share: float) -> Outcome:
    """Answered challenges with a wrong sampled entry, over those whose samples were checked,
    among devices whose checked answers were all right in an hour of the last day (in a
    network's first hour: every device). An honest card computes the exact product, so a fleet
    that answered right and is wrong en masse now is being checked against seeds or samples its
    workers never used (a seed that went through a float64 above 2^53 is rounded; a backend's
    generator that differs from the contract's): left to the detectors, wrong samples are exact
    evidence, and every device would be rejected and slashed. A wave of new devices answering
    garbage does not count. At least ``WRONG_SAMPLE_BAR_MIN`` wrong answers are needed to fail."""
    checked, wrong = one(
        con,
        """
        WITH established AS (
            SELECT DISTINCT device_id FROM device_features
            WHERE epoch > hours_back($epoch, 24) AND epoch < $epoch AND samples_total > 0 AND samples_bad = 0
        ),
        answers AS (
            SELECT p.device_id, c.samples_bad > 0 AS wrong FROM pow p
            JOIN pow_checks c ON c.challenge_id = p.challenge_id AND c._hour = p._hour
            WHERE p._hour = $epoch AND c.samples_total > 0
        )
        SELECT count(*), count(*) FILTER (wrong) FROM answers
        WHERE device_id IN (SELECT device_id FROM established) OR NOT EXISTS (SELECT 1 FROM established)
        """,
        {"epoch": epoch},
    )  # type: ignore[misc]
    share = wrong / checked if checked else 0.0
    passed = share <= max_share or wrong < WRONG_SAMPLE_BAR_MIN
    return Outcome(
        "wrong_sample_share",
        passed,
        None
        if passed
        else f"{wrong} of {checked} checked answers ({share:.1%}) have a wrong sampled entry (max {max_share:.0%}): "
        "the seeds or samples do not match what the workers computed (a seed rounded through a float64?)",
        {"hour": epoch, "share": share, "max_share": max_share, "checked": checked, "wrong": wrong},
    )


def ingest_bars(con: duckdb.DuckDBPyConnection, epoch: str, q: Quality) -> list[Outcome]:
    return [
        manifest_accepted(con, epoch),
        quarantine_share(con, epoch, q.max_quarantine_share),
        required_rows(con, epoch, q.min_rows),
    ]


def allocations_sum_to_pool(con: duckdb.DuckDBPyConnection, epoch: str) -> Outcome:
    """The epoch's allocations add up exactly to its pool (undistributed only if nobody was
    eligible), in integer base units."""
    row = one(
        con,
        "SELECT p.pool_units, p.undistributed_units, coalesce(sum(a.amount_base_units), 0), count(a.device_id) "
        "FROM epoch_pools p LEFT JOIN reward_allocations a USING (epoch) WHERE p.epoch = ? "
        "GROUP BY p.pool_units, p.undistributed_units",
        [epoch],
    )
    if row is None:
        return Outcome("allocations_sum_to_pool", False, f"{epoch} has no pool record", {"hour": epoch})
    pool, undistributed, allocated, rows = (int(v) for v in row)
    ok = allocated + undistributed == pool and (undistributed == 0 or rows == 0) and allocated >= 0
    return Outcome(
        "allocations_sum_to_pool",
        ok,
        None if ok else f"allocated {allocated} + undistributed {undistributed} != pool {pool}",
        {"hour": epoch, "pool": pool, "allocated": allocated, "undistributed": undistributed, "rows": rows},
    )


EPOCH_BARS = (
    "manifest_accepted",
    "quarantine_share",
    "required_rows",
    "sample_verification_rate",
    "wrong_sample_share",
    "allocations_sum_to_pool",
)
"""Every bar an epoch is held to, in the order the runner applies them."""


def epoch_outcomes(con: duckdb.DuckDBPyConnection, epoch: str, q: Quality, *, computed: bool) -> list[Outcome]:
    """Every bar of ``EPOCH_BARS`` as measured now; the two measured on computed tables fail
    with "not computed" when the epoch was not (``computed=False``)."""
    outcomes = ingest_bars(con, epoch, q)
    if computed:
        return [
            *outcomes,
            sample_verification_rate(con, epoch, q.min_sample_verification_rate),
            wrong_sample_share(con, epoch, q.max_wrong_sample_share),
            allocations_sum_to_pool(con, epoch),
        ]
    missing = [Outcome(name, False, f"{epoch} was not computed", {"hour": epoch}) for name in EPOCH_BARS[3:]]
    return [*outcomes, *missing]
