"""Benchmark: detection quality on a simulated network with ground truth, and its cost.

    uv run python benchmarks/bench_detection.py --devices 5000 --hours 24

Prints precision and recall per fraud type (a device counts once, flagged in any epoch) and
the flagged share of every population: for honest populations that is the false-positive
rate. Targets (issue 2): failed_pow, duplicate_hardware, spoofed_uptime precision >= 0.99 and
recall >= 0.95; no honest population above 0.5% flagged.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import polars as pl

from pipelines.cli import ISSUE2_TYPES
from pipelines.evaluate import evaluate
from pipelines.run import run
from pipelines.simulate import load_scenario, simulate


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--devices", type=int, default=5000)
    p.add_argument("--hours", type=int, default=24)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--scenario", type=Path)
    p.add_argument("--workdir", type=Path)
    a = p.parse_args()
    work = a.workdir or Path(tempfile.mkdtemp(prefix="fp-detect-"))
    shutil.rmtree(work / "drops", ignore_errors=True)
    (work / "fp.duckdb").unlink(missing_ok=True)

    t0 = time.perf_counter()
    simulate(work / "drops", a.devices, a.hours, seed=a.seed, scenario=load_scenario(a.scenario))
    t1 = time.perf_counter()
    summary = run(work / "drops", work / "fp.duckdb", work / "out")
    t2 = time.perf_counter()
    per_type, per_pop = evaluate(work / "fp.duckdb", work / "drops", ISSUE2_TYPES)
    stage = sum(e.seconds for e in summary.epochs)

    with pl.Config(
        tbl_rows=60, tbl_hide_dataframe_shape=True, tbl_hide_column_data_types=True, float_precision=4, tbl_width_chars=140
    ):
        print(f"network: {a.devices} devices x {a.hours} hours, seed {a.seed}")
        print(
            f"simulate {t1 - t0:.1f} s; run (ingest + detect + tier + export) {t2 - t1:.1f} s, of which per-epoch processing {stage:.1f} s"
        )
        print(per_type)
        print(per_pop)
    if a.workdir is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
