"""Per-epoch Parquet exports of the published tables: ``<out>/<table>/epoch=<epoch>/``.

Each epoch's file is rewritten whole (temporary name, then rename), so a re-run or a
recomputation after late data replaces it and a reader never sees half a file.
"""

from __future__ import annotations

import os
from pathlib import Path

import duckdb

from pipelines.contract import HOUR_RE

PUBLISHED = ("device_tiers", "sybil_clusters", "challenge_plan")
"""Tables this version publishes: the contract's ``device_tiers`` and ``sybil_clusters``, and
the ``challenge_plan`` for the backend (reward_allocations and slashing_events arrive with the
stages that compute them)."""


def export_epoch(con: duckdb.DuckDBPyConnection, out: str | Path, epoch: str, tables: tuple[str, ...] = PUBLISHED) -> list[Path]:
    if not HOUR_RE.match(epoch):
        raise ValueError(f"not an epoch: {epoch!r}")
    written = []
    for table in tables:
        folder = Path(out) / table / f"epoch={epoch}"
        folder.mkdir(parents=True, exist_ok=True)
        final = folder / "part-0.parquet"
        tmp = folder / ".part-0.parquet.tmp"
        con.execute(
            f"COPY (SELECT * FROM {table} WHERE epoch = '{epoch}' ORDER BY ALL) TO '{tmp}' (FORMAT parquet, COMPRESSION zstd)"
        )
        os.replace(tmp, final)
        written.append(final)
    return written
