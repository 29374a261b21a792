"""``fleetproof worker report``: NVML fields as contract rows, and clear answers without NVML."""

from __future__ import annotations

import hashlib
import json
import sys

import pytest
from worker_fakes import H100, NOT_SUPPORTED, RTX_4090, NVMLError, fake_pynvml

from pipelines.cli import main
from pipelines.contract import HARDWARE
from pipelines.worker import report
from pipelines.worker.report import BACKEND_FIELDS, collect_report


@pytest.fixture(autouse=True)
def not_a_mac(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test decides itself whether the host is an Apple silicon Mac."""
    monkeypatch.setattr(report, "apple_soc", lambda: None)


def use_nvml(monkeypatch: pytest.MonkeyPatch, module) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", module)


def test_rows_carry_every_nvml_field_in_contract_order(monkeypatch: pytest.MonkeyPatch) -> None:
    nv = fake_pynvml([H100, RTX_4090])
    use_nvml(monkeypatch, nv)
    r = collect_report(account_id="acct-1")
    assert r.nvml == {"available": True, "error": None, "driver_version": "550.54.15", "cuda_version": "12.4",
                      "unreadable": {}}  # fmt: skip
    assert [list(row) for row in r.hardware] == [HARDWARE.column_names] * 2
    h100, rtx = r.hardware
    assert h100["gpu_model"] == "NVIDIA H100 80GB HBM3" and h100["gpu_index"] == 0
    assert h100["gpu_uuid"] == H100["uuid"] and h100["gpu_serial"] == "1654123456789"
    assert h100["pci_bus_id"] == "00000000:18:00.0"  # NVML's bytes decoded
    assert h100["vram_total_mb"] == 81559  # bytes -> MiB
    assert (h100["virtualization_mode"], h100["mig_mode"]) == ("NONE", False)
    assert (h100["power_limit_w"], h100["sm_clock_max_mhz"]) == (700, 1980)  # mW -> W
    assert (h100["driver_version"], h100["cuda_version"], h100["account_id"]) == ("550.54.15", "12.4", "acct-1")
    assert rtx["gpu_index"] == 1 and rtx["vram_total_mb"] == 24564
    assert all(row[f] is None for row in r.hardware for f in BACKEND_FIELDS)
    assert nv.calls == ["init", "shutdown"]


def test_fields_nvml_refuses_are_null_with_the_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    use_nvml(monkeypatch, fake_pynvml([RTX_4090]))
    r = collect_report()
    (row,) = r.hardware
    assert row["gpu_serial"] is None and row["mig_mode"] is None
    assert r.unreadable == [{"gpu_index": 0, "fields": {"gpu_serial": "NVMLError: Not Supported",
                                                        "mig_mode": "NVMLError: Not Supported"}}]  # fmt: skip


def test_vgpu_and_mig_are_reported_as_nvml_says(monkeypatch: pytest.MonkeyPatch) -> None:
    use_nvml(monkeypatch, fake_pynvml([{**H100, "virtualization": 2, "mig": [1, 1]}]))
    (row,) = collect_report().hardware
    assert (row["virtualization_mode"], row["mig_mode"]) == ("VGPU", True)


def test_gpu_without_name_or_memory_is_skipped_not_sent_half_empty(monkeypatch: pytest.MonkeyPatch) -> None:
    use_nvml(monkeypatch, fake_pynvml([{**H100, "name": NVMLError("Unknown Error")}, RTX_4090]))
    r = collect_report()
    assert [row["gpu_index"] for row in r.hardware] == [1]
    assert r.skipped == [{"gpu_index": 0, "missing": ["gpu_model"], "errors": {"gpu_model": "NVMLError: Unknown Error"}}]


def test_nvml_library_missing_is_said_and_host_still_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    nv = fake_pynvml([], init_error=NVMLError("NVML Shared Library Not Found"))
    use_nvml(monkeypatch, nv)
    r = collect_report()
    assert r.nvml["available"] is False
    assert "NVML Shared Library Not Found" in r.nvml["error"] and "no NVIDIA driver" in r.nvml["error"]
    assert r.hardware == []
    assert set(r.host) == {"host_fingerprint", "os", "worker_version", "cpu_model", "cpu_cores", "ram_gb"}
    assert len(r.host["host_fingerprint"]) == 64 and r.host["cpu_cores"] >= 1


def test_pynvml_not_installed_is_said(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing():
        raise ImportError("No module named 'pynvml'")

    monkeypatch.setattr(report, "load_nvml", missing)
    r = collect_report()
    assert r.nvml["available"] is False and "install nvidia-ml-py" in r.nvml["error"]
    assert r.hardware == []


def test_nvml_failing_to_count_gpus_is_said_and_shuts_down(monkeypatch: pytest.MonkeyPatch) -> None:
    nv = fake_pynvml([H100], count_error=NVMLError("GPU is lost"))
    use_nvml(monkeypatch, nv)
    r = collect_report()
    assert r.nvml["available"] is False and "GPU is lost" in r.nvml["error"]
    assert r.hardware == [] and nv.calls == ["init", "shutdown"]


def test_unreadable_driver_version_is_null(monkeypatch: pytest.MonkeyPatch) -> None:
    nv = fake_pynvml([H100])
    nv.nvmlSystemGetDriverVersion = lambda: (_ for _ in ()).throw(NOT_SUPPORTED)
    use_nvml(monkeypatch, nv)
    r = collect_report()
    (row,) = r.hardware
    assert row["driver_version"] is None and row["cuda_version"] == "12.4"
    assert r.nvml["unreadable"] == {"driver_version": "NVMLError: Not Supported"}


def test_apple_silicon_reports_its_soc_with_nvml_fields_null(monkeypatch: pytest.MonkeyPatch) -> None:
    use_nvml(monkeypatch, fake_pynvml([], init_error=NVMLError("NVML Shared Library Not Found")))
    monkeypatch.setattr(report, "apple_soc", lambda: {"gpu_model": "Apple M2 Pro", "vram_total_mb": 16384})
    (row,) = collect_report().hardware
    assert (row["gpu_model"], row["vram_total_mb"], row["gpu_index"]) == ("Apple M2 Pro", 16384, 0)
    nvml_only = ["gpu_uuid", "gpu_serial", "pci_bus_id", "driver_version", "cuda_version", "virtualization_mode",
                 "mig_mode", "power_limit_w", "sm_clock_max_mhz"]  # fmt: skip
    assert all(row[f] is None for f in nvml_only)


def test_fingerprint_hashes_identifiers_without_sending_them(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(report, "machine_id", lambda: "5f0c2e9a1b7d4c3e8f6a0b1c2d3e4f50")
    monkeypatch.setattr(report, "cpu_model", lambda: "AMD EPYC 7763 64-Core Processor")
    monkeypatch.setattr(report, "physical_macs", lambda: ["0c:42:a1:11:22:33", "0c:42:a1:11:22:34"])
    use_nvml(monkeypatch, fake_pynvml([H100]))
    r = collect_report()
    expected = hashlib.sha256(
        b"5f0c2e9a1b7d4c3e8f6a0b1c2d3e4f50|AMD EPYC 7763 64-Core Processor|0c:42:a1:11:22:33,0c:42:a1:11:22:34"
    )
    assert r.host["host_fingerprint"] == expected.hexdigest()
    sent = json.dumps(r.as_dict(), default=str)
    assert "5f0c2e9a" not in sent and "0c:42:a1" not in sent
    monkeypatch.setattr(report, "physical_macs", lambda: ["0c:42:a1:11:22:33"])  # a NIC swapped out
    assert collect_report().host["host_fingerprint"] != expected.hexdigest()


def test_cli_json_prints_the_contract_rows(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    use_nvml(monkeypatch, fake_pynvml([H100, RTX_4090]))
    assert main(["worker", "report", "--json", "--account", "acct-9"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["nvml"]["available"] is True and out["hardware_columns"] == HARDWARE.column_names
    assert [row["gpu_model"] for row in out["hardware"]] == ["NVIDIA H100 80GB HBM3", "NVIDIA GeForce RTX 4090"]
    assert out["hardware"][0]["ts"].endswith("Z") and out["filled_by_backend"] == list(BACKEND_FIELDS)


def test_cli_without_nvml_says_so_in_text_and_json(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    use_nvml(monkeypatch, fake_pynvml([], init_error=NVMLError("Driver Not Loaded")))
    assert main(["worker", "report"]) == 0
    text = capsys.readouterr().out
    assert "NVML: not available" in text and "Driver Not Loaded" in text and "no hardware rows would be sent" in text
    assert main(["worker", "report", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["nvml"]["available"] is False and out["hardware"] == [] and out["host"]["os"] in ("linux", "macos", "windows")
