"""Scenario: which populations and attacks a simulated network holds, and how it behaves.

A scenario is a TOML file (``data/scenarios/*.toml``); every key is optional and falls back to
the defaults below. Shares are fractions of the device count and are normalised to sum to 1.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

HONEST_POPULATIONS = (
    "home",
    "home_throttled",
    "home_overclocked",
    "mac_mini",
    "datacenter",
    "datacenter_sites",
    "shared_nat_lab",
    "shared_nat_family",
)
ATTACK_POPULATIONS = (
    "virtualized_naive",
    "virtualized_spoofed",
    "spoofed_model",
    "pow_cheat_samples",
    "pow_cheat_timing",
    "uptime_spoofer",
    "sybil_ring",
    "sybil_ring_jitter",
    "sybil_ring_small",
    "wash_trader",
    "double_lister",
    "burst",
)
DERIVED_POPULATIONS = ("stake_flasher",)
"""Attack populations made from others after the draw, not drawn from the mix: stake flashers
are home owners (``Scenario.stake_flash_share``) whose own wallets game stake positions."""

DEFAULT_MIX: dict[str, float] = {
    "home": 0.46,
    "home_throttled": 0.04,
    "home_overclocked": 0.03,
    "mac_mini": 0.04,
    "datacenter": 0.17,
    "shared_nat_lab": 0.03,
    "shared_nat_family": 0.03,
    "virtualized_naive": 0.02,
    "virtualized_spoofed": 0.02,
    "spoofed_model": 0.01,
    "pow_cheat_samples": 0.006,
    "pow_cheat_timing": 0.006,
    "uptime_spoofer": 0.01,
    "sybil_ring": 0.04,
    "sybil_ring_jitter": 0.02,
    "sybil_ring_small": 0.002,
    "wash_trader": 0.006,
    "double_lister": 0.006,
    "burst": 0.03,
}


@dataclass(frozen=True)
class Challenges:
    """How the backend challenges devices each hour."""

    matmul_n_consumer: int = 4096
    matmul_n_datacenter: int = 8192
    datacenter_tflops: float = 100.0
    """Claimed models at or above this spec get the larger matmul."""
    vram_share: float = 0.25
    """A VRAM challenge's three matrices (A, B fp16; C fp32) fill this share of claimed VRAM."""
    vram_every_hours: int = 6
    matmul_samples: int = 2
    vram_samples: int = 1
    batch_size: int = 16
    timeout_s: float = 120.0


RING_VARIANTS = ("classic", "vendor_chain", "word_split", "human_template")
"""Named sybil ring recipes (``pipelines.simulate.population``); each can be held out."""


@dataclass(frozen=True)
class SybilParams:
    """How sybil rings and the honest accounts that resemble them are made (``[sybil]`` table).

    The defaults reproduce the original network exactly (classic rings only, no honest
    restarts, six exchanges); ``pipelines.simulate.randomize.draw_sybil_params`` draws wide
    ranges instead."""

    variants: dict[str, float] = field(default_factory=lambda: {"classic": 1.0})
    """Share of rings made with each recipe in ``RING_VARIANTS``."""
    restart_jitter_minutes: tuple[int, int] = (0, 0)
    """Non-classic rings: daily jitter of the restart script, drawn per ring (+- minutes)."""
    funding_depth: tuple[int, int] = (1, 3)
    """Non-classic rings: intermediate wallets between the operator's wallet and an account."""
    accounts_per_funder: tuple[int, int] = (3, 8)
    """``word_split`` rings: accounts funded by each of the operator's funding wallets."""
    signup_burst_minutes: tuple[int, int] = (5, 120)
    """Non-classic rings: accounts sign up in bursts of this many minutes."""
    proxy_asns: tuple[int, int] = (1, 3)
    """Non-classic rings: proxy ASNs per ring (each account on its own /24 of one of them)."""
    honest_restart_share: float = 0.0
    """Share of honest home accounts whose machines restart nightly (~03:00 local time)."""
    small_exchanges: int = 0
    """Extra exchange hot wallets with Zipf-like popularity: small ones fund tens of honest accounts."""
    family_shared_funder: float = 0.0
    """Chance that a family's accounts are all funded from one family wallet."""
    honest_mail_vendors: bool = False
    """Honest mailboxes from more providers and in more shapes (handles, years, underscores)."""


@dataclass(frozen=True)
class Scenario:
    """Everything that shapes a simulated network, besides devices, hours and seed."""

    start: str = "2024-08-14T00"
    mix: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_MIX))
    challenges: Challenges = field(default_factory=Challenges)
    burst_hour: int = 6
    """Hour offset at which the fake-device burst appears (clamped to the simulated span)."""
    burst_model: str = "rtx_4070"
    slices_per_card: tuple[int, int] = (4, 12)
    datacenter_operator_gpus: tuple[int, int] = (200, 600)
    site_gpus: tuple[int, int] = (8, 48)
    """GPUs per site of a company registering one account per site (``datacenter_sites``, drawn
    only where a scenario's mix names it: the default network has none)."""
    datacenter_models: dict[str, float] = field(
        default_factory=lambda: {
            "h100_sxm": 0.3,
            "a100_80gb_sxm": 0.2,
            "l40s": 0.15,
            "h200": 0.1,
            "a100_40gb_sxm": 0.15,
            "rtx_4090": 0.1,
        }
    )
    """Model mix of big operators (one model per operator); GPU farms of consumer cards exist too."""
    sybil_accounts_per_ring: tuple[int, int] = (40, 120)
    small_ring_accounts: tuple[int, int] = (5, 8)
    lab_accounts: tuple[int, int] = (30, 60)
    home_outage_rate: float = 0.02
    """Chance per device-hour that an honest home device is off for the whole hour."""
    maintenance_rate: float = 0.02
    """Chance per operator-hour of a datacenter-wide maintenance hour."""
    heartbeat_minutes: int = 10
    """How often a running worker sends a heartbeat. The contract does not fix the cadence; the
    pipeline measures it every hour (``pipelines.cadence``)."""
    ping_minutes: tuple[int, ...] = (7, 22, 37, 52)
    """Minutes of the hour at which the backend pings every registered device."""
    ping_loss: float = 0.01
    nat_ping_loss: float = 0.12
    pow_timeout_rate: float = 0.005
    pow_error_rate: float = 0.003
    spoofer_online_rate: float = 0.25
    # honest behaviour that looks like fraud to a careless detector ---------------------------
    challenge_offline: bool = True
    """The backend challenges every registered device each hour; one that is off times out."""
    daily_off_share: float = 0.15
    """Share of home-like devices (home, families, labs, Macs) switched off for hours every day."""
    daily_off_hours: tuple[int, int] = (4, 10)
    outage_rate: float = 0.002
    """Chance per home connection (IP) and hour that an ISP outage starts."""
    outage_hours: tuple[int, int] = (1, 6)
    maintenance_hours: tuple[int, int] = (1, 6)
    """A maintenance window (started with ``maintenance_rate`` per operator-hour) lasts this long."""
    pow_noise: float = 0.04
    """Log-normal sigma of one challenge's speed around the card's own."""
    throttle_rate: float = 0.05
    """Chance per device-hour that a consumer card runs hot and drops to ``throttle_depth``."""
    throttle_depth: tuple[float, float] = (0.62, 0.85)
    apple_memory_share: tuple[float, float] = (0.66, 0.75)
    """Apple chips report this share of their unified memory (one of the chip's sizes) as VRAM."""
    late_rack_share: float = 0.3
    """Share of datacenter operators that add a rack of new GPUs in the middle of the run."""
    new_home_share: float = 0.05
    """Share of home devices that join during the run (new, no history)."""
    cheat_share: float = 1.0
    """Share of a sample cheater's answered challenges that carry wrong values."""
    spoofed_true_models: tuple[str, ...] = ("t4", "rtx_3060")
    spoofed_claimed_model: str = "a100_80gb_sxm"
    honest_cross_listing: bool = False
    """3% of home machines also listed on another network from the same host: honest only where
    the network lets owners fill idle time elsewhere (``[detectors.double_listed] cross_listing
    = "allow"``); the default policy holds them, so the default network has none."""
    spoofed_vram_hang_share: float = 0.0
    """Share of a short card's VRAM challenges that hang (unanswered, ``timeout``: the worker
    pages to host memory) instead of failing (``error``)."""
    hung_worker_rate: float = 0.0
    """Chance per device-hour that a worker's GPU process hangs for ``hung_worker_hours``: pings and
    heartbeats go on, every challenge times out (an honest fault, once in a while)."""
    hung_worker_hours: tuple[int, int] = (2, 8)
    stake_flash_share: tuple[float, float] = (0.005, 0.02)
    """Share of home owners (drawn per network in this range) who flash-stake: their own wallet
    stakes 20-150k IO a minute or three before the hour and withdraws it just after, in
    ``stake_flash_hours`` of the hours (``stake_manipulation``; their cards are otherwise honest)."""
    stake_flash_hours: float = 0.7
    stake_undo_rate: float = 0.0005
    """Chance per honest device and hour that its owner stakes by mistake and withdraws it
    again 1-20 minutes later (one undone mistake is honest)."""
    spoofer_proxy_share: float = 0.0
    """Share of uptime spoofers whose address is held by an always-on box that answers the
    backend's pings as well as sending heartbeats: only the challenges tell."""
    market_spread: tuple[float, float] = (0.0, 0.0)
    """Log-normal sigmas of owners' prices and of renters' factors (spot, on-demand) around a
    model's going rate. With (0, 0) and no premium cards every honest job costs one flat rate."""
    premium_cards: float = 0.0
    """Share of devices whose owners ask 1.6-2.5x the going rate (bare metal, a verified host),
    rented by ordinary renters who pay the going rate elsewhere."""
    wash_price: tuple[float, float] = (4 / 9, 4 / 9)
    """What a wash trader pays for its own device, x the going rate (drawn per device; the default:
    20 cents an hour against an honest 45)."""
    wash_job_hours: tuple[float, float] = (0.08, 0.25)
    """How long a wash trader's jobs last."""
    sybil: SybilParams = field(default_factory=SybilParams)
    formats: str = "mixed"
    """``mixed`` (a deterministic mix per feed and hour) or one extension for every file."""

    @property
    def populations(self) -> dict[str, float]:
        total = sum(v for v in self.mix.values() if v > 0)
        return {k: v / total for k, v in self.mix.items() if v > 0}


def _merge(cls: type, base: Any, overrides: dict[str, Any]) -> Any:
    known = {f.name for f in fields(cls)}
    unknown = set(overrides) - known
    if unknown:
        raise ValueError(f"unknown scenario keys for {cls.__name__}: {sorted(unknown)}")
    values = {}
    for key, value in overrides.items():
        if isinstance(value, list):
            value = tuple(value)
        values[key] = value
    return replace(base, **values)


def load_scenario(path: str | Path | None = None) -> Scenario:
    """Read a scenario TOML; ``None`` gives the default network."""
    scenario = Scenario()
    if path is None:
        return scenario
    raw = tomllib.loads(Path(path).read_text())
    mix = raw.pop("mix", None)
    dc_models = raw.pop("datacenter_models", None)
    challenges = raw.pop("challenges", None)
    sybil = raw.pop("sybil", None)
    scenario = _merge(Scenario, scenario, raw)
    if mix is not None:
        unknown = set(mix) - set(HONEST_POPULATIONS) - set(ATTACK_POPULATIONS)
        if unknown:
            raise ValueError(f"unknown populations in [mix]: {sorted(unknown)}")
        scenario = replace(scenario, mix={k: float(v) for k, v in mix.items()})
    if dc_models is not None:
        scenario = replace(scenario, datacenter_models={k: float(v) for k, v in dc_models.items()})
    if challenges is not None:
        scenario = replace(scenario, challenges=_merge(Challenges, Challenges(), challenges))
    if sybil is not None:
        scenario = replace(scenario, sybil=sybil_params(sybil))
    return scenario


def sybil_params(raw: dict[str, Any]) -> SybilParams:
    """``[sybil]`` overrides as ``SybilParams``; unknown keys or ring variants are errors."""
    raw = dict(raw)
    variants = raw.pop("variants", None)
    params = _merge(SybilParams, SybilParams(), raw)
    if variants is not None:
        unknown = set(variants) - set(RING_VARIANTS)
        if unknown or not any(float(v) > 0 for v in variants.values()):
            raise ValueError(f"[sybil] variants: unknown {sorted(unknown)} or no positive share; known {RING_VARIANTS}")
        params = replace(params, variants={k: float(v) for k, v in variants.items()})
    return params
