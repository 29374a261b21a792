"""Replay one detector, as the code stands now, over every epoch a run stored, and compare.

    uv run python benchmarks/replay_detector.py --db fp.duckdb --detector failed_pow
    uv run python benchmarks/replay_detector.py --db fp.duckdb --detector failed_pow --truth truth_devices.csv

A detector change (in its code, or in its parameters in ``--policy``, the shipped detection
policy by default) is judged on networks already run, without running them again: the stored
``evidence`` rows are what the detector said when the run was made; the replay is what it says
now over the same stored inputs. Per population (with ``--truth``: a CSV of ``device_id,
population, is_fraud``, or a simulated network's ``_truth/devices.parquet``) or overall it
prints the devices ever held (probation or reject) and the device-hours held, before and after,
and the devices whose verdicts changed. The replay runs on a copy of the database (a detector
that keeps tables of its own stores them as it goes), so the run's database is never changed; if
a run holds it, the replay stops at once and says so. Epochs are replayed in order; a detector
that reads its own earlier verdicts sees the stored ones, as a re-run of one epoch would.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import polars as pl

HELD = ("probation", "reject")


def read_truth(path: Path) -> pl.DataFrame:
    """``device_id, population, fraud`` from a held-out network's CSV (``device_id, population,
    is_fraud``) or a simulated network's Parquet (``device_id, population, fraud_types``)."""
    parquet = path.suffix == ".parquet"
    needed = ["device_id", "population", "fraud_types" if parquet else "is_fraud"]
    try:
        t = pl.read_parquet(path) if parquet else pl.read_csv(path, infer_schema_length=0)
    except (OSError, pl.exceptions.PolarsError) as e:
        raise SystemExit(f"replay_detector: cannot read the truth file {path}: {e}") from None
    if missing := [c for c in needed if c not in t.columns]:
        raise SystemExit(f"replay_detector: the truth file {path} has no column {', '.join(missing)} (needs {', '.join(needed)})")
    if parquet:
        return t.select("device_id", "population", pl.col("fraud_types").list.len().gt(0).alias("fraud"))
    return t.select("device_id", "population", pl.col("is_fraud").str.to_lowercase().is_in(["1", "true"]).alias("fraud"))


def replay(db: Path, detector: str, params: dict | None = None) -> tuple[pl.DataFrame, pl.DataFrame, int]:
    """``(stored, replayed, epochs)``: ``epoch, device_id, action`` of the detector's rows, as
    stored and as now (built with ``params``, a policy's parameters for it), and how many epochs
    were replayed."""
    import detectors
    from pipelines import catalogue
    from pipelines.db import connect, connect_for_reading

    cls = detectors.REGISTRY[detector]
    schema = {"epoch": pl.String, "device_id": pl.String, "action": pl.String}
    with tempfile.TemporaryDirectory(prefix="fp-replay-") as tmp:
        # a detector that keeps tables of its own (sybil_clusters, ...) stores them as it runs: the
        # replay runs on a copy, taken while no run holds the database, so the original never changes
        copy = Path(tmp) / "replay.duckdb"
        with connect_for_reading(db):
            shutil.copyfile(db, copy)
            if db.with_name(db.name + ".wal").exists():  # rows not yet checkpointed into the file
                shutil.copyfile(db.with_name(db.name + ".wal"), copy.with_name(copy.name + ".wal"))
        with connect(copy) as con:
            catalogue.register(con)
            epochs = [r[0] for r in con.execute("SELECT epoch FROM processed_epochs ORDER BY epoch").fetchall()]
            query = "SELECT epoch, device_id, action FROM evidence WHERE detector = $d"
            stored = pl.from_arrow(con.sql(query, params={"d": detector}).to_arrow_table())
            rows = [
                cls(**(params or {}))
                .detect(detectors.Evidence(con, epoch))
                .select(pl.lit(epoch).alias("epoch"), "device_id", "action")
                for epoch in epochs
            ]
    replayed = pl.concat(rows) if rows else pl.DataFrame(schema=schema)
    return pl.DataFrame(stored, schema=schema), replayed.cast(schema), len(epochs)  # type: ignore[arg-type]


def held_by(found: pl.DataFrame, truth: pl.DataFrame | None) -> pl.DataFrame:
    """Per population (or ``all``): devices ever held and device-hours held."""
    held = found.filter(pl.col("action").is_in(HELD)).unique(["epoch", "device_id"])
    if truth is None:
        held = held.with_columns(pl.lit("all").alias("population"), pl.lit(None, pl.Boolean).alias("fraud"))
    else:
        held = held.join(truth, on="device_id", how="left").with_columns(pl.col("population").fill_null("(not in truth)"))
    return held.group_by("population", "fraud").agg(
        pl.col("device_id").n_unique().alias("devices"), pl.len().alias("device_hours")
    )


def compare(stored: pl.DataFrame, replayed: pl.DataFrame, truth: pl.DataFrame | None) -> pl.DataFrame:
    """Before and after side by side, one row per population."""
    before, after = held_by(stored, truth), held_by(replayed, truth)
    return (
        before.join(after, on=["population", "fraud"], how="full", coalesce=True, suffix="_now", nulls_equal=True)
        .with_columns(pl.col("devices", "device_hours", "devices_now", "device_hours_now").fill_null(0))
        .sort("fraud", "population", nulls_last=True)
    )


def changed_devices(stored: pl.DataFrame, replayed: pl.DataFrame) -> pl.DataFrame:
    """Devices held in some epoch by one side and not by the other."""
    a = stored.filter(pl.col("action").is_in(HELD)).select("epoch", "device_id").unique()
    b = replayed.filter(pl.col("action").is_in(HELD)).select("epoch", "device_id").unique()
    only_before = a.join(b, on=["epoch", "device_id"], how="anti").with_columns(pl.lit("before only").alias("held"))
    only_now = b.join(a, on=["epoch", "device_id"], how="anti").with_columns(pl.lit("now only").alias("held"))
    return (
        pl.concat([only_before, only_now])
        .group_by("device_id", "held")
        .agg(pl.len().alias("hours"), pl.col("epoch").min().alias("first"))
        .sort("device_id", "held")
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--db", type=Path, required=True, help="a database written by `fleetproof run`")
    p.add_argument("--detector", required=True, help="a detector's name (detectors.REGISTRY)")
    p.add_argument("--truth", type=Path, help="truth_devices.csv of a held-out network, or _truth/devices.parquet")
    p.add_argument("--policy", type=Path, help="a detection policy TOML to build the detector from (default: the shipped one)")
    a = p.parse_args()
    if not a.db.is_file():
        raise SystemExit(f"replay_detector: no database at {a.db}")
    import detectors

    if a.detector not in detectors.REGISTRY:
        raise SystemExit(f"replay_detector: no detector {a.detector!r}; known: {', '.join(sorted(detectors.REGISTRY))}")
    truth = read_truth(a.truth) if a.truth else None
    from pipelines.policy import load_policy
    from pipelines.policy_errors import PolicyError

    try:  # as the detect stage builds it: a policy's change replays as a code change does
        params = dict(load_policy(a.policy).detectors.get(a.detector, {}))
    except PolicyError as e:
        raise SystemExit(f"replay_detector: {e}") from None
    params.pop("enabled", None)
    t0 = time.perf_counter()
    from pipelines.db import DatabaseBusy

    try:
        stored, replayed, epochs = replay(a.db, a.detector, params)
    except DatabaseBusy as busy:
        raise SystemExit(f"replay_detector: {busy}") from None
    seconds = time.perf_counter() - t0
    with pl.Config(tbl_rows=200, tbl_width_chars=160, tbl_hide_column_data_types=True, tbl_hide_dataframe_shape=True):
        print(f"{a.detector} over {epochs} epochs of {a.db} in {seconds:.1f} s")
        print("held (probation or reject): as stored, and now")
        print(compare(stored, replayed, truth))
        changed = changed_devices(stored, replayed)
        print(f"devices whose held hours differ: {changed['device_id'].n_unique()}")
        if changed.height:
            print(changed.head(50))


if __name__ == "__main__":
    main()
