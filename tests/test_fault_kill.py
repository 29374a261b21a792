"""Fault test: ``fleetproof run`` killed with SIGKILL at random points (and at the exact
points between commit and export), then run again, ends with exports and database tables
equal, byte for byte, to an uninterrupted run's.

Runs are forked from a forkserver that imported the pipeline once, so each start costs
milliseconds and a tiny network keeps a full run near a second."""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import random
import time
from pathlib import Path

import duckdb
import pytest
from fault_targets import run_and_die_at, run_pipeline

from pipelines.simulate import simulate

pytestmark = pytest.mark.slow

MIN_RANDOM_KILLS = 20
WALL_CLOCK_COLUMNS = {
    "ingest_log": ["ingested_at"],
    "ingest_attempts": ["attempted_at"],
    "processed_epochs": ["processed_at", "inputs_ingested_at"],
    "epoch_exports": ["out_dir", "processed_at", "exported_at"],
    "stage_failures": ["failed_at"],
    "verdict_overrides": ["created_at"],
}
"""Columns that hold wall-clock times or the output path: everything else must be equal."""


@pytest.fixture(scope="module")
def ctx():
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["pipelines.run", "pipelines.stages.publish", "fault_targets"])
    return context


@pytest.fixture(scope="module")
def tiny_drops(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tiny") / "drops"
    simulate(out, devices=16, hours=3, seed=5)
    return out


def _start(ctx, target, *args):
    p = ctx.Process(target=target, args=args)
    p.start()
    return p


def _export_bytes(out: Path) -> dict[str, str]:
    return {str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(out.rglob("*")) if p.is_file()}


def _table_digests(db: Path) -> dict[str, str]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        tables = [r[0] for r in con.execute("SELECT table_name FROM duckdb_tables() WHERE NOT temporary ORDER BY 1").fetchall()]
        out = {}
        for t in tables:
            cols = WALL_CLOCK_COLUMNS.get(t)
            select = f"SELECT * EXCLUDE ({', '.join(cols)})" if cols else "SELECT *"
            rows = con.execute(f"{select} FROM {t} ORDER BY ALL").fetchall()
            out[t] = hashlib.sha256(repr(rows).encode()).hexdigest() + f" ({len(rows)} rows)"
        return out
    finally:
        con.close()


@pytest.fixture(scope="module")
def reference(ctx, tiny_drops: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, float]:
    """An uninterrupted run: (database, exports, seconds it took)."""
    root = tmp_path_factory.mktemp("reference")
    db, out = root / "ref.duckdb", root / "ref_out"
    _start(ctx, os.getpid).join(300)  # starts the forkserver (it imports the pipeline once)
    started = time.perf_counter()
    p = _start(ctx, run_pipeline, tiny_drops, db, out)
    p.join(300)
    assert p.exitcode == 0
    return db, out, time.perf_counter() - started


def _finish_and_compare(ctx, drops: Path, db: Path, out: Path, ref_db: Path, ref_out: Path) -> None:
    p = _start(ctx, run_pipeline, drops, db, out)
    p.join(300)
    assert p.exitcode == 0
    assert _export_bytes(out) == _export_bytes(ref_out)
    assert _table_digests(db) == _table_digests(ref_db)


def test_kill_at_random_points_then_rerun_equals_an_uninterrupted_run(ctx, tiny_drops: Path, reference, tmp_path: Path) -> None:
    ref_db, ref_out, seconds = reference
    rng = random.Random(20240814)
    kills, rounds = 0, 0
    while kills < MIN_RANDOM_KILLS:
        rounds += 1
        db, out = tmp_path / f"r{rounds}.duckdb", tmp_path / f"r{rounds}_out"
        for _ in range(8):  # kill the same database's runs again and again, each further along
            p = _start(ctx, run_pipeline, tiny_drops, db, out)
            p.join(rng.uniform(0.02, 0.8 * seconds))
            if p.exitcode is not None:  # finished before the kill
                assert p.exitcode == 0
                break
            p.kill()
            p.join()
            kills += 1
        _finish_and_compare(ctx, tiny_drops, db, out, ref_db, ref_out)
    print(f"{kills} random kills over {rounds} rounds (an uninterrupted run: {seconds:.1f} s); every rerun equal to it")
    assert kills >= MIN_RANDOM_KILLS


@pytest.mark.parametrize(
    "point, nth",
    [("before_export", 2), ("before_export_record", 2)],
)
def test_kill_between_commit_and_export_loses_no_export(
    ctx, tiny_drops: Path, reference, tmp_path: Path, point: str, nth: int
) -> None:
    ref_db, ref_out, _ = reference
    db, out = tmp_path / "k.duckdb", tmp_path / "k_out"
    p = _start(ctx, run_and_die_at, tiny_drops, db, out, point, nth)
    p.join(300)
    assert p.exitcode == -9  # it really died at that point
    _finish_and_compare(ctx, tiny_drops, db, out, ref_db, ref_out)
