"""Detectors: one module per fraud type, all behind ``detectors.base.Detector``."""

from detectors.anomaly import AnomalyScore
from detectors.base import Detector, Evidence
from detectors.duplicate_hardware import DuplicateHardware
from detectors.failed_pow import FailedPow
from detectors.fleet_burst import FleetBurst
from detectors.spoofed_model import SpoofedModel
from detectors.spoofed_uptime import SpoofedUptime
from detectors.virtualized_gpu import VirtualizedGpu

REGISTRY: dict[str, type[Detector]] = {
    d.name: d
    for d in (FailedPow, DuplicateHardware, SpoofedUptime, SpoofedModel, VirtualizedGpu, FleetBurst, AnomalyScore)
}
"""Every shipped detector by name; the pipeline runs those enabled in the detection policy."""

__all__ = ["Detector", "Evidence", "REGISTRY", *(cls.__name__ for cls in REGISTRY.values())]
