"""Ingestion: manifest checks, atomic hours, idempotence, late and out-of-order drops."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from pipelines.contract import FEEDS
from pipelines.db import connect, scalar
from pipelines.ingest import complete_hours, ingest_drops, ingest_hour
from pipelines.simulate.writer import write_manifest


def table_digest(db: Path) -> dict[str, str]:
    """A content hash of every feed table and the quarantine, independent of arrival order."""
    out = {}
    with connect(db) as con:
        for table in [*FEEDS, "quarantine"]:
            rows = con.execute(f"SELECT * FROM {table} ORDER BY ALL").fetchall()
            out[table] = hashlib.sha256(repr(rows).encode()).hexdigest()
    return out


def first_hour(drops: Path) -> Path:
    return complete_hours(drops)[0]


def test_every_row_lands_and_counts_match_manifest(small_drops: Path, tmp_path: Path) -> None:
    with connect(tmp_path / "db.duckdb") as con:
        results = ingest_drops(con, small_drops)
        assert [r.status for r in results] == ["ingested"] * 4
        for r in results:
            manifest = json.loads((small_drops / r.hour / "_manifest.json").read_text())
            assert r.rows_in == sum(f["rows"] for f in manifest["files"].values())
            assert r.rows_landed == r.rows_in and r.rows_quarantined == 0
            for name, entry in manifest["files"].items():
                feed = name.split(".")[0]
                landed = scalar(con, f"SELECT count(*) FROM {feed} WHERE _hour = ? AND _file = ?", [r.hour, name])
                assert landed == entry["rows"]


def test_seed_above_two_to_the_63_survives_every_format(small_drops: Path, tmp_path: Path) -> None:
    with connect(tmp_path / "db.duckdb") as con:
        ingest_drops(con, small_drops)
        big = scalar(con, "SELECT count(*) FROM pow WHERE seed > 9223372036854775807")
        formats = scalar(con, "SELECT count(DISTINCT _file) FROM pow WHERE seed > 9223372036854775807")
    assert big > 0 and formats >= 2


def test_same_hour_twice_is_a_no_op(small_drops: Path, tmp_path: Path) -> None:
    db = tmp_path / "db.duckdb"
    with connect(db) as con:
        ingest_drops(con, small_drops)
    before = table_digest(db)
    with connect(db) as con:
        assert {r.status for r in ingest_drops(con, small_drops)} == {"unchanged"}
        forced = ingest_hour(con, first_hour(small_drops), force=True)
        assert forced.status == "ingested"
    assert table_digest(db) == before


def test_out_of_order_and_late_arrival_give_identical_tables(small_drops: Path, tmp_path: Path) -> None:
    in_order, shuffled = tmp_path / "a.duckdb", tmp_path / "b.duckdb"
    hours = complete_hours(small_drops)
    with connect(in_order) as con:
        for h in hours:
            ingest_hour(con, h)
    with connect(shuffled) as con:
        for h in [hours[2], hours[0], hours[3], hours[1], hours[0]]:
            ingest_hour(con, h)
    assert table_digest(in_order) == table_digest(shuffled)


def _break_sha(folder: Path) -> None:
    target = folder / next(n for n in json.loads((folder / "_manifest.json").read_text())["files"] if n.startswith("pow"))
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0xFF
    target.write_bytes(bytes(data))


@pytest.mark.parametrize(
    "breakage, expected",
    [
        (_break_sha, "sha256"),
        (lambda f: _edit_manifest(f, lambda m: _bump_rows(m)), "rows read but the manifest says"),
        (lambda f: _edit_manifest(f, lambda m: m["files"].pop(_name(m, "uptime"))), "required feeds missing"),
        (lambda f: _edit_manifest(f, lambda m: m.update(hour="1999-01-01T00")), "folder is"),
        (lambda f: (f / _name(json.loads((f / "_manifest.json").read_text()), "hardware")).unlink(), "missing"),
        (lambda f: (f / "_manifest.json").write_text("{not json"), "not valid JSON"),
    ],
)
def test_manifest_mismatch_rejects_the_whole_hour(drops_copy: Path, tmp_path: Path, breakage, expected: str) -> None:
    folder = first_hour(drops_copy)
    breakage(folder)
    with connect(tmp_path / "db.duckdb") as con:
        result = ingest_hour(con, folder)
        assert result.status == "rejected" and expected in result.reason
        for table in FEEDS:
            assert scalar(con, f"SELECT count(*) FROM {table} WHERE _hour = ?", [folder.name]) == 0
        assert scalar(con, "SELECT status FROM ingest_log WHERE hour = ?", [folder.name]) == "rejected"


def test_rejected_redelivery_keeps_the_good_hour(drops_copy: Path, tmp_path: Path) -> None:
    folder = first_hour(drops_copy)
    with connect(tmp_path / "db.duckdb") as con:
        assert ingest_hour(con, folder).status == "ingested"
        landed = scalar(con, "SELECT count(*) FROM pow WHERE _hour = ?", [folder.name])
        _break_sha(folder)
        assert ingest_hour(con, folder).status == "rejected"
        assert scalar(con, "SELECT count(*) FROM pow WHERE _hour = ?", [folder.name]) == landed
        assert scalar(con, "SELECT status FROM ingest_log WHERE hour = ?", [folder.name]) == "ingested"
        assert scalar(con, "SELECT count(*) FROM ingest_attempts WHERE status = 'rejected'") == 1


def test_crash_mid_hour_leaves_no_partial_hour(drops_copy: Path, tmp_path: Path, monkeypatch) -> None:
    import pipelines.ingest as ingest

    folder = first_hour(drops_copy)
    real = ingest._land_feed
    calls = {"n": 0}

    def explode(*args):
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("simulated crash")
        return real(*args)

    monkeypatch.setattr(ingest, "_land_feed", explode)
    db = tmp_path / "db.duckdb"
    with connect(db) as con, pytest.raises(RuntimeError):
        ingest_hour(con, folder)
    with connect(db) as con:
        for table in [*FEEDS, "quarantine", "ingest_log"]:
            assert scalar(con, f"SELECT count(*) FROM {table}") == 0
    monkeypatch.undo()
    with connect(db) as con:
        assert ingest_hour(con, folder).status == "ingested"


def test_incomplete_folders_are_not_hours(drops_copy: Path) -> None:
    (drops_copy / "2024-08-14T09").mkdir()
    (drops_copy / "2024-08-14T09" / "pow.csv").write_text("challenge_id\n")
    (drops_copy / "notes").mkdir()
    assert [p.name for p in complete_hours(drops_copy)] == [f"2024-08-14T0{h}" for h in range(4)]


def test_a_row_delivered_twice_is_kept_once_and_a_conflicting_repeat_is_quarantined(drops_copy: Path, tmp_path: Path) -> None:
    """At-least-once delivery writes some rows twice. An identical repeat lands once; the copy is
    quarantined with its reason and does not count against the hour's quarantine bar (2% of rows
    written twice stopped a network at its first hour). A repeated key with other values is a
    conflict and counts."""
    import gzip

    from pipelines.ingest import REPEAT_REASON
    from pipelines.policy import Quality
    from pipelines.quality import quarantine_share

    folder = first_hour(drops_copy)
    manifest = json.loads((folder / "_manifest.json").read_text())
    name = _name(manifest, "uptime")
    path = folder / name
    raw = gzip.decompress(path.read_bytes()) if name.endswith(".gz") else path.read_bytes()
    if name.endswith(".parquet") or ".csv" not in name:
        pytest.skip(f"the first hour's uptime is {name}")
    lines = raw.decode().splitlines()
    repeats = lines[1 : 1 + len(lines) // 10]  # a tenth of the rows again
    conflict = lines[-1].rsplit(",", 1)[0] + ",999.0"  # the last row's key with another latency
    text = "\n".join([*lines, *repeats, conflict]) + "\n"
    path.write_bytes(gzip.compress(text.encode(), mtime=0) if name.endswith(".gz") else text.encode())
    manifest["files"][name] = {"rows": len(lines) - 1 + len(repeats) + 1, "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
    write_manifest(folder, manifest)
    with connect(tmp_path / "db.duckdb") as con:
        assert ingest_hour(con, folder).status == "ingested"
        assert scalar(con, "SELECT count(*) FROM uptime") == len(lines) - 1
        reasons = con.execute("SELECT reason, count(*) FROM quarantine GROUP BY ALL ORDER BY ALL").fetchall()
        assert reasons[0][0].startswith("duplicate device_id/source/ts") and reasons[0][1] == 1
        assert reasons[1] == (REPEAT_REASON, len(repeats))
        share = quarantine_share(con, folder.name, Quality().max_quarantine_share)
        assert share.metadata["rows_quarantined"] == 1 and share.passed


def _name(manifest: dict, feed: str) -> str:
    return next(n for n in manifest["files"] if n.split(".")[0] == feed)


def _bump_rows(manifest: dict) -> None:
    manifest["files"][_name(manifest, "hardware")]["rows"] += 1


def _edit_manifest(folder: Path, change) -> None:
    manifest = json.loads((folder / "_manifest.json").read_text())
    change(manifest)
    write_manifest(folder, manifest)


def test_a_feed_in_several_files_lands_in_file_order_numbered_as_in_each_file(tmp_path: Path) -> None:
    """Rows land file by file (names sorted), each numbered by its place in its file; a JSONL
    file's blank lines are not counted and a bad line keeps its number in quarantine."""
    import polars as pl
    from hostile_hours import csv_bytes, jsonl, make_hour, uptime_row

    lines = jsonl([uptime_row(i) for i in range(6)]).splitlines(keepends=True)
    uptime_jsonl = b"".join(lines[:2]) + b"\n  \n{not json\n" + b"".join(lines[2:])
    folder = make_hour(
        tmp_path / "drops",
        extra={"uptime.jsonl": (uptime_jsonl, 7), "uptime.csv": (csv_bytes([uptime_row(i) for i in range(6, 11)]), 5)},
    )
    pl.DataFrame([uptime_row(i) for i in range(11, 15)]).write_parquet(folder / "uptime.parquet")
    manifest = json.loads((folder / "_manifest.json").read_text())
    data = (folder / "uptime.parquet").read_bytes()
    manifest["files"]["uptime.parquet"] = {"rows": 4, "sha256": hashlib.sha256(data).hexdigest()}
    (folder / "_manifest.json").write_text(json.dumps(manifest))

    with connect(tmp_path / "db.duckdb") as con:
        assert ingest_hour(con, folder).status == "ingested"
        landed = con.execute("SELECT _file, _row, device_id, ts FROM uptime ORDER BY rowid").fetchall()
        quarantined = con.execute("SELECT file, row_number, reason FROM quarantine").fetchall()
    expected_rows = [("uptime.csv", r) for r in range(1, 6)] + [("uptime.jsonl", r) for r in (1, 2, 4, 5, 6, 7)]
    assert [(f, r) for f, r, _, _ in landed] == expected_rows + [("uptime.parquet", r) for r in range(1, 5)]
    order = [*range(6, 11), *range(6), *range(11, 15)]
    assert [(d, t.strftime("%M:%S")) for _, _, d, t in landed] == [
        (uptime_row(i)["device_id"], uptime_row(i)["ts"][14:19]) for i in order
    ]
    assert quarantined == [("uptime.jsonl", 3, "line 3 is not a JSON object")]


def test_a_cards_uuid_lands_in_nvmls_spelling_whatever_case_prefix_or_blanks_a_writer_used(tmp_path: Path) -> None:
    """One card is one identity: a thirteenth network written by others copied honest cards'
    UUIDs in upper case, without the ``GPU-`` prefix or after a blank, and most copies were never
    compared with the card they copied. A MIG instance's UUID and an identity that is no UUID
    land as written."""
    from hostile_hours import hardware_row, jsonl, make_hour

    card = "5f1d2c3b-aaaa-bbbb-cccc-0123456789ab"
    spellings = [
        f"GPU-{card}",
        f"GPU-{card.upper()}",
        card,
        f" gpu-{card.upper()} ",
        "MIG-4f2e1d0c-1111-2222-3333-444455556666",
        "vm-7",
    ]
    rows = [hardware_row(f"dev-{k}", gpu_uuid=u) for k, u in enumerate(spellings)]
    rows.append({**hardware_row("dev-9"), "gpu_uuid": None})
    folder = make_hour(tmp_path / "drops", extra={"hardware.jsonl": (jsonl(rows), len(rows))})
    with connect(tmp_path / "db.duckdb") as con:
        assert ingest_hour(con, folder).status == "ingested"
        stored = dict(con.execute("SELECT device_id, gpu_uuid FROM hardware").fetchall())
        assert scalar(con, "SELECT count(*) FROM quarantine") == 0
    assert [stored[f"dev-{k}"] for k in range(4)] == [f"GPU-{card}"] * 4
    assert stored["dev-4"] == spellings[4] and stored["dev-5"] == "vm-7" and stored["dev-9"] is None
