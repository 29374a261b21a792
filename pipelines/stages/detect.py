"""Stage ``detect``: every detector of the policy on the epoch; their rows go to ``evidence``
(``collect_evidence``). Detectors only read; the rows of their own tables (``anomaly_top`` of
anomaly, ``timeshare_rotas`` of timeshare, ``sybil_clusters`` of sybil) come back from ``fit``
as frames and are stored before ``score`` (``detectors.base.store_tables``). A detector that
reads another's table declares it (``needs``: ``wash_trading`` needs ``sybil``, ``sybil`` needs
``timeshare``) and must run after it."""

from __future__ import annotations

import time

import duckdb
import polars as pl

from detectors.base import EVIDENCE_SCHEMA, Detector, Evidence
from pipelines import catalogue
from pipelines.stages.context import StageContext

NAME = "detect"
WRITES = ("evidence", "anomaly_top", "timeshare_rotas", "sybil_clusters")
READS = (
    "device_features",
    "uptime_cadence",
    "challenge_outages",
    "challenge_context",
    "restart_gaps",
    "model_peers",
    "evidence",
    "anomaly_top",
    "timeshare_rotas",
    "sybil_clusters",
    "processed_epochs",
    "hardware",
    "accounts",
    "stake_events",
    "jobs",
    "external_listings",
)
DDL = """
CREATE TABLE IF NOT EXISTS evidence (
    epoch VARCHAR NOT NULL,
    device_id VARCHAR NOT NULL,
    account_id VARCHAR,
    detector VARCHAR NOT NULL,
    fraud_type VARCHAR NOT NULL,
    score DOUBLE NOT NULL,
    action VARCHAR NOT NULL,            -- review | probation | reject | clear (detectors.base.ACTIONS)
    reason VARCHAR NOT NULL,
    details JSON
);
CREATE TABLE IF NOT EXISTS anomaly_top (  -- the anomaly detector's memory: top-scored devices per epoch
    epoch VARCHAR NOT NULL,
    device_id VARCHAR NOT NULL,
    score DOUBLE NOT NULL
);
CREATE TABLE IF NOT EXISTS timeshare_rotas (  -- the timeshare detector's rotas: identities held in turn, per holder device
    epoch VARCHAR NOT NULL,
    kind VARCHAR NOT NULL,              -- host | gpu_uuid | ip
    value VARCHAR NOT NULL,
    device_id VARCHAR NOT NULL,
    account_id VARCHAR NOT NULL,
    accounts BIGINT NOT NULL,
    handovers BIGINT NOT NULL,
    returns BIGINT NOT NULL,
    hours BIGINT NOT NULL,
    shared_hours BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS sybil_clusters (
    epoch VARCHAR NOT NULL,
    cluster_id VARCHAR NOT NULL,
    account_id VARCHAR NOT NULL,
    score DOUBLE NOT NULL,
    evidence JSON NOT NULL
);
"""


def collect_evidence(
    con: duckdb.DuckDBPyConnection, epoch: str, detectors: list[Detector], seconds: dict[str, float] | None = None
) -> pl.DataFrame:
    """Run every detector on the epoch and store its findings in ``evidence`` (replacing any);
    ``seconds``, when given, accumulates each detector's wall time. The epoch's rows of every
    detector's own table go first, so a detector the policy disabled leaves its table empty for
    the epoch rather than a run's before (which a detector that ``needs`` it would read)."""
    catalogue.register(con)  # detectors may read gpu_catalogue / gpu_alias
    for table in WRITES[1:]:
        con.execute(f"DELETE FROM {table} WHERE epoch = ?", [epoch])
    found = []
    for d in detectors:
        started = time.perf_counter()
        found.append(d.detect(Evidence(con, epoch)))
        if seconds is not None:
            seconds[d.name] = seconds.get(d.name, 0.0) + time.perf_counter() - started
    evidence = pl.concat(found) if found else pl.DataFrame(schema=EVIDENCE_SCHEMA)
    con.execute("DELETE FROM evidence WHERE epoch = ?", [epoch])
    con.register("new_evidence", evidence.to_arrow())
    con.execute(
        "INSERT INTO evidence SELECT ?, device_id, account_id, detector, fraud_type, score, action, reason, "
        "CAST(details AS JSON) FROM new_evidence ORDER BY device_id, detector",
        [epoch],
    )
    con.unregister("new_evidence")
    return evidence


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
