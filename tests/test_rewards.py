"""Rewards, staking and slashing: exact money, properties that must hold for any epoch."""

from __future__ import annotations

import dataclasses
import random
import tempfile
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipelines.db import connect
from pipelines.epoch import shift
from pipelines.export import export_epoch
from pipelines.rewards import settle_held, split_pool
from pipelines.rewards_policy import SCALE, PolicyVersion, bp4, io_to_base_units, load_rewards_policy
from pipelines.slashing import slash, update_accruals

EPOCH = "2024-08-14T05"
VERSION = load_rewards_policy().at(EPOCH)
DOWNTIME_POLICY = dataclasses.replace(
    VERSION, slashing=dataclasses.replace(VERSION.slashing, downtime_rate=500, downtime_hours=30)
)
"""A policy that slashes downtime (5% after 30 hours; the shipped one does not)."""
DOWNTIME_HOURS = DOWNTIME_POLICY.slashing.downtime_hours

device_row = st.fixed_dictionaries(
    {
        "status": st.sampled_from(["paid", "paid", "held", "ineligible"]),
        "weight": st.integers(0, 2_000_000_000),
        "stakers": st.lists(st.integers(1, 10**13), max_size=4),
    }
)


def load_epoch(con, devices: list[dict]) -> None:
    for k, d in enumerate(devices):
        weight = d["weight"] if d["status"] != "ineligible" else 0
        con.execute(
            "INSERT INTO reward_eligibility (epoch, device_id, account_id, wallet, tier, status, weight, multiplier_bp4, "
            "tier_bp4, connectivity_bp4, uptime_permille, hired_permille) VALUES (?, ?, ?, ?, ?, ?, ?, 10000, 10000, 10000, 1000, 0)",
            [EPOCH, f"d{k:03d}", f"a{k % 7}", f"owner{k}", {"held": "probation", "ineligible": "rejected"}.get(d["status"], "standard"),
             d["status"], weight],
        )  # fmt: skip
        for j, units in enumerate(d["stakers"]):
            wallet = f"owner{k}" if j == 0 else f"backer{k}-{j}"
            con.execute("INSERT INTO stake_positions VALUES (?, ?, ?, ?, 0)", [EPOCH, f"d{k:03d}", wallet, units])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(devices=st.lists(device_row, min_size=1, max_size=40), pool_io=st.decimals(0, 100000, places=8))
def test_any_epoch_sums_exactly_to_the_pool_and_pays_no_ineligible(devices, pool_io) -> None:
    version = dataclasses.replace(VERSION, emission_per_epoch=io_to_base_units(str(pool_io)))
    with tempfile.TemporaryDirectory() as tmp, connect(Path(tmp) / "db.duckdb") as con:
        load_epoch(con, devices)
        figures = split_pool(con, EPOCH, version)
        rows = con.execute(
            "SELECT device_id, wallet, amount_base_units, components ->> 'status' FROM reward_allocations"
        ).fetchall()
        again = split_pool(con, EPOCH, version)
        rerun = con.execute(
            "SELECT device_id, wallet, amount_base_units, components ->> 'status' FROM reward_allocations"
        ).fetchall()
    eligible = [d for d in devices if d["status"] != "ineligible" and d["weight"] > 0]
    total = sum(r[2] for r in rows)
    if eligible:
        assert total == version.emission_per_epoch and figures["undistributed"] == 0
    else:
        assert total == 0 and figures["undistributed"] == version.emission_per_epoch
    assert all(r[2] >= 0 for r in rows)
    paid_devices = {r[0] for r in rows if r[2] > 0}
    assert not paid_devices & {f"d{k:03d}" for k, d in enumerate(devices) if d["status"] == "ineligible" or d["weight"] == 0}
    assert {r[3] for r in rows} <= {"paid", "held"}
    assert rows == rerun and figures == again  # a re-run is identical


def _largest_remainder(total: int, weights: dict[str, int]) -> dict[str, int]:
    """Floor shares of ``total`` pro rata to ``weights``, then one unit each to the largest
    remainders (ties by key) until ``total`` is spent: the contract's split, written plainly."""
    w = sum(weights.values())
    base = {k: total * v // w for k, v in weights.items()}
    order = sorted(weights, key=lambda k: (-(total * weights[k] % w), k))
    for k in order[: total - sum(base.values())]:
        base[k] += 1
    return base


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(devices=st.lists(device_row, min_size=1, max_size=25), pool_io=st.decimals(0, 100000, places=8))
def test_each_wallet_gets_its_largest_remainder_share_of_the_device_and_of_the_pool(devices, pool_io) -> None:
    """Every allocation row equals a plain re-implementation: the pool split over device weights,
    the owner's operator share of a staked device, the rest over its co-stakers by stake (one
    staker takes the whole rest; several share it by largest remainder, ties by wallet)."""
    version = dataclasses.replace(VERSION, emission_per_epoch=io_to_base_units(str(pool_io)))
    with tempfile.TemporaryDirectory() as tmp, connect(Path(tmp) / "db.duckdb") as con:
        load_epoch(con, devices)
        split_pool(con, EPOCH, version)
        rows = con.execute("SELECT device_id, wallet, amount_base_units FROM reward_allocations").fetchall()
    weights = {f"d{k:03d}": d["weight"] for k, d in enumerate(devices) if d["status"] != "ineligible" and d["weight"] > 0}
    expected: dict[tuple[str, str], int] = {}
    for device, amount in (_largest_remainder(version.emission_per_epoch, weights) if weights else {}).items():
        k = int(device[1:])
        stakes = {(f"owner{k}" if j == 0 else f"backer{k}-{j}"): u for j, u in enumerate(devices[k]["stakers"])}  # as load_epoch
        operator = amount * version.operator_share // SCALE if stakes else amount
        parts = {f"owner{k}": operator} if stakes else {f"owner{k}": amount}
        for wallet, part in (_largest_remainder(amount - operator, stakes) if stakes else {}).items():
            parts[wallet] = parts.get(wallet, 0) + part
        expected |= {(device, wallet): v for wallet, v in parts.items()}
    assert {(d, w): a for d, w, a in rows if a > 0} == {key: v for key, v in expected.items() if v > 0}


def test_bandwidth_earns_the_highest_connectivity_tier_it_reaches(tmp_path: Path) -> None:
    """Tiers at 0, 50 and 500 Mbit/s (0.5, 1.0, 1.1): a threshold reached exactly counts; no
    report earns no tier (and says so)."""
    from pipelines.rewards import assess

    downs = {"none": None, "zero": 0.0, "below50": 49.9, "at50": 50.0, "below500": 499.99, "at500": 500.0, "fast": 9000.0}
    with connect(tmp_path / "db.duckdb") as con:
        for device, down in downs.items():
            con.execute(
                "INSERT INTO reward_facts VALUES (?, ?, 'acc', 'w', 'standard', 'rtx_4090', 160.0, 100.0, ?, 1000, 0, true)",
                [EPOCH, device, down],
            )
        assess(con, EPOCH, VERSION, reuse_facts=True)
        got = dict(con.execute("SELECT device_id, connectivity_bp4 FROM reward_eligibility").fetchall())
        reasons = dict(con.execute("SELECT device_id, reason FROM reward_eligibility").fetchall())
    assert VERSION.connectivity == ((0.0, 5000), (50.0, 10000), (500.0, 11000))
    assert got == {"none": 0, "zero": 5000, "below50": 5000, "at50": 10000, "below500": 10000, "at500": 11000, "fast": 11000}
    assert "no bandwidth report" in reasons["none"] and "no bandwidth report" not in (reasons["zero"] or "")


def test_a_card_the_catalogue_does_not_list_is_classed_by_its_measured_throughput_among_its_vendors_models(
    tmp_path: Path,
) -> None:
    """A real card outside the catalogue (an RTX 3060 Ti, an M3 Ultra) has no spec to be held to:
    it is classed like a card slower than its claim, as the strongest model of its vendor (read
    from its name) that its measured throughput supports, and paid as such. A name of no known
    vendor, or no measured throughput, earns no class, and so does a card slower than every model
    of its vendor the catalogue lists (a Tesla K80); each says which of these it is."""
    from pipelines.catalogue import load_catalogue
    from pipelines.rewards import assess

    claims = {"ti": ("NVIDIA GeForce RTX 3060 Ti", 30.0), "ultra": ("Apple M3 Ultra", 20.0),
              "radeon": ("AMD Radeon RX 7900 XTX", 120.0), "idle": ("NVIDIA GeForce RTX 3060 Ti", None),
              "k80": ("Tesla K80", 3.14)}  # fmt: skip
    with connect(tmp_path / "db.duckdb") as con:
        for device, (name, tflops) in claims.items():
            con.execute("INSERT INTO device_features (epoch, device_id, gpu_model) VALUES (?, ?, ?)", [EPOCH, device, name])
            con.execute(
                "INSERT INTO reward_facts VALUES (?, ?, 'acc', 'w', 'standard', NULL, ?, NULL, 500.0, 1000, 0, true)",
                [EPOCH, device, tflops],
            )
        # a listed model measuring under every model of its vendor that is paid no more than it
        con.execute(
            "INSERT INTO device_features (epoch, device_id, gpu_model) VALUES (?, 'crawl', 'NVIDIA GeForce RTX 3060')", [EPOCH]
        )
        con.execute(
            "INSERT INTO reward_facts VALUES (?, 'crawl', 'acc', 'w', 'standard', 'rtx_3060', 3.0, 10.0, 500.0, 1000, 0, true)",
            [EPOCH],
        )
        assess(con, EPOCH, VERSION, reuse_facts=True)
        got = {
            r[0]: r[1:]
            for r in con.execute("SELECT device_id, measured_class, multiplier_bp4, reason FROM reward_eligibility").fetchall()
        }
    assert got["crawl"][0] is None and (
        "no measured class (3.0 TFLOPS measured: under 0.8 x the spec of every nvidia model the catalogue lists that is paid "
        "no more than rtx_3060)" in got["crawl"][2]
    )
    spec = {r["model_key"]: r for r in load_catalogue().iter_rows(named=True)}
    multipliers = dict(VERSION.multiplier_rows())
    for device, vendor in (("ti", "nvidia"), ("ultra", "apple")):
        supported = [k for k, r in spec.items() if r["vendor"] == vendor and 0.8 * r["fp16_tensor_tflops"] <= claims[device][1]]
        strongest = max(supported, key=lambda k: (multipliers.get(k, 0), spec[k]["fp16_tensor_tflops"]))
        assert got[device][:2] == (strongest, multipliers.get(strongest, 0)) and "class" not in got[device][2]  # only uptime
    for device, why in (
        ("radeon", "(a model of no vendor the catalogue lists)"),
        ("idle", "(no consistent PoW throughput)"),
        ("k80", "(3.1 TFLOPS measured: under 0.8 x the spec of every nvidia model the catalogue lists)"),
    ):
        assert got[device][0] is None and f"no measured class {why}" in got[device][2]


def test_a_vgpu_guest_that_declares_its_profile_is_paid_no_more_than_its_share_of_the_card(tmp_path: Path) -> None:
    """A guest on a quarter profile of an A100 (``GRID A100D-20C``, 20 GB) that a time-sliced card
    lets compute at the whole card's pace when its neighbours idle sells a share of the card:
    its class is the strongest its throughput supports among the models paid no more than 20 GB's
    share of an A100's multiplier (its name stands for any A100, so the most generous: half of a
    40 GB card's or a quarter of an 80 GB card's). A guest claiming more memory than its profile
    declares nothing, and is classed as an unlisted card."""
    from pipelines.catalogue import load_catalogue
    from pipelines.rewards import assess

    with connect(tmp_path / "db.duckdb") as con:
        for device, mib in (("quarter", 20480), ("overclaims", 81920), ("crawling", 20480)):
            con.execute(
                "INSERT INTO device_features (epoch, device_id, gpu_model, virtualization_mode, vram_total_mb) "
                "VALUES (?, ?, 'GRID A100D-20C', 'VGPU', ?)",
                [EPOCH, device, mib],
            )
            con.execute(
                "INSERT INTO reward_facts VALUES (?, ?, 'acc', 'w', 'standard', NULL, ?, NULL, 500.0, 1000, 0, true)",
                [EPOCH, device, 1.0 if device == "crawling" else 290.0],
            )
        assess(con, EPOCH, VERSION, reuse_facts=True)
        got = dict(con.execute("SELECT device_id, multiplier_bp4 FROM reward_eligibility").fetchall())
        crawling = con.execute("SELECT reason FROM reward_eligibility WHERE device_id = 'crawling'").fetchall()[0][0]
    # a guest slower than every model its share allows says so, and which bound it was held to
    assert got["crawling"] == 0 and "that is paid no more than its declared share of the card" in crawling
    multipliers = dict(VERSION.multiplier_rows())
    catalogue = load_catalogue().filter(pl.col("model_key").str.starts_with("a100"))
    share = max(
        min(multipliers[k], multipliers[k] * 20480 // mib)
        for k, mib in zip(catalogue["model_key"], catalogue["vram_mb"], strict=True)
        if k in multipliers
    )
    assert 0 < got["quarter"] <= share < got["overclaims"]


def test_a_card_measuring_under_the_class_floor_of_its_peers_is_paid_as_the_model_its_throughput_supports(
    tmp_path: Path,
) -> None:
    """An A100 sold as an H100 runs at about a third of the H100s (an eighteenth network written
    by others: its cards sold as the next model up measured 0.34 of their peers and were paid as
    what they claimed). Below ``CLASS_FLOOR_SHARE`` of the peers' median a card is paid as the
    strongest model its throughput supports, never one paid more than its claim (the multiplier
    table pays an RTX 3090 more than a 4090); a throttled card at half its peers keeps its class."""
    from pipelines.rewards import CLASS_FLOOR_SHARE, assess

    peers = {"h100_sxm": 700.0, "rtx_4090": 150.0}
    claims = {"a100_as_h100": ("h100_sxm", 0.36), "throttled": ("h100_sxm", 0.5), "slow_4090": ("rtx_4090", 0.44)}
    assert 0.44 < CLASS_FLOOR_SHARE < 0.5
    with connect(tmp_path / "db.duckdb") as con:
        for model, median in peers.items():
            con.execute("INSERT INTO model_peers VALUES (?, ?, 40, ?, ?)", [EPOCH, model, median, median * 1.1])
        for device, (model, share) in claims.items():
            con.execute(
                "INSERT INTO device_features (epoch, device_id, account_id, gpu_model, catalogue_model, pow_total, pow_ok) "
                "VALUES (?, ?, 'acc', ?, ?, 1, 1)",
                [EPOCH, device, model, model],
            )
            con.execute("INSERT INTO device_measures VALUES (?, ?, ?, 500.0)", [EPOCH, device, share * peers[model]])
        assess(con, EPOCH, VERSION)
        got = {
            r[0]: r[1:]
            for r in con.execute("SELECT device_id, measured_class, multiplier_bp4 FROM reward_eligibility").fetchall()
        }
    multiplier = {key: bp4 for key, bp4 in VERSION.multiplier_rows()}
    assert got["throttled"][0] == "h100_sxm"
    assert got["a100_as_h100"][0] not in (None, "h100_sxm", "h100_pcie", "h200")
    assert got["slow_4090"][0] not in (None, "rtx_4090") and got["slow_4090"][1] <= multiplier["rtx_4090"]


@pytest.mark.parametrize("others_timed", [False, True])
def test_without_compute_times_exact_answers_class_a_device_as_claimed_unless_others_report_theirs(
    tmp_path: Path, others_timed: bool
) -> None:
    """``compute_ms`` is optional: a backend that records no compute times gives no throughput to
    measure, so a device whose answers are exact is classed as the model it claims (the VRAM
    challenges still test the claim); one whose answers failed is not. A device that alone omits
    its times, where the others report theirs, earns no class: omitting them must not pay."""
    from pipelines.rewards import assess

    devices = {"exact": True, "wrong": False}
    with connect(tmp_path / "db.duckdb") as con:
        for k, (device, passed) in enumerate(devices.items()):
            con.execute(
                "INSERT INTO reward_facts VALUES (?, ?, 'acc', 'w', 'standard', 'rtx_4090', NULL, NULL, 500.0, 1000, 0, ?)",
                [EPOCH, device, passed],
            )
            con.execute(
                "INSERT INTO pow (challenge_id, device_id, kind, status, n, _hour, _file, _row) VALUES (?, ?, 'matmul', 'ok', 4096, ?, 'pow.csv', ?)",
                [f"c{k}", device, EPOCH, k],
            )
        for k in range(5 if others_timed else 0):  # a network whose other devices report their times
            con.execute(
                "INSERT INTO pow (challenge_id, device_id, kind, status, n, compute_ms, _hour, _file, _row) "
                "VALUES (?, 'timed', 'matmul', 'ok', 4096, 1.0, ?, 'pow.csv', ?)",
                [f"t{k}", EPOCH, 10 + k],
            )
        assess(con, EPOCH, VERSION, reuse_facts=True)
        got = dict(con.execute("SELECT device_id, measured_class FROM reward_eligibility").fetchall())
    assert got == {"exact": None if others_timed else "rtx_4090", "wrong": None}


@pytest.mark.parametrize("hour_lost", [True, False])
def test_an_hour_with_no_drop_at_all_is_waived_by_the_uptime_rule_not_read_as_every_devices_outage(
    tmp_path: Path, hour_lost: bool
) -> None:
    """An hour never delivered (or rejected whole) leaves no data on anyone: read as downtime, it
    kept every device of the network unpaid for the next ``min_continuous_uptime_hours``. It is
    waived like a source absent from a whole hour; a device's own outage still counts, and the
    hours before the first one measured (a network's start) are not waived."""
    from pipelines.rewards import assess

    need = VERSION.min_continuous_uptime_hours
    start, now = "2024-08-14T00", shift("2024-08-14T00", need + 2)
    lost = shift(now, -2)
    with connect(tmp_path / "db.duckdb") as con:
        for h in range(need + 3):
            ep = shift(start, h)
            if hour_lost and ep == lost:
                continue
            con.execute("INSERT INTO uptime_cadence VALUES (?, 10, 12, 50, 3, 12, 14, 40)", [ep])
            for device, up in (("steady", True), ("down_once", ep != shift(now, -1)), ("new", ep >= shift(now, -1))):
                con.execute(
                    "INSERT INTO device_features (epoch, device_id, account_id, ping_total, ping_ok, heartbeat_ok) "
                    "VALUES (?, ?, 'acc', 12, ?, 6)",
                    [ep, device, 12 if up else 0],
                )
        for device in ("steady", "down_once", "new"):
            con.execute(
                "INSERT INTO reward_facts VALUES (?, ?, 'acc', 'w', 'verified', 'rtx_4090', 400.0, 50.0, 500.0, 1000, 0, true)",
                [now, device],
            )
        assess(con, now, VERSION, reuse_facts=True)
        got = {d: (u, r) for d, u, r in con.execute("SELECT device_id, up_hours, reason FROM reward_eligibility").fetchall()}
    waived = " (1 without data waived)" if hour_lost else ""
    assert got == {
        "steady": (need - hour_lost, None),
        "down_once": (need - 1 - hour_lost, f"up {need - 1 - hour_lost} of the last {need} hours{waived}"),
        "new": (2, f"up 2 of the last {need} hours{waived}"),
    }
    # at the network's start the hours before the first measured one are not waived
    with connect(tmp_path / "start.duckdb") as con:
        for h in range(2):
            con.execute("INSERT INTO uptime_cadence VALUES (?, 10, 12, 50, 3, 12, 14, 40)", [shift(start, h)])
            con.execute(
                "INSERT INTO device_features (epoch, device_id, account_id, ping_total, ping_ok, heartbeat_ok) "
                "VALUES (?, 'steady', 'acc', 12, 12, 6)",
                [shift(start, h)],
            )
        con.execute(
            "INSERT INTO reward_facts VALUES (?, 'steady', 'acc', 'w', 'verified', 'rtx_4090', 400.0, 50.0, 500.0, 1000, 0, true)",
            [shift(start, 1)],
        )
        assess(con, shift(start, 1), VERSION, reuse_facts=True)
        assert con.execute("SELECT reason FROM reward_eligibility").fetchall() == [(f"up 2 of the last {need} hours",)]


def test_a_device_the_backend_did_not_challenge_this_hour_passes_pow_on_a_pass_within_the_day(tmp_path: Path) -> None:
    """The backend decides whom to challenge: one that challenges each device every few hours, or
    pauses challenges while a device is hired, left such devices unpaid in every hour without a
    challenge. Not challenged this hour, a device passes on an exact answer within
    ``POW_CARRY_HOURS``; a challenge it let time out, a wrong answer, or no pass that recent does not."""
    from pipelines.rewards import POW_CARRY_HOURS, record_facts

    now = "2024-08-15T05"
    history = {  # device -> (hours ago it last passed, this hour: challenges, answered)
        "unchallenged": (3, 0, 0),
        "timed_out": (3, 1, 0),
        "stale": (POW_CARRY_HOURS, 0, 0),
        "never": (None, 0, 0),
        "answered": (None, 1, 1),
    }
    with connect(tmp_path / "db.duckdb") as con:
        for device, (ago, total, ok) in history.items():
            rows = [(now, total, ok)] + ([(shift(now, -ago), 1, 1)] if ago else [])
            for ep, total_, ok_ in rows:
                con.execute(
                    "INSERT INTO device_features (epoch, device_id, account_id, pow_total, pow_ok, samples_bad, "
                    "overclaimed_compute, unverified_ok) VALUES (?, ?, 'acc', ?, ?, 0, 0, 0)",
                    [ep, device, total_, ok_],
                )
        con.execute(
            "INSERT INTO device_features (epoch, device_id, account_id, pow_total, pow_ok, samples_bad, overclaimed_compute, "
            "unverified_ok) VALUES (?, 'was_wrong', 'acc', 1, 1, 1, 0, 0), (?, 'was_wrong', 'acc', 0, 0, 0, 0, 0)",
            [shift(now, -2), now],
        )
        record_facts(con, now)
        got = dict(con.execute("SELECT device_id, pow_passed FROM reward_facts").fetchall())
    assert got == {"unchallenged": True, "timed_out": False, "stale": False, "never": False, "answered": True, "was_wrong": False}


def test_a_device_whose_pings_are_all_dropped_but_answers_its_challenge_earns_its_heartbeat_share(tmp_path: Path) -> None:
    """Carrier NAT or a firewall drops every backend ping of a machine that answers its
    challenges: the uptime rule counts its hour up, and its share of the hour is read from its
    heartbeats, as in an hour the backend pinged nobody (an independently written network's 71
    ping-blocked devices were eligible with weight 0, never paid). Pings answered keep their own
    share; a machine answering neither pings nor challenges earns nothing."""
    from pipelines.rewards import record_facts

    now = "2024-08-15T05"
    rows = {  # device -> (pings sent, answered, heartbeats, challenges answered)
        "firewalled": (4, 0, 6, 1),
        "firewalled_few_beats": (4, 0, 3, 1),
        "flaky": (4, 3, 6, 1),
        "silent": (4, 0, 6, 0),
    }
    with connect(tmp_path / "db.duckdb") as con:
        con.execute("INSERT INTO uptime_cadence VALUES (?, 10, 4, 50, 3, 12, 14, 40)", [now])
        for device, (pings, ok, beats, answered) in rows.items():
            con.execute(
                "INSERT INTO device_features (epoch, device_id, account_id, ping_total, ping_ok, heartbeat_ok, pow_total, "
                "pow_ok, samples_bad, overclaimed_compute, unverified_ok) VALUES (?, ?, 'acc', ?, ?, ?, 1, ?, 0, 0, 0)",
                [now, device, pings, ok, beats, answered],
            )
        record_facts(con, now)
        got = dict(con.execute("SELECT device_id, uptime_permille FROM reward_facts").fetchall())
    assert got == {"firewalled": 1000, "firewalled_few_beats": 500, "flaky": 750, "silent": 0}


def test_equal_weights_earn_equal_amounts_whatever_the_account_size(tmp_path: Path) -> None:
    devices = [{"status": "paid", "weight": 12500, "stakers": []} for _ in range(501)]
    with connect(tmp_path / "db.duckdb") as con:
        for k, d in enumerate(devices):  # device 0: a one-GPU account; 1..500: one big account
            con.execute(
                "INSERT INTO reward_eligibility (epoch, device_id, account_id, wallet, tier, status, weight) VALUES (?, ?, ?, ?, 'standard', 'paid', ?)",
                [EPOCH, f"d{k:03d}", "small" if k == 0 else "big", "w-small" if k == 0 else "w-big", d["weight"]],
            )
        split_pool(con, EPOCH, VERSION)
        amounts = [r[0] for r in con.execute("SELECT amount_base_units FROM reward_allocations ORDER BY device_id").fetchall()]
    assert max(amounts) - min(amounts) <= 1 and sum(amounts) == VERSION.emission_per_epoch


def _tiers(con, epoch: str, tiers: dict[str, str]) -> None:
    for device, tier in tiers.items():
        con.execute("INSERT INTO device_tiers VALUES (?, ?, ?, ?, [], 0.0, '[]')", [epoch, device, f"acc-{device}", tier])


def _held(con, epoch: str, device: str, wallet: str, units: int) -> None:
    con.execute(
        'INSERT INTO reward_allocations VALUES (?, ?, ?, ?, ?, 1, \'{"status": "held"}\')',
        [epoch, device, f"acc-{device}", wallet, units],
    )


def test_held_shares_are_released_after_a_clear_stretch_forfeited_when_rejected_and_kept_while_flagged(
    tmp_path: Path,
) -> None:
    """Four devices held at hours 5 and 6. Then one is cleared for good, one rejected, one
    cleared but flagged again at hour 8, one never seen again. Recomputing settles the same."""
    clear = 3  # hours out of probation before a release (the shipped policy: 24)
    hours = [f"2024-08-14T{h:02d}" for h in range(5, 12)]
    with connect(tmp_path / "db.duckdb") as con:
        for hour in hours[:2]:
            _tiers(con, hour, {"cleared": "probation", "cheat": "probation", "again": "probation", "gone": "probation"})
            for device in ("cleared", "cheat", "again", "gone"):
                _held(con, hour, device, f"owner-{device}", 700)
            _held(con, hour, "cleared", "backer", 300)  # a co-staker's part is held for the co-staker
        for hour in hours[2:]:
            _tiers(
                con, hour, {"cleared": "standard", "cheat": "rejected", "again": "probation" if hour == hours[3] else "standard"}
            )
        _held(con, hours[3], "again", "owner-again", 700)
        figures = {hour: settle_held(con, hour, clear) for hour in hours}
        assert figures[hours[2]] == {"released": 0, "forfeited": 2 * 700}  # rejected: at once; cleared: not yet
        assert figures[hours[4]] == {"released": 2 * (700 + 300), "forfeited": 0}  # no probation in hours 7-9
        assert figures[hours[5]] == {"released": 0, "forfeited": 0}  # "again" was flagged at hour 8
        assert figures[hours[6]] == {"released": 3 * 700, "forfeited": 0}  # ... and is clear in hours 9-11
        ledger = "SELECT held_epoch, device_id, wallet, amount_base_units, settled_epoch, outcome FROM held_rewards ORDER BY ALL"
        before = con.execute(ledger).fetchall()
        settled = {(d, w): (s, o) for _, d, w, _, s, o in before}
        assert settled[("cleared", "backer")] == (hours[4], "released")
        assert settled[("cheat", "owner-cheat")] == (hours[2], "forfeited")
        assert settled[("gone", "owner-gone")] == (None, None)
        assert [settle_held(con, hour, clear) for hour in hours[3:]] == [figures[h] for h in hours[3:]]  # from hour 8 on
        assert con.execute(ledger).fetchall() == before
        export_epoch(con, tmp_path / "out", hours[4], ("held_settlements", "account_statements"))
        shares = pl.read_parquet(tmp_path / "out" / "held_settlements" / f"epoch={hours[4]}" / "part-0.parquet")
        statements = pl.read_parquet(tmp_path / "out" / "account_statements" / f"epoch={hours[4]}" / "part-0.parquet")
    assert shares.height == 4 and set(shares["outcome"]) == {"released"}
    rows = {r["account_id"]: r for r in statements.to_dicts()}  # no allocation this hour, still a statement
    assert rows["acc-cleared"]["released_base_units"] == 2000 and rows["acc-cleared"]["devices"] == 0
    assert "acc-again" not in rows and "acc-gone" not in rows


def test_a_new_devices_shares_are_held_until_it_is_verified_then_released_in_full(tmp_path: Path) -> None:
    """Under ``standard = "hold"`` a standard device's shares wait for its verification; a
    device rejected before it is verified forfeits them; under ``pay`` standard releases."""
    hours = [f"2024-08-14T{h:02d}" for h in range(0, 4)]
    tiers = {"new": ["standard", "standard", "verified", "verified"], "ring": ["standard", "standard", "rejected", "rejected"]}
    with connect(tmp_path / "db.duckdb") as con:
        for i, hour in enumerate(hours):
            _tiers(con, hour, {device: seen[i] for device, seen in tiers.items()})
            if i < 2:
                _held(con, hour, "new", "owner-new", 500)
                _held(con, hour, "ring", "owner-ring", 400)
        figures = [settle_held(con, hour, 0, "hold") for hour in hours]
        assert figures == [{"released": 0, "forfeited": 0}, {"released": 0, "forfeited": 0},
                           {"released": 1000, "forfeited": 800}, {"released": 0, "forfeited": 0}]  # fmt: skip
        assert settle_held(con, hours[1], 0, "pay") == {"released": 900, "forfeited": 0}  # standard releases under pay


def test_a_released_share_counts_as_accrued_for_a_later_slashing(tmp_path: Path) -> None:
    with connect(tmp_path / "db.duckdb") as con:
        _tiers(con, "2024-08-14T03", {"dev": "probation"})
        _held(con, "2024-08-14T03", "dev", "w0", 1_000_000)
        _tiers(con, "2024-08-14T04", {"dev": "standard"})
        for hour in ("2024-08-14T03", "2024-08-14T04"):
            settle_held(con, hour, 0)
        _reject(con, "dev", EPOCH, EPOCH)
        slash(con, EPOCH, VERSION)
        taken = con.execute(
            "SELECT sum(amount_base_units), any_value(evidence ->> 'from_accrued') FROM slashing_events"
        ).fetchall()[0]
    assert taken == (
        1_000_000 * VERSION.slashing.deliberate_rate // SCALE,
        str(1_000_000 * VERSION.slashing.deliberate_rate // SCALE),
    )


@st.composite
def incident(draw):
    accrued = draw(st.lists(st.integers(0, 10**12), min_size=0, max_size=5))
    stake = draw(st.lists(st.tuples(st.integers(0, 10**13), st.integers(0, 10**12)), min_size=0, max_size=4))
    rate = draw(st.sampled_from([bp4(1), bp4(0.05), bp4(0.5), bp4(0.3333)]))
    return accrued, stake, rate


def _reject(con, device: str, epoch: str, since: str) -> None:
    con.execute("INSERT INTO device_state VALUES (?, ?, 'rejected', 0, ['failed_pow'], ?, 1.0)", [epoch, device, since])
    con.execute("INSERT INTO device_tiers VALUES (?, ?, 'acc', 'rejected', ['failed_pow'], 1.0, '[]')", [epoch, device])


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=incident())
def test_slashing_never_exceeds_stake_plus_accrued_and_happens_once(case) -> None:
    accrued, stake, rate = case
    version = dataclasses.replace(VERSION, slashing=dataclasses.replace(VERSION.slashing, deliberate_rate=rate))
    with tempfile.TemporaryDirectory() as tmp, connect(Path(tmp) / "db.duckdb") as con:
        for j, units in enumerate(accrued):
            con.execute(
                "INSERT INTO reward_allocations VALUES ('2024-08-14T02', 'dev', 'acc', ?, ?, 1, '{\"status\": \"paid\"}')",
                [f"w{j}", units],
            )
        for j, (active, cooling) in enumerate(stake):
            con.execute("INSERT INTO stake_positions VALUES (?, 'dev', ?, ?, ?)", [EPOCH, f"w{j}", active, cooling])
        _reject(con, "dev", EPOCH, EPOCH)
        assert slash(con, EPOCH, version) == 1
        first = con.execute("SELECT incident_id, wallet, amount_base_units FROM slashing_events ORDER BY ALL").fetchall()
        assert slash(con, EPOCH, version) == 1  # the same epoch again: the same incident, not a second
        assert con.execute("SELECT incident_id, wallet, amount_base_units FROM slashing_events ORDER BY ALL").fetchall() == first
        _reject(con, "dev", "2024-08-14T06", EPOCH)  # still rejected next hour: no new incident
        con.execute(
            "INSERT INTO stake_positions SELECT '2024-08-14T06', device_id, wallet, active_units, cooling_units FROM stake_positions"
        )
        assert slash(con, "2024-08-14T06", version) == 0
    held = sum(accrued) + sum(a + c for a, c in stake)
    taken = sum(r[2] for r in first)
    assert taken == held * rate // SCALE <= held
    assert len({r[0] for r in first}) <= 1


def test_policy_versions_take_effect_on_their_date_and_the_first_covers_earlier_epochs() -> None:
    policy = load_rewards_policy()
    assert not policy.at("2024-08-31T23").stake_required and policy.at("2024-09-01T00").stake_required
    assert policy.at("2024-08-14T00").emission_per_epoch == 228310502283
    assert (
        policy.at("2024-08-14T00").stake_per_gpu * max(SCALE, policy.at("2024-08-14T00").device_multipliers["h100_sxm"]) // SCALE
        == 2000 * 10**8
    )
    assert policy.at("2023-01-01T00") == policy.at("2024-08-01T00") != policy.at("2024-09-01T00")
    with pytest.raises(ValueError, match="8 decimals"):
        io_to_base_units("0.123456789")


def _rows_match_schema(rows: list[dict], schema_name: str) -> None:
    import json as _json

    schema = _json.loads(Path(f"docs/schemas/{schema_name}.schema.json").read_text())
    for row in rows:
        assert set(schema["required"]) <= set(row) <= set(schema["properties"]), (schema_name, sorted(row))


@pytest.mark.slow
def test_a_simulated_day_pays_exactly_and_exports_per_schema(day_run) -> None:
    import duckdb
    import polars as pl

    drops, db, out = day_run
    with connect(db) as con:
        pools = con.execute(
            "SELECT p.epoch, p.pool_units, p.undistributed_units, coalesce(sum(a.amount_base_units), 0) FROM epoch_pools p "
            "LEFT JOIN reward_allocations a USING (epoch) GROUP BY ALL"
        ).fetchall()
        rejected_paid = con.execute(
            "SELECT count(*) FROM reward_allocations a JOIN device_tiers t USING (epoch, device_id) "
            "WHERE t.tier = 'rejected' AND a.amount_base_units > 0"
        ).fetchall()[0][0]
        incidents = con.execute("SELECT count(DISTINCT incident_id), count(DISTINCT device_id) FROM slashing_events").fetchall()[
            0
        ]
    assert len(pools) == 24 and all(alloc + undist == pool for _, pool, undist, alloc in pools)
    assert any(alloc == pool for _, pool, _, alloc in pools)
    assert rejected_paid == 0 and incidents[0] == incidents[1] > 0
    for table in ("reward_allocations", "slashing_events", "account_statements"):
        files = sorted((out / table).glob("epoch=*/part-0.parquet"))
        assert len(files) == 24 and all(f.with_suffix(".csv").exists() for f in files)
        rows = (
            duckdb.sql(f"SELECT * FROM read_parquet('{out}/{table}/*/*.parquet', hive_partitioning=false) LIMIT 50")
            .pl()
            .to_dicts()
        )
        _rows_match_schema(rows, table)
    truth = pl.read_parquet(drops / "_truth" / "devices.parquet")
    paid = duckdb.sql(
        f"SELECT device_id, sum(amount_base_units) AS amount FROM read_parquet('{out}/reward_allocations/*/*.parquet') GROUP BY 1"
    ).pl()
    share = paid.join(truth, on="device_id").group_by(pl.col("fraud_types").list.len() > 0).agg(pl.col("amount").sum())
    fraud = share.filter(pl.col("fraud_types"))["amount"].sum() / share["amount"].sum()
    assert fraud < 0.05, fraud  # a day: fraud is paid only until caught (the month benchmark measures <= 0.1%)


def quick_policy(tmp_path: Path, **replace: str) -> Path:
    """The shipped policy with 1 hour of continuous uptime (the 4-hour test network) and edits."""
    text = (
        Path("data/policy/rewards.toml").read_text().replace("min_continuous_uptime_hours = 5", "min_continuous_uptime_hours = 1")
    )
    for old, new in replace.items():
        text = text.replace(old, new)
    path = tmp_path / "rewards.toml"
    path.write_text(text)
    return path


def test_stake_requirement_from_its_effective_date(small_drops: Path, tmp_path: Path) -> None:
    from pipelines.run import run

    policy = quick_policy(tmp_path, **{'effective_from = "2024-09-01T00"': 'effective_from = "2024-08-14T02"'})
    run(small_drops, tmp_path / "db.duckdb", None, rewards=load_rewards_policy(policy))
    with connect(tmp_path / "db.duckdb") as con:
        unstaked_paid = con.execute(
            "SELECT count(*) FROM reward_eligibility WHERE epoch >= '2024-08-14T02' AND status <> 'ineligible' AND stake_units < stake_needed"
        ).fetchall()[0][0]
        unstaked_paid_before = con.execute(
            "SELECT count(*) FROM reward_eligibility WHERE epoch = '2024-08-14T01' AND status <> 'ineligible' AND stake_units < stake_needed"
        ).fetchall()[0][0]
        versions = dict(con.execute("SELECT epoch, policy_version FROM epoch_pools").fetchall())
        reasons = con.execute("SELECT count(*) FROM reward_eligibility WHERE reason LIKE '%base units required%'").fetchall()[0][
            0
        ]
    assert unstaked_paid == 0 and reasons > 0 and unstaked_paid_before > 0
    assert versions["2024-08-14T01"] == "2024-08" and versions["2024-08-14T02"] == "2024-09"


def test_recalculation_with_a_review_verdict_moves_money_and_explains_it(small_drops: Path, tmp_path: Path) -> None:
    from pipelines.policy import load_policy
    from pipelines.recalc import Override, recalculate
    from pipelines.run import run

    db = tmp_path / "db.duckdb"
    rewards = load_rewards_policy(quick_policy(tmp_path))
    run(small_drops, db, None, rewards=rewards)
    with connect(db) as con:
        ((device, account),) = con.execute(
            "SELECT device_id, account_id FROM reward_allocations WHERE epoch = '2024-08-14T03' AND amount_base_units > 0 "
            "ORDER BY device_id LIMIT 1"
        ).fetchall()
        before = con.execute("SELECT count(*), sum(amount_base_units) FROM reward_allocations").fetchall()
        dry = recalculate(con, "2024-08-14T03", "2024-08-14T03", load_policy(), rewards,
                          [Override(device, "rejected", "review: borrowed identity")])  # fmt: skip
        assert con.execute("SELECT count(*), sum(amount_base_units) FROM reward_allocations").fetchall() == before
        applied = recalculate(con, "2024-08-14T03", "2024-08-14T03", load_policy(), rewards,
                              [Override(device, "rejected", "review: borrowed identity")], apply=True)  # fmt: skip
        paid_after = con.execute(
            "SELECT coalesce(sum(amount_base_units), 0) FROM reward_allocations WHERE device_id = ? AND epoch = '2024-08-14T03'",
            [device],
        ).fetchall()[0][0]
    assert dry.equals(applied) and int(dry["delta_base_units"].sum()) == 0
    row = dry.filter(dry["account_id"] == account).row(0, named=True)
    assert row["new_base_units"] < row["old_base_units"] and "-> [rejected]" in row["changes"]
    assert paid_after == 0


def test_a_staked_device_down_a_full_day_is_slashed_once_per_outage_and_nobody_else(tmp_path: Path) -> None:
    """Downtime, under a policy that slashes it: a staked device down ``downtime_hours`` epochs in a row opens one incident, in
    the epoch the outage reaches that length; a longer outage opens no second one, a new outage
    after an hour up does; an unstaked device, a device down one hour short, a device up but with
    half its pings lost (up: at least half answered) and a device up are not slashed."""
    down = DOWNTIME_HOURS
    start = "2024-08-14T00"
    epochs = [shift(start, h) for h in range(2 * down + 4)]
    outage_2 = range(down + 3, 2 * down + 4)  # "back": down again after one hour up
    pattern = {
        "out": lambda h: h >= 1,  # down from hour 1: reaches `down` hours at hour `down`
        "back": lambda h: 1 <= h <= down + 1 or h in outage_2,
        "unstaked": lambda h: h >= 1,
        "short": lambda h: 1 <= h < down,
        "half": lambda h: False,
        "up": lambda h: False,
    }
    with connect(tmp_path / "db.duckdb") as con:
        opened = {}
        for h, ep in enumerate(epochs):
            for device, is_down in pattern.items():
                ping_ok = 0 if is_down(h) else (6 if device == "half" else 12)
                con.execute(
                    "INSERT INTO device_features (epoch, device_id, account_id, ping_total, ping_ok) VALUES (?, ?, 'acc', 12, ?)",
                    [ep, device, ping_ok],
                )
                if device != "unstaked":
                    con.execute("INSERT INTO stake_positions VALUES (?, ?, 'w', 1000000, 0)", [ep, device])
            if slash(con, ep, DOWNTIME_POLICY):
                opened[ep] = [
                    r[0]
                    for r in con.execute(
                        "SELECT DISTINCT device_id FROM slashing_events WHERE epoch = ? ORDER BY 1", [ep]
                    ).fetchall()
                ]
        kinds = con.execute("SELECT DISTINCT evidence ->> 'kind' FROM slashing_events").fetchall()
    assert opened == {shift(start, down): ["back", "out"], shift(start, down + 2 + down): ["back"]}
    assert kinds == [("downtime",)]


def test_where_the_backend_pings_nobody_downtime_is_read_from_heartbeats(tmp_path: Path) -> None:
    """A backend that never pings (or whose prober is down) leaves every device without an
    answered ping: read as downtime, that would slash every staked device after a day. In an
    hour the backend pinged nobody (``uptime_cadence.pings_per_hour`` 0) a device is down when
    it also sent under half its heartbeats: the silent one is slashed once, the beating one not."""
    down = DOWNTIME_HOURS
    with connect(tmp_path / "db.duckdb") as con:

        def hour(ep: str, h: int) -> list[str]:
            con.execute("INSERT INTO uptime_cadence VALUES (?, 10, 0, 50, 3, 12, 14, 40)", [ep])
            for device, beats in (("silent", 0 if h >= 1 else 6), ("beating", 6), ("few", 2 if h >= 1 else 6)):
                con.execute(
                    "INSERT INTO device_features (epoch, device_id, account_id, ping_total, ping_ok, heartbeat_ok) "
                    "VALUES (?, ?, 'acc', 0, 0, ?)",
                    [ep, device, beats],
                )
            return ["silent", "beating", "few"]

        opened = _staked_downtime(con, down + 2, hour)
    assert opened == {shift(DOWNTIME_START, down): ["few", "silent"]}


DOWNTIME_START = "2024-08-14T00"


def _staked_downtime(
    con, hours: int, hour: Callable[[str, int], list[str]], version: PolicyVersion = DOWNTIME_POLICY
) -> dict[str, list[str]]:
    """Run slashing over ``hours`` epochs from ``DOWNTIME_START`` under ``version`` (one that
    slashes downtime unless said); ``hour(epoch, h)`` writes the epoch's device rows and returns
    the devices, each then staked. The devices each epoch opened an incident for."""
    opened = {}
    for h in range(hours):
        ep = shift(DOWNTIME_START, h)
        for device in hour(ep, h):
            con.execute("INSERT INTO stake_positions VALUES (?, ?, 'w', 1000000, 0)", [ep, device])
        if slash(con, ep, version):
            opened[ep] = sorted(
                r[0] for r in con.execute("SELECT DISTINCT device_id FROM slashing_events WHERE epoch = ?", [ep]).fetchall()
            )
    return opened


def test_a_machine_whose_firewall_drops_every_ping_but_answers_its_challenges_is_not_down(tmp_path: Path) -> None:
    """A firewall that drops the backend's probes fails every ping of a machine that answers every
    proof-of-work challenge it is sent (an independently written network's ICMP-blocked boxes
    were slashed for a day "down"). An answered challenge is the stronger sign of life, and one a
    machine that is really off cannot give: that one is slashed once, the firewalled one never."""
    with connect(tmp_path / "db.duckdb") as con:

        def hour(ep: str, h: int) -> list[str]:
            for device, pow_ok in (("firewalled", 2), ("off", 0 if h >= 1 else 2)):
                con.execute(
                    "INSERT INTO device_features (epoch, device_id, account_id, ping_total, ping_ok, heartbeat_ok, pow_ok) "
                    "VALUES (?, ?, 'acc', 4, 0, 6, ?)",
                    [ep, device, pow_ok],
                )
            return ["firewalled", "off"]

        opened = _staked_downtime(con, DOWNTIME_HOURS + 2, hour)
        up = con.execute("SELECT reachable_hour(4, 0, 2, 4), reachable_hour(4, 0, 0, 4), reachable_hour(4, 3, 0, 4)").fetchall()
    assert opened == {shift(DOWNTIME_START, DOWNTIME_HOURS): ["off"]}
    assert up == [(True, False, True)]  # what the reward stage's uptime reads


def test_a_reinstalled_worker_whose_card_answers_under_a_new_device_id_is_not_slashed_for_the_old_ids_silence(
    tmp_path: Path,
) -> None:
    """Reinstalling the worker (or the OS) registers the same card under a new device id; the old
    id then stays silent while its stake still points at it (an independently written network's
    reinstalled machines were slashed for a day "down" while their card answered every hour). A
    card up under another device id of the same account is not down; a card that went quiet
    while another account's device shows its UUID is (that is no reinstall). The old ids' rows
    carry their last reported card through the silent hours, as features do."""
    with connect(tmp_path / "db.duckdb") as con:

        def hour(ep: str, h: int) -> list[str]:
            rows = [("old", "acc", "GPU-1", h < 1), ("other_owner_old", "acc2", "GPU-2", h < 1)]
            if h >= 1:  # the same cards answer from the next hour on, under new ids
                rows += [("new", "acc", "GPU-1", True), ("stranger", "acc3", "GPU-2", True)]
            for device, account, uuid, up in rows:
                con.execute(
                    "INSERT INTO device_features (epoch, device_id, account_id, gpu_uuid, ping_total, ping_ok, heartbeat_ok, pow_ok) "
                    "VALUES (?, ?, ?, ?, 4, ?, 6, ?)",
                    [ep, device, account, uuid, 4 if up else 0, 2 if up else 0],
                )
            return ["old", "other_owner_old"]

        opened = _staked_downtime(con, DOWNTIME_HOURS + 2, hour)
    assert opened == {shift(DOWNTIME_START, DOWNTIME_HOURS): ["other_owner_old"]}


def test_an_owner_away_for_days_keeps_the_stake_under_the_shipped_policy(tmp_path: Path) -> None:
    """Offline is not fraud: owners switch off for a weekend or travel (two independently written
    networks' owners away for one to two days were slashed 5% under the old shipped rule). Under
    the shipped policy an outage costs the device its rewards, never its stake, however long;
    every version of the shipped file says so."""
    with connect(tmp_path / "db.duckdb") as con:

        def hour(ep: str, h: int) -> list[str]:
            for device, down in (("weekend", 1 <= h <= 40), ("holiday", h >= 1)):
                con.execute(
                    "INSERT INTO device_features (epoch, device_id, account_id, ping_total, ping_ok, heartbeat_ok, pow_ok) "
                    "VALUES (?, ?, 'acc', 4, ?, ?, 0)",
                    [ep, device, 0 if down else 4, 0 if down else 6],
                )
            return ["weekend", "holiday"]

        opened = _staked_downtime(con, 80, hour, VERSION)
        events = con.execute("SELECT count(*) FROM slashing_events").fetchall()[0][0]
    assert opened == {} and events == 0
    assert {v.slashing.downtime_rate for v in load_rewards_policy().versions} == {0}


def _window_payouts(con, epoch: str, hours: int) -> list[tuple]:
    """What each (device, wallet) was paid in the window ending at ``epoch``, from the whole ledgers."""
    return con.execute(
        "SELECT device_id, wallet, sum(amount_base_units), count(*) FROM payouts "
        "WHERE epoch > hours_back(?, ?) AND epoch <= ? GROUP BY ALL ORDER BY ALL",
        [epoch, hours, epoch],
    ).fetchall()


def test_the_accrual_state_carried_hour_to_hour_equals_the_windows_payouts_after_reruns_and_a_new_window(
    tmp_path: Path,
) -> None:
    """``slashing_accruals`` is updated from the hour before (two epoch ranges read, not the
    window); at every hour it equals a sum over the whole ledgers, also when an hour is run
    again, an epoch is skipped, a recalculation starts in the past, or the window changes."""
    rng = random.Random(7)
    hours = [shift("2024-08-14T00", h) for h in range(40) if h != 17]  # hour 17 never came
    window = 6
    with connect(tmp_path / "db.duckdb") as con:

        def fill(epoch: str) -> None:
            for device in ("a", "b", "c"):
                status = rng.choice(["paid", "paid", "held", "ineligible"])
                for wallet in rng.sample(["w0", "w1", "w2"], rng.randint(1, 2)):
                    con.execute(
                        "INSERT INTO reward_allocations VALUES (?, ?, 'acc', ?, ?, 1, json_object('status', ?))",
                        [epoch, device, wallet, rng.choice([0, 5, 1000]), status],
                    )
                if status == "held":
                    con.execute(
                        "INSERT INTO held_rewards SELECT epoch, device_id, account_id, wallet, amount_base_units, "
                        "?, 'released' FROM reward_allocations WHERE epoch = ? AND device_id = ?",
                        [shift(epoch, rng.randint(1, 4)), epoch, device],
                    )

        def state() -> list[tuple]:
            return con.execute("SELECT device_id, wallet, units, payout_rows FROM slashing_accruals ORDER BY ALL").fetchall()

        for epoch in hours:
            fill(epoch)
        paid_nothing = 0  # (device, wallet) rows of the window with payout rows that add up to 0
        for epoch in hours:
            update_accruals(con, epoch, window)
            assert state() == _window_payouts(con, epoch, window), epoch
            paid_nothing += sum(units == 0 for _, _, units, _ in state())
        assert paid_nothing > 0
        update_accruals(con, hours[-1], window)  # the same hour again
        assert state() == _window_payouts(con, hours[-1], window)
        for epoch in hours[10:20]:  # a recalculation from hour 10
            update_accruals(con, epoch, window)
            assert state() == _window_payouts(con, epoch, window), epoch
        update_accruals(con, hours[20], 3)  # a policy version with another window
        assert state() == _window_payouts(con, hours[20], 3)
        assert len(state()) > 0


def test_stake_earns_only_for_hours_it_was_held_through_so_a_stake_parked_over_each_hours_end_earns_nothing(
    tmp_path: Path,
) -> None:
    """A stake counts in an hour only if it was there for all of it: one that arrives mid-hour
    earns from the next hour, one withdrawn mid-hour earns nothing in that hour (and cools).
    A wallet that stakes 50,000 IO at HH:58 and withdraws it at HH:02 (read at each hour's end,
    it looked staked every hour) is never active; the owner's stake held all along is."""
    from pipelines.staking import build_positions

    rows = [("2024-08-14 03:20:00", "owner", "stake", "200"), ("2024-08-14 05:30:00", "owner", "stake", "100")]
    for h in range(2, 6):  # the flash staker: in at HH:58, out at HH+1:02
        rows += [
            (f"2024-08-14 {h:02d}:58:00", "flash", "stake", "50000"),
            (f"2024-08-14 {h + 1:02d}:02:00", "flash", "unstake", "50000"),
        ]
    with connect(tmp_path / "db.duckdb") as con:
        for k, (ts, wallet, kind, amount) in enumerate(rows):
            con.execute(
                "INSERT INTO stake_events VALUES (?, CAST(? AS TIMESTAMP), ?, 'dev', ?, CAST(? AS DECIMAL(38, 8)), ?, "
                "strftime(CAST(? AS TIMESTAMP), '%Y-%m-%dT%H'), 's.csv', ?)",
                [f"e{k}", ts, wallet, kind, amount, f"{wallet}-funder", ts, k],
            )
        active = {}
        for epoch in ("2024-08-14T03", "2024-08-14T04", "2024-08-14T05", "2024-08-14T06"):
            build_positions(con, epoch, VERSION)
            active[epoch] = dict(
                con.execute("SELECT wallet, active_units FROM stake_positions WHERE epoch = ?", [epoch]).fetchall()
            )
        cooling = dict(con.execute("SELECT wallet, cooling_units FROM stake_positions WHERE epoch = '2024-08-14T05'").fetchall())
    unit = io_to_base_units("1")
    assert active["2024-08-14T03"].get("owner", 0) == 0  # arrived at 03:20
    assert active["2024-08-14T04"]["owner"] == active["2024-08-14T05"]["owner"] == 200 * unit  # the top-up at 05:30 waits
    assert active["2024-08-14T06"]["owner"] == 300 * unit
    assert all(a.get("flash", 0) == 0 for a in active.values())
    # what it withdrew (3 x 50,000) stays slashable through the cooldown, and so does what it has
    # staked at the hour's end; likewise the owner's top-up
    assert cooling == {"flash": 200000 * unit, "owner": 100 * unit}
