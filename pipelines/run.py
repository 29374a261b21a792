"""The main job (``fleetproof run``): land what is new, (re)compute every stale epoch in order,
export. The work itself is the runner's (``pipelines.runner``); this opens the database and
reads the policies."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pipelines.db import connect
from pipelines.policy import DetectionPolicy, load_policy
from pipelines.rewards_policy import RewardsPolicy, load_rewards_policy
from pipelines.runner import EpochSummary, RunSummary, StageFailed, run_epochs, stale_epochs
from pipelines.stages.context import QualityBarFailed, StageContext

__all__ = ["EpochSummary", "QualityBarFailed", "RunSummary", "StageFailed", "run", "stale_epochs"]


def run(
    drops: str | Path,
    db: str | Path,
    out: str | Path | None,
    policy: DetectionPolicy | None = None,
    progress: Callable[[EpochSummary], object] | None = None,
    quality_bars: bool = True,
    rewards: RewardsPolicy | None = None,
    until: str | None = None,
) -> RunSummary:
    """Ingest every complete hour not yet ingested, process stale epochs in order, export them
    (``runner.run_epochs``; ``until`` stops at that epoch). An epoch counts as done only once
    its exports are written and recorded: any processed epoch whose exports under ``out`` are
    missing or older than its computation is exported again."""
    ctx = StageContext(
        rewards or load_rewards_policy(),
        policy or load_policy(),
        out=None if out is None else Path(out),
        quality_bars=quality_bars,
    )
    with connect(db) as con:
        return run_epochs(con, drops, ctx, until=until, progress=progress)
