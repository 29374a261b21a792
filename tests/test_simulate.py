"""The simulator: contract-shaped drops, deterministic per seed, realistic physics."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path

import polars as pl
import pytest

from pipelines.contract import FEEDS, FORMATS, REQUIRED_FEEDS, split_name
from pipelines.simulate import load_scenario, simulate, truth_devices
from pipelines.simulate.scenario import ATTACK_POPULATIONS, DEFAULT_MIX, DERIVED_POPULATIONS, HONEST_POPULATIONS, Scenario


def _digests(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_same_bytes(tmp_path: Path) -> None:
    simulate(tmp_path / "a", 150, 2, seed=4)
    simulate(tmp_path / "b", 150, 2, seed=4)
    simulate(tmp_path / "c", 150, 2, seed=5)
    assert _digests(tmp_path / "a") == _digests(tmp_path / "b")
    assert _digests(tmp_path / "a") != _digests(tmp_path / "c")


def test_hours_are_independent_of_generation_order(tmp_path: Path) -> None:
    simulate(tmp_path / "all", 120, 3, seed=8)
    simulate(tmp_path / "one", 120, 3, seed=8, hour_indices=[2])
    hour = sorted(p.name for p in (tmp_path / "all").iterdir() if not p.name.startswith("_"))[2]
    assert _digests(tmp_path / "all" / hour) == _digests(tmp_path / "one" / hour)


def test_drops_follow_the_contract(small_drops: Path) -> None:
    hours = sorted(p for p in small_drops.iterdir() if not p.name.startswith("_"))
    assert len(hours) == 4
    seen_formats = set()
    for folder in hours:
        manifest = json.loads((folder / "_manifest.json").read_text())
        assert manifest["hour"] == folder.name
        feeds = {split_name(n)[0] for n in manifest["files"]}
        assert set(REQUIRED_FEEDS) <= feeds <= set(FEEDS)
        for name, entry in manifest["files"].items():
            seen_formats.add(split_name(name)[1])
            assert hashlib.sha256((folder / name).read_bytes()).hexdigest() == entry["sha256"]
    assert seen_formats == set(FORMATS)


def test_every_population_is_present_with_truth(small_drops: Path) -> None:
    truth = truth_devices(small_drops)
    # every population but those a scenario must name, and stake flashers made from home owners
    assert set(DEFAULT_MIX) <= set(truth["population"]) <= set(DEFAULT_MIX) | set(DERIVED_POPULATIONS)
    assert set(HONEST_POPULATIONS) | set(ATTACK_POPULATIONS) == set(DEFAULT_MIX) | {"datacenter_sites"}
    honest = truth.filter(pl.col("population").is_in(HONEST_POPULATIONS))
    assert honest["fraud_types"].list.len().max() == 0
    attacks = truth.filter(pl.col("population").is_in([*ATTACK_POPULATIONS, *DERIVED_POPULATIONS]))
    assert attacks["fraud_types"].list.len().min() >= 1


def test_honest_timings_follow_the_spec_sheet(small_drops: Path) -> None:
    """compute_ms = 2n^3 / (spec x efficiency x heat): measured TFLOPS sit near spec x efficiency,
    an hour of heat takes at most 38% off, and nothing beats physics."""
    truth = truth_devices(small_drops).filter(pl.col("population") == "home")
    pow_ = pl.concat(
        [pl.read_parquet(p) for p in small_drops.glob("*/pow.parquet")]
        + [pl.read_ndjson(p) for p in small_drops.glob("*/pow.jsonl")],
        how="diagonal_relaxed",
    )
    ok = pow_.filter((pl.col("status") == "ok") & (pl.col("kind") == "matmul")).join(truth, on="device_id")
    ratio = (2 * ok["n"].cast(pl.Float64) ** 3 / ok["compute_ms"] / 1e9) / ok["efficiency"]
    spec = ok["true_model"].replace_strict(
        dict(zip(*[pl.read_csv("data/gpu_catalogue.csv")[c] for c in ("model_key", "fp16_tensor_tflops")]))
    )
    assert ok.height > 50
    rel = ratio / spec
    assert abs(rel.median() - 1) < 0.05
    assert rel.min() > 0.62 * 0.85 and rel.max() < 1.2


def test_scenario_file_overrides_and_rejects_unknown_keys(tmp_path: Path) -> None:
    good = tmp_path / "s.toml"
    good.write_text('start = "2025-01-01T00"\n[mix]\nhome = 1.0\nburst = 0.1\n[challenges]\nbatch_size = 4\n')
    s = load_scenario(good)
    assert s.start == "2025-01-01T00" and s.challenges.batch_size == 4 and set(s.populations) == {"home", "burst"}
    bad = tmp_path / "bad.toml"
    bad.write_text("[mix]\nmoon_miners = 1\n")
    with pytest.raises(ValueError, match="moon_miners"):
        load_scenario(bad)


def test_default_scenario_file_matches_the_code() -> None:
    from pipelines.simulate.scenario import Scenario

    assert load_scenario("data/scenarios/default.toml") == Scenario()


def test_builder_draws_are_numpys_own_choice_draws_so_networks_do_not_change() -> None:
    """``Builder.pick`` and ``Builder.choose`` skip numpy's per-call array conversion; each must
    consume the generator exactly as ``rng.choice`` does, or every simulated network changes."""
    import numpy as np

    from pipelines.simulate.population import Builder
    from pipelines.simulate.scenario import Scenario

    fast, slow = Builder(Scenario(), 5), Builder(Scenario(), 5)
    weights = {"a": 0.3, "b": 0.5, "c": 0.15, "d": 0.05}
    options = [["x", "y", "z"], [1755, 1980, 2520, 2610], list("abcdefghijklmnopqrstuvwxyz"), ["only"]]
    for i in range(5000):
        seq = options[i % len(options)]
        assert fast.pick(seq) == slow.rng.choice(seq)
        p = np.array(list(weights.values()))
        assert fast.choose(weights) == list(weights)[int(slow.rng.choice(len(weights), p=p / p.sum()))]
    assert fast.rng.random() == slow.rng.random()


def test_a_short_card_can_hang_on_its_vram_challenges_instead_of_failing(tmp_path: Path) -> None:
    """``spoofed_vram_hang_share``: a card short of the claimed memory leaves that share of its VRAM
    challenges unanswered (``timeout``, no ``responded_at``) while it stays online; at 0 it fails
    them (``error``)."""
    from dataclasses import replace

    from pipelines.simulate.scenario import Scenario

    short = replace(Scenario(), mix={"home": 1.0, "spoofed_model": 0.3}, spoofed_true_models=("rtx_4080",), formats="parquet")
    statuses = {}
    for name, share in (("fails", 0.0), ("hangs", 1.0)):
        simulate(tmp_path / name, 60, 7, seed=3, scenario=replace(short, spoofed_vram_hang_share=share))
        truth = truth_devices(tmp_path / name).filter(pl.col("population") == "spoofed_model").select("device_id")
        vram = _feed(tmp_path / name, "pow").filter(pl.col("kind") == "vram").join(truth, on="device_id")
        assert vram.height >= 5
        statuses[name] = vram.group_by("status").len().sort("status").rows()
        if share:
            assert vram.filter(pl.col("status") == "timeout")["responded_at"].null_count() == vram.height
    assert [s for s, _ in statuses["fails"]] == ["error"] and [s for s, _ in statuses["hangs"]] == ["timeout"]
    assert sum(n for _, n in statuses["fails"]) == sum(n for _, n in statuses["hangs"])


def _feed(root: Path, feed: str) -> pl.DataFrame:
    """Every hour's file of one feed of a network simulated with ``formats = "parquet"``."""
    return pl.concat([pl.read_parquet(p) for p in sorted(root.glob(f"*/{feed}.parquet"))], how="diagonal_relaxed")


def test_honest_cross_listing_is_written_only_where_the_scenario_allows_it_and_changes_nothing_else(tmp_path: Path) -> None:
    """Home machines listed on another network from the same host are honest only under
    ``cross_listing = "allow"``; the default network has none, and switching them on adds the
    listings without changing any other file of the hour."""
    from dataclasses import replace

    from pipelines.simulate.scenario import Scenario

    base = replace(Scenario(), mix={"home": 1.0, "double_lister": 0.05}, formats="parquet")
    simulate(tmp_path / "held", 300, 2, seed=6, scenario=base)
    simulate(tmp_path / "allowed", 300, 2, seed=6, scenario=replace(base, honest_cross_listing=True))
    truth = truth_devices(tmp_path / "held").select("device_id", "population")

    def listed(root: Path) -> pl.DataFrame:
        uuids = _feed(root, "hardware").select("device_id", "gpu_uuid").unique().join(truth, on="device_id")
        return _feed(root, "external_listings").select("gpu_uuid").join(uuids, on="gpu_uuid")

    assert set(listed(tmp_path / "held")["population"]) == {"double_lister"}
    assert set(listed(tmp_path / "allowed")["population"]) == {"double_lister", "home"}
    for hour in ("2024-08-14T00", "2024-08-14T01"):
        same = {k: v for k, v in _digests(tmp_path / "held" / hour).items() if "listings" not in k and "manifest" not in k}
        other = {k: v for k, v in _digests(tmp_path / "allowed" / hour).items() if "listings" not in k and "manifest" not in k}
        assert same == other


def test_a_hung_worker_and_a_ping_answering_proxy_keep_the_probes_alive_while_challenges_time_out(tmp_path: Path) -> None:
    """``hung_worker_rate``: a worker whose GPU process hangs keeps its heartbeats and pings while
    its challenges time out; ``spoofer_proxy_share``: an uptime spoofer whose address a proxy holds
    has its pings answered even while the machine is off. Both come from generators of their own:
    the other feeds of the hour do not change."""
    from dataclasses import replace

    from pipelines.simulate.scenario import Scenario

    base = replace(Scenario(), mix={"home": 1.0, "uptime_spoofer": 0.2}, formats="parquet")
    simulate(tmp_path / "plain", 200, 3, seed=4, scenario=base)
    simulate(tmp_path / "faults", 200, 3, seed=4, scenario=replace(base, hung_worker_rate=0.3, spoofer_proxy_share=1.0))
    truth = truth_devices(tmp_path / "plain").select("device_id", "population")

    def per_device(root: Path) -> pl.DataFrame:
        up = (
            _feed(root, "uptime")
            .group_by("device_id")
            .agg(
                pl.col("ok").filter(pl.col("source") == "ping").mean().alias("pings_ok"),
                (pl.col("source") == "heartbeat").sum().alias("heartbeats"),
            )
        )
        pow_ = _feed(root, "pow").group_by("device_id").agg((pl.col("status") == "timeout").mean().alias("timeouts"))
        return up.join(pow_, on="device_id").join(truth, on="device_id")

    plain, faults = per_device(tmp_path / "plain"), per_device(tmp_path / "faults")
    spoofers = pl.col("population") == "uptime_spoofer"
    assert faults.filter(spoofers)["pings_ok"].mean() > plain.filter(spoofers)["pings_ok"].mean() + 0.3
    homes = faults.filter(~spoofers).join(plain.filter(~spoofers), on="device_id", suffix="_plain")
    assert homes["timeouts"].mean() > homes["timeouts_plain"].mean() + 0.2  # hung: challenges time out...
    assert (homes["heartbeats"] == homes["heartbeats_plain"]).all()  # ...while heartbeats go on as before
    for hour in ("2024-08-14T00", "2024-08-14T01"):
        same = {k: v for k, v in _digests(tmp_path / "plain" / hour).items() if not k.startswith(("pow", "uptime", "_manifest"))}
        other = {
            k: v for k, v in _digests(tmp_path / "faults" / hour).items() if not k.startswith(("pow", "uptime", "_manifest"))
        }
        assert same == other


def test_a_company_runs_one_account_per_site_each_a_fleet_at_an_address_of_its_own() -> None:
    """``datacenter_sites``, the robustness benchmark's honest sybil look-alike: one treasury pays
    every site's stakes, one mail domain, and every site is a fleet of at least ``site_gpus[0]``
    devices on a /24 of its own (a leftover smaller than that joins the last site)."""
    from dataclasses import replace

    import numpy as np

    from pipelines.simulate.population import build_network
    from pipelines.simulate.randomize_devices import draw_operator_sites
    from pipelines.simulate.scenario import Scenario

    mix = draw_operator_sites(np.random.default_rng(3), {"home": 0.5, "datacenter": 0.5})["mix"]
    assert mix["home"] == 0.5 and 0.05 <= mix["datacenter_sites"] <= 0.2
    assert mix["datacenter"] + mix["datacenter_sites"] == pytest.approx(0.5)
    net = build_network(replace(Scenario(), mix={"home": 0.4, "datacenter_sites": 0.6}), 500, seed=9, hours=4)
    sites = net.accounts.filter(pl.col("population") == "datacenter_sites")
    devices = net.devices.filter(pl.col("population") == "datacenter_sites").with_columns(
        pl.col("ip").str.extract(r"^(\d+\.\d+\.\d+)\.", 1).alias("subnet")
    )
    per_site = devices.group_by("account").agg(pl.len().alias("n"), pl.col("subnet").n_unique().alias("subnets"))
    assert per_site["n"].min() >= 8 and per_site["subnets"].max() == 1
    assert devices.group_by("subnet").agg(pl.col("account").n_unique())["account"].max() == 1  # a /24 per site
    companies = sites.group_by("cluster").agg(
        pl.len().alias("sites"),
        pl.col("funder").n_unique().alias("funders"),
        pl.col("email").str.split("@").list.last().n_unique().alias("domains"),
    )
    assert companies["sites"].max() >= 3 and set(companies["funders"]) == {1} and set(companies["domains"]) == {1}


def test_stake_flashers_stake_before_the_hour_and_withdraw_after_it_honest_owners_undo_one_mistake(tmp_path: Path) -> None:
    """A stake flasher's own wallet puts 20-150k IO on its first device 40-180 s before the hour
    and takes it out 20-200 s after; its cards are run honestly. An honest owner now and then
    stakes by mistake and withdraws it 1-20 minutes later (``stake_undo_rate``: rare enough that a habit of it is not
    honest)."""
    scenario = replace(Scenario(), mix={"home": 1.0}, stake_flash_share=(0.2, 0.2), stake_undo_rate=0.02, formats="parquet")
    net = simulate(tmp_path, devices=200, hours=6, seed=3, scenario=scenario)
    flashers = net.devices.filter(pl.col("population") == "stake_flasher")
    assert flashers.height and set(flashers["fraud_types"].list.first()) == {"stake_manipulation"}
    wallets = net.accounts.filter(pl.col("population") == "stake_flasher")["wallet"].implode()
    events = pl.concat([pl.read_parquet(p) for p in sorted(tmp_path.glob("*/stake_events.parquet"))])
    second = pl.col("ts").dt.minute().cast(pl.Int32) * 60 + pl.col("ts").dt.second()
    flash = events.filter(
        pl.col("wallet").is_in(wallets) & (pl.col("amount_io").cast(pl.Float64) >= 20_000)
    )  # not its 200 IO a card
    stakes, withdrawals = flash.filter(pl.col("kind") == "stake"), flash.filter(pl.col("kind") == "unstake")
    assert stakes.height >= wallets.list.len().item() and withdrawals.height
    assert stakes.select((second >= 3600 - 180).all()).item() and withdrawals.select((second <= 200).all()).item()
    assert set(flash["device_id"]) <= set(flashers["device_id"])
    honest = events.filter(~pl.col("wallet").is_in(wallets) & (pl.col("ts") >= pl.datetime(2024, 8, 14, 1)))
    undone = honest.filter(pl.col("kind") == "unstake").join(
        honest.filter(pl.col("kind") == "stake"), on=["device_id", "wallet", "amount_io"], suffix="_staked"
    )
    held = (pl.col("ts") - pl.col("ts_staked")).dt.total_seconds()
    assert undone.height and undone.select(held.is_between(60, 20 * 60).all()).item()
