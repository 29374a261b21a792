"""End to end through the command line: a simulated day, checked against ground truth."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import duckdb
import polars as pl
import pytest

from pipelines.cli import ISSUE2_TYPES, main
from pipelines.db import connect
from pipelines.evaluate import evaluate
from pipelines.simulate.scenario import DEFAULT_MIX, HONEST_POPULATIONS


@pytest.mark.slow
def test_exact_detectors_meet_the_quality_bar_on_a_simulated_day(day_run) -> None:
    drops, db, _ = day_run
    per_type, per_pop = evaluate(db, drops, ISSUE2_TYPES)
    for row in per_type.iter_rows(named=True):
        assert row["truth"] > 0, row
        assert row["precision"] >= 0.99, row
        assert row["recall"] >= 0.95, row
    honest = per_pop.filter(pl.col("population").is_in(HONEST_POPULATIONS))
    assert honest.height == len(set(HONEST_POPULATIONS) & set(DEFAULT_MIX))
    assert honest["flagged_share"].max() <= 0.005, honest


@pytest.mark.slow
def test_exports_follow_the_contract(day_run) -> None:
    drops, db, out = day_run
    files = sorted((out / "device_tiers").glob("epoch=*/part-0.parquet"))
    assert len(files) == 24
    tiers = duckdb.sql(f"SELECT * FROM read_parquet('{out}/device_tiers/*/*.parquet', hive_partitioning=false)").pl()
    assert tiers.columns == ["epoch", "device_id", "account_id", "tier", "fraud_types", "score", "reasons"]
    assert set(tiers["tier"].unique()) <= {"verified", "standard", "probation", "rejected"}
    assert tiers.select(pl.col("score").is_between(0, 1).all()).item()
    assert tiers.group_by("epoch", "device_id").len()["len"].max() == 1
    flagged = tiers.filter(pl.col("tier").is_in(["probation", "rejected"]))
    assert flagged.select(pl.col("fraud_types").list.len().min()).item() >= 1
    assert (tiers.filter(pl.col("tier").is_in(["standard", "verified"]))["fraud_types"].list.len() == 0).all()
    sample = flagged.row(0, named=True)
    assert '"reason"' in sample["reasons"]


def _tiers_digest(db: Path) -> str:
    with connect(db) as con:
        rows = con.execute(
            "SELECT epoch, device_id, account_id, tier, fraud_types, score, reasons FROM device_tiers ORDER BY ALL"
        ).fetchall()
    return hashlib.sha256(repr(rows).encode()).hexdigest()


def test_late_hour_recomputes_later_epochs_to_the_same_result(small_drops: Path, tmp_path: Path) -> None:
    """Hours 0, 1, 3 first, hour 2 late: the result equals an in-order run."""
    in_order = tmp_path / "in_order.duckdb"
    assert main(["run", "--drops", str(small_drops), "--db", str(in_order), "--out", str(tmp_path / "o1")]) == 0
    partial = tmp_path / "partial"
    partial.mkdir()
    hours = sorted(p for p in small_drops.iterdir() if not p.name.startswith("_"))
    for h in [hours[0], hours[1], hours[3]]:
        shutil.copytree(h, partial / h.name)
    late = tmp_path / "late.duckdb"
    assert main(["run", "--drops", str(partial), "--db", str(late), "--out", str(tmp_path / "o2")]) == 0
    shutil.copytree(hours[2], partial / hours[2].name)
    assert main(["run", "--drops", str(partial), "--db", str(late), "--out", str(tmp_path / "o2")]) == 0
    assert _tiers_digest(late) == _tiers_digest(in_order)
    with connect(late) as con:
        assert con.execute("SELECT count(*) FROM processed_epochs").fetchall()[0][0] == 4


def test_status_reports_rejections_and_quarantine(drops_copy: Path, tmp_path: Path, capsys) -> None:
    hours = sorted(p for p in drops_copy.iterdir() if not p.name.startswith("_"))
    (hours[1] / "_manifest.json").write_text("{broken")
    uptime = next(hours[2].glob("uptime.*"))
    (hours[2] / "stray.csv").write_text("not,listed\n")
    db = tmp_path / "db.duckdb"
    assert main(["run", "--drops", str(drops_copy), "--db", str(db), "--out", str(tmp_path / "out")]) == 0
    capsys.readouterr()
    assert main(["status", "--db", str(db)]) == 0
    report = capsys.readouterr().out
    assert "hours ingested: 3   rejected: 1" in report
    assert f"REJECTED {hours[1].name}: _manifest.json is not valid JSON" in report
    assert "stray.csv" in report and "not listed in the manifest" in report
    assert uptime.exists()


def test_demo_runs_the_embedded_default(tmp_path: Path, capsys) -> None:
    assert main(["demo", "--workdir", str(tmp_path / "demo"), "--devices", "300", "--hours", "3"]) == 0
    out = capsys.readouterr().out
    assert "Detection quality by fraud type" in out and "device_tiers: 3 epoch file(s)" in out


def test_cli_reports_bad_arguments_clearly(tmp_path: Path, capsys) -> None:
    assert main(["run", "--drops", str(tmp_path / "nope"), "--db", str(tmp_path / "db"), "--out", str(tmp_path)]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_run_stops_at_an_hour_that_fails_a_quality_bar(small_drops: Path, tmp_path: Path, capsys) -> None:
    policy = tmp_path / "strict.toml"
    policy.write_text("[quality]\nmin_rows = { hardware = 1, pow = 1, uptime = 10000000 }\n")
    db = tmp_path / "db.duckdb"
    code = main(["run", "--drops", str(small_drops), "--db", str(db), "--out", str(tmp_path / "o"), "--policy", str(policy)])
    out = capsys.readouterr().out
    assert code == 1 and "STOPPED at 2024-08-14T00" in out and "too few rows in uptime" in out
    with connect(db) as con:
        assert con.execute("SELECT count(*) FROM device_tiers").fetchall()[0][0] == 0
    assert (
        main(
            [
                "run",
                "--drops",
                str(small_drops),
                "--db",
                str(db),
                "--out",
                str(tmp_path / "o"),
                "--policy",
                str(policy),
                "--skip-quality-bars",
            ]
        )
        == 0
    )
