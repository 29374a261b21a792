"""``timeshare``: a machine, card or address that several accounts hold in turn, and the honest
hand-overs (a sale, a home's daily routine, a pool's customers, a shared NAT) it must leave alone."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest

from detectors import Evidence, Timeshare

START = datetime(2024, 8, 13)
LAST = "2024-08-14T23"  # the 48th hour from START


@pytest.fixture
def con(catalogue_con):
    return catalogue_con


def report(con, device: str, account: str, h: int, host: str, uuid: str | None = None, ip: str = "198.51.100.1") -> None:
    """One hardware report of ``device`` in hour ``h`` after START."""
    ts = START + timedelta(hours=h, minutes=10)
    con.execute(
        "INSERT INTO hardware (ts, device_id, account_id, host_fingerprint, ip, gpu_uuid, _hour, _file, _row) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, 'hardware.csv', 1)",
        [ts, device, account, host, ip, uuid, ts.strftime("%Y-%m-%dT%H")],
    )


def found(con) -> dict[str, dict]:
    return {r["device_id"]: r for r in Timeshare().detect(Evidence(con, LAST)).iter_rows(named=True)}


def test_timeshare_holds_every_account_of_a_machine_that_keeps_coming_back_to_them(con) -> None:
    """One host serves three accounts' devices in six-hour shifts through proxies (a new address
    every hour): every holder is held for review, the evidence names the machine."""
    for h in range(48):
        shift = (h // 6) % 3
        report(con, f"rota{shift}", f"acc{shift}", h, host="host-rota", uuid=f"GPU-rota{shift}", ip=f"203.0.113.{h + 1}")
    rows = found(con)
    assert set(rows) == {"rota0", "rota1", "rota2"}
    row = rows["rota0"]
    details = json.loads(row["details"])
    assert row["action"] == "probation" and row["fraud_type"] == "sybil"
    assert details["kind"] == "host" and details["accounts"] == 3 and details["proof"] == "suspicion"
    assert details["handovers"] == 7 and details["returns"] == 5 and details["shared_hours"] == 0
    assert "machine (host fingerprint) held in turn by 3 accounts" in row["reason"]


def test_timeshare_a_machine_or_card_sold_once_and_a_reinstall_are_not_a_rota(con) -> None:
    """A sale hands the machine and its card to another account once; a reinstall registers the
    card again under the same account."""
    for h in range(48):
        if h < 20:
            report(con, "seller-dev", "seller", h, host="host-sold", uuid="GPU-sold")
        elif h > 26:
            report(con, "buyer-dev", "buyer", h, host="host-sold", uuid="GPU-sold", ip="198.51.100.77")
        report(
            con, "old-id" if h < 24 else "new-id", "owner", h, host=f"host-owner-{h // 24}", uuid="GPU-owner", ip="198.51.100.9"
        )
    assert found(con) == {}


def test_timeshare_an_address_that_four_accounts_stay_on_in_shifts_is_held(con) -> None:
    """Four accounts, each with a machine of its own, take the one address in six-hour shifts."""
    for h in range(48):
        shift = (h // 6) % 4
        report(con, f"shift{shift}", f"acc{shift}", h, host=f"host{shift}", uuid=f"GPU-{shift}", ip="203.0.113.50")
    rows = found(con)
    assert set(rows) == {f"shift{k}" for k in range(4)}
    assert {json.loads(r["details"])["kind"] for r in rows.values()} == {"ip"}
    assert all(r["score"] == 0.8 for r in rows.values())


def test_timeshare_spares_a_homes_routine_a_pools_customers_and_a_shared_nat(con) -> None:
    """Two members of a home on one address, one by day and one by night; three customers of a
    pool of three addresses, moved to another one every four hours (each address sees them in
    turn, but none stays); three strangers behind one carrier NAT at the same time, but for an
    hour in four that one of them has to itself."""
    pool = ["198.51.100.21", "198.51.100.22", "198.51.100.23"]
    for h in range(48):
        day = 8 <= h % 24 < 18
        report(con, "parent-dev" if day else "kid-dev", "parent" if day else "kid", h, host="host-p" if day else "host-k",
                ip="198.51.100.10")  # fmt: skip
        for k in range(3):
            report(con, f"pool{k}", f"customer{k}", h, host=f"host-pool{k}", ip=pool[(k + h // 4) % 3])
        for k in range(3):  # together, but for one hour in four that one of them has to itself
            if h % 4 or k == (h // 4) % 3:
                report(con, f"nat{k}", f"stranger{k}", h, host=f"host-nat{k}", ip="198.51.100.99")
    assert found(con) == {}


def test_timeshare_spares_one_machine_two_people_share_by_day_and_by_night(con) -> None:
    """A cybercafe's day manager and night manager each enrolled its PCs (a twenty-sixth network
    written by others): the same machine and card under two accounts, in twelve-hour turns that
    come back every day. Two people sharing a machine is no rota; three accounts on it are."""
    for h in range(48):
        day = 8 <= h % 24 < 20
        for pc in range(4):
            report(con, f"pc{pc}-{'day' if day else 'night'}", "day-manager" if day else "night-manager", h,
                   host=f"host-pc{pc}", uuid=f"GPU-pc{pc}", ip="198.51.100.40")  # fmt: skip
    assert found(con) == {}
    for h in range(48):  # a third account joins the turns on one of the machines
        if h % 24 == 7:
            report(con, "pc0-third", "third", h, host="host-pc0", uuid="GPU-pc0", ip="198.51.100.41")
    assert set(found(con)) == {"pc0-day", "pc0-night", "pc0-third"}


def test_timeshare_refuses_parameters_that_would_hold_a_single_hand_over() -> None:
    with pytest.raises(ValueError, match="min_returns"):
        Timeshare(min_returns=1)
    with pytest.raises(ValueError, match="max_shared_share"):
        Timeshare(max_shared_share=1.0)
