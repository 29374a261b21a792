"""Detectors: one module per fraud type, all behind ``detectors.base.Detector``."""

from detectors.anomaly import AnomalyScore
from detectors.base import Detector, Evidence
from detectors.double_listed import DoubleListed
from detectors.duplicate_hardware import DuplicateHardware
from detectors.failed_pow import FailedPow
from detectors.fleet_burst import FleetBurst
from detectors.spoofed_model import SpoofedModel
from detectors.spoofed_uptime import SpoofedUptime
from detectors.stake_manipulation import StakeManipulation
from detectors.sybil import SybilRings
from detectors.timeshare import Timeshare
from detectors.virtualized_gpu import VirtualizedGpu
from detectors.wash_trading import WashTrading

REGISTRY: dict[str, type[Detector]] = {
    d.name: d
    for d in (
        FailedPow,
        DuplicateHardware,
        Timeshare,
        SpoofedUptime,
        SpoofedModel,
        VirtualizedGpu,
        FleetBurst,
        AnomalyScore,
        SybilRings,
        WashTrading,
        DoubleListed,
        StakeManipulation,
    )
}
"""Every shipped detector by name, in the order the pipeline runs them (wash trading reads the
sybil clusters of the same epoch); the policy says which are enabled."""

__all__ = ["Detector", "Evidence", "REGISTRY", *(cls.__name__ for cls in REGISTRY.values())]
