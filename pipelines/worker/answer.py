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
import time
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


class OutOfMemory(RuntimeError):
    """The challenge's matrices do not fit on the device (a ``vram`` challenge sized beyond
    the card): the worker answers status ``error``."""


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


def build_a(seed: int, n: int, dtype: Any = np.float32) -> np.ndarray:
    """A, row i from the contract's generator ``[seed, 0, i]``."""
    a = np.empty((n, n), dtype=dtype)
    for i in range(n):
        a[i] = a_row(seed, i, n)
    return a


def build_bt(seed: int, n: int, dtype: Any = np.float32) -> np.ndarray:
    """B transposed (row j is column j of B, from ``[seed, 1, j]``), so each column is one
    contiguous write; the multiplication reads it transposed at no cost."""
    bt = np.empty((n, n), dtype=dtype)
    for j in range(n):
        bt[j] = b_col(seed, j, n)
    return bt


def digest(product: np.ndarray) -> str:
    """sha256 of the product as little-endian int32, row-major."""
    return hashlib.sha256(np.ascontiguousarray(product, dtype="<i4").data).hexdigest()


class Backend(Protocol):
    name: str
    device: str

    def multiply(self, a16: np.ndarray, bt16: np.ndarray) -> tuple[np.ndarray, float, float]:
        """(int32 product, copy_ms, compute_ms) for A @ Bt.T with fp16 inputs."""
        ...


class CpuBackend:
    """numpy's fp32 BLAS: exact for the challenge's values, always available."""

    name = "cpu"

    def __init__(self) -> None:
        from pipelines.worker.report import cpu_model

        self.device = cpu_model()

    def multiply(self, a16: np.ndarray, bt16: np.ndarray) -> tuple[np.ndarray, float, float]:
        try:
            started = time.perf_counter()
            a, bt = a16.astype(np.float32), bt16.astype(np.float32)
            copy_ms = (time.perf_counter() - started) * 1000
            started = time.perf_counter()
            c = a @ bt.T
            compute_ms = (time.perf_counter() - started) * 1000
            return c.astype(np.int32), copy_ms, compute_ms
        except MemoryError as e:
            raise OutOfMemory(f"the {a16.shape[0]} x {a16.shape[0]} product does not fit in host memory") from e


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
        a16 = build_a(challenge.seed, challenge.n, np.float16)
        bt16 = build_bt(challenge.seed, challenge.n, np.float16)
    except MemoryError as e:
        raise OutOfMemory(f"A and B at n={challenge.n} do not fit in host memory") from e
    generate_ms = (time.perf_counter() - started) * 1000
    product, copy_ms, compute_ms = backend.multiply(a16, bt16)
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
            raise RuntimeError(f"the device's product is wrong at [{i}, {j}]: {int(product[i, j])}, expected {expected}")
