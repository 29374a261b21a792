"""The stages of one epoch, in the order the runner (``pipelines.runner``) executes them.

Each stage is a module with ``NAME``, the tables it ``WRITES`` (it owns them: their ``DDL`` is
beside it), the tables it ``READS``, and ``run(con, epoch, ctx) -> figures``.
"""

from __future__ import annotations

from types import ModuleType

from pipelines.stages import detect, features, ingest, plan, publish, reward, slash, stake, tier, verify

STAGES: tuple[ModuleType, ...] = (ingest, verify, features, detect, tier, plan, stake, reward, slash, publish)
"""Every stage, in order: later stages read what earlier ones wrote for the same epoch."""

COMPUTE = STAGES[:-1]
"""The stages inside the epoch's transaction (``publish`` writes files, after the commit)."""
REWARD_STAGES = (stake, reward, slash)
"""What a rewards-only recalculation re-runs: nothing before them reads a reward table."""


def by_name(name: str) -> ModuleType:
    for s in STAGES:
        if s.NAME == name:
            return s
    raise KeyError(f"no stage {name!r}; stages: {', '.join(s.NAME for s in STAGES)}")
