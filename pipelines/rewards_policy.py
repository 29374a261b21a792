"""The reward policy (``data/policy/rewards.toml``): versions with effective dates.

Decimal amounts are parsed exactly into integer base units; fractional multipliers become
integers in ten-thousandths (``bp4``) so every weight is an exact integer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from pipelines.catalogue import DATA_DIR, load_catalogue
from pipelines.contract import BASE_UNITS_PER_IO, HOUR_RE
from pipelines.policy_errors import PolicyError, explain, read_toml

DEFAULT_REWARDS_POLICY = DATA_DIR / "policy" / "rewards.toml"
SCALE = 10_000
"""Multipliers are held as integers in 1/10,000ths."""


def io_to_base_units(value: str) -> int:
    """'2283.10502283' -> 228310502283; more than 8 decimals or a non-number is an error."""
    try:
        d = Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"not a decimal IO amount: {value!r}") from None
    units = d * BASE_UNITS_PER_IO
    if units != units.to_integral_value() or units < 0:
        raise ValueError(f"IO amount {value!r} must be >= 0 with at most 8 decimals")
    return int(units)


def bp4(value: float | int | str) -> int:
    """A multiplier as an exact integer in 1/10,000ths (1.25 -> 12500)."""
    d = Decimal(str(value)) * SCALE
    if d != d.to_integral_value():
        raise ValueError(f"multiplier {value!r} has more than 4 decimals")
    return int(d)


@dataclass(frozen=True)
class Slashing:
    """Rates in 1/10,000ths. ``downtime_rate`` 0 (the default): an outage costs the device its
    rewards (eligibility), never its stake; above 0, a staked device down ``downtime_hours`` in a
    row is slashed that share (docs/rewards.md: owners away for a day or two are honest)."""

    deliberate_rate: int = SCALE
    downtime_rate: int = 0
    downtime_hours: int = 24
    accrual_days: int = 30
    appeal_days: int = 30


@dataclass(frozen=True)
class PolicyVersion:
    id: str
    effective_from: str
    emission_per_epoch: int
    stake_required: bool
    min_continuous_uptime_hours: int
    operator_share: int
    hired_bonus: int
    probation: str
    release_after_hours: int
    tier_multipliers: dict[str, int]
    connectivity: tuple[tuple[float, int], ...]
    stake_per_gpu: int
    unstake_cooldown_days: int
    device_multipliers: dict[str, int]
    slashing: Slashing = field(default_factory=Slashing)
    standard: str = "pay"
    """``hold``: a standard (not yet verified) device's share is held until it is verified."""

    def multiplier_rows(self) -> list[tuple[str, int]]:
        return sorted(self.device_multipliers.items())


@dataclass(frozen=True)
class RewardsPolicy:
    versions: tuple[PolicyVersion, ...]

    def at(self, epoch: str) -> PolicyVersion:
        """The version in force for an epoch: the newest that took effect at or before it, and
        for an epoch before every version the first one (a network's history may start before
        the policy file does; stopping there published no tiers at all)."""
        found = [v for v in self.versions if v.effective_from <= epoch]
        return max(found, key=lambda v: v.effective_from) if found else min(self.versions, key=lambda v: v.effective_from)


def _version(raw: dict) -> PolicyVersion:
    if not HOUR_RE.match(raw["effective_from"]):
        raise ValueError(f"effective_from must be YYYY-MM-DDTHH, got {raw['effective_from']!r}")
    if raw.get("probation", "hold") not in ("hold", "redistribute"):
        raise ValueError("probation must be 'hold' or 'redistribute'")
    catalogue = {r["model_key"]: r["reward_multiplier"] for r in load_catalogue().iter_rows(named=True)}
    multipliers = {k: bp4(v) for k, v in catalogue.items()}
    unknown = set(raw.get("device_multipliers", {})) - set(catalogue)
    if unknown:
        raise ValueError(f"device_multipliers names models not in the catalogue: {sorted(unknown)}")
    multipliers.update({k: bp4(v) for k, v in raw.get("device_multipliers", {}).items()})
    tiers = {k: bp4(v) for k, v in raw["tier_multipliers"].items()}
    if set(tiers) != {"verified", "standard", "probation", "rejected"} or tiers["rejected"] != 0:
        raise ValueError("tier_multipliers needs verified, standard, probation and rejected (= 0)")
    s = raw.get("slashing", {})
    return PolicyVersion(
        id=raw["id"],
        effective_from=raw["effective_from"],
        emission_per_epoch=io_to_base_units(raw["emission_per_epoch_io"]),
        stake_required=bool(raw["stake_required"]),
        min_continuous_uptime_hours=int(raw["min_continuous_uptime_hours"]),
        operator_share=bp4(raw["operator_share"]),
        hired_bonus=bp4(raw["hired_bonus"]),
        probation=raw.get("probation", "hold"),
        standard=raw.get("standard", "pay"),
        release_after_hours=int(raw.get("release_after_hours", 24)),
        tier_multipliers=tiers,
        connectivity=tuple(sorted((float(c["min_down_mbps"]), bp4(c["multiplier"])) for c in raw["connectivity"])),
        stake_per_gpu=io_to_base_units(raw["stake_per_gpu_io"]),
        unstake_cooldown_days=int(raw["unstake_cooldown_days"]),
        device_multipliers=multipliers,
        slashing=Slashing(
            deliberate_rate=bp4(s.get("deliberate_rate", 1.0)),
            downtime_rate=bp4(s.get("downtime_rate", 0)),
            downtime_hours=int(s.get("downtime_hours", 24)),
            accrual_days=int(s.get("accrual_days", 30)),
            appeal_days=int(s.get("appeal_days", 30)),
        ),
    )


_STRICT = ConfigDict(extra="forbid", strict=True)
_DECIMAL_IO = r"^\d{1,12}(\.\d{1,8})?$"


class _ConnectivityFile(BaseModel):
    model_config = _STRICT
    min_down_mbps: float = Field(ge=0)
    multiplier: float = Field(ge=0)


class _SlashingFile(BaseModel):
    model_config = _STRICT
    deliberate_rate: float = Field(1.0, ge=0, le=1)
    downtime_rate: float = Field(0, ge=0, le=1)
    downtime_hours: int = Field(24, ge=1)
    accrual_days: int = Field(30, ge=0)
    appeal_days: int = Field(30, ge=0)


class _VersionFile(BaseModel):
    """One ``[[version]]`` as written in the file (types checked; units converted later)."""

    model_config = _STRICT
    id: str
    effective_from: str = Field(pattern=r"^\d{4}-\d{2}-\d{2}T\d{2}$")
    emission_per_epoch_io: str = Field(pattern=_DECIMAL_IO)
    stake_required: bool
    min_continuous_uptime_hours: int = Field(ge=0)
    operator_share: float = Field(ge=0, le=1)
    hired_bonus: float = Field(ge=0)
    probation: Literal["hold", "redistribute"] = "hold"
    standard: Literal["hold", "pay"] = "pay"
    release_after_hours: int = Field(24, ge=0)
    tier_multipliers: dict[str, float]
    connectivity: list[_ConnectivityFile] = Field(min_length=1)
    stake_per_gpu_io: str = Field(pattern=_DECIMAL_IO)
    unstake_cooldown_days: int = Field(ge=0)
    device_multipliers: dict[str, float] = Field(default_factory=dict)
    slashing: _SlashingFile = Field(default_factory=_SlashingFile)

    @field_validator("connectivity")
    @classmethod
    def _distinct_thresholds(cls, tiers: list[_ConnectivityFile]) -> list[_ConnectivityFile]:
        """A bandwidth falls in exactly one tier: the highest threshold it reaches."""
        if len({t.min_down_mbps for t in tiers}) != len(tiers):
            raise ValueError("two connectivity tiers have the same min_down_mbps")
        return tiers


class _RewardsFile(BaseModel):
    model_config = _STRICT
    version: list[_VersionFile] = Field(min_length=1)


def load_rewards_policy(path: str | Path | None = None) -> RewardsPolicy:
    """Read and validate a reward policy TOML (PolicyError names the file and key)."""
    path = Path(path or DEFAULT_REWARDS_POLICY)
    try:
        parsed = _RewardsFile.model_validate(read_toml(path))
    except ValidationError as e:
        raise explain(path, e) from None
    versions = []
    for i, v in enumerate(parsed.version):
        try:
            versions.append(_version(v.model_dump()))
        except ValueError as e:
            raise PolicyError(f"policy file {path}: version.{i}: {e}") from None
    if len({v.effective_from for v in versions}) != len(versions):
        raise PolicyError(f"policy file {path}: two reward policy versions take effect at the same hour")
    return RewardsPolicy(tuple(versions))
