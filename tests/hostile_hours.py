"""Small, valid hour folders to poison in the hostile-input tests (no simulator needed)."""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
from pathlib import Path

HOUR = "2024-08-14T07"
DEVICES = ("dev1", "dev2", "dev3")


def hardware_row(device: str, **changes: object) -> dict:
    row = {
        "ts": "2024-08-14T07:00:01Z", "device_id": device, "account_id": "acc1", "host_fingerprint": f"h-{device}",
        "ip": "1.2.3.4", "asn": 7922, "country": "US", "os": "linux", "worker_version": "2.5.0",
        "gpu_index": 0, "gpu_model": "NVIDIA GeForce RTX 4090", "gpu_uuid": f"GPU-{device}", "gpu_serial": None,
        "pci_bus_id": "00000000:01:00.0", "vram_total_mb": 24576, "driver_version": None, "cuda_version": None,
        "virtualization_mode": "NONE", "mig_mode": None, "power_limit_w": 450, "sm_clock_max_mhz": 2520,
        "cpu_model": "AMD", "cpu_cores": 16, "ram_gb": 64, "bandwidth_down_mbps": 500.5, "bandwidth_up_mbps": 100.0,
    }  # fmt: skip
    return {**row, **changes}


def pow_row(i: int, **changes: object) -> dict:
    row = {
        "challenge_id": f"c{i}", "batch_id": None, "device_id": DEVICES[i % len(DEVICES)], "kind": "matmul",
        "issued_at": f"2024-08-14T07:{i % 60:02d}:00.000Z", "responded_at": f"2024-08-14T07:{i % 60:02d}:01.000Z",
        "status": "ok", "n": 4096, "seed": 2**64 - 1 - i, "compute_ms": 3.5, "result_digest": "ab" * 32,
        "samples": "[[1,2,3]]",
    }  # fmt: skip
    return {**row, **changes}


def uptime_row(i: int, **changes: object) -> dict:
    # the seconds make (device, source, ts) unique for every i below 1,800
    row = {"ts": f"2024-08-14T07:{i % 60:02d}:{30 + (i // 60) % 30:02d}Z", "device_id": DEVICES[i % len(DEVICES)],
           "source": "ping", "ok": True, "latency_ms": 12.5}  # fmt: skip
    return {**row, **changes}


def stake_row(i: int, **changes: object) -> dict:
    row = {"event_id": f"se{i}", "ts": f"2024-08-14T07:{i % 60:02d}:10Z", "wallet": f"w{i}", "device_id": "dev1",
           "kind": "stake", "amount_io": "200", "funder_wallet": f"w{i}"}  # fmt: skip
    return {**row, **changes}


def jsonl(rows: list[dict]) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in rows)


def csv_bytes(rows: list[dict]) -> bytes:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    w.writeheader()
    w.writerows([{k: ("" if v is None else v) for k, v in r.items()} for r in rows])
    return buf.getvalue().encode()


def write_manifest(folder: Path, rows: dict[str, int], *, hour: str | None = None) -> None:
    files = {name: {"rows": n, "sha256": hashlib.sha256((folder / name).read_bytes()).hexdigest()} for name, n in rows.items()}
    (folder / "_manifest.json").write_text(json.dumps({"hour": hour or folder.name, "files": files}))


def make_hour(root: Path, hour: str = HOUR, extra: dict[str, tuple[bytes, int]] | None = None,
              rows: int = 6) -> Path:  # fmt: skip
    """A valid hour (3 hardware, ``rows`` pow and uptime rows) plus ``extra`` files, with its manifest."""
    folder = root / hour
    folder.mkdir(parents=True)
    files = {
        "hardware.jsonl": (jsonl([hardware_row(d) for d in DEVICES]), len(DEVICES)),
        "pow.jsonl": (jsonl([pow_row(i) for i in range(rows)]), rows),
        "uptime.jsonl": (jsonl([uptime_row(i) for i in range(rows)]), rows),
        **(extra or {}),
    }
    for name, (data, _) in files.items():
        (folder / name).write_bytes(data)
    write_manifest(folder, {name: n for name, (_, n) in files.items()})
    return folder


def gz(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)
