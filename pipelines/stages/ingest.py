"""Stage ``ingest``: the hour's drop folder landed as typed feed rows, bad rows quarantined
(``pipelines.ingest``), then the hour's ingest quality bars.

Landing runs for every new hour folder before the runner picks the stale epochs (a late hour
makes later epochs stale), so ``land`` is separate from ``run``; ``run`` holds the epoch to the
bars (manifest accepted, quarantine share, rows per required feed).
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from pipelines.contract import FEEDS
from pipelines.ingest import IngestResult, complete_hours, false_hours, ingest_hour
from pipelines.quality import ingest_bars
from pipelines.stages.context import StageContext, require

NAME = "ingest"
WRITES = (*FEEDS, "ingest_log", "ingest_attempts", "quarantine", "quarantine_files")
READS: tuple[str, ...] = ()


def _feed_ddl() -> str:
    parts = []
    for feed in FEEDS.values():
        cols = ",\n    ".join(f"{c.name} {c.type}" for c in feed.columns)
        parts.append(
            f"CREATE TABLE IF NOT EXISTS {feed.name} (\n    {cols},\n"
            "    _hour VARCHAR NOT NULL,\n    _file VARCHAR NOT NULL,\n    _row BIGINT NOT NULL\n);"
        )
    return "\n".join(parts)


DDL = (
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
"""
)


def land(con: duckdb.DuckDBPyConnection, drops: str | Path, until: str | None = None) -> list[IngestResult]:
    """Ingest every complete hour folder under ``drops`` (new or changed ones), oldest first;
    with ``until``, only hours up to that epoch."""
    folders = false_hours(drops) + complete_hours(drops)
    return [ingest_hour(con, f) for f in folders if until is None or f.name <= until]


def run(con: duckdb.DuckDBPyConnection, epoch: str, ctx: StageContext) -> dict[str, int]:
    """The landed hour against the policy's ingest bars (QualityBarFailed when one fails)."""
    if ctx.quality_bars:
        require(epoch, ingest_bars(con, epoch, ctx.policy.quality))
    return {}
