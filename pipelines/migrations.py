"""How a database written by an earlier version catches up with the schema (``ensure_schema``).

``CREATE TABLE IF NOT EXISTS`` adds what is missing but never changes a table that exists; the
changes below do, once, each in its own transaction.

**Per-device tables without a primary key.** ``device_features``, ``device_measures``,
``device_tiers`` and ``device_state`` hold one row per (epoch, device_id) and used to declare it
as their primary key. DuckDB keeps such a key in an ART index that it updates row by row, and
re-processing an epoch (a re-delivered hour, a full recalculation) deletes its rows first: at a
million devices that cost 15-24 s per table, most of it at commit (docs/scaling.md). The rows
stay unique without it: every stage deletes the epoch's rows and inserts them again inside the epoch's one
transaction, ``device_features`` is checked for a device listed twice
(``pipelines.features.build_features``), and the other three are built from it by joins to one
row per device.

**Columns added since.** A table that gains a column gets it by ``ALTER TABLE ... ADD COLUMN``
(``ADDED_COLUMNS``), NULL in the rows written before: ``challenge_context.n`` and
``.reachable`` (which VRAM timeouts ``spoofed_model`` may count) are unknown for past epochs,
and a NULL ``reachable`` counts nothing against a device; a NULL ``samples_flipped`` (how many
wrong samples were one bit off) reads as none, so a past wrong sample stays a wrong one; a NULL
``digests_repeated`` reads as none too.
"""

from __future__ import annotations

import sys

import duckdb

ADDED_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("challenge_context", "n", "INTEGER"),
    ("challenge_context", "reachable", "BOOLEAN"),
    ("pow_checks", "samples_flipped", "INTEGER"),
    ("device_features", "samples_flipped", "INTEGER"),
    ("device_features", "digests_repeated", "INTEGER"),
)
"""(table, column, type) added to a table after databases with it were written, in order."""

UNKEYED = ("device_features", "device_measures", "device_tiers", "device_state")
"""Tables that once had ``PRIMARY KEY (epoch, device_id)`` and no longer do."""


def keyed_tables(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Which of ``UNKEYED`` still carry their old primary key in this database."""
    rows = con.execute(
        "SELECT DISTINCT table_name FROM duckdb_constraints() WHERE constraint_type = 'PRIMARY KEY' "
        "AND database_name = current_database() AND schema_name = 'main' AND list_contains(?, table_name) "
        "ORDER BY table_name",
        [list(UNKEYED)],
    ).fetchall()
    return [r[0] for r in rows]


def drop_retired_keys(con: duckdb.DuckDBPyConnection, create_sql: str) -> list[str]:
    """Rebuild each table of ``UNKEYED`` that still has its key: renamed aside, created again by
    ``create_sql`` (the schema's ``CREATE TABLE IF NOT EXISTS`` statements), its rows copied by
    column name, the old one dropped, in one transaction per table. Returns the tables rebuilt."""
    rebuilt = []
    for table in keyed_tables(con):
        rows = con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]
        print(f"fleetproof: rebuilding {table} ({rows:,} rows) without its old primary key, once", file=sys.stderr)
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute(f"ALTER TABLE {table} RENAME TO {table}__keyed")
            con.execute(create_sql)
            con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM {table}__keyed")
            con.execute(f"DROP TABLE {table}__keyed")
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        rebuilt.append(table)
    return rebuilt


def add_new_columns(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Add each column of ``ADDED_COLUMNS`` that its table lacks (``table.column``, returned)."""
    have = {
        (t, c)
        for t, c in con.execute(
            "SELECT table_name, column_name FROM duckdb_columns() WHERE database_name = current_database() "
            "AND schema_name = 'main'"
        ).fetchall()
    }
    added = []
    for table, column, sql_type in ADDED_COLUMNS:
        if (table, column) not in have:
            con.execute(f"ALTER TABLE {table} ADD COLUMN {column} {sql_type}")
            added.append(f"{table}.{column}")
    return added
