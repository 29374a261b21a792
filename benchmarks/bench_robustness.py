"""Benchmark: verdict quality on many randomized networks, worst case first.

    uv run python benchmarks/bench_robustness.py --networks 20 --devices 3000 --hours 48 --jobs 2

Each network draws every honest behaviour and attack parameter from a wide range
(``pipelines/simulate/randomize_devices.py``, ``pipelines/simulate/randomize.py``) and
holds one attack variant out (its parameters come from a range the thresholds were never
looked at with), then runs the closed loop (the backend honours the challenge plan, as in
production; ``--no-plan`` runs static drops instead, as an outside evaluation does;
``--vary-cadence`` also draws the backend's heartbeat interval and pings per hour, from their own
generator, so the networks are otherwise those drawn without it; the rental market, owners' and renters'
prices, premium cards and what wash traders pay, uptime spoofers behind a ping-answering proxy, and the
share of datacenter devices run by companies with one account per site are drawn from generators of their
own as well). Printed: per population the worst case and the median across networks of the
flagged share (probation or rejected in any epoch) and the number of honest devices rejected;
device precision and recall; sybil pair precision, recall and F1 (last epoch's clusters against
the rings); the share of paid rewards (allocations paid, and held shares released later) that
went to fraudulent devices, and beside it the share of every allocation, held shares included
(what a reader of ``reward_allocations`` who ignores its status sees) and the share a reader of
the contract alone counts as paid (allocations of epochs in which the device was verified or
standard: it cannot see shares held under ``standard = "hold"``), and for each network above
0.1% which attack populations took it; and per held-out variant
the recall of its population. Targets (issue 8): precision >= 0.99, recall >= 0.97, every
honest population <= 0.5% flagged, no honest device rejected, sybil pair F1 >= 0.95, fraud
reward share <= 0.1%, all as worst cases.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path

import numpy as np
import polars as pl

from pipelines.simulate.randomize import draw_sybil_params
from pipelines.simulate.randomize_devices import (
    GPU_VARIANTS,
    VARIANT_POPULATIONS,
    draw_cadence,
    draw_liveness,
    draw_market,
    draw_operator_sites,
)
from pipelines.simulate.scenario import RING_VARIANTS, SybilParams

RING_HELD_OUT = [v for v in RING_VARIANTS if v != "classic"]
"""Ring recipes held out in turn (``classic`` is the default network's own recipe)."""


def one_network(index: int, seed: int, devices: int, hours: int, held_out: str, keep: Path | None, use_plan: bool = True,
                vary_cadence: bool = False) -> dict:  # fmt: skip
    """Simulate, run the closed loop and measure one randomized network."""
    from pipelines.db import connect
    from pipelines.evaluate import (
        ALLOCATED_PER_DEVICE_SQL,
        PAID_BY_TIER_PER_DEVICE_SQL,
        PAID_PER_DEVICE_SQL,
        flagged_devices,
        sybil_pairwise,
    )
    from pipelines.simulate import NetworkSimulator, truth_accounts, truth_devices
    from pipelines.simulate.loop import closed_loop
    from pipelines.simulate.randomize_devices import draw_gpu_attack_params, draw_honest_params
    from pipelines.simulate.scenario import HONEST_POPULATIONS, Scenario

    rng = np.random.default_rng([seed, index])
    params = {**draw_honest_params(rng), **draw_gpu_attack_params(rng, held_out if held_out in GPU_VARIANTS else None, hours)}
    # a held-out ring recipe: every ring of this network is made with it; otherwise any recipe
    ring = draw_sybil_params(rng, {held_out}, test=True) if held_out in RING_HELD_OUT else draw_sybil_params(rng)
    params["sybil"] = ring["sybil"]
    if vary_cadence:  # its own generator: every other draw, hence the network, stays as without it
        params.update(draw_cadence(np.random.default_rng([seed, index, 101])))
    params.update(draw_market(np.random.default_rng([seed, index, 103])))  # its own generator too
    params.update(draw_liveness(np.random.default_rng([seed, index, 107])))
    params.update(draw_operator_sites(np.random.default_rng([seed, index, 109]), params["mix"]))
    scenario = replace(
        Scenario(),
        **{k: v for k, v in params.items() if k != "sybil"},
        sybil=SybilParams(**{k: tuple(v) if isinstance(v, list) else v for k, v in params["sybil"].items()}),
    )
    work = keep / f"net{index:02d}" if keep else Path(tempfile.mkdtemp(prefix=f"fp-robust-{index}-"))
    started = time.perf_counter()
    if not (keep and (work / "fp.duckdb").exists()):  # --keep: a network already run is only measured again
        shutil.rmtree(work, ignore_errors=True)
        sim = NetworkSimulator(work / "drops", devices, hours, seed=seed * 1000 + index, scenario=scenario)
        closed_loop(sim, work / "fp.duckdb", None, hours, use_plan=use_plan)
    truth = truth_devices(work / "drops").select("device_id", "population", "fraud_types")
    with connect(work / "fp.duckdb") as con:
        flagged = flagged_devices(con)
        epoch = con.execute("SELECT max(epoch) FROM processed_epochs").fetchall()[0][0]
        clusters = pl.from_arrow(con.sql(
            f"SELECT cluster_id, account_id FROM sybil_clusters WHERE epoch = '{epoch}'").to_arrow_table())  # fmt: skip
        paid = pl.from_arrow(con.sql(PAID_PER_DEVICE_SQL).to_arrow_table())
        allocated = pl.from_arrow(con.sql(ALLOCATED_PER_DEVICE_SQL).to_arrow_table())
        by_tier = pl.from_arrow(con.sql(PAID_BY_TIER_PER_DEVICE_SQL).to_arrow_table())
    df = truth.join(flagged, on="device_id", how="left").with_columns(
        pl.col("flagged").fill_null(False),
        pl.col("rejected").fill_null(False),
        pl.col("fraud_types").list.len().gt(0).alias("fraud"),
        pl.col("population").is_in(HONEST_POPULATIONS).alias("honest"),
    )
    per_pop = df.group_by("population", "honest").agg(
        pl.len().alias("devices"), pl.col("flagged").sum().alias("flagged"), pl.col("rejected").sum().alias("rejected")
    )
    tp = df.filter(pl.col("fraud") & pl.col("flagged")).height
    flagged_n = df.filter(pl.col("flagged")).height
    fraud_n = df.filter(pl.col("fraud")).height
    sybil = sybil_pairwise(truth_accounts(work / "drops"), clusters)  # type: ignore[arg-type]
    p, r = sybil["pair_precision"], sybil["pair_recall"]
    f1 = 2 * p * r / (p + r) if p == p and r == r and p + r > 0 else float("nan")
    result = {
        "network": index,
        "held_out": held_out,
        "seconds": round(time.perf_counter() - started, 1),
        "devices": df.height,
        "precision": tp / flagged_n if flagged_n else float("nan"),
        "recall": tp / fraud_n if fraud_n else float("nan"),
        "honest_rejected": int(df.filter(pl.col("honest") & pl.col("rejected")).height),
        "sybil_pair_precision": p,
        "sybil_pair_recall": r,
        "sybil_pair_f1": f1,
        "fraud_reward_share": _fraud_share(paid, df),
        "fraud_allocated_share": _fraud_share(allocated, df),
        "fraud_share_by_tier": _fraud_share(by_tier, df, int(allocated["amount"].sum() or 0)),
        "fraud_paid_by_population": _fraud_share_by_population(paid, df),
        "populations": per_pop.to_dicts(),
        "params": {k: v for k, v in params.items() if k != "mix"},
    }
    if not keep:
        shutil.rmtree(work, ignore_errors=True)
    return result


def _fraud_amounts(amounts: pl.DataFrame, devices: pl.DataFrame) -> tuple[pl.DataFrame, int]:
    """The rows of ``amounts`` (``device_id, amount``) that went to devices marked ``fraud``, with
    their population, and the total of all ``amounts``."""
    joined = amounts.join(devices.select("device_id", "fraud", "population"), on="device_id", how="left")
    return joined.filter(pl.col("fraud").fill_null(False)), int(joined["amount"].sum() or 0)


def _fraud_share(amounts: pl.DataFrame, devices: pl.DataFrame, total: int | None = None) -> float:
    """The part of ``amounts`` that went to devices marked ``fraud``, of their own total or of
    ``total`` (the pools, for a reading that leaves some allocations out)."""
    fraud, own_total = _fraud_amounts(amounts, devices)
    total = own_total if total is None else total
    return int(fraud["amount"].sum() or 0) / total if total else 0.0


def _fraud_share_by_population(amounts: pl.DataFrame, devices: pl.DataFrame) -> dict[str, float]:
    """``_fraud_share`` split by the fraudulent devices' population: which attack took the money."""
    fraud, total = _fraud_amounts(amounts, devices)
    per = fraud.group_by("population").agg(pl.col("amount").sum()).sort("amount", descending=True)
    return {r["population"]: r["amount"] / total for r in per.to_dicts()} if total else {}


def summarize(results: list[dict]) -> None:
    nets = pl.DataFrame(
        [{k: v for k, v in r.items() if k not in ("populations", "params", "fraud_paid_by_population")} for r in results]
    ).sort("network")
    pops = pl.concat(
        [pl.DataFrame(r["populations"]).with_columns(pl.lit(r["network"]).alias("network")) for r in results]
    ).with_columns((pl.col("flagged") / pl.col("devices")).alias("flagged_share"))
    by_pop = pops.group_by("population", "honest").agg(
        pl.len().alias("networks"),
        pl.col("devices").sum().alias("devices"),
        pl.when(pl.col("honest").first()).then(pl.col("flagged_share").max()).otherwise(pl.col("flagged_share").min()).alias("worst_flagged_share"),
        pl.col("flagged_share").median().alias("median_flagged_share"),
        pl.col("rejected").sum().alias("rejected_total"),
    ).sort("honest", "population", descending=[True, False])  # fmt: skip
    variants = []
    for variant, population in {**VARIANT_POPULATIONS, **{v: "sybil_*" for v in RING_HELD_OUT}}.items():
        held = [r for r in results if r["held_out"] == variant]
        shares = []
        for r in held:
            pops = [p for p in r["populations"] if p["population"] == population
                    or (population == "sybil_*" and p["population"].startswith("sybil"))]  # fmt: skip
            if sum(p["devices"] for p in pops):
                shares.append(sum(p["flagged"] for p in pops) / sum(p["devices"] for p in pops))
        variants.append({"held_out_variant": variant, "population": population, "networks": len(held),
                         "worst_recall": min(shares) if shares else None,
                         "median_recall": float(np.median(shares)) if shares else None})  # fmt: skip
    worst = nets.select(
        pl.col("precision").min().alias("precision"),
        pl.col("recall").min().alias("recall"),
        pl.col("honest_rejected").max().alias("honest_rejected_in_one_network"),
        pl.col("sybil_pair_f1").min().alias("sybil_pair_f1"),
        pl.col("fraud_reward_share").max().alias("fraud_reward_share"),
        pl.col("fraud_allocated_share").max().alias("fraud_allocated_share"),
        pl.col("fraud_share_by_tier").max().alias("fraud_share_by_tier"),
    )
    honest_worst = by_pop.filter(pl.col("honest"))["worst_flagged_share"].max()
    with pl.Config(tbl_rows=80, tbl_cols=20, tbl_hide_dataframe_shape=True, tbl_hide_column_data_types=True,
                   float_precision=4, tbl_width_chars=200):  # fmt: skip
        print("per network:")
        print(nets)
        print("per population across networks (honest: worst = highest flagged share; attacks: worst = lowest):")
        print(by_pop)
        print("held-out variants (recall of the variant's population in the networks that held it out):")
        print(pl.DataFrame(variants))
        print("worst case across networks:")
        print(worst)
        print("fraud reward share paid, by the population that took it (networks above 0.1%):")
        for r in sorted(results, key=lambda r: -r["fraud_reward_share"]):
            if r["fraud_reward_share"] > 0.001:
                parts = ", ".join(f"{k} {v:.2%}" for k, v in r["fraud_paid_by_population"].items() if v >= 0.0001)
                print(f"  network {r['network']:2d} ({r['held_out']}): {r['fraud_reward_share']:.2%} = {parts}")
        print(f"worst honest population flagged share: {honest_worst:.4%} (target <= 0.5%); "
              f"honest devices rejected in all networks: {int(by_pop.filter(pl.col('honest'))['rejected_total'].sum())} (target 0)")  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--networks", type=int, default=20)
    p.add_argument("--devices", type=int, default=3000)
    p.add_argument("--hours", type=int, default=48)
    p.add_argument("--seed", type=int, default=8)
    p.add_argument("--jobs", type=int, default=1, help="networks run in parallel (each uses DuckDB threads too)")
    p.add_argument(
        "--keep",
        type=Path,
        help="keep each network's drops and database under this folder (a network already there is measured again, not re-run)",
    )
    p.add_argument("--json", type=Path, help="also write every network's figures to this file")
    p.add_argument("--only", type=int, nargs="+", help="run only these network indices (as drawn for --networks and --seed)")
    p.add_argument(
        "--no-plan",
        action="store_true",
        help="the backend ignores the challenge plan (static drops, as an outside evaluation runs them)",
    )
    p.add_argument(
        "--vary-cadence",
        action="store_true",
        help="draw each network's heartbeat interval (5-30 min) and pings per hour (1-6); the contract fixes neither",
    )
    a = p.parse_args()
    variants = [*GPU_VARIANTS, *RING_HELD_OUT]
    started = time.perf_counter()
    indices = [i for i in range(a.networks) if not a.only or i in a.only]
    jobs = [(i, a.seed, a.devices, a.hours, variants[i % len(variants)], a.keep, not a.no_plan, a.vary_cadence) for i in indices]
    results = []
    with ProcessPoolExecutor(max_workers=a.jobs) as pool:
        for r in pool.map(one_network, *zip(*jobs)):
            print(f"network {r['network']:2d} (held out {r['held_out']}): precision {r['precision']:.4f} "
                  f"recall {r['recall']:.4f} honest rejected {r['honest_rejected']} sybil F1 {r['sybil_pair_f1']:.3f} "
                  f"fraud reward share {r['fraud_reward_share']:.4%} (allocated, held included: "
                  f"{r['fraud_allocated_share']:.4%}; by tier alone: {r['fraud_share_by_tier']:.4%}) "
                  f"[{r['seconds']:.0f}s]", flush=True)  # fmt: skip
            results.append(r)
    print(f"{len(indices)} networks of {a.devices} devices x {a.hours} hours in {time.perf_counter() - started:.0f} s")
    summarize(results)
    if a.json:
        a.json.write_text(json.dumps(results, indent=1, default=str))


if __name__ == "__main__":
    main()
