"""Stage ``features``: one row per device and epoch every detector reads, plus the hour's
heartbeat and ping cadence, the challenge, restart and model-peer context and the day's measures
the reward stage prices
(``pipelines.features.build_features``, one SQL statement each)."""

from __future__ import annotations

import duckdb

from pipelines.cadence import DDL as CADENCE_DDL
from pipelines.features import build_features
from pipelines.stages.context import StageContext

NAME = "features"
WRITES = (
    "uptime_cadence",
    "challenge_outages",
    "device_features",
    "challenge_context",
    "device_measures",
    "restart_gaps",
    "model_peers",
)
READS = ("hardware", "uptime", "pow", "pow_checks", "device_features", "challenge_context", "device_tiers")
DDL = (
    CADENCE_DDL
    + """
CREATE TABLE IF NOT EXISTS challenge_outages (  -- hours the challenge service failed, not the devices (features.OUTAGE_SQL)
    epoch VARCHAR PRIMARY KEY,
    reachable_timeouts BIGINT NOT NULL, -- challenges to devices seen alive around them that timed out
    reachable BIGINT NOT NULL,          -- challenges to devices seen alive around them
    answered BIGINT NOT NULL,           -- challenges answered this hour
    busiest_answered BIGINT NOT NULL    -- the most answered in an hour of the last day
);
CREATE TABLE IF NOT EXISTS device_features (
    epoch VARCHAR NOT NULL,
    device_id VARCHAR NOT NULL,
    account_id VARCHAR,
    host_fingerprint VARCHAR,
    ip VARCHAR,
    asn BIGINT,
    os VARCHAR,
    gpu_model VARCHAR,
    gpu_uuid VARCHAR,
    gpu_serial VARCHAR,
    pci_bus_id VARCHAR,
    vram_total_mb BIGINT,
    virtualization_mode VARCHAR,
    mig_mode BOOLEAN,
    hw_reports INTEGER,
    first_report TIMESTAMP,
    last_report TIMESTAMP,
    identity_changes INTEGER,
    ping_total INTEGER,
    ping_ok INTEGER,
    heartbeat_total INTEGER,
    heartbeat_ok INTEGER,
    pow_total INTEGER,
    pow_ok INTEGER,
    pow_timeout INTEGER,
    pow_error INTEGER,
    vram_total INTEGER,
    vram_ok INTEGER,
    samples_total INTEGER,
    samples_bad INTEGER,
    first_bad_sample VARCHAR,
    unverified_ok INTEGER,              -- answered ok without samples that could be checked
    overclaimed_compute INTEGER,
    max_compute_over_observed DOUBLE,
    tflops_median DOUBLE,
    tflops_max DOUBLE,
    spec_tflops DOUBLE,
    catalogue_model VARCHAR,
    pow_reachable INTEGER,              -- challenges issued while the device was seen alive on both sides (0 in an
                                        -- hour the challenge service failed: challenge_outages)
    pow_timeout_reachable INTEGER,      -- of those, timed out: a timeout that downtime does not explain
    samples_flipped INTEGER,            -- of samples_bad, one bit off the exact entry (failing memory, an unstable
                                        -- overclock: pow_checks.samples_flipped)
    digests_repeated INTEGER            -- answers committing a digest the device committed before for another
                                        -- product (features.DIGESTS_REPEATED_CTE)
);
CREATE TABLE IF NOT EXISTS challenge_context (
    epoch VARCHAR NOT NULL,
    challenge_id VARCHAR NOT NULL,
    device_id VARCHAR NOT NULL,
    batch_id VARCHAR,
    kind VARCHAR NOT NULL,
    status VARCHAR NOT NULL,
    tflops DOUBLE,                      -- 2 n^3 / compute_ms, for answered challenges whose
                                        -- compute_ms fits in the round trip the backend saw
    ip VARCHAR,                         -- the device's site: its IPv4 address or IPv6 /64 (contract.ip_site)
    host_fingerprint VARCHAR,
    account_id VARCHAR,
    catalogue_model VARCHAR,
    batch_siblings INTEGER NOT NULL,    -- other devices in the same batch on the same IP or host
    n INTEGER,                          -- the challenge's matrix size (NULL in rows written before it was kept)
    reachable BOOLEAN                   -- the device was seen alive just before and just after it was issued,
                                        -- and the challenge service did not fail that hour (as pow_reachable)
);
CREATE TABLE IF NOT EXISTS device_measures (  -- what the reward stage prices, over the last day
    epoch VARCHAR NOT NULL,
    device_id VARCHAR NOT NULL,
    tflops DOUBLE,                      -- 90th percentile of its matmul challenges' TFLOPS (NULL: none measured)
    down_mbps DOUBLE                    -- last reported download bandwidth (NULL: none reported)
);
CREATE TABLE IF NOT EXISTS restart_gaps (
    epoch VARCHAR NOT NULL,
    device_id VARCHAR NOT NULL,
    gap_start TIMESTAMP NOT NULL,       -- last heartbeat before a silence: a restart up to uptime_cadence's
                                        -- restart_max_minutes, an outage beyond (kept up to two hours)
    gap_minutes DOUBLE NOT NULL
);
CREATE TABLE IF NOT EXISTS model_peers (
    epoch VARCHAR NOT NULL,
    catalogue_model VARCHAR NOT NULL,
    devices INTEGER NOT NULL,           -- devices with a throughput measurement in the window
    median_tflops DOUBLE NOT NULL,      -- median over devices of each device's median
    p90_tflops DOUBLE NOT NULL,
    PRIMARY KEY (epoch, catalogue_model)
);
"""
)


def run(con: duckdb.DuckDBPyConnection, epoch: str, ctx: StageContext) -> dict[str, int]:
    return {"devices": build_features(con, epoch, ctx.policy.features)}
