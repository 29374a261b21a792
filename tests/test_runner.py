"""The runner and its stages: declared order, one owner per table, ``until``, staleness, epochs."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import duckdb
import pytest

from pipelines import epoch, schema
from pipelines.contract import MANIFEST
from pipelines.db import connect, ensure_schema
from pipelines.run import run
from pipelines.runner import current_deliveries, processed_at, stale_epochs
from pipelines.stages import COMPUTE, STAGES, by_name

ORDER = ["ingest", "verify", "features", "detect", "tier", "plan", "stake", "reward", "slash", "publish"]


def test_stages_run_in_the_declared_order_and_publish_after_the_commit() -> None:
    assert [s.NAME for s in STAGES] == ORDER
    assert [s.NAME for s in COMPUTE] == ORDER[:-1]
    assert by_name("tier").WRITES == ("device_state", "device_tiers")
    with pytest.raises(KeyError, match="no stage 'tiers'"):
        by_name("tiers")


def test_every_table_has_one_owner_whose_ddl_creates_it() -> None:
    con = duckdb.connect()
    ensure_schema(con)
    tables = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    owners = schema.owners()
    written = [t for s in STAGES for t in s.WRITES]
    assert len(written) == len(set(written)), "a table written by two stages"
    for s in STAGES:
        created = set(re.findall(r"CREATE TABLE IF NOT EXISTS (\w+)", s.DDL))
        assert created == set(s.WRITES), s.NAME
    assert tables == set(owners) | {"stage_failures", "processed_epochs", "verdict_overrides"}


def test_until_stops_at_that_epoch_and_the_rest_stays_stale(tiny_drops: Path, tmp_path: Path) -> None:
    hours = sorted(p.name for p in tiny_drops.iterdir() if epoch.PATTERN.match(p.name))
    db, out = tmp_path / "db.duckdb", tmp_path / "out"
    first = run(tiny_drops, db, out, until=hours[0])
    assert [e.epoch for e in first.epochs] == hours[:1] and len(first.ingested) == 1
    with connect(db) as con:
        assert list(processed_at(con)) == hours[:1] and stale_epochs(con) == []
        assert list(current_deliveries(con)) == hours[:1]
    rest = run(tiny_drops, db, out)
    assert [e.epoch for e in rest.epochs] == hours[1:]
    assert set(rest.epochs[0].figures) == set(ORDER)  # every stage reported its figures


def test_a_redelivered_hour_recomputed_alone_leaves_every_later_epoch_stale(tiny_drops: Path, tmp_path: Path) -> None:
    """Hour 1 re-delivered and recomputed ``until`` it (as a Dagster partition run does): hour 2
    was computed from hour 1's old state, so it stays stale until a run recomputes it."""
    local = tmp_path / "drops"
    shutil.copytree(tiny_drops, local)
    hours = sorted(p.name for p in local.iterdir() if epoch.PATTERN.match(p.name))
    db, out = tmp_path / "db.duckdb", tmp_path / "out"
    run(local, db, out)
    manifest = local / hours[1] / MANIFEST
    manifest.write_text(json.dumps(json.loads(manifest.read_text())))  # re-delivered with other bytes
    again = run(local, db, out, until=hours[1])
    assert [e.epoch for e in again.epochs] == [hours[1]]
    with connect(db) as con:
        assert stale_epochs(con) == hours[2:]
    rest = run(local, db, out)
    assert [e.epoch for e in rest.epochs] == hours[2:]
    with connect(db) as con:
        assert stale_epochs(con) == []


def test_epoch_names_parse_shift_and_refuse_anything_else() -> None:
    assert epoch.previous("2024-08-15T00") == "2024-08-14T23"
    assert epoch.shift("2024-08-14T22", 3) == "2024-08-15T01"
    assert epoch.try_parse("2024-08-14T99") is None
    with pytest.raises(ValueError, match="not an epoch"):
        epoch.parse("2024-08-14 05")
    con = duckdb.connect()
    con.execute(epoch.SQL_MACROS)
    assert con.execute("SELECT hours_back('2024-08-15T01', 3), CAST(epoch_start('2024-08-15T01') AS VARCHAR)").fetchone() == (
        "2024-08-14T22",
        "2024-08-15 01:00:00",
    )
