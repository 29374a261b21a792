"""What every page reads first: the database connection, the latest epoch and the time window."""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import polars as pl

from pipelines import epoch
from pipelines.db import scalar

SAMPLE_POINTS = 20_000
"""Most points one scatter draws: more are sampled in SQL (reservoir, fixed seed), so a
network of a million devices draws as fast as one of twenty thousand."""


@dataclass(frozen=True)
class ReportContext:
    con: duckdb.DuckDBPyConnection
    latest: str | None
    """Latest processed epoch (``YYYY-MM-DDTHH``), or None when nothing was processed yet."""
    since: str | None
    """First epoch of the window the time series show."""
    window_hours: int

    def frame(self, sql: str, params: dict | None = None) -> pl.DataFrame:
        """Run SQL with ``$latest``, ``$since`` and any extra named parameters; a polars frame."""
        used = {k: v for k, v in {"latest": self.latest, "since": self.since, **(params or {})}.items() if f"${k}" in sql}
        return pl.from_arrow(self.con.sql(sql, params=used).to_arrow_table())  # type: ignore[return-value]


def report_context(con: duckdb.DuckDBPyConnection, window_hours: int = 168, as_of: str | None = None) -> ReportContext:
    """The latest processed epoch (at or before ``as_of``, when given) and the window of
    ``window_hours`` epochs ending at it."""
    if window_hours < 1:
        raise ValueError(f"window_hours must be at least 1, got {window_hours}")
    if as_of is not None and epoch.try_parse(as_of) is None:
        raise ValueError(f"epoch {as_of!r} is not YYYY-MM-DDTHH")
    latest = scalar(con, "SELECT max(epoch) FROM processed_epochs WHERE ? IS NULL OR epoch <= ?", [as_of, as_of])
    since = scalar(con, "SELECT hours_back(?, ?)", [latest, window_hours - 1]) if latest is not None else None
    return ReportContext(con, latest, since, window_hours)
