"""Honest networks at their hardest: nothing honest is flagged, let alone rejected.

One small network holds only honest populations, with every habit that fooled earlier rules
pushed far past the default scenario: most owners switch off for hours every day, ISP outages
and maintenance windows last hours, half the consumer cards run hot in any hour, Apple chips
report a share of one of their unified-memory sizes, operators add racks mid-run and new home
devices join, companies register one account per site (one treasury, one build, one mail
domain), owners undo a stake within minutes ten times as often, and the backend challenges
every registered device whether it is on or not.
It runs through the closed loop (the challenge plan batches home pairs behind one IP, NAT labs
and datacenter hosts together every hour).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import polars as pl
import pytest

from pipelines.db import connect
from pipelines.evaluate import flagged_devices
from pipelines.simulate import NetworkSimulator, truth_devices
from pipelines.simulate.loop import closed_loop
from pipelines.simulate.scenario import HONEST_POPULATIONS, Scenario

HARD = replace(
    Scenario(),
    mix={
        "home": 0.35,
        "home_throttled": 0.1,
        "home_overclocked": 0.05,
        "mac_mini": 0.2,
        "datacenter": 0.15,
        "datacenter_sites": 0.08,
        "shared_nat_lab": 0.07,
        "shared_nat_family": 0.08,
    },  # fmt: skip
    daily_off_share=0.6,
    daily_off_hours=(3, 10),
    outage_rate=0.02,
    outage_hours=(2, 8),
    maintenance_rate=0.1,
    maintenance_hours=(2, 8),
    throttle_rate=0.5,
    throttle_depth=(0.62, 0.75),
    pow_noise=0.08,
    late_rack_share=1.0,
    new_home_share=0.15,
    datacenter_operator_gpus=(32, 80),
    site_gpus=(8, 16),
    stake_flash_share=(0.0, 0.0),  # honest owners only; ten times the honest stakes undone within minutes
    stake_undo_rate=0.005,
)


@pytest.fixture(scope="module")
def hard_run(tmp_path_factory) -> tuple[pl.DataFrame, Path]:
    root = tmp_path_factory.mktemp("hard")
    sim = NetworkSimulator(root / "drops", 500, 14, seed=44, scenario=HARD)
    closed_loop(sim, root / "db.duckdb", None, 14)
    with connect(root / "db.duckdb") as con:
        flagged = flagged_devices(con)
    truth = truth_devices(root / "drops")
    return truth.join(flagged, on="device_id", how="left"), root / "db.duckdb"


@pytest.mark.slow
def test_the_hard_honest_network_has_every_behaviour_it_claims(hard_run) -> None:
    df, db = hard_run
    assert set(df["population"]) == set(HONEST_POPULATIONS)
    sites = df.filter(pl.col("population") == "datacenter_sites").group_by("account_id").len()
    assert sites.height >= 3 and sites["len"].min() >= 8  # a company's sites: a fleet each
    with connect(db) as con:
        offline_timeouts, reachable_timeouts = con.execute(
            "SELECT sum(pow_timeout), sum(pow_timeout_reachable) FROM device_features"
        ).fetchall()[0]
        mac_claims = con.execute(
            "SELECT count(DISTINCT vram_total_mb) FROM device_features WHERE catalogue_model LIKE 'apple_%'"
        ).fetchall()[0][0]
        late = con.execute(
            "SELECT count(*) FROM (SELECT device_id, min(epoch) AS e FROM device_features GROUP BY 1) WHERE e > '2024-08-14T00'"
        ).fetchall()[0][0]
    assert offline_timeouts > 500 and reachable_timeouts < offline_timeouts / 10  # downtime, not refusal
    assert mac_claims > 10 and late > 20


@pytest.mark.slow
def test_no_honest_device_is_flagged_on_the_hard_honest_network(hard_run) -> None:
    df, _ = hard_run
    flagged = df.filter(pl.col("flagged").fill_null(False))
    assert flagged.select("population", "device_id", "flagged_types").to_dicts() == []
