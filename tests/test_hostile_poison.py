"""Each named poison input of the hard-edges review, as its own test: no crash, no read
outside the drops, the poison quarantined (or the hour rejected) with a reason, every good
row of the same hour lands, and later hours keep flowing."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hostile_hours import (
    DEVICES,
    HOUR,
    csv_bytes,
    gz,
    hardware_row,
    jsonl,
    make_hour,
    pow_row,
    stake_row,
    uptime_row,
    write_manifest,
)

from pipelines import ingest
from pipelines.db import connect, scalar
from pipelines.features import verify_pow
from pipelines.ingest import ingest_drops, ingest_hour
from pipelines.pow_math import sample_entries
from pipelines.runner import stale_epochs

SECRET = b"outside-the-drops secret bytes\n"


@pytest.fixture
def con(tmp_path: Path):
    with connect(tmp_path / "db.duckdb") as c:
        yield c


def quarantined(con, feed: str | None = None) -> list[tuple]:
    sql = "SELECT feed, file, row_number, reason, raw FROM quarantine"
    return con.execute(sql + (" WHERE feed = ?" if feed else "") + " ORDER BY ALL", [feed] if feed else None).fetchall()


def count(con, table: str) -> int:
    return int(scalar(con, f"SELECT count(*) FROM {table}"))


def add_file(folder: Path, name: str, data: bytes, rows: int) -> None:
    (folder / name).write_bytes(data)
    manifest = json.loads((folder / "_manifest.json").read_text())
    write_manifest(folder, {**{n: e["rows"] for n, e in manifest["files"].items()}, name: rows})


def no_outside_bytes(con) -> None:
    """Nothing from outside the hour folder reached the database."""
    for table in ("quarantine_files", "quarantine", "ingest_log", "ingest_attempts"):
        for row in con.execute(f"SELECT * FROM {table}").fetchall():
            assert all(SECRET not in (v if isinstance(v, bytes) else str(v).encode()) for v in row), (table, row)


# --- poisons that used to stop the network ------------------------------------------------------


def test_hour_folder_that_is_not_a_real_hour_is_rejected_and_later_hours_flow(con, tmp_path: Path) -> None:
    make_hour(tmp_path / "drops", "2024-08-13T99")
    make_hour(tmp_path / "drops", HOUR)
    results = {r.hour: r for r in ingest_drops(con, tmp_path / "drops")}
    assert results["2024-08-13T99"].status == "rejected"
    assert "not a real UTC hour" in results["2024-08-13T99"].reason
    assert results[HOUR].status == "ingested" and count(con, "pow") == 6


def test_manifest_of_deeply_nested_brackets_is_rejected_without_a_recursion_error(con, tmp_path: Path) -> None:
    folder = make_hour(tmp_path / "drops")
    (folder / "_manifest.json").write_bytes(b"[" * 200_000 + b"]" * 200_000)
    result = ingest_hour(con, folder)
    assert result.status == "rejected" and "nested deeper" in result.reason


def test_manifest_larger_than_the_limit_is_rejected_unparsed(con, tmp_path: Path) -> None:
    folder = make_hour(tmp_path / "drops")
    manifest = json.loads((folder / "_manifest.json").read_text())
    manifest["padding"] = "x" * (ingest.MAX_MANIFEST_BYTES + 1)
    (folder / "_manifest.json").write_text(json.dumps(manifest))
    result = ingest_hour(con, folder)
    assert result.status == "rejected" and "the limit is" in result.reason


def test_manifest_repeating_a_key_is_rejected(con, tmp_path: Path) -> None:
    folder = make_hour(tmp_path / "drops")
    text = (folder / "_manifest.json").read_text()
    (folder / "_manifest.json").write_text(text[:-1] + f', "hour": "{HOUR}"}}')
    result = ingest_hour(con, folder)
    assert result.status == "rejected" and "repeats a key" in result.reason


def test_infinite_uptime_timestamp_is_quarantined(con, tmp_path: Path) -> None:
    folder = make_hour(tmp_path / "drops", extra={"uptime.csv": (csv_bytes([uptime_row(40), uptime_row(41, ts="infinity")]), 2)})
    assert ingest_hour(con, folder).status == "ingested"
    assert count(con, "uptime") == 7
    [q] = quarantined(con, "uptime")
    assert q[1] == "uptime.csv" and "infinity" in q[3]


def test_stake_amount_beyond_int64_base_units_is_quarantined(con, tmp_path: Path) -> None:
    rows = [stake_row(0), stake_row(1, amount_io="100000000000"), stake_row(2, amount_io="999999999.99999999")]
    folder = make_hour(tmp_path / "drops", extra={"stake_events.jsonl": (jsonl(rows), 3)})
    assert ingest_hour(con, folder).status == "ingested"
    assert con.execute("SELECT event_id, amount_io FROM stake_events ORDER BY 1").fetchall()[0][0] == "se0"
    assert count(con, "stake_events") == 2
    [q] = quarantined(con, "stake_events")
    assert "amount_io: cannot read 100000000000" in q[3] and "9 integer digits" in q[3]


def test_stakes_placed_before_the_hour_land_with_their_own_dates_and_a_future_one_is_quarantined(con, tmp_path: Path) -> None:
    """The contract does not tie stake events to their folder's hour: a writer that delivers the
    stakes placed before its first drop with the dates they were placed (as accounts arrive) had
    every one quarantined, and with them the hour's quality bar and every stake after
    September. An event dated after the hour's end is still impossible."""
    rows = [stake_row(0, ts="2024-07-15T09:30:00Z"), stake_row(1), stake_row(2, ts="2024-08-14T09:00:00Z")]
    folder = make_hour(tmp_path / "drops", extra={"stake_events.jsonl": (jsonl(rows), 3)})
    assert ingest_hour(con, folder).status == "ingested"
    assert [r[0] for r in con.execute("SELECT event_id FROM stake_events ORDER BY 1").fetchall()] == ["se0", "se1"]
    [q] = quarantined(con, "stake_events")
    assert "ts" in q[3]


def test_an_answer_to_a_challenge_of_the_hours_last_minute_lands_one_hours_later_is_quarantined(con, tmp_path: Path) -> None:
    """A sixteenth network written by others answered VRAM challenges issued at :59 two to three
    minutes into the next hour, and those right answers were quarantined as "after the hour". An
    answer may come up to ``ANSWER_GRACE_S`` after the hour's end; a later one is impossible."""
    rows = [pow_row(i) for i in range(6)]
    rows[0] |= {"issued_at": "2024-08-14T07:59:24.447Z", "responded_at": "2024-08-14T08:02:16.527Z"}
    rows[1] |= {"issued_at": "2024-08-14T07:59:30.000Z", "responded_at": "2024-08-14T09:05:00.000Z"}
    folder = make_hour(tmp_path / "drops")
    (folder / "pow.jsonl").write_bytes(jsonl(rows))
    write_manifest(folder, {"hardware.jsonl": 3, "pow.jsonl": 6, "uptime.jsonl": 6})
    assert ingest_hour(con, folder).status == "ingested"
    assert "c0" in {r[0] for r in con.execute("SELECT challenge_id FROM pow").fetchall()}
    [q] = quarantined(con, "pow")
    assert "responded_at: 2024-08-14 09:05:00" in q[3] and "60 minutes after the hour" in q[3]


def test_os_and_virtualization_mode_as_programs_name_them_land_in_the_contracts_spelling(con, tmp_path: Path) -> None:
    """Python's ``platform.system()`` says ``Darwin``, Node's ``os.platform()`` ``win32``, and
    pynvml returns the virtualization mode as an integer (2: VGPU). Written so, every Mac's (or
    every) hardware report was quarantined; an unknown name still is."""
    rows = [
        hardware_row("mac", os="Darwin"),
        hardware_row("win", os="win32", virtualization_mode=2),
        hardware_row("nvml", virtualization_mode="NVML_GPU_VIRTUALIZATION_MODE_NONE"),
        hardware_row("odd", os="Solaris"),
    ]
    folder = make_hour(tmp_path / "drops")
    (folder / "hardware.jsonl").write_bytes(jsonl(rows))
    write_manifest(folder, {"hardware.jsonl": 4, "pow.jsonl": 6, "uptime.jsonl": 6})
    assert ingest_hour(con, folder).status == "ingested"
    landed = dict(con.execute("SELECT device_id, os || '/' || virtualization_mode FROM hardware").fetchall())
    assert landed == {"mac": "macos/NONE", "win": "windows/VGPU", "nvml": "linux/NONE"}
    [q] = quarantined(con, "hardware")
    assert "Solaris" in q[3]


def test_memory_written_in_bytes_not_mib_is_quarantined_with_a_reason(con, tmp_path: Path) -> None:
    """NVML reports memory in bytes; written into the MiB column, every device claimed
    impossible memory and 491 of 494 honest devices were held in probation. The largest real
    configuration lands; a byte count is quarantined, with the likely mistake named."""
    rows = [
        hardware_row("b200", gpu_model="NVIDIA B200", vram_total_mb=183359),
        hardware_row("ultra", gpu_model="Apple M3 Ultra", vram_total_mb=524288),
        hardware_row("bytes", vram_total_mb=24564 * 1024 * 1024),
    ]
    folder = make_hour(tmp_path / "drops")
    (folder / "hardware.jsonl").write_bytes(jsonl(rows))
    write_manifest(folder, {"hardware.jsonl": 3, "pow.jsonl": 6, "uptime.jsonl": 6})
    assert ingest_hour(con, folder).status == "ingested"
    assert sorted(r[0] for r in con.execute("SELECT device_id FROM hardware").fetchall()) == ["b200", "ultra"]
    [q] = quarantined(con, "hardware")
    assert "vram_total_mb must be MiB" in q[3] and "bytes" in q[3]


# --- reads only its own files ----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["../../../../x/pow.jsonl", "/tmp/pow.jsonl", "sub/pow.jsonl", "..", ".hidden.jsonl"])
def test_manifest_naming_a_path_outside_the_hour_folder_is_rejected_unread(con, tmp_path: Path, name: str) -> None:
    outside = tmp_path / "x"
    outside.mkdir()
    (outside / "pow.jsonl").write_bytes(SECRET)
    folder = make_hour(tmp_path / "drops" / "a" / "b")
    manifest = json.loads((folder / "_manifest.json").read_text())
    manifest["files"][name] = {"rows": 1, "sha256": "0" * 64}
    (folder / "_manifest.json").write_text(json.dumps(manifest))
    result = ingest_hour(con, folder)
    assert result.status == "rejected" and "plain file names" in result.reason
    assert count(con, "pow") == 0
    no_outside_bytes(con)


def test_listed_symlink_is_not_followed(con, tmp_path: Path) -> None:
    secret = tmp_path / "secret.jsonl"
    secret.write_bytes(jsonl([pow_row(99)]))
    folder = make_hour(tmp_path / "drops")
    (folder / "pow.jsonl").unlink()
    (folder / "pow.jsonl").symlink_to(secret)
    write_manifest(folder, {"hardware.jsonl": 3, "pow.jsonl": 1, "uptime.jsonl": 6})
    result = ingest_hour(con, folder)
    assert result.status == "rejected" and "symbolic link" in result.reason
    assert count(con, "pow") == 0


def test_unlisted_symlink_is_named_but_never_copied(con, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_bytes(SECRET)
    folder = make_hour(tmp_path / "drops")
    (folder / "notes.txt").symlink_to(secret)
    (folder / "extra.csv").write_bytes(SECRET)
    assert ingest_hour(con, folder).status == "ingested"
    names = {q[1]: q[3] for q in quarantined(con)}
    assert "not listed" in names["notes.txt"] and "not listed" in names["extra.csv"]
    assert count(con, "quarantine_files") == 0
    no_outside_bytes(con)


def test_wrong_hash_error_shows_no_hash(con, tmp_path: Path) -> None:
    folder = make_hour(tmp_path / "drops")
    (folder / "pow.jsonl").write_bytes(jsonl([pow_row(i) for i in range(6)]).replace(b"c0", b"c9"))
    result = ingest_hour(con, folder)
    assert result.status == "rejected" and result.reason == "pow.jsonl: sha256 differs from the manifest's"


def test_a_gzip_file_hashed_before_compression_lands_and_a_wrong_content_hash_still_rejects(con, tmp_path: Path) -> None:
    """A writer may hash what it compressed rather than the file: both pin the same content."""
    content = jsonl([uptime_row(40 + i) for i in range(4)])
    folder = make_hour(tmp_path / "drops", extra={"uptime.jsonl.gz": (gz(content), 4)})
    manifest = json.loads((folder / "_manifest.json").read_text())
    manifest["files"]["uptime.jsonl.gz"]["sha256"] = hashlib.sha256(content).hexdigest()
    (folder / "_manifest.json").write_text(json.dumps(manifest))
    assert ingest_hour(con, folder).status == "ingested"
    assert count(con, "uptime") == 10
    other = make_hour(tmp_path / "drops-2", extra={"uptime.jsonl.gz": (gz(content), 4)})
    manifest = json.loads((other / "_manifest.json").read_text())
    manifest["files"]["uptime.jsonl.gz"]["sha256"] = hashlib.sha256(content + b"\n").hexdigest()
    (other / "_manifest.json").write_text(json.dumps(manifest))
    result = ingest_hour(con, other)
    assert result.status == "rejected" and result.reason == "uptime.jsonl.gz: sha256 differs from the manifest's"


# --- one bad byte costs one line ------------------------------------------------------------------


def test_csv_with_a_utf8_bom_lands_every_row(con, tmp_path: Path) -> None:
    data = b"\xef\xbb\xbf" + csv_bytes([uptime_row(i) for i in range(40, 50)])
    folder = make_hour(tmp_path / "drops", extra={"uptime.csv": (data, 10)})
    assert ingest_hour(con, folder).status == "ingested"
    assert count(con, "uptime") == 16 and quarantined(con) == []


@pytest.mark.parametrize("suffix", ["csv", "csv.gz"])
def test_csv_non_utf8_byte_in_the_first_kilobytes_costs_only_its_line(con, tmp_path: Path, suffix: str) -> None:
    lines = csv_bytes([uptime_row(i) for i in range(40, 50)]).split(b"\n")
    lines[2] = lines[2].replace(b"dev", b"d\xffv")
    data = b"\n".join(lines)
    folder = make_hour(tmp_path / "drops", extra={f"uptime.{suffix}": (gz(data) if suffix.endswith("gz") else data, 10)})
    assert ingest_hour(con, folder).status == "ingested"
    assert count(con, "uptime") == 6 + 9
    [q] = quarantined(con, "uptime")
    assert "not valid CSV" in q[3] and q[2] == 3


@pytest.mark.parametrize("suffix", ["jsonl", "jsonl.gz"])
def test_jsonl_bad_byte_costs_only_its_line(con, tmp_path: Path, suffix: str) -> None:
    lines = jsonl([uptime_row(i) for i in range(40, 50)]).split(b"\n")
    lines[4] = lines[4].replace(b"dev", b"\xc3\x28ev")
    data = b"\n".join(lines)
    name = f"uptime.{suffix}"  # uptime.jsonl replaces the hour's own uptime file
    folder = make_hour(tmp_path / "drops", extra={name: (gz(data) if suffix.endswith("gz") else data, 10)})
    assert ingest_hour(con, folder).status == "ingested"
    assert count(con, "uptime") == 9 + (0 if name == "uptime.jsonl" else 6)
    [q] = quarantined(con, "uptime")
    assert "not valid JSONL" in q[3]


def test_jsonl_over_long_line_costs_only_its_line(con, tmp_path: Path) -> None:
    rows = [uptime_row(i) for i in range(40, 50)]
    rows[3]["device_id"] = "d" * (ingest.MAX_LINE_BYTES + 10)
    folder = make_hour(tmp_path / "drops", extra={"uptime.jsonl.gz": (gz(jsonl(rows)), 10)})
    assert ingest_hour(con, folder).status == "ingested"
    assert count(con, "uptime") == 6 + 9
    [q] = quarantined(con, "uptime")
    assert "Maximum line size" in q[3] and len(q[4]) <= ingest.MAX_TEXT_CHARS


def test_gzip_bomb_is_refused_at_the_stated_size_and_rejects_its_hour(con, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(ingest, "MAX_DECOMPRESSED_BYTES", 4 << 20)
    bomb = gzip.compress(b"\n" * (16 << 20), compresslevel=9)
    folder = make_hour(tmp_path / "drops", extra={"uptime.csv.gz": (bomb, 0)})
    result = ingest_hour(con, folder)
    assert result.status == "rejected"
    assert "uptime.csv.gz" in result.reason and "decompression limit" in result.reason
    assert count(con, "uptime") == 0 and count(con, "pow") == 0


def test_a_required_feeds_gzip_cut_mid_stream_rejects_its_hour_and_later_hours_still_run(con, tmp_path: Path) -> None:
    """A written network cut one hour's hardware.csv.gz mid-stream, the manifest hashing the cut
    file: quarantined alone, the hour landed without hardware and its quality bar stopped the run."""
    drops = tmp_path / "drops"
    data = gz(csv_bytes([hardware_row("dev1")]))[:-6]
    make_hour(drops, extra={"hardware.csv.gz": (data, 1)})
    make_hour(drops, hour="2024-08-14T08")
    broken, later = ingest_drops(con, drops)
    assert broken.status == "rejected" and later.status == "ingested"
    assert "hardware.csv.gz: unreadable csv.gz file" in broken.reason and "corrupt gzip" in broken.reason
    assert "cannot be counted against the manifest's 1" in broken.reason
    assert scalar(con, "SELECT count(*) FROM uptime WHERE _hour = ?", [HOUR]) == 0
    assert count(con, "quarantine") == 0
    assert stale_epochs(con) == ["2024-08-14T08"]  # the later hour is computed; the rejected one is a gap


# --- no value silently changed ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "ts",
    ["1970-01-01T00:00:00Z", "2099-08-14T07:10:00Z", "2024-08-13T06:30:00Z", "2024-08-14T08:05:00Z", "2024-08-14T07:00:00-05:00"],
)
def test_timestamp_outside_its_hour_is_quarantined(con, tmp_path: Path, ts: str) -> None:
    folder = make_hour(tmp_path / "drops", extra={"uptime.csv": (csv_bytes([uptime_row(40), uptime_row(41, ts=ts)]), 2)})
    assert ingest_hour(con, folder).status == "ingested"
    assert count(con, "uptime") == 7
    [q] = quarantined(con, "uptime")
    assert "is outside the hour 2024-08-14T07" in q[3]


def test_a_late_row_lands_with_the_hour_it_was_delivered_in_and_keeps_its_own_time(con, tmp_path: Path) -> None:
    """A backend's queue sends a heartbeat of 06:58 or a report of 02:00 with the 07 drop (two
    networks written by others did, one for 3% of an hour's rows, which stopped the pipeline at
    its second hour on the quarantine bar). Up to ``LATE_ROW_HOURS`` back such a row lands in the
    folder's hour with its own time; a day older, or later than its hour, it is quarantined."""
    rows = [uptime_row(40, ts="2024-08-14T06:58:00Z"), uptime_row(41, ts="2024-08-14T07:00:00+05:00"),
            uptime_row(42, ts="2024-08-13T06:30:00Z")]  # fmt: skip
    folder = make_hour(tmp_path / "drops", extra={"uptime.csv": (csv_bytes(rows), 3)})
    assert ingest_hour(con, folder).status == "ingested"
    assert count(con, "uptime") == 8
    late = con.execute(
        "SELECT strftime(ts, '%H:%M'), _hour FROM uptime WHERE ts < TIMESTAMP '2024-08-14 07:00:00' ORDER BY ts"
    ).fetchall()
    assert late == [("02:00", "2024-08-14T07"), ("06:58", "2024-08-14T07")]
    [q] = quarantined(con, "uptime")
    assert "is outside the hour 2024-08-14T07" in q[3] and "late rows up to 24 h back land" in q[3]


def test_timestamp_offset_is_honoured_as_utc(con, tmp_path: Path) -> None:
    rows = [uptime_row(40, ts="2024-08-14T12:30:00+05:00"), uptime_row(41, ts="2024-08-14T07:59:59.999-00:00")]
    folder = make_hour(tmp_path / "drops", extra={"uptime.csv": (csv_bytes(rows), 2)})
    assert ingest_hour(con, folder).status == "ingested"
    got = con.execute("SELECT strftime(ts, '%H:%M:%S.%g') FROM uptime WHERE _file = 'uptime.csv' ORDER BY ts").fetchall()
    assert got == [("07:30:00.000",), ("07:59:59.999",)]


def test_timestamp_within_the_stated_tolerance_lands(con, tmp_path: Path) -> None:
    rows = [uptime_row(40, ts="2024-08-14T06:58:30Z"), uptime_row(41, ts="2024-08-14T08:01:30Z")]
    folder = make_hour(tmp_path / "drops", extra={"uptime.csv": (csv_bytes(rows), 2)})
    assert ingest_hour(con, folder).status == "ingested"
    assert count(con, "uptime") == 8


def test_float64_seed_in_parquet_is_quarantined_not_rounded(con, tmp_path: Path) -> None:
    rows = [pow_row(40 + i) for i in range(3)]
    table = pa.Table.from_pylist([{**r, "seed": float(7166312637941706893 + i)} for i, r in enumerate(rows)])
    pq.write_table(table, tmp_path / "p.parquet")
    folder = make_hour(tmp_path / "drops", extra={"pow.parquet": ((tmp_path / "p.parquet").read_bytes(), 3)})
    assert ingest_hour(con, folder).status == "ingested"
    assert count(con, "pow") == 6
    assert len(quarantined(con, "pow")) == 3
    assert all("seed: cannot read 7.16631263794" in q[3] for q in quarantined(con, "pow"))


def test_unsigned_seed_above_two_to_the_63_lands_exactly(con, tmp_path: Path) -> None:
    folder = make_hour(tmp_path / "drops")
    assert ingest_hour(con, folder).status == "ingested"
    assert scalar(con, "SELECT seed FROM pow WHERE challenge_id = 'c0'") == 2**64 - 1


@pytest.mark.parametrize(("written", "seed"), [("-1", 2**64 - 1), ("-9223372036854775808", 2**63), ("5", 5)])
def test_a_seed_stored_as_a_signed_64_bit_integer_is_read_as_its_twos_complement(
    con, tmp_path: Path, written: str, seed: int
) -> None:
    """Java, Spark and a Parquet INT64 without the unsigned annotation store the unsigned seed as
    a signed one: every seed above 2^63, half of them, reads negative. Such a writer's run stopped
    at its first hour; the negative value is the seed's two's complement (the writer's other seeds
    below 2^63 read as they are)."""
    rows = [pow_row(40, seed=2**62 + 40), pow_row(41, seed=written)]
    folder = make_hour(tmp_path / "drops", extra={"pow.csv": (csv_bytes(rows), 2)})
    assert ingest_hour(con, folder).status == "ingested"
    assert scalar(con, "SELECT seed FROM pow WHERE challenge_id = 'c41'") == seed


def test_a_negative_seed_in_a_file_that_writes_seeds_above_two_to_the_63_unsigned_is_a_broken_row(con, tmp_path: Path) -> None:
    """A writer stores a seed above 2^63 unsigned or as its signed two's complement, never both. In
    an independently written network's file of unsigned seeds one row read ``-42``: taken for a
    signed store (2^64 - 42), its samples (right for the real seed) were wrong against it, and an
    honest device was rejected for it. Such a row is quarantined with its reason; the same value in
    a signed writer's file is a seed."""
    rows = [pow_row(40), pow_row(41, seed="-42")]
    folder = make_hour(tmp_path / "drops", extra={"pow.csv": (csv_bytes(rows), 2)})
    assert ingest_hour(con, folder).status == "ingested"
    [q] = quarantined(con, "pow")
    assert "c41" in q[4] and q[3].startswith("seed: -42 is negative in a file that writes values above 2^63 unsigned")
    assert scalar(con, "SELECT seed FROM pow WHERE challenge_id = 'c40'") == 2**64 - 41


@pytest.mark.parametrize(
    "seed", ["7.5", "0x10", "1_000", "1e19", "+5", " 12", "18446744073709551616", "-9223372036854775809", "-0"]
)
def test_seed_in_a_non_integer_form_is_quarantined(con, tmp_path: Path, seed: str) -> None:
    rows = [pow_row(40, seed=2**62 + 40), pow_row(41, seed=seed)]  # a writer that may store seeds signed
    folder = make_hour(tmp_path / "drops", extra={"pow.csv": (csv_bytes(rows), 2)})
    assert ingest_hour(con, folder).status == "ingested"
    assert count(con, "pow") == 7
    [q] = quarantined(con, "pow")
    assert q[3].startswith("seed: cannot read")


@pytest.mark.parametrize("amount", ["0.123456789", "1e3", "1_000", "0x10", "NaN", "Infinity", "1,5"])
def test_money_in_an_inexact_form_is_quarantined(con, tmp_path: Path, amount: str) -> None:
    rows = [stake_row(0), stake_row(1, amount_io=amount)]
    folder = make_hour(tmp_path / "drops", extra={"stake_events.csv": (csv_bytes(rows), 2)})
    assert ingest_hour(con, folder).status == "ingested"
    assert count(con, "stake_events") == 1
    [q] = quarantined(con, "stake_events")
    assert q[3].startswith("amount_io: cannot read")


def test_money_at_the_stated_scale_lands_exactly(con, tmp_path: Path) -> None:
    rows = [stake_row(0, amount_io="0.12345678"), stake_row(1, amount_io="999999999.99999999")]
    folder = make_hour(tmp_path / "drops", extra={"stake_events.csv": (csv_bytes(rows), 2)})
    assert ingest_hour(con, folder).status == "ingested"
    got = con.execute("SELECT CAST(amount_io * 100000000 AS BIGINT) FROM stake_events ORDER BY event_id").fetchall()
    assert got == [(12345678,), (99999999999999999,)]


def test_duplicate_json_key_is_quarantined(con, tmp_path: Path) -> None:
    line = json.dumps(uptime_row(40)).replace('"ts"', '"ok": false, "ts"', 1).encode() + b"\n"
    folder = make_hour(tmp_path / "drops", extra={"uptime.jsonl.gz": (gz(jsonl([uptime_row(41)]) + line), 2)})
    assert ingest_hour(con, folder).status == "ingested"
    assert count(con, "uptime") == 7
    [q] = quarantined(con, "uptime")
    assert "repeats a key" in q[3]


def test_duplicate_parquet_column_rejects_its_hour_with_the_reason(con, tmp_path: Path) -> None:
    base = pa.Table.from_pylist([uptime_row(40)])
    table = pa.Table.from_arrays([*base.columns, pa.array([False])], names=[*base.column_names, "ok"])
    pq.write_table(table, tmp_path / "u.parquet")
    folder = make_hour(tmp_path / "drops", extra={"uptime.parquet": ((tmp_path / "u.parquet").read_bytes(), 1)})
    result = ingest_hour(con, folder)
    assert result.status == "rejected"
    assert result.reason.startswith("uptime.parquet: unreadable parquet file") and "repeats a column" in result.reason
    assert count(con, "uptime") == 0


def test_redelivery_with_changed_content_but_same_sizes_and_mtimes_is_ingested(con, tmp_path: Path) -> None:
    folder = make_hour(tmp_path / "drops")
    assert ingest_hour(con, folder).status == "ingested"
    path = folder / "pow.jsonl"
    st = path.stat()
    path.write_bytes(path.read_bytes().replace(b'"c5"', b'"c7"'))
    write_manifest(folder, {"hardware.jsonl": 3, "pow.jsonl": 6, "uptime.jsonl": 6})
    for p in folder.iterdir():
        os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))
    result = ingest_hour(con, folder)
    assert result.status == "ingested"
    assert max(r[0] for r in con.execute("SELECT challenge_id FROM pow").fetchall()) == "c7"
    assert ingest_hour(con, folder).status == "unchanged"


def test_text_longer_than_the_limit_is_quarantined(con, tmp_path: Path) -> None:
    rows = [hardware_row("dev9", gpu_model="G" * (ingest.MAX_TEXT_CHARS + 1))]
    folder = make_hour(tmp_path / "drops", extra={"hardware.csv": (csv_bytes(rows), 1)})
    assert ingest_hour(con, folder).status == "ingested"
    assert count(con, "hardware") == len(DEVICES)
    assert "longer than" in quarantined(con, "hardware")[0][3]


def _hardware_landed(con, tmp_path: Path, name: str, data: bytes, rows: int, columns: str) -> tuple[list[tuple], list[str]]:
    """Ingest an hour with the extra hardware file ``name``: its landed rows (device and
    ``columns``, by device) and the reasons its quarantined rows were given."""
    folder = make_hour(tmp_path / "drops", extra={name: (data, rows)})
    assert ingest_hour(con, folder).status == "ingested"
    sql = f"SELECT device_id, {columns} FROM hardware WHERE _file = ? ORDER BY device_id"
    return con.execute(sql, [name]).fetchall(), [q[3] for q in quarantined(con, "hardware")]


def test_enumeration_in_another_case_lands_in_the_contracts_spelling_and_an_unknown_value_is_quarantined(
    con, tmp_path: Path
) -> None:
    """``Linux``, ``MACOS``, `` vgpu `` are the contract's values written another way: a backend
    that capitalizes them would otherwise lose every hardware report. They land as ``linux``,
    ``macos``, ``VGPU`` (so the exact vGPU rule still sees them); a value that is neither a spelling
    nor a known alias of an allowed one (``solaris``) is still quarantined with its reason."""
    rows = [
        hardware_row("dev-a", os="Linux"),
        hardware_row("dev-b", os="MACOS", virtualization_mode=" vgpu "),
        hardware_row("dev-c", os="solaris"),
    ]
    got, [reason] = _hardware_landed(con, tmp_path, "hardware.jsonl", jsonl(rows), len(rows), "os, virtualization_mode")
    assert got == [("dev-a", "linux", "NONE"), ("dev-b", "macos", "VGPU")]
    assert "os: solaris is not one of linux/windows/macos" in reason


def test_a_whole_number_written_as_a_float_lands_and_a_fraction_is_quarantined(con, tmp_path: Path) -> None:
    """pandas writes a nullable integer column (power_limit_w is null on Apple) as floats:
    ``450.0`` is the whole number 450 and lands as such, in any integer column but the 64-bit
    seed (a float seed has lost its low bits); ``450.5`` is no whole number and is quarantined."""
    rows = [
        hardware_row("dev-a", power_limit_w="450.0", gpu_index="0.0", vram_total_mb="24576.00"),
        hardware_row("dev-b", power_limit_w="450.5"),
    ]
    got, [reason] = _hardware_landed(
        con, tmp_path, "hardware.csv", csv_bytes(rows), len(rows), "power_limit_w, gpu_index, vram_total_mb"
    )
    assert got == [("dev-a", 450, 0, 24576)]
    assert reason.startswith("power_limit_w: cannot read 450.5")


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_a_null_spelled_as_text_lands_as_null_and_a_required_column_still_needs_a_value(con, tmp_path: Path, fmt: str) -> None:
    """Backends write "no value" as text: ``""`` in JSON, ``None`` (``str(None)``) or ``NaN`` in
    CSV, nvidia-smi's ``[N/A]`` for a serial a GeForce board does not have, zeros for an
    identity. Left as text, ``[N/A]`` is one serial that every consumer card shares. In a
    nullable column these land as null; ``NONE`` stays a virtualization mode; a required column
    spelled ``None`` is still quarantined."""
    rows = [
        hardware_row("dev-a", gpu_serial="[N/A]", pci_bus_id="", power_limit_w="None", mig_mode="NaN",
                     virtualization_mode="NONE", driver_version="n/a"),
        hardware_row("dev-b", gpu_serial="[Not Supported]", gpu_uuid="GPU-00000000-0000-0000-0000-000000000000",
                     pci_bus_id="00000000:00:00.0", sm_clock_max_mhz="null"),
        hardware_row("dev-c", gpu_serial="1320000001234", cpu_cores="None"),
    ]  # fmt: skip
    data = jsonl(rows) if fmt == "jsonl" else csv_bytes(rows)
    columns = "gpu_serial, gpu_uuid, pci_bus_id, power_limit_w, mig_mode, virtualization_mode, driver_version, sm_clock_max_mhz"
    got, [reason] = _hardware_landed(con, tmp_path, f"hardware.{fmt}", data, len(rows), columns)
    assert got == [
        ("dev-a", None, "GPU-dev-a", None, None, None, "NONE", None, 2520),
        ("dev-b", None, None, None, 450, None, "NONE", None, None),
    ]
    assert reason.startswith("cpu_cores: cannot read None")


def test_a_boolean_written_as_csv_exports_write_it_lands_and_anything_else_is_quarantined(con, tmp_path: Path) -> None:
    """CSV has no boolean of its own: PostgreSQL's COPY writes ``t``/``f``, other exports ``1``/``0``
    or ``yes``/``no``. Refusing them would quarantine every uptime row of such a backend."""
    spellings = {"t": True, "f": False, "1": True, "0": False, "Yes": True, "no": False, "TRUE": True, "False": False}
    rows = [uptime_row(100 + k, ok=text) for k, text in enumerate(spellings)] + [uptime_row(200, ok="on")]
    folder = make_hour(tmp_path / "drops", extra={"uptime.csv": (csv_bytes(rows), len(rows))})
    assert ingest_hour(con, folder).status == "ingested"
    got = con.execute("SELECT ok FROM uptime WHERE _file = 'uptime.csv' ORDER BY _row").fetchall()
    assert [r[0] for r in got] == list(spellings.values())
    assert quarantined(con, "uptime")[0][3] == "ok: cannot read on as true or false (t/f, 1/0, yes/no)"


def test_pow_samples_written_as_floats_land_and_a_fractional_value_is_a_wrong_answer(con, tmp_path: Path) -> None:
    """A worker that keeps the fp32 product writes ``[1.0, 2.0, -52.0]``: whole numbers land and
    are checked as integers. A value with a fraction cannot be the exact product, so it lands and
    counts as a bad sample with readable evidence; an index with a fraction is malformed."""
    right = int(sample_entries(np.array([2**64 - 41], dtype=np.uint64), np.array([4096]), np.array([1]), np.array([2]))[0])
    rows = [
        pow_row(40, samples=f"[[1.0, 2.0, {right}.0]]"),
        pow_row(41, seed=2**64 - 41, samples=f"[[1, 2, {right}.5]]"),
        pow_row(42, samples=f"[[1.5, 2, {right}]]"),
    ]
    folder = make_hour(tmp_path / "drops", extra={"pow.jsonl": (jsonl(rows), 3)})
    assert ingest_hour(con, folder).status == "ingested"
    [q] = quarantined(con, "pow")
    assert "c42" in q[4] and "samples must be JSON" in q[3]
    verify_pow(con, HOUR)
    checks = con.execute(
        "SELECT challenge_id, samples_total, samples_bad, first_bad FROM pow_checks WHERE challenge_id IN ('c40', 'c41') ORDER BY 1"
    ).fetchall()
    assert checks == [("c40", 1, 0, None), ("c41", 1, 1, f"[1, 2] = {right + 0.5}, expected {right}")]


def test_a_sample_one_bit_off_the_exact_entry_is_counted_as_a_flipped_bit(con, tmp_path: Path) -> None:
    """Failing memory or an unstable overclock flips one bit of a product the card computed: the
    sample is wrong, and ``samples_flipped`` says it is one bit off (a fault's mark, which
    ``failed_pow`` holds but never rejects). The evidence shows a made-up value first."""
    seed = np.array([2**64 - 41, 2**64 - 41], dtype=np.uint64)
    a, b = (int(x) for x in sample_entries(seed, np.array([4096, 4096]), np.array([1, 3]), np.array([2, 4])))
    rows = [
        pow_row(50, seed=2**64 - 41, samples=f"[[1, 2, {a ^ 2048}], [3, 4, {b}]]"),
        pow_row(51, seed=2**64 - 41, samples=f"[[1, 2, {-a}], [3, 4, {b + 6}]]"),
    ]
    folder = make_hour(tmp_path / "drops", extra={"pow.jsonl": (jsonl(rows), 2)})
    assert ingest_hour(con, folder).status == "ingested"
    verify_pow(con, HOUR)
    checks = con.execute(
        "SELECT challenge_id, samples_bad, samples_flipped, first_bad FROM pow_checks WHERE challenge_id IN ('c50', 'c51') ORDER BY 1"
    ).fetchall()
    assert checks == [
        ("c50", 1, 1, f"[1, 2] = {a ^ 2048}, expected {a} (one bit off)"),
        ("c51", 2, 1 if a else 0, f"[3, 4] = {b + 6}, expected {b}"),
    ]


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_a_file_without_a_nullable_column_lands_with_nulls_and_without_a_required_one_rejects_its_hour(
    con, tmp_path: Path, fmt: str
) -> None:
    """A writer that never has a value for a nullable column may leave it out, as a JSONL line
    leaves out a key; a required column cannot be left out: the file's rows cannot be read, so
    nothing of its hour lands."""
    nullable = ("gpu_serial", "driver_version", "cuda_version", "mig_mode", "sm_clock_max_mhz")
    rows = [{k: v for k, v in hardware_row(f"dev-{c}").items() if k not in nullable} for c in "ab"]
    required = [{k: v for k, v in r.items() if k != "gpu_model"} for r in rows]

    def data(rs: list[dict]) -> bytes:
        if fmt == "csv":
            return csv_bytes(rs)
        pq.write_table(pa.Table.from_pylist(rs), tmp_path / "h.parquet")
        return (tmp_path / "h.parquet").read_bytes()

    folder = make_hour(tmp_path / "drops", extra={f"hardware.{fmt}": (data(rows), 2)})
    assert ingest_hour(con, folder).status == "ingested"
    got = con.execute(
        f"SELECT device_id, {', '.join(nullable)}, gpu_uuid FROM hardware WHERE device_id LIKE 'dev-%' ORDER BY 1"
    ).fetchall()
    assert got == [("dev-a", None, None, None, None, None, "GPU-dev-a"), ("dev-b", None, None, None, None, None, "GPU-dev-b")]
    assert quarantined(con) == []
    folder = make_hour(tmp_path / "drops-2", extra={f"hardware.{fmt}": (data(required), 2)})
    with connect(tmp_path / "db-2.duckdb") as other:
        result = ingest_hour(other, folder)
        assert result.status == "rejected"
        assert result.reason.startswith(f"hardware.{fmt}: unreadable") and "lacks required columns ['gpu_model']" in result.reason
        assert count(other, "hardware") == 0 and quarantined(other) == []
