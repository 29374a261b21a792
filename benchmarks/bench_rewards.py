"""Benchmark: rewards over a simulated month, and allocation speed at scale.

    uv run python benchmarks/bench_rewards.py --devices 1250 --days 30
    uv run python benchmarks/bench_rewards.py --speed-db DB --epoch YYYY-MM-DDTHH   # time one allocation

Month: a closed loop (the backend honours the challenge plan) over ``--days`` days of the
``month`` scenario (a 500-GPU operator of RTX 4090s beside home miners with the same card),
then: the share of all rewards paid to fraudulent devices (paid when earned, or held and released
later; target <= 0.1%), and the ratio of
what a device earns in one epoch in the 500-GPU account vs a one-GPU account, for device-epochs
of the same measured class (rtx_4090), tier, connectivity tier and full uptime (target: within
1%). Speed: ``allocate`` (eligibility + exact split) for one epoch of an existing database (with
one hour of uptime enough, so that a one-hour network is paid and the whole split is timed).
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import tempfile
import time
from pathlib import Path

import polars as pl

from pipelines.db import connect
from pipelines.evaluate import PAID_PER_DEVICE_SQL
from pipelines.rewards import allocate
from pipelines.rewards_policy import load_rewards_policy
from pipelines.simulate import NetworkSimulator, load_scenario, truth_devices
from pipelines.simulate.loop import closed_loop

SCENARIO = Path(__file__).resolve().parents[1] / "data" / "scenarios" / "month.toml"


def month(a: argparse.Namespace, work: Path) -> None:
    hours = a.days * 24
    started = time.perf_counter()
    sim = NetworkSimulator(work / "drops", a.devices, hours, seed=a.seed, scenario=load_scenario(SCENARIO))
    closed_loop(sim, work / "fp.duckdb", None, hours, progress=None)
    seconds = time.perf_counter() - started
    truth = truth_devices(work / "drops").select("device_id", "population", "fraud_types")
    with connect(work / "fp.duckdb") as con:
        paid = pl.from_arrow(con.sql(PAID_PER_DEVICE_SQL).to_arrow_table())
        pools = con.execute(
            "SELECT sum(pool_units), sum(allocated_units), sum(held_units), sum(undistributed_units), count(*) FROM epoch_pools"
        ).fetchall()[0]
        fair = pl.from_arrow(con.sql(
            """
            SELECT CASE WHEN owners.devices >= 100 THEN 'big' ELSE 'single' END AS account, e.epoch, e.tier,
                   sum(a.amount_base_units) AS amount, e.device_id
            FROM reward_eligibility e
            JOIN reward_allocations a USING (epoch, device_id)
            JOIN (SELECT epoch, account_id, count(*) AS devices FROM reward_eligibility GROUP BY ALL) owners
              ON owners.epoch = e.epoch AND owners.account_id = e.account_id
            WHERE e.status = 'paid' AND e.measured_class = 'rtx_4090'
              AND e.connectivity_bp4 = 11000 AND e.uptime_permille = 1000 AND e.hired_permille = 0
              AND (owners.devices = 1 OR owners.devices >= 100)
            GROUP BY 1, 2, 3, 5
            """).to_arrow_table())  # fmt: skip
    by_pop = paid.join(truth, on="device_id").with_columns(
        pl.col("amount").cast(pl.Int64), pl.col("fraud_types").list.len().gt(0).alias("fraud")
    )
    total = by_pop["amount"].sum()
    fraud_share = by_pop.filter(pl.col("fraud"))["amount"].sum() / total
    per_epoch = (
        fair.group_by("epoch", "tier", "account")
        .agg(pl.col("amount").mean())
        .pivot("account", index=["epoch", "tier"], values="amount")
    )
    if {"big", "single"} <= set(per_epoch.columns):
        ratio = per_epoch.drop_nulls()["big"] / per_epoch.drop_nulls()["single"]
    else:
        ratio = pl.Series([], dtype=pl.Float64)
    with pl.Config(tbl_rows=30, tbl_hide_dataframe_shape=True, tbl_hide_column_data_types=True, float_precision=6):
        print(f"month: {a.devices} devices x {hours} hours (closed loop), {seconds:.0f} s")
        print(f"epochs {pools[4]}; pool {pools[0]} base units; allocated {pools[1]} (held {pools[2]}); "
              f"undistributed {pools[3]} (hours before anyone had 5 h of uptime)")  # fmt: skip
        print(f"paid to fraudulent devices: {fraud_share:.4%} of all paid rewards (target <= 0.1%)")
        print(by_pop.group_by("population").agg(pl.col("amount").sum().alias("paid"), pl.len().alias("devices"))
              .with_columns((pl.col("paid") / total).alias("share")).sort("paid", descending=True))  # fmt: skip
        print(f"same class/tier/connectivity/uptime, 500-GPU account vs one-GPU account, per device-epoch: "
              f"mean ratio {ratio.mean() or float('nan'):.6f}, min {ratio.min() or float('nan'):.6f}, max {ratio.max() or float('nan'):.6f} over {ratio.len()} epoch-tiers (target within 1%)")  # fmt: skip


def speed(a: argparse.Namespace) -> None:
    # a one-hour network has nobody with 5 hours of uptime yet: time the full split anyway
    version = dataclasses.replace(load_rewards_policy().at(a.epoch), min_continuous_uptime_hours=1)
    with connect(a.speed_db) as con:
        devices = con.execute("SELECT count(*) FROM device_features WHERE epoch = ?", [a.epoch]).fetchall()[0][0]
        con.execute("BEGIN TRANSACTION")
        started = time.perf_counter()
        figures = allocate(con, a.epoch, version)
        seconds = time.perf_counter() - started
        rows = con.execute("SELECT count(*) FROM reward_allocations WHERE epoch = ?", [a.epoch]).fetchall()[0][0]
        con.execute("ROLLBACK")
    print(f"allocate {a.epoch}: {devices} devices, {rows} allocation rows, {seconds:.1f} s (target < 10 s); {figures}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--devices", type=int, default=1250)
    p.add_argument("--days", type=int, default=30)
    p.add_argument("--seed", type=int, default=4)
    p.add_argument("--speed-db", type=Path)
    p.add_argument("--epoch")
    p.add_argument("--workdir", type=Path)
    a = p.parse_args()
    if a.speed_db:
        speed(a)
        return
    work = a.workdir or Path(tempfile.mkdtemp(prefix="fp-month-"))
    shutil.rmtree(work / "drops", ignore_errors=True)
    (work / "fp.duckdb").unlink(missing_ok=True)
    month(a, work)
    if a.workdir is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
