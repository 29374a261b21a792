"""The main job: ingest what is new, (re)compute every affected epoch in order, export.

An epoch is affected when its hour was ingested after it was last computed, or when an
earlier epoch was: tiering carries state from one epoch to the next, so a late hour makes
every later epoch stale. Recomputing from the earliest affected epoch gives the same tables
whatever order the drops arrived in.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from pipelines.challenge_plan import build_plan
from pipelines.db import connect
from pipelines.export import export_epoch, missing_exports
from pipelines.features import build_features, verify_pow
from pipelines.ingest import IngestResult, ingest_drops
from pipelines.policy import DetectionPolicy, load_policy
from pipelines.quality import Outcome, allocations_sum_to_pool, ingest_bars, sample_verification_rate
from pipelines.rewards import allocate
from pipelines.rewards_policy import RewardsPolicy, load_rewards_policy
from pipelines.slashing import slash
from pipelines.staking import build_positions
from pipelines.tiering import assign_tiers, collect_evidence


@dataclass
class EpochSummary:
    epoch: str
    devices: int
    samples: int
    bad_samples: int
    evidence: int
    tiers: dict[str, int]
    seconds: float
    features_seconds: float = 0.0
    """Of ``seconds``: exact PoW verification and features."""
    detection_seconds: float = 0.0
    """Of ``seconds``: detectors, tiering and the challenge plan."""
    detector_seconds: dict[str, float] = field(default_factory=dict)
    """Of ``detection_seconds``: each detector's own time."""


@dataclass
class RunSummary:
    ingested: list[IngestResult] = field(default_factory=list)
    epochs: list[EpochSummary] = field(default_factory=list)
    exported: list[Path] = field(default_factory=list)
    blocked: tuple[str, list[Outcome]] | None = None
    """The epoch a quality bar stopped at, with the failing bars (later epochs wait too)."""
    failed: StageFailed | None = None
    """The epoch a stage failed on (recorded in ``stage_failures``; later epochs wait too)."""


class QualityBarFailed(Exception):
    def __init__(self, epoch: str, failed: list[Outcome]):
        super().__init__(f"{epoch}: " + "; ".join(f"{o.name}: {o.description}" for o in failed))
        self.epoch, self.failed = epoch, failed


class StageFailed(Exception):
    """A stage raised on one epoch; the epoch's transaction is rolled back and the failure kept."""

    def __init__(self, epoch: str, stage: str, cause: BaseException):
        reason = (str(cause).splitlines() or [""])[0][:500]
        super().__init__(f"{epoch}: stage {stage} failed: {type(cause).__name__}: {reason}")
        self.epoch, self.stage, self.reason = epoch, stage, f"{type(cause).__name__}: {reason}"


@contextmanager
def stage(epoch: str, name: str) -> Iterator[None]:
    """Name the stage in any error it raises (quality bars pass through unchanged)."""
    try:
        yield
    except (QualityBarFailed, StageFailed, KeyboardInterrupt):
        raise
    except Exception as e:
        raise StageFailed(epoch, name, e) from e


def record_failure(con: duckdb.DuckDBPyConnection, failure: StageFailed) -> None:
    """Keep the failure (after the epoch's rollback) so ``status`` shows it until a rerun succeeds."""
    con.execute(
        "INSERT OR REPLACE INTO stage_failures VALUES (?, ?, ?, ?)",
        [failure.epoch, failure.stage, failure.reason, datetime.now(UTC).replace(tzinfo=None)],
    )


def stale_epochs(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Ingested epochs to (re)compute: from the earliest new or re-ingested one onwards."""
    rows = con.execute(
        """
        SELECT l.hour, p.epoch IS NULL OR l.ingested_at > p.inputs_ingested_at AS stale
        FROM ingest_log l LEFT JOIN processed_epochs p ON p.epoch = l.hour
        WHERE l.status = 'ingested' ORDER BY l.hour
        """
    ).fetchall()
    first = next((i for i, (_, stale) in enumerate(rows) if stale), None)
    return [] if first is None else [hour for hour, _ in rows[first:]]


def compute_features(con: duckdb.DuckDBPyConnection, epoch: str) -> tuple[int, int, int]:
    """Stage 'features': exact PoW verification, then per-device features. (samples, bad, devices)"""
    samples, bad = verify_pow(con, epoch)
    return samples, bad, build_features(con, epoch)


def mark_processed(con: duckdb.DuckDBPyConnection, epoch: str) -> None:
    """Record that the epoch's outputs reflect the hour as ingested now."""
    con.execute(
        "INSERT OR REPLACE INTO processed_epochs SELECT ?, ?, ingested_at FROM ingest_log WHERE hour = ?",
        [epoch, datetime.now(UTC).replace(tzinfo=None), epoch],
    )


def compute_rewards(con: duckdb.DuckDBPyConnection, epoch: str, rewards: RewardsPolicy) -> dict[str, int]:
    """Stage 'rewards': stake positions, allocations and slashing for one tiered epoch.
    Raises QualityBarFailed if the allocations do not add up exactly to the pool."""
    version = rewards.at(epoch)
    build_positions(con, epoch, version)
    figures = allocate(con, epoch, version)
    figures["incidents"] = slash(con, epoch, version)
    check = allocations_sum_to_pool(con, epoch)
    if not check.passed:
        raise QualityBarFailed(epoch, [check])
    return figures


def process_epoch(
    con: duckdb.DuckDBPyConnection,
    epoch: str,
    policy: DetectionPolicy,
    *,
    quality_bars: bool = True,
    rewards: RewardsPolicy | None = None,
) -> EpochSummary:
    """Features, detectors, tiers, plan and rewards for one ingested epoch, in one transaction;
    raises QualityBarFailed (nothing written) when the hour fails a quality bar."""
    if quality_bars:
        failed = [o for o in ingest_bars(con, epoch, policy.quality) if not o.passed]
        if failed:
            raise QualityBarFailed(epoch, failed)
    con.execute("BEGIN TRANSACTION")
    try:
        summary = compute_epoch(con, epoch, policy, rewards or load_rewards_policy(), quality_bars=quality_bars)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return summary


def compute_epoch(
    con: duckdb.DuckDBPyConnection, epoch: str, policy: DetectionPolicy, rewards: RewardsPolicy, *, quality_bars: bool = True
) -> EpochSummary:
    """Every stage after ingestion for one epoch, inside the caller's transaction."""
    started = time.perf_counter()
    with stage(epoch, "features"):
        samples, bad, devices = compute_features(con, epoch)
        rate = sample_verification_rate(con, epoch, policy.quality.min_sample_verification_rate)
    if quality_bars and not rate.passed:
        raise QualityBarFailed(epoch, [rate])
    featured = time.perf_counter()
    per_detector: dict[str, float] = {}
    with stage(epoch, "detect"):
        evidence = collect_evidence(con, epoch, policy.build_detectors(), per_detector)
    with stage(epoch, "tier"):
        tiers = assign_tiers(con, epoch, policy.tiering)
    with stage(epoch, "plan"):
        build_plan(con, epoch)
    detected = time.perf_counter()
    with stage(epoch, "rewards"):
        compute_rewards(con, epoch, rewards)
    mark_processed(con, epoch)
    con.execute("DELETE FROM stage_failures WHERE epoch = ?", [epoch])
    return EpochSummary(epoch, devices, samples, bad, evidence.height, tiers, time.perf_counter() - started,
                        featured - started, detected - featured, per_detector)  # fmt: skip


def run(
    drops: str | Path,
    db: str | Path,
    out: str | Path | None,
    policy: DetectionPolicy | None = None,
    progress=None,
    quality_bars: bool = True,
    rewards: RewardsPolicy | None = None,
) -> RunSummary:
    """Ingest every complete hour not yet ingested, process stale epochs in order, export them.
    Stops at the first epoch that fails a quality bar (``summary.blocked`` says why) or whose
    stage fails (``summary.failed``, also kept in ``stage_failures``). An epoch counts as done
    only once its exports are written and recorded: any processed epoch whose exports under
    ``out`` are missing or older than its computation is exported again."""
    policy = policy or load_policy()
    rewards = rewards or load_rewards_policy()
    summary = RunSummary()
    with connect(db) as con:
        summary.ingested = ingest_drops(con, drops)
        for epoch in stale_epochs(con):
            try:
                result = process_epoch(con, epoch, policy, quality_bars=quality_bars, rewards=rewards)
            except QualityBarFailed as e:
                summary.blocked = (e.epoch, e.failed)
                break
            except StageFailed as e:
                record_failure(con, e)
                summary.failed = e
                break
            summary.epochs.append(result)
            if out is not None:
                summary.exported += export_epoch(con, out, epoch)
            if progress:
                progress(result)
        if out is not None:
            for epoch in missing_exports(con, out):
                summary.exported += export_epoch(con, out, epoch)
    return summary
