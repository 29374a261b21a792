"""Property-based fuzzing of ingestion: malformed rows and files never crash the run, are each
quarantined (or the hour rejected) with a reason, and every good row of the hour still lands.

Budget: 120 hours x 2 feeds x at least 5 broken rows (plus duplicates and unparseable lines)
= at least 1,200 malformed rows, and 60 damaged files, every run."""

from __future__ import annotations

import gzip
import hashlib
import json
import tempfile
from pathlib import Path

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipelines.contract import FORMATS, HARDWARE, MANIFEST
from pipelines.db import connect, scalar
from pipelines.ingest import ingest_hour
from pipelines.simulate.writer import encode

HOUR = "2024-08-14T07"
N_ROWS = 30

# Per feed: a column and a value that can never be valid there (kind of breakage -> (column, value)).
BREAKAGES: dict[str, dict[str, tuple[str, str | None]]] = {
    "pow": {
        "bad_timestamp": ("issued_at", "yesterday at noon"),
        "missing_required": ("device_id", None),
        "bad_enum": ("status", "maybe"),
        "bad_int": ("n", "four thousand"),
        "seed_below_signed_range": ("seed", "-9223372036854775809"),
        "seed_too_big": ("seed", "18446744073709551616"),
        "bad_samples": ("samples", "[[1, 2.5, 3]]"),
        "samples_not_json": ("samples", "[[1,2,3]"),
        "n_zero": ("n", "0"),
        "negative_compute": ("compute_ms", "-3"),
        "bad_float": ("compute_ms", "fast"),
        "responded_before_issued": ("responded_at", "2024-08-14T06:00:00Z"),
    },
    "uptime": {
        "bad_bool": ("ok", "perhaps"),
        "bad_source": ("source", "smoke signal"),
        "missing_ts": ("ts", None),
        "bad_latency": ("latency_ms", "12ms"),
    },
}


def base_rows(feed: str) -> pl.DataFrame:
    """N_ROWS valid rows of a feed, all values as strings (as a producer might write them)."""
    if feed == "pow":
        return pl.DataFrame(
            {
                "challenge_id": [f"c{i:04d}" for i in range(N_ROWS)],
                "batch_id": [None if i % 3 else f"b{i // 3}" for i in range(N_ROWS)],
                "device_id": [f"dev{i % 7}" for i in range(N_ROWS)],
                "kind": ["matmul" if i % 4 else "vram" for i in range(N_ROWS)],
                "issued_at": [f"2024-08-14T07:{i:02d}:00.000Z" for i in range(N_ROWS)],
                "responded_at": [f"2024-08-14T07:{i:02d}:01.250Z" for i in range(N_ROWS)],
                "status": ["ok"] * N_ROWS,
                "n": ["4096"] * N_ROWS,
                "seed": [str(2**64 - 1 - i) for i in range(N_ROWS)],
                "compute_ms": ["3.5"] * N_ROWS,
                "result_digest": ["ab" * 32] * N_ROWS,
                "samples": [f"[[{i},{i + 1},{i * 7 - 50}]]" for i in range(N_ROWS)],
            }
        )
    return pl.DataFrame(
        {
            "ts": [f"2024-08-14T07:{i:02d}:30Z" for i in range(N_ROWS)],
            "device_id": [f"dev{i}" for i in range(N_ROWS)],
            "source": ["ping" if i % 2 else "heartbeat" for i in range(N_ROWS)],
            "ok": ["true" if i % 5 else "false" for i in range(N_ROWS)],
            "latency_ms": [None if i % 5 == 0 else f"{10 + i}.5" for i in range(N_ROWS)],
        }
    )


def malformed_line(fmt: str) -> bytes:
    """One record that cannot be parsed (too many CSV fields; not JSON)."""
    return b"x,y,z,1,2,3,4,5,6,7,8,9,10,11,12,13,14\n" if fmt.startswith("csv") else b"{this is not json\n"


@st.composite
def damaged_feed(draw, feed: str):
    """(format, file bytes, manifest row count, number of rows that must be quarantined)."""
    fmt = draw(st.sampled_from(FORMATS))
    df = base_rows(feed)
    n_bad = draw(st.integers(5, 10))
    victims = draw(st.lists(st.integers(0, N_ROWS - 1), min_size=n_bad, max_size=n_bad, unique=True))
    kinds = draw(st.lists(st.sampled_from(sorted(BREAKAGES[feed])), min_size=n_bad, max_size=n_bad))
    for row, kind in zip(victims, kinds):
        column, value = BREAKAGES[feed][kind]
        df = df.with_columns(pl.when(pl.int_range(pl.len()) == row).then(pl.lit(value)).otherwise(pl.col(column)).alias(column))
    dupes = draw(st.integers(0, 3)) if feed == "pow" else 0
    if dupes:  # rows repeating an earlier challenge_id: the repeat is quarantined
        df = pl.concat([df, df.filter(~pl.int_range(pl.len()).is_in(victims)).head(dupes)])
    data = encode(df, fmt)
    broken_lines = 0 if fmt == "parquet" else draw(st.integers(0, 3))
    if broken_lines:
        raw = data if not fmt.endswith(".gz") else gzip.decompress(data)
        raw += malformed_line(fmt) * broken_lines
        data = raw if not fmt.endswith(".gz") else gzip.compress(raw)
    rows = df.height + broken_lines
    return fmt, data, rows, n_bad + dupes + broken_lines


def write_hour(folder: Path, files: dict[str, tuple[bytes, int]]) -> None:
    folder.mkdir(parents=True)
    manifest = {"hour": HOUR, "files": {}}
    for name, (data, rows) in files.items():
        (folder / name).write_bytes(data)
        manifest["files"][name] = {"rows": rows, "sha256": hashlib.sha256(data).hexdigest()}
    (folder / MANIFEST).write_text(json.dumps(manifest))


def hardware_file() -> tuple[bytes, int]:
    """One valid hardware row (the hour needs every required feed)."""
    values = {
        "ts": "2024-08-14T07:00:01Z", "device_id": "dev1", "account_id": "acc1", "host_fingerprint": "h",
        "ip": "1.2.3.4", "asn": "7922", "country": "US", "os": "linux", "worker_version": "2.5.0",
        "gpu_index": "0", "gpu_model": "NVIDIA GeForce RTX 4090", "gpu_uuid": "GPU-1", "gpu_serial": None,
        "pci_bus_id": "00000000:01:00.0", "vram_total_mb": "24576", "driver_version": None, "cuda_version": None,
        "virtualization_mode": "NONE", "mig_mode": None, "power_limit_w": "450", "sm_clock_max_mhz": "2520",
        "cpu_model": "AMD", "cpu_cores": "16", "ram_gb": "64", "bandwidth_down_mbps": "500.5", "bandwidth_up_mbps": "100",
    }  # fmt: skip
    df = pl.DataFrame({c.name: [values[c.name]] for c in HARDWARE.columns}, schema={c.name: pl.String for c in HARDWARE.columns})
    return encode(df, "csv"), 1


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pow_=damaged_feed("pow"), uptime=damaged_feed("uptime"))
def test_malformed_rows_are_quarantined_and_good_rows_land(pow_, uptime) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / HOUR
        (pf, pdata, prows, pbad), (uf, udata, urows, ubad) = pow_, uptime
        write_hour(folder, {f"pow.{pf}": (pdata, prows), f"uptime.{uf}": (udata, urows), "hardware.csv": hardware_file()})
        with connect(Path(tmp) / "db.duckdb") as con:
            result = ingest_hour(con, folder)
            assert result.status == "ingested", result.reason
            for feed, rows, bad in (("pow", prows, pbad), ("uptime", urows, ubad)):
                landed = scalar(con, f"SELECT count(*) FROM {feed}")
                quarantined = scalar(con, "SELECT count(*) FROM quarantine WHERE feed = ?", [feed])
                assert (landed, quarantined) == (rows - bad, bad)
            assert scalar(con, "SELECT count(*) FROM quarantine WHERE reason IS NULL OR length(reason) < 10") == 0
            assert result.rows_landed + result.rows_quarantined == result.rows_in


FILE_DAMAGE = ["truncated", "garbage", "missing_column", "unknown_feed", "unlisted", "empty"]


def jobs_rows() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "job_id": [f"j{i}" for i in range(N_ROWS)],
            "client_account_id": ["client"] * N_ROWS,
            "device_id": [f"dev{i}" for i in range(N_ROWS)],
            "created_at": ["2024-08-14T05:00:00Z"] * N_ROWS,
            "started_at": ["2024-08-14T05:01:00Z"] * N_ROWS,
            "ended_at": ["2024-08-14T07:10:00Z"] * N_ROWS,
            "status": ["completed"] * N_ROWS,
            "paid_usd": ["1.25"] * N_ROWS,
        }
    )


@settings(max_examples=60, deadline=None)
@given(damage=st.sampled_from(FILE_DAMAGE), fmt=st.sampled_from(FORMATS), salt=st.binary(min_size=1, max_size=64))
def test_an_unreadable_feed_file_rejects_its_hour_and_a_file_of_no_feed_is_quarantined(
    damage: str, fmt: str, salt: bytes
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / HOUR
        jobs = jobs_rows()
        data, name = encode(jobs, fmt), f"jobs.{fmt}"
        if damage == "truncated":
            data = data[: max(1, len(data) // 3)] + salt
        elif damage == "garbage":
            data = salt * 50
        elif damage == "missing_column":
            data = encode(jobs.drop("paid_usd"), fmt)
        elif damage == "unknown_feed":
            name = f"gpu_gossip.{fmt}"
        elif damage == "empty":
            data = b""
        files = {
            "uptime.csv": (encode(base_rows("uptime"), "csv"), N_ROWS),
            "pow.parquet": (encode(base_rows("pow"), "parquet"), N_ROWS),
            "hardware.csv": hardware_file(),
        }
        if damage != "unlisted":
            files[name] = (data, jobs.height)
        write_hour(folder, files)
        if damage == "unlisted":
            (folder / name).write_bytes(data)
        with connect(Path(tmp) / "db.duckdb") as con:
            result = ingest_hour(con, folder)
            # every outcome is explained: the hour rejected with a reason (rows that cannot be read or
            # counted cannot match the manifest), or the file quarantined
            if result.status == "rejected":
                assert damage in ("truncated", "garbage", "empty", "missing_column")
                assert name in result.reason
                assert "rows read but the manifest says" in result.reason or "rows cannot be counted" in result.reason
                assert scalar(con, "SELECT count(*) FROM uptime") == 0
                return
            assert result.status == "ingested"
            assert scalar(con, "SELECT count(*) FROM uptime") == N_ROWS
            assert scalar(con, "SELECT count(*) FROM pow") == N_ROWS
            landed = scalar(con, "SELECT count(*) FROM jobs")
            file_q = scalar(con, "SELECT count(*) FROM quarantine WHERE row_number IS NULL AND file = ?", [name])
            row_q = scalar(con, "SELECT count(*) FROM quarantine WHERE row_number IS NOT NULL")
            kept = scalar(con, "SELECT count(*) FROM quarantine_files WHERE file = ? AND content = ?", [name, data])
            if damage == "missing_column" and fmt.startswith("jsonl"):  # JSON rows are checked one by one
                assert (landed, row_q) == (0, jobs.height)
            elif damage == "unlisted":  # named in the quarantine, never read nor copied
                assert (landed, file_q, kept) == (0, 1, 0)
            elif damage == "unknown_feed":  # listed under no contract feed: quarantined whole, bytes kept
                assert (landed, file_q, kept) == (0, 1, 1)
            else:  # a damaged file that was read: row by row
                assert file_q == 0 and landed + row_q == jobs.height
