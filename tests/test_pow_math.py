"""The PoW challenge is exactly the contract's: numpy's generator, integer dot products."""

from __future__ import annotations

import numpy as np

from pipelines.pow_math import a_row, b_col, challenge_entries, many_challenge_entries, product_entry


def test_entries_match_a_full_matrix_product() -> None:
    seed, n = 2**64 - 3, 64
    a = np.stack([np.random.default_rng([seed, 0, i]).integers(-8, 9, size=n) for i in range(n)])
    b = np.stack([np.random.default_rng([seed, 1, j]).integers(-8, 9, size=n) for j in range(n)], axis=1)
    full = a @ b
    pairs = [(0, 0), (5, 63), (63, 5), (17, 17), (5, 0)]
    assert challenge_entries(seed, n, pairs) == [int(full[i, j]) for i, j in pairs]
    assert product_entry(seed, n, 63, 5) == int(full[63, 5])


def test_fp16_inputs_with_fp32_accumulation_are_exact() -> None:
    seed, n = 12345, 4096
    exact = int(a_row(seed, 7, n) @ b_col(seed, 9, n))
    fp32 = np.dot(a_row(seed, 7, n).astype(np.float16).astype(np.float32), b_col(seed, 9, n).astype(np.float16).astype(np.float32))
    assert float(fp32) == exact


def test_pool_and_serial_paths_agree() -> None:
    jobs = [(s, 256, [(s % 256, (s * 7) % 256), (1, 2)]) for s in range(2**63, 2**63 + 40)]
    assert many_challenge_entries(jobs, workers=1) == many_challenge_entries(jobs * 300, workers=2)[: len(jobs)]
