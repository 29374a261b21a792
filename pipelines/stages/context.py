"""What every stage's ``run(con, epoch, ctx)`` gets besides the connection and the epoch."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pipelines.policy import DetectionPolicy
from pipelines.quality import Outcome
from pipelines.rewards_policy import RewardsPolicy


@dataclass
class StageContext:
    """The policies an epoch is computed under, where its exports go, and per-run figures.

    ``quality_bars=False`` (recalculation) skips the data-quality bars of ``ingest`` and
    ``verify``; the allocation bar of ``reward`` always applies (money must add up)."""

    rewards: RewardsPolicy
    policy: DetectionPolicy = field(default_factory=lambda: _no_policy())
    """Detection policy (default: the shipped one; the reward stages never read it)."""
    out: Path | None = None
    quality_bars: bool = True
    rewards_only: bool = False
    """A rewards-only recalculation: the reward stage reuses the epoch's stored ``reward_facts``."""
    detector_seconds: dict[str, float] = field(default_factory=dict)
    """Each detector's wall time, accumulated by the ``detect`` stage."""


def _no_policy() -> DetectionPolicy:
    from pipelines.policy import load_policy

    return load_policy()


class QualityBarFailed(Exception):
    """An epoch's data fails a bar: nothing of the epoch is written (later epochs wait too)."""

    def __init__(self, epoch: str, failed: list[Outcome]):
        super().__init__(f"{epoch}: " + "; ".join(f"{o.name}: {o.description}" for o in failed))
        self.epoch, self.failed = epoch, failed


def require(epoch: str, outcomes: list[Outcome]) -> None:
    """Raise QualityBarFailed naming every outcome that did not pass."""
    failed = [o for o in outcomes if not o.passed]
    if failed:
        raise QualityBarFailed(epoch, failed)
