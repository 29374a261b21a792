"""The features stage's reading of raw feeds: when a challenge counts as issued to a live device."""

from __future__ import annotations

from datetime import datetime, timedelta

import duckdb
import pytest

from pipelines.db import ensure_schema
from pipelines.features import REACH_MINUTES, Features, build_features
from pipelines.policy import load_policy
from pipelines.policy_errors import PolicyError

EPOCH = "2024-08-14T00"
ISSUED = datetime(2024, 8, 14, 0, 30)
REACH = timedelta(minutes=REACH_MINUTES)
SHIPPED = Features()


@pytest.fixture
def con() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    ensure_schema(con)
    yield con
    con.close()


def _device(
    con: duckdb.DuckDBPyConnection, device: str, issued: datetime, signals: list[tuple[datetime, bool]], status: str = "timeout"
) -> None:
    """One hardware report, one challenge issued at ``issued`` (timed out unless ``status``), and
    ``signals`` (moment, answered) as heartbeats, each stored under the hour it falls in."""
    con.execute(
        "INSERT INTO hardware (ts, device_id, account_id, gpu_model, vram_total_mb, _hour, _file, _row) "
        "VALUES (?, ?, 'acc', 'NVIDIA GeForce RTX 4090', 24564, ?, 'hardware.csv', 0)",
        [ISSUED, device, EPOCH],
    )
    con.execute(
        "INSERT INTO pow (challenge_id, batch_id, device_id, kind, issued_at, status, n, seed, _hour, _file, _row) "
        "VALUES (?, 'b', ?, 'matmul', ?, ?, 64, 1, ?, 'pow.jsonl', 0)",
        [f"c-{device}", device, issued, status, EPOCH],
    )
    for ts, ok in signals:
        hour = ts.strftime("%Y-%m-%dT%H")
        con.execute(
            "INSERT INTO uptime (ts, device_id, source, ok, _hour, _file, _row) VALUES (?, ?, 'heartbeat', ?, ?, 'uptime.csv', 0)",
            [ts, device, ok, hour],
        )


def test_a_challenge_counts_as_reachable_only_with_a_live_signal_within_reach_on_both_sides(con) -> None:
    """The nearest answered signal at or before the challenge and the nearest at or after it must
    each be within ``REACH_MINUTES``; a signal at the very moment counts on both sides, the
    previous hour's signals count (up to the reach before the hour's first challenge), a failed
    ping or another device's signal does not."""
    second = timedelta(seconds=1)
    cases = {
        "same-moment": (ISSUED, [(ISSUED, True)], 1),
        "both-at-the-edge": (ISSUED, [(ISSUED - REACH, True), (ISSUED + REACH, True)], 1),
        "before-too-early": (ISSUED, [(ISSUED - REACH - second, True), (ISSUED + second, True)], 0),
        "after-too-late": (ISSUED, [(ISSUED - second, True), (ISSUED + REACH + second, True)], 0),
        "nothing-after": (ISSUED, [(ISSUED - second, True)], 0),
        "failed-signal": (ISSUED, [(ISSUED - REACH * 2, True), (ISSUED, False), (ISSUED + REACH * 2, True)], 0),
        "previous-hour": (
            datetime(2024, 8, 14, 0, 2),
            [(datetime(2024, 8, 13, 23, 55), True), (datetime(2024, 8, 14, 0, 5), True)],
            1,
        ),  # fmt: skip
        "previous-hour-at-the-edge": (  # the hour's first challenge: the earliest signal of the hour before read
            datetime(2024, 8, 14, 0, 1),
            [(datetime(2024, 8, 14, 0, 1) - REACH, True), (datetime(2024, 8, 14, 0, 5), True)],
            1,
        ),  # fmt: skip
        "silent": (ISSUED, [], 0),
    }
    for device, (issued, signals, _) in cases.items():
        _device(con, device, issued, signals)
    build_features(con, EPOCH)
    reachable = dict(con.execute("SELECT device_id, pow_reachable FROM device_features WHERE epoch = ?", [EPOCH]).fetchall())
    assert reachable == {device: expected for device, (_, _, expected) in cases.items()}
    # and per challenge, with its size, for the detectors that judge one challenge (spoofed_model's VRAM timeouts)
    per_challenge = con.execute("SELECT device_id, reachable, n FROM challenge_context WHERE epoch = ?", [EPOCH]).fetchall()
    assert sorted(per_challenge) == sorted((device, bool(expected), 64) for device, (_, _, expected) in cases.items())


def _answered_before(con: duckdb.DuckDBPyConnection, epoch: str, answers: int) -> None:
    """An earlier hour of the last day in which the fleet answered ``answers`` challenges."""
    con.execute("INSERT INTO device_features (epoch, device_id, pow_ok) VALUES (?, 'earlier', ?)", [epoch, answers])


def _counted(con: duckdb.DuckDBPyConnection, params: Features | None = None) -> tuple[int, int]:
    build_features(con, EPOCH, params)
    q = "SELECT sum(pow_reachable), sum(pow_timeout_reachable) FROM device_features WHERE epoch = ? AND device_id <> 'earlier'"
    return con.execute(q, [EPOCH]).fetchone()


@pytest.mark.parametrize("timing_out", [SHIPPED.challenge_outage_min, 30])
def test_timeouts_of_an_hour_in_which_the_challenge_service_failed_count_against_no_device(con, timing_out: int) -> None:
    """Pings and heartbeats go on, but a quarter or more of the challenges issued to live devices
    time out (at least ``challenge_outage_min``) and the fleet answers at most half as many as in
    its busiest hour of the last day: the backend's verifier is down, not the fleet, and none of
    the timeouts counts as a reachable device's. The same timeouts from a wave of devices that
    never answer, beside a fleet answering as it always did, or just under the share, count."""
    alive = [(ISSUED - timedelta(minutes=1), True), (ISSUED + timedelta(minutes=1), True)]
    answering = int(timing_out / SHIPPED.challenge_outage_share) - timing_out  # the share exactly
    for d in range(timing_out):
        _device(con, f"out-{d}", ISSUED, alive)
    for d in range(answering):
        _device(con, f"ok-{d}", ISSUED, alive, status="ok")
    assert _counted(con) == (timing_out + answering, timing_out)  # a network's first hour: no day behind it

    _answered_before(con, "2024-08-13T23", answering)  # the fleet answers as it always did: a wave that never answers
    assert _counted(con) == (timing_out + answering, timing_out)

    busiest = int(answering / SHIPPED.challenge_outage_answered)
    _answered_before(con, "2024-08-13T01", busiest)  # half its busiest hour: the service
    assert _counted(con) == (0, 0)
    assert con.execute("SELECT count(*) FILTER (reachable) FROM challenge_context").fetchall() == [(0,)]  # per challenge too
    recorded = con.execute("SELECT * FROM challenge_outages").fetchall()  # with the figures it rests on
    assert recorded == [(EPOCH, timing_out, timing_out + answering, answering, busiest)]
    stricter = Features(challenge_outage_min=timing_out + 1)  # the policy's [features] decide
    assert _counted(con, stricter) == (timing_out + answering, timing_out)
    assert con.execute("SELECT count(*) FROM challenge_outages").fetchall() == [(0,)]
    _answered_before(con, "2024-08-13T00", 10**6)  # the busiest hour a day and an hour ago is no longer the day's
    assert _counted(con) == (0, 0)

    _device(con, "ok-one-more", ISSUED, alive, status="ok")  # now just under the share
    assert _counted(con) == (timing_out + answering + 1, timing_out)


def test_a_model_name_is_matched_to_the_catalogue_whatever_its_case_spacing_or_vendor_words(con) -> None:
    """Backends and drivers spell one card several ways; each spelling finds the card's spec (an
    unmatched name could be neither priced nor held to its card's speed), and a different card
    (``RTX 4090 D``) or an unknown name stays unmatched. A device not reporting this hour keeps
    the match of its last report."""
    names = {
        "canonical": ("NVIDIA GeForce RTX 4090", "rtx_4090"),
        "no-vendor": ("GeForce RTX 4090", "rtx_4090"),
        "upper-spaced": ("  NVIDIA  GEFORCE RTX 4090 ", "rtx_4090"),
        "dashes": ("nvidia-a100-sxm4-80gb", "a100_80gb_sxm"),
        "tesla-dropped": ("T4", "t4"),
        "apple-upper": ("APPLE M2 PRO", "apple_m2_pro"),
        "other-card": ("NVIDIA GeForce RTX 4090 D", None),
        "unknown": ("Radeon RX 7900 XTX", None),
    }
    for i, (device, (name, _)) in enumerate(names.items()):
        con.execute(
            "INSERT INTO hardware (ts, device_id, account_id, gpu_model, vram_total_mb, _hour, _file, _row) "
            "VALUES (?, ?, 'acc', ?, 24564, ?, 'hardware.csv', ?)",
            [ISSUED, device, name, EPOCH, i],
        )
    build_features(con, EPOCH)
    for i, device in enumerate(names):  # the next hour only heartbeats: each device keeps its last report's match
        con.execute(
            "INSERT INTO uptime (ts, device_id, source, ok, _hour, _file, _row) "
            "VALUES (?, ?, 'heartbeat', true, '2024-08-14T01', 'uptime.csv', ?)",
            [ISSUED + timedelta(hours=1), device, i],
        )
    build_features(con, "2024-08-14T01")
    for epoch in (EPOCH, "2024-08-14T01"):
        got = dict(con.execute("SELECT device_id, catalogue_model FROM device_features WHERE epoch = ?", [epoch]).fetchall())
        assert got == {device: model for device, (_, model) in names.items()}, epoch


@pytest.mark.parametrize(
    ("name", "vram_mb", "model"),
    [
        ("NVIDIA GeForce RTX 3080 Laptop GPU", 16384, "rtx_3080_laptop"),
        ("NVIDIA GeForce RTX 3080", 16376, "rtx_3080_laptop"),  # the laptop chip under the desktop name: 16 GB
        ("NVIDIA GeForce RTX 3080", 10240, "rtx_3080"),
        ("NVIDIA GeForce RTX 3080", 12288, "rtx_3080"),  # the 12 GB desktop card
        ("NVIDIA GeForce RTX 3080", 24576, "rtx_3080"),  # more than either has: an impossible claim, spoofed_model's
        ("NVIDIA GeForce RTX 4090", 49140, "rtx_4090"),  # no laptop 4090 has 48 GB: a modded desktop card or a lie
    ],
    ids=["laptop-name", "desktop-name-laptop-memory", "desktop-10gb", "desktop-12gb", "above-both", "no-laptop-fits"],
)
def test_a_desktop_name_claiming_only_its_laptop_chips_memory_is_read_as_the_laptop_chip(
    con, name: str, vram_mb: int, model: str
) -> None:
    """Laptops launched as the plain ``GeForce RTX 3080`` and some drivers still name the laptop
    chip so, with its 16 GB: a network written by others had 25 such honest laptops held as claiming
    memory no 3080 has. Such a claim is read as the laptop chip (its spec, its peers); a claim
    above every configuration of both stays the desktop model's, for ``spoofed_model`` to hold."""
    con.execute(
        "INSERT INTO hardware (ts, device_id, account_id, gpu_model, vram_total_mb, _hour, _file, _row) "
        "VALUES (?, 'd', 'acc', ?, ?, ?, 'hardware.csv', 0)",
        [ISSUED, name, vram_mb, EPOCH],
    )
    build_features(con, EPOCH)
    got = con.execute("SELECT catalogue_model, spec_tflops FROM device_features WHERE epoch = ?", [EPOCH]).fetchone()
    spec = con.execute("SELECT fp16_tensor_tflops FROM gpu_catalogue WHERE model_key = ?", [model]).fetchone()[0]
    assert got == (model, spec)


def test_a_catalogue_whose_models_share_a_name_key_is_refused(tmp_path) -> None:
    """Two models whose names differ only in case or vendor words could not be told apart: the
    catalogue is refused with both named, not matched to whichever comes first."""
    from pipelines import catalogue

    source = catalogue.CATALOGUE_CSV.read_text().splitlines()
    clash = next(line for line in source if line.startswith("rtx_4090,")).replace("rtx_4090,", "rtx_4090_copy,", 1)
    clash = clash.replace("NVIDIA GeForce RTX 4090", "GEFORCE RTX 4090", 1)
    path = tmp_path / "catalogue.csv"
    path.write_text("\n".join([*source, clash]) + "\n")
    with pytest.raises(ValueError, match="rtx_4090.*rtx_4090_copy"):
        catalogue.register(duckdb.connect(), path)


def test_a_host_fingerprint_reported_from_more_addresses_than_one_machine_has_is_read_as_none(con) -> None:
    """A machine is at one public address (two when it changes within the hour). A writer's
    placeholder fingerprint (``unknown`` on every device) put a whole network "on one host" and
    had its honest devices rejected as virtualized; seen from more than ``machine_max_ips``
    addresses it is read as no fingerprint, and two cards of one real machine keep theirs."""
    from detectors.base import Evidence
    from detectors.virtualized_gpu import VirtualizedGpu

    rows = [(f"home{k}", "unknown", f"5.5.{k}.1") for k in range(SHIPPED.machine_max_ips + 2)]
    rows += [("slice1", "rig", "7.7.7.7"), ("slice2", "rig", "7.7.7.7")]
    for i, (device, host, ip) in enumerate(rows):
        con.execute(
            "INSERT INTO hardware (ts, device_id, account_id, host_fingerprint, ip, gpu_model, pci_bus_id, vram_total_mb, _hour, _file, _row) "
            "VALUES (?, ?, 'acc', ?, ?, 'NVIDIA GeForce RTX 4090', '00000000:01:00.0', 24564, ?, 'hardware.csv', ?)",
            [ISSUED, device, host, ip, EPOCH, i],
        )
    for device in ("slice1", "slice2"):  # the two slices of one card, alive side by side all hour
        for minute in (1, 58):
            con.execute(
                "INSERT INTO uptime (ts, device_id, source, ok, _hour, _file, _row) VALUES (?, ?, 'heartbeat', true, ?, 'uptime.csv', 0)",
                [ISSUED.replace(minute=minute), device, EPOCH],
            )
    build_features(con, EPOCH)
    hosts = dict(con.execute("SELECT device_id, host_fingerprint FROM device_features").fetchall())
    assert hosts == {device: None if host == "unknown" else host for device, host, _ in rows}
    found = VirtualizedGpu().detect(Evidence(con, EPOCH))
    assert sorted(found["device_id"]) == ["slice1", "slice2"]


@pytest.mark.parametrize(
    ("ip", "site"),
    [
        ("10.11.12.13", "10.11.12.13"),
        ("::ffff:10.11.12.13", "10.11.12.13"),
        ("2a02:a0b:c0d:1::1", "2a02:a0b:c0d:1::/64"),
        ("2A02:0A0B:0C0D:0001:aaaa:bbbb:cccc:dddd", "2a02:a0b:c0d:1::/64"),
        ("2a02::1:2:3:4:5", "2a02:0:0:1::/64"),
        ("2001:db8::", "2001:db8:0:0::/64"),
        (None, None),
    ],
)
def test_an_address_site_is_the_ipv4_address_or_the_ipv6_64_in_any_spelling(con, ip: str | None, site: str | None) -> None:
    """Devices of one LAN share one IPv4 address behind NAT, but over IPv6 each has its own
    address in the LAN's /64 (privacy addresses rotate within it): ``ip_site`` is what "the same
    address" compares."""
    assert con.execute("SELECT ip_site(?)", [ip]).fetchall() == [(site,)]


@pytest.mark.parametrize("vram_sampled_by_anyone", [False, True])
def test_an_answer_of_a_kind_the_backend_never_samples_is_neither_proof_nor_evidence_against(
    con, vram_sampled_by_anyone: bool
) -> None:
    """``samples`` are what the backend asked for. A backend that samples matmul products and
    answers VRAM challenges with a digest only stopped a network at its first hour ("could not
    be verified") and would have left every device with a VRAM challenge unpaid. A kind nobody is
    sampled on this hour is the backend's choice; where others of that kind are sampled, an
    answer without samples still counts as unverified."""
    from pipelines.policy import Quality
    from pipelines.quality import sample_verification_rate

    rows = [("m1", "dev", "matmul", 2), ("v1", "dev", "vram", 0), ("m2", "other", "matmul", 2)]
    rows += [("v2", "other", "vram", 2 if vram_sampled_by_anyone else 0)]
    for k, (challenge, device, kind, samples) in enumerate(rows):
        con.execute(
            "INSERT INTO hardware (ts, device_id, account_id, gpu_model, vram_total_mb, _hour, _file, _row) "
            "VALUES (?, ?, 'acc', 'NVIDIA GeForce RTX 4090', 24564, ?, 'hardware.csv', ?)",
            [ISSUED, device, EPOCH, k],
        )
        con.execute(
            "INSERT INTO pow (challenge_id, device_id, kind, issued_at, responded_at, status, n, seed, compute_ms, _hour, _file, _row) "
            "VALUES (?, ?, ?, ?, ?, 'ok', 64, 1, 1.0, ?, 'pow.jsonl', ?)",
            [challenge, device, kind, ISSUED, ISSUED + timedelta(seconds=1), EPOCH, k],
        )
        con.execute("INSERT INTO pow_checks VALUES (?, ?, ?, 0, NULL, 0)", [challenge, EPOCH, samples])
    build_features(con, EPOCH)
    unverified = dict(con.execute("SELECT device_id, unverified_ok FROM device_features").fetchall())
    assert unverified == {"dev": int(vram_sampled_by_anyone), "other": 0}
    bar = sample_verification_rate(con, EPOCH, Quality().min_sample_verification_rate)
    assert bar.passed == (not vram_sampled_by_anyone) and bar.metadata["answered"] == (4 if vram_sampled_by_anyone else 2)


def test_compute_time_is_held_to_the_round_trip_within_the_precision_its_file_writes_times_to(con) -> None:
    """The contract allows times written to the second. A 300 ms product answered within one
    second then reads as a 0 s round trip: it fits (every device of a network written so was
    once rejected as faking its timings). In a file written to the millisecond, 300 ms of
    compute in a 100 ms round trip does not fit, even for a challenge whose times happen to be
    whole seconds; the same at hundredths of a second. Two backend clocks that disagree by tens
    of milliseconds (``Features.clock_margin_ms``) are no evidence: 300 ms in 270 ms is not counted, though
    its throughput is not measured either; 300 ms in 240 ms is counted."""
    ms = timedelta(milliseconds=1)
    at = ISSUED + timedelta(milliseconds=437)
    cases = {  # device: (file, issued_at, responded_at, overclaimed)
        "seconds": ("pow-s.csv", ISSUED, ISSUED, 0),
        "seconds-apart": ("pow-s.csv", ISSUED, ISSUED + 1000 * ms, 0),
        "seconds-timed-out": ("pow-s.csv", ISSUED, None, 0),
        "milliseconds": ("pow-ms.jsonl", at, at + 100 * ms, 1),
        "milliseconds-enough": ("pow-ms.jsonl", at, at + 299 * ms, 0),
        "two-clocks-30-ms-apart": ("pow-ms.jsonl", at, at + 270 * ms, 0),
        "beyond-two-clocks": ("pow-ms.jsonl", at, at + 240 * ms, 1),
        "milliseconds-on-a-whole-second": ("pow-ms.jsonl", ISSUED, ISSUED + 100 * ms, 1),
        "hundredths": ("pow-cs.parquet", ISSUED + 430 * ms, ISSUED + 530 * ms, 1),
        # issued to the millisecond, answered to the second: a 0.9 s -> "1 s" round trip may be 1.2 s
        "answered-to-the-second": ("pow-r.csv", ISSUED + 900 * ms, ISSUED + 1000 * ms, 0),
        "answered-to-the-second-too": ("pow-r.csv", at, ISSUED + 1000 * ms, 0),
    }
    for row, (device, (file, issued, responded, _)) in enumerate(cases.items()):
        con.execute(
            "INSERT INTO hardware (ts, device_id, account_id, gpu_model, vram_total_mb, _hour, _file, _row) "
            "VALUES (?, ?, 'acc', 'NVIDIA GeForce RTX 4090', 24564, ?, 'hardware.csv', ?)",
            [ISSUED, device, EPOCH, row],
        )
        con.execute(
            "INSERT INTO pow (challenge_id, device_id, kind, issued_at, responded_at, status, n, seed, compute_ms, _hour, _file, _row) "
            "VALUES (?, ?, 'matmul', ?, ?, ?, 4096, 1, 300.0, ?, ?, ?)",
            [f"c-{device}", device, issued, responded, "timeout" if responded is None else "ok", EPOCH, file, row],
        )
    build_features(con, EPOCH)
    got = dict(con.execute("SELECT device_id, overclaimed_compute FROM device_features WHERE epoch = ?", [EPOCH]).fetchall())
    assert got == {device: expected for device, (*_, expected) in cases.items()}
    timed = dict(con.execute("SELECT device_id, tflops IS NOT NULL FROM challenge_context WHERE epoch = ?", [EPOCH]).fetchall())
    untimed = {"two-clocks-30-ms-apart"}  # within the clock margin, but not a time to measure throughput from
    assert timed == {
        device: expected == 0 and responded is not None and device not in untimed
        for device, (_, _, responded, expected) in cases.items()
    }


def _answered(con: duckdb.DuckDBPyConnection, device: str, wrong: bool, epoch: str = EPOCH) -> None:
    """An answered challenge of ``device`` in ``epoch`` whose two sampled entries were checked."""
    con.execute(
        "INSERT INTO pow (challenge_id, device_id, kind, issued_at, responded_at, status, n, seed, compute_ms, _hour, _file, _row) "
        "VALUES (?, ?, 'matmul', ?, ?, 'ok', 64, 1, 1.0, ?, 'pow.jsonl', 0)",
        [f"c-{device}", device, ISSUED, ISSUED + timedelta(seconds=1), epoch],
    )
    con.execute("INSERT INTO pow_checks VALUES (?, ?, 2, ?, NULL, 0)", [f"c-{device}", epoch, 2 if wrong else 0])


def test_a_fleet_that_answered_right_and_is_wrong_en_masse_fails_a_bar_a_wave_of_wrong_newcomers_does_not(con) -> None:
    """Seeds rounded through a float64 made 99.6% of a network's answers "wrong" and every device
    was rejected for wrong PoW. A quarter of the checked answers wrong (and at least
    ``WRONG_SAMPLE_BAR_MIN``) is the data, not the fleet: the hour stops. Only devices that
    answered right within the day count, so new devices answering garbage cannot stop it."""
    from pipelines.policy import Quality
    from pipelines.quality import WRONG_SAMPLE_BAR_MIN, wrong_sample_share

    share = Quality().max_wrong_sample_share
    right = int(WRONG_SAMPLE_BAR_MIN / share) - WRONG_SAMPLE_BAR_MIN
    for d in range(right):
        _answered(con, f"right-{d}", wrong=False)
    for d in range(WRONG_SAMPLE_BAR_MIN):
        _answered(con, f"wrong-{d}", wrong=True)
    assert wrong_sample_share(con, EPOCH, share).passed  # a first hour, every device counted: the share exactly
    _answered(con, "wrong-one-more", wrong=True)
    bar = wrong_sample_share(con, EPOCH, share)
    assert (
        not bar.passed and f"{WRONG_SAMPLE_BAR_MIN + 1} of {right + WRONG_SAMPLE_BAR_MIN + 1} checked answers" in bar.description
    )

    def right_in(epoch: str, devices: list[str]) -> None:  # their checked answers were all right in that hour
        for device in devices:
            q = "INSERT INTO device_features (epoch, device_id, samples_total, samples_bad) VALUES (?, ?, 2, 0)"
            con.execute(q, [epoch, device])

    right_in("2024-08-13T23", [f"right-{d}" for d in range(right)])  # the wrong ones are new
    assert wrong_sample_share(con, EPOCH, share).passed
    right_in("2024-08-13T05", [f"wrong-{d}" for d in range(WRONG_SAMPLE_BAR_MIN)] + ["wrong-one-more"])  # a fleet gone wrong
    assert not wrong_sample_share(con, EPOCH, share).passed

    none = wrong_sample_share(con, "2024-08-14T01", share)  # an hour with no answers checked
    assert none.passed and none.metadata["checked"] == 0
    for d in range(WRONG_SAMPLE_BAR_MIN - 1):  # a handful of devices, all wrong, is no fleet
        _answered(con, f"few-{d}", wrong=True, epoch="2024-08-16T00")
    few = wrong_sample_share(con, "2024-08-16T00", share)  # no day of history: every device
    assert few.passed and few.metadata["share"] == 1.0


def test_the_features_thresholds_are_read_from_the_detection_policy(tmp_path) -> None:
    """``[features]`` of the detection policy sets the clock margin and the outage rule; a wrong
    value is an error naming the key, before anything runs."""
    assert load_policy().features == Features()
    path = tmp_path / "detection.toml"
    path.write_text("[features]\nclock_margin_ms = 0\nchallenge_outage_min = 20\n")
    assert load_policy(path).features == Features(clock_margin_ms=0, challenge_outage_min=20)
    path.write_text('[features]\nclock_margin_ms = "lots"\n')
    with pytest.raises(PolicyError, match="features.clock_margin_ms"):
        load_policy(path)
    # one machine's addresses are one bound, for a host fingerprint and for a shared card alike
    path.write_text("[features]\nmachine_max_ips = 2\n")
    with pytest.raises(PolicyError, match=r"duplicate_hardware.max_ips \(4\) must equal features.machine_max_ips \(2\)"):
        load_policy(path)
    path.write_text("[features]\nmachine_max_ips = 2\n[detectors.duplicate_hardware]\nmax_ips = 2\n")
    assert load_policy(path).features.machine_max_ips == 2


def test_the_policy_sets_how_many_addresses_make_a_host_fingerprint_a_placeholder(con) -> None:
    """Three devices reporting one fingerprint from three addresses in the hour: one machine
    under the shipped bound (4), a writer's placeholder (no fingerprint) under a bound of 2."""
    for i, ip in enumerate(("5.5.0.1", "5.5.1.1", "5.5.2.1")):
        con.execute(
            "INSERT INTO hardware (ts, device_id, account_id, host_fingerprint, ip, gpu_model, vram_total_mb, _hour, _file, _row) "
            "VALUES (?, ?, 'acc', 'fp', ?, 'NVIDIA GeForce RTX 4090', 24564, ?, 'hardware.csv', ?)",
            [ISSUED, f"d{i}", ip, EPOCH, i],
        )
    build_features(con, EPOCH)
    assert {h for (h,) in con.execute("SELECT host_fingerprint FROM device_features").fetchall()} == {"fp"}
    build_features(con, EPOCH, Features(machine_max_ips=2))
    assert {h for (h,) in con.execute("SELECT host_fingerprint FROM device_features").fetchall()} == {None}


def test_an_answer_committing_a_digest_its_device_committed_before_for_another_product_is_counted(con) -> None:
    """A sha256 of the full product names one product (contract: ``result_digest``). A worker
    that never computes commits a constant (a seventeenth network written by others: 25 devices,
    none held) or replays one answer's digest. Counted: each answer whose digest its device
    committed earlier, this hour or the hour before, for another seed or size. Not counted: a
    re-issued challenge (same seed and size, same product), answers at the same instant (not
    ordered: a damaged duplicate row), another device's digest, and a digest more devices write
    than one operator runs (a writer's stand-in)."""
    prev = "2024-08-13T23"
    rows = [  # device, hour, minute, seed, n, digest
        ("forger", prev, 50, 1, 64, "d-const"), ("forger", EPOCH, 5, 2, 64, "d-const"), ("forger", EPOCH, 35, 3, 128, "d-const"),
        ("reissued", EPOCH, 5, 7, 64, "d-7"), ("reissued", EPOCH, 35, 7, 64, "d-7"),
        ("duplicate", EPOCH, 5, 8, 64, "d-8"), ("duplicate", EPOCH, 5, 9, 64, "d-8"),
        ("victim", EPOCH, 5, 4, 64, "d-4"), ("replayer", EPOCH, 10, 5, 64, "d-4"),
    ] + [(f"stand-in{k}", EPOCH, 5 + m, 10 * k + m, 64, "0" * 64) for k in range(11) for m in range(2)]  # fmt: skip
    for k, (device, hour, minute, seed, n, digest) in enumerate(rows):
        at = datetime.strptime(hour, "%Y-%m-%dT%H") + timedelta(minutes=minute)
        con.execute(
            "INSERT INTO hardware (ts, device_id, account_id, gpu_model, vram_total_mb, _hour, _file, _row) "
            "VALUES (?, ?, 'acc', 'NVIDIA GeForce RTX 4090', 24564, ?, 'hardware.csv', ?)",
            [at, device, hour, k],
        )
        con.execute(
            "INSERT INTO pow (challenge_id, device_id, kind, issued_at, responded_at, status, n, seed, compute_ms, "
            "result_digest, _hour, _file, _row) VALUES (?, ?, 'matmul', ?, ?, 'ok', ?, ?, 1.0, ?, ?, 'pow.jsonl', ?)",
            [f"c{k}", device, at, at + timedelta(seconds=1), n, seed, digest, hour, k],
        )
    build_features(con, EPOCH)
    repeated = dict(con.execute("SELECT device_id, digests_repeated FROM device_features WHERE digests_repeated > 0").fetchall())
    assert repeated == {"forger": 2}
