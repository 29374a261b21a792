"""Stage ``reward``: the policy-independent facts eligibility reads, eligibility and weights, the
exact largest-remainder split of the hour's pool (``pipelines.rewards.allocate``), the
held-rewards ledger (probation shares released or forfeited when the device's tier settles),
then the bar that allocations add up to the pool."""

from __future__ import annotations

import duckdb

from pipelines.quality import allocations_sum_to_pool
from pipelines.rewards import allocate, payouts_of
from pipelines.stages.context import StageContext, require

NAME = "reward"
WRITES = ("reward_facts", "reward_eligibility", "reward_allocations", "epoch_pools", "held_rewards")
READS = (
    "device_tiers",
    "device_features",
    "device_measures",
    "evidence",
    "model_peers",
    "stake_positions",
    "accounts",
    "uptime",
    "jobs",
    "held_rewards",
)
DDL = (
    """
CREATE TABLE IF NOT EXISTS reward_facts (  -- what eligibility reads that no reward policy changes
    epoch VARCHAR NOT NULL,
    device_id VARCHAR NOT NULL,
    account_id VARCHAR,
    wallet VARCHAR,                     -- the owner's latest wallet on record
    tier VARCHAR,
    catalogue_model VARCHAR,            -- the model claimed
    tflops DOUBLE,                      -- measured throughput, NULL when none
    class_floor DOUBLE,                 -- the claimed model stands at or above this throughput
    down_mbps DOUBLE,
    uptime_permille BIGINT,             -- pings answered this hour
    hired_permille BIGINT,
    pow_passed BOOLEAN
);
CREATE TABLE IF NOT EXISTS reward_eligibility (
    epoch VARCHAR NOT NULL,
    device_id VARCHAR NOT NULL,
    account_id VARCHAR,
    wallet VARCHAR,
    tier VARCHAR,
    measured_class VARCHAR,
    measured_tflops DOUBLE,
    multiplier_bp4 BIGINT,
    tier_bp4 BIGINT,
    connectivity_bp4 BIGINT,
    down_mbps DOUBLE,
    uptime_permille BIGINT,
    hired_permille BIGINT,
    up_hours BIGINT,
    pow_passed BOOLEAN,
    stake_units BIGINT,
    stake_needed BIGINT,
    status VARCHAR NOT NULL,            -- paid | held | ineligible
    reason VARCHAR,
    weight BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS reward_allocations (
    epoch VARCHAR NOT NULL,
    device_id VARCHAR NOT NULL,
    account_id VARCHAR,
    wallet VARCHAR,
    amount_base_units BIGINT NOT NULL,
    weight BIGINT NOT NULL,
    components JSON NOT NULL
);
CREATE TABLE IF NOT EXISTS epoch_pools (
    epoch VARCHAR PRIMARY KEY,
    policy_version VARCHAR NOT NULL,
    pool_units BIGINT NOT NULL,
    allocated_units BIGINT NOT NULL,
    held_units BIGINT NOT NULL,
    undistributed_units BIGINT NOT NULL  -- only when no device was eligible
);
CREATE TABLE IF NOT EXISTS held_rewards (  -- a probation device's held share, until its tier settles it
    held_epoch VARCHAR NOT NULL,
    device_id VARCHAR NOT NULL,
    account_id VARCHAR,
    wallet VARCHAR,
    amount_base_units BIGINT NOT NULL,
    settled_epoch VARCHAR,              -- when it was released (release_after_hours out of probation) or forfeited
    outcome VARCHAR                     -- released (standard or verified) | forfeited (rejected)
);
CREATE VIEW IF NOT EXISTS payouts AS  -- what was paid out, per epoch: allocations paid, held shares released
"""
    + payouts_of("reward_allocations", "held_rewards")
    + ";\n"
)


def run(con: duckdb.DuckDBPyConnection, epoch: str, ctx: StageContext) -> dict[str, int]:
    figures = allocate(con, epoch, ctx.rewards.at(epoch), reuse_facts=ctx.rewards_only)
    require(epoch, [allocations_sum_to_pool(con, epoch)])
    return figures
