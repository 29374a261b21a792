"""Stage ``publish``: the epoch's published tables as Parquet (and CSV for the rewards
engine) under ``ctx.out``, recorded in ``epoch_exports`` (``pipelines.export``).

Files cannot be rolled back, so the runner calls this stage right after the epoch's commit; an
export a killed run never wrote is found by ``missing_exports`` and written by the next run."""

from __future__ import annotations

from pathlib import Path

import duckdb

from pipelines.export import PUBLISHED, export_epoch
from pipelines.stages.context import StageContext

NAME = "publish"
WRITES = ("epoch_exports",)
READS = PUBLISHED
DDL = """
CREATE TABLE IF NOT EXISTS epoch_exports (  -- an epoch is done only once exported and recorded here
    out_dir VARCHAR NOT NULL,
    epoch VARCHAR NOT NULL,
    processed_at TIMESTAMP NOT NULL,    -- the computation that was exported
    files JSON NOT NULL,                -- relative path -> sha256
    exported_at TIMESTAMP NOT NULL,
    PRIMARY KEY (out_dir, epoch)
);
"""


def write(con: duckdb.DuckDBPyConnection, epoch: str, ctx: StageContext) -> list[Path]:
    """The files written (none without ``ctx.out``)."""
    return [] if ctx.out is None else export_epoch(con, ctx.out, epoch)


def run(con: duckdb.DuckDBPyConnection, epoch: str, ctx: StageContext) -> dict[str, int]:
    return {"files": len(write(con, epoch, ctx))}
