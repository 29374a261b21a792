"""The proof-of-work challenge, exactly as the data contract defines it.

Row ``i`` of A is ``default_rng([seed, 0, i]).integers(-8, 9, size=n)`` and column ``j`` of B
is ``default_rng([seed, 1, j]).integers(-8, 9, size=n)``; a product entry is their integer dot
product (exact in fp16 inputs with fp32 accumulation for n <= 2**18). The simulator uses these
functions to answer challenges honestly and the verifier uses them to check answers, so both
sides agree by construction.

Generating a vector costs O(n) and dominates verification, so entries are computed in groups
that share vectors (a challenge's samples usually share a row) and, for large batches, on
several processes.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor

import numpy as np

LOW, HIGH = -8, 9
PARALLEL_MIN_ENTRIES = 20_000
"""Below this many entries a process pool costs more than it saves."""


def a_row(seed: int, i: int, n: int) -> np.ndarray:
    return np.random.default_rng([seed, 0, i]).integers(LOW, HIGH, size=n)


def b_col(seed: int, j: int, n: int) -> np.ndarray:
    return np.random.default_rng([seed, 1, j]).integers(LOW, HIGH, size=n)


def product_entry(seed: int, n: int, i: int, j: int) -> int:
    """One entry of A @ B."""
    return int(a_row(seed, i, n) @ b_col(seed, j, n))


def challenge_entries(seed: int, n: int, pairs: Sequence[tuple[int, int]]) -> list[int]:
    """Entries (i, j) of one challenge's product, generating each distinct vector once."""
    rows: dict[int, np.ndarray] = {}
    cols: dict[int, np.ndarray] = {}
    out = []
    for i, j in pairs:
        if i not in rows:
            rows[i] = a_row(seed, i, n)
        if j not in cols:
            cols[j] = b_col(seed, j, n)
        out.append(int(rows[i] @ cols[j]))
    return out


Job = tuple[int, int, Sequence[tuple[int, int]]]
"""(seed, n, [(i, j), ...]) for one challenge."""


def _chunk_entries(jobs: list[Job]) -> list[list[int]]:
    return [challenge_entries(seed, n, pairs) for seed, n, pairs in jobs]


def many_challenge_entries(jobs: Iterable[Job], workers: int | None = None) -> list[list[int]]:
    """``challenge_entries`` for many challenges, on a process pool when the batch is large."""
    jobs = list(jobs)
    total = sum(len(p) for _, _, p in jobs)
    workers = workers or min(os.cpu_count() or 1, 8)
    if workers <= 1 or total < PARALLEL_MIN_ENTRIES:
        return _chunk_entries(jobs)
    size = max(1, len(jobs) // (workers * 4))
    chunks = [jobs[k : k + size] for k in range(0, len(jobs), size)]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        parts = list(pool.map(_chunk_entries, chunks))
    return [entry for part in parts for entry in part]
