"""The heartbeat and ping cadence is measured each hour, and liveness rules scale with it: the
data contract does not say how often heartbeats and pings come, and a rule written for one
cadence misreads another."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from pipelines.cadence import Cadence, measure_cadence
from pipelines.cli import main
from pipelines.db import connect_for_reading, ensure_schema
from pipelines.simulate import simulate, truth_devices
from pipelines.simulate.scenario import HONEST_POPULATIONS, Scenario


def _heartbeats(con: duckdb.DuckDBPyConnection, devices: int, every_minutes: int, pings: int) -> None:
    start = datetime(2024, 8, 14, 7)
    rows = []
    for d in range(devices):
        rows += [(start + timedelta(minutes=m, seconds=d), f"dev{d}", "heartbeat") for m in range(3, 60, every_minutes)]
        rows += [(start + timedelta(minutes=m, seconds=d), f"dev{d}", "ping") for m in range(1, 60, 60 // pings)]
    con.executemany(
        "INSERT INTO uptime (ts, device_id, source, ok, _hour, _file, _row) VALUES (?, ?, ?, true, '2024-08-14T07', 'u.csv', 0)",
        rows,
    )


@pytest.mark.parametrize(("every", "pings"), [(10, 4), (5, 12), (30, 1), (20, 2)])
def test_the_cadence_is_measured_from_the_hours_heartbeats_and_pings(every: int, pings: int) -> None:
    con = duckdb.connect()
    ensure_schema(con)
    _heartbeats(con, devices=12, every_minutes=every, pings=pings)
    cadence = measure_cadence(con, "2024-08-14T07")
    assert (cadence.heartbeat_minutes, cadence.pings_per_hour) == (every, pings)
    stored = con.execute("SELECT heartbeat_minutes, pings_per_hour, up_heartbeats FROM uptime_cadence").fetchall()
    assert stored == [(every, pings, cadence.up_heartbeats)]


def test_too_few_devices_to_measure_give_the_reference_cadence_whose_thresholds_are_the_fixed_ones() -> None:
    con = duckdb.connect()
    ensure_schema(con)
    _heartbeats(con, devices=9, every_minutes=30, pings=1)
    cadence = measure_cadence(con, "2024-08-14T07")
    assert cadence == Cadence(measured_devices=9)
    assert (cadence.up_heartbeats, cadence.reach_minutes, cadence.restart_minutes) == (3, 12, (14, 40))


def _run(tmp_path: Path, scenario: Scenario) -> dict[str, object]:
    """Simulate and run a 300-device, 8-hour network; what its last epoch says about liveness."""
    drops, db = tmp_path / "drops", tmp_path / "fp.duckdb"
    simulate(drops, devices=300, hours=8, seed=3, scenario=scenario)
    assert main(["run", "--drops", str(drops), "--db", str(db), "--out", str(tmp_path / "out")]) == 0
    truth = truth_devices(drops)
    honest = truth.filter(truth["population"].is_in(HONEST_POPULATIONS))["device_id"].to_list()
    with connect_for_reading(db) as con:
        up, seen = con.execute(
            "SELECT count(*) FILTER (up_hours >= 5), count(*) FROM reward_eligibility "
            "WHERE epoch = (SELECT max(epoch) FROM processed_epochs) AND device_id IN (SELECT unnest(?))",
            [honest],
        ).fetchall()[0]
        return {
            "cadence": set(con.execute("SELECT heartbeat_minutes, pings_per_hour FROM uptime_cadence").fetchall()),
            "up_share": up / seen,
            "restarts": con.execute("SELECT count(*) FROM restart_gaps").fetchall()[0][0],
            "honest_flagged": con.execute(
                "SELECT count(DISTINCT device_id) FROM device_tiers WHERE tier IN ('probation', 'rejected') "
                "AND device_id IN (SELECT unnest(?))",
                [honest],
            ).fetchall()[0][0],
        }


def test_a_network_with_half_hourly_heartbeats_keeps_its_honest_devices_up_and_invents_no_restarts(tmp_path: Path) -> None:
    """The same network with heartbeats every 30 minutes and one ping an hour, against the
    reference cadence. Fixed rules for 10-minute heartbeats made every device ineligible ("up 0 of
    the last 5 hours": fewer than 3 heartbeats an hour) and read every 30-minute silence as a
    14-40 minute restart. Now most honest devices count as up (with one ping an hour a lost ping
    costs the whole hour, so NAT devices lose some hours the reference's four pings forgive: 78%
    against 86% on this network), a restart is a silence of 42-120 minutes (fewer are seen, none
    invented), and no honest device is flagged."""
    reference = _run(tmp_path / "reference", Scenario())
    slow = _run(tmp_path / "slow", replace(Scenario(), heartbeat_minutes=30, ping_minutes=(22,)))
    assert reference["cadence"] == {(10, 4)} and slow["cadence"] == {(30, 1)}
    assert slow["up_share"] >= 0.8 * reference["up_share"], (slow, reference)
    assert slow["restarts"] <= reference["restarts"], (slow, reference)
    assert slow["honest_flagged"] == reference["honest_flagged"] == 0


@pytest.mark.parametrize("missing", ["ping", "heartbeat"])
def test_a_source_absent_from_the_whole_hour_is_waived_not_held_against_every_device(missing: str) -> None:
    """A backend that never pings, or devices that send no heartbeats: 0 pings an hour or 0
    heartbeats needed, so liveness is read from the source there is."""
    con = duckdb.connect()
    ensure_schema(con)
    _heartbeats(con, devices=20, every_minutes=10, pings=4)
    con.execute("DELETE FROM uptime WHERE source = ?", [missing])
    cadence = measure_cadence(con, "2024-08-14T07")
    assert (cadence.pings_per_hour == 0, cadence.up_heartbeats == 0) == (missing == "ping", missing == "heartbeat")
    waived = con.execute("SELECT pings_answered(0, 0, pings_per_hour), 0 >= up_heartbeats FROM uptime_cadence").fetchall()
    assert waived == [(missing == "ping", missing == "heartbeat")]  # a silent device is up only by the absent source


def test_a_late_heartbeat_delivered_with_the_next_hour_does_not_close_that_hours_silence() -> None:
    """Late rows land in the hour they were delivered in (ingest); a heartbeat of 06:55 sent with
    the 07 drop belongs to hour 06, judged already. The hour's silences (the cadence and the
    restart gaps the sybil graph reads) are the hour's own: with it counted, the 06:20-07:05
    silence of a farm-wide restart became a 10-minute gap, and a fifth network written by others
    lost 6 of its ring's clustered accounts."""
    from pipelines.features import GAPS_SQL

    def gaps(late: bool) -> list[tuple]:
        con = duckdb.connect()
        ensure_schema(con)
        rows = [("2024-08-14 06:20:00", "2024-08-14T06")] + [(f"2024-08-14 07:{m:02d}:00", "2024-08-14T07") for m in (5, 15, 25)]
        if late:
            rows.append(("2024-08-14 06:55:00", "2024-08-14T07"))
        con.executemany(
            "INSERT INTO uptime (ts, device_id, source, ok, _hour, _file, _row) VALUES (?, 'dev', 'heartbeat', true, ?, 'u.csv', 0)",
            rows,
        )
        con.execute(GAPS_SQL, {"epoch": "2024-08-14T07", "prev": "2024-08-14T06", "min_gap": 14, "max_gap": 60})
        return con.execute("SELECT * EXCLUDE (epoch) FROM restart_gaps").fetchall()

    assert gaps(late=True) == gaps(late=False) == [("dev", datetime(2024, 8, 14, 6, 20), 45.0)]


def test_restart_gaps_keep_outages_up_to_two_hours_with_their_length_to_the_millisecond() -> None:
    """The features stage keeps silences from a restart's minimum up to two hours (the sybil
    stage's synchronized outages read them all); the restart kind reads those up to the hour's
    restart maximum, so a length truncated to the second would let a silence of 20 min 0.5 s
    pass a 20-minute maximum it exceeds."""
    from pipelines.features import GAPS_SQL, SILENCE_MAX_MINUTES

    con = duckdb.connect()
    ensure_schema(con)
    rows = [("a", "2024-08-14 06:58:00"), ("a", "2024-08-14 07:18:00.500"), ("b", "2024-08-14 06:50:00"),
            ("b", "2024-08-14 07:45:00"), ("c", "2024-08-14 06:00:00"), ("c", "2024-08-14 07:00:01")]  # fmt: skip
    con.executemany(
        "INSERT INTO uptime (ts, device_id, source, ok, _hour, _file, _row) "
        "VALUES (CAST(? AS TIMESTAMP), ?, 'heartbeat', true, strftime(CAST(? AS TIMESTAMP), '%Y-%m-%dT%H'), 'u.csv', 0)",
        [(ts, dev, ts) for dev, ts in rows],
    )
    con.execute(GAPS_SQL, {"epoch": "2024-08-14T07", "prev": "2024-08-14T06", "min_gap": 7, "max_gap": SILENCE_MAX_MINUTES})
    gaps = dict(con.execute("SELECT device_id, gap_minutes FROM restart_gaps").fetchall())
    assert (
        gaps["a"] == pytest.approx(20 + 0.5 / 60)
        and gaps["a"] > 20
        and gaps["b"] == 55.0
        and gaps["c"] == pytest.approx(60 + 1 / 60)
    )
