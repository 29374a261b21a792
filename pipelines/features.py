"""Per-device hourly features shared by every detector, and exact proof-of-work verification.

``verify_pow`` recomputes every sampled product entry of the hour's answered challenges (the
contract's exact check) into ``pow_checks``; ``build_features`` then summarises each device's
hour in ``device_features`` (the hour's PoW summarised first, so that a failed challenge service
is decided once and recorded in ``challenge_outages``): identity as reported, uptime by source,
PoW outcomes, sample verdicts, timing consistency and measured throughput against the
catalogue's spec for the claimed model.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import duckdb
import numpy as np
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field

from pipelines import catalogue
from pipelines.cadence import HEARTBEAT_GAPS_CTE, Cadence, measure_cadence
from pipelines.db import scalar
from pipelines.epoch import previous as previous_epoch
from pipelines.pow_math import sample_entries

EntriesFn = Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray], np.ndarray]


def _entries_backend() -> EntriesFn:
    """The compiled kernel in this process, or sharded across a Dask cluster when
    ``FLEETPROOF_DASK_SCHEDULER`` names one (``pip install fleetproof[distributed]``)."""
    address = os.environ.get("FLEETPROOF_DASK_SCHEDULER")
    if not address:
        return sample_entries
    from pipelines.pow_distributed import entries_on_cluster

    return lambda seed, n, i, j: entries_on_cluster(address, seed, n, i, j)


def verify_pow(con: duckdb.DuckDBPyConnection, epoch: str, entries: EntriesFn | None = None) -> tuple[int, int]:
    """Check every sample of the epoch's answered challenges; returns (samples, bad samples).

    ``entries`` computes the expected product entries (``pow_math.sample_entries``'s signature);
    by default the compiled kernel, see ``_entries_backend``."""
    samples = con.execute(
        """
        WITH s AS (
            SELECT challenge_id, seed, n, unnest(CAST(js AS BIGINT[][])) AS t, unnest(CAST(js AS DOUBLE[][])) AS d
            FROM (SELECT challenge_id, seed, n, CAST(samples AS JSON) AS js
                  FROM pow WHERE _hour = ? AND status = 'ok' AND samples IS NOT NULL)
        )
        SELECT challenge_id, seed, n, t[1] AS i, t[2] AS j, t[3] AS v,
               d[3] = t[3] AS integral, d[3] AS v_real  -- 34.0 reads as 34; 34.5 is a wrong answer
        FROM s ORDER BY challenge_id
        """,
        [epoch],
    ).fetchnumpy()
    cid, seed, n = samples["challenge_id"], samples["seed"], samples["n"]
    i, j, v, integral = samples["i"], samples["j"], samples["v"], samples["integral"]
    in_range = (i >= 0) & (j >= 0) & (i < n) & (j < n)  # out-of-range samples are bad outright
    expected = np.zeros(cid.size, dtype=np.int64)
    expected[in_range] = (entries or _entries_backend())(seed[in_range], n[in_range], i[in_range], j[in_range])
    bad = ~in_range | ~integral | (expected != v)
    flipped = bad & in_range & integral & one_bit_off(v, expected)
    con.execute("DELETE FROM pow_checks WHERE _hour = ?", [epoch])
    if cid.size:
        table = pa.table(
            {
                "challenge_id": cid,
                "i": i,
                "j": j,
                "v": v,
                "v_real": samples["v_real"],
                "integral": integral,
                "expected": expected,
                "bad": bad,
                "flipped": flipped,
                "in_range": in_range,
            }
        )
        con.register("pow_samples_checked", table)
        con.execute(
            """
            INSERT INTO pow_checks
            SELECT challenge_id, ?, count(*), count(*) FILTER (bad),
                   arg_min(CASE WHEN NOT in_range THEN format('[{}, {}] is outside the n x n product', i, j)
                                ELSE format('[{}, {}] = {}, expected {}{}', i, j, CASE WHEN integral THEN v::VARCHAR ELSE v_real::VARCHAR END,
                                            expected, CASE WHEN flipped THEN ' (one bit off)' ELSE '' END) END,
                           (flipped, i * 1000000000 + j)) FILTER (bad),  -- a wrong value before a flipped bit
                   count(*) FILTER (flipped)
            FROM pow_samples_checked GROUP BY challenge_id
            """,
            [epoch],
        )
        con.unregister("pow_samples_checked")
    return int(cid.size), int(bad.sum())


def one_bit_off(value: np.ndarray, expected: np.ndarray) -> np.ndarray:
    """Where ``value`` is ``expected`` with one bit of its binary form flipped: off by a power of
    two (a mantissa or integer bit), or negated (the sign bit). That is what failing memory or an
    unstable overclock does to an exact product; a worker that did not compute the product cannot
    land one bit from a value it never had (a made-up value does so about once in 4,000 draws)."""
    lo, hi = -(2**40), 2**40  # products are far inside; outside, the difference could overflow
    sane = (value > lo) & (value < hi) & (expected > lo) & (expected < hi)
    diff = np.abs(np.where(sane, value - expected, 0))
    power_of_two = (diff > 0) & ((diff & (diff - 1)) == 0)
    negated = (value == -expected) & (expected != 0)
    return sane & (power_of_two | negated)


MACHINE_MAX_IPS = 4
"""A machine is at one public address (two when it changes within the hour): a host fingerprint
that devices report from more addresses than this in one hour is not one machine but a writer's
placeholder (``unknown`` on every device) and is read as no fingerprint. Left as it was, one
placeholder put a whole network "on one host": 491 of 494 honest devices of a 600-device network
were rejected as virtualized."""

POW_CLOCK_CTE = """pow_clock AS (  -- the precision each PoW file of the hour writes its times to (per column: the finest)
    SELECT _file, greatest(coalesce(min(clock_unit_ms(issued_at)), 0), coalesce(min(clock_unit_ms(responded_at)), 0)) AS unit_ms
    FROM pow WHERE _hour = $epoch GROUP BY _file
)"""
"""One writer writes one file: a column whose every time is a whole second is written to the
second (``contract.TIMESTAMP_MACROS``), one with a millisecond anywhere is read to the
millisecond; a round trip can be short by the coarser column's unit."""

SAMPLED_KINDS_SQL = """SELECT DISTINCT p.kind FROM pow p
    JOIN pow_checks c ON c.challenge_id = p.challenge_id AND c._hour = p._hour
    WHERE p._hour = $epoch AND p.status = 'ok' AND c.samples_total > 0"""
"""The challenge kinds the backend sampled in the hour. ``samples`` are the entries the backend
asked for, so an answer without them was not asked to prove anything: where the backend samples
one kind and never another (matmul products sampled, VRAM challenges answered with a digest
only), the unsampled kind is neither proof nor evidence against a device
(``device_features.unverified_ok``, the ``sample_verification_rate`` bar). Such a backend
stopped a 600-device network at its first hour (84 answers "could not be verified"). Where
nothing at all is sampled, every answer counts as unverified, as before: nothing is proven."""

REACH_SQL = """
CREATE OR REPLACE TEMP TABLE pow_reach AS
WITH signals AS (  -- moments the device was seen alive: a ping answered or a heartbeat sent; of the hour
    -- before, only those within reach of the hour's first challenge (half the rows; a signal further back
    -- is nobody's nearest within reach)
    SELECT device_id, ts FROM uptime WHERE _hour = $epoch AND ok
    UNION ALL
    SELECT device_id, ts FROM uptime WHERE _hour = $prev AND ok
      AND ts >= (SELECT min(issued_at) FROM pow WHERE _hour = $epoch) - to_minutes($reach_minutes)
),
issued AS (SELECT challenge_id, device_id, issued_at FROM pow WHERE _hour = $epoch)
SELECT challenge_id,
       before_ts >= ts - to_minutes($reach_minutes) AND after_ts <= ts + to_minutes($reach_minutes) AS reachable
FROM (  -- the nearest signal at or before, and at or after, each challenge: one sort of both
        -- (two ASOF joins sorted each side twice, 1.5x the time at a million devices)
    SELECT challenge_id, ts, max(signal_ts) OVER up_to_it AS before_ts, min(signal_ts) OVER from_it AS after_ts
    FROM (SELECT device_id, ts, ts AS signal_ts, NULL AS challenge_id FROM signals WHERE device_id IS NOT NULL
          UNION ALL
          SELECT device_id, issued_at, NULL, challenge_id FROM issued WHERE device_id IS NOT NULL)
    WINDOW up_to_it AS (PARTITION BY device_id ORDER BY ts RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW),
           from_it AS (PARTITION BY device_id ORDER BY ts RANGE BETWEEN CURRENT ROW AND UNBOUNDED FOLLOWING)
)
WHERE challenge_id IS NOT NULL
"""
"""Each challenge of the hour: was the device seen alive (a ping answered or a heartbeat sent)
within ``reach_minutes`` before AND after it was issued? A timeout then is the device's own
doing, not downtime. Kept for the hour: ``POW_SUMMARY_SQL`` counts it per device and
``CONTEXT_SQL`` stores it per challenge."""

DIGEST_HOLDERS_MAX = 10
"""A digest committed by more devices than this in one hour is a writer's stand-in for "none"
(a constant where no product was hashed), not one operator's commitment: no evidence."""

DIGESTS_REPEATED_CTE = f"""digest_pairs AS (  -- (device, digest hash) committed more than once this hour or the hour before:
    -- the few answers worth joining (joining every answer with its device's others took 1.6-2.1 s at a
    -- million devices, this 0.4-0.6 s: docs/scaling.md)
    SELECT device_id, hash(result_digest) AS h FROM pow
    WHERE _hour IN ($epoch, $prev) AND status = 'ok' AND result_digest IS NOT NULL GROUP BY ALL HAVING count(*) > 1
),
digest_repeats AS (  -- answers committing the digest their device committed earlier for another product: a sha256 of
    -- the full product names one product (contract: result_digest)
    SELECT DISTINCT p.challenge_id, p.result_digest
    FROM pow p JOIN digest_pairs c ON c.device_id = p.device_id AND c.h = hash(p.result_digest)
    JOIN pow q ON q.device_id = p.device_id AND q.result_digest = p.result_digest
    WHERE p._hour = $epoch AND q._hour IN ($epoch, $prev) AND p.status = 'ok' AND q.status = 'ok'
      AND q.issued_at < p.issued_at AND (q.seed IS DISTINCT FROM p.seed OR q.n IS DISTINCT FROM p.n)
),
repeated AS (  -- ...but a stand-in many devices write (DIGEST_HOLDERS_MAX)
    SELECT challenge_id FROM digest_repeats WHERE result_digest NOT IN (
        SELECT result_digest FROM pow WHERE _hour = $epoch AND result_digest IN (SELECT result_digest FROM digest_repeats)
        GROUP BY result_digest HAVING count(DISTINCT device_id) > {DIGEST_HOLDERS_MAX})
)"""
"""CTE ``repeated(challenge_id)``: the hour's answers whose ``result_digest`` the same device
committed for a different product (seed or size) in an earlier challenge of this hour or the
hour before. Honest model: every product has its own digest, and a re-issued challenge (same
seed and size) has the same one; answers committed at the same instant are not ordered (a
damaged duplicate row). Workers that never compute the product commit a constant, or one
answer's digest again: six networks written by others had 8-25 such devices each, and no honest
device repeated a digest of its own. Needs ``$epoch`` and ``$prev``."""

POW_SUMMARY_SQL = f"""
CREATE OR REPLACE TEMP TABLE pow_summary AS
WITH {POW_CLOCK_CTE},
sampled AS (  -- challenge kinds the backend sampled this hour (SAMPLED_KINDS_SQL)
    {SAMPLED_KINDS_SQL}
),
{DIGESTS_REPEATED_CTE},
pw AS (
    SELECT p.device_id,
           count(*) AS pow_total,
           count(*) FILTER (status = 'ok') AS pow_ok,
           count(*) FILTER (status = 'timeout') AS pow_timeout,
           count(*) FILTER (status = 'error') AS pow_error,
           count(*) FILTER (kind = 'vram') AS vram_total,
           count(*) FILTER (kind = 'vram' AND status = 'ok') AS vram_ok,
           coalesce(sum(c.samples_total), 0) AS samples_total,
           coalesce(sum(c.samples_bad), 0) AS samples_bad,
           coalesce(sum(c.samples_flipped), 0) AS samples_flipped,
           min(p.challenge_id || ': ' || c.first_bad) FILTER (c.samples_bad > 0) AS first_bad_sample,
           count(*) FILTER (status = 'ok' AND coalesce(c.samples_total, 0) = 0
                            AND (p.kind IN (SELECT kind FROM sampled) OR NOT EXISTS (SELECT 1 FROM sampled))) AS unverified_ok,
           count(*) FILTER (status = 'ok' AND NOT fits_round_trip(compute_ms, issued_at, responded_at, k.unit_ms + $clock_margin))
               AS overclaimed_compute,  -- beyond what two of the backend's clocks can disagree by (Features.clock_margin_ms)
           max(compute_ms / greatest(epoch_ms(responded_at) - epoch_ms(issued_at), 1)) FILTER (status = 'ok') AS max_compute_over_observed,
           median(2 * pow(n, 3) / compute_ms / 1e9) FILTER (kind = 'matmul' AND status = 'ok' AND compute_ms > 0) AS tflops_median,
           max(2 * pow(n, 3) / compute_ms / 1e9) FILTER (status = 'ok' AND compute_ms > 0) AS tflops_max,
           count(*) FILTER (r.reachable) AS pow_reachable,
           count(*) FILTER (status = 'timeout' AND r.reachable) AS pow_timeout_reachable,
           count(d.challenge_id) AS digests_repeated
    FROM pow p LEFT JOIN pow_checks c ON c.challenge_id = p.challenge_id AND c._hour = p._hour
    LEFT JOIN pow_reach r ON r.challenge_id = p.challenge_id
    LEFT JOIN pow_clock k ON k._file = p._file
    LEFT JOIN repeated d ON d.challenge_id = p.challenge_id
    WHERE p._hour = $epoch GROUP BY p.device_id
)
SELECT * FROM pw
"""
"""Each device's PoW of the hour, summarised once: the features read it, and so does the
challenge-outage test (``OUTAGE_SQL``), which must decide before any device's reachable timeouts
are stored."""

OUTAGE_SQL = """
INSERT INTO challenge_outages
WITH answered AS (  -- the most challenges answered in an hour of the last day: an outage takes the fleet's answers
    -- with it, a wave of new devices that never answer does not
    SELECT max(ok) AS most FROM (
        SELECT epoch, sum(pow_ok) AS ok FROM device_features WHERE epoch > hours_back($epoch, 24) AND epoch < $epoch GROUP BY epoch
    )
),
hour AS (SELECT coalesce(sum(pow_timeout_reachable), 0) AS timeouts, coalesce(sum(pow_reachable), 0) AS reachable,
                 coalesce(sum(pow_ok), 0) AS ok FROM pow_summary)
SELECT $epoch, h.timeouts, h.reachable, h.ok, a.most FROM hour h CROSS JOIN answered a
WHERE h.timeouts >= greatest($outage_share * h.reachable, $outage_min) AND h.ok <= $outage_answered * a.most
"""
"""The hour goes into ``challenge_outages`` when the challenge service failed, not the devices
(``Features.challenge_outage_share``): none of its timeouts then counts as a reachable device's own
(``device_features``), nor as a suspicious hour of ``spoofed_uptime``, which reads this table
rather than deciding again."""

FEATURES_SQL = f"""
INSERT INTO device_features
WITH no_machine AS (  -- fingerprints reported from more addresses than one machine has (Features.machine_max_ips)
    SELECT host_fingerprint FROM hardware WHERE _hour = $epoch
    GROUP BY host_fingerprint HAVING count(DISTINCT ip_site(ip)) > $machine_ips  -- an IPv6 /64 is one site
),
hw AS (
    SELECT device_id,
           arg_max(account_id, ts) AS account_id,
           arg_max(host_fingerprint, ts) FILTER (host_fingerprint NOT IN (SELECT host_fingerprint FROM no_machine)) AS host_fingerprint,
           arg_max(ip, ts) AS ip, arg_max(asn, ts) AS asn, arg_max(os, ts) AS os,
           arg_max(gpu_model, ts) AS gpu_model, arg_max(gpu_uuid, ts) AS gpu_uuid,
           arg_max(gpu_serial, ts) AS gpu_serial, arg_max(pci_bus_id, ts) AS pci_bus_id,
           arg_max(vram_total_mb, ts) AS vram_total_mb,
           arg_max(virtualization_mode, ts) AS virtualization_mode, arg_max(mig_mode, ts) AS mig_mode,
           count(*) AS hw_reports, min(ts) AS first_report, max(ts) AS last_report,
           count(DISTINCT concat_ws('|', gpu_uuid, gpu_serial, pci_bus_id, host_fingerprint, gpu_model, vram_total_mb)) AS identities
    FROM hardware WHERE _hour = $epoch GROUP BY device_id
),
up AS (
    SELECT device_id,
           count(*) FILTER (source = 'ping') AS ping_total,
           count(*) FILTER (source = 'ping' AND ok) AS ping_ok,
           count(*) FILTER (source = 'heartbeat') AS heartbeat_total,
           count(*) FILTER (source = 'heartbeat' AND ok) AS heartbeat_ok
    FROM uptime WHERE _hour = $epoch GROUP BY device_id
),
pw AS (SELECT * FROM pow_summary),
challenge_outage AS (SELECT count(*) > 0 AS down FROM challenge_outages WHERE epoch = $epoch),  -- OUTAGE_SQL
seen AS (SELECT device_id FROM hw UNION SELECT device_id FROM up UNION SELECT device_id FROM pw),
prev AS (SELECT * FROM device_features WHERE epoch = $prev),
named AS MATERIALIZED (  -- each model name reported, matched to the catalogue by its name key (catalogue.NAME_KEY_MACRO):
    -- the key is computed for the few distinct names, not per device; with the laptop chip sold under the
    -- name (catalogue.MOBILE_SIBLING_SQL): a claim above every desktop configuration that fits it is that chip
    SELECT d.gpu_model, any_value(a.model_key) AS model_key, any_value(c.vram_max_mb) AS vram_max_mb,
           any_value(m.mobile_key) AS mobile_key, any_value(m.mobile_vram_max_mb) AS mobile_vram_max_mb
    FROM (SELECT gpu_model FROM hw UNION SELECT gpu_model FROM prev) d
    JOIN gpu_alias a ON a.name_key = gpu_name_key(d.gpu_model)
    JOIN gpu_catalogue c ON c.model_key = a.model_key
    LEFT JOIN gpu_mobile_sibling m ON m.model_key = a.model_key
    GROUP BY d.gpu_model
)
SELECT $epoch, s.device_id,
       coalesce(hw.account_id, prev.account_id),
       coalesce(hw.host_fingerprint, prev.host_fingerprint),
       coalesce(hw.ip, prev.ip), coalesce(hw.asn, prev.asn), coalesce(hw.os, prev.os),
       coalesce(hw.gpu_model, prev.gpu_model),
       CASE WHEN hw.device_id IS NULL THEN prev.gpu_uuid ELSE hw.gpu_uuid END,
       CASE WHEN hw.device_id IS NULL THEN prev.gpu_serial ELSE hw.gpu_serial END,
       CASE WHEN hw.device_id IS NULL THEN prev.pci_bus_id ELSE hw.pci_bus_id END,
       coalesce(hw.vram_total_mb, prev.vram_total_mb),
       CASE WHEN hw.device_id IS NULL THEN prev.virtualization_mode ELSE hw.virtualization_mode END,
       CASE WHEN hw.device_id IS NULL THEN prev.mig_mode ELSE hw.mig_mode END,
       coalesce(hw.hw_reports, 0), hw.first_report, hw.last_report,
       coalesce(hw.identities - 1, 0) + CASE WHEN hw.device_id IS NOT NULL AND prev.hw_reports > 0 AND
            concat_ws('|', hw.gpu_uuid, hw.gpu_serial, hw.pci_bus_id, hw.host_fingerprint, hw.gpu_model, hw.vram_total_mb)
         <> concat_ws('|', prev.gpu_uuid, prev.gpu_serial, prev.pci_bus_id, prev.host_fingerprint, prev.gpu_model, prev.vram_total_mb)
            THEN 1 ELSE 0 END,
       coalesce(up.ping_total, 0), coalesce(up.ping_ok, 0),
       coalesce(up.heartbeat_total, 0), coalesce(up.heartbeat_ok, 0),
       coalesce(pw.pow_total, 0), coalesce(pw.pow_ok, 0), coalesce(pw.pow_timeout, 0), coalesce(pw.pow_error, 0),
       coalesce(pw.vram_total, 0), coalesce(pw.vram_ok, 0),
       coalesce(pw.samples_total, 0), coalesce(pw.samples_bad, 0), pw.first_bad_sample,
       coalesce(pw.unverified_ok, 0),
       coalesce(pw.overclaimed_compute, 0), pw.max_compute_over_observed,
       pw.tflops_median, pw.tflops_max,
       cat.fp16_tensor_tflops, cat.model_key,
       CASE WHEN o.down THEN 0 ELSE coalesce(pw.pow_reachable, 0) END,
       CASE WHEN o.down THEN 0 ELSE coalesce(pw.pow_timeout_reachable, 0) END,
       coalesce(pw.samples_flipped, 0), coalesce(pw.digests_repeated, 0)
FROM seen s CROSS JOIN challenge_outage o
LEFT JOIN hw USING (device_id)
LEFT JOIN up USING (device_id)
LEFT JOIN pw USING (device_id)
LEFT JOIN prev USING (device_id)
LEFT JOIN named a ON a.gpu_model = coalesce(hw.gpu_model, prev.gpu_model)
LEFT JOIN gpu_catalogue cat
       ON cat.model_key = CASE WHEN coalesce(hw.vram_total_mb, prev.vram_total_mb)
                                      > a.vram_max_mb * (1 + {catalogue.MEMORY_TOLERANCE})
                                 AND coalesce(hw.vram_total_mb, prev.vram_total_mb)
                                      <= a.mobile_vram_max_mb * (1 + {catalogue.MEMORY_TOLERANCE})
                               THEN a.mobile_key ELSE a.model_key END
ORDER BY s.device_id
"""


CONTEXT_SQL = f"""
INSERT INTO challenge_context
WITH {POW_CLOCK_CTE},
c AS (
    SELECT p.challenge_id, p.device_id, p.batch_id, p.kind, p.status, p.n,
           coalesce(r.reachable, false) AND NOT o.down AS reachable,
           CASE WHEN p.status = 'ok' AND p.compute_ms > 0
                 AND fits_round_trip(p.compute_ms, p.issued_at, p.responded_at, k.unit_ms)
                THEN 2 * pow(p.n, 3) / p.compute_ms / 1e9 END AS tflops,
           ip_site(f.ip) AS ip, f.host_fingerprint, f.account_id, f.catalogue_model
    FROM pow p JOIN device_features f ON f.device_id = p.device_id AND f.epoch = $epoch
    LEFT JOIN pow_clock k ON k._file = p._file
    LEFT JOIN pow_reach r ON r.challenge_id = p.challenge_id
    CROSS JOIN (SELECT count(*) > 0 AS down FROM challenge_outages WHERE epoch = $epoch) o  -- OUTAGE_SQL
    WHERE p._hour = $epoch
)
SELECT $epoch, challenge_id, device_id, batch_id, kind, status, tflops, ip, host_fingerprint, account_id, catalogue_model,
       CASE WHEN batch_id IS NULL THEN 0 ELSE greatest(
           count(*) OVER (PARTITION BY batch_id, ip) - 1,
           CASE WHEN host_fingerprint IS NOT NULL THEN count(*) OVER (PARTITION BY batch_id, host_fingerprint) - 1 ELSE 0 END) END,
       n, reachable
FROM c ORDER BY challenge_id
"""

MEASURES_SQL = """
INSERT INTO device_measures
WITH meas AS (
    SELECT device_id, quantile_cont(tflops, 0.9) AS tflops FROM challenge_context
    WHERE kind = 'matmul' AND tflops IS NOT NULL
      AND epoch > hours_back($epoch, $window) AND epoch <= $epoch
    GROUP BY device_id
),
bandwidth AS (
    SELECT device_id, arg_max(bandwidth_down_mbps, ts) AS down FROM hardware
    WHERE _hour > hours_back($epoch, $window) AND _hour <= $epoch
    GROUP BY device_id
)
SELECT $epoch, f.device_id, m.tflops, b.down
FROM device_features f LEFT JOIN meas m USING (device_id) LEFT JOIN bandwidth b USING (device_id)
WHERE f.epoch = $epoch AND (m.tflops IS NOT NULL OR b.down IS NOT NULL)
ORDER BY f.device_id
"""
MEASURE_WINDOW_HOURS = 24
"""A device's throughput is the 90th percentile of its last day's matmul challenges, its
bandwidth the last report of the day: what the reward stage prices, measured once here so a
rewards-only recalculation reads it instead of scanning a day of challenges per epoch."""

PEERS_SQL = """
INSERT INTO model_peers
WITH suspects AS (  -- devices already in probation or rejected are nobody's honest peer
    SELECT DISTINCT device_id FROM device_tiers
    WHERE epoch > hours_back($epoch, $window) AND epoch < $epoch
      AND tier IN ('probation', 'rejected')
),
per_device AS (
    SELECT device_id, catalogue_model, median(tflops_median) AS tflops
    FROM device_features
    WHERE epoch > hours_back($epoch, $window) AND epoch <= $epoch
      AND tflops_median IS NOT NULL AND catalogue_model IS NOT NULL
      AND device_id NOT IN (SELECT device_id FROM suspects)
    GROUP BY device_id, catalogue_model
)
SELECT $epoch, catalogue_model, count(*), median(tflops), quantile_cont(tflops, 0.9)
FROM per_device GROUP BY catalogue_model ORDER BY catalogue_model
"""
PEER_WINDOW_HOURS = 24
"""A day: every model's honest fleet is seen through one day's heat and load (``model_peers``)."""

SILENCE_MAX_MINUTES = 120
"""``restart_gaps`` keeps heartbeat silences from the cadence's restart minimum up to this long
(or its restart maximum, if longer): the ``restart`` kind reads those up to the restart maximum
(a restart), ``pipelines.sybil.outages`` all of them (a fleet taken down at once for half an
hour, behind proxies of several networks, is a fleet whatever the length). Two hours: about the
longest silence a gap across one hour boundary can show."""

GAPS_SQL = (
    "INSERT INTO restart_gaps WITH"
    + HEARTBEAT_GAPS_CTE
    + """
SELECT $epoch, device_id, before, date_diff('millisecond', before, ts) / 60000.0  -- exact: the restart kind compares it with the maximum
FROM gaps WHERE ts - before BETWEEN to_minutes($min_gap) AND to_minutes($max_gap)
ORDER BY device_id, before
"""
)


class Features(BaseModel):
    """What the features stage decides for the detectors (``[features]`` of the detection policy).

    ``clock_margin_ms``: a challenge's ``compute_ms`` counts as longer than the backend-observed
    round trip (``overclaimed_compute``, evidence of faked timings in ``failed_pow``) only beyond
    this many milliseconds on top of ``fits_round_trip``'s rounding allowance. ``issued_at`` and
    ``responded_at`` may be stamped by two servers whose clocks, disciplined by NTP over the
    internet, agree within tens of milliseconds; a network's stamps 30 ms apart shortened every
    round trip by 30 ms, and 17 of the 600-device network's 494 honest devices, those with the
    quickest links, were rejected for a compute time "longer than the round trip" before this
    margin (fabricated timings of randomized networks overclaim by 50-500 ms; 60 ms apart, the
    quickest honest answers of that network were stamped before their issue and quarantine
    stopped the hour). Throughput is still measured only from times that fit without it
    (``CONTEXT_SQL``).

    ``challenge_outage_*``: an hour in which at least ``challenge_outage_share`` of the challenges
    issued to reachable devices timed out, and at least ``challenge_outage_min`` of them (a handful
    of devices is no fleet), while the fleet answered at most ``challenge_outage_answered`` (half)
    as many challenges as in its busiest hour of the last day (a wave of fake devices that never
    answer, however large, leaves the others' answers as they were; a network's first hour has no
    day behind it and no outage), is the challenge service's outage (the backend's verifier or its
    route to the workers down while pings and heartbeats go on), not every device refusing its
    work. It is recorded in ``challenge_outages`` (``OUTAGE_SQL``); none of its timeouts counts as a
    reachable device's own (``pow_reachable`` and ``pow_timeout_reachable`` are 0 that hour), as a
    source absent from a whole hour is held against nobody (``pipelines.cadence``). Honest workers
    lose about 0.5% of their reachable challenges; with every fraud of two randomized networks in,
    the highest hour was 4.2% (median 2.3-2.9%). A five-hour outage of the 600-device network's
    challenges (hours 2-6) put 455 of its 494 honest devices in probation for failed PoW before
    this. Such an hour still pays no device whose challenge timed out (an unanswered challenge is
    never a pass).

    ``machine_max_ips``: a host fingerprint reported from more public addresses than this in one
    hour is not one machine (``MACHINE_MAX_IPS``); ``detectors.duplicate_hardware.max_ips`` applies
    the same bound to a shared card and must agree with it (``pipelines.policy``).

    ``peer_window_hours``: each model's honest throughput (``model_peers``, the yardstick of
    ``spoofed_model`` and of a measured class) is taken over this many hours (``PEER_WINDOW_HOURS``)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)
    machine_max_ips: int = Field(MACHINE_MAX_IPS, ge=1)
    peer_window_hours: int = Field(PEER_WINDOW_HOURS, ge=1)
    clock_margin_ms: int = Field(50, ge=0)
    challenge_outage_share: float = Field(0.25, gt=0, le=1)
    challenge_outage_min: int = Field(10, ge=1)
    challenge_outage_answered: float = Field(0.5, ge=0, le=1)


REACH_MINUTES = Cadence().reach_minutes
"""At the reference cadence (heartbeats every 10 minutes) a device alive within 12 minutes on both
sides of a challenge was reachable when it was issued; a timeout then is its own doing. The
epoch's own cadence sets the value used (``pipelines.cadence``)."""


def build_features(con: duckdb.DuckDBPyConnection, epoch: str, params: Features | None = None) -> int:
    """Recompute the epoch's ``uptime_cadence`` (how often heartbeats and pings come: the
    thresholds below scale with it), ``challenge_outages`` (the hour, if the challenge service
    failed: ``params``, the policy's ``[features]``), ``device_features``, ``restart_gaps`` (heartbeat silences of a restart or longer, up to two hours),
    ``challenge_context`` (each challenge with
    its device's network identity and how many siblings shared its batch), ``device_measures``
    (each device's throughput and bandwidth over the last day) and ``model_peers``
    (robust throughput of each model across its honest fleet over the last day: devices in
    probation or rejected are left out); idempotent.
    Returns the device count."""
    params = params or Features()
    catalogue.register(con)
    for table in ("device_features", "challenge_context", "model_peers", "restart_gaps", "challenge_outages"):
        con.execute(f"DELETE FROM {table} WHERE epoch = ?", [epoch])
    cadence = measure_cadence(con, epoch)
    prev = previous_epoch(epoch)
    con.execute(REACH_SQL, {"epoch": epoch, "prev": prev, "reach_minutes": cadence.reach_minutes})
    con.execute(POW_SUMMARY_SQL, {"epoch": epoch, "prev": prev, "clock_margin": params.clock_margin_ms})
    con.execute(
        OUTAGE_SQL,
        {"epoch": epoch, "outage_share": params.challenge_outage_share, "outage_min": params.challenge_outage_min,
         "outage_answered": params.challenge_outage_answered},
    )  # fmt: skip
    con.execute(FEATURES_SQL, {"epoch": epoch, "prev": prev, "machine_ips": params.machine_max_ips})
    con.execute("DROP TABLE pow_summary")
    check_one_row_per_device(con, epoch)
    con.execute(CONTEXT_SQL, {"epoch": epoch})
    con.execute("DROP TABLE pow_reach")
    build_measures(con, epoch)
    con.execute(PEERS_SQL, {"epoch": epoch, "window": params.peer_window_hours})
    lo, hi = cadence.restart_minutes
    con.execute(GAPS_SQL, {"epoch": epoch, "prev": prev, "min_gap": lo, "max_gap": max(hi, SILENCE_MAX_MINUTES)})
    return int(scalar(con, "SELECT count(*) FROM device_features WHERE epoch = ?", [epoch]))


def check_one_row_per_device(con: duckdb.DuckDBPyConnection, epoch: str) -> None:
    """Raise if a device has two ``device_features`` rows this epoch (a reference table that
    lists a GPU alias or model twice would do it). The table has no key to refuse them
    (``pipelines.migrations``), and every per-device table of the epoch is built from this one."""
    twice = con.execute(
        "SELECT device_id, count(*) FROM device_features WHERE epoch = ? GROUP BY device_id HAVING count(*) > 1 "
        "ORDER BY device_id LIMIT 3",
        [epoch],
    ).fetchall()
    if twice:
        listed = ", ".join(f"{d} ({n} rows)" for d, n in twice)
        raise ValueError(f"device_features of {epoch} lists a device more than once: {listed}")


def build_measures(con: duckdb.DuckDBPyConnection, epoch: str) -> None:
    """Recompute the epoch's ``device_measures`` from ``challenge_context`` and ``hardware``
    (the epoch's ``device_features`` must exist); idempotent. Also how a database processed
    before the table existed gets it for its past epochs (``pipelines.recalc``)."""
    con.execute("DELETE FROM device_measures WHERE epoch = ?", [epoch])
    con.execute(MEASURES_SQL, {"epoch": epoch, "window": MEASURE_WINDOW_HOURS})
