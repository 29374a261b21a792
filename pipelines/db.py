"""The DuckDB file: one writer at a time, and the schema every stage writes into.

DuckDB lets one process write a database file. The command line, the Dagster UI, its sensor
daemon and backfill workers are separate processes, so every connection is taken under an
exclusive file lock beside the database and released as soon as the work is done: a second
process waits for the lock instead of failing with DuckDB's lock error.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import duckdb
from filelock import FileLock, Timeout

from pipelines.contract import FEEDS

DEFAULT_LOCK_TIMEOUT_S = 3600.0
DEFAULT_MEMORY_LIMIT = "6GB"
"""DuckDB's memory cap (it spills to disk beyond it); ``FLEETPROOF_DUCKDB_MEMORY`` overrides.
DuckDB's own default, 80% of the machine, would let one large join take all of it."""


def lock_path(db_path: str | Path) -> Path:
    return Path(str(db_path) + ".lock")


def holder_path(db_path: str | Path) -> Path:
    """Beside the lock: who holds the database and since when (for ``fleetproof status``)."""
    return Path(str(db_path) + ".holder")


class DatabaseBusy(Exception):
    """Another process holds the database (the message says which and since when)."""


class NotADatabase(Exception):
    """The path exists but is not a DuckDB database file."""


def check_database_file(db_path: str | Path) -> Path:
    """The path of an existing DuckDB file; FileNotFoundError or NotADatabase otherwise
    (nothing is created)."""
    path = Path(db_path)
    if not path.exists():
        raise FileNotFoundError(f"database {path} does not exist")
    if not path.is_file():
        raise NotADatabase(f"{path} is not a file")
    with path.open("rb") as f:
        header = f.read(16)
    if header[8:12] != b"DUCK":
        raise NotADatabase(f"{path} is not a DuckDB database")
    return path


@contextmanager
def connect_for_reading(db_path: str | Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only connection to an existing database, without waiting: if a run holds the
    database, DatabaseBusy says so at once (with the holder's pid and start time)."""
    path = check_database_file(db_path)
    lock = FileLock(lock_path(path), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        try:
            since = holder_path(path).read_text().strip()
        except OSError:
            since = "an unknown time"
        raise DatabaseBusy(f"a run holds {path} ({since}); try again when it ends") from None
    try:
        con = duckdb.connect(str(path), read_only=True)
        try:
            yield con
        finally:
            con.close()
    finally:
        lock.release()


@contextmanager
def connect(
    db_path: str | Path, *, timeout_s: float = DEFAULT_LOCK_TIMEOUT_S, threads: int | None = None
) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open the database under the writer lock, with the schema in place, and close it after."""
    db_path = Path(db_path)
    db_path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(lock_path(db_path), timeout=timeout_s):
        since = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        holder_path(db_path).write_text(f"pid {os.getpid()} since {since}\n")
        con = duckdb.connect(str(db_path))
        try:
            con.execute("SET TimeZone = 'UTC'")  # TIMESTAMPTZ -> TIMESTAMP conversions are UTC
            con.execute(f"SET memory_limit = '{os.environ.get('FLEETPROOF_DUCKDB_MEMORY', DEFAULT_MEMORY_LIMIT)}'")
            if threads:
                con.execute(f"SET threads = {int(threads)}")
            ensure_schema(con)
            yield con
        finally:
            con.close()


def _feed_ddl() -> str:
    parts = []
    for feed in FEEDS.values():
        cols = ",\n    ".join(f"{c.name} {c.type}" for c in feed.columns)
        parts.append(
            f"CREATE TABLE IF NOT EXISTS {feed.name} (\n    {cols},\n"
            "    _hour VARCHAR NOT NULL,\n    _file VARCHAR NOT NULL,\n    _row BIGINT NOT NULL\n);"
        )
    return "\n".join(parts)


SCHEMA_SQL = (
    _feed_ddl()
    + """
CREATE TABLE IF NOT EXISTS ingest_log (
    hour VARCHAR PRIMARY KEY,
    status VARCHAR NOT NULL,            -- ingested | rejected
    reason VARCHAR,
    manifest_sha256 VARCHAR NOT NULL,
    files JSON,
    rows_in BIGINT NOT NULL,
    rows_landed BIGINT NOT NULL,
    rows_quarantined BIGINT NOT NULL,
    ingested_at TIMESTAMP NOT NULL
);
CREATE TABLE IF NOT EXISTS ingest_attempts (
    hour VARCHAR NOT NULL,
    manifest_sha256 VARCHAR NOT NULL,
    fingerprint VARCHAR NOT NULL,       -- manifest sha256 (pins listed content) + other names
    status VARCHAR NOT NULL,            -- ingested | rejected
    reason VARCHAR,
    attempted_at TIMESTAMP NOT NULL
);
CREATE TABLE IF NOT EXISTS quarantine (
    hour VARCHAR NOT NULL,
    feed VARCHAR,
    file VARCHAR NOT NULL,
    row_number BIGINT,                  -- 1-based data row in the file; NULL: the whole file
    reason VARCHAR NOT NULL,
    raw VARCHAR                          -- the row as read (JSON object or CSV line)
);
CREATE TABLE IF NOT EXISTS quarantine_files (
    hour VARCHAR NOT NULL,
    file VARCHAR NOT NULL,
    sha256 VARCHAR NOT NULL,
    size_bytes BIGINT NOT NULL,
    content BLOB                        -- NULL for files over 64 MiB (sha256 identifies them)
);
CREATE TABLE IF NOT EXISTS pow_checks (
    challenge_id VARCHAR NOT NULL,
    _hour VARCHAR NOT NULL,
    samples_total INTEGER NOT NULL,
    samples_bad INTEGER NOT NULL,
    first_bad VARCHAR                   -- e.g. "[12, 40] = 17, expected 23"
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
    pow_reachable INTEGER,              -- challenges issued while the device was seen alive on both sides
    pow_timeout_reachable INTEGER,      -- of those, timed out: a timeout that downtime does not explain
    PRIMARY KEY (epoch, device_id)
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
    ip VARCHAR,
    host_fingerprint VARCHAR,
    account_id VARCHAR,
    catalogue_model VARCHAR,
    batch_siblings INTEGER NOT NULL     -- other devices in the same batch on the same IP or host
);
CREATE TABLE IF NOT EXISTS restart_gaps (
    epoch VARCHAR NOT NULL,
    device_id VARCHAR NOT NULL,
    gap_start TIMESTAMP NOT NULL,       -- last heartbeat before a short silence (a restart)
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
CREATE TABLE IF NOT EXISTS challenge_plan (
    epoch VARCHAR NOT NULL,             -- the epoch whose evidence made the plan (for epoch + 1)
    group_id VARCHAR NOT NULL,
    device_id VARCHAR NOT NULL,
    reason VARCHAR NOT NULL
);
CREATE TABLE IF NOT EXISTS anomaly_top (  -- the anomaly detector's memory: top-scored devices per epoch
    epoch VARCHAR NOT NULL,
    device_id VARCHAR NOT NULL,
    score DOUBLE NOT NULL
);
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
CREATE TABLE IF NOT EXISTS device_state (
    epoch VARCHAR NOT NULL,
    device_id VARCHAR NOT NULL,
    tier VARCHAR NOT NULL,
    clean_streak INTEGER NOT NULL,
    rejected_types VARCHAR[],
    rejected_since VARCHAR,
    rejected_score DOUBLE,
    PRIMARY KEY (epoch, device_id)
);
CREATE TABLE IF NOT EXISTS device_tiers (
    epoch VARCHAR NOT NULL,
    device_id VARCHAR NOT NULL,
    account_id VARCHAR,
    tier VARCHAR NOT NULL,
    fraud_types VARCHAR[] NOT NULL,
    score DOUBLE NOT NULL,
    reasons JSON NOT NULL,
    PRIMARY KEY (epoch, device_id)
);
CREATE TABLE IF NOT EXISTS sybil_clusters (
    epoch VARCHAR NOT NULL,
    cluster_id VARCHAR NOT NULL,
    account_id VARCHAR NOT NULL,
    score DOUBLE NOT NULL,
    evidence JSON NOT NULL
);
CREATE TABLE IF NOT EXISTS stake_positions (
    epoch VARCHAR NOT NULL,
    device_id VARCHAR NOT NULL,
    wallet VARCHAR NOT NULL,
    active_units BIGINT NOT NULL,       -- counts towards the requirement and earns
    cooling_units BIGINT NOT NULL       -- withdrawn within the cooldown: slashable only
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
CREATE TABLE IF NOT EXISTS verdict_overrides (  -- a person's review: this tier for these epochs
    device_id VARCHAR NOT NULL,
    epoch_from VARCHAR NOT NULL,
    epoch_to VARCHAR NOT NULL,
    tier VARCHAR NOT NULL,
    reason VARCHAR NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE TABLE IF NOT EXISTS epoch_exports (  -- an epoch is done only once exported and recorded here
    out_dir VARCHAR NOT NULL,
    epoch VARCHAR NOT NULL,
    processed_at TIMESTAMP NOT NULL,    -- the computation that was exported
    files JSON NOT NULL,                -- relative path -> sha256
    exported_at TIMESTAMP NOT NULL,
    PRIMARY KEY (out_dir, epoch)
);
CREATE TABLE IF NOT EXISTS stage_failures (  -- a stage that failed on one epoch, until it succeeds
    epoch VARCHAR PRIMARY KEY,
    stage VARCHAR NOT NULL,
    reason VARCHAR NOT NULL,
    failed_at TIMESTAMP NOT NULL
);
CREATE TABLE IF NOT EXISTS processed_epochs (
    epoch VARCHAR PRIMARY KEY,
    processed_at TIMESTAMP NOT NULL,
    inputs_ingested_at TIMESTAMP NOT NULL
);
"""
)


MACROS_SQL = """
CREATE OR REPLACE TEMP MACRO hours_back(epoch, hours) AS
    strftime(strptime(epoch, '%Y-%m-%dT%H') - to_hours(CAST(hours AS BIGINT)), '%Y-%m-%dT%H');
"""
"""``hours_back('2024-08-14T05', 3)`` = ``'2024-08-14T02'``: window bounds over epoch names."""


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create every table the pipeline writes, if missing, and the SQL macros the stages use
    (safe to call on each connection)."""
    con.execute(SCHEMA_SQL)
    con.execute(MACROS_SQL)


def one(con: duckdb.DuckDBPyConnection, sql: str, params: object = None) -> tuple | None:
    """The first row of a query, or None (reads the whole result, so the connection is free)."""
    rows = con.execute(sql, params).fetchall() if params is not None else con.execute(sql).fetchall()
    return rows[0] if rows else None


def scalar(con: duckdb.DuckDBPyConnection, sql: str, params: object = None) -> object:
    row = one(con, sql, params)
    return row[0] if row else None
