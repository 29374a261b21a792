"""``fleetproof worker answer``: the exact product of the contract's challenge, committed before
the samples, with its timing in parts; bad challenges are refused clearly."""

from __future__ import annotations

import hashlib
import io
import json

import numpy as np
import pytest

from pipelines.cli import main
from pipelines.pow_math import product_entry
from pipelines.worker import answer as answer_mod
from pipelines.worker import gpu
from pipelines.worker.answer import (
    MAX_N,
    Challenge,
    ChallengeError,
    CpuBackend,
    DeviceFault,
    OutOfMemory,
    answer,
    select_backend,
)

HIGH_SEED = 2**64 - 12345  # above 2**63: must never be read as signed


def contract_product(seed: int, n: int) -> np.ndarray:
    """Every entry from the verifier's own function, one at a time."""
    return np.array([[product_entry(seed, n, i, j) for j in range(n)] for i in range(n)], dtype=np.int64)


@pytest.mark.parametrize("n", [1, 17, 40])
def test_cpu_product_equals_the_contract_entry_for_entry(n: int) -> None:
    ans = answer(Challenge("matmul", n, HIGH_SEED), CpuBackend())
    assert np.array_equal(ans.product, contract_product(HIGH_SEED, n))


def test_generation_on_a_process_pool_equals_the_serial_one() -> None:
    from pipelines.worker.answer import build_matrix

    for side in (0, 1):
        serial = build_matrix(HIGH_SEED, side, 48, np.float32, workers=1)
        pooled = build_matrix(HIGH_SEED, side, 48, np.float32, workers=2, min_parallel_n=1)
        assert np.array_equal(serial, pooled)
    a, bt = build_matrix(5, 0, 6, np.int8), build_matrix(5, 1, 6, np.int8)
    assert (a.astype(np.int64) @ bt.T.astype(np.int64))[2, 3] == product_entry(5, 6, 2, 3)


def test_digest_is_sha256_of_the_int32_row_major_product() -> None:
    ans = answer(Challenge("vram", 23, 7), CpuBackend())
    expected = hashlib.sha256(contract_product(7, 23).astype("<i4").tobytes(order="C")).hexdigest()
    assert ans.result_digest == expected
    assert answer(Challenge("vram", 23, 8), CpuBackend()).result_digest != expected


def test_samples_are_the_asked_entries() -> None:
    ans = answer(Challenge("matmul", 64, HIGH_SEED), CpuBackend())
    asked = [[0, 0], [63, 63], [5, 40], [5, 41]]
    assert ans.samples(asked) == [[i, j, product_entry(HIGH_SEED, 64, i, j)] for i, j in asked]


def test_timing_is_reported_in_parts() -> None:
    c = answer(Challenge("matmul", 96, 3), CpuBackend()).commitment()
    assert {"generate_ms", "copy_ms", "compute_ms", "digest_ms"} <= set(c)
    assert c["compute_ms"] > 0 and c["generate_ms"] > 0 and c["copy_ms"] == 0 and c["digest_ms"] >= 0
    assert c["status"] == "ok" and c["backend"] == "cpu" and "samples" not in c


@pytest.mark.parametrize(
    ("kind", "n", "seed", "message"),
    [
        ("matmul", 0, 1, "n must be in 1.."),
        ("matmul", MAX_N + 1, 1, "n must be in 1.."),
        ("matmul", 8, -1, "64-bit unsigned"),
        ("matmul", 8, 2**64, "64-bit unsigned"),
        ("matmul", 8.0, 1, "n must be an integer"),
        ("matmul", 8, True, "seed must be an integer"),
        ("sha", 8, 1, "kind must be one of"),
    ],
)
def test_challenges_outside_the_contract_are_refused(kind, n, seed, message) -> None:
    with pytest.raises(ChallengeError, match=message):
        Challenge(kind, n, seed)


@pytest.mark.parametrize(
    ("positions", "message"),
    [([[0, 8]], r"\[0, 8\] is outside the 8 x 8 product"), ([[-1, 0]], "outside"), ({"i": 1}, "JSON list"),
     ([[1, 2, 3]], r"must be \[i, j\]"), ([[1.0, 2]], "integers")],
)  # fmt: skip
def test_sample_positions_outside_the_product_are_refused(positions, message) -> None:
    ans = answer(Challenge("matmul", 8, 1), CpuBackend())
    with pytest.raises(ChallengeError, match=message):
        ans.samples(positions)


class WrongBackend:
    """A device whose product is off by one in one place (a faulty card, or a cheat)."""

    name, device, input_dtype = "fake-gpu", "Broken Card", np.float32

    def multiply(self, a, bt):
        product, copy_ms, compute_ms = CpuBackend().multiply(a, bt)
        product[0, 0] += 1
        return product, copy_ms, compute_ms


def test_a_device_product_that_disagrees_is_never_committed(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    with pytest.raises(DeviceFault, match=r"wrong at \[0, 0\]"):
        answer(Challenge("matmul", 32, 5), WrongBackend())
    monkeypatch.setattr(answer_mod, "select_backend", lambda name, bus_id=None: WrongBackend())
    assert main(["worker", "answer", "--n", "32", "--seed", "5"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["status"] == "error" and "wrong at [0, 0]" in out["reason"] and "result_digest" not in out


def test_auto_backend_falls_back_to_cpu_and_gpu_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    def unavailable():
        raise gpu.GpuUnavailable("CuPy is not usable (ImportError: No module named 'cupy'); install the gpu extra")

    monkeypatch.setattr(gpu, "load_cupy", unavailable)
    assert isinstance(select_backend("auto"), CpuBackend)
    with pytest.raises(gpu.GpuUnavailable, match="install the gpu extra"):
        select_backend("gpu")


def test_cli_backend_gpu_without_a_gpu_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    def unavailable():
        raise gpu.GpuUnavailable("no CUDA device is usable (CUDARuntimeError: cudaErrorNoDevice)")

    monkeypatch.setattr(gpu, "load_cupy", unavailable)
    assert main(["worker", "answer", "--n", "8", "--seed", "1", "--backend", "gpu"]) == 2
    assert "--backend gpu: no CUDA device is usable" in capsys.readouterr().err


def test_cli_commits_before_reading_the_positions(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    positions = [[3, 4], [31, 0]]
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(positions) + "\n"))
    assert main(["worker", "answer", "--n", "32", "--seed", str(HIGH_SEED), "--backend", "cpu", "--samples-stdin"]) == 0
    commit, sampled = (json.loads(line) for line in capsys.readouterr().out.splitlines())
    assert commit["seed"] == HIGH_SEED and len(commit["result_digest"]) == 64 and "samples" not in commit
    assert sampled == {"samples": [[i, j, product_entry(HIGH_SEED, 32, i, j)] for i, j in positions]}


def test_cli_rejects_a_bad_challenge_with_a_clear_error(capsys) -> None:
    assert main(["worker", "answer", "--n", "16", "--seed", "-5"]) == 2
    assert "seed must be a 64-bit unsigned integer" in capsys.readouterr().err
    assert main(["worker", "answer", "--n", "16", "--seed", "5", "--samples", "[[16, 0]]"]) == 2
    assert "outside the 16 x 16 product" in capsys.readouterr().err


def test_cli_answers_error_when_the_challenge_does_not_fit(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    class Full:
        name, device, input_dtype = "gpu", "Tiny Card", np.float32

        def multiply(self, a, bt):
            raise OutOfMemory("the n=64 challenge does not fit in the GPU's free memory")

    monkeypatch.setattr(answer_mod, "select_backend", lambda name, bus_id=None: Full())
    assert main(["worker", "answer", "--kind", "vram", "--n", "64", "--seed", "9"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["status"] == "error" and "does not fit" in out["reason"]


def test_gpu_is_found_by_its_nvml_bus_id_whatever_cuda_calls_it() -> None:
    cuda_sees = ["0000:3B:00.0", "0000:18:00.0"]  # CUDA puts the faster card first
    assert gpu.cuda_ordinal("00000000:18:00.0", cuda_sees) == 1
    assert gpu.cuda_ordinal("00000000:3b:00.0", cuda_sees) == 0
    with pytest.raises(gpu.GpuUnavailable, match="no CUDA device at PCI bus 00000000:AF:00.0"):
        gpu.cuda_ordinal("00000000:AF:00.0", cuda_sees)
    with pytest.raises(ValueError, match="not a PCI bus id"):
        gpu.normalize_bus_id("18")


def test_cli_gpu_index_is_checked_against_nvml(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    import sys

    from worker_fakes import H100, RTX_4090, NVMLError, fake_pynvml

    from pipelines.worker import report

    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml([H100, RTX_4090]))
    assert report.nvml_bus_id(1) == "00000000:01:00.0"
    assert main(["worker", "answer", "--n", "8", "--seed", "1", "--backend", "gpu", "--gpu-index", "2"]) == 2
    assert "NVML sees 2 GPU(s) (0..1)" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml([], init_error=NVMLError("Driver Not Loaded")))
    assert main(["worker", "answer", "--n", "8", "--seed", "1", "--gpu-index", "0"]) == 2
    assert "--gpu-index needs NVML" in capsys.readouterr().err


def _gpu_works() -> bool:
    try:
        gpu.load_cupy()
    except gpu.GpuUnavailable:
        return False
    return True


@pytest.mark.gpu
@pytest.mark.skipif(not _gpu_works(), reason="needs CuPy and a CUDA GPU (the gpu extra)")
@pytest.mark.parametrize("n", [64, 257, 1024])
def test_gpu_product_equals_the_cpu_product(n: int) -> None:
    challenge = Challenge("matmul", n, HIGH_SEED)
    on_gpu = answer(challenge, gpu.CupyBackend())
    on_cpu = answer(challenge, CpuBackend())
    assert on_gpu.backend == "gpu" and on_gpu.compute_ms > 0
    assert on_gpu.result_digest == on_cpu.result_digest
    assert np.array_equal(on_gpu.product, on_cpu.product)
