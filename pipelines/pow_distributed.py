"""PoW verification sharded across a Dask cluster (the ``distributed`` extra).

The first step past one machine: samples are sorted by challenge, cut into shards at challenge
boundaries (a challenge's shared row is generated once, on one worker) and each shard's four
numpy arrays go to a worker, which runs the same compiled kernel as the single-process path
(``pow_math.sample_entries``, one thread per Dask worker thread). The entries come back in the
caller's order, so the result is identical to the local path by construction; it is tested
against it on a simulated hour (``tests/test_distributed.py``).

Use a running scheduler with ``FLEETPROOF_DASK_SCHEDULER=tcp://host:8786 fleetproof run ...``,
or a ``LocalCluster`` on this machine (``local_cluster``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import numpy as np

from pipelines.pow_math import checked_samples, sample_entries

if TYPE_CHECKING:
    from distributed import Client

SHARDS_PER_WORKER_THREAD = 4
"""More shards than threads, so a slow shard (large VRAM challenges) does not idle the rest."""


def _shard_entries(seed: np.ndarray, n: np.ndarray, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Runs on a worker: the kernel in the worker's own thread (Dask provides the parallelism)."""
    return sample_entries(seed, n, i, j, threads=1)


def shard_bounds(seed: np.ndarray, n: np.ndarray, shards: int) -> np.ndarray:
    """Cut points into samples sorted by (seed, n): about equal sizes, never inside a challenge."""
    if seed.size == 0:
        return np.array([0, 0], dtype=np.int64)
    starts = np.flatnonzero(np.r_[True, (seed[1:] != seed[:-1]) | (n[1:] != n[:-1])])
    targets = np.linspace(0, seed.size, max(1, shards) + 1)[1:-1]
    cuts = starts[np.minimum(np.searchsorted(starts, targets), starts.size - 1)]
    return np.unique(np.r_[0, cuts, seed.size]).astype(np.int64)


def entries_on_cluster(
    client: Client | str, seed: np.ndarray, n: np.ndarray, i: np.ndarray, j: np.ndarray, shards: int | None = None
) -> np.ndarray:
    """``sample_entries`` computed on a Dask cluster (a ``Client`` or a scheduler address).
    Bad samples are rejected here, before anything is sent."""
    from distributed import Client

    seed, n, i, j = checked_samples(seed, n, i, j)
    if seed.size == 0:
        return np.empty(0, dtype=np.int64)
    own = isinstance(client, str)
    cl = Client(client) if own else client
    try:
        order = np.lexsort((j, i, n, seed))
        s, nn, ii, jj = seed[order], n[order], i[order], j[order]
        threads = sum(cl.nthreads().values()) or 1
        bounds = shard_bounds(s, nn, shards or threads * SHARDS_PER_WORKER_THREAD)
        futures = [
            cl.submit(_shard_entries, s[a:b], nn[a:b], ii[a:b], jj[a:b], pure=False)
            for a, b in zip(bounds[:-1], bounds[1:])
            if b > a
        ]
        parts = cl.gather(futures)
    finally:
        if own:
            cl.close()
    out = np.empty(seed.size, dtype=np.int64)
    out[order] = np.concatenate(parts)
    return out


@contextmanager
def local_cluster(workers: int = 2) -> Iterator[Client]:
    """A ``LocalCluster`` of single-threaded worker processes on this machine, and its client."""
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        with Client(cluster) as client:
            yield client
