"""The detection policy (``data/policy/detection.toml``): detectors, tiering, quality bars."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from detectors import REGISTRY, Detector
from pipelines.catalogue import DATA_DIR

DEFAULT_POLICY = DATA_DIR / "policy" / "detection.toml"


@dataclass(frozen=True)
class Tiering:
    verify_after_clean_hours: int = 24
    release_probation_after_clean_hours: int = 6


@dataclass(frozen=True)
class Quality:
    max_quarantine_share: float = 0.01
    min_sample_verification_rate: float = 0.99
    min_rows: dict[str, int] = field(default_factory=lambda: {"hardware": 1, "pow": 1, "uptime": 1})


@dataclass(frozen=True)
class DetectionPolicy:
    tiering: Tiering = field(default_factory=Tiering)
    quality: Quality = field(default_factory=Quality)
    detectors: dict[str, dict] = field(default_factory=lambda: {name: {} for name in REGISTRY})

    def build_detectors(self) -> list[Detector]:
        """Instantiate every enabled detector with its parameters, in registry order."""
        out = []
        for name, cls in REGISTRY.items():
            params = dict(self.detectors.get(name, {}))
            if params.pop("enabled", True):
                out.append(cls(**params))
        return out


def load_policy(path: str | Path | None = None) -> DetectionPolicy:
    """Read a detection policy TOML; unknown sections or detectors are an error, not ignored."""
    raw = tomllib.loads(Path(path or DEFAULT_POLICY).read_text())
    unknown = set(raw) - {"tiering", "quality", "detectors"}
    if unknown:
        raise ValueError(f"unknown policy sections: {sorted(unknown)}")
    detectors = raw.get("detectors", {})
    bad = set(detectors) - set(REGISTRY)
    if bad:
        raise ValueError(f"unknown detectors in policy: {sorted(bad)}; known: {sorted(REGISTRY)}")
    policy = DetectionPolicy(
        tiering=Tiering(**raw.get("tiering", {})),
        quality=Quality(**raw.get("quality", {})),
        detectors={name: detectors.get(name, {}) for name in REGISTRY},
    )
    policy.build_detectors()  # fail early on unknown detector parameters
    return policy
