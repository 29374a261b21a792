"""Benchmark: GPU-fraud detection quality (closed loop, with and without the challenge plan)
and detection speed at 100k devices x 24 hours.

    uv run python benchmarks/bench_gpu_fraud.py --devices 5000 --hours 24        # quality
    uv run python benchmarks/bench_gpu_fraud.py --speed --devices 100000 --hours 24

Quality: the simulated backend honours the plan the pipeline made the hour before (or not);
prints precision/recall per GPU fraud type, per attack variant, overall, and the flagged share
of every population. Targets (issue 3): precision >= 0.99, recall >= 0.97 overall and >= 0.95
per variant, honest flagged share <= 0.5% in every population.
Speed: simulates (or reuses, with --drops) an open-loop network, runs the pipeline and prints
the time of each stage; the target is detection (detectors + tiering + plan) < 2 minutes.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import polars as pl

from pipelines.db import connect
from pipelines.evaluate import GPU_FRAUD_TYPES, flagged_devices, gpu_fraud_tables, quality_tables
from pipelines.run import run
from pipelines.simulate import NetworkSimulator, simulate, truth_devices
from pipelines.simulate.loop import closed_loop

GPU_DETECTORS = ("failed_pow", "duplicate_hardware", "spoofed_model", "virtualized_gpu", "fleet_burst", "anomaly")
CONFIG = dict(tbl_rows=60, tbl_hide_dataframe_shape=True, tbl_hide_column_data_types=True, float_precision=4, tbl_width_chars=140)


def quality(a: argparse.Namespace, work: Path) -> None:
    results = {}
    for use_plan in (True, False):
        root = work / ("plan" if use_plan else "noplan")
        shutil.rmtree(root, ignore_errors=True)
        started = time.perf_counter()
        sim = NetworkSimulator(root / "drops", a.devices, a.hours, seed=a.seed)
        closed_loop(sim, root / "db.duckdb", None, a.hours, use_plan=use_plan)
        with connect(root / "db.duckdb") as con:
            flagged = flagged_devices(con)
        truth = truth_devices(root / "drops")
        results[use_plan] = (truth, flagged, time.perf_counter() - started)
    truth, flagged, seconds = results[True]
    per_type, per_pop = quality_tables(truth, flagged, GPU_FRAUD_TYPES)
    overall, variants = gpu_fraud_tables(truth, flagged)
    _, variants_off = gpu_fraud_tables(*results[False][:2])
    both = variants.select("population", "devices", pl.col("recall").alias("recall_with_plan")).join(
        variants_off.select("population", pl.col("recall").alias("recall_without_plan")), on="population"
    )
    with pl.Config(**CONFIG):
        print(f"closed loop: {a.devices} devices x {a.hours} hours, seed {a.seed} ({seconds:.0f} s with plan)")
        print("GPU fraud overall (with plan):")
        print(overall)
        print("per fraud type (with plan):")
        print(per_type)
        print("recall per attack variant, with and without the challenge plan:")
        print(both)
        print("flagged share per population (with plan; honest = false-positive rate):")
        print(per_pop)


def speed(a: argparse.Namespace, work: Path) -> None:
    drops = a.drops or work / "drops"
    if a.drops is None:
        shutil.rmtree(drops, ignore_errors=True)
        started = time.perf_counter()
        simulate(drops, a.devices, a.hours, seed=a.seed)
        print(f"simulate {a.devices} devices x {a.hours} hours: {time.perf_counter() - started:.0f} s")
    db = work / "speed.duckdb"
    db.unlink(missing_ok=True)
    started = time.perf_counter()
    summary = run(drops, db, None)
    total = time.perf_counter() - started
    feats = sum(e.features_seconds for e in summary.epochs)
    detect = sum(e.detection_seconds for e in summary.epochs)
    print(f"epochs {len(summary.epochs)}, devices per epoch up to {max(e.devices for e in summary.epochs)}")
    print(f"whole run                         {total:7.1f} s")
    print(f"  ingest                          {total - sum(e.seconds for e in summary.epochs):7.1f} s")
    print(f"  PoW verification + features     {feats:7.1f} s")
    per: dict[str, float] = {}
    for e in summary.epochs:
        for name, sec in e.detector_seconds.items():
            per[name] = per.get(name, 0.0) + sec
    gpu = sum(per.get(n, 0.0) for n in GPU_DETECTORS)
    print(f"  detection (detectors+tiers+plan){detect:7.1f} s")
    print(f"    GPU-fraud detectors           {gpu:7.1f} s   (target < 120 s: {', '.join(GPU_DETECTORS)})")
    for name, sec in sorted(per.items(), key=lambda kv: -kv[1]):
        print(f"      {name:<28}{sec:7.1f} s")
    print(f"  rewards (staking, allocation, slashing) {sum(e.seconds for e in summary.epochs) - feats - detect:7.1f} s")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--devices", type=int, default=5000)
    p.add_argument("--hours", type=int, default=24)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--speed", action="store_true", help="time the stages instead of measuring quality")
    p.add_argument("--drops", type=Path, help="with --speed: reuse these simulated drops")
    p.add_argument("--workdir", type=Path)
    a = p.parse_args()
    work = a.workdir or Path(tempfile.mkdtemp(prefix="fp-gpu-"))
    work.mkdir(parents=True, exist_ok=True)
    (speed if a.speed else quality)(a, work)
    if a.workdir is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
