"""Benchmark: simulate one hour of a large network, ingest it, and compare with a bare DuckDB
load of the same files (DuckDB's own auto-detecting readers, no validation), in one run.

    uv run python benchmarks/bench_ingest.py --devices 100000

Targets (issue 2): simulate < 60 s; ingest < 30 s and <= 3x the bare load.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import tempfile
import time
from pathlib import Path

import duckdb

from pipelines.db import connect
from pipelines.ingest import complete_hours, ingest_hour
from pipelines.simulate import simulate


def bare_load(folder: Path, db: Path) -> float:
    """CREATE TABLE AS SELECT * from each file with DuckDB's default readers."""
    con = duckdb.connect(str(db))
    started = time.perf_counter()
    for i, f in enumerate(sorted(folder.iterdir())):
        if f.name.startswith("_"):
            continue
        if ".csv" in f.name:
            src = f"read_csv('{f}')"
        elif ".jsonl" in f.name:
            src = f"read_json('{f}', format='newline_delimited')"
        else:
            src = f"read_parquet('{f}')"
        con.execute(f"CREATE TABLE t{i} AS SELECT * FROM {src}")
    con.close()
    return time.perf_counter() - started


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--devices", type=int, default=100_000)
    p.add_argument("--seed", type=int, default=3)
    p.add_argument("--repeat", type=int, default=3, help="ingest/bare-load repetitions (best of)")
    p.add_argument("--workdir", type=Path, help="keep the files here (default: a temporary folder)")
    a = p.parse_args()
    work = a.workdir or Path(tempfile.mkdtemp(prefix="fp-bench-"))
    drops = work / "drops"
    shutil.rmtree(drops, ignore_errors=True)

    started = time.perf_counter()
    simulate(drops, a.devices, 1, seed=a.seed)
    sim_s = time.perf_counter() - started
    folder = complete_hours(drops)[0]
    size_mb = sum(f.stat().st_size for f in folder.iterdir()) / 2**20

    ours, bare = [], []
    for r in range(a.repeat):
        db = work / f"ours{r}.duckdb"
        with connect(db) as con:
            started = time.perf_counter()
            result = ingest_hour(con, folder)
            ours.append(time.perf_counter() - started)
        bare.append(bare_load(folder, work / f"bare{r}.duckdb"))
        assert result.status == "ingested", result.reason
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    print(f"devices                 {a.devices}")
    print(f"hour folder             {size_mb:.0f} MiB, {result.rows_in} rows in {len(result.files)} files")
    print(f"simulate 1 hour         {sim_s:6.1f} s   (target < 60 s)")
    print(f"ingest (validated)      {min(ours):6.1f} s   (target < 30 s; best of {a.repeat})")
    print(f"bare DuckDB load        {min(bare):6.1f} s")
    print(f"ingest / bare           {min(ours) / min(bare):6.2f} x (target <= 3 x)")
    print(f"peak RSS                {rss:6.0f} MiB")
    if a.workdir is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
