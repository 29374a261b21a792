"""Stage ``stake``: each device's active and cooling stake at the epoch from the staking
ledger (``pipelines.staking.build_positions``)."""

from __future__ import annotations

import duckdb

from pipelines.stages.context import StageContext
from pipelines.staking import build_positions

NAME = "stake"
WRITES = ("stake_positions",)
READS = ("stake_events",)
DDL = """
CREATE TABLE IF NOT EXISTS stake_positions (
    epoch VARCHAR NOT NULL,
    device_id VARCHAR NOT NULL,
    wallet VARCHAR NOT NULL,
    active_units BIGINT NOT NULL,       -- held through the whole epoch: counts towards the requirement and earns
    cooling_units BIGINT NOT NULL       -- withdrawn within the cooldown, or staked during the epoch: slashable only
);
"""


def run(con: duckdb.DuckDBPyConnection, epoch: str, ctx: StageContext) -> dict[str, int]:
    return {"positions": build_positions(con, epoch, ctx.rewards.at(epoch))}
