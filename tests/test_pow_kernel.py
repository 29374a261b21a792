"""The compiled PoW kernel reproduces numpy's generator bit for bit and the contract's entries."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pipelines.pow_kernel import vector
from pipelines.pow_math import N_MAX, product_entry, sample_entries

ZERO_WORD_STREAM = (2**63 + 13068, 0, 7, 160_000)
"""(seed, side, index, n): PCG64 output 76 220 of this stream has a zero low half."""
EDGE_SEEDS = [0, 1, 2**32 - 1, 2**32, 2**63 - 1, 2**63, 2**64 - 1]


def _numpy_vector(seed: int, side: int, index: int, n: int) -> np.ndarray:
    return np.random.default_rng([seed, side, index]).integers(-8, 9, size=n)


def _random_seeds(count: int, rng: np.random.Generator) -> list[int]:
    """Seeds over the full unsigned range, half of them above 2**63, plus short ones."""
    wide = rng.integers(0, 2**64, count, dtype=np.uint64).tolist()
    high = (rng.integers(0, 2**63, count, dtype=np.uint64) | np.uint64(2**63)).tolist()
    short = rng.integers(0, 2**32, count, dtype=np.uint64).tolist()
    return [int(s) for s in wide + high + short]


def test_vectors_match_numpy_on_random_seeds_over_the_full_64_bit_range() -> None:
    rng = np.random.default_rng(20240814)
    seeds = EDGE_SEEDS + _random_seeds(60, rng)
    assert any(s >= 2**63 for s in seeds)
    for k, seed in enumerate(seeds):
        side, index, n = k % 2, int(rng.integers(0, N_MAX)), int(rng.integers(1, 600))
        assert np.array_equal(vector(seed, side, index, n), _numpy_vector(seed, side, index, n)), (seed, side, index, n)


@pytest.mark.parametrize("n", [1, 2, 3, 256, 4096, 8192, 51712, N_MAX])
def test_vectors_match_numpy_for_the_sizes_the_contract_and_simulator_use(n: int) -> None:
    for seed, side, index in [(2**64 - 1, 0, n - 1), (2**63 + 5, 1, 0), (123456789, 1, n // 2)]:
        assert np.array_equal(vector(seed, side, index, n), _numpy_vector(seed, side, index, n))


def test_entries_match_numpy_for_mixed_challenges_in_any_order() -> None:
    """Several rows per challenge, more than two columns on a row (the stored-row path),
    a column shared by two rows, duplicated samples, and a shuffled input."""
    rng = np.random.default_rng(7)
    seed, n, i, j = [], [], [], []
    for s in _random_seeds(6, rng):
        size = int(rng.integers(1, 300))
        rows = rng.integers(0, size, 3)
        for r in rows:
            cols = rng.integers(0, size, int(rng.integers(1, 6)))
            for c in list(cols) + [cols[0]]:  # a duplicate of the first sample
                seed.append(s), n.append(size), i.append(int(r)), j.append(int(c))
        seed.append(s), n.append(size), i.append(int(rows[1])), j.append(j[-2])  # a shared column
    order = rng.permutation(len(seed))
    seed_a = np.array(seed, dtype=np.uint64)[order]
    n_a, i_a, j_a = (np.array(x, dtype=np.int64)[order] for x in (n, i, j))
    got = sample_entries(seed_a, n_a, i_a, j_a)
    expected = [product_entry(int(s), int(m), int(a), int(b)) for s, m, a, b in zip(seed_a, n_a, i_a, j_a)]
    assert got.tolist() == expected
    assert sample_entries(seed_a, n_a, i_a, j_a, threads=1).tolist() == expected


def test_entries_of_large_challenges_match_a_full_matrix_product_row() -> None:
    seed, n = 2**64 - 3, 8192
    a = _numpy_vector(seed, 0, 4000, n)
    cols = [0, 8191, 77]
    expected = [int(a @ _numpy_vector(seed, 1, c, n)) for c in cols]
    got = sample_entries(np.full(3, seed, np.uint64), np.full(3, n), np.full(3, 4000), np.array(cols))
    assert got.tolist() == expected


def test_a_skipped_generator_word_is_skipped_as_numpy_does() -> None:
    """numpy redraws a 32-bit word equal to 0 (Lemire's rejection for 17 values): the stream of
    this stream contains one before its n-th value."""
    seed, side, index, n = ZERO_WORD_STREAM
    raw = np.random.default_rng([seed, side, index]).bit_generator.random_raw(n // 2)
    assert ((raw & np.uint64(0xFFFFFFFF)) == 0).any()
    assert np.array_equal(vector(seed, side, index, n), _numpy_vector(seed, side, index, n))


@pytest.mark.parametrize(
    ("seed", "n", "i", "j", "message"),
    [
        ([-1], [4], [0], [0], "unsigned"),
        ([1], [0], [0], [0], "n must be in"),
        ([1], [N_MAX + 1], [0], [0], "n must be in"),
        ([1], [4], [4], [0], "outside"),
        ([1], [4], [0], [-1], "outside"),
        ([1, 2], [4], [0], [0], "same length"),
        ([1.5], [4], [0], [0], "integers"),
    ],
)
def test_bad_samples_are_a_clear_error(seed, n, i, j, message) -> None:
    with pytest.raises(ValueError, match=message):
        sample_entries(np.array(seed), np.array(n), np.array(i), np.array(j))


def test_no_samples_give_no_entries() -> None:
    assert sample_entries(np.array([], np.uint64), np.array([], int), np.array([], int), np.array([], int)).size == 0


def _numpy_entries(seed: np.ndarray, n: np.ndarray, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """The contract's definition, one numpy generator per vector: the path before the kernel."""
    return np.array([product_entry(int(s), int(m), int(a), int(b)) for s, m, a, b in zip(seed, n, i, j)], dtype=np.int64)


def _tree_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.slow
def test_drops_and_outputs_are_byte_identical_with_the_numpy_generator(tmp_path: Path, monkeypatch) -> None:
    """A small network simulated and run with the compiled kernel and with numpy's generator:
    every drop file and every exported file is the same, byte for byte."""
    from pipelines import features
    from pipelines.cli import main
    from pipelines.simulate import hours

    def simulate_and_run(root: Path, entries) -> tuple[dict[str, bytes], dict[str, bytes]]:
        with monkeypatch.context() as m:
            m.setattr(hours, "sample_entries", entries)
            m.setattr(features, "sample_entries", entries)
            assert main(["simulate", "--out", str(root / "drops"), "--devices", "150", "--hours", "1", "--seed", "5"]) == 0
            assert main(["run", "--drops", str(root / "drops"), "--db", str(root / "fp.duckdb"), "--out", str(root / "out")]) == 0
        return _tree_bytes(root / "drops"), _tree_bytes(root / "out")

    kernel_drops, kernel_out = simulate_and_run(tmp_path / "kernel", sample_entries)
    numpy_drops, numpy_out = simulate_and_run(tmp_path / "numpy", _numpy_entries)
    assert any(name.startswith("2") and "pow" in name for name in kernel_drops)
    assert any("device_tiers" in name for name in kernel_out)
    assert kernel_drops == numpy_drops
    assert kernel_out == numpy_out
