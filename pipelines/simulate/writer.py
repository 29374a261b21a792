"""Write one hour's feeds as a contract drop folder: any format per file, manifest last."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import polars as pl

from pipelines.contract import FORMATS, MANIFEST

TS_FORMAT = "%Y-%m-%dT%H:%M:%S%.3fZ"


def pick_format(scenario_formats: str, feed: str, hour: str) -> str:
    """``mixed``: a stable per-(feed, hour) choice so every format is exercised; else as given."""
    if scenario_formats != "mixed":
        if scenario_formats not in FORMATS:
            raise ValueError(f"unknown format {scenario_formats!r}; expected mixed or one of {FORMATS}")
        return scenario_formats
    digest = hashlib.sha256(f"{feed}/{hour}".encode()).digest()
    return FORMATS[digest[0] % len(FORMATS)]


def _as_text(df: pl.DataFrame) -> pl.DataFrame:
    """Timestamps as ISO 8601 UTC strings, the way the contract writes them in CSV and JSON."""
    return df.with_columns(pl.col(pl.Datetime).dt.strftime(TS_FORMAT))


def encode(df: pl.DataFrame, fmt: str) -> bytes:
    buf = io.BytesIO()
    if fmt == "parquet":
        df.with_columns(pl.col(pl.Datetime).dt.cast_time_unit("ms")).write_parquet(buf, compression="zstd")
        return buf.getvalue()
    if fmt.startswith("csv"):
        _as_text(df).write_csv(buf)
    else:
        _as_text(df).write_ndjson(buf)
    raw = buf.getvalue()
    return gzip.compress(raw, compresslevel=1, mtime=0) if fmt.endswith(".gz") else raw


def write_hour(folder: Path, hour: str, feeds: dict[str, pl.DataFrame], formats: str) -> dict:
    """Write every feed file, then ``_manifest.json`` atomically (a reader never sees half).
    Feeds are encoded side by side: polars, zlib and hashlib release the GIL (a third less wall
    time for a 200k-device hour on 2 cores)."""
    folder.mkdir(parents=True, exist_ok=True)

    def write(feed: str, df: pl.DataFrame) -> tuple[str, dict]:
        fmt = pick_format(formats, feed, hour)
        name = f"{feed}.{fmt}"
        data = encode(df, fmt)
        (folder / name).write_bytes(data)
        return name, {"rows": df.height, "sha256": hashlib.sha256(data).hexdigest()}

    with ThreadPoolExecutor(max_workers=os.cpu_count()) as pool:
        files = dict(pool.map(write, feeds, feeds.values()))
    manifest = {"hour": hour, "files": files}
    write_manifest(folder, manifest)
    return manifest


def write_manifest(folder: Path, manifest: dict) -> None:
    tmp = folder / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=1, sort_keys=True))
    os.replace(tmp, folder / MANIFEST)
