"""Closed loop: the simulated backend honours the pipeline's challenge plan, hour by hour.

Hour h is simulated under the plan the pipeline made from hour h-1, then ingested and
processed; this is how a virtualized card that hides when challenged alone gets caught.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pipelines.challenge_plan import read_plan
from pipelines.db import connect
from pipelines.policy import DetectionPolicy, load_policy
from pipelines.rewards_policy import load_rewards_policy
from pipelines.run import RunSummary, run
from pipelines.simulate import NetworkSimulator, hour_name


def closed_loop(
    sim: NetworkSimulator,
    db: str | Path,
    out: str | Path | None,
    hours: int,
    *,
    use_plan: bool = True,
    policy: DetectionPolicy | None = None,
    progress: Callable | None = None,
) -> list[RunSummary]:
    policy = policy or load_policy()  # read once: the whole loop runs under one policy
    rewards = load_rewards_policy()
    summaries = []
    plan: dict[str, str] | None = None
    for h in range(hours):
        sim.write_hour(h, plan if use_plan else None)
        summaries.append(run(sim.out, db, out, policy, progress=progress, rewards=rewards))
        with connect(db) as con:
            plan = read_plan(con, hour_name(sim.scenario, h))
    return summaries
