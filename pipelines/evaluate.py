"""Detection quality against a simulated network's ground truth.

A device counts as *flagged for type T* if any epoch of the run gave it T in ``fraud_types``
(probation or rejected); *flagged* at all if any epoch put it in probation or rejected.
Per fraud type: precision = flagged-for-T devices whose truth includes T / flagged-for-T;
recall = truth-T devices flagged for T / truth-T devices. Per population: the share of
devices flagged at all (for honest populations, the false-positive rate).
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import polars as pl

from pipelines.simulate.scenario import HONEST_POPULATIONS as HONEST

PAID_PER_DEVICE_SQL = "SELECT device_id, CAST(sum(amount_base_units) AS BIGINT) AS amount FROM payouts GROUP BY device_id"
"""Per device, everything paid out (the ``payouts`` view: allocations paid when earned, and held
shares released later; a held share still unsettled, or forfeited, was not paid)."""

ALLOCATED_PER_DEVICE_SQL = (
    "SELECT device_id, CAST(sum(amount_base_units) AS BIGINT) AS amount FROM reward_allocations GROUP BY device_id"
)
"""Per device, every allocation whatever its status: held shares (probation) count as if paid."""

PAID_BY_TIER_PER_DEVICE_SQL = """
SELECT a.device_id, CAST(sum(a.amount_base_units) AS BIGINT) AS amount
FROM reward_allocations a JOIN device_tiers t USING (epoch, device_id)
WHERE t.tier IN ('verified', 'standard')
GROUP BY a.device_id
"""
"""Per device, the allocations a reader of the data contract alone counts as paid: those of epochs
in which the device was verified or standard (the contract holds probation's rewards and pays
rejected devices nothing). It does not see ``components.status``, so shares held under
``standard = "hold"`` count as paid, and later releases are not added."""


def flagged_devices(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """Per device: every fraud type it was ever flagged for, and whether it was ever flagged."""
    return pl.from_arrow(
        con.sql(
            """
            SELECT device_id,
                   list_sort(list_distinct(flatten(list(fraud_types)))) AS flagged_types,
                   bool_or(tier IN ('probation', 'rejected')) AS flagged,
                   bool_or(tier = 'rejected') AS rejected
            FROM device_tiers GROUP BY device_id
            """
        ).to_arrow_table()
    )  # type: ignore[return-value]


def quality_tables(truth: pl.DataFrame, flagged: pl.DataFrame, fraud_types: list[str]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(per fraud type precision/recall, per population flagged share)."""
    df = truth.join(flagged, on="device_id", how="left").with_columns(
        pl.col("flagged_types").fill_null(pl.lit([], dtype=pl.List(pl.String))),
        pl.col("flagged").fill_null(False),
        pl.col("rejected").fill_null(False),
    )
    rows = []
    for t in fraud_types:
        is_t = pl.col("fraud_types").list.contains(t)
        got_t = pl.col("flagged_types").list.contains(t)
        s = df.select(
            is_t.sum().alias("truth"),
            got_t.sum().alias("flagged"),
            (is_t & got_t).sum().alias("tp"),
        ).row(0, named=True)
        rows.append(
            {
                "fraud_type": t,
                "truth": s["truth"],
                "flagged": s["flagged"],
                "true_positives": s["tp"],
                "precision": s["tp"] / s["flagged"] if s["flagged"] else None,
                "recall": s["tp"] / s["truth"] if s["truth"] else None,
            }
        )
    per_type = pl.DataFrame(rows, schema_overrides={"precision": pl.Float64, "recall": pl.Float64})
    per_population = (
        df.group_by("population")
        .agg(
            pl.len().alias("devices"),
            pl.col("flagged").sum().alias("flagged"),
            pl.col("rejected").sum().alias("rejected"),
            pl.col("flagged").mean().alias("flagged_share"),
        )
        .with_columns(pl.col("population").is_in(HONEST).alias("honest"))
        .sort("honest", "population", descending=[True, False])
    )
    return per_type, per_population


def evaluate(db: str | Path, drops: str | Path, fraud_types: list[str]) -> tuple[pl.DataFrame, pl.DataFrame]:
    from pipelines.db import connect
    from pipelines.simulate import truth_devices

    with connect(db) as con:
        flagged = flagged_devices(con)
    return quality_tables(truth_devices(drops), flagged, fraud_types)


GPU_FRAUD_TYPES = ["virtualized_gpu", "spoofed_model", "duplicate_hardware", "failed_pow", "burst"]
"""Fraud on the GPU itself (fake, virtualized, misrepresented hardware or work)."""


def gpu_fraud_tables(truth: pl.DataFrame, flagged: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(overall GPU-fraud precision/recall, recall per attack population ("variant")).

    A device is GPU fraud when its truth holds a GPU fraud type, and caught when any epoch
    flagged it for a GPU fraud type; precision counts every device flagged for a GPU type."""
    gpu = pl.lit(GPU_FRAUD_TYPES)
    df = (
        truth.join(flagged, on="device_id", how="left")
        .with_columns(
            pl.col("flagged_types").fill_null(pl.lit([], dtype=pl.List(pl.String))),
            pl.col("fraud_types").list.set_intersection(gpu).list.len().gt(0).alias("is_gpu_fraud"),
        )
        .with_columns(pl.col("flagged_types").list.set_intersection(gpu).list.len().gt(0).alias("caught"))
    )
    overall = df.select(
        pl.col("is_gpu_fraud").sum().alias("gpu_fraud_devices"),
        pl.col("caught").sum().alias("flagged"),
        (pl.col("caught") & pl.col("is_gpu_fraud")).sum().alias("true_positives"),
    ).with_columns(
        (pl.col("true_positives") / pl.col("flagged")).alias("precision"),
        (pl.col("true_positives") / pl.col("gpu_fraud_devices")).alias("recall"),
    )
    variants = (
        df.filter(pl.col("is_gpu_fraud"))
        .group_by("population")
        .agg(pl.len().alias("devices"), pl.col("caught").sum().alias("caught"), pl.col("caught").mean().alias("recall"))
        .sort("population")
    )
    return overall, variants


SYBIL_POPULATIONS = ("sybil_ring", "sybil_ring_jitter", "sybil_ring_small")
SHARED_NETWORK_POPULATIONS = ("shared_nat_lab", "shared_nat_family", "datacenter")


def _pairs(sizes: pl.Series) -> int:
    return int((sizes * (sizes - 1) // 2).sum())


def sybil_pairwise(truth_accounts: pl.DataFrame, clusters: pl.DataFrame) -> dict[str, float | int]:
    """Pairwise precision/recall over account pairs: a predicted pair is two accounts in one
    predicted cluster; a true pair is two accounts of one sybil ring. ``clusters`` has
    ``cluster_id, account_id``. Also the share of honest shared-network accounts flagged."""
    truth = truth_accounts.filter(pl.col("population").is_in(SYBIL_POPULATIONS)).select("account_id", "cluster")
    joined = clusters.select("cluster_id", "account_id").join(truth, on="account_id", how="left")
    tp = _pairs(joined.filter(pl.col("cluster").is_not_null()).group_by("cluster_id", "cluster").len()["len"])
    predicted = _pairs(clusters.group_by("cluster_id").len()["len"])
    actual = _pairs(truth.group_by("cluster").len()["len"])
    shared = truth_accounts.filter(pl.col("population").is_in(SHARED_NETWORK_POPULATIONS))
    shared_flagged = shared.join(clusters.select("account_id").unique(), on="account_id").height
    return {
        "true_pairs": actual,
        "predicted_pairs": predicted,
        "true_positive_pairs": tp,
        "pair_precision": tp / predicted if predicted else float("nan"),
        "pair_recall": tp / actual if actual else float("nan"),
        "shared_network_accounts": shared.height,
        "shared_network_flagged": shared_flagged,
        "shared_network_flagged_share": shared_flagged / shared.height if shared.height else 0.0,
    }
