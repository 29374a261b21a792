"""Simulated GPU networks with ground truth: the embedded default and every benchmark's input.

``simulate`` writes drops exactly per the data contract under ``out/<YYYY-MM-DDTHH>/`` and the
ground truth under ``out/_truth/`` (``devices.parquet``, ``accounts.parquet``), which ingestion
never reads (folders starting with ``_`` are not hours).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import datetime, timedelta
from pathlib import Path

import polars as pl

from pipelines.simulate.hours import prepare, simulate_hour
from pipelines.simulate.population import Network, build_network
from pipelines.simulate.scenario import Scenario, load_scenario
from pipelines.simulate.writer import write_hour

__all__ = ["simulate", "Scenario", "load_scenario", "build_network", "TRUTH_DIR"]

TRUTH_DIR = "_truth"


def hour_name(scenario: Scenario, hour_index: int) -> str:
    start = datetime.strptime(scenario.start, "%Y-%m-%dT%H")
    return f"{start + timedelta(hours=hour_index):%Y-%m-%dT%H}"


def write_truth(out: Path, net: Network, scenario: Scenario, seed: int, hours: int) -> None:
    truth = out / TRUTH_DIR
    truth.mkdir(parents=True, exist_ok=True)
    net.devices.select(
        "device_id", "account_id", "population", "fraud_types", "cluster", "claimed_model",
        "true_model", "physical_gpu", "efficiency", "first_hour",
    ).write_parquet(truth / "devices.parquet")  # fmt: skip
    net.accounts.select(
        "account_id", "population", "cluster", "role", "wallet", "funder"
    ).write_parquet(truth / "accounts.parquet")
    meta = {"seed": seed, "hours": hours, "devices": net.devices.height, "scenario": asdict(scenario)}
    (truth / "scenario.json").write_text(json.dumps(meta, indent=1, default=list))


def simulate(
    out: str | Path,
    devices: int,
    hours: int,
    seed: int = 0,
    scenario: Scenario | None = None,
    plans: dict[int, dict[str, str]] | None = None,
    hour_indices: list[int] | None = None,
) -> Network:
    """Write ``hours`` hourly drops of a network of ``devices`` GPUs; deterministic per seed.

    ``plans`` maps an hour index to a challenge plan (device_id -> group) the backend honours
    in that hour. ``hour_indices`` writes only those hours (the network is the same).
    """
    if devices < 1 or hours < 1:
        raise ValueError("devices and hours must be >= 1")
    scenario = scenario or Scenario()
    out = Path(out)
    net = build_network(scenario, devices, seed, hours)
    write_truth(out, net, scenario, seed, hours)
    arrays = prepare(net, seed)
    for h in hour_indices if hour_indices is not None else range(hours):
        feeds = simulate_hour(net, arrays, scenario, seed, h, (plans or {}).get(h))
        write_hour(out / hour_name(scenario, h), hour_name(scenario, h), feeds, scenario.formats)
    return net


def truth_devices(drops: str | Path) -> pl.DataFrame:
    return pl.read_parquet(Path(drops) / TRUTH_DIR / "devices.parquet")


def truth_accounts(drops: str | Path) -> pl.DataFrame:
    return pl.read_parquet(Path(drops) / TRUTH_DIR / "accounts.parquet")
