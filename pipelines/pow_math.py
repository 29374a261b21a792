"""The proof-of-work challenge, exactly as the data contract defines it.

Row ``i`` of A is ``default_rng([seed, 0, i]).integers(-8, 9, size=n)`` and column ``j`` of B
is ``default_rng([seed, 1, j]).integers(-8, 9, size=n)``; a product entry is their integer dot
product (exact in fp16 inputs with fp32 accumulation for n <= 2**18). The simulator uses this
module to answer challenges honestly and the verifier uses it to check answers, so both sides
agree by construction.

``a_row``, ``b_col`` and ``product_entry`` are the contract's definition, on numpy's own
generator. ``sample_entries`` computes many entries at the generator's limit: a compiled
re-implementation of numpy's SeedSequence -> PCG64 -> bounded-integer stream (``_stream``)
fused with the dot product, on all cores, fed with arrays. Generating a vector costs O(n) and
dominates verification, so each distinct row of a challenge is generated once, in lockstep with
its columns (independent streams hide the multiply latency), and stored only when it has more
than two distinct columns. ``tests/test_pow_kernel.py`` compares
the compiled stream with numpy's on random seeds over the full unsigned 64-bit range.
"""

from __future__ import annotations

import numpy as np

LOW, HIGH = -8, 9
N_MAX = 2**18
"""The contract's largest matrix size (fp32 accumulation stays exact)."""


def a_row(seed: int, i: int, n: int) -> np.ndarray:
    return np.random.default_rng([seed, 0, i]).integers(LOW, HIGH, size=n)


def b_col(seed: int, j: int, n: int) -> np.ndarray:
    return np.random.default_rng([seed, 1, j]).integers(LOW, HIGH, size=n)


def product_entry(seed: int, n: int, i: int, j: int) -> int:
    """One entry of A @ B, on numpy's generator (the definition)."""
    return int(a_row(seed, i, n) @ b_col(seed, j, n))


def sample_entries(seed: np.ndarray, n: np.ndarray, i: np.ndarray, j: np.ndarray, threads: int | None = None) -> np.ndarray:
    """Entries ``A[i] @ B[:, j]`` of each sample's challenge ``(seed, n)``, as int64.

    The four arrays are parallel, one element per sample, in any order; samples with the same
    ``(seed, n)`` share generated vectors. Seeds are unsigned 64-bit. Raises ``ValueError`` for
    a negative seed, an ``n`` outside 1..2**18 or an index outside ``0..n-1``.
    """
    seed, n, i, j = checked_samples(seed, n, i, j)
    out = np.zeros(seed.size, dtype=np.int64)
    if seed.size == 0:
        return out
    from pipelines import pow_kernel

    order = np.lexsort((j, i, n, seed))
    s, nn, ii, jj = seed[order], n[order], i[order], j[order]
    change = np.r_[True, (s[1:] != s[:-1]) | (nn[1:] != nn[:-1])]
    starts = np.r_[np.flatnonzero(change), s.size].astype(np.int64)
    sorted_out = np.empty(s.size, dtype=np.int64)
    pow_kernel.run(starts, s, nn, ii, jj, sorted_out, threads)
    out[order] = sorted_out
    return out


def checked_samples(seed, n, i, j) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The four sample arrays as contiguous uint64/int64, or a ``ValueError`` saying what is wrong."""
    seed_in = np.asarray(seed)
    if seed_in.dtype.kind == "i" and seed_in.size and int(seed_in.min()) < 0:
        raise ValueError("seeds are unsigned 64-bit integers; got a negative seed")
    if seed_in.dtype.kind not in "iu" and seed_in.size:
        raise ValueError(f"seeds must be integers, got dtype {seed_in.dtype}")
    arrays = [np.ascontiguousarray(seed_in, dtype=np.uint64)]
    for name, a in (("n", n), ("i", i), ("j", j)):
        a = np.asarray(a)
        if a.dtype.kind not in "iu" and a.size:
            raise ValueError(f"{name} must be integers, got dtype {a.dtype}")
        arrays.append(np.ascontiguousarray(a, dtype=np.int64))
    s, nn, ii, jj = arrays
    if not (s.shape == nn.shape == ii.shape == jj.shape) or s.ndim != 1:
        raise ValueError("seed, n, i and j must be one-dimensional arrays of the same length")
    if s.size:
        if nn.min() < 1 or nn.max() > N_MAX:
            raise ValueError(f"n must be in 1..{N_MAX}; got {int(nn.min())}..{int(nn.max())}")
        if ii.min() < 0 or jj.min() < 0 or (ii >= nn).any() or (jj >= nn).any():
            raise ValueError("a sample index lies outside its n x n product")
    return s, nn, ii, jj
