"""The worker's proof-of-work answerer: build the contract's A and B, multiply, commit, sample.

A challenge (kind, n, seed) is answered in two steps, as the contract orders them: ``answer``
multiplies and returns the digest of the full product (the commitment), then
``Answer.samples`` gives the entries the backend asks for afterwards, from the product kept
in memory.

Rows of A and columns of B come from ``pipelines.pow_math`` (the same functions the verifier
uses). Entries are integers in [-8, 8], exact in fp16; every product entry is at most
64 * n in magnitude, exact in fp32 for n <= 2**18. So the product is computed with fp16
inputs and fp32 accumulation on an NVIDIA GPU (cuBLAS ``GemmEx`` through CuPy, the ``gpu``
extra) and with fp32 BLAS on the CPU (the same values: fp16 -> fp32 is exact), and both give
the exact integer product.

The digest is sha256 over the product as little-endian int32, row-major (C order): integers,
so -0.0 and +0.0 cannot differ between backends.

Timing is reported in parts so the pipeline's physics can be checked against a real card:
``generate_ms`` (A and B on the CPU), ``copy_ms`` (host to device and back), ``compute_ms``
(the multiplication alone: the contract's ``compute_ms``), ``digest_ms``.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from pipelines.pow_math import a_row, b_col, product_entry

KINDS = ("matmul", "vram")
MAX_N = 262_144
"""The contract's bound: beyond it fp32 accumulation is no longer exact."""
MAX_SEED = 2**64 - 1


class ChallengeError(ValueError):
    """A challenge or sample request that the contract does not allow."""


class AnswerError(RuntimeError):
    """The worker cannot answer correctly: it answers status ``error`` with the reason."""


class OutOfMemory(AnswerError):
    """The challenge's matrices do not fit on the device (a ``vram`` challenge sized beyond
    the card)."""


class DeviceFault(AnswerError):
    """The device's product disagrees with exact entries: a faulty card or driver."""


@dataclass(frozen=True)
class Challenge:
    kind: str
    n: int
    seed: int

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ChallengeError(f"kind must be one of {KINDS}, got {self.kind!r}")
        for name in ("n", "seed"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ChallengeError(f"{name} must be an integer, got {value!r}")
        if not 1 <= self.n <= MAX_N:
            raise ChallengeError(f"n must be in 1..{MAX_N}, got {self.n}")
        if not 0 <= self.seed <= MAX_SEED:
            raise ChallengeError(f"seed must be a 64-bit unsigned integer (0..2**64-1), got {self.seed}")


@dataclass
class Answer:
    """A committed answer; ``product`` stays on the worker until the samples are asked."""

    challenge: Challenge
    backend: str
    device: str
    result_digest: str
    generate_ms: float
    copy_ms: float
    compute_ms: float
    digest_ms: float
    product: np.ndarray = field(repr=False)

    def commitment(self) -> dict[str, Any]:
        """What the worker sends before any sample is asked."""
        c = self.challenge
        return {
            "kind": c.kind, "n": c.n, "seed": c.seed, "status": "ok", "backend": self.backend, "device": self.device,
            "compute_ms": round(self.compute_ms, 3), "generate_ms": round(self.generate_ms, 3),
            "copy_ms": round(self.copy_ms, 3), "digest_ms": round(self.digest_ms, 3),
            "result_digest": self.result_digest,
        }  # fmt: skip

    def samples(self, positions: Any) -> list[list[int]]:
        """``[[i, j, value], ...]`` for the asked ``[[i, j], ...]`` (validated first)."""
        pairs = parse_positions(positions, self.challenge.n)
        if not pairs:
            return []
        idx = np.asarray(pairs, dtype=np.int64)
        values = self.product[idx[:, 0], idx[:, 1]]
        return [[int(i), int(j), int(v)] for (i, j), v in zip(pairs, values.tolist())]


def parse_positions(positions: Any, n: int) -> list[tuple[int, int]]:
    """Sample positions as the backend sends them: a list of ``[i, j]`` integer pairs in range."""
    if not isinstance(positions, list):
        raise ChallengeError(f"sample positions must be a JSON list of [i, j] pairs, got {type(positions).__name__}")
    pairs = []
    for k, p in enumerate(positions):
        ok = isinstance(p, list | tuple) and len(p) == 2 and all(isinstance(x, int) and not isinstance(x, bool) for x in p)
        if not ok:
            raise ChallengeError(f"sample position {k} must be [i, j] with integers, got {p!r}")
        i, j = p
        if not (0 <= i < n and 0 <= j < n):
            raise ChallengeError(f"sample position {k} [{i}, {j}] is outside the {n} x {n} product")
        pairs.append((i, j))
    return pairs


PARALLEL_MIN_N = 2048
"""From this size A and B are generated on a process pool (one generator per row is the
contract's definition, so the work is a Python loop; rows are independent)."""


def _rows(seed: int, side: int, start: int, stop: int, n: int) -> np.ndarray:
    """Rows ``start..stop`` of A (side 0) or of B transposed (side 1), as int8."""
    vector = a_row if side == 0 else b_col
    out = np.empty((stop - start, n), dtype=np.int8)
    for k in range(start, stop):
        out[k - start] = vector(seed, k, n)
    return out


def _pool_context() -> Any:
    """fork on Linux: the children only run numpy's generator (no CUDA, no BLAS), so a CUDA
    context in the parent is never used by them; spawn elsewhere."""
    return multiprocessing.get_context("fork" if sys.platform.startswith("linux") else "spawn")


def build_matrix(seed: int, side: int, n: int, dtype: Any, workers: int | None = None,
                 min_parallel_n: int = PARALLEL_MIN_N) -> np.ndarray:  # fmt: skip
    """A (side 0: row i from ``[seed, 0, i]``) or B transposed (side 1: row j is column j of
    B, from ``[seed, 1, j]``, so each column is one contiguous write and the multiplication
    reads it transposed at no cost), in ``dtype``."""
    out = np.empty((n, n), dtype=dtype)
    workers = workers or min(os.cpu_count() or 1, 16)
    if n < min_parallel_n or workers <= 1:
        out[:] = _rows(seed, side, 0, n, n)
        return out
    step = -(-n // (workers * 4))
    starts = list(range(0, n, step))
    with ProcessPoolExecutor(max_workers=workers, mp_context=_pool_context()) as pool:
        blocks = pool.map(_rows, [seed] * len(starts), [side] * len(starts), starts,
                          [min(s + step, n) for s in starts], [n] * len(starts))  # fmt: skip
        for start, block in zip(starts, blocks):
            out[start : start + block.shape[0]] = block
    return out


def build_a(seed: int, n: int, dtype: Any = np.float32, workers: int | None = None) -> np.ndarray:
    return build_matrix(seed, 0, n, dtype, workers)


def build_bt(seed: int, n: int, dtype: Any = np.float32, workers: int | None = None) -> np.ndarray:
    return build_matrix(seed, 1, n, dtype, workers)


def digest(product: np.ndarray) -> str:
    """sha256 of the product as little-endian int32, row-major."""
    return hashlib.sha256(np.ascontiguousarray(product, dtype="<i4").data).hexdigest()


class Backend(Protocol):
    name: str
    device: str
    input_dtype: Any
    """The host dtype A and B are generated in (exact for the entries in [-8, 8])."""

    def multiply(self, a: np.ndarray, bt: np.ndarray) -> tuple[np.ndarray, float, float]:
        """(int32 product, copy_ms, compute_ms) for A @ Bt.T, the inputs as fp16 on a GPU."""
        ...


class CpuBackend:
    """numpy's fp32 BLAS: the fp16 inputs' exact values in fp32, FP32 accumulation; always
    available. Nothing is copied (``copy_ms`` is 0)."""

    name = "cpu"
    input_dtype = np.float32

    def __init__(self) -> None:
        from pipelines.worker.report import cpu_model

        self.device = cpu_model()

    def multiply(self, a: np.ndarray, bt: np.ndarray) -> tuple[np.ndarray, float, float]:
        try:
            started = time.perf_counter()
            c = a @ bt.T
            compute_ms = (time.perf_counter() - started) * 1000
            return c.astype(np.int32), 0.0, compute_ms
        except MemoryError as e:
            raise OutOfMemory(f"the {a.shape[0]} x {a.shape[0]} product does not fit in host memory") from e


def select_backend(name: str = "auto", bus_id: str | None = None) -> Backend:
    """``cpu``, ``gpu`` (CuPy; an error when it cannot start) or ``auto`` (GPU if one works).
    ``bus_id`` picks the GPU (its NVML ``pci_bus_id``); default: CUDA device 0."""
    if name not in ("auto", "cpu", "gpu"):
        raise ChallengeError(f"backend must be auto, cpu or gpu, got {name!r}")
    if name == "cpu":
        return CpuBackend()
    from pipelines.worker.gpu import CupyBackend, GpuUnavailable

    try:
        return CupyBackend(bus_id)
    except GpuUnavailable:
        if name == "gpu":
            raise
        return CpuBackend()


def answer(challenge: Challenge, backend: Backend | None = None) -> Answer:
    """Build A and B, multiply with fp16 inputs and fp32 accumulation, commit to the digest."""
    backend = backend or CpuBackend()
    started = time.perf_counter()
    try:
        a = build_a(challenge.seed, challenge.n, backend.input_dtype)
        bt = build_bt(challenge.seed, challenge.n, backend.input_dtype)
    except MemoryError as e:
        raise OutOfMemory(f"A and B at n={challenge.n} do not fit in host memory") from e
    generate_ms = (time.perf_counter() - started) * 1000
    product, copy_ms, compute_ms = backend.multiply(a, bt)
    del a, bt
    if backend.name != "cpu":
        self_check(challenge, product)
    started = time.perf_counter()
    result = digest(product)
    digest_ms = (time.perf_counter() - started) * 1000
    return Answer(challenge, backend.name, backend.device, result, generate_ms, copy_ms, compute_ms, digest_ms, product)


def self_check(challenge: Challenge, product: np.ndarray) -> None:
    """Recompute a few entries (corners and the centre) exactly; raise when the device's
    product disagrees, so a broken card never commits a wrong digest."""
    n = challenge.n
    for i, j in {(0, 0), (n - 1, n - 1), (0, n - 1), (n // 2, n // 3)}:
        expected = product_entry(challenge.seed, n, i, j)
        if int(product[i, j]) != expected:
            raise DeviceFault(f"the device's product is wrong at [{i}, {j}]: {int(product[i, j])}, expected {expected}")
