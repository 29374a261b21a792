"""Outputs: every exported table matches its JSON Schema (checked against the Parquet file's
own schema and rows), money stays integer, JSON columns read as text everywhere, CSV cells
cannot run as formulas, two clean runs are byte-identical, and a poisoned hour does not stop
the hours after it."""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
from pathlib import Path

import duckdb
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hostile_hours import gz, jsonl, uptime_row, write_manifest

from pipelines.db import connect
from pipelines.export import CSV_TOO, PUBLISHED, export_epoch
from pipelines.rewards_policy import load_rewards_policy
from pipelines.run import run
from pipelines.simulate import simulate

pytestmark = pytest.mark.slow  # runs the pipeline on a tiny network

SCHEMAS = Path(__file__).resolve().parent.parent / "docs" / "schemas"
JSON_COLUMNS = {
    "device_tiers": "reasons",
    "sybil_clusters": "evidence",
    "reward_allocations": "components",
    "slashing_events": "evidence",
}


def short_uptime_rewards(folder: Path):
    """The default reward policy, but paying after one hour of uptime (so three hours pay)."""
    text = (Path(__file__).resolve().parent.parent / "data" / "policy" / "rewards.toml").read_text()
    path = folder / "rewards.toml"
    path.write_text(text.replace("min_continuous_uptime_hours = 5", "min_continuous_uptime_hours = 1"))
    return load_rewards_policy(path)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """A tiny simulated network run twice into separate folders: (drops, first root, second root)."""
    root = tmp_path_factory.mktemp("tiny_exports")
    simulate(root / "drops", devices=60, hours=3, seed=9)
    rewards = short_uptime_rewards(root)
    for name in ("a", "b"):
        summary = run(root / "drops", root / name / "db.duckdb", root / name / "out", rewards=rewards)
        assert len(summary.epochs) == 3 and summary.blocked is None and summary.failed is None
    return root / "drops", root / "a", root / "b"


def _arrow_kind(t: pa.DataType) -> str:
    if pa.types.is_integer(t):
        return "integer"
    if pa.types.is_floating(t):
        return "number"
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return "string"
    if pa.types.is_list(t):
        return "array"
    return str(t)


def _schema_kinds(prop: dict) -> set[str]:
    if "enum" in prop:
        return {"string"}
    kinds = prop["type"] if isinstance(prop["type"], list) else [prop["type"]]
    return set(kinds) - {"null"}


def _nullable(prop: dict) -> bool:
    return isinstance(prop.get("type"), list) and "null" in prop["type"]


@pytest.mark.parametrize("table", PUBLISHED)
def test_every_exported_table_matches_its_json_schema(tiny, table: str) -> None:
    _, a, _ = tiny
    schema = json.loads((SCHEMAS / f"{table}.schema.json").read_text())
    files = sorted((a / "out" / table).glob("epoch=*/part-0.parquet"))
    assert len(files) == 3
    arrow = pq.read_schema(files[0])
    assert arrow.names == list(schema["properties"]), table
    for field in arrow:
        prop = schema["properties"][field.name]
        assert {_arrow_kind(field.type)} == _schema_kinds(prop), (table, field.name, field.type, prop)
        if _arrow_kind(field.type) == "array":
            assert _arrow_kind(field.type.value_type) == prop["items"]["type"]
    for f in files:
        for row in pq.read_table(f).to_pylist():
            for name, value in row.items():
                prop = schema["properties"][name]
                if value is None:
                    assert _nullable(prop) and name not in schema["required"], (table, name)
                elif "enum" in prop:
                    assert value in prop["enum"], (table, name, value)
                elif "minimum" in prop:
                    assert value >= prop["minimum"], (table, name, value)


def test_money_is_integer_in_parquet_and_csv(tiny) -> None:
    _, a, _ = tiny
    for table in CSV_TOO:
        for f in sorted((a / "out" / table).glob("epoch=*/part-0.parquet")):
            for field in pq.read_schema(f):
                if field.name.endswith("base_units"):
                    assert field.type == pa.int64(), (table, field)
            with f.with_suffix(".csv").open(newline="") as fh:
                for row in csv.DictReader(fh):
                    for k, v in row.items():
                        if k.endswith("base_units"):
                            assert v.lstrip("-").isdigit(), (table, k, v)


@pytest.mark.parametrize("table", sorted(JSON_COLUMNS))
def test_json_columns_read_as_text_in_polars_pandas_and_duckdb(tiny, tmp_path: Path, table: str) -> None:
    """On the tiny run's files, plus one row written here (the tiny network has no sybil ring)."""
    _, a, _ = tiny
    db = tmp_path / "db.duckdb"
    shutil.copy(a / "db.duckdb", db)
    column = JSON_COLUMNS[table]
    with connect(db) as con:
        epoch = con.execute("SELECT max(epoch) FROM processed_epochs").fetchall()[0][0]
        names = [r[0] for r in con.execute(f"DESCRIBE {table}").fetchall()]
        values = {n: ("{\"story\": \"two accounts\", \"n\": 2}" if n == column else epoch if n == "epoch" else
                      ["sybil"] if n == "fraud_types" else 0 if n in ("score", "amount_base_units", "weight") else "x")
                  for n in names}  # fmt: skip
        con.execute(f"INSERT INTO {table} VALUES ({', '.join('?' for _ in names)})", [values[n] for n in names])
        export_epoch(con, tmp_path / "out", epoch)
    files = [tmp_path / "out" / table / f"epoch={epoch}" / "part-0.parquet"]
    files += [f for f in sorted((a / "out" / table).glob("epoch=*/part-0.parquet")) if pq.read_metadata(f).num_rows]
    for f in files:
        assert pl.read_parquet(f).schema[column] == pl.String
        frame = pd.read_parquet(f)
        assert len(frame) and all(isinstance(v, str) for v in frame[column].dropna())
        assert all(json.loads(v) is not None for v in frame[column].dropna())
        con = duckdb.connect()
        assert con.execute(f"SELECT DISTINCT typeof({column}) FROM read_parquet('{f}')").fetchall() == [("VARCHAR",)]


def test_two_clean_runs_write_byte_identical_exports(tiny) -> None:
    _, a, b = tiny

    def digests(out: Path) -> dict[str, str]:
        return {
            str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(out.rglob("*")) if p.is_file()
        }

    da, db_ = digests(a / "out"), digests(b / "out")
    assert len(da) == 3 * (len(PUBLISHED) + len(CSV_TOO)) and da == db_


@pytest.mark.parametrize("payload", ['=HYPERLINK("http://evil","x")', "+1+1", "-2+3", "@SUM(A1)", "\tcmd"])
def test_csv_cells_that_could_run_as_formulas_are_neutralized(tiny, tmp_path: Path, payload: str) -> None:
    _, a, _ = tiny
    db = tmp_path / "db.duckdb"
    shutil.copy(a / "db.duckdb", db)
    with connect(db) as con:
        epoch = con.execute("SELECT max(epoch) FROM reward_allocations").fetchall()[0][0]
        con.execute("UPDATE reward_allocations SET account_id = ?, wallet = ? WHERE epoch = ?", [payload, payload, epoch])
        export_epoch(con, tmp_path / "out", epoch)
    folder = tmp_path / "out" / "reward_allocations" / f"epoch={epoch}"
    with (folder / "part-0.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert rows and all(r["account_id"] == "'" + payload and r["wallet"] == "'" + payload for r in rows)
    assert not any(v[:1] in "=+-@\t" for r in rows for v in r.values() if not v.lstrip("-").isdigit())
    assert set(pl.read_parquet(folder / "part-0.parquet")["account_id"]) == {payload}  # Parquet keeps the value


def test_poisoned_hours_do_not_stop_later_hours(tmp_path: Path) -> None:
    drops = tmp_path / "drops"
    simulate(drops, devices=60, hours=3, seed=9)
    first, second = sorted(p for p in drops.iterdir() if p.name[0].isdigit())[:2]
    manifest = json.loads((second / "_manifest.json").read_text())
    poison = {
        "uptime.jsonl.gz": (gz(jsonl([uptime_row(1, ts=f"{second.name}:00:30Z", device_id="devX")]) + b'{"ts": "infinity", "device_id": "devY", "source": "ping", "ok": true, "latency_ms": 1}\n'), 2),
        "stake_events.csv.gz": (gz(b"event_id,ts,wallet,device_id,kind,amount_io,funder_wallet\n"
                                   + f"seX,{second.name}:00:10Z,w,devX,stake,100000000000,w\n".encode()), 1),
    }  # fmt: skip
    for name, (data, _) in poison.items():
        assert name not in manifest["files"]
        (second / name).write_bytes(data)
    write_manifest(second, {**{n: e["rows"] for n, e in manifest["files"].items()}, **{n: r for n, (_, r) in poison.items()}})
    shutil.copytree(first, drops / "2024-08-13T99")
    nested = drops / "2024-08-13T23"
    nested.mkdir()
    (nested / "_manifest.json").write_bytes(b"[" * 200_000 + b"]" * 200_000)
    summary = run(drops, tmp_path / "db.duckdb", tmp_path / "out")
    assert summary.failed is None and summary.blocked is None
    assert [e.epoch for e in summary.epochs] == sorted(p.name for p in drops.iterdir() if p.name.startswith("2024-08-14"))
    statuses = {r.hour: r.status for r in summary.ingested}
    assert statuses["2024-08-13T99"] == statuses["2024-08-13T23"] == "rejected"
    with connect(tmp_path / "db.duckdb") as con:
        reasons = [r[0] for r in con.execute("SELECT reason FROM quarantine WHERE hour = ? ORDER BY 1", [second.name]).fetchall()]
        assert len(reasons) == 2 and any("infinity" in r for r in reasons) and any("amount_io" in r for r in reasons)
        assert con.execute("SELECT count(*) FROM uptime WHERE device_id = 'devX'").fetchall()[0][0] == 1
    assert len(list((tmp_path / "out" / "device_tiers").glob("epoch=*/part-0.parquet"))) == 3
