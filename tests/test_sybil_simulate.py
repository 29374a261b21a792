"""The simulator's ring recipes, honest look-alikes and the random draw the robustness benchmark uses."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from pipelines.simulate.population import build_network, ring_variant
from pipelines.simulate.randomize import draw_sybil_params
from pipelines.simulate.scenario import RING_VARIANTS, Scenario, load_scenario, sybil_params


def rings(variant: str, **extra: object) -> tuple[pl.DataFrame, pl.DataFrame]:
    params = sybil_params({"variants": {variant: 1.0}, "restart_jitter_minutes": [30, 45], **extra})
    net = build_network(replace(Scenario(), sybil=params), 1500, seed=3, hours=24)
    acc = net.accounts.filter(pl.col("population").str.starts_with("sybil"))
    return acc, net.wallet_links


def test_default_scenario_unchanged_by_the_sybil_table() -> None:
    assert Scenario().sybil.variants == {"classic": 1.0} and load_scenario("data/scenarios/default.toml") == Scenario()
    acc, _ = rings("classic")
    assert acc["cluster"].map_elements(ring_variant, return_dtype=pl.String).unique().to_list() == ["classic"]


def test_vendor_chain_rings_one_vendor_one_length_chained_funding() -> None:
    acc, links = rings("vendor_chain", funding_depth=[2, 3])
    for _, ring in acc.group_by("cluster"):
        domains = ring["email"].str.split("@").list.last().unique()
        lengths = ring["email"].str.split("@").list.first().str.len_chars().unique()
        assert domains.len() == 1 and lengths.len() == 1
        # every funder is the end of a chain of >= 2 intermediate wallets
        parents = dict(links.iter_rows())
        for funder in ring["funder"].unique():
            depth, w = 0, funder
            while w in parents:
                depth, w = depth + 1, parents[w]
            assert depth >= 2


def test_word_split_and_human_rings_spread_funding_over_small_funders() -> None:
    for variant in ("word_split", "human_template"):
        acc, _ = rings(variant, accounts_per_funder=[3, 6])
        per_funder = acc.group_by("cluster", "funder").len()["len"]
        funders = acc.group_by("cluster").agg(pl.len(), pl.col("funder").n_unique()).filter(pl.col("len") >= 12)
        assert per_funder.max() <= 6 and funders.height and (funders["funder"] >= funders["len"] // 6).all()


def test_honest_look_alikes_only_when_asked() -> None:
    params = sybil_params(
        {"small_exchanges": 20, "honest_restart_share": 0.5, "family_shared_funder": 1.0, "honest_mail_vendors": True}
    )
    net = build_network(replace(Scenario(), sybil=params), 2000, seed=4, hours=24)
    home = net.devices.filter(pl.col("population") == "home")
    assert 0.3 < (home["restart_minute"] >= 0).mean() < 0.7  # type: ignore[operator]
    family = net.accounts.filter(pl.col("population") == "shared_nat_family")
    assert family.group_by("signup_ip").agg(pl.col("funder").n_unique())["funder"].max() == 1
    assert net.accounts["email"].str.split("@").list.last().n_unique() > 10


def test_draw_sybil_params_holds_out_recipes() -> None:
    rng = np.random.default_rng(0)
    for _ in range(20):
        tuning = draw_sybil_params(rng, {"vendor_chain"})["sybil"]
        assert "vendor_chain" not in tuning["variants"] and abs(sum(tuning["variants"].values()) - 1) < 1e-9
        test = draw_sybil_params(rng, {"vendor_chain", "word_split"}, test=True)["sybil"]
        assert set(test["variants"]) == {"vendor_chain", "word_split"}
        sybil_params(test)  # every drawn key is a valid scenario key
    with pytest.raises(ValueError, match="unknown ring variants"):
        draw_sybil_params(rng, {"nope"})
    with pytest.raises(ValueError, match="no ring variant left"):
        draw_sybil_params(rng, set(RING_VARIANTS))


def test_sybil_table_in_a_scenario_file(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text("[sybil]\nrestart_jitter_minutes = [10, 40]\n[sybil.variants]\nword_split = 1.0\n")
    scenario = load_scenario(path)
    assert scenario.sybil.variants == {"word_split": 1.0} and scenario.sybil.restart_jitter_minutes == (10, 40)
    path.write_text("[sybil.variants]\nmystery = 1.0\n")
    with pytest.raises(ValueError, match="unknown"):
        load_scenario(path)
