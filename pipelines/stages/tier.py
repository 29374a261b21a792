"""Stage ``tier``: evidence and each device's last state -> its tier, with hysteresis and
review overrides (``pipelines.tiering.assign_tiers``)."""

from __future__ import annotations

import duckdb

from pipelines.stages.context import StageContext
from pipelines.tiering import assign_tiers

NAME = "tier"
WRITES = ("device_state", "device_tiers")
READS = ("device_features", "evidence", "device_state", "verdict_overrides")
DDL = """
CREATE TABLE IF NOT EXISTS device_state (
    epoch VARCHAR NOT NULL,
    device_id VARCHAR NOT NULL,
    tier VARCHAR NOT NULL,
    clean_streak INTEGER NOT NULL,
    rejected_types VARCHAR[],
    rejected_since VARCHAR,
    rejected_score DOUBLE
);
CREATE TABLE IF NOT EXISTS device_tiers (
    epoch VARCHAR NOT NULL,
    device_id VARCHAR NOT NULL,
    account_id VARCHAR,
    tier VARCHAR NOT NULL,
    fraud_types VARCHAR[] NOT NULL,
    score DOUBLE NOT NULL,
    reasons JSON NOT NULL
);
"""


def run(con: duckdb.DuckDBPyConnection, epoch: str, ctx: StageContext) -> dict[str, int]:
    return {f"tier_{k}": v for k, v in sorted(assign_tiers(con, epoch, ctx.policy.tiering).items())}
