"""Per-epoch Parquet exports of the published tables: ``<out>/<table>/epoch=<epoch>/``.

Each epoch's file is rewritten whole (temporary name, then rename), so a re-run or a
recomputation after late data replaces it and a reader never sees half a file. An epoch's
export is recorded in ``epoch_exports`` (per output folder, with the computation it reflects
and every file's sha256): ``missing_exports`` finds epochs whose exports a killed or failed
run never wrote, so the next run writes them.

Types are fixed for every reader: money is BIGINT, JSON columns are plain text (polars,
pandas and DuckDB all read them as strings), and CSV cells that a spreadsheet would run as a
formula (leading ``=``, ``+``, ``-``, ``@``, tab, carriage return) get a leading apostrophe.
"""

from __future__ import annotations

import hashlib
import json
import os
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from pipelines.contract import HOUR_RE

PUBLISHED = (
    "device_tiers",
    "sybil_clusters",
    "reward_allocations",
    "slashing_events",
    "account_statements",
    "held_settlements",
    "challenge_plan",
)
"""Tables published per epoch: the contract's four, the per-account statements and the held
shares settled this epoch for the rewards engine, and the ``challenge_plan`` for the backend."""
CSV_TOO = ("reward_allocations", "slashing_events", "account_statements", "held_settlements")
"""Also written as CSV beside the Parquet file (the rewards engine's formats)."""
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")

STATEMENTS_SQL = """
WITH alloc AS (
    SELECT account_id, count(DISTINCT device_id) AS devices,
           sum(amount_base_units) FILTER (components ->> 'status' = 'paid') AS paid,
           sum(amount_base_units) FILTER (components ->> 'status' = 'held') AS held
    FROM reward_allocations WHERE epoch = '{epoch}' AND account_id IS NOT NULL GROUP BY account_id
),
settled AS (
    SELECT account_id, sum(amount_base_units) FILTER (outcome = 'released') AS released,
           sum(amount_base_units) FILTER (outcome = 'forfeited') AS forfeited
    FROM held_rewards WHERE settled_epoch = '{epoch}' AND account_id IS NOT NULL GROUP BY account_id
),
slashed AS (
    SELECT account_id, sum(amount_base_units) AS slashed
    FROM slashing_events WHERE epoch = '{epoch}' AND account_id IS NOT NULL GROUP BY account_id
),
accounts AS (SELECT account_id FROM alloc UNION SELECT account_id FROM settled UNION SELECT account_id FROM slashed)
SELECT '{epoch}' AS epoch, account_id, CAST(coalesce(a.devices, 0) AS BIGINT) AS devices,
       CAST(coalesce(a.paid, 0) AS BIGINT) AS paid_base_units, CAST(coalesce(a.held, 0) AS BIGINT) AS held_base_units,
       CAST(coalesce(x.slashed, 0) AS BIGINT) AS slashed_base_units,
       CAST(coalesce(s.released, 0) AS BIGINT) AS released_base_units,
       CAST(coalesce(s.forfeited, 0) AS BIGINT) AS forfeited_base_units
FROM accounts LEFT JOIN alloc a USING (account_id) LEFT JOIN settled s USING (account_id) LEFT JOIN slashed x USING (account_id)
"""
"""Per account: devices allocated to, paid and held this epoch, slashed, and earlier held shares
released or forfeited this epoch (an account with no allocation still gets its row)."""

SETTLEMENTS_SQL = """
SELECT settled_epoch AS epoch, held_epoch, device_id, account_id, wallet, amount_base_units, outcome
FROM held_rewards WHERE settled_epoch = '{epoch}'
"""
"""Held shares settled this epoch, per (held epoch, device, wallet): what the rewards engine pays
out (``released``) or drops (``forfeited``)."""

DERIVED = {"account_statements": STATEMENTS_SQL, "held_settlements": SETTLEMENTS_SQL}


def _query(con: duckdb.DuckDBPyConnection, table: str, epoch: str, *, csv: bool) -> str:
    """The export query: JSON as text; for CSV, text cells neutralized against formulas."""
    base = DERIVED[table].format(epoch=epoch) if table in DERIVED else f"SELECT * FROM {table} WHERE epoch = '{epoch}'"
    columns = con.execute(f"DESCRIBE {base}").fetchall()
    exprs = []
    for name, type_, *_ in columns:
        col = f'"{name}"'
        if type_ == "JSON" or (csv and type_ == "VARCHAR"):
            col = f"CAST({col} AS VARCHAR)"
        if csv and type_ in ("JSON", "VARCHAR"):
            starts = ", ".join("'" + p.replace("'", "''") + "'" for p in FORMULA_PREFIXES)
            col = f"CASE WHEN left({col}, 1) IN ({starts}) THEN '''' || {col} ELSE {col} END"
        exprs.append(f'{col} AS "{name}"')
    return f"SELECT {', '.join(exprs)} FROM ({base}) ORDER BY ALL"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def export_epoch(con: duckdb.DuckDBPyConnection, out: str | Path, epoch: str, tables: tuple[str, ...] = PUBLISHED) -> list[Path]:
    """Write the epoch's files and record them; returns the paths written."""
    if not isinstance(epoch, str) or not HOUR_RE.match(epoch):
        raise ValueError(f"not an epoch: {epoch!r}")
    out = Path(out)
    written = []
    for table in tables:
        folder = out / table / f"epoch={epoch}"
        folder.mkdir(parents=True, exist_ok=True)
        final = folder / "part-0.parquet"
        tmp = folder / ".part-0.parquet.tmp"
        con.execute(f"COPY ({_query(con, table, epoch, csv=False)}) TO '{tmp}' (FORMAT parquet, COMPRESSION zstd)")
        os.replace(tmp, final)
        written.append(final)
        if table in CSV_TOO:
            tmp_csv, final_csv = folder / ".part-0.csv.tmp", folder / "part-0.csv"
            con.execute(f"COPY ({_query(con, table, epoch, csv=True)}) TO '{tmp_csv}' (FORMAT csv, HEADER)")
            os.replace(tmp_csv, final_csv)
            written.append(final_csv)
    if tables == PUBLISHED:
        _record(con, out, epoch, written)
    return written


def _record(con: duckdb.DuckDBPyConnection, out: Path, epoch: str, written: list[Path]) -> None:
    files = {str(p.relative_to(out)): _sha256(p) for p in written}
    con.execute(
        "INSERT OR REPLACE INTO epoch_exports SELECT ?, epoch, processed_at, ?, ? FROM processed_epochs WHERE epoch = ?",
        [str(out.resolve()), json.dumps(files, sort_keys=True), datetime.now(UTC).replace(tzinfo=None), epoch],
    )


def missing_exports(con: duckdb.DuckDBPyConnection, out: str | Path) -> list[str]:
    """Processed epochs whose exports under ``out`` are unrecorded, older than the epoch's
    latest computation, or missing a file on disk; oldest first."""
    out = Path(out)
    rows = con.execute(
        """
        SELECT p.epoch, e.files, e.processed_at IS NOT DISTINCT FROM p.processed_at AS current
        FROM processed_epochs p LEFT JOIN epoch_exports e ON e.epoch = p.epoch AND e.out_dir = ?
        ORDER BY p.epoch
        """,
        [str(out.resolve())],
    ).fetchall()
    stale = []
    for epoch, files, current in rows:
        if files is None or not current or not all((out / name).is_file() for name in json.loads(files)):
            stale.append(epoch)
    return stale
