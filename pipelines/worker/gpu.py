"""The GPU path of the answerer: cuBLAS ``GemmEx`` through CuPy (the optional ``gpu`` extra).

A and B go to the device as int8 and become fp16 there, one ``GemmEx`` call multiplies them with FP32 compute
(``CUBLAS_COMPUTE_32F``) into an fp32 product, the product becomes int32 on the device and
comes back for the digest and the samples. CuPy exposes ``GemmEx`` directly, so the output
can be fp32 while the inputs are fp16: the exact integer product needs it (entries reach
64 * n, far beyond fp16's 65504), and it is the same tensor-core path the catalogue's dense
fp16/fp32-accumulate figure describes.

``compute_ms`` is the ``GemmEx`` call alone, timed with CUDA events on the stream.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from pipelines.worker.answer import OutOfMemory

CUDA_R_16F = 2
CUDA_R_32F = 0
CUBLAS_COMPUTE_32F = 68
CUBLAS_GEMM_DEFAULT = -1
CUBLAS_OP_N, CUBLAS_OP_T = 0, 1
"""cuBLAS enum values (``library_types.h``, ``cublas_api.h``); stable across CUDA 11-13."""


class GpuUnavailable(RuntimeError):
    """CuPy is not installed or no CUDA device works here."""


def load_cupy() -> Any:
    try:
        import cupy
        from cupy_backends.cuda.libs import cublas
    except Exception as e:  # ImportError, or a CUDA library that fails to load
        raise GpuUnavailable(f"CuPy is not usable ({type(e).__name__}: {e}); install the gpu extra") from e
    try:
        if cupy.cuda.runtime.getDeviceCount() < 1:
            raise GpuUnavailable("CuPy found no CUDA device")
    except GpuUnavailable:
        raise
    except Exception as e:  # cudaErrorNoDevice, a driver too old for the runtime, ...
        raise GpuUnavailable(f"no CUDA device is usable ({type(e).__name__}: {e})") from e
    return cupy, cublas


def normalize_bus_id(bus_id: str) -> str:
    """NVML's ``00000000:18:00.0`` and CUDA's ``0000:18:00.0`` as one form: ``0000:18:00.0``."""
    domain, _, rest = bus_id.strip().lower().partition(":")
    if not rest:
        raise ValueError(f"not a PCI bus id: {bus_id!r}")
    return f"{int(domain, 16):04x}:{rest}"


def cuda_ordinal(bus_id: str, cuda_bus_ids: list[str]) -> int:
    """The CUDA device number of the GPU at ``bus_id`` (CUDA and NVML may number GPUs
    differently: CUDA puts the fastest first unless ``CUDA_DEVICE_ORDER=PCI_BUS_ID``)."""
    want = normalize_bus_id(bus_id)
    for ordinal, seen in enumerate(cuda_bus_ids):
        if normalize_bus_id(seen) == want:
            return ordinal
    raise GpuUnavailable(f"no CUDA device at PCI bus {bus_id}; CUDA sees {cuda_bus_ids}")


class CupyBackend:
    """fp16 x fp16 -> fp32 on one CUDA device: the one at ``bus_id`` (a GPU of the report),
    else CUDA device 0."""

    name = "gpu"
    input_dtype = np.int8
    """A and B travel as int8 (half of fp16's bytes) and become fp16 on the device."""

    def __init__(self, bus_id: str | None = None) -> None:
        self.cp, self.cublas = load_cupy()
        runtime = self.cp.cuda.runtime
        buses = [str(self.cp.cuda.Device(k).pci_bus_id) for k in range(runtime.getDeviceCount())]
        self.ordinal = cuda_ordinal(bus_id, buses) if bus_id else 0
        name = runtime.getDeviceProperties(self.ordinal)["name"]
        self.device = name.decode() if isinstance(name, bytes) else str(name)
        self.pci_bus_id = buses[self.ordinal]
        """``0000:18:00.0``: the key to this GPU's NVML row."""
        # the first cuBLAS call creates the handle and loads kernels: not part of any answer
        warm = np.ones((256, 256), dtype=self.input_dtype)
        self.multiply(warm, warm)

    def _gemm(self, a: Any, bt: Any, c: Any, n: int) -> None:
        """Row-major C = A @ Bt.T: column-major C^T = op_T(Bt^T) @ A^T, i.e. GemmEx(T, N, Bt, A)."""
        cublas = self.cublas
        handle = self.cp.cuda.device.get_cublas_handle()
        one, zero = np.ones(1, np.float32), np.zeros(1, np.float32)
        mode = cublas.getPointerMode(handle)
        cublas.setPointerMode(handle, cublas.CUBLAS_POINTER_MODE_HOST)
        try:
            cublas.gemmEx(handle, CUBLAS_OP_T, CUBLAS_OP_N, n, n, n,
                          one.ctypes.data, bt.data.ptr, CUDA_R_16F, n, a.data.ptr, CUDA_R_16F, n,
                          zero.ctypes.data, c.data.ptr, CUDA_R_32F, n,
                          CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT)  # fmt: skip
        finally:
            cublas.setPointerMode(handle, mode)

    def multiply(self, a: np.ndarray, bt: np.ndarray) -> tuple[np.ndarray, float, float]:
        with self.cp.cuda.Device(self.ordinal):
            return self._multiply_here(a, bt)

    def _multiply_here(self, a8: np.ndarray, bt8: np.ndarray) -> tuple[np.ndarray, float, float]:
        cp = self.cp
        n = a8.shape[0]
        stream = cp.cuda.get_current_stream()
        try:
            started = time.perf_counter()
            a, bt = cp.asarray(a8).astype(cp.float16), cp.asarray(bt8).astype(cp.float16)
            c = cp.empty((n, n), dtype=cp.float32)
            stream.synchronize()
            upload_ms = (time.perf_counter() - started) * 1000
            begin, end = cp.cuda.Event(), cp.cuda.Event()
            begin.record(stream)
            self._gemm(a, bt, c, n)
            end.record(stream)
            end.synchronize()
            compute_ms = cp.cuda.get_elapsed_time(begin, end)
            del a, bt
            started = time.perf_counter()
            product = cp.asnumpy(c.astype(cp.int32))
            download_ms = (time.perf_counter() - started) * 1000
            del c
        except cp.cuda.memory.OutOfMemoryError as e:
            raise OutOfMemory(f"the n={n} challenge does not fit in the GPU's free memory") from e
        finally:
            cp.get_default_memory_pool().free_all_blocks()
        return product, upload_ms + download_ms, float(compute_ms)
