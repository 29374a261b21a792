"""Detectors: one module per fraud type, all behind ``detectors.base.Detector``."""

from detectors.base import Detector, Evidence
from detectors.duplicate_hardware import DuplicateHardware
from detectors.failed_pow import FailedPow
from detectors.spoofed_uptime import SpoofedUptime

REGISTRY: dict[str, type[Detector]] = {d.name: d for d in (FailedPow, DuplicateHardware, SpoofedUptime)}
"""Every shipped detector by name; the pipeline runs those enabled in the detection policy."""

__all__ = ["Detector", "Evidence", "REGISTRY", "FailedPow", "DuplicateHardware", "SpoofedUptime"]
