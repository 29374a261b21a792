"""Per-epoch Parquet exports of the published tables: ``<out>/<table>/epoch=<epoch>/``.

Each epoch's file is rewritten whole (temporary name, then rename), so a re-run or a
recomputation after late data replaces it and a reader never sees half a file.
"""

from __future__ import annotations

import os
from pathlib import Path

import duckdb

from pipelines.contract import HOUR_RE

PUBLISHED = ("device_tiers", "sybil_clusters", "reward_allocations", "slashing_events", "account_statements", "challenge_plan")
"""Tables published per epoch: the contract's four, the per-account statements for the rewards
engine, and the ``challenge_plan`` for the backend."""
CSV_TOO = ("reward_allocations", "slashing_events", "account_statements")
"""Also written as CSV beside the Parquet file (the rewards engine's formats)."""

STATEMENTS_SQL = """
SELECT a.epoch, a.account_id, count(DISTINCT a.device_id) AS devices,
       coalesce(sum(a.amount_base_units) FILTER (a.components ->> 'status' = 'paid'), 0) AS paid_base_units,
       coalesce(sum(a.amount_base_units) FILTER (a.components ->> 'status' = 'held'), 0) AS held_base_units,
       coalesce(any_value(s.slashed), 0) AS slashed_base_units
FROM reward_allocations a
LEFT JOIN (SELECT account_id, sum(amount_base_units) AS slashed FROM slashing_events WHERE epoch = '{epoch}' GROUP BY account_id) s
  USING (account_id)
WHERE a.epoch = '{epoch}' AND a.account_id IS NOT NULL
GROUP BY a.epoch, a.account_id
"""


def export_epoch(con: duckdb.DuckDBPyConnection, out: str | Path, epoch: str, tables: tuple[str, ...] = PUBLISHED) -> list[Path]:
    if not HOUR_RE.match(epoch):
        raise ValueError(f"not an epoch: {epoch!r}")
    written = []
    for table in tables:
        folder = Path(out) / table / f"epoch={epoch}"
        folder.mkdir(parents=True, exist_ok=True)
        final = folder / "part-0.parquet"
        tmp = folder / ".part-0.parquet.tmp"
        query = STATEMENTS_SQL.format(epoch=epoch) if table == "account_statements" else (
            f"SELECT * FROM {table} WHERE epoch = '{epoch}'"
        )
        con.execute(f"COPY ({query} ORDER BY ALL) TO '{tmp}' (FORMAT parquet, COMPRESSION zstd)")
        os.replace(tmp, final)
        written.append(final)
        if table in CSV_TOO:
            tmp_csv, final_csv = folder / ".part-0.csv.tmp", folder / "part-0.csv"
            con.execute(f"COPY ({query} ORDER BY ALL) TO '{tmp_csv}' (FORMAT csv, HEADER)")
            os.replace(tmp_csv, final_csv)
            written.append(final_csv)
    return written
