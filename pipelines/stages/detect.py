"""Stage ``detect``: every detector of the policy on the epoch; their rows go to ``evidence``
(``pipelines.tiering.collect_evidence``). Detectors with memory keep it in their own tables:
``anomaly_top`` (anomaly), ``sybil_clusters`` (sybil; read by ``wash_trading``, which the
policy lists after it)."""

from __future__ import annotations

import duckdb

from pipelines.stages.context import StageContext
from pipelines.tiering import collect_evidence

NAME = "detect"
WRITES = ("evidence", "anomaly_top", "sybil_clusters")
READS = ("device_features", "challenge_context", "restart_gaps", "model_peers", "evidence", "hardware", "uptime", "pow")
DDL = """
CREATE TABLE IF NOT EXISTS evidence (
    epoch VARCHAR NOT NULL,
    device_id VARCHAR NOT NULL,
    account_id VARCHAR,
    detector VARCHAR NOT NULL,
    fraud_type VARCHAR NOT NULL,
    score DOUBLE NOT NULL,
    action VARCHAR NOT NULL,            -- probation | reject
    reason VARCHAR NOT NULL,
    details JSON
);
CREATE TABLE IF NOT EXISTS anomaly_top (  -- the anomaly detector's memory: top-scored devices per epoch
    epoch VARCHAR NOT NULL,
    device_id VARCHAR NOT NULL,
    score DOUBLE NOT NULL
);
CREATE TABLE IF NOT EXISTS sybil_clusters (
    epoch VARCHAR NOT NULL,
    cluster_id VARCHAR NOT NULL,
    account_id VARCHAR NOT NULL,
    score DOUBLE NOT NULL,
    evidence JSON NOT NULL
);
"""


def run(con: duckdb.DuckDBPyConnection, epoch: str, ctx: StageContext) -> dict[str, int]:
    evidence = collect_evidence(con, epoch, ctx.policy.build_detectors(), ctx.detector_seconds)
    return {"evidence": evidence.height}
