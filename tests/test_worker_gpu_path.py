"""The GPU path's plumbing without a GPU: a fake CuPy whose ``gemmEx`` follows cuBLAS's
column-major definition (op, leading dimensions, data and compute types), so the operand
order, transposes and types the worker passes are checked against the specification."""

from __future__ import annotations

import ctypes
import itertools
import types
from typing import ClassVar

import numpy as np
import pytest

from pipelines.worker import gpu
from pipelines.worker.answer import Challenge, CpuBackend, OutOfMemory, answer

OP_N, OP_T = 0, 1


class FakeArray:
    registry: ClassVar[dict[int, FakeArray]] = {}
    _ids = itertools.count(0x1000, 0x1000)

    def __init__(self, arr: np.ndarray) -> None:
        self.arr = np.ascontiguousarray(arr)
        self.data = types.SimpleNamespace(ptr=next(self._ids))
        FakeArray.registry[self.data.ptr] = self

    def astype(self, dtype) -> FakeArray:
        return FakeArray(self.arr.astype(dtype))


def column_major(buffer: np.ndarray, rows: int, cols: int, ld: int) -> np.ndarray:
    """A view of a flat buffer as cuBLAS reads it: ``rows x cols``, column-major, leading dimension ``ld``."""
    return buffer.reshape(-1)[: ld * cols].reshape(cols, ld).T[:rows, :]


def fake_gemm_ex(handle, transa, transb, m, n, k, alpha, a, atype, lda, b, btype, ldb, beta, c, ctype, ldc,
                 compute, algo) -> None:  # fmt: skip
    """C (m x n) = alpha op(A) op(B) + beta C, every matrix column-major, as cuBLAS defines it."""
    assert (atype, btype, ctype, compute) == (gpu.CUDA_R_16F, gpu.CUDA_R_16F, gpu.CUDA_R_32F, gpu.CUBLAS_COMPUTE_32F)
    A, B, C = (FakeArray.registry[p].arr for p in (a, b, c))
    assert A.dtype == np.float16 and B.dtype == np.float16 and C.dtype == np.float32
    op_a = column_major(A, m, k, lda) if transa == OP_N else column_major(A, k, m, lda).T
    op_b = column_major(B, k, n, ldb) if transb == OP_N else column_major(B, n, k, ldb).T
    alpha_v, beta_v = ctypes.c_float.from_address(alpha).value, ctypes.c_float.from_address(beta).value
    out = column_major(C, m, n, ldc)
    product = alpha_v * (op_a.astype(np.float32) @ op_b.astype(np.float32))
    out[:] = product if beta_v == 0 else product + beta_v * out  # with beta 0, C is never read


def fake_cupy(bus_ids: list[str], out_of_memory: bool = False) -> tuple[types.ModuleType, types.ModuleType]:
    cp = types.ModuleType("cupy")
    current = {"device": 0}

    class OutOfMemoryError(Exception):
        pass

    class Device:
        def __init__(self, k: int = 0) -> None:
            self.id, self.pci_bus_id = k, bus_ids[k]

        def __enter__(self):
            self.previous, current["device"] = current["device"], self.id
            return self

        def __exit__(self, *exc) -> None:
            current["device"] = self.previous

    class Event:
        def record(self, stream=None) -> None: ...

        def synchronize(self) -> None: ...

    def asarray(arr):
        if out_of_memory and arr.shape[0] > 256:
            raise OutOfMemoryError("out of memory allocating 1,073,741,824 bytes")
        return FakeArray(arr)

    cp.float16, cp.float32, cp.int32 = np.float16, np.float32, np.int32
    cp.asarray = asarray
    cp.empty = lambda shape, dtype: FakeArray(np.full(shape, np.nan, dtype=dtype))  # garbage, as on a device
    cp.asnumpy = lambda a: a.arr.copy()
    cp.get_default_memory_pool = lambda: types.SimpleNamespace(free_all_blocks=lambda: None)
    cp.cuda = types.SimpleNamespace(
        runtime=types.SimpleNamespace(getDeviceCount=lambda: len(bus_ids),
                                      getDeviceProperties=lambda k: {"name": f"Fake GPU {k}".encode()}),
        Device=Device, Event=Event, get_elapsed_time=lambda begin, end: 1.5,
        get_current_stream=lambda: types.SimpleNamespace(synchronize=lambda: None),
        device=types.SimpleNamespace(get_cublas_handle=lambda: ("handle", current["device"])),
        memory=types.SimpleNamespace(OutOfMemoryError=OutOfMemoryError),
    )  # fmt: skip
    cublas = types.ModuleType("cublas")
    cublas.CUBLAS_POINTER_MODE_HOST = 0
    cublas.getPointerMode = lambda handle: 1
    cublas.setPointerMode = lambda handle, mode: None
    cublas.gemmEx = fake_gemm_ex
    cp.devices_used = current
    return cp, cublas


@pytest.mark.parametrize("n", [1, 37, 64])
def test_gemm_ex_call_gives_the_row_major_product(monkeypatch: pytest.MonkeyPatch, n: int) -> None:
    monkeypatch.setattr(gpu, "load_cupy", lambda: fake_cupy(["0000:18:00.0"]))
    challenge = Challenge("matmul", n, 2**64 - 3)
    on_gpu = answer(challenge, gpu.CupyBackend())
    on_cpu = answer(challenge, CpuBackend())
    assert on_gpu.backend == "gpu" and on_gpu.device == "Fake GPU 0" and on_gpu.compute_ms == 1.5
    assert np.array_equal(on_gpu.product, on_cpu.product) and on_gpu.result_digest == on_cpu.result_digest


def test_the_gpu_is_chosen_by_pci_bus_id(monkeypatch: pytest.MonkeyPatch) -> None:
    cp, cublas = fake_cupy(["0000:3B:00.0", "0000:18:00.0"])
    monkeypatch.setattr(gpu, "load_cupy", lambda: (cp, cublas))
    backend = gpu.CupyBackend("00000000:18:00.0")
    assert (backend.ordinal, backend.device, backend.pci_bus_id) == (1, "Fake GPU 1", "0000:18:00.0")
    seen = []
    original = cublas.gemmEx
    cublas.gemmEx = lambda handle, *args: (seen.append(handle), original(handle, *args))
    answer(Challenge("matmul", 8, 1), backend)
    assert seen == [("handle", 1)]  # the multiplication ran with device 1 current


def test_a_challenge_beyond_the_gpu_memory_answers_out_of_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gpu, "load_cupy", lambda: fake_cupy(["0000:18:00.0"], out_of_memory=True))
    backend = gpu.CupyBackend()
    with pytest.raises(OutOfMemory, match="n=512 challenge does not fit in the GPU's free memory"):
        answer(Challenge("vram", 512, 1), backend)
