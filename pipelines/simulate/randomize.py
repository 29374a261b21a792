"""Random networks for robustness benchmarks: the sybil side.

``draw_sybil_params`` draws the ``[sybil]`` table of a scenario (``SybilParams``) from wide
ranges, so that rings differ from network to network in the details that fixed patterns miss
(mailbox vendor and shape, funding depth and sharing, restart jitter, sign-up bursts, proxy
ASNs, referrals) and the honest accounts that resemble rings are there too (exchange-funded
accounts with small exchanges among them, several mailbox vendors, nightly restarts, families
funded from one wallet).

Ring recipes are named (``RING_VARIANTS``) so that each can be held out: thresholds are chosen
on networks drawn with ``held_out`` excluded, and checked on networks drawn with
``test=True``, whose rings use only the held-out recipes.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pipelines.simulate.scenario import RING_VARIANTS


def draw_sybil_params(
    rng: np.random.Generator, held_out: set[str] | frozenset[str] = frozenset(), test: bool = False
) -> dict[str, Any]:
    """Scenario overrides ``{"sybil": {...}}`` for one random network.

    ``held_out``: ring recipes left out of the draw (tuning networks); with ``test=True`` the
    rings use only those recipes (the check that thresholds hold on rings they never saw)."""
    unknown = set(held_out) - set(RING_VARIANTS)
    if unknown:
        raise ValueError(f"unknown ring variants {sorted(unknown)}; known {RING_VARIANTS}")
    pool = sorted(held_out) if test else [v for v in RING_VARIANTS if v not in held_out]
    if not pool:
        raise ValueError("no ring variant left to draw from" + (" (test=True needs held_out)" if test else ""))
    shares = rng.dirichlet(np.ones(len(pool)))
    jitter_hi = int(rng.integers(0, 61))
    depth_hi = int(rng.integers(1, 4))
    funder_lo = int(rng.integers(2, 6))
    burst_hi = int(rng.integers(5, 241))
    asn_hi = int(rng.integers(1, 5))
    sybil = {
        "variants": {v: float(s) for v, s in zip(pool, shares)},
        "restart_jitter_minutes": [int(rng.integers(0, jitter_hi + 1)), jitter_hi],
        "funding_depth": [1, depth_hi],
        "accounts_per_funder": [funder_lo, funder_lo + int(rng.integers(1, 10))],
        "signup_burst_minutes": [min(5, burst_hi), burst_hi],
        "proxy_asns": [1, asn_hi],
        "honest_restart_share": float(rng.uniform(0.0, 0.3)),
        "small_exchanges": int(rng.integers(0, 30)),
        "family_shared_funder": float(rng.uniform(0.0, 0.6)),
        "honest_mail_vendors": bool(rng.random() < 0.8),
    }
    return {"sybil": sybil}
