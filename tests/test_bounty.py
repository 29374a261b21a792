"""Bounty intake against a public release: checks, decisions kept, review, exact payout."""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from test_release import Released, released_network

from pipelines.bounty import intake, review
from pipelines.cli import main
from pipelines.db import connect
from pipelines.policy import load_policy
from pipelines.release import pseudonymize
from pipelines.rewards_policy import load_rewards_policy

EPOCHS = ["2024-08-14T04", "2024-08-14T05", "2024-08-14T06"]
T0 = datetime(2024, 8, 14, 9, 0, 0)
WALLET = "HunterWa11et1111111111111111111111111111111"


@pytest.fixture(scope="module")
def rel() -> Released:
    return released_network()


@pytest.fixture
def db(rel: Released, tmp_path: Path) -> Path:
    copy = tmp_path / "fp.duckdb"
    shutil.copy(rel.db, copy)
    return copy


def _pseudo(rel: Released, devices: list[str]) -> list[str]:
    key = pseudonymize.season_key(rel.secret, "2024-H2")
    return sorted(pseudonymize.pseudonym(key, "device", d) for d in devices)


def _missed_virtualized_ring(rel: Released) -> list[str]:
    """The simulator's virtualized ring with the most devices the pipeline had not flagged in EPOCHS."""
    truth = pl.read_parquet(rel.drops / "_truth" / "devices.parquet").filter(pl.col("population") == "virtualized_spoofed")
    tiers = pl.read_parquet(f"{rel.release}/device_tiers/*/part-0.parquet").filter(pl.col("epoch").is_in(EPOCHS))
    flagged = set(tiers.filter(pl.col("tier").is_in(["rejected", "probation"]))["device_id"])
    best = max(truth.group_by("cluster").agg("device_id").iter_rows(), key=lambda r: len(set(_pseudo(rel, r[1])) - flagged))
    return _pseudo(rel, best[1])


def _report(tmp_path: Path, name: str, devices: list[str], **over) -> Path:
    report = {
        "report_version": 1, "reporter": "hunter-ada", "reward_wallet": WALLET, "epochs": EPOCHS,
        "fraud_type": "virtualized_gpu", "devices": devices, "signals": ["host_fingerprint", "ip_prefix"],
        "reasoning": "These devices report from one host behind one address and answer PoW like one card.",
        "method": "grouped hardware rows by host_fingerprint and ip_prefix in the release",
    } | over  # fmt: skip
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(report))
    return path


def _submit(rel: Released, db: Path, report: Path, at: datetime) -> intake.Decision:
    with connect(db) as con:
        return intake.submit(con, report, rel.release, rel.public_key, intake.load_bounty_policy(), received_at=at)


def test_a_valid_report_passes_every_check_and_waits_for_review(rel: Released, db: Path, tmp_path: Path) -> None:
    d = _submit(rel, db, _report(tmp_path, "ring", _missed_virtualized_ring(rel)), T0)
    assert d.status == "queued", d
    assert [s[0] for s in d.steps] == ["schema", "rate_limit", "release", "ids", "duplicate", "verdicts", "coherence"]
    assert "host_fingerprint ties" in d.steps[-1][2]


def test_a_duplicate_report_is_rejected_first_reporter_wins(rel: Released, db: Path, tmp_path: Path) -> None:
    ring = _missed_virtualized_ring(rel)
    first = _submit(rel, db, _report(tmp_path, "a", ring), T0)
    second = _submit(rel, db, _report(tmp_path, "b", ring, reporter="hunter-bob"), T0 + timedelta(minutes=5))
    assert first.status == "queued" and second.status == "rejected"
    assert second.reason.startswith("duplicate") and first.report_id in second.reason


def test_a_report_naming_unknown_ids_is_rejected_with_them(rel: Released, db: Path, tmp_path: Path) -> None:
    ghost = "d-" + "0" * 20
    d = _submit(rel, db, _report(tmp_path, "ghost", [*_missed_virtualized_ring(rel)[:2], ghost]), T0)
    assert d.status == "rejected" and d.steps[-1][0] == "ids" and ghost in d.reason


def test_a_report_about_honest_devices_is_rejected_with_the_reason(rel: Released, db: Path, tmp_path: Path) -> None:
    truth = pl.read_parquet(rel.drops / "_truth" / "devices.parquet")
    honest = truth.filter(pl.col("population") == "home").unique("account_id").sort("device_id").head(5)["device_id"].to_list()
    d = _submit(
        rel,
        db,
        _report(tmp_path, "honest", _pseudo(rel, honest), fraud_type="sybil", signals=["host_fingerprint", "gpu_uuid"]),
        T0,
    )
    assert d.status == "rejected" and d.steps[-1][0] == "coherence"
    assert "does not cohere on the signals it cites: gpu_uuid ties 0 of 5, host_fingerprint ties 0 of 5" in d.reason
    with connect(db) as con:  # the reporter can see why
        shown = review.decisions(con, d.report_id)
    assert shown["outcome"].to_list()[-1] == "reject" and "does not cohere" in shown["reason"].to_list()[-1]


def test_spam_beyond_the_daily_limit_is_rejected(rel: Released, db: Path, tmp_path: Path) -> None:
    ghost = _report(tmp_path, "ghost", ["d-" + "1" * 20])
    limit = intake.load_bounty_policy().max_reports_per_day
    outcomes = [_submit(rel, db, ghost, T0 + timedelta(minutes=i)) for i in range(limit + 1)]
    assert [o.steps[-1][0] for o in outcomes] == ["ids"] * limit + ["rate_limit"]
    assert "limit 5" in outcomes[-1].reason
    later = _submit(rel, db, ghost, T0 + timedelta(hours=25))  # a day later the reporter may send again
    assert later.steps[-1][0] == "ids"


def test_a_report_that_does_not_follow_the_schema_is_rejected(rel: Released, db: Path, tmp_path: Path) -> None:
    d = _submit(rel, db, _report(tmp_path, "bad", ["not-a-pseudonym"]), T0)
    assert d.status == "rejected" and d.steps[-1][0] == "schema" and "devices/0" in d.reason
    (tmp_path / "junk.json").write_text("{not json")
    assert _submit(rel, db, tmp_path / "junk.json", T0).reason.startswith("not JSON")


def _allocated(con, devices: list[str]) -> int:
    return con.execute("SELECT coalesce(sum(amount_base_units), 0) FROM reward_allocations WHERE epoch BETWEEN ? AND ? "
                       "AND list_contains(?, device_id)", [EPOCHS[0], EPOCHS[-1], devices]).fetchall()[0][0]  # fmt: skip


@pytest.mark.slow
def test_an_accepted_report_overrides_the_devices_and_pays_exactly(rel: Released, db: Path, tmp_path: Path) -> None:
    d = _submit(rel, db, _report(tmp_path, "ring", _missed_virtualized_ring(rel)), T0)
    assert d.status == "queued"
    with connect(db) as con:
        credited = con.execute("SELECT credited_devices FROM bounty_reports WHERE report_id = ?", [d.report_id]).fetchall()[0][0]
        pseudonymize.register(con, pseudonymize.season_key(rel.secret, "2024-H2"))
        raw = [r[0] for r in con.execute("SELECT DISTINCT device_id FROM device_tiers WHERE list_contains(?, pseudo('device', device_id))",
                                         [credited]).fetchall()]  # fmt: skip
        before = _allocated(con, raw)
        assert before > 0
        payout = review.accept(con, d.report_id, "same host, PoW contention confirmed", secret=rel.secret,
                               release_policy=pseudonymize.load_release_policy(), detection=load_policy(None),
                               rewards=load_rewards_policy(None), bounty=intake.load_bounty_policy())  # fmt: skip
        after = _allocated(con, raw)
        overrides = con.execute("SELECT device_id, tier, reason FROM verdict_overrides").fetchall()
        paid = con.execute("SELECT reward_wallet, stopped_base_units, amount_base_units FROM bounty_payouts").fetchall()
        tiers = {r[0] for r in con.execute("SELECT tier FROM device_tiers WHERE epoch BETWEEN ? AND ? AND list_contains(?, device_id)",
                                           [EPOCHS[0], EPOCHS[-1], raw]).fetchall()}  # fmt: skip
    assert sorted(payout.devices) == sorted(raw) and after == 0 and tiers == {"rejected"}
    assert payout.stopped_base_units == before - after
    assert payout.amount_base_units == before * 2500 // 10000 and isinstance(payout.amount_base_units, int)
    assert paid == [(WALLET, before, before * 2500 // 10000)]
    assert {o[0] for o in overrides} == set(raw) and all(f"bounty report {d.report_id} by hunter-ada" in o[2] for o in overrides)
    code = main(["bounty", "--db", str(db), "status", d.report_id])
    assert code == 0
