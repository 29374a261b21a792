"""The detection policy (``data/policy/detection.toml``): detectors, tiering, quality bars.

The file is validated with pydantic in strict mode: an unknown section or key, or a value
of the wrong type (``max_quarantine_share = "lots"``), is a PolicyError naming the file, the
key and what was expected, before anything runs. Detector parameters are checked against the
detector's own ``__init__`` signature and type hints.
"""

from __future__ import annotations

import inspect
import typing
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from detectors import REGISTRY, Detector
from pipelines.catalogue import DATA_DIR
from pipelines.contract import FEEDS
from pipelines.features import MACHINE_MAX_IPS, Features
from pipelines.policy_errors import PolicyError, explain, read_toml

DEFAULT_POLICY = DATA_DIR / "policy" / "detection.toml"
_STRICT = ConfigDict(extra="forbid", strict=True, frozen=True)


class Tiering(BaseModel):
    model_config = _STRICT
    verify_after_clean_hours: int = Field(24, ge=1)
    release_probation_after_clean_hours: int = Field(6, ge=1)


class Quality(BaseModel):
    model_config = _STRICT
    max_quarantine_share: float = Field(0.01, ge=0, le=1)
    min_sample_verification_rate: float = Field(0.99, ge=0, le=1)
    max_wrong_sample_share: float = Field(0.25, ge=0, le=1)
    min_rows: dict[typing.Literal[tuple(FEEDS)], int] = Field(  # type: ignore[valid-type]
        default_factory=lambda: {"hardware": 1, "pow": 1, "uptime": 1}
    )


class DetectionPolicy(BaseModel):
    model_config = _STRICT
    tiering: Tiering = Field(default_factory=Tiering)
    quality: Quality = Field(default_factory=Quality)
    features: Features = Field(default_factory=Features)
    detectors: dict[str, dict] = Field(default_factory=lambda: {name: {} for name in REGISTRY})

    def build_detectors(self) -> list[Detector]:
        """Instantiate every enabled detector with its parameters, in registry order."""
        out = []
        for name, cls in REGISTRY.items():
            params = dict(self.detectors.get(name, {}))
            if params.pop("enabled", True):
                out.append(cls(**params))
        return out


def detector_params_model(cls: type[Detector]) -> type[BaseModel]:
    """A strict pydantic model of a detector's parameters, from its ``__init__`` signature."""
    hints = typing.get_type_hints(cls.__init__)
    fields: dict[str, tuple] = {"enabled": (bool, True)}
    for name, param in inspect.signature(cls.__init__).parameters.items():
        if name == "self" or param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        default = ... if param.default is param.empty else param.default
        fields[name] = (hints.get(name, typing.Any), default)
    return create_model(f"{cls.__name__}Params", __config__=ConfigDict(extra="forbid", strict=True), **fields)


def load_policy(path: str | Path | None = None) -> DetectionPolicy:
    """Read and validate a detection policy TOML (PolicyError names the file and key)."""
    path = Path(path or DEFAULT_POLICY)
    raw = read_toml(path)
    detectors = raw.get("detectors", {})
    if not isinstance(detectors, dict):
        raise PolicyError(f"policy file {path}: detectors: must be a table of [detectors.<name>] sections")
    unknown = sorted(set(detectors) - set(REGISTRY))
    if unknown:
        raise PolicyError(f"policy file {path}: detectors.{unknown[0]}: unknown detector; known: {sorted(REGISTRY)}")
    for name, params in detectors.items():
        try:
            detector_params_model(REGISTRY[name]).model_validate(params)
        except ValidationError as e:
            raise explain(path, e, ("detectors", name)) from None
    try:
        policy = DetectionPolicy.model_validate({**raw, "detectors": {name: detectors.get(name, {}) for name in REGISTRY}})
    except ValidationError as e:
        raise explain(path, e) from None
    max_ips = policy.detectors.get("duplicate_hardware", {}).get("max_ips", MACHINE_MAX_IPS)  # the detector's default
    if max_ips != policy.features.machine_max_ips:
        raise PolicyError(
            f"policy file {path}: detectors.duplicate_hardware.max_ips ({max_ips}) must equal features.machine_max_ips "
            f"({policy.features.machine_max_ips}): both are how many addresses one machine reports from in an hour"
        )
    policy.build_detectors()
    return policy
