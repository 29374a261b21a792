"""Stage ``plan``: which suspected siblings the backend challenges together next hour
(``pipelines.challenge_plan.build_plan``)."""

from __future__ import annotations

import duckdb

from pipelines.challenge_plan import build_plan
from pipelines.stages.context import StageContext

NAME = "plan"
WRITES = ("challenge_plan",)
READS = ("device_features", "device_tiers", "evidence")
DDL = """
CREATE TABLE IF NOT EXISTS challenge_plan (
    epoch VARCHAR NOT NULL,             -- the epoch whose evidence made the plan (for epoch + 1)
    group_id VARCHAR NOT NULL,
    device_id VARCHAR NOT NULL,
    reason VARCHAR NOT NULL
);
"""


def run(con: duckdb.DuckDBPyConnection, epoch: str, ctx: StageContext) -> dict[str, int]:
    return {"devices_planned": build_plan(con, epoch)}
