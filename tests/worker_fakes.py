"""A fake ``pynvml`` for the worker tests: GPUs described as dicts, any call can raise."""

from __future__ import annotations

import types
from typing import Any


class NVMLError(Exception):
    """Stands in for ``pynvml.NVMLError`` (the collector treats every exception alike)."""


NOT_SUPPORTED = NVMLError("Not Supported")

H100 = {
    "name": "NVIDIA H100 80GB HBM3", "uuid": "GPU-0d3a0a7e-1111-2222-3333-444455556666", "serial": "1654123456789",
    "bus_id": b"00000000:18:00.0", "memory_total": 85_520_809_984, "virtualization": 0, "mig": [0, 0],
    "power_limit_mw": 700_000, "sm_clock_max": 1980,
}  # fmt: skip
RTX_4090 = {
    "name": "NVIDIA GeForce RTX 4090", "uuid": "GPU-9f8e7d6c-aaaa-bbbb-cccc-ddddeeeeffff", "serial": NOT_SUPPORTED,
    "bus_id": b"00000000:01:00.0", "memory_total": 25_757_220_864, "virtualization": 0, "mig": NOT_SUPPORTED,
    "power_limit_mw": 450_000, "sm_clock_max": 3105,
}  # fmt: skip


def fake_pynvml(gpus: list[dict[str, Any]], *, init_error: Exception | None = None, count_error: Exception | None = None,
                driver: str = "550.54.15", cuda: int = 12040) -> types.ModuleType:  # fmt: skip
    """A module with pynvml's names; a dict value that is an exception is raised by its getter."""
    nv = types.ModuleType("pynvml")
    nv.NVMLError = NVMLError
    nv.calls = []

    def give(index: int, key: str) -> Any:
        value = gpus[index][key]
        if isinstance(value, Exception):
            raise value
        return value

    def init() -> None:
        nv.calls.append("init")
        if init_error:
            raise init_error

    def count() -> int:
        if count_error:
            raise count_error
        return len(gpus)

    nv.nvmlInit = init
    nv.nvmlShutdown = lambda: nv.calls.append("shutdown")
    nv.nvmlDeviceGetCount = count
    nv.nvmlSystemGetDriverVersion = lambda: driver
    nv.nvmlSystemGetCudaDriverVersion = lambda: cuda
    nv.nvmlDeviceGetHandleByIndex = lambda i: i
    nv.nvmlDeviceGetName = lambda h: give(h, "name")
    nv.nvmlDeviceGetUUID = lambda h: give(h, "uuid")
    nv.nvmlDeviceGetSerial = lambda h: give(h, "serial")
    nv.nvmlDeviceGetPciInfo = lambda h: types.SimpleNamespace(busId=give(h, "bus_id"))
    nv.nvmlDeviceGetMemoryInfo = lambda h: types.SimpleNamespace(total=give(h, "memory_total"))
    nv.nvmlDeviceGetVirtualizationMode = lambda h: give(h, "virtualization")
    nv.nvmlDeviceGetMigMode = lambda h: give(h, "mig")
    nv.nvmlDeviceGetPowerManagementLimit = lambda h: give(h, "power_limit_mw")
    nv.nvmlDeviceGetMaxClockInfo = lambda h, clock: give(h, "sm_clock_max")
    return nv
