"""Tiering hysteresis: one bad hour demotes, promotion needs a clean streak, rejection sticks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipelines.db import connect
from pipelines.policy import Tiering
from pipelines.tiering import assign_tiers

POLICY = Tiering(verify_after_clean_hours=3, release_probation_after_clean_hours=2)


@pytest.fixture
def con(tmp_path: Path):
    with connect(tmp_path / "db.duckdb") as c:
        yield c


def step(con, h: int, evidence: dict[str, str]) -> dict[str, tuple[str, list[str]]]:
    """Epoch h: devices a, b, c seen; ``evidence`` maps device -> action for this hour."""
    epoch = f"2024-08-14T{h:02d}"
    for d in "abc":
        con.execute("INSERT INTO device_features (epoch, device_id, account_id) VALUES (?, ?, 'acc')", [epoch, d])
    for d, action in evidence.items():
        con.execute(
            "INSERT INTO evidence VALUES (?, ?, 'acc', 'failed_pow', 'failed_pow', 0.9, ?, 'because', '{}')",
            [epoch, d, action],
        )
    assign_tiers(con, epoch, POLICY)
    rows = con.execute("SELECT device_id, tier, fraud_types FROM device_tiers WHERE epoch = ?", [epoch]).fetchall()
    return {d: (t, f) for d, t, f in rows}


def test_hysteresis(con) -> None:
    tiers = [step(con, 0, {}), step(con, 1, {"a": "probation"}), step(con, 2, {"b": "reject"}),
             step(con, 3, {}), step(con, 4, {}), step(con, 5, {})]  # fmt: skip
    a = [t["a"][0] for t in tiers]
    b = [t["b"][0] for t in tiers]
    c = [t["c"][0] for t in tiers]
    assert c == ["standard", "standard", "verified", "verified", "verified", "verified"]
    # the streak counts clean hours since the last evidence: 2 release probation, 3 verify
    assert a == ["standard", "probation", "probation", "standard", "verified", "verified"]
    assert b == ["standard", "standard", "rejected", "rejected", "rejected", "rejected"]
    assert tiers[1]["a"][1] == ["failed_pow"] and tiers[3]["a"][1] == []
    assert tiers[5]["b"][1] == ["failed_pow"]  # a rejection keeps its fraud types


def test_verified_device_is_demoted_by_one_bad_hour(con) -> None:
    for h in range(3):
        step(con, h, {})
    assert step(con, 3, {"c": "probation"})["c"][0] == "probation"


def test_rejected_reasons_stay_readable(con) -> None:
    step(con, 0, {"a": "reject"})
    step(con, 1, {})
    reasons = con.execute("SELECT reasons FROM device_tiers WHERE epoch = '2024-08-14T01' AND device_id = 'a'").fetchall()[0][0]
    assert "rejected since 2024-08-14T00 for failed_pow" in reasons


def _seen(con, h: int, devices: str, evidence: dict[str, str] | None = None) -> dict[str, tuple[str, str]]:
    epoch = f"2024-08-14T{h:02d}"
    for d in devices:
        con.execute("INSERT INTO device_features (epoch, device_id, account_id) VALUES (?, ?, 'acc')", [epoch, d])
    for d, action in (evidence or {}).items():
        con.execute("INSERT INTO evidence VALUES (?, ?, 'acc', 'anomaly', 'anomaly', 0.6, ?, 'odd', '{}')", [epoch, d, action])
    assign_tiers(con, epoch, POLICY)
    rows = con.execute("SELECT device_id, tier, reasons FROM device_tiers WHERE epoch = ?", [epoch]).fetchall()
    return {d: (t, r) for d, t, r in rows}


def test_probation_expires_on_the_clock_even_while_the_device_is_off(con) -> None:
    step(con, 0, {"a": "probation"})
    # a is switched off for hours 1-9 (no rows at all), then comes back clean
    for h in range(1, 10):
        _seen(con, h, "bc")
    assert _seen(con, 10, "abc")["a"][0] == "standard"


def test_carried_probation_names_its_evidence_and_expiry(con) -> None:
    step(con, 0, {"a": "probation"})
    tier, types = step(con, 1, {})["a"]
    assert tier == "probation" and types == ["failed_pow"]
    reasons = con.execute("SELECT reasons FROM device_tiers WHERE epoch = '2024-08-14T01' AND device_id = 'a'").fetchone()[0]
    assert "probation until 2024-08-14T02 for failed_pow seen at 2024-08-14T00 (because)" in reasons
    now = con.execute("SELECT reasons FROM device_tiers WHERE epoch = '2024-08-14T00' AND device_id = 'a'").fetchone()[0]
    assert '"expires":"2024-08-14T02"' in now.replace(" ", "")


def test_review_leads_never_change_a_tier(con) -> None:
    got = _seen(con, 0, "ab", {"a": "review"})
    assert got["a"][0] == "standard" and got["a"][1] == "[]"


def test_a_detectors_clear_ends_its_own_probation_at_once_and_no_other(con) -> None:
    """A detector that refutes its suspicion (``clear``: a card held for failed VRAM challenges
    answered one as large) ends the probation it raised now, not at its expiry, and the row says
    why; probation of another fraud type carries on."""
    step(con, 0, {"a": "probation", "b": "probation"})
    for d, fraud_type in (("a", "failed_pow"), ("b", "spoofed_model")):
        con.execute(
            "INSERT INTO evidence VALUES ('2024-08-14T01', ?, 'acc', ?, ?, 0.0, 'clear', 'refuted: it answered', '{}')",
            [d, fraud_type, fraud_type],
        )
    got = step(con, 1, {})
    assert got["a"] == ("standard", []) and got["b"] == ("probation", ["failed_pow"])
    reasons = con.execute("SELECT reasons FROM device_tiers WHERE epoch = '2024-08-14T01' AND device_id = 'a'").fetchone()[0]
    entry = json.loads(reasons)[0]
    assert entry["action"] == "clear" and entry["reason"] == "refuted: it answered" and entry["score"] == 0.0
    step(con, 2, {"a": "probation"})  # new suspicion after the clear holds again
    assert step(con, 3, {})["a"][0] == "probation"
