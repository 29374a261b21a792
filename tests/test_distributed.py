"""PoW verification sharded across a Dask LocalCluster gives exactly the single-process result."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pipelines.pow_distributed import entries_on_cluster, local_cluster, shard_bounds
from pipelines.pow_math import sample_entries


@pytest.fixture(scope="module")
def client():
    with local_cluster(workers=2) as c:
        yield c


def test_shards_are_balanced_and_never_split_a_challenge() -> None:
    seed = np.repeat(np.arange(100, dtype=np.uint64), np.arange(1, 101))  # challenges of 1..100 samples
    n = np.full(seed.size, 64)
    bounds = shard_bounds(seed, n, 4)
    assert bounds[0] == 0 and bounds[-1] == seed.size and (np.diff(bounds) > 0).all()
    assert len(bounds) == 5
    assert all(seed[b] != seed[b - 1] for b in bounds[1:-1])
    assert np.diff(bounds).max() < 2 * seed.size / 4


def test_cluster_entries_equal_the_local_kernel(client) -> None:
    rng = np.random.default_rng(99)
    m = 4000
    seed = np.repeat(rng.integers(0, 2**64, m // 2, dtype=np.uint64), 2)
    n = np.repeat(rng.integers(1, 2000, m // 2), 2)
    i = np.repeat((rng.random(m // 2) * n[::2]).astype(np.int64), 2)
    j = (rng.random(m) * n).astype(np.int64)
    order = rng.permutation(m)
    seed, n, i, j = seed[order], n[order], i[order], j[order]
    assert entries_on_cluster(client, seed, n, i, j, shards=7).tolist() == sample_entries(seed, n, i, j).tolist()


def test_bad_samples_are_rejected_before_they_reach_the_cluster(client) -> None:
    with pytest.raises(ValueError, match="outside"):
        entries_on_cluster(client, np.array([1], np.uint64), np.array([4]), np.array([4]), np.array([0]))


@pytest.mark.slow
def test_verification_of_a_simulated_hour_on_the_cluster_is_identical(client, tmp_path: Path, monkeypatch) -> None:
    """A small hour, verified in-process and through ``FLEETPROOF_DASK_SCHEDULER``: same pow_checks."""
    from pipelines.cli import main
    from pipelines.db import connect
    from pipelines.features import verify_pow

    drops, db = tmp_path / "drops", tmp_path / "fp.duckdb"
    assert main(["simulate", "--out", str(drops), "--devices", "120", "--hours", "1", "--seed", "3"]) == 0
    assert main(["ingest", "--drops", str(drops), "--db", str(db)]) == 0
    with connect(db) as con:
        epoch = con.execute("SELECT max(_hour) FROM pow").fetchone()[0]
        local = verify_pow(con, epoch)
        local_rows = con.execute("SELECT * FROM pow_checks ORDER BY ALL").fetchall()
        monkeypatch.setenv("FLEETPROOF_DASK_SCHEDULER", client.scheduler.address)
        shared = verify_pow(con, epoch)
        shared_rows = con.execute("SELECT * FROM pow_checks ORDER BY ALL").fetchall()
    assert local[0] > 100 and local[1] > 0  # samples checked, and the simulated cheats caught
    assert shared == local
    assert shared_rows == local_rows
