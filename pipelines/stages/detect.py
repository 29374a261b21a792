"""Stage ``detect``: every detector of the policy on the epoch; their rows go to ``evidence``
(``pipelines.tiering.collect_evidence``). Detectors only read; the rows of their own tables
(``anomaly_top`` of anomaly, ``sybil_clusters`` of sybil) come back from ``fit`` as frames and
are stored before ``score`` (``detectors.base.store_tables``). A detector that reads another's table
declares it (``needs``: ``wash_trading`` needs ``sybil``) and must run after it."""

from __future__ import annotations

import duckdb

from detectors.base import Detector

from pipelines.stages.context import StageContext
from pipelines.tiering import collect_evidence

NAME = "detect"
WRITES = ("evidence", "anomaly_top", "sybil_clusters")
READS = ("device_features", "challenge_context", "restart_gaps", "model_peers", "evidence", "anomaly_top", "sybil_clusters",
         "processed_epochs", "hardware", "accounts", "stake_events", "jobs", "external_listings")
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


def check_order(detectors: list[Detector]) -> None:
    """Every detector runs after the detectors it ``needs`` (a disabled one leaves its tables
    empty for the epoch); ValueError naming the pair otherwise."""
    position = {d.name: i for i, d in enumerate(detectors)}
    for i, d in enumerate(detectors):
        late = [n for n in d.needs if position.get(n, -1) > i]
        if late:
            raise ValueError(f"detector {d.name} reads what {', '.join(late)} writes, so must run after it")


def run(con: duckdb.DuckDBPyConnection, epoch: str, ctx: StageContext) -> dict[str, int]:
    detectors = ctx.policy.build_detectors()
    check_order(detectors)
    evidence = collect_evidence(con, epoch, detectors, ctx.detector_seconds)
    return {"evidence": evidence.height}
