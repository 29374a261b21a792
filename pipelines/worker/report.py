"""What a worker reports about its host and GPUs: the contract's ``hardware`` rows, one per GPU.

GPU fields come from NVML (``pynvml``, from the ``nvidia-ml-py`` package) and nothing else, so
an owner can check every value with ``nvidia-smi``. A field NVML cannot read on this card
(``Not Supported`` for the serial of most consumer cards, MIG on cards without it) is sent as
null and listed in ``unreadable`` with NVML's reason. Without NVML at all (no driver, a Mac, a
container without GPUs) the report says why, still carries the host fields, and an Apple
silicon Mac reports its SoC with the contract's nulls for every NVML field.

Fields only the backend knows (``device_id``, ``ip``, ``asn``, ``country``, the speed test's
``bandwidth_*``) are null here and named in ``BACKEND_FIELDS``; the backend fills them.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import platform
import subprocess
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from pipelines.contract import HARDWARE

BACKEND_FIELDS = ("device_id", "ip", "asn", "country", "bandwidth_down_mbps", "bandwidth_up_mbps")
"""Contract columns the worker cannot know: the backend assigns or measures them."""

VIRTUALIZATION_MODES = {0: "NONE", 1: "PASSTHROUGH", 2: "VGPU", 3: "HOST_VGPU", 4: "HOST_VSGA"}
"""NVML's ``nvmlGpuVirtualizationMode_t`` values, named as the contract names them."""

NVML_CLOCK_SM = 1
NVML_DEVICE_MIG_ENABLE = 1
MACHINE_ID_FILES = (Path("/etc/machine-id"), Path("/var/lib/dbus/machine-id"))


@dataclass
class Report:
    """One collection: the host, the NVML outcome, and a contract row per readable GPU."""

    host: dict[str, Any]
    nvml: dict[str, Any]
    """``available`` (bool), ``error`` (why not, or null), ``driver_version``, ``cuda_version``,
    ``unreadable`` (system fields NVML refused, with its reason)."""
    hardware: list[dict[str, Any]] = field(default_factory=list)
    """Rows with exactly the contract's ``hardware`` columns, in contract order."""
    unreadable: list[dict[str, Any]] = field(default_factory=list)
    """Per GPU, the NVML fields that could not be read and NVML's reason (sent as null)."""
    skipped: list[dict[str, Any]] = field(default_factory=list)
    """GPUs left out because a field the contract requires (name, memory) could not be read."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "nvml": self.nvml,
            "host": self.host,
            "filled_by_backend": list(BACKEND_FIELDS),
            "hardware_columns": HARDWARE.column_names,
            "hardware": self.hardware,
            "unreadable": self.unreadable,
            "skipped": self.skipped,
        }


# ----------------------------------------------------------------------------- host


def _run(cmd: list[str]) -> str | None:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=5, check=True).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def machine_id() -> str | None:
    """The OS's stable machine identifier (systemd machine-id; IOPlatformUUID on macOS)."""
    for path in MACHINE_ID_FILES:
        try:
            value = path.read_text().strip()
        except OSError:
            continue
        if value:
            return value
    if platform.system() == "Darwin":
        out = _run(["ioreg", "-rd1", "-c", "IOPlatformExpertDevice"]) or ""
        for line in out.splitlines():
            if "IOPlatformUUID" in line:
                return line.split("=")[-1].strip().strip('"')
    return None


def cpu_model() -> str:
    """The CPU's marketing name (``/proc/cpuinfo`` model name, ``sysctl`` on macOS)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith(("model name", "hardware", "cpu model")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    if platform.system() == "Darwin":
        name = _run(["sysctl", "-n", "machdep.cpu.brand_string"])
        if name:
            return name
    return platform.processor() or platform.machine() or "unknown"


def physical_macs() -> list[str]:
    """MAC addresses of physical network interfaces, sorted (virtual ones such as docker0 or
    veth* come and go with containers and would make the fingerprint unstable)."""
    net = Path("/sys/class/net")
    if net.is_dir():
        macs = set()
        for iface in net.iterdir():
            if not (iface / "device").exists():
                continue
            try:
                mac = (iface / "address").read_text().strip().lower()
            except OSError:
                continue
            if mac and mac != "00:00:00:00:00:00":
                macs.add(mac)
        return sorted(macs)
    import uuid

    node = uuid.getnode()
    if node >> 40 & 1:  # multicast bit: a random number, not a real MAC
        return []
    return [":".join(f"{node >> s & 0xFF:02x}" for s in range(40, -8, -8))]


def host_fingerprint(mid: str | None, cpu: str, macs: list[str]) -> str:
    """sha256 of machine-id, CPU model and physical MACs: the same host gives the same value
    under every account; the identifiers themselves never leave the machine."""
    return hashlib.sha256(f"{mid or ''}|{cpu}|{','.join(macs)}".encode()).hexdigest()


def ram_gb() -> int:
    try:
        return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30)
    except (ValueError, OSError, AttributeError):
        return 0


def os_name() -> str:
    return {"Linux": "linux", "Darwin": "macos", "Windows": "windows"}.get(platform.system(), platform.system().lower())


def worker_version() -> str:
    try:
        return version("fleetproof")
    except PackageNotFoundError:
        return "unknown"


def collect_host() -> dict[str, Any]:
    """The contract's host columns for this machine."""
    cpu = cpu_model()
    return {
        "host_fingerprint": host_fingerprint(machine_id(), cpu, physical_macs()),
        "os": os_name(),
        "worker_version": worker_version(),
        "cpu_model": cpu,
        "cpu_cores": os.cpu_count() or 1,
        "ram_gb": ram_gb(),
    }


# ----------------------------------------------------------------------------- NVML


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _error_text(e: BaseException) -> str:
    return f"{type(e).__name__}: {e}"


def load_nvml() -> Any:
    """The ``pynvml`` module (``nvidia-ml-py``); ImportError when the package is missing."""
    return importlib.import_module("pynvml")


def _read_gpu(nv: Any, index: int) -> tuple[dict[str, Any], dict[str, str]]:
    """One GPU's NVML fields; a field NVML refuses is None, its reason in the second dict."""
    handle = nv.nvmlDeviceGetHandleByIndex(index)
    readers = {
        "gpu_model": lambda: _text(nv.nvmlDeviceGetName(handle)).strip(),
        "gpu_uuid": lambda: _text(nv.nvmlDeviceGetUUID(handle)),
        "gpu_serial": lambda: _text(nv.nvmlDeviceGetSerial(handle)).strip() or None,
        "pci_bus_id": lambda: _text(nv.nvmlDeviceGetPciInfo(handle).busId),
        "vram_total_mb": lambda: int(nv.nvmlDeviceGetMemoryInfo(handle).total) // 2**20,
        "virtualization_mode": lambda: VIRTUALIZATION_MODES[int(nv.nvmlDeviceGetVirtualizationMode(handle))],
        "mig_mode": lambda: int(nv.nvmlDeviceGetMigMode(handle)[0]) == NVML_DEVICE_MIG_ENABLE,
        "power_limit_w": lambda: round(int(nv.nvmlDeviceGetPowerManagementLimit(handle)) / 1000),
        "sm_clock_max_mhz": lambda: int(nv.nvmlDeviceGetMaxClockInfo(handle, NVML_CLOCK_SM)),
    }
    values: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for name, read in readers.items():
        try:
            values[name] = read()
        except Exception as e:  # noqa: BLE001 - NVML raises NVMLError subclasses per field; all mean "unreadable"
            values[name] = None
            errors[name] = _error_text(e)
    return values, errors


def _cuda_version(raw: int) -> str:
    """NVML's CUDA driver version integer (12040) as ``12.4``."""
    return f"{raw // 1000}.{raw % 1000 // 10}"


def collect_nvml(nv: Any) -> tuple[dict[str, Any], list[tuple[dict[str, Any], dict[str, str]]]]:
    """Initialise NVML, read every GPU, shut down. Returns (status, [(fields, errors)])."""
    status: dict[str, Any] = {"available": False, "error": None, "driver_version": None, "cuda_version": None,
                              "unreadable": {}}  # fmt: skip
    try:
        nv.nvmlInit()
    except Exception as e:  # noqa: BLE001 - NVMLError_LibraryNotFound, _DriverNotLoaded, ...
        status["error"] = f"NVML could not start ({_error_text(e)}): no NVIDIA driver or no GPU visible here"
        return status, []
    try:
        for key, read in (("driver_version", lambda: _text(nv.nvmlSystemGetDriverVersion())),
                          ("cuda_version", lambda: _cuda_version(int(nv.nvmlSystemGetCudaDriverVersion())))):  # fmt: skip
            try:
                status[key] = read()
            except Exception as e:  # noqa: BLE001 - an unreadable version is sent as null, with the reason
                status["unreadable"][key] = _error_text(e)
        try:
            count = int(nv.nvmlDeviceGetCount())
        except Exception as e:  # noqa: BLE001
            status["error"] = f"NVML started but could not count GPUs ({_error_text(e)})"
            return status, []
        gpus = []
        for index in range(count):
            try:
                gpus.append(_read_gpu(nv, index))
            except Exception as e:  # noqa: BLE001 - no handle for this index: the whole GPU is unreadable
                gpus.append(({}, {"handle": _error_text(e)}))
        status["available"] = True
        if count == 0:
            status["error"] = "NVML found no GPU on this host"
        return status, gpus
    finally:
        try:
            nv.nvmlShutdown()
        except Exception:  # noqa: BLE001 - shutting down a half-initialised library may fail; nothing to undo
            pass


def nvml_bus_id(gpu_index: int) -> str:
    """The PCI bus id of the GPU the report numbers ``gpu_index`` (how ``worker answer
    --gpu-index`` finds the same card in CUDA, which may number GPUs differently)."""
    try:
        nv = load_nvml()
        nv.nvmlInit()
    except Exception as e:  # ImportError, NVMLError_LibraryNotFound, ...
        raise ValueError(f"--gpu-index needs NVML, which is not available here ({_error_text(e)})") from e
    try:
        count = int(nv.nvmlDeviceGetCount())
        if not 0 <= gpu_index < count:
            raise ValueError(f"--gpu-index {gpu_index}: NVML sees {count} GPU(s) (0..{count - 1})")
        return _text(nv.nvmlDeviceGetPciInfo(nv.nvmlDeviceGetHandleByIndex(gpu_index)).busId)
    finally:
        nv.nvmlShutdown()


def apple_soc() -> dict[str, Any] | None:
    """An Apple silicon Mac's GPU as the contract reports it: the chip name and its unified
    memory; every NVML field null. None on any other machine."""
    if platform.system() != "Darwin" or platform.machine() != "arm64":
        return None
    name = _run(["sysctl", "-n", "machdep.cpu.brand_string"])
    memory = _run(["sysctl", "-n", "hw.memsize"])
    if not name or not name.startswith("Apple") or not memory:
        return None
    return {"gpu_model": name, "vram_total_mb": int(memory) // 2**20}


def _row(host: dict[str, Any], index: int, gpu: dict[str, Any], nvml: dict[str, Any], ts: datetime,
         account_id: str | None) -> dict[str, Any]:  # fmt: skip
    values = {**host, **gpu, "ts": ts, "account_id": account_id, "gpu_index": index,
              "driver_version": nvml["driver_version"], "cuda_version": nvml["cuda_version"]}  # fmt: skip
    return {name: values.get(name) for name in HARDWARE.column_names}


def collect_report(account_id: str | None = None, now: datetime | None = None) -> Report:
    """Everything this host would send: host fields, NVML status, one contract row per GPU."""
    ts = (now or datetime.now(UTC)).replace(tzinfo=None)
    host = collect_host()
    try:
        nv = load_nvml()
    except ImportError as e:
        status = {"available": False, "error": f"pynvml is not installed ({e}); install nvidia-ml-py",
                  "driver_version": None, "cuda_version": None, "unreadable": {}}  # fmt: skip
        gpus = []
    else:
        status, gpus = collect_nvml(nv)
    report = Report(host=host, nvml=status)
    if not status["available"]:
        soc = apple_soc()
        if soc:
            report.hardware.append(_row(host, 0, soc, status, ts, account_id))
        return report
    for index, (fields, errors) in enumerate(gpus):
        missing = [f for f in ("gpu_model", "vram_total_mb") if fields.get(f) is None]
        if missing:
            report.skipped.append({"gpu_index": index, "missing": missing, "errors": errors})
            continue
        report.hardware.append(_row(host, index, fields, status, ts, account_id))
        if errors:
            report.unreadable.append({"gpu_index": index, "fields": errors})
    return report


def format_report(report: Report) -> str:
    """The report for a person: NVML status, host, one block per GPU, what the backend adds."""
    nv = report.nvml
    lines = [f"NVML: {'available' if nv['available'] else 'not available'}"
             + (f", driver {nv['driver_version']}, CUDA {nv['cuda_version']}" if nv["available"] else "")]  # fmt: skip
    if nv["error"]:
        lines.append(f"  {nv['error']}")
    for key, reason in nv["unreadable"].items():
        lines.append(f"  {key} unreadable (sent as null): {reason}")
    lines.append("host: " + ", ".join(f"{k}={v}" for k, v in report.host.items()))
    if report.hardware:
        account = report.hardware[0]["account_id"]
        lines.append(f"account: {account if account else 'null (the backend fills it)'}")
    if not report.hardware:
        lines.append("GPUs: none reported (no hardware rows would be sent)")
    for row in report.hardware:
        gpu = {k: v for k, v in row.items()
               if k not in report.host and k not in BACKEND_FIELDS and k not in ("ts", "account_id", "gpu_index")}  # fmt: skip
        lines.append(f"GPU {row['gpu_index']}: " + ", ".join(f"{k}={'null' if v is None else v}" for k, v in gpu.items()))
    for u in report.unreadable:
        lines.append(f"  GPU {u['gpu_index']} unreadable (sent as null): "
                     + "; ".join(f"{k}: {v}" for k, v in u["fields"].items()))  # fmt: skip
    for s in report.skipped:
        lines.append(f"GPU {s['gpu_index']} skipped: NVML could not read {', '.join(s['missing'])} "
                     f"({'; '.join(f'{k}: {v}' for k, v in s['errors'].items())})")  # fmt: skip
    lines.append(f"filled in by the backend: {', '.join(BACKEND_FIELDS)}")
    return "\n".join(lines)
