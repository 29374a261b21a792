"""Each shipped detector on hand-made evidence: what it flags, what it spares, what it says."""

from __future__ import annotations

import json

import duckdb
import numpy as np
import polars as pl
import pytest

from detectors import REGISTRY, DoubleListed, DuplicateHardware, Evidence, FailedPow, SpoofedUptime, StakeManipulation
from detectors.base import EVIDENCE_SCHEMA, Detector

EPOCH = "2024-08-14T05"


@pytest.fixture
def con(catalogue_con):
    return catalogue_con


def feature(con: duckdb.DuckDBPyConnection, device: str, epoch: str = EPOCH, **cols: object) -> None:
    base = dict(account_id="acc", gpu_model="NVIDIA GeForce RTX 4090", catalogue_model="rtx_4090", spec_tflops=165.2,
                hw_reports=1, ping_total=4, ping_ok=4, heartbeat_total=6, heartbeat_ok=6, pow_total=1, pow_ok=1,
                pow_timeout=0, pow_error=0, samples_total=2, samples_bad=0, unverified_ok=0, overclaimed_compute=0,
                tflops_max=130.0)  # fmt: skip
    base.update(cols)
    names = ", ".join(["epoch", "device_id", *base])
    marks = ", ".join(["?"] * (len(base) + 2))
    con.execute(f"INSERT INTO device_features ({names}) VALUES ({marks})", [epoch, device, *base.values()])


def hour(h: int) -> str:
    return f"2024-08-14T{h:02d}"


def test_failed_pow_rejects_exact_failures_and_spares_honest(con) -> None:
    feature(con, "honest")
    feature(con, "wrong", hour(3), samples_bad=1, first_bad_sample="c0: [3, 4] = 1, expected 2")
    feature(con, "wrong", samples_bad=1, first_bad_sample="c1: [1, 2] = 5, expected 7")
    feature(con, "too_fast", hour(2), tflops_max=700.0)
    feature(con, "too_fast", tflops_max=900.0)
    feature(con, "overclaimed", overclaimed_compute=2)
    found = FailedPow().detect(Evidence(con, EPOCH))
    assert found.columns == list(EVIDENCE_SCHEMA)
    by_device = {r["device_id"]: r for r in found.iter_rows(named=True)}
    assert set(by_device) == {"wrong", "too_fast", "overclaimed"}
    assert all(r["action"] == "reject" and r["score"] == 1.0 for r in by_device.values())
    assert all(json.loads(r["details"])["proof"] == "exact" for r in by_device.values())
    assert "2 of 4 PoW samples wrong" in by_device["wrong"]["reason"]
    assert "physical ceiling" in by_device["too_fast"]["reason"]


def test_failed_pow_one_overclaimed_compute_time_is_probation_a_second_in_the_day_is_proof(con) -> None:
    """A VM's clock stepped during one challenge makes one compute time longer than the round
    trip; a worker that fabricates its timings does it again."""
    feature(con, "stepped_once", overclaimed_compute=1)
    feature(con, "fabricates", hour(1), overclaimed_compute=1)
    feature(con, "fabricates", overclaimed_compute=1)
    found = {r["device_id"]: r for r in FailedPow().detect(Evidence(con, EPOCH)).iter_rows(named=True)}
    assert set(found) == {"stepped_once", "fabricates"}
    assert found["stepped_once"]["action"] == "probation" and json.loads(found["stepped_once"]["details"])["proof"] == "suspicion"
    assert "once can be a clock stepped" in found["stepped_once"]["reason"]
    assert found["fabricates"]["action"] == "reject" and json.loads(found["fabricates"]["details"])["proof"] == "exact"
    assert found["fabricates"]["reason"].startswith("2 challenge(s) over the last 24 hours report compute_ms longer")


@pytest.mark.parametrize("honest_answering", [20, 2])
def test_failed_pow_a_digest_committed_again_for_another_product_is_proof_once_is_held_stand_ins_are_nothing(
    con, honest_answering: int
) -> None:
    """A result digest names one product: a worker that commits one again for another product never
    computed it (``digests_repeated`` in the features). Twice in the window is proof; once is held
    (a damaged row looks like that once). Where more than a fifth of the hour's answering devices
    repeat digests, the writer's digests are stand-ins for a hash never taken, and nothing follows."""
    feature(con, "damaged_row", digests_repeated=1)
    feature(con, "constant", hour(1), digests_repeated=1)
    feature(con, "constant", digests_repeated=1)
    for k in range(honest_answering):
        feature(con, f"honest{k}")
    found = {r["device_id"]: r for r in FailedPow().detect(Evidence(con, EPOCH)).iter_rows(named=True)}
    if honest_answering == 2:  # 2 of 4 answering devices repeat: stand-ins
        assert found == {}
        return
    assert found["damaged_row"]["action"] == "probation" and json.loads(found["damaged_row"]["details"])["proof"] == "suspicion"
    assert found["constant"]["action"] == "reject" and json.loads(found["constant"]["details"])["proof"] == "exact"
    assert found["constant"]["reason"].startswith("2 answer(s) over the last 24 hours commit a result digest")
    assert json.loads(found["constant"]["details"])["signs"] == ["repeated_digest"]


def test_failed_pow_one_hour_above_the_ceiling_is_possible_timer_jitter(con) -> None:
    """An overclocked card with a millisecond of timer jitter on a ~2 ms product crosses 1.5x once."""
    feature(con, "overclocked", hour(1), tflops_max=170.0)
    feature(con, "overclocked", tflops_max=250.0)
    found = FailedPow().detect(Evidence(con, EPOCH))
    assert found["action"].to_list() == ["review"]
    assert "timer jitter" in found["reason"][0] and json.loads(found["details"][0])["proof"] == "suspicion"


def test_failed_pow_two_noisy_fast_hours_among_many_are_a_lead_a_card_fast_every_hour_is_rejected(con) -> None:
    """Speed noise on an overclocked card crossed 1.53x in 2 hours of 24 (an honest RTX 3060 was
    rejected for it); a card faster than physics, or faked timings, is fast in every hour."""
    for h in range(0, 6):
        feature(con, "overclocked", hour(h), tflops_max=255.0 if h in (1, 4) else 180.0)
        feature(con, "faster_than_physics", hour(h), tflops_max=900.0)
    found = {r["device_id"]: r for r in FailedPow().detect(Evidence(con, EPOCH)).iter_rows(named=True)}
    assert found["faster_than_physics"]["action"] == "reject"
    assert "6 of 6 measured hours" in found["faster_than_physics"]["reason"]
    assert "overclocked" not in found  # its fast hours are not this hour
    feature(con, "overclocked", hour(6), tflops_max=256.0)
    lead = FailedPow().detect(Evidence(con, hour(6))).filter(pl.col("device_id") == "overclocked")
    assert lead["action"].to_list() == ["review"] and "3 of 7 measured hours" in lead["reason"][0]


def test_failed_pow_one_wrong_sample_is_a_possible_memory_fault(con) -> None:
    feature(con, "bitflip", samples_bad=1, first_bad_sample="c1: [1, 2] = 5, expected 7")
    found = FailedPow().detect(Evidence(con, EPOCH))
    assert found["action"].to_list() == ["probation"]
    assert "memory fault" in found["reason"][0]


def test_failed_pow_every_entry_of_one_hours_answers_wrong_is_held_wrong_again_in_another_hour_is_proof(con) -> None:
    """Two networks written by others each had one honest device whose one challenge had every
    sampled entry wrong: a row their authors broke on purpose (one seed written ``-42``), taken for
    a made-up answer and rejected. A record damaged on its way looks like that once; a worker that
    makes its answers up is wrong again in another hour."""
    feature(con, "broken_row", samples_bad=3, samples_total=3, first_bad_sample="c1: [206, 7485] = 761, expected 3304")
    found = FailedPow().detect(Evidence(con, EPOCH))
    assert found["action"].to_list() == ["probation"]
    details = json.loads(found["details"][0])
    assert details["proof"] == "suspicion" and details["signs"] == ["wrong_one_hour"] and details["wrong_hours"] == 1
    assert "3 of 3 PoW samples wrong over the last 48 hours, all in one hour's answers" in found["reason"][0]
    feature(con, "broken_row", hour(2), samples_bad=2, samples_total=3, first_bad_sample="c0: [1, 2] = 5, expected 7")
    again = FailedPow().detect(Evidence(con, EPOCH))
    assert again["action"].to_list() == ["reject"] and json.loads(again["details"][0])["wrong_hours"] == 2
    assert FailedPow(confirm_wrong_hours=1).detect(Evidence(con, hour(2)))["action"].to_list() == ["reject"]


def test_failed_pow_a_made_up_answer_holds_its_device_two_days_and_a_second_a_day_later_is_proof(con) -> None:
    """A worker that makes up one answer in ~20 (a twentieth network written by others) is wrong
    in one or two hours of two days, often more than a day apart: counted over a day, and held
    only in its hour, 20 of 45 such workers were never held at the end. A wrong entry holds its
    device while it is in the two-day window, a second in another hour within it is proof, and
    one older than the window holds nothing."""
    first, later, second = "2024-08-13T02", "2024-08-14T01", "2024-08-14T05"  # 23 h, then 27 h after the first
    feature(con, "cheat", first, samples_bad=1, samples_total=3, first_bad_sample="c0: [3, 4] = 1, expected 2")
    feature(con, "old_fault", "2024-08-12T00", samples_bad=1, samples_total=3, first_bad_sample="c0: [1, 2] = 5, expected 7")
    for epoch in (later, second):
        feature(con, "cheat", epoch)
        feature(con, "old_fault", epoch)
    held = FailedPow().detect(Evidence(con, later))
    assert held["device_id"].to_list() == ["cheat"] and held["action"].to_list() == ["probation"]
    assert "1 of 5 PoW samples wrong over the last 48 hours" in held["reason"][0]
    assert json.loads(held["details"][0])["signs"] == ["wrong_once"]
    con.execute("UPDATE device_features SET samples_bad = 1, first_bad_sample = 'c1: [5, 6] = 9, expected 8' "
                "WHERE device_id = 'cheat' AND epoch = ?", [second])  # fmt: skip
    proof = FailedPow().detect(Evidence(con, second))
    assert proof["device_id"].to_list() == ["cheat"] and proof["action"].to_list() == ["reject"]
    assert json.loads(proof["details"][0])["wrong_hours"] == 2
    assert FailedPow(wrong_window_hours=24).detect(Evidence(con, second))["action"].to_list() == ["probation"]


def test_failed_pow_samples_one_bit_off_are_a_hardware_fault_held_never_a_rejection(con) -> None:
    """An unstable overclock or failing memory flips a bit of a product the card did compute (an
    independently written network's overclocked gamers: ~3% of samples, each off by a power of
    two; rejected and slashed as cheats before this). However many, they hold the card (its work
    is unreliable), they never establish fraud; made-up values beside them still do."""
    for h in (2, 3, 4, EPOCH):
        epoch = hour(h) if isinstance(h, int) else h
        feature(con, "overclocked", epoch, samples_bad=1, samples_flipped=1, samples_total=9,
                first_bad_sample="c1: [917, 2191] = 6640, expected 4592 (one bit off)")  # fmt: skip
        feature(con, "cheat", epoch, samples_bad=1, samples_flipped=0, samples_total=9,
                first_bad_sample="c2: [1, 2] = 5, expected 7")  # fmt: skip
    feature(con, "both", samples_bad=2, samples_flipped=1, samples_total=9, first_bad_sample="c3: [1, 2] = 5, expected 7")
    found = {r["device_id"]: r for r in FailedPow().detect(Evidence(con, EPOCH)).iter_rows(named=True)}
    assert {d: r["action"] for d, r in found.items()} == {"overclocked": "probation", "cheat": "reject", "both": "probation"}
    assert "4 of 36 PoW samples over the last 24 hours one bit off the exact entry" in found["overclocked"]["reason"]
    assert json.loads(found["overclocked"]["details"])["samples_one_bit_off"] == 4
    assert "1 of 9 PoW samples wrong" in found["both"]["reason"]  # its made-up one: once can be a fault


def test_one_bit_off_is_a_power_of_two_apart_or_negated() -> None:
    from pipelines.features import one_bit_off

    value = np.array([6640, -3842, -729, 17, -23, 4, 2**62, -(2**63)], dtype=np.int64)
    expected = np.array([4592, -3874, -2777, 23, 23, 0, 0, 5], dtype=np.int64)
    assert one_bit_off(value, expected).tolist() == [True, True, True, False, True, True, False, False]


def test_failed_pow_suspects_timeouts_only_while_the_device_is_reachable(con) -> None:
    for h in range(0, 6):
        # answers pings and heartbeats but lets its challenges time out: suspicious
        feature(con, "silent", hour(h), pow_total=2, pow_ok=0, pow_timeout=2, samples_total=0,
                pow_reachable=2, pow_timeout_reachable=2)  # fmt: skip
        # switched off: every challenge times out, but pings and heartbeats show it down
        feature(con, "off", hour(h), pow_total=2, pow_ok=0, pow_timeout=2, samples_total=0, ping_ok=0,
                heartbeat_ok=0, heartbeat_total=0, pow_reachable=0, pow_timeout_reachable=0)  # fmt: skip
        # an honest worker losing a challenge now and then
        feature(con, "flaky", hour(h), pow_total=2, pow_timeout=1 if h == 5 else 0,
                pow_reachable=2, pow_timeout_reachable=1 if h == 5 else 0)  # fmt: skip
    found = FailedPow().detect(Evidence(con, EPOCH))
    assert found["device_id"].to_list() == ["silent"]
    assert found["action"][0] == "probation" and "12 of 12 challenges timed out while" in found["reason"][0]
    assert json.loads(found["details"][0])["proof"] == "suspicion"


def test_failed_pow_a_worker_alive_on_every_probe_that_answers_its_challenges_with_errors_is_held(con) -> None:
    """A relay answers pings and heartbeats for a machine switched off and each challenge with a
    quick ``error`` (a network written by others: 21 devices, 8-16 hours a day; a fifth's were
    rented half an hour a day). A rented card may answer with errors while its renter holds it,
    and a job shows in ``jobs`` only once it has ended (a sixth network's rented honest hosts
    did, between answers slowed by the renter): errors after the last known rental of a card
    renters keep busy a quarter of the day or more, or of a card in use now (answering at under
    80% of its own best), are not judged; a short job earlier in the day explains nothing after
    it. A VRAM challenge's error is memory held."""
    for h in range(0, 6):
        for d in ("relay", "rented", "short", "briefly_rented", "rented_again"):
            feature(con, d, hour(h), pow_total=2, pow_ok=1, pow_error=1, pow_reachable=2)
            kind = "vram" if d == "short" else "matmul"
            challenge_id = f"{d}-{h}"
            con.execute(
                "INSERT INTO challenge_context (epoch, challenge_id, device_id, kind, status, batch_siblings, reachable) "
                "VALUES (?, ?, ?, ?, 'error', 0, true)",
                [hour(h), challenge_id, d, kind],
            )
            con.execute(
                "INSERT INTO pow (challenge_id, device_id, kind, issued_at, status, _hour, _file, _row) "
                "VALUES (?, ?, ?, CAST(? AS TIMESTAMP), 'error', ?, 'pow.csv', 1)",
                [challenge_id, d, kind, f"2024-08-14 {h:02d}:30:00", hour(h)],
            )
    con.execute(  # a card renters kept busy through the night; the job holding it since is still running
        "INSERT INTO jobs VALUES ('night-job', 'renter', 'rented', TIMESTAMP '2024-08-13 17:00:00', "
        "TIMESTAMP '2024-08-13 17:00:00', TIMESTAMP '2024-08-14 00:20:00', 'completed', 4, ?, 'jobs.csv', 1)",
        [hour(0)],
    )
    for d in ("briefly_rented", "rented_again"):
        con.execute(  # twenty minutes of rental early in the day explain no error after them...
            "INSERT INTO jobs VALUES (?, 'renter', ?, TIMESTAMP '2024-08-14 00:00:00', "
            "TIMESTAMP '2024-08-14 00:00:00', TIMESTAMP '2024-08-14 00:20:00', 'completed', 4, ?, 'jobs.csv', 1)",
            [f"short-{d}", d, hour(0)],
        )
    for h, speed in ((0, 130.0), (2, 128.0), (4, 55.0)):  # ...but a card answering at 42% of its best is in use again
        con.execute(
            "INSERT INTO challenge_context (epoch, challenge_id, device_id, kind, status, tflops, batch_siblings, reachable) "
            "VALUES (?, ?, 'rented_again', 'matmul', 'ok', ?, 0, true)",
            [hour(h), f"rented_again-ok-{h}", speed],
        )
    found = FailedPow().detect(Evidence(con, EPOCH))
    assert found["device_id"].to_list() == ["briefly_rented", "relay"] and set(found["action"]) == {"probation"}
    assert "6 of 12 challenges were answered with an error (matmul, no known rental explains them)" in found["reason"][1]
    assert json.loads(found["details"][1])["errors_while_reachable"] == 6


def test_failed_pow_a_device_held_on_errors_is_cleared_once_the_rental_that_held_its_card_is_known(con) -> None:
    """A rented card answers with errors while its renter holds it, and the job shows in ``jobs``
    only once it has ended (a sixth network written by others: two honest hosts stayed held six
    hours after their jobs showed). Once a rental that ran in the window is known, a suspicion
    that rested on errors alone ends (``clear``); a relay nobody rented stays held."""
    for h in range(0, 6):
        for d in ("relay", "rented"):
            feature(con, d, hour(h), pow_total=2, pow_ok=1, pow_error=1, pow_reachable=2)
            con.execute(
                "INSERT INTO challenge_context (epoch, challenge_id, device_id, kind, status, batch_siblings, reachable) "
                "VALUES (?, ?, ?, 'matmul', 'error', 0, true)",
                [hour(h), f"{d}-{h}", d],
            )
            con.execute(
                "INSERT INTO pow (challenge_id, device_id, kind, issued_at, status, _hour, _file, _row) "
                "VALUES (?, ?, 'matmul', CAST(? AS TIMESTAMP), 'error', ?, 'pow.csv', 1)",
                [f"{d}-{h}", d, f"2024-08-14 {h:02d}:30:00", hour(h)],
            )
    held = FailedPow().detect(Evidence(con, hour(4)))
    assert sorted(held["device_id"]) == ["relay", "rented"] and set(held["action"]) == {"probation"}
    assert json.loads(held["details"][0])["signs"] == ["silent"]
    con.register("held", held.to_arrow())
    con.execute(
        "INSERT INTO evidence SELECT ?, device_id, account_id, 'failed_pow', 'failed_pow', score, action, reason, details FROM held",
        [hour(4)],
    )
    con.execute(  # the job that held the card all morning ended and was delivered this hour
        "INSERT INTO jobs VALUES ('long-job', 'renter', 'rented', TIMESTAMP '2024-08-14 00:05:00', "
        "TIMESTAMP '2024-08-14 00:05:00', TIMESTAMP '2024-08-14 05:10:00', 'completed', 4, ?, 'jobs.csv', 1)",
        [EPOCH],
    )
    found = {r["device_id"]: r for r in FailedPow().detect(Evidence(con, EPOCH)).iter_rows(named=True)}
    assert found["relay"]["action"] == "probation"
    assert found["rented"]["action"] == "clear" and found["rented"]["score"] == 0.0
    assert "held since 2024-08-14T04 rested on matmul errors alone" in found["rented"]["reason"]
    assert "(ended 2024-08-14T05:10)" in found["rented"]["reason"]


def test_failed_pow_a_rental_that_ended_before_the_errors_does_not_end_the_hold(con) -> None:
    """A fifth network's relays were rented half an hour in the afternoon and answered every
    challenge with an error all night: the afternoon's job, known since, explains nothing of
    the night, and the hold stays until it expires."""
    for h in range(0, 3):
        feature(con, "relay", hour(h), pow_total=2, pow_ok=0, pow_error=2, pow_reachable=2)
        for k in range(2):
            con.execute(
                "INSERT INTO challenge_context (epoch, challenge_id, device_id, kind, status, batch_siblings, reachable) "
                "VALUES (?, ?, 'relay', 'matmul', 'error', 0, true)",
                [hour(h), f"relay-{h}-{k}"],
            )
            con.execute(
                "INSERT INTO pow (challenge_id, device_id, kind, issued_at, status, _hour, _file, _row) "
                "VALUES (?, 'relay', 'matmul', CAST(? AS TIMESTAMP), 'error', ?, 'pow.csv', 1)",
                [f"relay-{h}-{k}", f"2024-08-14 {h:02d}:{10 + 30 * k}:00", hour(h)],
            )
    con.execute(  # half an hour of rental the afternoon before
        "INSERT INTO jobs VALUES ('afternoon', 'renter', 'relay', TIMESTAMP '2024-08-13 13:00:00', "
        "TIMESTAMP '2024-08-13 13:00:00', TIMESTAMP '2024-08-13 13:30:00', 'completed', 4, ?, 'jobs.csv', 1)",
        ["2024-08-13T13"],
    )
    held = FailedPow().detect(Evidence(con, hour(2)))
    assert held["device_id"].to_list() == ["relay"] and held["action"][0] == "probation"
    con.register("held", held.to_arrow())
    con.execute(
        "INSERT INTO evidence SELECT ?, device_id, account_id, 'failed_pow', 'failed_pow', score, action, reason, details FROM held",
        [hour(2)],
    )
    feature(con, "relay", hour(9))  # the night's errors are out of the 6-hour window now
    assert FailedPow().detect(Evidence(con, hour(9))).is_empty()


def test_failed_pow_refuses_a_rented_share_or_busy_pace_that_is_not_a_share() -> None:
    for name, bad in (("rented_share", -0.1), ("rented_share", 1.5), ("busy_pace", 0.0), ("busy_pace", 1.2)):
        with pytest.raises(ValueError, match=name):
            FailedPow(**{name: bad})


def test_failed_pow_refuses_a_refusal_window_outside_its_day() -> None:
    """The day's timeout count includes the last ``timeout_window_hours``: a window longer than
    the day (or empty) is a configuration error, not a silent change of what is counted."""
    for bad in (0, 25):
        with pytest.raises(ValueError, match="timeout_window_hours"):
            FailedPow(timeout_window_hours=bad)
    assert FailedPow(timeout_window_hours=24).timeout_window_hours == 24


def test_failed_pow_few_reachable_timeouts_are_within_the_honest_rate(con) -> None:
    for h in range(0, 6):  # 3 timeouts in 60 reachable challenges: p ~ 0.12 at a 2% honest rate
        feature(con, "busy", hour(h), pow_total=10, pow_ok=10 - (h % 2), pow_timeout=h % 2,
                pow_reachable=10, pow_timeout_reachable=h % 2)  # fmt: skip
    assert FailedPow().detect(Evidence(con, EPOCH)).is_empty()


def test_failed_pow_a_machine_off_a_few_hours_a_day_at_random_behind_a_live_address_is_held_over_the_day(con) -> None:
    """A box answers the pings of an uptime spoofer whose machine is on 50-80% of the hours, at
    random (seed 22, network 12: 7 of its 67 never held, paid 0.66% of the network's rewards).
    Its refusals are a fifth of its challenges but few per six hours (at most 4 of 12: p ~ 8e-5),
    so only the day's count (12 of 48) is beyond an honest worker. One that loses a challenge
    every eight hours is within the honest rate over the day as well."""
    end = "2024-08-14T23"
    for h in range(24):
        dark = 2 if h % 4 == 1 else 0
        feature(con, "mostly_on", hour(h), pow_total=2, pow_ok=2 - dark, pow_timeout=dark, samples_total=2 - dark,
                pow_reachable=2, pow_timeout_reachable=dark)  # fmt: skip
        lost = 1 if h % 8 == 3 else 0
        feature(con, "honest", hour(h), pow_total=2, pow_ok=2 - lost, pow_timeout=lost,
                pow_reachable=2, pow_timeout_reachable=lost)  # fmt: skip
    found = FailedPow().detect(Evidence(con, end))
    assert found["device_id"].to_list() == ["mostly_on"] and found["action"][0] == "probation"
    assert (
        "12 of 48 challenges timed out while pings or heartbeats showed the device alive, scattered over the last 24 hours"
        in (found["reason"][0])
    )
    details = json.loads(found["details"][0])
    assert details["proof"] == "suspicion" and details["signs"] == ["silent_day"]
    assert FailedPow(window_hours=6).detect(Evidence(con, end)).is_empty()  # six hours alone cannot tell


def test_failed_pow_suspects_a_worker_that_never_proves_its_work(con) -> None:
    for h in range(2, 6):
        feature(con, "lazy", hour(h), unverified_ok=1, samples_total=0)
    feature(con, "unsampled_once", unverified_ok=1, samples_total=0)  # the backend skipped sampling once
    found = FailedPow().detect(Evidence(con, EPOCH))
    assert found["device_id"].to_list() == ["lazy"] and found["action"][0] == "probation"
    assert "4 challenge(s) answered ok without samples" in found["reason"][0]


def test_spoofed_uptime_needs_both_probes_to_disagree_with_heartbeats(con) -> None:
    for h in range(2, 6):
        feature(con, "spoofer", hour(h), ping_ok=0, pow_ok=0, pow_timeout=1)
        feature(con, "nat", hour(h), ping_ok=0)  # pings blocked, but answers its PoW
        feature(con, "down", hour(h), heartbeat_ok=0, heartbeat_total=0, ping_ok=0, pow_total=0, pow_ok=0)
    found = SpoofedUptime().detect(Evidence(con, EPOCH))
    assert found["device_id"].to_list() == ["spoofer"]
    # a hung GPU behind NAT looks the same for hours: held, not slashed
    assert found["action"][0] == "probation" and "heartbeats said online" in found["reason"][0]


def test_spoofed_uptime_a_whole_day_of_it_establishes(con) -> None:
    for h in range(24):
        feature(con, "spoofer", f"2024-08-{14 + h // 24}T{h % 24:02d}", ping_ok=0, pow_ok=0, pow_timeout=1)
    found = SpoofedUptime().detect(Evidence(con, "2024-08-14T23"))
    assert found["action"].to_list() == ["reject"]


def test_spoofed_uptime_leaves_a_device_whose_pings_are_dropped_on_the_way_to_failed_pow(con) -> None:
    """Carrier NAT drops every ping of a device that answers its challenges: a failed ping says
    nothing about it, and its timeouts while it heartbeats are failed_pow's to judge (a twentieth
    network written by others: 15 of its 71 such honest devices had three or more hours with a
    timed-out challenge, and were held). A device whose pings answer while it is up, and fail
    with its challenges while only its heartbeats go on, is judged as before."""
    for h in range(12):
        lost = h in (2, 5, 8, 11)
        feature(con, "carrier_nat", hour(h), ping_ok=0, pow_ok=0 if lost else 1, pow_timeout=1 if lost else 0)
        feature(con, "relayed", hour(h), ping_ok=0 if lost else 4, pow_ok=0 if lost else 1, pow_timeout=1 if lost else 0)
    found = SpoofedUptime().detect(Evidence(con, hour(11)))
    assert found["device_id"].to_list() == ["relayed"] and found["action"][0] == "probation"
    assert "in 4 of the last 24 hours heartbeats said online" in found["reason"][0]


def test_spoofed_uptime_two_chance_hours_behind_nat_are_not_enough(con) -> None:
    # behind NAT every ping fails, so one timed-out challenge makes a suspicious hour by chance
    for h in (0, 5):
        feature(con, "nat_glitch", hour(h), ping_ok=0, pow_ok=0, pow_timeout=1)
    assert SpoofedUptime().detect(Evidence(con, EPOCH)).is_empty()
    feature(con, "nat_glitch", hour(3), ping_ok=0, pow_ok=0, pow_timeout=1)
    assert SpoofedUptime().detect(Evidence(con, EPOCH))["device_id"].to_list() == ["nat_glitch"]


def test_spoofed_uptime_alive_to_every_probe_but_no_challenge_answered_night_after_night_is_held_once_or_off_is_not(con) -> None:
    """A box holding the device's address answers pings and heartbeats all night while the GPU is
    off, and only the challenges tell (a ninth network written by others: 2 of 20 held at its last
    hour before). An honest worker that hangs once is one stretch; a gamer's evening loses a
    challenge or two; a machine switched off every night stops answering pings and heartbeats too."""
    dark = dict(pow_ok=0, pow_timeout=1, pow_reachable=1, pow_timeout_reachable=1)
    answered = dict(pow_reachable=1, pow_timeout_reachable=0)
    off = dict(heartbeat_ok=0, heartbeat_total=0, ping_ok=0, pow_ok=0, pow_timeout=1, pow_reachable=0, pow_timeout_reachable=0)
    for h in range(48):
        epoch, of_day = f"2024-08-{13 + h // 24}T{h % 24:02d}", h % 24
        feature(con, "proxy", epoch, **(dark if 1 <= of_day <= 7 else answered))
        feature(con, "hung_once", epoch, **(dark if 34 <= h <= 38 else answered))
        feature(con, "gamer", epoch, **(dark if of_day in (20, 21) else answered))
        feature(con, "switched_off", epoch, **(off if 1 <= of_day <= 7 else {}))
    found = SpoofedUptime().detect(Evidence(con, "2024-08-14T23"))
    assert found["device_id"].to_list() == ["proxy"] and found["action"][0] == "probation"
    assert (
        "2 separate stretches of 3 or more hours in the last 48 (7 h from 2024-08-13T01, 7 h from 2024-08-14T01)"
        in found["reason"][0]
    )
    assert json.loads(found["details"][0])["dark_stretches"] == 2


def answer(con: duckdb.DuckDBPyConnection, device: str, epoch: str, minute: int, n: int, compute_ms: float,
           trip_s: float, batch: str | None = None) -> None:  # fmt: skip
    """A matmul challenge of ``epoch`` issued at ``minute`` past the hour, answered ``trip_s`` later."""
    issued = f"{epoch.replace('T', ' ')}:{minute:02d}:00"
    con.execute(
        "INSERT INTO pow (challenge_id, batch_id, device_id, kind, issued_at, responded_at, status, n, compute_ms, "
        "_hour, _file, _row) VALUES (?, ?, ?, 'matmul', CAST(? AS TIMESTAMP), CAST(? AS TIMESTAMP) + to_milliseconds(?), "
        "'ok', "
        "?, ?, ?, 'pow.csv', 1)",
        [f"{device}-{epoch}-{minute}", batch, device, issued, issued, int(trip_s * 1000), n, compute_ms, epoch],
    )


def test_spoofed_uptime_lone_answers_long_after_their_computation_suspect_a_machine_woken_by_the_challenge(con) -> None:
    """A careful relay answers pings and heartbeats and wakes the machine for each challenge: the
    answer comes 18-40 s after the computation it reports. A slow CPU takes longer for larger
    products (its own multiple of n^2), case-mates in one batch share a CPU, one stall is one hour."""
    cpu_s = {"sleeper": 0.5, "slow_cpu": 6.0, "stalled": 0.5, "crowded": 0.5}  # generation at n = 8000
    for h in range(6):
        for d, per in cpu_s.items():
            feature(con, d, hour(h))
            for m, n in enumerate((8000, 12000, 16000)):
                late = 25.0 if m == 0 and h in {"sleeper": (1, 3, 5), "crowded": (1, 3, 5), "stalled": (3,)}.get(d, ()) else 0.0
                batch = f"b{h}" if d == "crowded" and m == 0 else None
                answer(con, d, hour(h), 10 + 15 * m, n, 200.0, 0.2 + per * (n / 8000) ** 2 + late, batch=batch)
    found = SpoofedUptime().detect(Evidence(con, EPOCH))
    assert found["device_id"].to_list() == ["sleeper"] and found["action"][0] == "probation"
    assert "in 3 of the last 24 hours lone challenges were answered up to 25 s after the computation" in found["reason"][0]
    details = json.loads(found["details"][0])
    assert details["proof"] == "suspicion" and details["late_answers"] == 3 and details["lone_answers"] == 18


def test_spoofed_uptime_hours_in_which_the_challenge_service_failed_are_not_suspicious(con) -> None:
    """Behind NAT every ping fails and heartbeats go on; when the challenge service is down, every
    challenge times out and the features stage records the hour in ``challenge_outages``. Three
    such hours are the backend's outage, not spoofing."""
    for h in range(2, 6):
        feature(con, "nat", hour(h), ping_ok=0, pow_ok=0, pow_timeout=1, pow_reachable=0, pow_timeout_reachable=0)
        con.execute("INSERT INTO challenge_outages VALUES (?, 40, 40, 0, 100)", [hour(h)])
    assert SpoofedUptime().detect(Evidence(con, EPOCH)).is_empty()
    con.execute("DELETE FROM challenge_outages")  # the same hours with the service up: suspicious as before
    assert SpoofedUptime().detect(Evidence(con, EPOCH))["device_id"].to_list() == ["nat"]


def rental(con, device: str, h: int, status: str, minutes: int) -> None:
    start = f"2024-08-14 {h:02d}:10:00"
    con.execute(
        "INSERT INTO jobs VALUES (?, 'renter', ?, CAST(? AS TIMESTAMP), CAST(? AS TIMESTAMP), "
        "CAST(? AS TIMESTAMP) + to_minutes(?), ?, 0, ?, 'jobs.csv', 1)",
        [f"job-{device}-{h}", device, start, start, start, minutes, status, hour(h)],
    )


def test_double_listed_a_device_that_answers_everything_but_refuses_every_rental_is_held(con) -> None:
    """A network written by others relayed eight "cards" to one rented H100: every challenge
    answered right, every rental failed within five minutes. Honest rentals fail too: the renter's
    code crashes, and a device that drops offline loses its job (downtime, judged elsewhere)."""
    for h in (1, 2, 3, 4, 5):
        feature(con, "relay", hour(h))
        feature(con, "flaky", hour(h), pow_ok=0, pow_timeout=1, heartbeat_ok=2)  # down when its rentals died
        feature(con, "busy", hour(h))
    for h in (1, 3, 5):
        rental(con, "relay", h, "failed", 3)
        rental(con, "flaky", h, "cancelled_by_worker", 2)
    for h, (status, minutes) in zip((1, 2, 3, 4, 5), [("failed", 4), ("completed", 90), ("failed", 2), ("failed", 95),
                                                        ("completed", 60)]):  # fmt: skip
        rental(con, "busy", h, status, minutes)  # two quick failures in five, one long job that failed late
    found = DoubleListed().detect(Evidence(con, EPOCH))
    assert found["device_id"].to_list() == ["relay"] and found["action"][0] == "probation"
    assert "failed or cancelled 3 of its 3 rentals within 10 minutes" in found["reason"][0]
    assert json.loads(found["details"][0])["proof"] == "suspicion"


def _hardware(
    con,
    device: str,
    host: str,
    uuid: str | None,
    pci: str | None,
    serial: str | None = None,
    h: str = EPOCH,
    ip: str | None = None,
    alive: tuple[str, str] | None = ("05:00", "05:59"),
    at: str = "05:10",
    account: str = "acc",
    model: str | None = None,
    virtualization: str | None = None,
) -> None:
    """One hardware report ``at`` and, with ``alive``, heartbeats at both ends of that span."""
    con.execute(
        "INSERT INTO hardware (ts, device_id, account_id, host_fingerprint, ip, gpu_uuid, gpu_serial, pci_bus_id, gpu_model, "
        "virtualization_mode, _hour, _file, _row) VALUES (CAST(? AS TIMESTAMP), ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'hardware.csv', 1)",
        [f"2024-08-14 {at}:00", device, account, host, ip, uuid, serial, pci, model, virtualization, h],
    )
    for at in alive or ():
        heartbeat(con, device, f"2024-08-14 {at}:00")


def heartbeat(con, device: str, ts: str) -> None:
    con.execute(
        "INSERT INTO uptime VALUES (CAST(? AS TIMESTAMP), ?, 'heartbeat', true, 20.0, strftime(CAST(? AS TIMESTAMP), '%Y-%m-%dT%H'), 'u.csv', 1)",
        [ts, device, ts],
    )


def test_duplicate_hardware_matches_uuid_serial_and_bus_on_the_same_host_only(con) -> None:
    _hardware(con, "slice1", "hostA", "GPU-same", "00000000:01:00.0")
    _hardware(con, "slice2", "hostA", "GPU-same", "00000000:01:00.0")
    _hardware(con, "dc1", "hostB", "GPU-b1", "00000000:01:00.0", serial="1321")
    _hardware(con, "dc2", "hostC", "GPU-c1", "00000000:01:00.0", serial="1322")  # same bus id, other host
    _hardware(con, "mac1", "hostD", None, None)
    _hardware(con, "mac2", "hostE", None, None)
    _hardware(con, "cloned", "hostF", "GPU-f", "00000000:02:00.0", serial="1321")  # dc1's serial
    # two cards of one machine whose workers report one (virtual) slot: their UUIDs name two cards (a tenth
    # network written by others had 120 honest devices so rejected); without UUIDs the slot is what is left
    _hardware(con, "home-3090", "hostG", "GPU-g1", "00000000:01:00.0")
    _hardware(con, "home-3060", "hostG", "GPU-g2", "00000000:01:00.0")
    _hardware(con, "anon1", "hostH", None, "00000000:03:00.0")
    _hardware(con, "anon2", "hostH", None, "00000000:03:00.0")
    found = DuplicateHardware().detect(Evidence(con, EPOCH))
    by_device = {r["device_id"]: r for r in found.iter_rows(named=True)}
    assert set(by_device) == {"slice1", "slice2", "dc1", "cloned", "anon1", "anon2"}
    assert by_device["slice1"]["action"] == "probation"
    assert "gpu_uuid" in by_device["slice1"]["reason"] and "pci_bus_id" not in by_device["slice1"]["reason"]
    assert "pci_bus_id on host" in by_device["anon1"]["reason"]


def test_duplicate_hardware_does_not_compare_the_instances_of_a_card_its_owner_partitioned_by_its_serial(con) -> None:
    """Two MIG instances of one A100 80GB report the card's serial and bus id and a UUID each, 40
    GB each (an independently written network's honest MIG cards were rejected and slashed as
    duplicate hardware). Two slices claiming the whole card each with the same serial are a copy."""
    for k in range(2):
        for name, vram in (("instance", 40_192), ("slice", 81_920)):
            host = f"box-{name}"
            _hardware(con, f"{name}{k}", host, f"MIG-{name}-{k}", "00000000:2A:00.0", serial=f"SN-{name}")
            feature(con, f"{name}{k}", gpu_model="NVIDIA A100-SXM4-80GB", catalogue_model="a100_80gb_sxm", mig_mode=True,
                    host_fingerprint=host, pci_bus_id="00000000:2A:00.0", gpu_uuid=f"MIG-{name}-{k}", vram_total_mb=vram)  # fmt: skip
    found = DuplicateHardware().detect(Evidence(con, EPOCH))
    assert sorted(found["device_id"]) == ["slice0", "slice1"]


def test_the_gpus_of_one_multi_gpu_board_share_its_serial_without_being_one_identity(con) -> None:
    """NVML's serial is the board's: the two GPUs of a Tesla K80 report one serial, each with its
    own UUID and bus id (a twentieth network written by others: 20 honest K80 GPUs rejected as
    copies of each other). More devices on a serial than the board carries, one slot reported
    twice, a UUID twice, or a single-GPU board's serial on two devices are still one identity."""
    boards = {
        "k80": [("a", "GPU-k1", "01"), ("b", "GPU-k2", "02")],  # a K80's two GPUs
        "a16": [(x, f"GPU-a16-{x}", f"0{i + 1}") for i, x in enumerate("abcd")],  # an A16's four
        "k80-three": [("a", "GPU-t1", "01"), ("b", "GPU-t2", "02"), ("c", "GPU-t3", "03")],  # one more than a K80 has
        "k80-slot": [("a", "GPU-s1", "01"), ("b", "GPU-s2", "01")],  # one slot twice
        "k80-uuid": [("a", "GPU-u1", "01"), ("b", "GPU-u1", "02")],  # one UUID twice
        "a6000": [("a", "GPU-w1", "01"), ("b", "GPU-w2", "02")],  # a single-GPU board
    }
    models = {"a16": "NVIDIA A16", "a6000": "NVIDIA RTX A6000"}
    for board, gpus in boards.items():
        for suffix, uuid, bus in gpus:
            _hardware(con, f"{board}-{suffix}", f"host-{board}", uuid, f"00000000:{bus}:00.0", serial=f"SN-{board}",
                      model=models.get(board, "Tesla K80"))  # fmt: skip
    found = DuplicateHardware().detect(Evidence(con, EPOCH))
    flagged = {d.rsplit("-", 1)[0] for d in found["device_id"]}
    assert flagged == {"k80-three", "k80-slot", "k80-uuid", "a6000"}


def test_one_owners_serial_on_two_cards_is_held_until_the_physics_names_the_card_one_uuid_twice_is_rejected(con) -> None:
    """A twentieth network written by others: an operator added slots that copy its real cards'
    serial and bus id, each with a UUID of its own, and fabricate answers; the real cards were
    rejected with their copies once the serial was shared for two hours, before the copies'
    wrong answers showed. One serial beside two UUIDs says one device carries a copied serial,
    not which one: both are held, and when the physics disproved every other holder and not
    this one, this one is the card (``clear``), on one owner's machine as on several owners', and
    on one owner's the others carry its copies (rejected once established).
    One UUID on two devices of one owner is one card claimed twice, and so are vGPU guests on one
    serial (in a guest NVML reports the physical board's): rejected once established."""
    for device, uuid, serial in (("real", "GPU-r", "SN-1"), ("phantom", "GPU-p", "SN-1"), ("twin-a", "GPU-ta", "SN-2"),
                                 ("twin-b", "GPU-tb", "SN-2"), ("copy-a", "GPU-c", None), ("copy-b", "GPU-c", None),
                                 ("guest-a", "GPU-ga", "SN-3"), ("guest-b", "GPU-gb", "SN-3")):  # fmt: skip
        _hardware(con, device, "host-op", uuid, "00000000:18:00.0", serial=serial, ip="1.1.1.1", account="op",
                  virtualization="VGPU" if device.startswith("guest") else "NONE")  # fmt: skip
        feature(con, device, account_id="op", host_fingerprint="host-op", ip="1.1.1.1", gpu_uuid=uuid)
        con.execute(
            "INSERT INTO evidence VALUES (?, ?, 'op', 'duplicate_hardware', 'duplicate_hardware', 0.8, 'probation', 'x', '{}')",
            [hour(4), device],
        )
    found = {r["device_id"]: r for r in DuplicateHardware().detect(Evidence(con, EPOCH)).iter_rows(named=True)}
    assert {d: r["action"] for d, r in found.items()} == {
        "real": "probation", "phantom": "probation", "twin-a": "probation", "twin-b": "probation",
        "copy-a": "reject", "copy-b": "reject", "guest-a": "reject", "guest-b": "reject"}  # fmt: skip
    assert "one of them carries a copied serial" in found["real"]["reason"]
    assert json.loads(found["real"]["details"])["proof"] == "suspicion"
    con.execute(
        "INSERT INTO evidence VALUES (?, 'phantom', 'op', 'failed_pow', 'failed_pow', 1.0, 'reject', 'wrong samples', '{}')",
        [hour(3)],
    )
    found = {r["device_id"]: r for r in DuplicateHardware().detect(Evidence(con, EPOCH)).iter_rows(named=True)}
    assert found["real"]["action"] == "clear" and found["phantom"]["action"] == "reject"
    assert "the physics names another holder the card: this one carries its copy" in found["phantom"]["reason"]
    assert "other device(s) of the same owner" in found["real"]["reason"]
    assert "every other holder (phantom) failed the card's work" in found["real"]["reason"]


def test_instances_named_after_profiles_within_the_cards_seven_compute_slices_are_one_card_more_are_not(con) -> None:
    """A seventeenth network written by others split honest A100s into 1g.10gb + 3g.40gb +
    3g.40gb: 90 GB of instances on an 80 GB card, more than its memory, and 12 of its instances
    were rejected as one identity on three devices. Instances named after their profiles, each
    holding what its profile holds, whose compute slices add up to at most seven, are one card;
    three 3g.40gb instances of one card (nine slices) are not."""
    for name, profiles in (("split", ("1g.10gb", "3g.40gb", "3g.40gb")), ("over", ("3g.40gb", "3g.40gb", "3g.40gb"))):
        for k, profile in enumerate(profiles):
            device, host, vram = f"{name}{k}", f"box-{name}", 9_728 if profile == "1g.10gb" else 40_192
            _hardware(con, device, host, f"MIG-{name}-{k}", "00000000:2A:00.0", serial=f"SN-{name}")
            feature(con, device, gpu_model=f"NVIDIA A100-SXM4-80GB MIG {profile}", catalogue_model=None, mig_mode=True,
                    host_fingerprint=host, pci_bus_id="00000000:2A:00.0", gpu_uuid=f"MIG-{name}-{k}", vram_total_mb=vram)  # fmt: skip
    found = DuplicateHardware().detect(Evidence(con, EPOCH))
    assert sorted(found["device_id"]) == ["over0", "over1", "over2"]


def test_instances_reporting_their_cards_uuid_are_one_card_and_a_copy_of_it_elsewhere_is_still_shared(con) -> None:
    """A worker may report each MIG instance with its card's UUID, serial and bus id (an eighteenth
    network written by others: honest A100s split into two 3g.40gb instances so, 48 devices
    rejected and 34 slashed as one identity on two devices). Instances that all report one UUID
    are one card; one of them stands for it, so another owner's machine reporting that UUID still
    shares it with the card."""
    for k in range(2):
        _hardware(con, f"instance{k}", "box", "GPU-card", "00000000:2A:00.0", serial="SN-card", ip="4.4.4.4")
        feature(con, f"instance{k}", gpu_model="NVIDIA A100-SXM4-80GB MIG 3g.40gb", catalogue_model=None, mig_mode=True,
                host_fingerprint="box", pci_bus_id="00000000:2A:00.0", gpu_uuid="GPU-card", vram_total_mb=40_192)  # fmt: skip
    assert DuplicateHardware().detect(Evidence(con, EPOCH)).is_empty()
    _hardware(con, "copy", "elsewhere", "GPU-card", "00000000:01:00.0", ip="9.9.9.9", account="other")
    feature(con, "copy", host_fingerprint="elsewhere", gpu_uuid="GPU-card", account_id="other")
    found = DuplicateHardware().detect(Evidence(con, EPOCH))
    assert sorted(found["device_id"]) == ["copy", "instance0"] and set(found["action"]) == {"probation"}


def test_duplicate_hardware_ignores_an_identity_reported_from_more_addresses_than_one_machine_has(con) -> None:
    """A card is in one machine: a serial that devices report from six addresses at once is a
    writer's placeholder (or made up), not one card, and proves nothing; the same serial from
    at most ``max_ips`` addresses (an address that changed within the hour) still does."""
    for k in range(6):
        _hardware(con, f"home{k}", f"host{k}", f"GPU-h{k}", "00000000:01:00.0", serial="SN-UNSET", ip=f"5.5.{k}.1")
    for k in range(4):
        _hardware(con, f"moved{k}", "hostM", f"GPU-m{k}", f"00000000:0{k + 1}:00.0", serial="1329", ip=f"6.6.6.{k}")
    found = DuplicateHardware().detect(Evidence(con, EPOCH))
    assert sorted(found["device_id"]) == [f"moved{k}" for k in range(4)]
    assert DuplicateHardware(max_ips=3).detect(Evidence(con, EPOCH)).is_empty()


def test_two_registrations_of_one_card_one_after_the_other_are_a_reinstall_not_a_shared_identity(con) -> None:
    """A reinstalled worker registers its card under a new device id: in the hour of the switch
    both ids report its UUID and bus id, one after the other. Only registrations alive at the same
    time (``detectors.concurrent``) share an identity; a switch overlapping by a few minutes is
    still a switch, a second registration alive beside the first for half an hour is not."""
    from detectors import VirtualizedGpu

    for device, alive in (("old", ("04:05", "05:28")), ("new", ("05:31", "05:59")), ("quick-old", ("04:05", "05:35")),
                          ("quick-new", ("05:30", "05:59")), ("first", ("04:05", "05:59")), ("beside", ("05:25", "05:59"))):  # fmt: skip
        host = {"old": "h1", "new": "h1", "quick-old": "h2", "quick-new": "h2"}.get(device, "h3")
        at = max(alive[0], "05:00")  # its report this hour
        _hardware(con, device, host, f"GPU-{host}", "00000000:01:00.0", ip=f"5.5.5.{host[-1]}", alive=alive, at=at)
        feature(con, device, host_fingerprint=host, ip=f"5.5.5.{host[-1]}", gpu_uuid=f"GPU-{host}", pci_bus_id="00000000:01:00.0")
    assert sorted(DuplicateHardware().detect(Evidence(con, EPOCH))["device_id"]) == ["beside", "first"]
    assert sorted(VirtualizedGpu().detect(Evidence(con, EPOCH))["device_id"]) == ["beside", "first"]


def test_the_old_registration_of_a_reinstalled_worker_answering_pings_is_the_box_not_the_worker(con) -> None:
    """The backend pings an address; after a reinstall on the same box the machine there keeps
    answering the old id's pings (a sixth network written by others: 14 reinstalled devices
    rejected as one identity on two devices). Only the worker's own signs (reports, heartbeats,
    answered challenges) say a registration is alive."""
    from detectors import VirtualizedGpu

    for device, alive in (("old", ("04:05", "05:28")), ("new", ("05:31", "05:59"))):
        _hardware(con, device, "h1", "GPU-h1", "00000000:01:00.0", ip="5.5.5.1", alive=alive, at=max(alive[0], "05:00"))
        feature(con, device, host_fingerprint="h1", ip="5.5.5.1", gpu_uuid="GPU-h1", pci_bus_id="00000000:01:00.0")
    for minute in (35, 45, 55):  # the box answers pings sent to the old id
        con.execute(
            "INSERT INTO uptime VALUES (CAST(? AS TIMESTAMP), 'old', 'ping', true, 20.0, ?, 'u.csv', 1)",
            [f"2024-08-14 05:{minute}:00", EPOCH],
        )
    assert DuplicateHardware().detect(Evidence(con, EPOCH)).is_empty()
    assert VirtualizedGpu().detect(Evidence(con, EPOCH)).is_empty()


def test_a_copied_fingerprint_and_bus_id_from_another_owner_elsewhere_is_held_for_review_not_rejected(con) -> None:
    """A thief registers a victim's GPU UUID, host fingerprint and bus id from another country
    and account (a sixth network written by others: its 10 victims were rejected as "2 devices on
    one machine"). One machine is not in two places: which holder has the card is not in the
    data, so both are held for review; one owner's two registrations at once are still proof."""
    from detectors import VirtualizedGpu

    for device, account, ip in (("victim", "acc-v", "5.5.5.1"), ("thief", "acc-t", "9.9.9.9"),
                                ("slice-a", "acc-s", "7.7.7.7"), ("slice-b", "acc-s", "7.7.7.8")):  # fmt: skip
        card = "GPU-v" if device in ("victim", "thief") else "GPU-s"
        host = "h-v" if device in ("victim", "thief") else "h-s"
        _hardware(con, device, host, card, "00000000:01:00.0", ip=ip, account=account)
        feature(con, device, account_id=account, host_fingerprint=host, ip=ip, gpu_uuid=card, pci_bus_id="00000000:01:00.0")
    rejected = VirtualizedGpu().detect(Evidence(con, EPOCH))
    assert rejected["device_id"].to_list() == ["slice-a", "slice-b"] and set(rejected["action"]) == {"reject"}
    held = {r["device_id"]: r["action"] for r in DuplicateHardware().detect(Evidence(con, EPOCH)).iter_rows(named=True)}
    assert held["victim"] == held["thief"] == "probation"


def test_one_machine_image_with_its_slots_reported_by_several_owners_from_several_addresses_is_held_for_review(con) -> None:
    """A four-card host cloned to three accounts at three addresses, each clone making up UUIDs of
    its own (a sixteenth network written by others: 24 devices, none flagged). One machine's slot
    is at one address: the same fingerprint and bus id from several owners at several sites at
    once is a copy, held for review like any contested identity. Tenants renting one machine's
    cards from its one address, or one owner's cards behind a virtual slot, are not compared."""
    for clone, ip in enumerate(("5.5.5.1", "6.6.6.1", "7.7.7.1")):
        for slot in range(4):
            _hardware(con, f"clone{clone}-{slot}", "hostX", f"GPU-x{clone}{slot}", f"00000000:0{slot + 1}:00.0",
                      ip=ip, account=f"acc-{clone}")  # fmt: skip
    for tenant in range(3):  # one rented machine, a container per tenant, every container on the same virtual slot
        _hardware(con, f"tenant{tenant}", "hostR", f"GPU-r{tenant}", "00000000:00:05.0", ip="8.8.8.1", account=f"t{tenant}")
    found = DuplicateHardware().detect(Evidence(con, EPOCH))
    by_device = {r["device_id"]: r for r in found.iter_rows(named=True)}
    assert set(by_device) == {f"clone{c}-{s}" for c in range(3) for s in range(4)}
    assert {r["action"] for r in by_device.values()} == {"probation"}
    assert all(json.loads(r["details"])["proof"] == "suspicion" for r in by_device.values())
    assert "host and slot" in by_device["clone0-0"]["reason"] and "several owners" in by_device["clone0-0"]["reason"]


def test_duplicate_hardware_confirms_when_it_persists(con) -> None:
    con.execute(
        "INSERT INTO evidence VALUES (?, 'slice1', 'acc', 'duplicate_hardware', 'duplicate_hardware', 0.8, 'probation', 'x', '{}')",
        [hour(4)],
    )
    _hardware(con, "slice1", "hostA", "GPU-same", None)
    _hardware(con, "slice2", "hostA", "GPU-same", None)
    found = DuplicateHardware().detect(Evidence(con, EPOCH))
    assert dict(zip(found["device_id"], found["action"])) == {"slice1": "reject", "slice2": "probation"}


def test_an_identity_on_other_owners_machines_holds_every_holder_for_review_one_owners_copies_are_judged(con) -> None:
    """A GPU identity on several owners' machines at several sites: a stolen identity (the card's
    owner reported it alone for hours, then two other owners' machines report it too) looks in
    the data just like a cloud card reassigned to another tenant whose old registration still
    reports it, where the later holder has the card. Which one has it is not in the data: every
    holder is held for review, never rejected on the identity alone, and the evidence names the
    first holder. One owner's machines sharing an identity (a cloned image) are judged as before."""
    for h in (2, 3):  # the owner alone before the copies appeared
        _hardware(con, "owner", "host-o", "GPU-stolen", None, h=hour(h), ip="1.1.1.1", alive=None, account="alice")
    for device, host, ip, account in (("owner", "host-o", "1.1.1.1", "alice"), ("copy-b", "host-b", "2.2.2.2", "bob"),
                                      ("copy-c", "host-c", "3.3.3.3", "carol")):  # fmt: skip
        _hardware(con, device, host, "GPU-stolen", None, ip=ip, account=account)
        _hardware(con, device, host, "GPU-stolen", None, h=hour(4), ip=ip, alive=None, account=account)
        feature(con, device, account_id=account)
    for device, ip, account in (("same-hour-a", "4.4.4.4", "dan"), ("same-hour-b", "5.5.5.5", "erin"),
                                ("image-1", "6.6.6.6", "frank"), ("image-2", "7.7.7.7", "frank")):  # fmt: skip
        uuid = "GPU-twin" if device.startswith("same") else "GPU-image"
        _hardware(con, device, f"host-{device}", uuid, None, ip=ip, account=account)
        feature(con, device, account_id=account)
    for device in ("owner", "copy-b", "copy-c", "same-hour-a", "same-hour-b", "image-1", "image-2"):  # shared an hour ago
        con.execute(
            "INSERT INTO evidence VALUES (?, ?, 'acc', 'duplicate_hardware', 'duplicate_hardware', 0.8, 'probation', 'x', '{}')",
            [hour(4), device],
        )
    found = {r["device_id"]: r for r in DuplicateHardware().detect(Evidence(con, EPOCH)).iter_rows(named=True)}
    actions = {d: r["action"] for d, r in found.items()}
    assert actions == {"owner": "probation", "copy-b": "probation", "copy-c": "probation", "same-hour-a": "probation",
                       "same-hour-b": "probation", "image-1": "reject", "image-2": "reject"}  # fmt: skip
    assert "it held the identity first (from 2024-08-14T02)" in found["owner"]["reason"]
    assert "this one from 2024-08-14T04, after another" in found["copy-b"]["reason"]
    assert "which one is the card's is not in the data" in found["same-hour-a"]["reason"]
    assert {json.loads(r["details"])["proof"] for d, r in found.items() if not d.startswith("image")} == {"suspicion"}
    assert json.loads(found["image-1"]["details"])["proof"] == "exact"


def test_the_holder_of_a_copied_identity_whose_copies_failed_the_cards_physics_is_the_card_and_is_cleared(con) -> None:
    """A thief copied two honest cards' UUID and bus id onto slow machines of other owners abroad
    (a sixth network written by others: the copies' throughput and VRAM then failed, and
    ``spoofed_model`` held or rejected them, while the ten owners stayed held for review to the
    end). When every other holder has failed the card's work and this one has not, the card is
    this one's: its hold ends (``clear``). While one copy does the work as well as the card, or a
    mere lead (``review``) is all there is, the data does not say which holder has the card."""
    for device, host, ip, account, uuid in (("victim", "host-v", "1.1.1.1", "alice", "GPU-a"),
                                            ("copy", "host-v", "9.9.9.9", "mallory", "GPU-a"),
                                            ("victim-2", "host-w", "2.2.2.2", "bob", "GPU-b"),
                                            ("copy-2", "host-w", "8.8.8.8", "trent", "GPU-b"),
                                            ("copy-3", "host-w", "7.7.7.7", "oscar", "GPU-b")):  # fmt: skip
        _hardware(con, device, host, uuid, "00000000:01:00.0", ip=ip, account=account)
        feature(con, device, account_id=account, host_fingerprint=host, ip=ip, gpu_uuid=uuid, pci_bus_id="00000000:01:00.0")
    for device, detector, action in (("copy", "spoofed_model", "probation"), ("copy-2", "spoofed_model", "reject"),
                                     ("copy-3", "anomaly", "review")):  # fmt: skip
        con.execute(
            "INSERT INTO evidence VALUES (?, ?, 'acc', ?, 'spoofed_model', 1.0, ?, 'slow, VRAM short', '{}')",
            [hour(3), device, detector, action],
        )
    found = {r["device_id"]: r for r in DuplicateHardware().detect(Evidence(con, EPOCH)).iter_rows(named=True)}
    assert {d: r["action"] for d, r in found.items()} == {
        "victim": "clear", "copy": "probation", "victim-2": "probation", "copy-2": "probation", "copy-3": "probation"}  # fmt: skip
    assert "every other holder (copy) failed the card's work" in found["victim"]["reason"]
    assert json.loads(found["victim"]["details"])["copies"] == ["copy"]
    con.execute(  # now both copies of GPU-b failed the work
        "UPDATE evidence SET detector = 'virtualized_gpu', action = 'probation' WHERE device_id = 'copy-3'"
    )
    found = {r["device_id"]: r["action"] for r in DuplicateHardware().detect(Evidence(con, EPOCH)).iter_rows(named=True)}
    assert found["victim-2"] == "clear" and found["copy-3"] == "probation"


def test_registry_detectors_follow_the_interface() -> None:
    for name, cls in REGISTRY.items():
        d = cls()
        assert isinstance(d, Detector) and d.name == name and 0 < d.threshold <= 1
        assert repr(d).startswith(cls.__name__ + "(threshold=")


def _stake(con, event: str, wallet: str, device: str, kind: str, at: str, amount: str = "50000") -> None:
    con.execute(
        "INSERT INTO stake_events VALUES (?, CAST(? AS TIMESTAMP), ?, ?, ?, CAST(? AS DECIMAL(38,8)), 'exchange', ?, 'stake_events.csv', 1)",
        [event, at, wallet, device, kind, amount, at[:13].replace(" ", "T")],
    )


def test_stake_manipulation_holds_an_account_whose_wallet_stakes_and_withdraws_round_the_hour_again_and_again(con) -> None:
    """Three networks written by others had rings stake 20-150k IO a minute or two before the hour
    and withdraw it just after, every hour or most (paid 6.6% of one network's rewards through
    their cards). Honest stakers hold for days and undo a mistake now and then: one round trip on
    a position, however many positions an operator holds. A stranger's wallet can delegate to anyone's card and take it back: not the owner's doing."""
    for account, wallet in (("flasher", "w-flash"), ("careful", "w-care"), ("victim", "w-victim")):
        con.execute("INSERT INTO accounts VALUES (?, '2024-08-01', ?, ?, '10.0.0.1', NULL, '2024-08-14T00', 'accounts.csv', 1)",
                    [account, f"{account}@example.com", wallet])  # fmt: skip
    for device, account in (("flash-1", "flasher"), ("flash-2", "flasher"), ("victim-1", "victim")):
        feature(con, device, account_id=account)
    for h in (1, 2, 4):  # three flash stakes across the boundary into hours 2, 3 and 5
        _stake(con, f"in-{h}", "w-flash", "flash-1", "stake", f"2024-08-14 {h:02d}:58:30")
        _stake(con, f"out-{h}", "w-flash", "flash-1", "unstake", f"2024-08-14 {h + 1:02d}:02:10")
    for k in range(4):  # an operator of many cards undoes a mistake on four of them: the wrong amount, and held
        feature(con, f"care-{k}", account_id="careful")
        _stake(con, f"c-{k}-1", "w-care", f"care-{k}", "stake", f"2024-08-14 0{k}:10:00")
        _stake(con, f"c-{k}-2", "w-care", f"care-{k}", "unstake", f"2024-08-14 0{k}:14:00")
        _stake(con, f"c-{k}-3", "w-care", f"care-{k}", "stake", f"2024-08-14 0{k}:15:00")
    for h in (1, 2, 4):  # a wallet that is no account's, in and out of the victim's card
        _stake(con, f"g-in-{h}", "w-stranger", "victim-1", "delegate", f"2024-08-14 {h:02d}:59:00")
        _stake(con, f"g-out-{h}", "w-stranger", "victim-1", "undelegate", f"2024-08-14 {h + 1:02d}:01:00")
    found = StakeManipulation().detect(Evidence(con, EPOCH))
    assert found["device_id"].to_list() == ["flash-1", "flash-2"]
    assert set(found["action"]) == {"probation"} and set(found["fraud_type"]) == {"stake_manipulation"}
    assert (
        "withdrew again within 30 minutes 3 times in the last 24 hours on positions it takes out again and again (3 across"
        in (found["reason"][0])
    )
    details = json.loads(found["details"][1])
    assert details["proof"] == "suspicion" and details["round_trips"] == 3 and details["median_minutes_held"] == 3.7
    assert StakeManipulation(min_round_trips=4).detect(Evidence(con, EPOCH)).is_empty()
    assert StakeManipulation(short_minutes=3).detect(Evidence(con, EPOCH)).is_empty()  # held 3.7 minutes each
    with pytest.raises(ValueError, match="min_round_trips"):
        StakeManipulation(min_round_trips=1)
