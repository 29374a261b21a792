"""A network written to the same contract by another backend gives the same verdicts and the same
prices. The backends here are pandas (its own CSV, JSON and Parquet writers) and Python's csv and
json modules (CRLF, every field quoted, spaces in JSON, seeds as JSON strings), in every format
the contract allows, nullable integer columns as floats (``450.0``), timestamps as naive UTC
(``2024-08-14 07:00:01.468``), enumerations capitalized (``Linux``) and model names spelled as
older drivers and other tools do (``GEFORCE RTX 4090``). Some of these once cost every hardware
report, or every device's price, of such a network."""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from pipelines.cli import main
from pipelines.contract import FEEDS

FORMATS = ("csv", "jsonl", "parquet", "csv.gz", "jsonl.gz")


def _as_pandas_would(df: pd.DataFrame) -> pd.DataFrame:
    """numpy dtypes, as a pandas backend has them: an integer column with a null is float64."""
    for column in df.columns:
        if df[column].dtype.kind in "iu" or str(df[column].dtype).startswith(("Int", "UInt")):
            if df[column].isna().any():
                df[column] = df[column].astype("float64")
    if "os" in df.columns:
        df["os"] = df["os"].str.capitalize()
    if "gpu_model" in df.columns:
        df["gpu_model"] = df["gpu_model"].str.replace("NVIDIA GeForce ", "GEFORCE ", regex=False)
    return df


def _stdlib_bytes(df: pd.DataFrame, fmt: str) -> bytes:
    """What a backend using Python's own csv and json modules writes: CRLF line ends (the csv
    module's default), every CSV field quoted, ``json.dumps``' spaces (in ``samples`` too) and
    the 64-bit seed as a JSON string, as JavaScript-minded writers keep it."""
    records = json.loads(df.to_json(orient="records", date_format="iso", date_unit="ms"))
    for r in records:
        if r.get("samples"):
            r["samples"] = json.dumps(json.loads(r["samples"]))
    if "seed" in df.columns:
        for r, seed in zip(records, df["seed"].tolist(), strict=True):
            r["seed"] = str(seed)
    if fmt.startswith("jsonl"):
        return "".join(json.dumps(r) + "\n" for r in records).encode()
    text = io.StringIO()
    writer = csv.writer(text, quoting=csv.QUOTE_ALL)
    writer.writerow(df.columns)
    for r in records:
        writer.writerow(["" if r[c] is None else str(r[c]).lower() if isinstance(r[c], bool) else r[c] for c in df.columns])
    return text.getvalue().encode()


def _rewrite(db: Path, drops: Path, out: Path, writer: str = "pandas") -> None:
    """Every hour of ``drops`` again from the rows ``db`` ingested, written by ``writer`` (pandas,
    or Python's csv and json modules with Parquet left to pandas), formats rotated."""
    con = duckdb.connect(str(db), read_only=True)
    turn = 0
    for hour in sorted(p for p in drops.iterdir() if p.name[:2] == "20"):
        folder = out / hour.name
        folder.mkdir(parents=True)
        files = {}
        for feed in FEEDS:
            if not list(hour.glob(f"{feed}.*")):
                continue
            columns = [r[0] for r in con.execute(f"DESCRIBE {feed}").fetchall() if not r[0].startswith("_")]
            df = _as_pandas_would(
                con.execute(f"SELECT {', '.join(columns)} FROM {feed} WHERE _hour = ? ORDER BY _file, _row", [hour.name]).df()
            )
            fmt = FORMATS[turn % len(FORMATS)]
            turn += 1
            if writer == "stdlib" and not fmt.startswith("parquet"):
                raw = _stdlib_bytes(df, fmt)
            elif fmt.startswith("csv"):
                raw = df.to_csv(index=False).encode()
            elif fmt.startswith("jsonl"):
                raw = df.to_json(orient="records", lines=True, date_format="iso", date_unit="ms").encode()
            else:
                buffer = io.BytesIO()
                df.to_parquet(buffer, index=False)
                raw = buffer.getvalue()
            raw = gzip.compress(raw, mtime=0) if fmt.endswith(".gz") else raw
            (folder / f"{feed}.{fmt}").write_bytes(raw)
            files[f"{feed}.{fmt}"] = {"rows": len(df), "sha256": hashlib.sha256(raw).hexdigest()}
        (folder / "_manifest.json").write_text(json.dumps({"hour": hour.name, "files": files}))
    con.close()


@pytest.mark.parametrize("writer", ["pandas", "stdlib"])
def test_a_network_written_by_another_backend_gives_the_same_verdicts_and_prices(
    small_drops: Path, tmp_path: Path, writer: str
) -> None:
    ours, theirs = tmp_path / "ours.duckdb", tmp_path / "theirs.duckdb"
    assert main(["run", "--drops", str(small_drops), "--db", str(ours), "--out", str(tmp_path / "out-ours")]) == 0
    _rewrite(ours, small_drops, tmp_path / "theirs", writer)
    hardware = tmp_path / "theirs" / "2024-08-14T00" / "hardware.csv"
    written = pd.read_csv(hardware, dtype=str)
    assert written["power_limit_w"].str.endswith(".0").any() and written["os"].str.istitle().all()  # their forms are there
    assert (b"\r\n" in hardware.read_bytes()) == (writer == "stdlib")
    assert main(["run", "--drops", str(tmp_path / "theirs"), "--db", str(theirs), "--out", str(tmp_path / "out-theirs")]) == 0
    con = duckdb.connect()
    con.execute(f"ATTACH '{ours}' AS ours (READ_ONLY)")
    con.execute(f"ATTACH '{theirs}' AS theirs (READ_ONLY)")
    assert con.execute("SELECT count(*) FROM theirs.quarantine").fetchall() == [(0,)]
    for sql in (
        "SELECT epoch, device_id, tier, fraud_types FROM {}.device_tiers",
        # four hours: no device has the five hours of uptime to be paid yet, so the prices are compared
        "SELECT epoch, device_id, measured_class, multiplier_bp4, status, reason, weight FROM {}.reward_eligibility",
        "SELECT epoch, cluster_id, account_id FROM {}.sybil_clusters",
    ):
        rows = con.execute(sql.format("ours")).fetchall()
        assert rows, sql
        for a, b in (("ours", "theirs"), ("theirs", "ours")):
            differ = con.execute(f"SELECT count(*) FROM ({sql.format(a)} EXCEPT ALL {sql.format(b)})").fetchall()[0][0]
            assert differ == 0, (sql, a, b)
