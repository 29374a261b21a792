"""The runner: one epoch is one unit of work, its stages (``pipelines.stages.STAGES``) run in
order inside one transaction; the runner also knows which epochs are stale.

An epoch is stale when its hour was ingested after it was last computed, or when an earlier
epoch is: tiering carries state from one epoch to the next, so a late hour makes every later
epoch stale. Recomputing from the earliest stale epoch gives the same tables whatever order the
drops arrived in. ``fleetproof run``, ``recalc``, the simulator's closed loop and the Dagster
asset all go through here.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

import duckdb

from pipelines.export import missing_exports
from pipelines.ingest import IngestResult
from pipelines.quality import Outcome
from pipelines.stages import COMPUTE, ingest, publish
from pipelines.stages.context import QualityBarFailed, StageContext

DDL = """
CREATE TABLE IF NOT EXISTS stage_failures (  -- a stage that failed on one epoch, until it succeeds
    epoch VARCHAR PRIMARY KEY,
    stage VARCHAR NOT NULL,
    reason VARCHAR NOT NULL,
    failed_at TIMESTAMP NOT NULL
);
CREATE TABLE IF NOT EXISTS processed_epochs (
    epoch VARCHAR PRIMARY KEY,
    processed_at TIMESTAMP NOT NULL,
    inputs_ingested_at TIMESTAMP NOT NULL
);
"""


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
    figures: dict[str, dict[str, int]] = field(default_factory=dict)
    """What each stage returned (stage name -> figures)."""
    exported: list[Path] = field(default_factory=list)
    """Files ``publish`` wrote for the epoch."""


@dataclass
class RunSummary:
    ingested: list[IngestResult] = field(default_factory=list)
    epochs: list[EpochSummary] = field(default_factory=list)
    exported: list[Path] = field(default_factory=list)
    blocked: tuple[str, list[Outcome]] | None = None
    """The epoch a quality bar stopped at, with the failing bars (later epochs wait too)."""
    failed: StageFailed | None = None
    """The epoch a stage failed on (recorded in ``stage_failures``; later epochs wait too)."""


class StageFailed(Exception):
    """A stage raised on one epoch; the epoch's transaction is rolled back and the failure kept."""

    def __init__(self, epoch: str, stage: str, cause: BaseException):
        reason = (str(cause).splitlines() or [""])[0][:500]
        super().__init__(f"{epoch}: stage {stage} failed: {type(cause).__name__}: {reason}")
        self.epoch, self.stage, self.reason = epoch, stage, f"{type(cause).__name__}: {reason}"


@contextmanager
def _named(epoch: str, name: str) -> Iterator[None]:
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


def stale_epochs(con: duckdb.DuckDBPyConnection, until: str | None = None) -> list[str]:
    """Ingested epochs to (re)compute: from the earliest new or re-ingested one onwards
    (with ``until``, only up to that epoch). An epoch computed before an earlier one was last
    computed is stale too: a re-delivered hour recomputed alone (``until`` it, or a Dagster
    partition) leaves every later epoch to be recomputed from its new state, not forgotten."""
    rows = con.execute(
        """
        SELECT l.hour, p.epoch IS NULL OR l.ingested_at > p.inputs_ingested_at
                       OR p.processed_at < max(p.processed_at) OVER (
                            ORDER BY l.hour ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS stale
        FROM ingest_log l LEFT JOIN processed_epochs p ON p.epoch = l.hour
        WHERE l.status = 'ingested' ORDER BY l.hour
        """
    ).fetchall()
    first = next((i for i, (_, stale) in enumerate(rows) if stale), None)
    return [] if first is None else [hour for hour, _ in rows[first:] if until is None or hour <= until]


def processed_at(con: duckdb.DuckDBPyConnection, epochs: Iterable[str] | None = None) -> dict[str, datetime]:
    """When each processed epoch was last computed (all of them, or those named)."""
    rows = con.execute("SELECT epoch, processed_at FROM processed_epochs ORDER BY epoch").fetchall()
    wanted = None if epochs is None else set(epochs)
    return {e: t for e, t in rows if wanted is None or e in wanted}


def current_deliveries(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """Epochs computed from their latest delivery and not stale -> that delivery's manifest sha256."""
    stale = set(stale_epochs(con))
    rows = con.execute(
        "SELECT l.hour, l.manifest_sha256 FROM ingest_log l JOIN processed_epochs p ON p.epoch = l.hour "
        "WHERE l.status = 'ingested' ORDER BY l.hour"
    ).fetchall()
    return {hour: sha for hour, sha in rows if hour not in stale}


def _mark_processed(con: duckdb.DuckDBPyConnection, epoch: str) -> None:
    """Record that the epoch's outputs reflect the hour as ingested now."""
    con.execute(
        "INSERT OR REPLACE INTO processed_epochs SELECT ?, ?, ingested_at FROM ingest_log WHERE hour = ?",
        [epoch, datetime.now(UTC).replace(tzinfo=None), epoch],
    )


def compute(
    con: duckdb.DuckDBPyConnection,
    epoch: str,
    ctx: StageContext,
    stages: tuple[ModuleType, ...] = COMPUTE,
    *,
    mark: bool = True,
) -> EpochSummary:
    """Run ``stages`` for one epoch inside the caller's transaction; with ``mark``, record it
    processed (a rewards-only recalculation leaves the epoch's computation time alone)."""
    started = time.perf_counter()
    seconds: dict[str, float] = {}
    figures: dict[str, dict[str, int]] = {}
    ctx.detector_seconds = {}
    for stage in stages:
        begun = time.perf_counter()
        with _named(epoch, stage.NAME):
            figures[stage.NAME] = stage.run(con, epoch, ctx)
        seconds[stage.NAME] = time.perf_counter() - begun
    if mark:
        _mark_processed(con, epoch)
        con.execute("DELETE FROM stage_failures WHERE epoch = ?", [epoch])
    tiers = {k.removeprefix("tier_"): v for k, v in figures.get("tier", {}).items()}
    return EpochSummary(
        epoch,
        devices=figures.get("features", {}).get("devices", 0),
        samples=figures.get("verify", {}).get("samples", 0),
        bad_samples=figures.get("verify", {}).get("bad_samples", 0),
        evidence=figures.get("detect", {}).get("evidence", 0),
        tiers=tiers,
        seconds=time.perf_counter() - started,
        features_seconds=seconds.get("verify", 0.0) + seconds.get("features", 0.0),
        detection_seconds=sum(seconds.get(s, 0.0) for s in ("detect", "tier", "plan")),
        detector_seconds=dict(ctx.detector_seconds),
        figures=figures,
    )


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """Commit on success, roll back on any error."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


def process_epoch(con: duckdb.DuckDBPyConnection, epoch: str, ctx: StageContext) -> EpochSummary:
    """Every stage after landing for one epoch in one transaction, then ``publish``. Raises
    QualityBarFailed or StageFailed with nothing of the epoch written."""
    with transaction(con):
        summary = compute(con, epoch, ctx)
    summary.exported = publish.write(con, epoch, ctx)
    summary.figures[publish.NAME] = {"files": len(summary.exported)}
    return summary


def run_epochs(
    con: duckdb.DuckDBPyConnection,
    drops: str | Path | None,
    ctx: StageContext,
    *,
    until: str | None = None,
    progress: Callable[[EpochSummary], object] | None = None,
) -> RunSummary:
    """Land every new hour of ``drops`` (up to ``until``), process the stale epochs (up to
    ``until``) in order, and publish any processed epoch whose exports are missing. Stops at the
    first epoch that fails a quality bar (``blocked``) or a stage (``failed``, also kept in
    ``stage_failures``): later epochs carry its state, so they wait."""
    summary = RunSummary()
    if drops is not None:
        summary.ingested = ingest.land(con, drops, until)
    for epoch in stale_epochs(con, until):
        try:
            result = process_epoch(con, epoch, ctx)
        except QualityBarFailed as e:
            summary.blocked = (e.epoch, e.failed)
            break
        except StageFailed as e:
            record_failure(con, e)
            summary.failed = e
            break
        summary.epochs.append(result)
        summary.exported += result.exported
        if progress:
            progress(result)
    if ctx.out is not None:
        for epoch in missing_exports(con, ctx.out):
            if until is None or epoch <= until:
                summary.exported += publish.write(con, epoch, ctx)
    return summary
