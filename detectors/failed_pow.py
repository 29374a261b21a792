"""``failed_pow``: proof-of-work that is wrong, physically impossible, or refused while online.

Honest model: an honest card computes the exact product, so a wrong sampled entry is either
fraud or a hardware fault (a flipped bit in failing memory). Its reported ``compute_ms`` can
never exceed the round trip the backend itself observed (the worker cannot start before it has
the seed), and it cannot run faster than the claimed model's physics (spec sheet x a margin for
overclocking and boost) while also far above its fleet peers. Honest devices do miss
challenges: they are switched off for the night, in maintenance, behind a failed ISP link, or
restarting. Pings and heartbeats say when a device is down, so a timeout counts against PoW
only when the device was seen alive just before *and* just after the challenge
(``pow_reachable`` in the features); even then an honest worker loses a few (restarts,
transient faults), modelled as at most ``honest_timeout_rate`` per reachable challenge.

Decision rules (the ``proof`` in ``details`` says which kind each verdict rests on):
- *exact* (``reject``): >= ``confirm_wrong_samples`` wrong sampled entries over ``wrong_window_hours`` (two
  days), in the answers of >= ``confirm_wrong_hours`` hours (one bit off: below; all in one hour's answers: a
  suspicion, below),
  >= ``confirm_overclaims`` challenges over the window whose ``compute_ms`` is longer than the
  observed round trip (+2 ms for timestamp rounding, +1 s where the times are written to the
  second: ``fits_round_trip``; + ``[features] clock_margin_ms`` for two backend clocks that
  disagree), >= ``confirm_repeats`` answers over the window that commit a ``result_digest`` the
  device committed before (this hour or the hour before) for another product (seed or size: a
  sha256 of the full product names one product; a worker that never computes commits a constant,
  or replays one answer's digest, as 8-25 devices of each of six networks written by others did,
  and no honest device there repeated a digest of its own; a digest many devices write is a
  stand-in, ``features.DIGEST_HOLDERS_MAX``, and where more than ``stand_in_share`` of the hour's
  answering devices repeat one the writer's digests are stand-ins, no commitments), or a
  throughput above the physical ceiling in >= ``confirm_fast_hours`` hours of the window that
  are also >= ``confirm_fast_share`` of its measured hours (a card faster than physics, or a
  worker that fakes its timings, is fast every hour: 100% of measured hours at 4-7x the spec
  on randomized networks);
- *suspicion* (``review``, a lead that changes no tier): hours above the ceiling that are a
  minority of the measured ones. A product of n = 4096 takes ~2 ms on a fast consumer card, so
  a millisecond of timer jitter with an overclock crosses 1.5x, and speed noise of a few
  percent on an overclocked card does too now and then: an honest overclocked RTX 3060 was
  above the ceiling (1.53x) in 2 hours of a 24-hour window and was rejected before this rule;
- *suspicion* (``probation``): wrong entries one bit off the exact value (``one_bit_off`` in
  ``pipelines.features``: off by a power of two, or negated; failing memory or an unstable
  overclock flips bits of a product it did compute, on ~3% of an overclocked card's samples on
  an independently written network, whose three such gamers were rejected and slashed before
  this; a made-up value lands one bit off about once in 4,000), whatever their number: they do
  not count toward the wrong samples that establish fraud; a single repeated digest (a record
  damaged on its way, as a broken duplicate row of a thirteenth network written by others); a single wrong entry (a memory fault looks the same once;
  held while it is in the wrong-sample window, not only in its hour: a twentieth network's workers that made up
  one answer in ~20 were wrong in one or two hours of two days, often more than a day apart),
  wrong entries all in one hour's answers (a record damaged between worker and backend, or a worker that answered another
  challenge, looks like this once: two networks written by others had one honest device each with every sampled entry of
  one challenge wrong, a row their authors broke on purpose, and both were rejected; 349 of the 350 devices of five
  networks that made their answers up were wrong in two hours or more), a
  single overclaimed compute time (a VM's clock stepped by NTP during one challenge does that
  once; a worker that fabricates its timings does it again), most
  answers of the window (>= 3 and >= half) without samples to check (the backend may skip
  sampling now and then; a worker that never proves its work is another matter), or reachable
  challenges refused (timed out, or a matmul answered with an ``error`` that no known rental
  explains: a worker that is there but will not compute, as a relay that answers for a machine
  switched off. A renter may hold the card, and a job shows in ``jobs`` only once it has ended: a
  sixth network written by others had honest rented hosts answer with errors. An error issued
  while a known rental ran is the renter's, and so is one after the last known rental of a card
  its known rentals kept busy >= ``rented_share`` of the window (the next rental likely running),
  or on a rented card in use now (a matmul of the last hours below ``busy_pace`` of its own best);
  a fifth network's relays, rented half an hour a day, errored all night and answered at full
  pace by day) whose count is improbable for an
  honest worker: binomial tail P(X >= refused | reachable challenges, honest_timeout_rate)
  <= ``alpha``. A VRAM challenge's error is left to ``spoofed_model`` (a rental or a game holds
  memory). With ``alpha`` = 1e-6 and one overlapping test per hour, an honest device that
  meets the model is put in probation less than 0.1% of device-months;
- *suspicion* (``probation``, sign ``silent_day``): the same test on the timeouts alone over
  ``window_hours`` (a day): a machine that is on most hours at random while a box answers its
  pings refuses a fifth of its challenges, a few per six hours, which only a day's count tells
  from an honest worker's 2%. A second test an hour: together they put an honest device that
  meets the model in probation less than 0.15% of device-months. An honest GPU hung for hours
  while its host answers stays held until its day's count is within the honest rate again.

A suspicion that rested on errors alone (``signs`` in ``details``: only ``silent``, with errors
among the refusals) is refuted once a rental of the device that ran while those errors came (the
hours of challenges it was first held on) becomes known (its job ended and was delivered) and
nothing is held against it now: the renter held the card while it answered with errors, and a
``clear`` row (proof ``exact``) ends the probation at once instead of at its expiry (a sixth
network written by others: two honest hosts, each rented for hours while their matmuls errored,
stayed held six hours after their jobs showed).
"""

from __future__ import annotations

import polars as pl
from scipy.stats import binom

from detectors.base import Detector, Evidence, held_since_cleared
from detectors.rentals import RENTAL_COVER_CTE, RENTALS_CTE

ERRORS_ALONE = held_since_cleared(
    "failed_pow",
    "CAST(json_extract(e.details, '$.signs') AS VARCHAR[]) = ['silent']"
    " AND CAST(json_extract(e.details, '$.errors_while_reachable') AS BIGINT) > 0",
)
"""``held``: the devices this detector holds, and whether on matmul errors alone."""


class FailedPow(Detector):
    name = "failed_pow"
    fraud_type = "failed_pow"

    def __init__(
        self,
        threshold: float = 0.5,
        ceiling_factor: float = 1.5,
        window_hours: int = 24,
        wrong_window_hours: int = 48,
        confirm_wrong_samples: int = 2,
        confirm_wrong_hours: int = 2,
        timeout_window_hours: int = 6,
        min_timeouts: int = 3,
        honest_timeout_rate: float = 0.02,
        alpha: float = 1e-6,
        confirm_fast_hours: int = 2,
        confirm_fast_share: float = 0.5,
        confirm_overclaims: int = 2,
        confirm_repeats: int = 2,
        stand_in_share: float = 0.2,
        rented_share: float = 0.25,
        busy_pace: float = 0.8,
    ):
        super().__init__(threshold)
        self.ceiling_factor = ceiling_factor
        self.window_hours = window_hours
        if wrong_window_hours < 1:
            raise ValueError(f"{self.name}: wrong_window_hours {wrong_window_hours} must be >= 1")
        self.wrong_window_hours = wrong_window_hours
        self.confirm_wrong_samples = confirm_wrong_samples
        if confirm_wrong_hours < 1:
            raise ValueError(f"{self.name}: confirm_wrong_hours {confirm_wrong_hours} must be >= 1")
        self.confirm_wrong_hours = confirm_wrong_hours
        self.timeout_window_hours = timeout_window_hours
        self.min_timeouts = min_timeouts
        self.honest_timeout_rate = honest_timeout_rate
        self.alpha = alpha
        self.confirm_fast_hours = confirm_fast_hours
        self.confirm_fast_share = confirm_fast_share
        self.confirm_overclaims = confirm_overclaims
        self.confirm_repeats = confirm_repeats
        if not 0 < stand_in_share <= 1:
            raise ValueError(f"{self.name}: stand_in_share {stand_in_share} is outside (0, 1] (a share of the devices)")
        self.stand_in_share = stand_in_share
        if not 0 <= rented_share <= 1:
            raise ValueError(f"{self.name}: rented_share {rented_share} is outside [0, 1] (a share of the window)")
        self.rented_share = rented_share
        if not 0 < timeout_window_hours <= window_hours:
            raise ValueError(
                f"{self.name}: timeout_window_hours {timeout_window_hours} must be in (0, window_hours {window_hours}] "
                "(the day's timeouts include the last hours')"
            )
        if not 0 < busy_pace <= 1:
            raise ValueError(f"{self.name}: busy_pace {busy_pace} is outside (0, 1] (a share of the card's own best)")
        self.busy_pace = busy_pace

    def score(self, evidence: Evidence) -> pl.DataFrame:
        judged = evidence.sql(
            """
            WITH f AS (SELECT * FROM device_features WHERE epoch = $epoch),
            fleet AS (SELECT max(fp16_tensor_tflops) AS top FROM gpu_catalogue),
            wrong_ AS (  -- wrong entries over the wrong-sample window, the rest over the day
                SELECT device_id,
                       CAST(coalesce(sum(samples_bad - coalesce(samples_flipped, 0)) FILTER (wrongs), 0) AS BIGINT) AS wrong_window,
                       count(*) FILTER (wrongs AND samples_bad > coalesce(samples_flipped, 0)) AS wrong_hours,
                       CAST(coalesce(sum(samples_total) FILTER (wrongs), 0) AS BIGINT) AS samples_wrong_window,
                       CAST(coalesce(sum(coalesce(samples_flipped, 0)) FILTER (day), 0) AS BIGINT) AS flipped_window,
                       CAST(coalesce(sum(samples_total) FILTER (day), 0) AS BIGINT) AS samples_window,
                       min(first_bad_sample) FILTER (samples_bad > 0 AND (wrongs OR day)) AS first_wrong,
                       CAST(coalesce(sum(overclaimed_compute) FILTER (day), 0) AS BIGINT) AS overclaimed_window,
                       CAST(coalesce(sum(coalesce(digests_repeated, 0)) FILTER (day), 0) AS BIGINT) AS repeated_window
                FROM (SELECT *, epoch > hours_back($epoch, $window) AS day, epoch > hours_back($epoch, $wrong_window) AS wrongs
                      FROM device_features
                      WHERE epoch > hours_back($epoch, greatest($window, $wrong_window)) AND epoch <= $epoch)
                GROUP BY device_id
                HAVING sum(samples_bad) FILTER (wrongs OR day) > 0 OR sum(overclaimed_compute) FILTER (day) > 0
                    OR sum(coalesce(digests_repeated, 0)) FILTER (day) > 0
            ),
            stand_ins AS (  -- the hour's share of answering devices that repeated a digest: where most do, the writer's
                -- digests are stand-ins for a hash never taken (as one constant many devices write), no commitment
                SELECT count(*) FILTER (coalesce(digests_repeated, 0) > 0) > $repeat_share * count(*) AS yes
                FROM device_features WHERE epoch = $epoch AND pow_ok > 0
            ),
            fast_ AS (  -- hours of the window with a throughput above the physical ceiling, of the hours measured
                SELECT d.device_id, count(*) FILTER (d.tflops_max > coalesce(d.spec_tflops, fl.top) * $ceiling) AS fast_hours,
                       count(d.tflops_max) AS measured_hours,
                       fast_hours >= $confirm_fast AND fast_hours >= $fast_share * measured_hours AS fast_confirmed
                FROM device_features d CROSS JOIN (SELECT max(fp16_tensor_tflops) AS top FROM gpu_catalogue) fl
                WHERE d.epoch > hours_back($epoch, $window) AND d.epoch <= $epoch
                GROUP BY d.device_id
            ),
            timeouts_ AS (  -- the last timeout_window hours, and the day (window) for timeouts scattered over it
                SELECT device_id,
                       CAST(coalesce(sum(pow_timeout_reachable) FILTER (recent), 0) AS BIGINT) AS timeouts,
                       CAST(coalesce(sum(pow_reachable) FILTER (recent), 0) AS BIGINT) AS reachable,
                       CAST(coalesce(sum(pow_timeout) FILTER (recent), 0) AS BIGINT) AS timeouts_all,
                       CAST(coalesce(sum(pow_total) FILTER (recent), 0) AS BIGINT) AS challenges,
                       CAST(coalesce(sum(unverified_ok) FILTER (recent), 0) AS BIGINT) AS unverified_window,
                       CAST(coalesce(sum(pow_ok) FILTER (recent), 0) AS BIGINT) AS ok_window,
                       CAST(sum(pow_timeout_reachable) AS BIGINT) AS day_timeouts, CAST(sum(pow_reachable) AS BIGINT) AS day_reachable
                FROM (SELECT *, epoch > hours_back($epoch, $timeout_window) AS recent FROM device_features
                      WHERE epoch > hours_back($epoch, $window) AND epoch <= $epoch)
                GROUP BY device_id
            ),
            {RENTALS},
            {RENTAL_COVER},
            in_use AS (  -- rented devices whose card answered a matmul of the last hours below busy_pace of its own best
                -- of the day: a renter (or its owner) is using it now
                SELECT c.device_id FROM challenge_context c JOIN rental_cover USING (device_id)
                WHERE c.epoch > hours_back($epoch, $window) AND c.epoch <= $epoch AND c.kind = 'matmul' AND c.tflops > 0
                GROUP BY c.device_id
                HAVING min(c.tflops) FILTER (c.epoch > hours_back($epoch, $timeout_window)) < $busy * quantile_cont(c.tflops, 0.9)
            ),
            errors_ AS (  -- matmul challenges answered with an error while the device was seen alive, unless a renter may
                -- hold the card: on a device rented in the day, an error issued while a known rental ran, after the last
                -- one ended on a card its known rentals kept busy >= rented_share of the window, or while its card is in
                -- use (a job shows in jobs only once it has ended: a sixth network written by others had honest rented
                -- hosts answer with errors between slowed answers; a fifth's relays, rented half an hour a day, errored
                -- all night and answered at full pace by day). A VRAM challenge's error is memory held, spoofed_model's
                SELECT c.device_id, count(*) AS errors
                FROM challenge_context c
                LEFT JOIN pow p ON p.challenge_id = c.challenge_id AND p._hour = c.epoch
                LEFT JOIN rental_cover r ON r.device_id = c.device_id
                WHERE c.epoch > hours_back($epoch, $timeout_window) AND c.epoch <= $epoch
                  AND c.kind = 'matmul' AND c.status = 'error' AND c.reachable
                  AND (r.device_id IS NULL OR (
                       NOT EXISTS (SELECT 1 FROM rentals x
                                   WHERE x.device_id = c.device_id AND p.issued_at >= x.from_ts AND p.issued_at <= x.to_ts)
                       AND NOT coalesce(p.issued_at > r.last_end AND r.covered >= $rented_share, false)
                       AND c.device_id NOT IN (SELECT device_id FROM in_use)))
                GROUP BY c.device_id
            )
            SELECT f.device_id, f.account_id, f.samples_bad, f.samples_total,
                   -- one digest committed for two products: a sha256 of the full product names one product
                   coalesce(f.digests_repeated, 0) > 0 AND NOT si.yes AND w.repeated_window >= $confirm_repeats AS repeated_digest,
                   coalesce(f.digests_repeated, 0) > 0 AND NOT si.yes AND w.repeated_window < $confirm_repeats AS repeated_once,
                   coalesce(w.repeated_window, 0) AS repeated_window,
                   coalesce(w.wrong_window, 0) AS wrong_window, w.samples_wrong_window, w.samples_window, w.first_wrong,
                   f.overclaimed_compute, f.max_compute_over_observed, f.tflops_max,
                   coalesce(f.spec_tflops, fleet.top) * $ceiling AS ceiling,
                   coalesce(f.catalogue_model, 'an unknown model (fleet ceiling used)') AS model,
                   coalesce(t.timeouts, 0) AS timeouts, coalesce(e.errors, 0) AS errors, coalesce(t.reachable, 0) AS reachable,
                   coalesce(t.timeouts_all, 0) AS timeouts_all, coalesce(t.challenges, 0) AS challenges,
                   coalesce(t.day_timeouts, 0) AS day_timeouts, coalesce(t.day_reachable, 0) AS day_reachable,
                   f.unverified_ok,
                   coalesce(w.wrong_window, 0) >= $confirm_wrong AND coalesce(w.wrong_hours, 0) >= $confirm_wrong_hours AS wrong,
                   -- a wrong entry holds the device while it is in the wrong-sample window, not only in its hour: a worker
                   -- that makes up an answer now and then is wrong once or twice a day, the second time a day later
                   coalesce(w.wrong_window, 0) BETWEEN 1 AND $confirm_wrong - 1 AS wrong_once,
                   -- wrong entries, all in the answers of one hour: a record damaged on its way, or a worker that
                   -- answered another challenge, looks like this once; a worker that makes its answers up does it again
                   coalesce(w.wrong_window, 0) >= $confirm_wrong AND coalesce(w.wrong_hours, 0) < $confirm_wrong_hours AS wrong_one_hour,
                   coalesce(w.wrong_hours, 0) AS wrong_hours,
                   coalesce(f.samples_flipped, 0) > 0 AND coalesce(w.wrong_window, 0) < $confirm_wrong AS faulty,
                   coalesce(w.flipped_window, 0) AS flipped_window,
                   f.overclaimed_compute > 0 AND w.overclaimed_window >= $confirm_overclaims AS longer_than_observed,
                   f.overclaimed_compute > 0 AND w.overclaimed_window < $confirm_overclaims AS longer_once,
                   coalesce(w.overclaimed_window, 0) AS overclaimed_window,
                   f.tflops_max > coalesce(f.spec_tflops, fleet.top) * $ceiling
                     AND f.tflops_max > coalesce(p.p90_tflops, 0) * $ceiling
                     AND coalesce(x.fast_confirmed, false) AS too_fast,
                   f.tflops_max > coalesce(f.spec_tflops, fleet.top) * $ceiling
                     AND f.tflops_max > coalesce(p.p90_tflops, 0) * $ceiling
                     AND NOT coalesce(x.fast_confirmed, false) AS fast_once,
                   coalesce(x.fast_hours, 0) AS fast_hours, coalesce(x.measured_hours, 0) AS measured_hours,
                   coalesce(t.unverified_window, 0) >= 3 AND t.unverified_window >= 0.5 * t.ok_window AS unverified,
                   coalesce(t.unverified_window, 0) AS unverified_window
            FROM f CROSS JOIN fleet CROSS JOIN stand_ins si
            LEFT JOIN wrong_ w USING (device_id)
            LEFT JOIN timeouts_ t USING (device_id)
            LEFT JOIN errors_ e USING (device_id)
            LEFT JOIN fast_ x USING (device_id)
            LEFT JOIN model_peers p ON p.epoch = $epoch AND p.catalogue_model = f.catalogue_model
            WHERE f.samples_bad > 0 OR coalesce(w.wrong_window, 0) > 0 OR f.overclaimed_compute > 0 OR f.unverified_ok > 0 OR coalesce(f.digests_repeated, 0) > 0
               OR coalesce(t.timeouts, 0) + coalesce(e.errors, 0) >= $min_timeouts OR coalesce(t.day_timeouts, 0) >= $min_timeouts
               OR f.tflops_max > coalesce(f.spec_tflops, fleet.top) * $ceiling
               OR coalesce(t.unverified_window, 0) >= 3
            """.replace("{RENTALS}", RENTALS_CTE).replace("{RENTAL_COVER}", RENTAL_COVER_CTE),
            ceiling=self.ceiling_factor,
            window=self.window_hours,
            wrong_window=self.wrong_window_hours,
            confirm_wrong=self.confirm_wrong_samples,
            confirm_wrong_hours=self.confirm_wrong_hours,
            confirm_fast=self.confirm_fast_hours,
            confirm_overclaims=self.confirm_overclaims,
            confirm_repeats=self.confirm_repeats,
            repeat_share=self.stand_in_share,
            fast_share=self.confirm_fast_share,
            timeout_window=self.timeout_window_hours,
            min_timeouts=self.min_timeouts,
            rented_share=self.rented_share,
            busy=self.busy_pace,
        )
        # binomial tail of the challenges refused while reachable (timed out, or a matmul answered with an error)
        # under the honest model (vectorised)
        refused = judged["timeouts"].to_numpy() + judged["errors"].to_numpy()
        p_value = binom.sf(refused - 1, judged["reachable"].to_numpy(), self.honest_timeout_rate)
        # and of the timeouts over the day: a machine that is off a few hours a day at random while a box answers
        # its pings refuses a fifth of its challenges, a few per six hours, which only a day's count shows
        day_p = binom.sf(judged["day_timeouts"].to_numpy() - 1, judged["day_reachable"].to_numpy(), self.honest_timeout_rate)
        judged = (
            judged.with_columns(
                pl.Series("p_value", p_value, dtype=pl.Float64),
                pl.Series("day_p_value", day_p, dtype=pl.Float64),
            )
            .with_columns(
                ((pl.col("timeouts") + pl.col("errors") >= self.min_timeouts) & (pl.col("p_value") <= self.alpha)).alias(
                    "silent"
                ),
            )
            .with_columns(
                (~pl.col("silent") & (pl.col("day_timeouts") >= self.min_timeouts) & (pl.col("day_p_value") <= self.alpha)).alias(
                    "silent_day"
                ),
            )
        )
        exact = pl.col("wrong") | pl.col("longer_than_observed") | pl.col("too_fast") | pl.col("repeated_digest")
        ratio = pl.col("max_compute_over_observed").round(2).cast(pl.String).fill_null("?")
        reasons = pl.concat_str(
            [
                pl.when(pl.col("wrong")).then(
                    pl.format(
                        "{} of {} PoW samples wrong over the last {} hours (e.g. {})",
                        "wrong_window",
                        "samples_wrong_window",
                        pl.lit(self.wrong_window_hours),
                        "first_wrong",
                    )  # fmt: skip
                ),
                pl.when(pl.col("wrong_once")).then(
                    pl.format(
                        "1 of {} PoW samples wrong over the last {} hours ({}); once can be a memory fault, twice is not",
                        "samples_wrong_window",
                        pl.lit(self.wrong_window_hours),
                        "first_wrong",
                    )  # fmt: skip
                ),
                pl.when(pl.col("wrong_one_hour")).then(
                    pl.format(
                        "{} of {} PoW samples wrong over the last {} hours, all in one hour's answers (e.g. {}): a record "
                        "damaged on its way or an answer to another challenge looks like this once; wrong again in another "
                        "hour is fraud",
                        "wrong_window",
                        "samples_wrong_window",
                        pl.lit(self.wrong_window_hours),
                        "first_wrong",
                    )  # fmt: skip
                ),
                pl.when(pl.col("faulty")).then(
                    pl.format(
                        "{} of {} PoW samples over the last {} hours one bit off the exact entry (e.g. {}): failing "
                        "memory or an unstable overclock does that, a worker that skipped the work cannot; held until "
                        "it computes right",
                        "flipped_window",
                        "samples_window",
                        pl.lit(self.window_hours),
                        "first_wrong",
                    )  # fmt: skip
                ),
                pl.when(pl.col("longer_than_observed")).then(
                    pl.format(
                        "{} challenge(s) over the last {} hours report compute_ms longer than the backend-observed "
                        "round trip (up to {}x this hour)",
                        "overclaimed_window",
                        pl.lit(self.window_hours),
                        ratio,
                    )  # fmt: skip
                ),
                pl.when(pl.col("longer_once")).then(
                    pl.format(
                        "1 challenge reports compute_ms longer than the backend-observed round trip ({}x); once can be "
                        "a clock stepped during the challenge, twice is not",
                        ratio,
                    )  # fmt: skip
                ),
                pl.when(pl.col("repeated_digest")).then(
                    pl.format(
                        "{} answer(s) over the last {} hours commit a result digest the device committed before for "
                        "another product (seed or size): a digest of the full product names one product, so these "
                        "products were never computed",
                        "repeated_window",
                        pl.lit(self.window_hours),
                    )  # fmt: skip
                ),
                pl.when(pl.col("repeated_once")).then(
                    pl.lit(
                        "1 answer commits a result digest the device committed before for another product; once can "
                        "be a record damaged on its way, twice is not"
                    )
                ),
                pl.when(pl.col("too_fast")).then(
                    pl.format(
                        "measured {} TFLOPS, above the physical ceiling {} for {} ({} of {} measured hours of the last {})",
                        pl.col("tflops_max").round(1),
                        pl.col("ceiling").round(1),
                        "model",
                        "fast_hours",
                        "measured_hours",
                        pl.lit(self.window_hours),
                    )  # fmt: skip
                ),
                pl.when(pl.col("fast_once")).then(
                    pl.format(
                        "measured {} TFLOPS, above the physical ceiling {} for {} in {} of {} measured hours; "
                        "timer jitter and speed noise give such outliers, a card faster than physics is fast in "
                        "most hours",
                        pl.col("tflops_max").round(1),
                        pl.col("ceiling").round(1),
                        "model",
                        "fast_hours",
                        "measured_hours",
                    )  # fmt: skip
                ),
                pl.when(pl.col("silent")).then(
                    pl.format(
                        "{} of {} challenges {} while pings or heartbeats showed the device alive "
                        "(last {} hours; p = {} under an honest {}% timeout rate)",
                        pl.col("timeouts") + pl.col("errors"),
                        "reachable",
                        pl.when(pl.col("errors") == 0)
                        .then(pl.lit("timed out"))
                        .when(pl.col("timeouts") == 0)
                        .then(pl.lit("were answered with an error (matmul, no known rental explains them)"))
                        .otherwise(
                            pl.format(
                                "timed out ({}) or were answered with an error ({}; matmul, no known rental explains them)",
                                "timeouts",
                                "errors",
                            )
                        ),  # fmt: skip
                        pl.lit(self.timeout_window_hours),
                        pl.col("p_value").round_sig_figs(2).cast(pl.String),
                        pl.lit(round(100 * self.honest_timeout_rate, 2)),
                    )  # fmt: skip
                ),
                pl.when(pl.col("silent_day")).then(
                    pl.format(
                        "{} of {} challenges timed out while pings or heartbeats showed the device alive, scattered "
                        "over the last {} hours (p = {} under an honest {}% timeout rate)",
                        "day_timeouts",
                        "day_reachable",
                        pl.lit(self.window_hours),
                        pl.col("day_p_value").round_sig_figs(2).cast(pl.String),
                        pl.lit(round(100 * self.honest_timeout_rate, 2)),
                    )  # fmt: skip
                ),
                pl.when(pl.col("unverified")).then(
                    pl.format(
                        "{} challenge(s) answered ok without samples to verify over the last {} hours",
                        "unverified_window",
                        pl.lit(self.timeout_window_hours),
                    )  # fmt: skip
                ),
            ],
            separator="; ",
            ignore_nulls=True,
        )
        suspected = (
            pl.col("wrong_once")
            | pl.col("wrong_one_hour")
            | pl.col("faulty")
            | pl.col("longer_once")
            | pl.col("repeated_once")
            | pl.col("silent")
            | pl.col("silent_day")
            | pl.col("unverified")
        )
        flagged = judged.filter(exact | suspected | pl.col("fast_once"))
        sign_names = ("wrong", "wrong_once", "wrong_one_hour", "faulty", "longer_than_observed", "longer_once", "too_fast", "fast_once",
                      "repeated_digest", "repeated_once", "silent", "silent_day", "unverified")  # fmt: skip
        signs = pl.concat_list(
            [pl.when(pl.col(n)).then(pl.lit([n])).otherwise(pl.lit([], dtype=pl.List(pl.String))) for n in sign_names]
        )
        found = flagged.with_columns(
            reason=reasons,
        ).select(
            "device_id",
            "account_id",
            pl.when(exact)
            .then(1.0)
            .when(pl.col("silent"))
            .then(
                0.5
                + 0.5 * pl.min_horizontal((pl.col("timeouts") + pl.col("errors")) / pl.max_horizontal(pl.col("reachable"), 1), 1)
            )
            .when(pl.col("silent_day"))
            .then(0.5 + 0.5 * pl.min_horizontal(pl.col("day_timeouts") / pl.max_horizontal(pl.col("day_reachable"), 1), 1))
            .otherwise(0.7)
            .alias("score"),
            pl.when(exact)
            .then(pl.lit("reject"))
            .when(suspected)
            .then(pl.lit("probation"))
            .otherwise(pl.lit("review"))
            .alias("action"),  # fast hours that are a minority of the measured ones: a lead for a person, no tier change
            "reason",
            pl.struct(
                pl.when(exact).then(pl.lit("exact")).otherwise(pl.lit("suspicion")).alias("proof"),
                pl.col("wrong_window").alias("samples_wrong"),
                "wrong_hours",
                pl.col("flipped_window").alias("samples_one_bit_off"),
                pl.col("samples_window").alias("samples_checked"),
                pl.col("samples_wrong_window").alias("samples_checked_for_wrong"),
                pl.col("first_wrong").alias("first_wrong_sample"),
                "overclaimed_compute",
                "overclaimed_window",
                pl.col("repeated_window").alias("digests_repeated"),
                pl.col("tflops_max").round(2),
                pl.col("ceiling").round(2).alias("ceiling_tflops"),
                "fast_hours",
                pl.col("timeouts").alias("timeouts_while_reachable"),
                pl.col("errors").alias("errors_while_reachable"),
                pl.col("reachable").alias("reachable_challenges"),
                pl.col("timeouts_all").alias("timeouts_all"),
                pl.col("challenges"),
                pl.col("p_value"),
                pl.col("day_timeouts").alias("day_timeouts_while_reachable"),
                pl.col("day_reachable").alias("day_reachable_challenges"),
                pl.col("day_p_value"),
                pl.col("unverified_window").alias("unverified_ok"),
                signs.alias("signs"),
            )
            .struct.json_encode()
            .alias("details"),
        )
        return pl.concat([found, self._refuted_by_rentals(evidence, found["device_id"])])

    def _refuted_by_rentals(self, evidence: Evidence, flagged_now: pl.Series) -> pl.DataFrame:
        """``clear`` for a device held on errors alone that a rental known now explains."""
        refuted = evidence.sql(
            """
            WITH {RENTALS},
            {HELD},  -- held(rests_on): every row of its suspicion rested on errors alone
            hired AS (  -- the rentals known now that ran while the errors the hold rests on came (the hours of
                -- challenges it was first held on, up to the hour it was held): how many, and when the last ended
                SELECT h.device_id, count(*) AS rentals, max(r.to_ts) AS last_end
                FROM held h JOIN rentals r USING (device_id)
                WHERE r.to_ts >= epoch_start(hours_back(h.since, $timeout_window - 1))
                  AND r.from_ts < epoch_start(h.since) + INTERVAL 1 HOUR
                GROUP BY h.device_id
            )
            SELECT h.device_id, h.account_id, h.since, r.rentals, r.last_end
            FROM held h JOIN hired r USING (device_id) WHERE h.rests_on
            """.replace("{RENTALS}", RENTALS_CTE).replace("{HELD}", ERRORS_ALONE),
            window=self.window_hours,
            timeout_window=self.timeout_window_hours,
        ).filter(~pl.col("device_id").is_in(flagged_now.implode()))
        return refuted.select(
            "device_id",
            "account_id",
            pl.lit(0.0).alias("score"),
            pl.lit("clear").alias("action"),
            pl.format(
                "the suspicion held since {} rested on matmul errors alone, and a rental of the device that ran while "
                "those errors came is known now (ended {}): the renter held the card",
                "since",
                pl.col("last_end").dt.strftime("%Y-%m-%dT%H:%M"),
            ).alias("reason"),
            pl.struct(
                pl.lit("exact").alias("proof"),
                pl.col("since").alias("suspected_since"),
                pl.col("rentals").alias("rentals_known"),
            )
            .struct.json_encode()
            .alias("details"),
        )
