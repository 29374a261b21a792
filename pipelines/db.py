"""The DuckDB file: one writer at a time, with every stage's tables in place (``pipelines.schema``).

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

from pipelines import epoch
from pipelines.cadence import LIVENESS_MACROS
from pipelines.contract import GPU_UUID_MACRO, IP_MACROS, TIMESTAMP_MACROS

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


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create every table the pipeline writes, if missing, bring a database of an earlier version
    up to date (``pipelines.migrations``), and create the SQL macros the stages use (safe to call
    on each connection)."""
    from pipelines.migrations import add_new_columns, drop_retired_keys
    from pipelines.schema import schema_sql

    con.execute(schema_sql())
    drop_retired_keys(con, schema_sql())
    add_new_columns(con)
    con.execute(epoch.SQL_MACROS)
    con.execute(LIVENESS_MACROS)
    con.execute(TIMESTAMP_MACROS)
    con.execute(IP_MACROS)
    con.execute(GPU_UUID_MACRO)


def one(con: duckdb.DuckDBPyConnection, sql: str, params: object = None) -> tuple | None:
    """The first row of a query, or None (reads the whole result, so the connection is free)."""
    rows = con.execute(sql, params).fetchall() if params is not None else con.execute(sql).fetchall()
    return rows[0] if rows else None


def scalar(con: duckdb.DuckDBPyConnection, sql: str, params: object = None) -> object:
    row = one(con, sql, params)
    return row[0] if row else None
