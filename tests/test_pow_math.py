"""The PoW challenge is exactly the contract's: numpy's generator, integer dot products."""

from __future__ import annotations

import numpy as np

from pipelines.pow_math import a_row, b_col, product_entry, sample_entries


def test_entries_match_a_full_matrix_product() -> None:
    seed, n = 2**64 - 3, 64
    a = np.stack([np.random.default_rng([seed, 0, i]).integers(-8, 9, size=n) for i in range(n)])
    b = np.stack([np.random.default_rng([seed, 1, j]).integers(-8, 9, size=n) for j in range(n)], axis=1)
    full = a @ b
    pairs = [(0, 0), (5, 63), (63, 5), (17, 17), (5, 0)]
    rows, cols = np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])
    assert sample_entries(np.full(len(pairs), seed, np.uint64), np.full(len(pairs), n), rows, cols).tolist() == [
        int(full[i, j]) for i, j in pairs
    ]
    assert product_entry(seed, n, 63, 5) == int(full[63, 5])


def test_fp16_inputs_with_fp32_accumulation_are_exact() -> None:
    seed, n = 12345, 4096
    exact = int(a_row(seed, 7, n) @ b_col(seed, 9, n))
    fp32 = np.dot(
        a_row(seed, 7, n).astype(np.float16).astype(np.float32), b_col(seed, 9, n).astype(np.float16).astype(np.float32)
    )
    assert float(fp32) == exact


def test_threaded_and_single_thread_kernels_agree() -> None:
    rng = np.random.default_rng(3)
    m = 3000
    seed = np.repeat(rng.integers(2**63, 2**64, m // 3, dtype=np.uint64), 3)
    n = np.full(m, 256)
    i, j = rng.integers(0, 256, m), rng.integers(0, 256, m)
    assert sample_entries(seed, n, i, j, threads=1).tolist() == sample_entries(seed, n, i, j, threads=2).tolist()
