"""GPU fraud end to end: a closed loop in which the simulated backend honours the challenge plan."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from pipelines.db import connect
from pipelines.evaluate import GPU_FRAUD_TYPES, flagged_devices, gpu_fraud_tables, quality_tables
from pipelines.simulate import NetworkSimulator, truth_devices
from pipelines.simulate.loop import closed_loop
from pipelines.simulate.scenario import HONEST_POPULATIONS

DEVICES, HOURS = 2000, 12


def _loop(root: Path, use_plan: bool) -> tuple[pl.DataFrame, pl.DataFrame]:
    sim = NetworkSimulator(root / "drops", DEVICES, HOURS, seed=5)
    closed_loop(sim, root / "db.duckdb", None, HOURS, use_plan=use_plan)
    with connect(root / "db.duckdb") as con:
        flagged = flagged_devices(con)
    return truth_devices(root / "drops"), flagged


@pytest.fixture(scope="module")
def with_plan(tmp_path_factory) -> tuple[pl.DataFrame, pl.DataFrame]:
    return _loop(tmp_path_factory.mktemp("plan"), use_plan=True)


@pytest.fixture(scope="module")
def without_plan(tmp_path_factory) -> tuple[pl.DataFrame, pl.DataFrame]:
    return _loop(tmp_path_factory.mktemp("noplan"), use_plan=False)


@pytest.mark.slow
def test_gpu_fraud_quality_bar(with_plan) -> None:
    truth, flagged = with_plan
    overall, variants = gpu_fraud_tables(truth, flagged)
    assert overall["precision"][0] >= 0.99 and overall["recall"][0] >= 0.97, overall
    assert variants.height >= 6 and variants["recall"].min() >= 0.95, variants
    per_type, per_pop = quality_tables(truth, flagged, GPU_FRAUD_TYPES)
    assert per_type["precision"].min() >= 0.99, per_type
    honest = per_pop.filter(pl.col("population").is_in(HONEST_POPULATIONS))
    assert honest["flagged_share"].max() <= 0.005, honest


@pytest.mark.slow
def test_spoofed_slices_are_caught_through_the_challenge_plan(with_plan, without_plan) -> None:
    recall = {}
    for name, (truth, flagged) in {"plan": with_plan, "no plan": without_plan}.items():
        _, variants = gpu_fraud_tables(truth, flagged)
        recall[name] = variants.filter(pl.col("population") == "virtualized_spoofed")["recall"][0]
    assert recall["plan"] >= 0.95 and recall["no plan"] < recall["plan"] - 0.2, recall
