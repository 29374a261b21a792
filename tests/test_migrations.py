"""A database of an earlier version catches up (``pipelines.migrations``), and the per-device
tables stay one row per device and epoch without the key that used to enforce it."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import duckdb
import polars as pl
import pytest

from pipelines import catalogue, epoch
from pipelines.contract import MANIFEST
from pipelines.db import connect
from pipelines.features import check_one_row_per_device
from pipelines.migrations import ADDED_COLUMNS, UNKEYED, add_new_columns, keyed_tables
from pipelines.run import run
from pipelines.schema import schema_sql


def _schema_with_old_keys() -> str:
    """Today's schema with ``PRIMARY KEY (epoch, device_id)`` put back on the four tables."""
    sql = schema_sql()
    for table in UNKEYED:
        sql, n = re.subn(
            rf"(CREATE TABLE IF NOT EXISTS {table} \(.*?)\n\);", r"\1\n    , PRIMARY KEY (epoch, device_id)\n);", sql, flags=re.S
        )
        assert n == 1, table
    return sql


def _fingerprint(con: duckdb.DuckDBPyConnection) -> dict[str, tuple]:
    return {t: con.execute(f"SELECT count(*), sum(hash(COLUMNS(*))) FROM {t}").fetchall()[0] for t in UNKEYED}


def test_a_database_with_the_old_primary_keys_is_rebuilt_without_them_and_keeps_every_row(
    tiny_drops: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db, out = tmp_path / "db.duckdb", tmp_path / "out"
    old = duckdb.connect(str(db))
    old.execute(_schema_with_old_keys())
    assert keyed_tables(old) == sorted(UNKEYED)
    old.close()
    run(tiny_drops, db, out)  # the first connection rebuilds the tables, the run fills them
    assert "without its old primary key" in capsys.readouterr().err
    with connect(db) as con:
        assert keyed_tables(con) == []
        kept = _fingerprint(con)
        assert all(row[0] > 0 for row in kept.values())
        shadow = con.execute("SELECT table_name FROM duckdb_tables() WHERE table_name LIKE '%__keyed'").fetchall()
        assert shadow == []

    # and rows written under the old keys survive the rebuild unchanged
    keyed_db = tmp_path / "keyed.duckdb"
    src = duckdb.connect(str(keyed_db))
    src.execute(_schema_with_old_keys())
    src.execute(f"ATTACH '{db}' AS done (READ_ONLY)")
    for t in UNKEYED:
        src.execute(f"INSERT INTO {t} SELECT * FROM done.{t}")
    src.execute("DETACH done")
    src.close()
    with connect(keyed_db) as con:
        assert keyed_tables(con) == [] and _fingerprint(con) == kept


def test_a_redelivered_hour_leaves_one_row_per_device_in_every_per_device_table(tiny_drops: Path, tmp_path: Path) -> None:
    local = tmp_path / "drops"
    shutil.copytree(tiny_drops, local)
    hours = sorted(p.name for p in local.iterdir() if epoch.PATTERN.match(p.name))
    db, out = tmp_path / "db.duckdb", tmp_path / "out"
    run(local, db, out)
    with connect(db) as con:
        before = {t: con.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0] for t in UNKEYED}
    manifest = local / hours[0] / MANIFEST
    manifest.write_text(json.dumps(json.loads(manifest.read_text())))  # re-delivered: every epoch again
    assert [e.epoch for e in run(local, db, out).epochs] == hours
    with connect(db) as con:
        for t in UNKEYED:
            n, distinct = con.execute(f"SELECT count(*), count(DISTINCT (epoch, device_id)) FROM {t}").fetchall()[0]
            assert n == distinct == before[t], t


def test_a_catalogue_listing_a_model_twice_fails_the_features_stage_instead_of_doubling_devices(
    tiny_drops: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    doubled = tmp_path / "catalogue.csv"
    rows = pl.read_csv(catalogue.CATALOGUE_CSV, infer_schema_length=0)
    pl.concat([rows, rows]).write_csv(doubled)
    register = catalogue.register
    monkeypatch.setattr(catalogue, "register", lambda con, path=doubled: register(con, path))
    summary = run(tiny_drops, tmp_path / "db.duckdb", tmp_path / "out")
    assert summary.failed is not None and summary.failed.stage == "features"
    assert "lists a device more than once" in summary.failed.reason
    with connect(tmp_path / "db.duckdb") as con:
        assert con.execute("SELECT count(*) FROM device_features").fetchall()[0][0] == 0  # rolled back


def test_the_check_names_the_devices_listed_twice(tmp_path: Path) -> None:
    with connect(tmp_path / "db.duckdb") as con:
        con.execute("INSERT INTO device_features (epoch, device_id) VALUES ('2024-08-14T00', 'a'), ('2024-08-14T00', 'b')")
        check_one_row_per_device(con, "2024-08-14T00")
        con.execute("INSERT INTO device_features (epoch, device_id) VALUES ('2024-08-14T00', 'b')")
        check_one_row_per_device(con, "2024-08-14T01")  # another epoch is not this one's concern
        with pytest.raises(ValueError, match=r"2024-08-14T00 lists a device more than once: b \(2 rows\)"):
            check_one_row_per_device(con, "2024-08-14T00")


def test_a_table_that_gained_columns_gets_them_empty_for_the_rows_written_before(tiny_drops: Path, tmp_path: Path) -> None:
    """``challenge_context`` of an earlier version has no ``n`` nor ``reachable`` (and
    ``pow_checks`` and ``device_features`` no ``samples_flipped``): the first connection adds
    them (NULL: unknown, which counts nothing against a device) and a run fills them for the
    epochs it processes."""
    db = tmp_path / "db.duckdb"
    old = duckdb.connect(str(db))
    old.execute(schema_sql())
    for table, column, _ in ADDED_COLUMNS:
        old.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
    old.execute("INSERT INTO challenge_context (epoch, challenge_id, device_id, kind, status, batch_siblings) "
                "VALUES ('2024-08-13T23', 'c0', 'd0', 'vram', 'timeout', 0)")  # fmt: skip
    old.close()
    with connect(db) as con:
        assert con.execute("SELECT n, reachable FROM challenge_context WHERE challenge_id = 'c0'").fetchall() == [(None, None)]
        assert add_new_columns(con) == []  # once
    run(tiny_drops, db, tmp_path / "out")
    with connect(db) as con:
        filled = con.execute("SELECT count(*), count(n), count(reachable) FROM challenge_context WHERE challenge_id <> 'c0'")
        total, sized, judged = filled.fetchone()
        assert total > 0 and sized == total and judged == total
        counted = con.execute("SELECT count(*) = count(samples_flipped) FROM device_features").fetchall()
        assert counted == [(True,)] and con.execute("SELECT count(samples_flipped) > 0 FROM pow_checks").fetchall() == [(True,)]
