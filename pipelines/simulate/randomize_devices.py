"""Randomized networks for the robustness benchmark: honest habits and GPU attack variants.

Every honest behaviour that can look like fraud is drawn per network from a wide range (how
many owners switch off at night and for how long, outages, maintenance windows, noise, heat,
Apple memory shares, onboarding waves, probe loss, timeout and error rates, the population mix).
Attack variants come in two ranges: the *seen* one (what the default scenario does) and a
*held-out* one the thresholds were never looked at with; a network holds one variant out.
Detection thresholds come from the honest model (``data/policy/detection.toml``), not from
these draws.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pipelines.simulate.scenario import DEFAULT_MIX

GPU_VARIANTS: dict[str, str] = {
    "virtualized_pairs": "a card split in 2-3 slices instead of 4-12 (contention at k=2 is the hardest)",
    "spoof_fast_card": "a fast consumer card (RTX 4090/3090) sold as an H100 instead of a T4 sold as an A100",
    "sparse_sample_cheat": "wrong samples on only 15-40% of answers instead of all",
    "mostly_online_spoofer": "uptime spoofers whose machine is really on 50-80% of the time instead of 10-30%",
    "burst_other_model": "a fake wave of another model at another hour",
    "spoof_hangs": "a 12-16 GB consumer card (RTX 4080/4070 Ti) sold as an A100 80GB whose VRAM challenges mostly hang "
    "(timeout) instead of failing",
}
"""Attack variants that can be held out, with what the held-out form does."""

VARIANT_POPULATIONS: dict[str, str] = {
    "virtualized_pairs": "virtualized_spoofed",
    "spoof_fast_card": "spoofed_model",
    "sparse_sample_cheat": "pow_cheat_samples",
    "mostly_online_spoofer": "uptime_spoofer",
    "burst_other_model": "burst",
    "spoof_hangs": "spoofed_model",
}
"""The population whose recall measures each variant."""


def _u(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(rng.uniform(lo, hi))


def draw_honest_params(rng: np.random.Generator) -> dict[str, Any]:
    """Honest behaviour drawn from wide ranges (scenario overrides)."""
    off_lo = int(rng.integers(2, 7))
    thr_lo = _u(rng, 0.6, 0.75)
    mix = {k: v * float(np.exp(rng.uniform(-0.7, 0.7))) for k, v in DEFAULT_MIX.items()}
    return {
        "mix": mix,
        "daily_off_share": _u(rng, 0.0, 0.4),
        "daily_off_hours": (off_lo, off_lo + int(rng.integers(2, 9))),
        "outage_rate": _u(rng, 0.0, 0.01),
        "outage_hours": (1, int(rng.integers(2, 13))),
        "maintenance_rate": _u(rng, 0.0, 0.05),
        "maintenance_hours": (1, int(rng.integers(2, 13))),
        "home_outage_rate": _u(rng, 0.0, 0.05),
        "pow_noise": _u(rng, 0.02, 0.10),
        "throttle_rate": _u(rng, 0.0, 0.2),
        "throttle_depth": (thr_lo, _u(rng, 0.8, 0.95)),
        "apple_memory_share": (0.6, 0.8),
        "late_rack_share": _u(rng, 0.0, 1.0),
        "new_home_share": _u(rng, 0.0, 0.15),
        "ping_loss": _u(rng, 0.0, 0.05),
        "nat_ping_loss": _u(rng, 0.05, 0.4),
        "pow_timeout_rate": _u(rng, 0.0, 0.015),
        "pow_error_rate": _u(rng, 0.0, 0.01),
    }


def draw_cadence(rng: np.random.Generator) -> dict[str, Any]:
    """A backend's cadence, which the contract does not fix: heartbeats every 5-30 minutes, 1-6
    pings an hour at evenly spaced minutes."""
    pings = int(rng.choice([1, 2, 3, 4, 6]))
    offset = int(rng.integers(0, 60 // pings))
    return {
        "heartbeat_minutes": int(rng.choice([5, 10, 12, 15, 20, 30])),
        "ping_minutes": tuple(offset + k * (60 // pings) for k in range(pings)),
    }


def draw_liveness(rng: np.random.Generator) -> dict[str, Any]:
    """In half the networks, uptime spoofers whose pings a proxy answers too. Workers that hang
    while their host answers (``hung_worker_rate``) are not drawn: a device reachable but silent is
    held on purpose (``failed_pow``, issue 8's class 2), so they would only count as held here."""
    return {"spoofer_proxy_share": _u(rng, 0.0, 1.0) if rng.random() < 0.5 else 0.0}


def draw_operator_sites(rng: np.random.Generator, mix: dict[str, float]) -> dict[str, Any]:
    """A tenth to four tenths of the datacenter devices belong to companies that register one
    account per site (``datacenter_sites``: one treasury, one server build, one mail domain), an
    honest look-alike of a sybil ring; the other populations keep their shares."""
    share = _u(rng, 0.1, 0.4)
    out = dict(mix)
    out["datacenter_sites"] = out.get("datacenter", 0.0) * share
    out["datacenter"] = out.get("datacenter", 0.0) * (1 - share)
    return {"mix": out}


def draw_market(rng: np.random.Generator) -> dict[str, Any]:
    """A rental market: owners' prices and renters' factors spread log-normally (sigma up to 0.3
    and 0.2) around a model's going rate, up to 5% premium cards, and wash traders who pay below,
    at or well above the going rate, in jobs of minutes or of hours."""
    regime = int(rng.integers(0, 3))
    lo = (_u(rng, 0.3, 0.8), _u(rng, 0.9, 1.0), _u(rng, 1.5, 2.5))[regime]
    return {
        "market_spread": (_u(rng, 0.0, 0.3), _u(rng, 0.0, 0.2)),
        "premium_cards": _u(rng, 0.0, 0.05),
        "wash_price": (lo, lo + _u(rng, 0.1, 2.0) if regime == 2 else lo + 0.2),
        "wash_job_hours": (0.08, 0.25) if rng.random() < 0.5 else (0.5, 3.0),
    }


def draw_gpu_attack_params(rng: np.random.Generator, held_out: str | None, hours: int) -> dict[str, Any]:
    """GPU attack parameters: the held-out variant from its held-out range, the rest as seen."""
    if held_out is not None and held_out not in GPU_VARIANTS:
        raise ValueError(f"unknown variant {held_out!r}; known: {sorted(GPU_VARIANTS)}")
    out: dict[str, Any] = {
        "slices_per_card": (4, 12),
        "spoofed_true_models": ("t4", "rtx_3060"),
        "spoofed_claimed_model": "a100_80gb_sxm",
        "cheat_share": 1.0,
        "spoofer_online_rate": _u(rng, 0.1, 0.3),
        "burst_model": "rtx_4070",
        "burst_hour": min(6, max(hours - 1, 0)),
    }
    if held_out == "virtualized_pairs":
        out["slices_per_card"] = (2, 3)
    elif held_out == "spoof_fast_card":
        out.update(spoofed_true_models=("rtx_4090", "rtx_3090"), spoofed_claimed_model="h100_sxm")
    elif held_out == "sparse_sample_cheat":
        out["cheat_share"] = _u(rng, 0.15, 0.4)
    elif held_out == "mostly_online_spoofer":
        out["spoofer_online_rate"] = _u(rng, 0.5, 0.8)
    elif held_out == "spoof_hangs":
        out.update(spoofed_true_models=("rtx_4080", "rtx_4070_ti"), spoofed_vram_hang_share=_u(rng, 0.7, 1.0))
    elif held_out == "burst_other_model":
        out.update(burst_model=str(rng.choice(["rtx_4090", "rtx_3060", "h100_pcie"])),
                   burst_hour=int(rng.integers(1, max(hours - 1, 2))))  # fmt: skip
    return out
