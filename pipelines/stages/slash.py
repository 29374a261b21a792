"""Stage ``slash``: graduated slashing incidents with an appeal window
(``pipelines.slashing.slash``)."""

from __future__ import annotations

import duckdb

from pipelines.slashing import slash
from pipelines.stages.context import StageContext

NAME = "slash"
WRITES = ("slashing_events", "slashing_accruals", "slashing_accruals_as_of")
READS = (
    "device_tiers",
    "device_state",
    "device_features",
    "reward_allocations",
    "held_rewards",
    "stake_positions",
    "slashing_events",
    "verdict_overrides",
)
DDL = """
CREATE TABLE IF NOT EXISTS slashing_events (
    incident_id VARCHAR NOT NULL,
    epoch VARCHAR NOT NULL,
    device_id VARCHAR NOT NULL,
    account_id VARCHAR,
    wallet VARCHAR NOT NULL,
    amount_base_units BIGINT NOT NULL,
    reason VARCHAR NOT NULL,
    evidence JSON NOT NULL,
    status VARCHAR NOT NULL             -- proposed | final | reversed
);
CREATE TABLE IF NOT EXISTS slashing_accruals (  -- paid in the accrual window ending at slashing_accruals_as_of
    device_id VARCHAR NOT NULL,
    wallet VARCHAR NOT NULL,
    units HUGEINT NOT NULL,             -- allocations paid and held shares released, in base units
    payout_rows BIGINT NOT NULL         -- ledger rows behind them (a wallet paid 0 still holds a share)
);
CREATE TABLE IF NOT EXISTS slashing_accruals_as_of (
    epoch VARCHAR NOT NULL,
    window_hours INTEGER NOT NULL
);
"""


def run(con: duckdb.DuckDBPyConnection, epoch: str, ctx: StageContext) -> dict[str, int]:
    return {"incidents": slash(con, epoch, ctx.rewards.at(epoch))}
