"""Simulated GPU networks with ground truth: the embedded default and every benchmark's input.

``simulate`` writes drops exactly per the data contract under ``out/<YYYY-MM-DDTHH>/`` and the
ground truth under ``out/_truth/`` (``devices.parquet``, ``accounts.parquet``), which ingestion
never reads (folders starting with ``_`` are not hours).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import polars as pl

from pipelines import epoch as epochs
from pipelines.simulate.hours import prepare, simulate_hour
from pipelines.simulate.population import Network, build_network
from pipelines.simulate.scenario import Scenario, load_scenario
from pipelines.simulate.writer import write_hour

__all__ = ["simulate", "NetworkSimulator", "Scenario", "load_scenario", "build_network", "TRUTH_DIR"]

TRUTH_DIR = "_truth"


def hour_name(scenario: Scenario, hour_index: int) -> str:
    return epochs.shift(scenario.start, hour_index)


def write_truth(out: Path, net: Network, scenario: Scenario, seed: int, hours: int) -> None:
    truth = out / TRUTH_DIR
    truth.mkdir(parents=True, exist_ok=True)
    net.devices.select(
        "device_id", "account_id", "population", "fraud_types", "cluster", "claimed_model",
        "true_model", "physical_gpu", "efficiency", "first_hour",
    ).write_parquet(truth / "devices.parquet")  # fmt: skip
    net.accounts.select("account_id", "population", "cluster", "role", "wallet", "funder").write_parquet(
        truth / "accounts.parquet"
    )
    meta = {"seed": seed, "hours": hours, "devices": net.devices.height, "scenario": asdict(scenario)}
    (truth / "scenario.json").write_text(json.dumps(meta, indent=1, default=list))


class NetworkSimulator:
    """A network built once; hours written one at a time, each optionally under a challenge
    plan (device_id -> group). Used for closed-loop runs: the pipeline's plan for hour h+1
    comes from its output for hour h."""

    def __init__(self, out: str | Path, devices: int, hours: int, seed: int = 0, scenario: Scenario | None = None):
        if devices < 1 or hours < 1:
            raise ValueError("devices and hours must be >= 1")
        self.out, self.hours, self.seed = Path(out), hours, seed
        self.scenario = scenario or Scenario()
        self.network = build_network(self.scenario, devices, seed, hours)
        write_truth(self.out, self.network, self.scenario, seed, hours)
        self._arrays = prepare(self.network, seed, self.scenario.heartbeat_minutes)

    def write_hour(self, hour_index: int, plan: dict[str, str] | None = None) -> Path:
        name = hour_name(self.scenario, hour_index)
        feeds = simulate_hour(self.network, self._arrays, self.scenario, self.seed, hour_index, plan)
        write_hour(self.out / name, name, feeds, self.scenario.formats)
        return self.out / name


def simulate(
    out: str | Path,
    devices: int,
    hours: int,
    seed: int = 0,
    scenario: Scenario | None = None,
    hour_indices: list[int] | None = None,
) -> Network:
    """Write ``hours`` hourly drops of a network of ``devices`` GPUs; deterministic per seed.
    ``hour_indices`` writes only those hours (the network is the same)."""
    sim = NetworkSimulator(out, devices, hours, seed, scenario)
    for h in hour_indices if hour_indices is not None else range(hours):
        sim.write_hour(h)
    return sim.network


def truth_devices(drops: str | Path) -> pl.DataFrame:
    return pl.read_parquet(Path(drops) / TRUTH_DIR / "devices.parquet")


def truth_accounts(drops: str | Path) -> pl.DataFrame:
    return pl.read_parquet(Path(drops) / TRUTH_DIR / "accounts.parquet")
