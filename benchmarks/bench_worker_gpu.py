"""Benchmark: the worker on a real card. Prints the NVML report, the proof-of-work throughput
as a share of the card's dense fp16 (FP32-accumulate) spec from the GPU catalogue, and how the
pipeline's verdict reads for this device after its answers went through ``fleetproof run``.

    uv run --extra gpu python benchmarks/bench_worker_gpu.py                 # n = 16384, 5 challenges
    uv run python benchmarks/bench_worker_gpu.py --backend cpu --n 512       # the same flow on the CPU

Target (issue 13): median PoW throughput >= 70% of the spec at n = 16384. Without a usable
GPU (no CuPy, no driver) the GPU run prints why and exits 0.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
from pathlib import Path

import numpy as np
import polars as pl

from pipelines.catalogue import alias_table, load_catalogue
from pipelines.db import connect
from pipelines.policy import load_policy
from pipelines.rewards_policy import load_rewards_policy
from pipelines.run import run
from pipelines.worker.answer import Challenge, CpuBackend
from pipelines.worker.backend import (
    BackendView,
    InProcessWorker,
    challenge_worker,
    hardware_frame,
    heartbeats,
    write_worker_hour,
)
from pipelines.worker.report import collect_report, format_report

TARGET_SHARE = 0.70


def _bus(bus_id: str | None) -> str:
    """``00000000:18:00.0`` (NVML) and ``0000:18:00.0`` (CUDA) -> ``18:00.0``."""
    return (bus_id or "").lower().split(":", 1)[-1]


def spec_of(model: str) -> tuple[str, float] | None:
    """(model_key, dense fp16 / FP32-accumulate TFLOPS) for an NVML name, matched exactly."""
    key = alias_table().filter(pl.col("alias") == model.strip())["model_key"]
    if key.is_empty():
        return None
    row = load_catalogue().filter(pl.col("model_key") == key[0]).row(0, named=True)
    return row["model_key"], row["fp16_tensor_tflops"]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=16384)
    p.add_argument("--challenges", type=int, default=5, help="matmul challenges answered (median reported)")
    p.add_argument("--backend", choices=["gpu", "cpu"], default="gpu")
    p.add_argument("--workdir", type=Path, default=Path("var/bench_worker"))
    p.add_argument("--seed", type=int, default=13)
    a = p.parse_args()

    print("== NVML report (what this worker sends)")
    report = collect_report(account_id="bench-account")
    print(format_report(report))

    if a.backend == "gpu":
        from pipelines.worker.gpu import CupyBackend, GpuUnavailable

        first = report.hardware[0]["pci_bus_id"] if report.hardware else None
        try:
            backend = CupyBackend(first)  # NVML's GPU 0, found in CUDA by its PCI bus id
        except GpuUnavailable as e:
            print(f"\nno usable GPU here ({e}): GPU benchmark skipped")
            return 0
        rows = [r for r in report.hardware if _bus(r["pci_bus_id"]) == _bus(backend.pci_bus_id)]
    else:
        backend = CpuBackend()
        rows = report.hardware[:1]
    print(f"\n== proof of work: {a.challenges} matmul challenges at n={a.n} on {backend.device} ({backend.name})")
    if not rows:
        print(f"the device answering ({backend.device}) has no NVML row here: no hardware row to send, "
              "no spec to compare with, no pipeline verdict")  # fmt: skip
    worker = InProcessWorker(backend)
    rng = np.random.default_rng(a.seed)
    challenges = [Challenge("matmul", a.n, int(s)) for s in rng.integers(0, 2**64, a.challenges, dtype=np.uint64)]
    device_id = "bench-0"
    pow_ = challenge_worker(device_id, challenges, worker, rng)
    ops = 2 * a.n**3
    tflops = []
    print(f"{'challenge':>9} {'generate ms':>12} {'copy ms':>9} {'compute ms':>11} {'digest ms':>10} {'TFLOPS':>8}")
    for k, c in enumerate(worker.commitments):
        if c["status"] != "ok":
            print(f"{k:>9} error: {c['reason']}")
            continue
        tflops.append(ops / c["compute_ms"] / 1e9)
        print(
            f"{k:>9} {c['generate_ms']:>12.1f} {c['copy_ms']:>9.1f} {c['compute_ms']:>11.3f} {c['digest_ms']:>10.1f} {tflops[-1]:>8.4g}"
        )
    if not tflops:
        return 1
    median = statistics.median(tflops)
    print(f"median PoW throughput {median:.4g} TFLOPS (best {max(tflops):.4g})")
    if not rows:
        return 0
    model = rows[0]["gpu_model"]
    spec = spec_of(model)
    if spec:
        share = median / spec[1]
        verdict = "meets" if share >= TARGET_SHARE else "misses"
        print(f"{model} ({spec[0]}): dense fp16/FP32-accumulate spec {spec[1]:.1f} TFLOPS; "
              f"median share {share:.1%} ({verdict} the {TARGET_SHARE:.0%} target)")  # fmt: skip
    else:
        print(f"{model} is not in data/gpu_catalogue.csv: no spec to compare with")

    print("\n== the pipeline's verdict on these answers (fleetproof run on one drop)")
    shutil.rmtree(a.workdir, ignore_errors=True)
    hardware = hardware_frame([{**rows[0], "gpu_index": 0}], BackendView("bench-account", device_prefix="bench"))
    start = pow_["issued_at"].min().replace(minute=0, second=0, microsecond=0)
    write_worker_hour(a.workdir / "drops", hardware, pow_, heartbeats([device_id], start))
    db = a.workdir / "fp.duckdb"
    run(a.workdir / "drops", db, a.workdir / "out", load_policy(None), rewards=load_rewards_policy(None))
    with connect(db) as con:
        checks = con.execute("SELECT sum(samples_total), sum(samples_bad) FROM pow_checks").fetchone()
        feats = con.execute("SELECT catalogue_model, spec_tflops, tflops_median, tflops_max, overclaimed_compute "
                            "FROM device_features").fetchone()  # fmt: skip
        tier = con.execute("SELECT tier, fraud_types, score, reasons FROM device_tiers").fetchone()
    print(f"samples checked {checks[0]}, wrong {checks[1]}")
    print(f"features: catalogue model {feats[0]}, spec {feats[1]} TFLOPS, measured median {feats[2]:.4g} / max {feats[3]:.4g} "
          f"TFLOPS, compute longer than the round trip: {feats[4]}")  # fmt: skip
    print(f"tier {tier[0]}, fraud types {tier[1] or 'none'}, score {tier[2]:.2f}")
    print(f"reasons {tier[3]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
