"""Closed loop: the worker's own report and answers -> a contract drop -> ``fleetproof run`` ->
the pipeline's verifier and detectors judge them like any other device's."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from worker_fakes import H100, RTX_4090, fake_pynvml

from pipelines.cli import main
from pipelines.db import connect
from pipelines.policy import DEFAULT_POLICY
from pipelines.worker.answer import Challenge, CpuBackend
from pipelines.worker.backend import (
    BackendView,
    CommandWorker,
    InProcessWorker,
    Worker,
    challenge_worker,
    hardware_frame,
    heartbeats,
    write_worker_hour,
)

GTX_1080_TI = {**RTX_4090, "name": "NVIDIA GeForce GTX 1080 Ti", "memory_total": 11_811_160_064}
"""A real card the catalogue does not list: no spec sheet to hold a CPU's speed against."""
SEEDS = [2**64 - 1, 12_345_678_901_234_567_890, 42]


def worker_drop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys, gpu: dict, worker: Worker,
                challenges: list[Challenge]) -> tuple[Path, pl.DataFrame]:  # fmt: skip
    """Report through the CLI as a worker would send it, answer the challenges, write the hour."""
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml([gpu]))
    assert main(["worker", "report", "--json", "--account", "acct-w"]) == 0
    sent = json.loads(capsys.readouterr().out)
    view = BackendView("acct-w", device_prefix="w1")
    hardware = hardware_frame(sent["hardware"], view)
    pow_ = challenge_worker(view.device_id(0), challenges, worker, np.random.default_rng(5))
    start = pow_["issued_at"].min().replace(minute=0, second=0, microsecond=0)
    drops = tmp_path / "drops"
    write_worker_hour(drops, hardware, pow_, heartbeats([view.device_id(0)], start), fmt="jsonl")
    return drops, pow_


def run_pipeline(tmp_path: Path, drops: Path, policy: Path | None = None) -> Path:
    db = tmp_path / "fp.duckdb"
    args = ["run", "--drops", str(drops), "--db", str(db), "--out", str(tmp_path / "out")]
    assert main([*args, *(["--policy", str(policy)] if policy else [])]) == 0
    return db


def one_hour_streak_policy(tmp_path: Path) -> Path:
    """The default policy with a one-hour clean streak, so one good hour shows as ``verified``."""
    text = DEFAULT_POLICY.read_text()
    assert "verify_after_clean_hours = 24" in text
    path = tmp_path / "policy.toml"
    path.write_text(text.replace("verify_after_clean_hours = 24", "verify_after_clean_hours = 1"))
    return path


@pytest.mark.slow
def test_answers_from_the_worker_command_verify_through_the_pipeline(tmp_path, monkeypatch, capsys) -> None:
    challenges = [Challenge("matmul", 64, SEEDS[0]), Challenge("matmul", 96, SEEDS[1]), Challenge("vram", 128, SEEDS[2])]
    drops, pow_ = worker_drop(tmp_path, monkeypatch, capsys, GTX_1080_TI, CommandWorker("cpu"), challenges)
    assert pow_["status"].to_list() == ["ok"] * 3
    db = run_pipeline(tmp_path, drops, one_hour_streak_policy(tmp_path))
    with connect(db) as con:
        checks = con.execute("SELECT challenge_id, samples_total, samples_bad FROM pow_checks ORDER BY 1").fetchall()
        tier = con.execute("SELECT device_id, account_id, tier, fraud_types FROM device_tiers").fetchall()
        seeds = [r[0] for r in con.execute("SELECT seed FROM pow ORDER BY challenge_id").fetchall()]
        quarantined = con.execute("SELECT rows_quarantined FROM ingest_log").fetchall()
    assert checks == [(cid, 8, 0) for cid in sorted(pow_["challenge_id"])]
    assert tier == [("w1-0", "acct-w", "verified", [])]
    assert seeds == [int(s) for s in pow_.sort("challenge_id")["seed"]]  # 2**64 - 1 survives the trip
    assert quarantined == [(0,)]


def test_a_tampered_sample_is_caught_by_the_verifier(tmp_path, monkeypatch, capsys) -> None:
    worker = InProcessWorker(CpuBackend())
    drops, _ = worker_drop(tmp_path, monkeypatch, capsys, GTX_1080_TI, worker, [Challenge("matmul", 48, SEEDS[2])])
    (hour,) = [p for p in drops.iterdir()]
    pow_file = hour / "pow.jsonl"
    row = json.loads(pow_file.read_text())
    entries = json.loads(row["samples"])
    entries[0][2] += 1  # one wrong entry, as a cheat that skips part of the work would send
    row["samples"] = json.dumps(entries)
    pow_file.write_text(json.dumps(row) + "\n")
    manifest = json.loads((hour / "_manifest.json").read_text())
    manifest["files"]["pow.jsonl"]["sha256"] = hashlib.sha256(pow_file.read_bytes()).hexdigest()
    (hour / "_manifest.json").write_text(json.dumps(manifest))
    db = run_pipeline(tmp_path, drops)
    with connect(db) as con:
        (bad,) = con.execute("SELECT samples_bad FROM pow_checks").fetchone()
        tier, types = con.execute("SELECT tier, fraud_types FROM device_tiers").fetchone()
    assert bad == 1
    assert tier in ("probation", "rejected") and "failed_pow" in types


def test_cpu_speed_claimed_as_an_h100_reads_as_a_spoofed_model(tmp_path, monkeypatch, capsys) -> None:
    """Real timings meet the pipeline's physics: three exact answers at CPU speed under an
    H100's name are correct but far too slow for the card's spec sheet."""
    challenges = [Challenge("matmul", 128, s) for s in SEEDS]
    drops, _ = worker_drop(tmp_path, monkeypatch, capsys, H100, InProcessWorker(CpuBackend()), challenges)
    db = run_pipeline(tmp_path, drops)
    with connect(db) as con:
        (bad,) = con.execute("SELECT sum(samples_bad) FROM pow_checks").fetchone()
        tier, types, reasons = con.execute("SELECT tier, fraud_types, reasons FROM device_tiers").fetchone()
    assert bad == 0
    assert types == ["spoofed_model"] and tier == "probation"
    assert "of the spec 989.4 for h100_sxm" in reasons


def test_gpu_benchmark_skips_cleanly_without_a_gpu(monkeypatch, capsys) -> None:
    import runpy

    from pipelines.worker import gpu

    def unavailable():
        raise gpu.GpuUnavailable("CuPy is not usable (ModuleNotFoundError: No module named 'cupy'); install the gpu extra")

    monkeypatch.setattr(gpu, "load_cupy", unavailable)
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml([], init_error=Exception("NVML Shared Library Not Found")))
    monkeypatch.setattr(sys, "argv", ["bench_worker_gpu.py"])
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_worker_gpu.py"
    with pytest.raises(SystemExit) as done:
        runpy.run_path(str(script), run_name="__main__")
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert "NVML: not available" in out and "GPU benchmark skipped" in out
