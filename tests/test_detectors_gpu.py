"""GPU-fraud detectors on hand-made evidence: spoofed models, virtualized cards, bursts, anomalies."""

from __future__ import annotations

import json

import polars as pl
import pytest

from detectors import AnomalyScore, Evidence, FleetBurst, SpoofedModel, VirtualizedGpu
from pipelines.challenge_plan import build_plan, read_plan

EPOCH = "2024-08-14T05"
EARLIER = "2024-08-13T23"  # six hours before EPOCH, inside its day


@pytest.fixture
def con(catalogue_con):
    return catalogue_con


def feature(con, device: str, epoch: str = EPOCH, **cols: object) -> None:
    base = dict(account_id=f"acc-{device}", ip=f"ip-{device}", host_fingerprint=f"host-{device}", asn=7922,
                gpu_model="NVIDIA A100-SXM4-80GB", catalogue_model="a100_80gb_sxm", spec_tflops=312.0,
                vram_total_mb=81920, hw_reports=1, pow_total=1, pow_ok=1, tflops_median=260.0)  # fmt: skip
    base.update(cols)
    names = ", ".join(["epoch", "device_id", *base])
    con.execute(
        f"INSERT INTO device_features ({names}) VALUES ({', '.join(['?'] * (len(base) + 2))})", [epoch, device, *base.values()]
    )


def challenge(con, device: str, kind: str, status: str, tflops: float | None, batch: str, siblings: int = 0,
              epoch: str = EPOCH, ip: str | None = None, n: int | None = None, reachable: bool = True) -> None:  # fmt: skip
    n = MATMUL_N if n is None and kind == "matmul" else n
    con.execute(
        "INSERT INTO challenge_context VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'h', 'acc', 'a100_80gb_sxm', ?, ?, ?)",
        [epoch, f"{device}-{kind}-{batch}", device, batch, kind, status, tflops, ip or f"ip-{device}", siblings, n, reachable],
    )


def hour(h: int) -> str:
    return f"2024-08-14T{h:02d}"


MATMUL_N = 2048
"""The product size of the hand-made matmul challenges (speed is judged against peers per size)."""


def peers(con, median: float, devices: int = 50, n: int = MATMUL_N) -> None:
    """An honest fleet of ``devices`` A100s whose matmul products of size ``n`` run at ``median``
    (``model_peers`` too, which the reward stage and the anomaly score read)."""
    con.execute("INSERT INTO model_peers VALUES (?, 'a100_80gb_sxm', ?, ?, ?)", [EPOCH, devices, median, median * 1.05])
    for d in range(devices):
        for h in range(3):
            challenge(con, f"peer{d}", "matmul", "ok", median, f"p{h}", n=n)


def test_spoofed_model_needs_slow_against_spec_and_peers(con) -> None:
    peers(con, 265.0)
    for d, speed in (("t4_as_a100", 52.0), ("honest", 262.0), ("throttled", 110.0)):
        feature(con, d)
        for h in range(3):
            challenge(con, d, "matmul", "ok", speed, f"b{h}")
    for k, epoch in enumerate((EARLIER, hour(2), EPOCH)):
        challenge(con, "t4_as_a100", "vram", "error", None, f"v{k}", epoch=epoch)
    found = SpoofedModel().detect(Evidence(con, EPOCH))
    assert found["device_id"].to_list() == ["t4_as_a100"]
    assert found["action"][0] == "reject" and "17% of the spec" in found["reason"][0]


def test_spoofed_model_counts_vram_failures_over_two_days_where_the_backend_asks_twice_a_day(con) -> None:
    """A nineteenth network written by others asked for memory every ~13 hours: its cards without
    the claimed memory (RTX 3080s sold as 4090s, slices of one card each claiming all of it)
    failed every VRAM challenge, 3-4 in two days and never 3 in one day, and none was held.
    Failures count over ``vram_window_hours`` (48); a later pass still answers them, and the
    speed (and the peers) stay the last day's."""
    peers(con, 265.0)
    for d in ("short", "answered"):
        feature(con, d)
        for h in range(3):
            challenge(con, d, "matmul", "ok", 150.0, f"b{h}")  # 57% of its peers: not slow
        for k, epoch in enumerate(("2024-08-13T02", "2024-08-13T15", hour(4))):  # 26 hours, ~13 apart
            challenge(con, d, "vram", "error", None, f"v{k}", epoch=epoch, n=40_000)
    challenge(con, "answered", "vram", "ok", 150.0, "v-later", epoch=EPOCH, n=40_000)  # memory does not grow
    found = SpoofedModel().detect(Evidence(con, EPOCH))
    assert found["device_id"].to_list() == ["short"] and found["action"][0] == "probation"
    assert "3 VRAM challenge(s) at the claimed 81920 MiB failed over 26 hours" in found["reason"][0]
    assert SpoofedModel(vram_window_hours=24).detect(Evidence(con, EPOCH)).is_empty()


def test_spoofed_model_a_hot_card_at_a_quarter_of_spec_is_not_suspected_on_speed_alone(con) -> None:
    # throttling takes 45-70% off, heat a third more: an honest card at 23% of spec and 27% of its
    # peers is inside the honest model; the same speed backs a VRAM short into a rejection
    peers(con, 265.0)
    for d, speed in (("hot", 72.0), ("hot_short", 72.0), ("t4_as_a100", 52.0)):
        feature(con, d)
        for h in range(3):
            challenge(con, d, "matmul", "ok", speed, f"b{h}")
    challenge(con, "hot", "vram", "ok", None, "v1")
    for k, epoch in enumerate((EARLIER, hour(2), EPOCH)):
        challenge(con, "hot_short", "vram", "error", None, f"v{k}", epoch=epoch)
    found = {r["device_id"]: r for r in SpoofedModel().detect(Evidence(con, EPOCH)).iter_rows(named=True)}
    assert sorted(found) == ["hot_short", "t4_as_a100"]
    assert found["hot_short"]["action"] == "reject" and "23% of the spec" in found["hot_short"]["reason"]
    assert found["t4_as_a100"]["action"] == "probation" and "17% of the spec" in found["t4_as_a100"]["reason"]
    with pytest.raises(ValueError, match="slow_alone_ratio"):
        SpoofedModel(slow_ratio=0.3, slow_alone_ratio=0.35)


def test_spoofed_model_a_card_reporting_a_smaller_cards_memory_and_computing_like_one_is_established(con) -> None:
    """An RTX 3090 sold as an A100 80GB that keeps its own 24 GB in its report (a twenty-second
    network written by others: 21 such cards at 24% of their peers, none held) names a smaller
    card itself; with slowness (below ``slow_ratio``) that establishes the spoof. Either alone is
    nothing: a hot card at that speed with the model's memory, an RTX 3060 8 GB under the 12 GB
    card's name at full speed, a MIG instance or a vGPU guest reporting its share."""
    peers(con, 265.0)
    rows = {  # device -> (reported MiB, speed, extra columns)
        "keeps_24gb": (24576, 64.0, {}),
        "hot": (81920, 64.0, {}),
        "small_config": (24576, 262.0, {}),
        "mig_instance": (20096, 64.0, {"mig_mode": True}),
        "vgpu_guest": (20480, 64.0, {"virtualization_mode": "VGPU"}),
    }
    for d, (mib, speed, extra) in rows.items():
        feature(con, d, vram_total_mb=mib, **extra)
        for h in range(3):
            challenge(con, d, "matmul", "ok", speed, f"b{h}")
    found = {r["device_id"]: r for r in SpoofedModel().detect(Evidence(con, EPOCH)).iter_rows(named=True)}
    assert sorted(found) == ["keeps_24gb"]
    assert found["keeps_24gb"]["action"] == "reject" and json.loads(found["keeps_24gb"]["details"])["proof"] == "exact"
    assert "reports 24576 MiB of memory, where a a100_80gb_sxm has 81920 MiB" in found["keeps_24gb"]["reason"]
    assert json.loads(found["keeps_24gb"]["details"])["signs"] == ["slow", "memory_short"]


def test_spoofed_model_a_card_reporting_a_smaller_cards_memory_at_a_smaller_cards_pace_is_suspected(con) -> None:
    """A twenty-third network written by others sold RTX 4080s as 4090s with their own 16 GB in the
    report, at 61% of the 4090s' pace, and laptop cards as the desktop card at 39%: above the slow
    ratio, so 37 of 43 were never held. A smaller card's memory with a pace below ``short_pace``
    (0.75) of the honest peers is suspected (probation, never proof); a power-capped card at 85%
    with the model's memory is nothing, nor is a card that reports a smaller configuration at full
    pace, nor one whose known rental explains the pace."""
    peers(con, 265.0)
    rows = {"4080_as_4090": (24576, 160.0), "laptop": (16384, 104.0), "capped": (81920, 160.0),
            "small_config": (24576, 225.0), "rented_small": (24576, 160.0)}  # fmt: skip
    for d, (mib, speed) in rows.items():
        feature(con, d, vram_total_mb=mib)
        for h in range(3):
            challenge(con, d, "matmul", "ok", speed, f"b{h}")
    con.execute(
        "INSERT INTO jobs (job_id, client_account_id, device_id, created_at, started_at, ended_at, status, paid_usd, _hour, "
        "_file, _row) VALUES ('j1', 'renter', 'rented_small', TIMESTAMP '2024-08-14 01:00:00', TIMESTAMP '2024-08-14 01:00:00', "
        "TIMESTAMP '2024-08-14 04:00:00', 'completed', 6.0, ?, 'j.csv', 1)",
        [EPOCH],
    )
    found = {r["device_id"]: r for r in SpoofedModel().detect(Evidence(con, EPOCH)).iter_rows(named=True)}
    assert sorted(found) == ["4080_as_4090", "laptop"]
    for d in found:
        details = json.loads(found[d]["details"])
        assert found[d]["action"] == "probation" and details["proof"] == "suspicion" and details["signs"] == ["memory_short"]
    assert "reports 24576 MiB of memory, where a a100_80gb_sxm has 81920 MiB, and computes 160.0 TFLOPS at best, 60% of its 55 honest peers' median 265.0" in (
        found["4080_as_4090"]["reason"])  # fmt: skip
    assert SpoofedModel(short_pace=0.5).detect(Evidence(con, EPOCH))["device_id"].to_list() == ["laptop"]
    with pytest.raises(ValueError, match="short_pace"):
        SpoofedModel(short_pace=0.2)


def test_spoofed_model_one_wrong_catalogue_figure_cannot_flag_a_model(con) -> None:
    peers(con, 110.0)  # the whole honest fleet measures at 35% of the catalogue figure
    feature(con, "honest")
    for h in range(3):
        challenge(con, "honest", "matmul", "ok", 88.0, f"b{h}")  # 28% of spec, 80% of its peers
    assert SpoofedModel().detect(Evidence(con, EPOCH)).is_empty()


def test_spoofed_model_a_model_claimed_only_by_slow_cards_has_no_peers_to_hide_behind(con) -> None:
    peers(con, 60.0, devices=15)  # every "A100" on the network is a consumer card at 19% of spec
    feature(con, "farm")
    for h in range(3):
        challenge(con, "farm", "matmul", "ok", 58.0, f"b{h}")
    found = SpoofedModel().detect(Evidence(con, EPOCH))
    assert found["device_id"].to_list() == ["farm"] and found["action"][0] == "probation"


def test_spoofed_model_impossible_claim_suspects_and_unbacked_claim_rejects(con) -> None:
    peers(con, 265.0)
    feature(con, "too_big", vram_total_mb=200_000)  # above any A100, but nothing failed yet
    feature(con, "too_big_short", vram_total_mb=200_000)
    feature(con, "modded", vram_total_mb=200_000)  # answers a 160 GB product: more memory than the catalogue knows of
    challenge(con, "modded", "vram", "ok", 250.0, "v0", n=146_000)
    feature(con, "short")
    for d in ("too_big_short", "short"):  # failed over six hours: a card without the memory, not a session holding it
        for k, epoch in enumerate((EARLIER, hour(2), EPOCH)):
            challenge(con, d, "vram", "error", None, f"v{k}", epoch=epoch)
    found = {r["device_id"]: r for r in SpoofedModel().detect(Evidence(con, EPOCH)).iter_rows(named=True)}
    assert found["too_big"]["action"] == "probation" and "claims 200000 MiB" in found["too_big"]["reason"]
    assert found["too_big_short"]["action"] == "reject"
    assert found["short"]["action"] == "probation"
    assert "modded" not in found


def test_spoofed_model_what_fails_while_a_rental_runs_is_the_rental_and_a_rented_card_is_never_rejected(con) -> None:
    """A rental holds part of a card's memory and shares its time: a network written by others had
    honest datacenter cards fail 385 of 392 VRAM challenges while rented (and pass every one in
    between) and long-rented cards measured at a quarter of spec, rejected as spoofed. A VRAM
    challenge that fails while a known job ran on the device does not count; a device rented in
    the window is held, not rejected, on failures and slowness alone (a job still running is not
    in ``jobs`` until it ends, and it would explain both)."""
    peers(con, 265.0)
    for d in ("idle", "rented", "rented_other_hours"):
        feature(con, d)
        for k, epoch in enumerate((EARLIER, hour(2), EPOCH)):  # two VRAM failures six hours apart, and slow matmuls
            challenge(con, d, "vram", "error", None, f"v{k}", epoch=epoch)
            for m in range(2):
                challenge(con, d, "matmul", "ok", 60.0, f"m{k}{m}", epoch=epoch)
        for cid, epoch in [(f"{d}-vram-v{k}", e) for k, e in enumerate((EARLIER, hour(2), EPOCH))] + [
            (f"{d}-matmul-m{k}{m}", e) for k, e in enumerate((EARLIER, hour(2), EPOCH)) for m in range(2)
        ]:
            con.execute(
                "INSERT INTO pow (challenge_id, device_id, kind, issued_at, status, _hour, _file, _row) "
                "VALUES (?, ?, 'matmul', CAST(? AS TIMESTAMP) + INTERVAL 10 MINUTE, 'ok', ?, 'pow.csv', 1)",
                [cid, d, epoch.replace("T", " ") + ":00:00", epoch],
            )
    for k, (d, start, end) in enumerate((("rented", "2024-08-13 22:00:00", "2024-08-14 05:30:00"),
                                         ("rented_other_hours", "2024-08-14 01:00:00", "2024-08-14 02:00:00"),
                                         ("rented_other_hours", "2024-08-14 05:20:00", "2024-08-14 05:40:00"))):  # fmt: skip
        con.execute(
            "INSERT INTO jobs VALUES (?, 'client', ?, CAST(? AS TIMESTAMP), CAST(? AS TIMESTAMP), CAST(? AS TIMESTAMP), "
            "'completed', 12.5, ?, 'jobs.csv', 1)",
            [f"job-{d}-{k}", d, start, start, end, EPOCH],
        )
    found = {r["device_id"]: r for r in SpoofedModel().detect(Evidence(con, EPOCH)).iter_rows(named=True)}
    assert found["idle"]["action"] == "reject"
    assert "rented" not in found  # every failure and slow answer came while its job ran
    assert found["rented_other_hours"]["action"] == "probation"  # it failed between its rentals, when it was free
    assert "rented in the window" in found["rented_other_hours"]["reason"]
    assert json.loads(found["rented_other_hours"]["details"])["proof"] == "suspicion"


def test_spoofed_model_vram_failures_after_the_last_known_rental_are_a_job_still_running(con) -> None:
    """A heavily rented host is hired back to back, and its running job is not in ``jobs`` until
    it ends: two networks written by others had 147 of 149 and 70 of 71 of such hosts' failures
    outside known jobs after their last known rental (26 of 40 held). A failure after the last
    known rental is not counted on a card its known rentals kept busy a quarter of the day or more
    (such hosts' rentals covered a median 53-57% of it, those networks' rented spoofers' 2-10%),
    unless the card also failed between two known rentals, when it was provably free."""
    peers(con, 265.0)
    for d in ("heavy-renter", "spoofer", "rented-spoofer", "light-renter"):
        feature(con, d)
        for k, epoch in enumerate((EARLIER, hour(2), EPOCH)):
            challenge(con, d, "vram", "error", None, f"v{k}", epoch=epoch)
            con.execute(
                "INSERT INTO pow (challenge_id, device_id, kind, issued_at, status, _hour, _file, _row) "
                "VALUES (?, ?, 'vram', CAST(? AS TIMESTAMP) + INTERVAL 10 MINUTE, 'error', ?, 'pow.csv', 1)",
                [f"{d}-vram-v{k}", d, epoch.replace("T", " ") + ":00:00", epoch],
            )
    for d, start, end in (("heavy-renter", "2024-08-13 13:00:00", "2024-08-13 22:30:00"),
                          ("spoofer", "2024-08-13 13:00:00", "2024-08-13 22:30:00"),
                          ("spoofer", "2024-08-14 05:30:00", "2024-08-14 05:50:00"),
                          ("rented-spoofer", "2024-08-13 20:00:00", "2024-08-13 22:30:00"),
                          ("rented-spoofer", "2024-08-13 23:30:00", "2024-08-13 23:40:00"),
                          ("light-renter", "2024-08-13 20:00:00", "2024-08-13 22:30:00")):  # fmt: skip
        con.execute(
            "INSERT INTO jobs VALUES (?, 'client', ?, CAST(? AS TIMESTAMP), CAST(? AS TIMESTAMP), CAST(? AS TIMESTAMP), "
            "'completed', 12.5, ?, 'jobs.csv', 1)",
            [f"job-{d}-{start}", d, start, start, end, EPOCH],
        )
    found = SpoofedModel().detect(Evidence(con, EPOCH))
    assert found["device_id"].to_list() == ["light-renter", "rented-spoofer", "spoofer"]
    assert set(found["action"]) == {"probation"}
    assert json.loads(found["details"][1])["vram_failures_after_last_rental"] == 0
    con.execute("DELETE FROM jobs WHERE device_id = 'spoofer' AND started_at > TIMESTAMP '2024-08-14 00:00:00'")
    found = SpoofedModel().detect(Evidence(con, EPOCH))  # until its next rental shows, the same as the host
    assert found["device_id"].to_list() == ["light-renter", "rented-spoofer"]
    # rented 2.5 h of the day, a card is not likely rented now; at a tenth of the day it would be
    assert SpoofedModel(rented_share=0.10).detect(Evidence(con, EPOCH))["device_id"].to_list() == ["rented-spoofer"]


def test_spoofed_model_a_vram_failure_in_an_hour_the_card_ran_slow_is_a_card_in_use_not_missing_memory(con) -> None:
    """A rental shows in ``jobs`` only once it has ended: a fifth network written by others had
    its rented honest hosts held on two VRAM failures each while their jobs still ran. A card in
    use is slow that hour too (its matmul at 55% of its own speed); a card without the memory
    fails while it computes at its own pace."""
    peers(con, 265.0)
    for d, busy_speed in (("in_use", 145.0), ("short", 262.0)):
        feature(con, d)
        for h in (0, 1, 3, 4):  # its own pace, measured through the day
            challenge(con, d, "matmul", "ok", 262.0, f"m{h}", epoch=hour(h))
        for k, epoch in enumerate((EARLIER, hour(2), EPOCH)):  # three VRAM failures over six hours
            challenge(con, d, "vram", "error", None, f"v{k}", epoch=epoch)
            challenge(con, d, "matmul", "ok", busy_speed, f"b{k}", epoch=epoch)
    found = {r["device_id"]: r for r in SpoofedModel().detect(Evidence(con, EPOCH)).iter_rows(named=True)}
    assert sorted(found) == ["short"] and found["short"]["action"] == "probation"


def test_spoofed_model_a_vram_product_left_hanging_is_not_excused_by_the_slow_hour_it_causes(con) -> None:
    """A product paged through host memory keeps the card busy for minutes, and the hour's matmul
    crawls with it: unlike a failure, a hang in a slow hour still counts (spoofers that hang were
    paid twice as long on randomized networks while it was excused)."""
    peers(con, 265.0)
    n = 51_200
    challenge(con, "big_mac", "vram", "ok", 18.0, "v0", n=n)  # the backend accepted a 14.9 s answer
    feature(con, "pager")
    for h in (1, 2, 3):  # its own pace
        challenge(con, "pager", "matmul", "ok", 89.0, f"m{h}", epoch=hour(h))
    for k, epoch in enumerate((EARLIER, EPOCH)):  # hung, and the hour's matmul crawled behind it
        challenge(con, "pager", "vram", "timeout", None, f"v{k}", n=n, epoch=epoch)
        challenge(con, "pager", "matmul", "ok", 30.0, f"b{k}", epoch=epoch)
    found = SpoofedModel().detect(Evidence(con, EPOCH))
    assert found["device_id"].to_list() == ["pager"] and "2 unanswered" in found["reason"][0]


def test_spoofed_model_with_too_few_peers_the_spec_alone_proves_slowness_only_below_the_honest_floor(con) -> None:
    """Few honest devices claim the model, so the spec sheet alone judges speed. A card at 26% of
    its spec that also failed its VRAM challenges is held: busy honest cards reach that (a third
    network's rented H100s measured 26% of a spec their few idle peers reach 62% of, and one was
    rejected before its rental showed in ``jobs``). Below the honest floor of 20% it is proof."""
    peers(con, 200.0, devices=3)
    for d, speed in (("quarter", 82.0), ("tenth", 31.0)):  # of the A100's 312 TFLOPS spec
        feature(con, d)
        for k, epoch in enumerate((EARLIER, hour(2), EPOCH)):
            challenge(con, d, "vram", "error", None, f"v{k}", epoch=epoch)
            for m in range(2):
                challenge(con, d, "matmul", "ok", speed, f"m{k}{m}", epoch=epoch)
    found = {r["device_id"]: r for r in SpoofedModel().detect(Evidence(con, EPOCH)).iter_rows(named=True)}
    assert found["quarter"]["action"] == "probation" and "too few honest peers" in found["quarter"]["reason"]
    assert found["tenth"]["action"] == "reject"


def test_spoofed_model_vram_failures_must_beat_the_fleets_chance_error_rate(con) -> None:
    # the fleet errs on 1 matmul challenge in 100 (restarts, driver hiccups): two VRAM errors in a
    # row happen to an honest card with probability 1e-4, three with 1e-6 (vram_false_alarm 1e-5);
    # the fleet's ten devices are the model's honest peers too
    for i in range(100):
        challenge(con, f"fleet{i % 10}", "matmul", "error" if i == 0 else "ok", 260.0, f"f{i}")
    for d, failures in (("two_errors", 2), ("three_errors", 3)):
        feature(con, d)
        for k in range(failures):
            challenge(con, d, "vram", "error", None, f"v{k}", epoch=EARLIER if k == 0 else EPOCH)
    found = SpoofedModel().detect(Evidence(con, EPOCH))
    assert found["device_id"].to_list() == ["three_errors"] and found["action"][0] == "probation"
    assert "3 needed at the fleet's 1.00% error rate" in found["reason"][0]
    # (on a fleet that never errs three are needed all the same: test_spoofed_model_rented_hosts_...)


def test_spoofed_model_rented_hosts_two_vram_errors_on_a_fleet_that_never_errs_are_no_evidence_three_are(con) -> None:
    """Memory held by a rental (shown in ``jobs`` only once it ends) or a game fails VRAM
    challenges in sessions, not at the fleet's chance error rate: a fifth network written by
    others, its fleet erring on 0.18% of matmuls, had 11 rented honest hosts held on two errors
    each. Errors alone need at least ``min_vram_errors`` (3); hangs and crawls, which a card in
    use does not produce, need ``min_vram_failures`` (2)."""
    peers(con, 265.0)
    for i in range(100):
        challenge(con, f"fleet{i % 10}", "matmul", "ok", 260.0, f"f{i}")
    for d, epochs in (("two_errors", (EARLIER, EPOCH)), ("three_errors", (EARLIER, hour(2), EPOCH))):
        feature(con, d)
        for k, epoch in enumerate(epochs):
            challenge(con, d, "vram", "error", None, f"v{k}", epoch=epoch)
    found = SpoofedModel().detect(Evidence(con, EPOCH))
    assert found["device_id"].to_list() == ["three_errors"] and found["action"][0] == "probation"
    assert "3 needed at the fleet's 0.00% error rate" in found["reason"][0]
    assert SpoofedModel(min_vram_errors=2).detect(Evidence(con, EPOCH))["device_id"].to_list() == ["three_errors", "two_errors"]


def test_spoofed_model_vram_failures_within_one_session_are_a_card_in_use_not_a_card_without_memory(con) -> None:
    """A game or a training run holds part of a card's memory for hours, and every VRAM challenge
    of that session fails (an independently written network's gamers failed two in one session's
    first hours and passed later). A card without the memory fails whenever it is asked: failures
    count once they span ``vram_span_hours``, and a pass of their size clears the card."""
    peers(con, 265.0)
    for d, first in (("one_session", "2024-08-14T01"), ("hours_apart", EARLIER), ("passed_later", EARLIER)):
        feature(con, d)
        challenge(con, d, "vram", "error", None, "v1", epoch=first)
        challenge(con, d, "vram", "error", None, "v2", epoch=hour(3))
        challenge(con, d, "vram", "error", None, "v3")
    challenge(con, "passed_later", "vram", "ok", None, "v4")
    found = SpoofedModel().detect(Evidence(con, EPOCH))
    assert found["device_id"].to_list() == ["hours_apart"] and found["action"][0] == "probation"
    assert "failed over 6 hours" in found["reason"][0]
    assert SpoofedModel(vram_span_hours=4).detect(Evidence(con, EPOCH))["device_id"].to_list() == ["hours_apart", "one_session"]


def test_spoofed_model_judges_speed_under_the_model_claimed_now_so_an_upgraded_slot_is_not_slow(con) -> None:
    """An owner swapped a T4 for an A100 in one slot (the device id stays; a fourth network
    written by others had twelve such upgrades and RMAs). Before the new card was measured, the
    day's best speed was the T4's, 17% of the A100's spec, and the upgraded card was held as a
    spoof. Speed is measured while the device claimed the model it claims now; a T4 claiming an
    A100 all day is still slow."""
    peers(con, 265.0)
    for d in ("upgraded", "t4_as_a100"):
        feature(con, d)
        for h in range(3):
            challenge(con, d, "matmul", "ok", 52.0, f"old{h}", epoch=EARLIER)
    con.execute("UPDATE challenge_context SET catalogue_model = 't4' WHERE device_id = 'upgraded'")
    assert SpoofedModel().detect(Evidence(con, EPOCH))["device_id"].to_list() == ["t4_as_a100"]
    for h in range(3):  # the new card measured: an A100's speed
        challenge(con, "upgraded", "matmul", "ok", 262.0, f"new{h}")
    assert SpoofedModel().detect(Evidence(con, EPOCH))["device_id"].to_list() == ["t4_as_a100"]


def test_spoofed_model_a_card_holds_the_largest_product_it_answered_and_fails_above_it_short(con) -> None:
    """The contract leaves a VRAM challenge's share of the claimed memory to the backend, and an
    independently written one sized them to a quarter, a third or half of it, and its A100 40GB
    sold as the 80GB model (and 4080s sold as 4090s) answered the small ones and failed the
    large ones, while any pass cleared a card. A pass backs the memory it used, not the claim:
    failures at sizes above the largest product the card answered count; one pass at the larger
    size clears it, as before."""
    peers(con, 265.0)
    quarter, half = 51_200, 72_400  # 8 n^2 bytes: a quarter and a half of 80 GB
    for d, passes_half in (("a100_40gb_as_80gb", False), ("busy_once", True)):
        feature(con, d)
        for h, epoch in enumerate((EARLIER, hour(2), EPOCH)):
            challenge(con, d, "vram", "ok", 250.0, f"q{h}", n=quarter, epoch=epoch)
            challenge(con, d, "vram", "error", None, f"h{h}", n=half, epoch=epoch)
        if passes_half:
            challenge(con, d, "vram", "ok", 250.0, "h2", n=half)
    found = SpoofedModel().detect(Evidence(con, EPOCH))
    assert found["device_id"].to_list() == ["a100_40gb_as_80gb"] and found["action"][0] == "probation"
    held = "3 VRAM challenge(s) at the claimed 81920 MiB failed over 6 hours, each larger than the 20000 MiB it held"
    assert held in found["reason"][0]
    assert json.loads(found["details"][0])["vram_largest_held_mib"] == 20000


def test_spoofed_model_a_mac_failing_products_above_what_macos_lets_its_gpu_wire_is_no_spoof(con) -> None:
    """Unified memory is the system's: macOS wires about two thirds of it to the GPU and apps hold
    part of that. A sixth network written by others sized VRAM challenges up to 85% of a Mac's
    claimed memory; honest Macs failed a quarter of those above two thirds, and two were held.
    A Mac claiming twice its memory still fails products well below that share."""
    mac = dict(gpu_model="Apple M3 Max", catalogue_model="apple_m3_max", spec_tflops=14.32, tflops_median=14.0)

    def n_for(share: float, claim_mb: int) -> int:  # a product of 8 n^2 bytes filling `share` of the claim
        return int((share * claim_mb * 1048576 / 8) ** 0.5)

    feature(con, "honest-mac", vram_total_mb=65536, **mac)
    feature(con, "mac-claiming-128gb", vram_total_mb=131072, **mac)  # a 64 GB machine
    for h, epoch in enumerate((EARLIER, hour(2), EPOCH)):
        challenge(con, "honest-mac", "vram", "ok", None, f"a{h}", n=n_for(0.6, 65536), epoch=epoch)
        challenge(con, "honest-mac", "vram", "error", None, f"b{h}", n=n_for(0.75 + 0.04 * h, 65536), epoch=epoch)
        challenge(con, "mac-claiming-128gb", "vram", "ok", None, f"a{h}", n=n_for(0.3, 131072), epoch=epoch)
        challenge(con, "mac-claiming-128gb", "vram", "error", None, f"b{h}", n=n_for(0.55, 131072), epoch=epoch)
    found = SpoofedModel().detect(Evidence(con, EPOCH))
    assert found["device_id"].to_list() == ["mac-claiming-128gb"] and found["action"][0] == "probation"
    assert "3 VRAM challenge(s) at the claimed 131072 MiB failed" in found["reason"][0]
    assert SpoofedModel(unified_gpu_share=1.0).detect(Evidence(con, EPOCH))["device_id"].sort().to_list() == [
        "honest-mac", "mac-claiming-128gb"]  # fmt: skip


def test_spoofed_model_a_timing_as_fast_on_products_too_small_to_fill_a_card_as_on_large_ones_is_computed(con) -> None:
    """Every card's efficiency falls on small products (the call's fixed cost, tiles that do not
    fill it). A twelfth network written by others had cracked workers answer only the sampled
    entries (right) on the CPU and sleep 2n^3/spec: at 2.0-2.9x their honest peers on its
    smallest products and about the spec everywhere. Such a flat timing is suspected; an honest
    card a tenth faster than its peers at every size, and a larger card sold as a smaller one
    (faster everywhere, still slower on small products), are not."""
    curve = {1024: 60.0, 2048: 150.0, 8192: 260.0}  # the honest A100s' speed by product size
    for d in range(12):
        feature(con, f"a100-{d}")
        for n, speed in curve.items():
            for h in range(3):
                challenge(con, f"a100-{d}", "matmul", "ok", speed * (1 + 0.01 * (d % 5)), f"p{d}-{n}-{h}", n=n)
    speeds = {"cracked": {n: 306.0 for n in curve}, "quick": {n: 1.12 * t for n, t in curve.items()},
              "bigger": {1024: 110.0, 2048: 300.0, 8192: 560.0}}  # fmt: skip
    for d, by_n in speeds.items():
        feature(con, d)
        for n, speed in by_n.items():
            for h in range(3):
                challenge(con, d, "matmul", "ok", speed, f"{d}-{n}-{h}", n=n)
    found = SpoofedModel().detect(Evidence(con, EPOCH))
    assert found["device_id"].to_list() == ["cracked"] and found["action"][0] == "probation"
    assert "answers products of n = 1024 at 306.0 TFLOPS, 5.0x its 15 honest peers' median" in found["reason"][0]
    details = json.loads(found["details"][0])
    assert details["proof"] == "suspicion" and details["signs"] == ["flat_timing"] and details["flat_best_n"] == 8192


def test_spoofed_model_a_rented_fleet_slower_than_its_best_at_its_one_product_size_has_no_flat_timing(con) -> None:
    """A twenty-fourth network written by others asked datacenter cards one matmul size and kept
    them rented two hours in three: their typical answer ran at 0.6-0.7 of their own best there,
    so that size read as one too small to fill a card, and 63 honest cards answering at their best
    were held for a computed timing. The size the fleet does best at, or a larger one, fills the
    card: only a smaller one can show a flat timing."""
    for d in range(12):  # rented most hours: 150 typical, 260 at best
        feature(con, f"a100-{d}")
        for h, speed in enumerate((150.0, 150.0, 150.0, 260.0, 150.0)):
            challenge(con, f"a100-{d}", "matmul", "ok", speed * (1 + 0.01 * (d % 5)), f"p{d}-{h}", n=8192)
    feature(con, "idle")  # a card of the fleet rented less: at its best most hours
    for h, speed in enumerate((262.0, 258.0, 150.0, 261.0, 259.0)):
        challenge(con, "idle", "matmul", "ok", speed, f"idle-{h}", n=8192)
    assert SpoofedModel().detect(Evidence(con, EPOCH)).is_empty()


def test_spoofed_model_a_card_that_passed_earlier_in_the_window_and_failed_after_it_was_swapped_for_a_smaller_one(con) -> None:
    """A sleeper builds a clean streak on a 4090, then swaps it for a 3070 under the same identity
    (a sixteenth network written by others: 6 of 16 never held). The day's passes from before the
    swap backed the failures after it, and the new card's pace, a quarter of the old one's, read as
    a card in use. Memory does not grow: a pass backs the failures in its hour and before it, not
    those after it. A card in use gets its speed back when the session ends; a swapped one never
    does. Failures followed by a pass of their size, or by hours at the card's own speed, were a
    card in use, as before."""
    peers(con, 265.0)
    for d in ("swapped", "passed_after", "gamer"):
        feature(con, d)
        challenge(con, d, "vram", "ok", None, "v0", epoch="2024-08-13T20")
        for h in (20, 21, 22):  # the streak at its own pace
            challenge(con, d, "matmul", "ok", 262.0, f"s{h}", epoch=f"2024-08-13T{h}")
        for k, epoch in enumerate((EARLIER, hour(2), EPOCH)):  # three VRAM failures over six hours, each in a slow hour
            challenge(con, d, "vram", "error", None, f"v{k + 1}", epoch=epoch)
            challenge(con, d, "matmul", "ok", 75.0, f"b{k}", epoch=epoch)
        for h in (0, 1, 3, 4):  # between them: the swapped card stays slow, the gamer's session has ended
            challenge(con, d, "matmul", "ok", 262.0 if d == "gamer" else 75.0, f"m{h}", epoch=hour(h))
    challenge(con, "passed_after", "vram", "ok", None, "v4")
    found = SpoofedModel().detect(Evidence(con, EPOCH))
    assert found["device_id"].to_list() == ["swapped"] and found["action"][0] == "probation"
    assert "3 VRAM challenge(s) at the claimed 81920 MiB failed over 6 hours" in found["reason"][0]


def test_spoofed_model_a_mac_failing_under_memory_pressure_as_often_as_the_macs_around_it_is_no_spoof(con) -> None:
    """Unified memory is the apps' too: a twelfth network written by others had its honest Macs
    fail 9.5% of VRAM challenges well below the share macOS wires (a browser, an editor), and
    nine were held on three failures above what each had held that day, judged at the discrete
    fleet's 0.57% matmul error rate. On a system-on-chip the failures are judged at the rarer of
    that rate and the honest Macs' own VRAM failure rate: a Mac failing three of five is one of
    them, a Mac claiming twice its memory that fails every product above what it has is not."""
    mac = dict(gpu_model="Apple M2", catalogue_model="apple_m2", spec_tflops=3.6, tflops_median=3.4)
    day = [f"2024-08-13T{h:02d}" for h in range(6, 24)] + [hour(h) for h in range(6)]

    def n_for(share: float, claim_mb: int) -> int:  # a product of 8 n^2 bytes filling `share` of the claim
        return int((share * claim_mb * 1048576 / 8) ** 0.5)

    for d in range(20):  # the Macs around it: one VRAM challenge in ten fails under pressure
        feature(con, f"mac{d}", vram_total_mb=8192, **mac)
        for k in range(5):
            status = "error" if (5 * d + k) % 10 == 3 else "ok"
            challenge(con, f"mac{d}", "vram", status, None, f"m{d}-{k}", n=n_for(0.3, 8192), epoch=day[5 * k])
    feature(con, "busy-mac", vram_total_mb=8192, **mac)
    for k, (share, status) in enumerate([(0.25, "ok"), (0.45, "error"), (0.2, "ok"), (0.5, "error"), (0.55, "error")]):
        challenge(con, "busy-mac", "vram", status, None, f"b{k}", n=n_for(share, 8192), epoch=day[5 * k + 1])
    feature(con, "mac-claiming-16gb", vram_total_mb=16384, **mac)  # an 8 GB machine: what it wires is ~5.3 GB
    for k in range(10):
        share, status = (0.2, "ok") if k % 5 == 0 else (0.45, "error")
        challenge(con, "mac-claiming-16gb", "vram", status, None, f"s{k}", n=n_for(share, 16384), epoch=day[2 * k + 2])
    found = SpoofedModel().detect(Evidence(con, EPOCH))
    assert found["device_id"].to_list() == ["mac-claiming-16gb"] and found["action"][0] == "probation"
    assert "8 VRAM challenge(s) at the claimed 16384 MiB failed" in found["reason"][0]
    assert "needed at the unified-memory fleet's" in found["reason"][0]
    details = json.loads(found["details"][0])
    assert details["vram_failures_needed"] == 7 and 0.15 < details["fleet_error_rate"] < 0.2


def test_spoofed_model_vram_challenges_left_unanswered_while_alive_count_unless_its_speed_explains_them(con) -> None:
    """A card without the memory may hang (paging to host memory) instead of failing: a VRAM
    challenge that times out while the device answers pings and heartbeats, whose product its
    own measured speed finishes in a quarter of the longest VRAM answer the backend accepted,
    counts like a failure. Downtime and a slow card's long product do not, a pass of its size clears the
    card, and an unanswered challenge is suspicion only (probation, never a rejection)."""
    peers(con, 265.0)
    n = 51_200  # a quarter of 80 GB in three fp16 matrices
    challenge(con, "big_mac", "vram", "ok", 18.0, "v0", n=n)  # accepted after 2 n^3 / 18 TFLOPS = 14.9 s
    for d, speed, reachable, passes in (
        ("rtx4090_as_a100", 89.0, True, False),  # its own speed: 3.0 s, x 4 = 12.1 s <= 14.9 s
        ("switched_off", 262.0, False, False),  # down when asked: downtime, not a short memory
        ("slow_card", 60.0, True, False),  # 4.5 s x 4 = 17.9 s: the deadline may be what it missed
        ("passed_once", 262.0, True, True),
    ):
        feature(con, d)
        for h in range(3):
            challenge(con, d, "matmul", "ok", speed, f"b{h}")
        challenge(con, d, "vram", "timeout", None, "v1", n=n, reachable=reachable, epoch=EARLIER)
        challenge(con, d, "vram", "timeout", None, "v2", n=n, reachable=reachable)
        if passes:
            challenge(con, d, "vram", "ok", 250.0, "v3", n=n)
    found = SpoofedModel().detect(Evidence(con, EPOCH))
    assert found["device_id"].to_list() == ["rtx4090_as_a100"] and found["action"][0] == "probation"
    assert (
        "2 VRAM challenge(s) at the claimed 81920 MiB over 6 hours, none backed while the device was seen alive: 2 unanswered, "
        "though its own speed finishes one in 3.0 s and the backend accepted a VRAM answer that took 14.9 s"
    ) in found["reason"][0]
    evidence = json.loads(found["details"][0])
    assert evidence["proof"] == "suspicion" and evidence["vram_unanswered_alive"] == 2
    # slow as well (below 0.4 of spec and peers): still suspicion, an unanswered challenge proves no memory missing
    slow_too = SpoofedModel(slow_ratio=0.4).detect(Evidence(con, EPOCH))
    assert slow_too["device_id"].to_list() == ["rtx4090_as_a100"] and slow_too["action"][0] == "probation"
    assert SpoofedModel(vram_timeout_margin=6).detect(Evidence(con, EPOCH)).is_empty()  # 3.0 s x 6 > 14.9 s
    with pytest.raises(ValueError, match="vram_timeout_margin"):
        SpoofedModel(vram_timeout_margin=0.5)


def test_spoofed_model_vram_challenges_left_unanswered_after_a_pass_of_their_size_are_backed_by_it(con) -> None:
    """Only VRAM errors are held to the passes after them (a card swapped for a smaller one
    errs after its last pass). A hang is backed by any pass of its size in the window, before it
    too: a box whose pings a proxy answers while it is off leaves its challenges unanswered after
    days of passes, which is ``spoofed_uptime``'s to judge, not a short card (the randomized
    networks' uptime spoofers were typed ``spoofed_model`` while hangs were held to later passes)."""
    peers(con, 265.0)
    n = 51_200
    challenge(con, "big_mac", "vram", "ok", 18.0, "v0", n=n)  # the backend accepted a 14.9 s answer
    for d, passed_before in (("passed_before", True), ("never_passed", False)):
        feature(con, d)
        for h in range(3):
            challenge(con, d, "matmul", "ok", 89.0, f"b{h}")
        if passed_before:
            challenge(con, d, "vram", "ok", 250.0, "v0", n=n, epoch="2024-08-13T20")
        challenge(con, d, "vram", "timeout", None, "v1", n=n, epoch=EARLIER)
        challenge(con, d, "vram", "timeout", None, "v2", n=n)
    found = SpoofedModel().detect(Evidence(con, EPOCH))
    assert found["device_id"].to_list() == ["never_passed"]


def test_spoofed_model_a_vram_product_answered_at_host_memorys_pace_is_not_backed(con) -> None:
    """A card short of the claimed memory can answer from host memory (unified-memory
    oversubscription), at a small fraction of its own speed. An honest card's VRAM product runs
    at its matmul pace; a game or a rental sharing it slows it by up to about three (0.30 of its
    own speed was the slowest honest answer on an independently written network): an answer
    alone at under a quarter of the device's own p90 speed is not a pass. In a batch with
    siblings on its address, slowness is contention (``virtualized_gpu``'s), not memory."""
    peers(con, 265.0)
    for d, vram_speed, siblings in (("rtx4090_as_h100", 5.0, 0), ("gamer", 80.0, 0), ("sliced", 5.0, 3)):
        feature(con, d)
        for h in range(3):
            challenge(con, d, "matmul", "ok", 260.0, f"b{h}")
        challenge(con, d, "vram", "ok", vram_speed, "v1", siblings=siblings, epoch=EARLIER, n=MATMUL_N)
        challenge(con, d, "vram", "ok", vram_speed, "v2", siblings=siblings, n=MATMUL_N)
    found = SpoofedModel().detect(Evidence(con, EPOCH))
    assert found["device_id"].to_list() == ["rtx4090_as_h100"] and found["action"][0] == "probation"
    assert "2 answered alone at 2% of its own speed or less (the pace of host memory)" in found["reason"][0]
    assert json.loads(found["details"][0])["vram_crawled_answers"] == 2


def test_spoofed_model_chance_is_the_honest_fleets_not_that_of_devices_already_held(con) -> None:
    """The failures needed come from the fleet's chance rate; devices held or rejected in the
    window (uptime spoofers whose challenges all time out) are left out of it, or a network's
    own fraud would raise the bar for every other fraud."""
    peers(con, 265.0)
    for i in range(200):  # an honest fleet that never fails
        challenge(con, f"fleet{i % 20}", "matmul", "ok", 260.0, f"f{i}")
    for i in range(20):  # a spoofer of uptime: every challenge unanswered while "alive"
        challenge(con, "uptime_spoofer", "matmul", "timeout", None, f"u{i}")
    feature(con, "rtx3080_as_4090")
    for h in range(3):
        challenge(con, "rtx3080_as_4090", "matmul", "ok", 200.0, f"b{h}")
    for k, epoch in enumerate((EARLIER, "2024-08-14T02", EPOCH)):
        challenge(con, "rtx3080_as_4090", "vram", "timeout", None, f"v{k}", n=20_000, epoch=epoch)
    challenge(con, "big_mac", "vram", "ok", 18.0, "v9", n=51_200)
    assert SpoofedModel().detect(Evidence(con, EPOCH)).is_empty()  # 20 of 223 fail: 9%, 5 needed
    con.execute(
        "INSERT INTO evidence VALUES ('2024-08-14T04', 'uptime_spoofer', 'acc', 'spoofed_uptime', 'spoofed_uptime', 0.9, "
        "'probation', 'heartbeats while pings fail', NULL)"
    )
    found = SpoofedModel().detect(Evidence(con, EPOCH))
    assert found["device_id"].to_list() == ["rtx3080_as_4090"]
    assert "2 needed at the fleet's 0.00% rate" in found["reason"][0]


def test_spoofed_model_refuses_a_vram_false_alarm_rate_or_a_share_that_is_not_a_probability() -> None:
    # 0 would need infinitely many failures (ln 0) and fail inside the detect stage instead
    for bad in (0.0, -1e-5, 1.5):
        with pytest.raises(ValueError, match="vram_false_alarm"):
            SpoofedModel(vram_false_alarm=bad)
    for name, bad in (("unified_gpu_share", 0.0), ("unified_gpu_share", 1.2), ("rented_share", -0.1), ("rented_share", 2.0),
                      ("flat_fill", 0.0), ("flat_fill", 0.95), ("flat_share", 1.5)):  # fmt: skip
        with pytest.raises(ValueError, match=name):
            SpoofedModel(**{name: bad})


@pytest.mark.parametrize(
    ("card", "configurations_mb", "impossible_mb", "top_mb"),
    [
        # an M2 with 16 GB reports about two thirds of it; the base M2 has 8 GB, the largest 24 GB
        (dict(gpu_model="Apple M2", catalogue_model="apple_m2", spec_tflops=3.6, tflops_median=3.1), (10922, 17203), 65536, 24576),
        # NVML names the 10 GB and the 12 GB RTX 3080 alike: the 12 GB card is a configuration
        (dict(gpu_model="NVIDIA GeForce RTX 3080", catalogue_model="rtx_3080", spec_tflops=59.5, tflops_median=41.0),
         (10240, 12288), 16384, 12288),
    ],
    ids=["apple_m2_unified_memory", "rtx_3080_10_or_12_gb"],
)  # fmt: skip
def test_spoofed_model_a_memory_configuration_of_the_model_is_no_spoof_more_than_any_has_is(
    con, card: dict, configurations_mb: tuple[int, ...], impossible_mb: int, top_mb: int
) -> None:
    model = card["catalogue_model"]
    claims = {f"{model}_{mb}": mb for mb in (*configurations_mb, impossible_mb)}
    for device, mb in claims.items():
        feature(con, device, vram_total_mb=mb, **card)
        challenge(con, device, "vram", "ok", None, "v1")
    found = SpoofedModel().detect(Evidence(con, EPOCH))
    assert found["device_id"].to_list() == [f"{model}_{impossible_mb}"]
    assert found["action"][0] == "probation" and f"no {model} has more than {top_mb} MiB" in found["reason"][0]


def test_virtualized_gpu_contention_vram_all_but_one_in_two_hours(con) -> None:
    for epoch in ("2024-08-14T04", EPOCH):
        for d in ("s1", "s2", "s3"):
            challenge(con, d, "vram", "ok" if d == "s1" else "error", None, f"v{epoch}", siblings=2, ip="1.2.3.4", epoch=epoch)
        for d in ("t1", "t2", "t3"):  # a card short of memory: every VRAM challenge fails, not contention
            challenge(con, d, "vram", "error", None, f"w{epoch}", siblings=2, ip="5.6.7.8", epoch=epoch)
        for d in ("h1", "h2", "h3"):  # honest neighbours: all pass
            challenge(con, d, "vram", "ok", None, f"x{epoch}", siblings=2, ip="9.9.9.9", epoch=epoch)
    # h4 fails its VRAM challenge alone too (its own memory is busy): not contention
    for epoch in ("2024-08-14T04", EPOCH):
        challenge(con, "h4", "vram", "error", None, f"y{epoch}", siblings=1, ip="8.8.8.8", epoch=epoch)
        challenge(con, "h5", "vram", "ok", None, f"y{epoch}", siblings=1, ip="8.8.8.8", epoch=epoch)
    challenge(con, "h4", "vram", "error", None, "alone", epoch="2024-08-14T03", ip="8.8.8.8")
    for d in ("s1", "s2", "s3", "t1", "t2", "t3", "h1", "h2", "h3", "h4", "h5"):
        feature(con, d, ip={"s": "1.2.3.4", "t": "5.6.7.8", "h": "9.9.9.9"}[d[0]] if d not in ("h4", "h5") else "8.8.8.8")
    found = VirtualizedGpu().detect(Evidence(con, EPOCH))
    assert sorted(found["device_id"]) == ["s1", "s2", "s3"]
    assert set(found["action"]) == {"probation"} and "2 VRAM challenge(s) failed, exactly 1 passed" in found["reason"][0]
    assert "contention in 2 of 2 co-batched hours" in found["reason"][0]


def test_virtualized_gpu_one_hour_of_contention_is_not_evidence(con) -> None:
    for d in ("a", "b"):
        feature(con, d, ip="1.1.1.1")
        challenge(con, d, "matmul", "ok", 130.0, f"solo-{d}", epoch="2024-08-14T04", ip="1.1.1.1")
        challenge(con, d, "matmul", "ok", 64.0, "together", siblings=1, ip="1.1.1.1")
    assert VirtualizedGpu().detect(Evidence(con, EPOCH)).is_empty()


def test_virtualized_gpu_matmul_slowdown_against_solo_speed(con) -> None:
    for d in ("a", "b"):
        feature(con, d, ip="1.1.1.1")
        challenge(con, d, "matmul", "ok", 130.0, f"solo-{d}", epoch="2024-08-14T01", ip="1.1.1.1")
        for h, speed in ((2, 66.0), (3, 63.0), (4, 61.0), (5, 64.0)):
            challenge(con, d, "matmul", "ok", speed, f"together-{h}", siblings=1, epoch=hour(h), ip="1.1.1.1")
    for d in ("c", "e"):  # honest pair: same speed together
        feature(con, d, ip="2.2.2.2")
        challenge(con, d, "matmul", "ok", 130.0, f"solo-{d}", epoch="2024-08-14T01", ip="2.2.2.2")
        for h in (2, 3, 4, 5):
            challenge(con, d, "matmul", "ok", 128.0, f"pair-{h}", siblings=1, epoch=hour(h), ip="2.2.2.2")
    found = VirtualizedGpu().detect(Evidence(con, EPOCH))
    assert sorted(found["device_id"]) == ["a", "b"] and set(found["action"]) == {"reject"}
    assert '"proof": "statistical"' in found["details"][0].replace('":"', '": "')


def test_virtualized_gpu_throttled_pair_behind_one_ip_is_not_contention(con) -> None:
    # two honest cards at home, batched together every hour; one runs hot at 60-67% of its solo speed
    for d, speeds in (("cool", (128.0, 131.0, 126.0, 129.0)), ("hot", (80.0, 78.0, 86.0, 79.0))):
        feature(con, d, ip="7.7.7.7", host_fingerprint="one-case")
        challenge(con, d, "matmul", "ok", 130.0, f"solo-{d}", epoch="2024-08-14T01", ip="7.7.7.7")
        for h, speed in zip((2, 3, 4, 5), speeds):
            challenge(con, d, "matmul", "ok", speed, f"home-{h}", siblings=1, epoch=hour(h), ip="7.7.7.7")
    # both throttled by a third in the same hours still compute like more than one card
    for d in ("warm1", "warm2"):
        feature(con, d, ip="6.6.6.6")
        challenge(con, d, "matmul", "ok", 130.0, f"solo-{d}", epoch="2024-08-14T01", ip="6.6.6.6")
        for h in (2, 3, 4, 5):
            challenge(con, d, "matmul", "ok", 87.0, f"warm-{h}", siblings=1, epoch=hour(h), ip="6.6.6.6")
    # heat and noise line up once in four co-batched hours: one card's worth of work, once
    for d, speeds in (("x1", (70.0, 120.0, 125.0, 118.0)), ("x2", (72.0, 110.0, 90.0, 121.0))):
        feature(con, d, ip="5.5.5.5")
        challenge(con, d, "matmul", "ok", 130.0, f"solo-{d}", epoch="2024-08-14T01", ip="5.5.5.5")
        for h, speed in zip((2, 3, 4, 5), speeds):
            challenge(con, d, "matmul", "ok", speed, f"x-{h}", siblings=1, epoch=hour(h), ip="5.5.5.5")
    assert VirtualizedGpu().detect(Evidence(con, EPOCH)).is_empty()


def test_virtualized_gpu_a_card_slow_only_when_others_are_challenged_with_it_is_held_and_a_busy_card_is_not(con) -> None:
    """Clones of one card behind proxies share no IP, host or identifier, and a rig's hidden slices
    sit beside real cards on one IP; networks written by others showed both only in their batches:
    a third of their lone pace whenever the others were challenged at the same instant, full pace
    alone in the same hour. A game, a rental or heat slows the lone challenge of that hour as well;
    an owner who games now and then beside its own case-mates is as often slow alone as in a batch;
    one slow batch is noise."""
    shapes = {
        "clone": [(130.0, 45.0)] * 4,  # (lone challenge, batched challenge) per hour
        "gamer": [(60.0, 45.0)] * 3 + [(130.0, 128.0)],  # busy hours: the lone challenge is slow too
        "once": [(130.0, 45.0)] + [(130.0, 127.0)] * 3,
        "stranger": [(130.0, 129.0)] * 4,
    }
    for d, hours in shapes.items():
        feature(con, d)
        for h, (lone, batched) in zip((2, 3, 4, 5), hours):
            challenge(con, d, "matmul", "ok", lone, None, epoch=hour(h))
            challenge(con, d, "matmul", "ok", batched, f"cohort-{h}", epoch=hour(h))
    feature(con, "slice", ip="4.4.4.4")  # a hidden slice beside a real card of its rig: slow in every batch
    for h in (2, 3, 4, 5):
        challenge(con, "slice", "matmul", "ok", 130.0, None, epoch=hour(h), ip="4.4.4.4")
        challenge(con, "slice", "matmul", "ok", 45.0, f"cohort-{h}", siblings=1, epoch=hour(h), ip="4.4.4.4")
        challenge(con, "rig-card", "matmul", "ok", 130.0, f"cohort-{h}", siblings=1, epoch=hour(h), ip="4.4.4.4")
    # an owner who games at odd times beside a card of its own: slow in 4 of 8 batches, and in half of
    # its lone challenges too
    feature(con, "player", ip="8.8.8.8")
    for k, epoch in enumerate(["2024-08-13T22", "2024-08-13T23", *(hour(h) for h in range(6))]):
        challenge(con, "player", "matmul", "ok", 130.0, None, epoch=epoch, ip="8.8.8.8")
        challenge(con, "player", "matmul", "ok", 50.0, None, epoch=epoch, ip="8.8.8.8")
        challenge(con, "player", "matmul", "ok", 45.0 if k % 2 else 128.0, f"mates-{k}", 1, epoch=epoch, ip="8.8.8.8")
        challenge(con, "player-mate", "matmul", "ok", 130.0, f"mates-{k}", 1, epoch=epoch, ip="8.8.8.8")
    found = VirtualizedGpu().detect(Evidence(con, EPOCH))
    assert found["device_id"].to_list() == ["clone", "slice"] and set(found["action"]) == {"probation"}
    assert "35% of its own lone pace in 4 of 4 batches shared with devices elsewhere" in found["reason"][0]
    assert "35% of its own lone pace in 4 of 4 batches (first 2024-08-14T02)" in found["reason"][1]
    assert "alone that slow in 0 of 4 challenges" in found["reason"][1]
    assert json.loads(found["details"][1])["proof"] == "suspicion"


def test_virtualized_gpu_a_batch_slow_together_every_hour_is_cards_shared_and_a_busy_host_or_a_cafe_is_not(con) -> None:
    """Six "cards" backed by two (a network written by others): each runs at a third of its solo
    pace whenever the six are challenged together, full pace alone, and together they still compute
    like two cards, more than ``combined_max``. That network never challenged a device alone and in
    a batch in one hour, so the lone challenges come in other hours here. Honest look-alikes: a
    gamer's three cards, or a host rented whole, slow together for hours and as often alone; a cafe
    whose gamers slow some of its PCs, never every one at once."""
    hours = [f"2024-08-13T{h:02d}" for h in range(10, 24)] + [hour(h) for h in range(6)]  # 20 hours, EPOCH last
    groups = {"farm": ("10.0.0.1", 6), "busy": ("10.0.0.2", 3), "cafe": ("10.0.0.3", 6)}
    for name, (ip, k) in groups.items():
        for i in range(k):
            feature(con, f"{name}{i}", ip=ip)
    for j, epoch in enumerate(hours):
        if j % 4 == 0:  # a lone challenge every fourth hour: the busy host is slow in two of its five
            for name, (ip, k) in groups.items():
                for i in range(k):
                    slow = name == "busy" and j in (4, 12)
                    challenge(con, f"{name}{i}", "matmul", "ok", 50.0 if slow else 130.0, None, epoch=epoch, ip=ip)
            continue
        for name, (ip, k) in groups.items():  # the other 15 hours: one batch per address
            for i in range(k):
                speed = {
                    "farm": 43.0,  # two cards' work shared by six
                    "busy": 58.0 if j % 2 else 128.0,  # all three in use at once in ten of the hours
                    "cafe": 45.0 if i < 3 else 127.0,  # half its PCs in use, the rest at pace
                }[name]
                challenge(con, f"{name}{i}", "matmul", "ok", speed, f"{name}-{j}", siblings=k - 1, epoch=epoch, ip=ip)
    found = VirtualizedGpu().detect(Evidence(con, EPOCH))
    assert sorted(found["device_id"]) == [f"farm{i}" for i in range(6)]
    assert set(found["action"]) == {"reject"} and json.loads(found["details"][0])["proof"] == "statistical"
    assert "slow together in 15 of 15 co-batched hours of the last 24" in found["reason"][0]
    assert "6 devices on one IP in one batch, the fastest at 33% of its own solo pace" in found["reason"][0]
    assert "without a sibling that slow in 0 of 5 challenges" in found["reason"][0]


def test_virtualized_gpu_devices_never_challenged_without_their_siblings_are_measured_by_their_vram_challenges(con) -> None:
    """Guests of one card behind one address are batched together every hour, so no matmul ever
    shows a guest's own pace; its VRAM challenges, issued alone, do (a ninth network written by
    others: four "RTX 4090" guests at a quarter of their pace in every batch, at full pace in each
    VRAM challenge, none held before). Guests never challenged alone at all are measured against
    their model's fleet, three or more of them. Two gaming cards of one house slow together often
    enough that a pair so measured is not judged, and the instances of a card in MIG mode run at
    their share of it by design."""
    peers(con, 130.0)
    groups = {"guest": ("10.0.0.1", 4, 33.0), "gamer": ("10.0.0.2", 2, 55.0)}
    for name, (ip, k, speed) in groups.items():
        for i in range(k):
            feature(con, f"{name}{i}", ip=ip)
            for h in range(6):
                challenge(con, f"{name}{i}", "matmul", "ok", speed, f"{name}-{h}", siblings=k - 1, epoch=hour(h), ip=ip)
            for h in (0, 3):  # its VRAM challenges come alone, at the card's full pace
                challenge(con, f"{name}{i}", "vram", "ok", 130.0, f"{name}{i}-vram-{h}", epoch=hour(h), ip=ip, n=40960)
    # never alone at all, VRAM challenges batched too: three guests are measured against their model's fleet;
    # the seven instances of an A100 in MIG mode run at a seventh of it by design; a pair is not judged
    for name, ip, k, speed, mig in (("shared", "10.0.0.3", 3, 40.0, False), ("mig", "10.0.0.4", 7, 18.0, True),
                                    ("duo", "10.0.0.5", 2, 50.0, False)):  # fmt: skip
        for i in range(k):
            feature(con, f"{name}{i}", ip=ip, mig_mode=mig)
            for h in range(6):
                challenge(con, f"{name}{i}", "matmul", "ok", speed, f"{name}-{h}", siblings=k - 1, epoch=hour(h), ip=ip)
    found = VirtualizedGpu().detect(Evidence(con, EPOCH))
    assert sorted(found["device_id"]) == [f"guest{i}" for i in range(4)] + [f"shared{i}" for i in range(3)]
    assert set(found["action"]) == {"reject"}
    assert "contention in 6 of 6 co-batched hours" in found["reason"][0]
    assert "4 devices on one IP in one batch computed like 1.02 cards" in found["reason"][0]
    assert (
        "3 devices on one IP in one batch computed like 0.92 cards" in found.filter(pl.col("device_id") == "shared0")["reason"][0]
    )


def test_virtualized_gpu_nvml_mode_identity_and_crowded_host(con) -> None:
    feature(con, "vgpu", virtualization_mode="VGPU", vram_total_mb=20480)  # a quarter of an A100 80GB's frame buffer
    # a guest named after the card alone, on a whole-card profile: its frame buffer is the card's memory (a
    # fourteenth network written by others had 40 such cloud VMs rejected)
    feature(con, "cloud_whole", virtualization_mode="VGPU", vram_total_mb=80000)
    # ...as is one whose card sets ECC's 1/16 aside (an L40S reports 46,068 of its 49,152 MiB)
    feature(con, "ecc_whole", virtualization_mode="VGPU", gpu_model="NVIDIA L40S", catalogue_model="l40s", vram_total_mb=46068)
    # a VDI guest whose vGPU profile is the whole card (48 GB of an A40's 48) is one VM per card (a tenth network
    # written by others had 16 VDI guests rejected); an 8 GB profile of it declares an eighth, and sells no more
    feature(con, "vdi", virtualization_mode="VGPU", gpu_model="NVIDIA A40-48Q", catalogue_model=None, vram_total_mb=49152)
    feature(con, "eighth", virtualization_mode="VGPU", gpu_model="NVIDIA A40-8Q", catalogue_model=None, vram_total_mb=8192)
    # ...but an 8 GB profile claiming the whole card's memory claims more than its share
    feature(con, "eighth_as_whole", virtualization_mode="VGPU", gpu_model="NVIDIA A40-8Q", catalogue_model=None,
            vram_total_mb=49152)  # fmt: skip
    # a profile names its card by family and board (A100D-80C: the whole of an A100 PCIe 80GB; a twenty-second
    # network written by others had 16 such cloud VMs rejected); a quarter of that board declared, under the GRID
    # brand of older drivers, or a half of an L40S, is a share declared (a twenty-fourth network written by others
    # had 38 cloud VMs on half and quarter profiles rejected and slashed)
    feature(con, "board", virtualization_mode="VGPU", gpu_model="NVIDIA A100D-80C", catalogue_model=None, vram_total_mb=81920)
    feature(
        con, "board_quarter", virtualization_mode="VGPU", gpu_model="GRID A100D-20C", catalogue_model=None, vram_total_mb=20480
    )
    feature(con, "half_l40s", virtualization_mode="VGPU", gpu_model="NVIDIA L40S-24C", catalogue_model=None, vram_total_mb=24576)
    # a profile larger than any card of its family is no profile
    feature(con, "too_big", virtualization_mode="VGPU", gpu_model="NVIDIA L40S-96C", catalogue_model=None, vram_total_mb=98304)
    # a worker-written profile number too large for any integer is no whole card, and no error
    feature(con, "garbled", virtualization_mode="VGPU", gpu_model="NVIDIA A40-99999999999999999999999Q", catalogue_model=None)
    feature(con, "mig", mig_mode=True)  # an operator's own MIG setting is not evidence alone
    feature(con, "pass", virtualization_mode="PASSTHROUGH")
    for k in range(8):  # a full HGX box is ordinary
        feature(con, f"hgx{k}", host_fingerprint="hgx", ip="3.3.3.4", pci_bus_id=f"00000000:{k:02X}:00.0")
    for k in range(21):  # more than any PCIe host holds
        feature(con, f"rig{k}", host_fingerprint="bigbox", ip="3.3.3.3", pci_bus_id=f"00000000:{k:02X}:00.0")
    for k in range(2):  # one card's identity on two devices alive side by side all hour
        feature(con, f"twin{k}", ip="4.4.4.4", gpu_uuid="GPU-same")
        for at in ("05:01", "05:58"):
            con.execute(
                "INSERT INTO uptime VALUES (CAST(? AS TIMESTAMP), ?, 'heartbeat', true, 20.0, ?, 'u.csv', 1)",
                [f"2024-08-14 {at}:00", f"twin{k}", EPOCH],
            )
    found = {r["device_id"]: r for r in VirtualizedGpu().detect(Evidence(con, EPOCH)).iter_rows(named=True)}
    assert found["vgpu"]["action"] == "reject" == found["eighth_as_whole"]["action"] == found["garbled"]["action"]
    assert found["too_big"]["action"] == "reject"
    declared = {"vdi", "eighth", "board", "board_quarter", "half_l40s"}
    assert not {"mig", "pass", "hgx0", "cloud_whole", "ecc_whole", *declared} & set(found)
    assert "21 GPUs on one host" in found["rig0"]["reason"] and found["rig0"]["action"] == "probation"
    assert found["twin0"]["action"] == "reject"


def test_fleet_burst_flags_a_wave_but_not_the_first_hour(con) -> None:
    for d in range(30):
        feature(con, f"old{d}", epoch="2024-08-14T03")
        feature(con, f"old{d}")
    for d in range(25):  # a wave asked while reachable that has not proven a single answer
        feature(con, f"new{d}", catalogue_model="rtx_4070", account_id="farm", asn=9009, pow_ok=0, samples_total=0,
                pow_timeout=2, pow_reachable=2, pow_timeout_reachable=2)  # fmt: skip
    found = FleetBurst().detect(Evidence(con, EPOCH))
    assert sorted(found["device_id"]) == sorted(f"new{d}" for d in range(25))
    assert set(found["action"]) == {"probation"} and "25 devices with" in found["reason"][0]
    assert FleetBurst().detect(Evidence(con, "2024-08-14T03")).is_empty()


def test_fleet_burst_spares_honest_racks_that_answered_or_were_never_reachable(con) -> None:
    for d in range(30):
        feature(con, f"old{d}", epoch="2024-08-14T03")
        feature(con, f"old{d}")
    for d in range(40):  # an operator adds a rack: every answer's samples check out
        feature(con, f"rack{d}", catalogue_model="h100_sxm", account_id="operator", samples_total=2, samples_bad=0,
                pow_reachable=1)  # fmt: skip
    for d in range(25):  # a third rack: its first challenge timed out by bad luck, the next hour will tell
        feature(con, f"unlucky{d}", catalogue_model="a100_40gb_sxm", account_id="operator3", pow_ok=0,
                pow_timeout=1, samples_total=0, pow_reachable=1, pow_timeout_reachable=1)  # fmt: skip
    for d in range(30):  # another rack still in maintenance: challenged, but down, so never asked
        feature(con, f"dark{d}", catalogue_model="l40s", account_id="operator2", pow_ok=0, pow_timeout=1,
                samples_total=0, pow_reachable=0, heartbeat_ok=0, ping_ok=0)  # fmt: skip
    assert FleetBurst().detect(Evidence(con, EPOCH)).is_empty()


def test_anomaly_is_a_review_lead_that_needs_persistence(con) -> None:
    for h in (2, 3, 4, 5):
        epoch = f"2024-08-14T0{h}"
        for d in range(200):
            feature(con, f"d{d}", epoch=epoch, tflops_median=250.0 + d % 7, ping_total=4, ping_ok=4, heartbeat_ok=6)
        feature(con, "odd", epoch=epoch, tflops_median=5.0, ping_total=4, ping_ok=0, heartbeat_ok=1, pow_timeout=1)
        con.execute("INSERT INTO model_peers VALUES (?, 'a100_80gb_sxm', 200, 253, 256)", [epoch])
        found = AnomalyScore(contamination=0.005).detect(Evidence(con, epoch))
    assert found["device_id"].to_list() == ["odd"] and found["action"].to_list() == ["review"]


def test_challenge_plan_keeps_a_rejected_sibling_as_witness_and_skips_rejected_only_groups(con) -> None:
    for d in ("a", "b", "c", "gone"):
        feature(con, d, ip="1.1.1.1")
    feature(con, "alone", ip="2.2.2.2")
    for d in ("x", "y"):  # two rejected slices with nobody left to prove
        feature(con, d, ip="3.3.3.3")
    for d in ("last", "sib1", "sib2"):  # the last slice of a card whose siblings were rejected
        feature(con, d, ip="4.4.4.4")
    rejected = {"gone", "x", "y", "sib1", "sib2"}
    for d in ("a", "b", "c", "gone", "alone", "x", "y", "last", "sib1", "sib2"):
        tier = "rejected" if d in rejected else "standard"
        con.execute("INSERT INTO device_tiers VALUES (?, ?, 'acc', ?, [], 0, '[]')", [EPOCH, d, tier])
    assert build_plan(con, EPOCH) == 7
    plan = read_plan(con, EPOCH)
    assert plan == {d: "ip:1.1.1.1" for d in ("a", "b", "c", "gone")} | {d: "ip:4.4.4.4" for d in ("last", "sib1", "sib2")}


def _store(con, epoch: str, found) -> None:
    con.register("found", found.to_arrow())
    con.execute(
        "INSERT INTO evidence SELECT ?, device_id, account_id, detector, fraud_type, score, action, reason, details FROM found",
        [epoch],
    )
    con.unregister("found")


def test_spoofed_model_a_card_held_on_its_memory_alone_is_cleared_by_a_product_as_large_as_those_it_failed(con) -> None:
    """Mining rigs on an independently written network failed eleven VRAM challenges, answered
    one of the same size and stayed held six more hours on the clock. An answer at its own pace
    as large as every failure refutes a suspicion that rested on the memory alone: a ``clear``
    row, once. A smaller product backs less than the failures doubted; a device never suspected
    gets no row for passing."""
    peers(con, 265.0)
    half, quarter = 72_400, 51_200
    for d in ("rig", "passes_smaller", "never_held"):
        feature(con, d)
        if d != "never_held":
            for k, epoch in enumerate((EARLIER, hour(2), EPOCH)):
                challenge(con, d, "vram", "error", None, f"v{k}", n=half, epoch=epoch)
    held = SpoofedModel().detect(Evidence(con, EPOCH))
    assert held["device_id"].to_list() == ["passes_smaller", "rig"] and set(held["action"]) == {"probation"}
    assert {tuple(json.loads(d)["signs"]) for d in held["details"]} == {("vram_short",)}
    _store(con, EPOCH, held)
    later = hour(6)
    for d, n in (("rig", half), ("passes_smaller", quarter), ("never_held", half)):
        feature(con, d, epoch=later)
        challenge(con, d, "vram", "ok", 250.0, "p", n=n, epoch=later)
    found = SpoofedModel().detect(Evidence(con, later))
    rows = {r["device_id"]: r for r in found.iter_rows(named=True)}
    assert rows["rig"]["action"] == "clear" and rows["rig"]["score"] == 0.0
    assert f"the VRAM suspicion held since {EPOCH} is refuted" in rows["rig"]["reason"]
    assert json.loads(rows["rig"]["details"])["proof"] == "exact"
    assert rows["passes_smaller"]["action"] == "probation" and "never_held" not in rows
    _store(con, later, found)
    feature(con, "rig", epoch=hour(7))
    assert "rig" not in SpoofedModel().detect(Evidence(con, hour(7)))["device_id"].to_list()  # refuted once


def test_virtualized_gpu_the_instances_of_a_card_its_owner_partitioned_share_its_bus_id_and_slices_sold_whole_do_not(
    con,
) -> None:
    """An A100 80GB split by its owner into two MIG instances of 40 GB: NVML reports each with
    its own ``MIG-`` UUID and the card's bus id (an independently written network's honest MIG
    cards were rejected as one identity on two devices). Slices that claim the whole card each
    are still one identity sold twice."""
    for k in range(2):
        for name, vram in (("instance", 40_192), ("slice", 81_920)):
            device = f"{name}{k}"
            feature(con, device, ip="4.4.4.4" if name == "instance" else "4.4.4.5", host_fingerprint=f"box-{name}",
                    pci_bus_id="00000000:2A:00.0", gpu_uuid=f"MIG-{name}-{k}", mig_mode=True, vram_total_mb=vram)  # fmt: skip
            for at in ("05:01", "05:58"):
                con.execute(
                    "INSERT INTO uptime VALUES (CAST(? AS TIMESTAMP), ?, 'heartbeat', true, 20.0, ?, 'u.csv', 1)",
                    [f"2024-08-14 {at}:00", device, EPOCH],
                )
    found = {r["device_id"]: r for r in VirtualizedGpu().detect(Evidence(con, EPOCH)).iter_rows(named=True)}
    assert sorted(found) == ["slice0", "slice1"] and found["slice0"]["action"] == "reject"


def _answered(con, device: str, batch: str, epoch: str, seconds: float, kind: str = "vram") -> None:
    """The ``pow`` row of ``challenge``'s challenge: answered ``seconds`` after it was issued."""
    issued = epoch.replace("T", " ") + ":10:00"
    con.execute(
        "INSERT INTO pow (challenge_id, device_id, kind, issued_at, responded_at, status, _hour, _file, _row) "
        "VALUES (?, ?, ?, CAST(? AS TIMESTAMP), CAST(? AS TIMESTAMP) + to_milliseconds(?), 'ok', ?, 'pow.csv', 1)",
        [f"{device}-{kind}-{batch}", device, kind, issued, issued, int(seconds * 1000), epoch],
    )


def test_spoofed_model_a_vram_product_whose_round_trip_crawls_past_its_peers_is_not_backed_whatever_time_it_claims(
    con,
) -> None:
    """A careful spoofer pages the product through host memory and reports the ``compute_ms`` of
    the card it claims (a fifth network written by others: 1.3 s claimed, 105 s on the backend's
    clock, where honest cards of the model took 3-14 s). Its round trip against the honest
    fleet's median for the same model and size is what the worker cannot forge. A rented card
    is slowed by up to about three and a card with fewer peers than ``vram_trip_peers`` has no
    comparison."""
    peers(con, 265.0)
    for k in range(6):  # honest cards of the model: 8-12 s
        feature(con, f"honest{k}")
        for h, epoch in enumerate((EARLIER, EPOCH)):
            challenge(con, f"honest{k}", "vram", "ok", 250.0, f"v{h}", epoch=epoch, n=72_400)
            _answered(con, f"honest{k}", f"v{h}", epoch, 8.0 + k * 0.8)
    for d, seconds in (("pages_from_host", 105.0), ("busy", 25.0)):
        feature(con, d)
        for h, epoch in enumerate((EARLIER, EPOCH)):
            challenge(con, d, "vram", "ok", 250.0, f"v{h}", epoch=epoch, n=72_400)  # the speed it claims
            _answered(con, d, f"v{h}", epoch, seconds)
    found = SpoofedModel().detect(Evidence(con, EPOCH))
    assert found["device_id"].to_list() == ["pages_from_host"] and found["action"][0] == "probation"
    assert "2 answered alone at up to 9.7x its peers' median round trip for the product" in found["reason"][0]
    assert json.loads(found["details"][0])["vram_crawled_trip_ratio"] == 9.72
    assert SpoofedModel(vram_trip_peers=9).detect(Evidence(con, EPOCH)).is_empty()


def test_spoofed_model_a_slow_link_is_taken_off_a_round_trip_before_it_is_compared_with_the_peers(con) -> None:
    """Every answer of a device on a satellite link takes most of a second longer on the backend's
    clock (an independently written network's remote honest devices answered small VRAM products
    in 650-850 ms where their peers took 155). Its own time beyond computing, measured on its
    matmul answers, is taken off before the round trip is compared; a card that pages a VRAM
    product from host memory is slow on that product only."""
    for k in range(6):
        feature(con, f"honest{k}")
        for h, epoch in enumerate((EARLIER, EPOCH)):
            challenge(con, f"honest{k}", "vram", "ok", 30.0, f"v{h}", epoch=epoch, n=1024)
            _answered(con, f"honest{k}", f"v{h}", epoch, 0.15)
    for d, matmul_s in (("satellite", 0.7), ("pages_from_host", 0.15)):
        feature(con, d)
        for h, epoch in enumerate((EARLIER, EPOCH)):
            challenge(con, d, "vram", "ok", 30.0, f"v{h}", epoch=epoch, n=1024)
            _answered(con, d, f"v{h}", epoch, 0.8)
            con.execute(
                "INSERT INTO pow (challenge_id, device_id, kind, issued_at, responded_at, status, compute_ms, _hour, _file, _row) "
                "VALUES (?, ?, 'matmul', CAST(? AS TIMESTAMP), CAST(? AS TIMESTAMP) + to_milliseconds(?), 'ok', 0.07, ?, "
                "'pow.csv', 1)",
                [
                    f"{d}-m{h}",
                    d,
                    epoch.replace("T", " ") + ":20:00",
                    epoch.replace("T", " ") + ":20:00",
                    int(matmul_s * 1000),
                    epoch,
                ],
            )
    found = SpoofedModel().detect(Evidence(con, EPOCH))
    assert found["device_id"].to_list() == ["pages_from_host"] and found["action"][0] == "probation"
    assert "up to 4.3x its peers' median round trip for the product, its own network's time taken off" in found["reason"][0]


def test_spoofed_model_a_host_slow_to_draw_the_matrices_is_excused_by_its_own_pace_grown_to_the_products_size(
    con,
) -> None:
    """The worker draws A and B from the seed on its CPU, 2 n^2 values: an independently written
    network's honest two-core hosts took 53 s to draw a VRAM product's matrices that their
    eight-core peers drew in 7-13 s, and were held as short of memory. The host's time per value,
    measured on its matmul answers once two pinged round trips are off, grows with the product; a
    card that pages the product from host memory answers its matmuls as fast as its peers. A
    device never pinged has no link to take off, and its whole matmul overhead is network."""
    vram_n, matmul_n = 39_936, 8_192
    for k in range(6):  # eight-core peers: 11-13 s; two cores take about 55 s more
        feature(con, f"honest{k}")
        for h, epoch in enumerate((EARLIER, EPOCH)):
            challenge(con, f"honest{k}", "vram", "ok", 80.0, f"v{h}", epoch=epoch, n=vram_n)
            _answered(con, f"honest{k}", f"v{h}", epoch, 11.0 + k * 0.4)
    for d, matmul_s in (("two_cores", 2.5), ("pages_from_host", 0.25), ("never_pinged", 2.5)):
        feature(con, d)
        for h, epoch in enumerate((EARLIER, EPOCH)):
            challenge(con, d, "vram", "ok", 80.0, f"v{h}", epoch=epoch, n=vram_n)
            _answered(con, d, f"v{h}", epoch, 60.0)
            at = epoch.replace("T", " ")
            con.execute(
                "INSERT INTO pow (challenge_id, device_id, kind, issued_at, responded_at, status, n, compute_ms, _hour, _file, "
                "_row) VALUES (?, ?, 'matmul', CAST(? AS TIMESTAMP), CAST(? AS TIMESTAMP) + to_milliseconds(?), 'ok', ?, "
                "14.0, ?, 'pow.csv', 1)",
                [f"{d}-m{h}", d, at + ":20:00", at + ":20:00", int(matmul_s * 1000), matmul_n, epoch],
            )
            if d != "never_pinged":
                con.execute(
                    "INSERT INTO uptime VALUES (CAST(? AS TIMESTAMP), ?, 'ping', true, 80.0, ?, 'u.csv', 1)",
                    [at + ":30:00", d, epoch],
                )
    found = SpoofedModel().detect(Evidence(con, EPOCH))
    assert found["device_id"].to_list() == ["never_pinged", "pages_from_host"]
    assert set(found["action"]) == {"probation"}


CURVE = {256: 2.0, 512: 15.0, 1024: 50.0, 2048: 200.0}
"""An honest A100's speed by product size: a small product fills no card (two networks written by
others asked n = 256 to 2048 at random, and their cards measured a fraction of their speed below
the largest)."""


def _sized_fleet(con, devices: int = 12) -> None:
    """Honest peers answering every size at the curve, every hour of the window."""
    for d in range(devices):
        for h, n in enumerate((256, 512, 1024, 2048, 256, 512, 1024, 2048)):
            challenge(con, f"peer{d}", "matmul", "ok", CURVE[n], f"p{h}", n=n, epoch=hour(h))


def test_spoofed_model_compares_speeds_at_a_telling_product_size_so_small_products_neither_flag_nor_hide(con) -> None:
    """An honest card asked mostly small products measures a fifth of the spec at its 90th
    percentile and is not slow: at the size that fills it, it runs like its peers. A card of another
    model matches the claimed model's peers on small products and is slow where the card itself
    limits; its VRAM failures in hours it answered a large product at its own pace are not a card
    in use, so they establish the spoof."""
    _sized_fleet(con)
    con.execute("INSERT INTO model_peers VALUES (?, 'a100_80gb_sxm', 12, 15.0, 50.0)", [EPOCH])  # median of all sizes
    feature(con, "seldom_large")
    for h, n in enumerate((256, 256, 256, 512, 512, 512, 1024, 1024, 1024, 2048, 256, 512)):
        challenge(con, "seldom_large", "matmul", "ok", CURVE[n] * 0.97, f"s{h}", n=n, epoch=hour(h % 6))
    other = {256: 2.0, 512: 14.0, 1024: 30.0, 2048: 35.0}  # an RTX card's curve: 35 is 18% of the peers' 200
    feature(con, "sold_as")
    for h, n in enumerate((256, 512, 1024, 2048, 256, 512)):
        challenge(con, "sold_as", "matmul", "ok", other[n], f"o{h}", n=n, epoch=hour(h))
    for k, epoch in enumerate((EARLIER, hour(3), hour(5))):
        challenge(con, "sold_as", "matmul", "ok", other[2048], f"big{k}", n=2048, epoch=epoch)
        challenge(con, "sold_as", "vram", "error", None, f"v{k}", epoch=epoch, n=4096)
    found = SpoofedModel().detect(Evidence(con, EPOCH))
    assert found["device_id"].to_list() == ["sold_as"] and found["action"][0] == "reject"
    assert "measures 35.0 TFLOPS at best (products of n = 2048)" in found["reason"][0]
    assert "at n = 2048, 18% of its 14 honest peers' median 200.0" in found["reason"][0]


def test_spoofed_model_judges_a_card_where_it_falls_furthest_behind_not_where_the_claimed_model_is_not_yet_filled(
    con,
) -> None:
    """A ninth network written by others sold RTX 3090s as H100s: at n = 2048, a size at which the
    H100s run at 59% of their best, the 3090s were at 22% of them (above the honest floor of 20%),
    at n = 4096 at 14%. A weaker card is filled by a smaller product than the card it claims, so the
    size that does not yet fill the claimed model flatters it: the card is judged at the telling size
    where it falls furthest behind, among those it answered at least twice. An honest card slowed
    once by a game at the largest size, answered there only once, is judged where it answered twice."""
    fleet = {1024: 40.0, 2048: 180.0, 4096: 300.0}  # 2048 and 4096 are telling (>= half of 300)
    for d in range(12):
        for h, n in enumerate((1024, 2048, 4096, 1024, 2048, 4096)):
            challenge(con, f"peer{d}", "matmul", "ok", fleet[n], f"p{h}", n=n, epoch=hour(h))
    weak = {1024: 30.0, 2048: 39.6, 4096: 42.0}  # 22% and 14% of the fleet at the telling sizes
    # a spec sheet far above what the cards reach (consumer cards run at 30-55% of theirs): the spec
    # alone does not protect the gamer here, only its own measure does
    feature(con, "sold_as", spec_tflops=1000.0)
    feature(con, "gamer", spec_tflops=1000.0)
    for h, n in enumerate((1024, 2048, 4096, 1024, 2048, 4096)):
        challenge(con, "sold_as", "matmul", "ok", weak[n], f"o{h}", n=n, epoch=hour(h))
    for h, (n, speed) in enumerate(((2048, 178.0), (2048, 181.0), (4096, 45.0), (1024, 41.0))):
        challenge(con, "gamer", "matmul", "ok", speed, f"g{h}", n=n, epoch=hour(h))
    found = SpoofedModel().detect(Evidence(con, EPOCH))
    assert found["device_id"].to_list() == ["sold_as"] and found["action"][0] == "probation"
    assert "at n = 4096, 14% of its 14 honest peers' median 300.0" in found["reason"][0]


def test_virtualized_gpu_compares_answers_of_different_product_sizes_by_their_pace(con) -> None:
    """Two honest cards behind one address, batched every hour on products of a different size each
    hour: a small product measures a fraction of a large one's speed on any card, and is no
    contention. Two slices of one card, batched the same way, each run at half the pace of their
    size."""
    _sized_fleet(con)
    sizes = (256, 2048, 512, 1024, 256, 512)
    for pair, ip, share in (("honest", "7.7.7.7", 1.0), ("slice", "6.6.6.6", 0.5)):
        for d in (f"{pair}_a", f"{pair}_b"):
            feature(con, d, ip=ip)
            challenge(con, d, "matmul", "ok", CURVE[2048], f"solo-{d}", epoch="2024-08-13T23", ip=ip, n=2048)
            for h, n in enumerate(sizes):
                challenge(con, d, "matmul", "ok", CURVE[n] * share, f"{pair}-{h}", siblings=1, epoch=hour(h), ip=ip, n=n)
    found = VirtualizedGpu().detect(Evidence(con, EPOCH))
    assert sorted(found["device_id"]) == ["slice_a", "slice_b"] and set(found["action"]) == {"reject"}
    assert "2 devices on one IP in one batch computed like 1.00 cards" in found["reason"][0]


def test_virtualized_gpu_mig_instances_named_by_profile_are_one_partitioned_card(con) -> None:
    """NVML names a MIG instance after its parent card and profile (``NVIDIA A100-SXM4-80GB MIG
    3g.40gb``), a name no catalogue lists: the parent's name says which card the instances share."""
    for k in range(2):
        device = f"instance{k}"
        feature(con, device, ip="4.4.4.4", host_fingerprint="box", pci_bus_id="00000000:2A:00.0", gpu_uuid=f"MIG-{k}",
                mig_mode=True, vram_total_mb=40_192, gpu_model="NVIDIA A100-SXM4-80GB MIG 3g.40gb",
                catalogue_model=None, spec_tflops=None)  # fmt: skip
        for at in ("05:01", "05:58"):
            con.execute(
                "INSERT INTO uptime VALUES (CAST(? AS TIMESTAMP), ?, 'heartbeat', true, 20.0, ?, 'u.csv', 1)",
                [f"2024-08-14 {at}:00", device, EPOCH],
            )
    assert VirtualizedGpu().detect(Evidence(con, EPOCH)).is_empty()


def test_virtualized_gpu_mig_instances_reporting_their_cards_uuid_are_one_partitioned_card(con) -> None:
    """A worker may report each instance with its card's UUID (the parent handle's): an eighteenth
    network written by others had its honest instances rejected as two devices of one identity.
    Slices of one card sold whole (claiming all of its memory each) under its UUID still are."""
    for name, vram in (("instance", 40_192), ("slice", 81_920)):
        for k in range(2):
            device = f"{name}{k}"
            feature(con, device, ip="4.4.4.4" if name == "instance" else "4.4.4.5", host_fingerprint=f"box-{name}",
                    pci_bus_id="00000000:2A:00.0", gpu_uuid=f"GPU-{name}", mig_mode=True, vram_total_mb=vram,
                    gpu_model="NVIDIA A100-SXM4-80GB MIG 3g.40gb" if name == "instance" else "NVIDIA A100-SXM4-80GB",
                    catalogue_model=None if name == "instance" else "a100_80gb_sxm")  # fmt: skip
            for at in ("05:01", "05:58"):
                con.execute(
                    "INSERT INTO uptime VALUES (CAST(? AS TIMESTAMP), ?, 'heartbeat', true, 20.0, ?, 'u.csv', 1)",
                    [f"2024-08-14 {at}:00", device, EPOCH],
                )
    assert sorted(VirtualizedGpu().detect(Evidence(con, EPOCH))["device_id"]) == ["slice0", "slice1"]
