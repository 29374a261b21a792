"""``failed_pow``: proof-of-work that is wrong, physically impossible, or never answered.

Exact checks establish fraud (``reject``): a sampled product entry that differs from the
recomputed one, a ``compute_ms`` longer than the round trip the backend itself observed, or a
throughput above the physical ceiling of the claimed model (spec-sheet TFLOPS x a margin for
overclocking and boost) that is also far above what the model's fleet peers reach (so one
wrong catalogue figure cannot flag a whole model). Persistent timeouts only suspect (``probation``): an honest device
on a bad link times out too, but not for most of its challenges over several hours. So does
an answer without samples to check (the worker skipped the part that proves the work).
"""

from __future__ import annotations

import polars as pl

from detectors.base import Detector, Evidence


class FailedPow(Detector):
    name = "failed_pow"
    fraud_type = "failed_pow"

    def __init__(
        self,
        threshold: float = 0.5,
        ceiling_factor: float = 1.5,
        timeout_window_hours: int = 6,
        min_timeouts: int = 3,
        timeout_share: float = 0.5,
    ):
        super().__init__(threshold)
        self.ceiling_factor = ceiling_factor
        self.timeout_window_hours = timeout_window_hours
        self.min_timeouts = min_timeouts
        self.timeout_share = timeout_share

    def score(self, evidence: Evidence) -> pl.DataFrame:
        return evidence.sql(
            """
            WITH f AS (SELECT * FROM device_features WHERE epoch = $epoch),
            fleet AS (SELECT max(fp16_tensor_tflops) AS top FROM gpu_catalogue),
            window_ AS (
                SELECT device_id, sum(pow_timeout) AS timeouts, sum(pow_total) AS challenges
                FROM device_features
                WHERE epoch > hours_back($epoch, $window)
                  AND epoch <= $epoch
                GROUP BY device_id
            ),
            judged AS (
                SELECT f.device_id, f.account_id, f.samples_bad, f.samples_total, f.first_bad_sample,
                       f.overclaimed_compute, f.max_compute_over_observed, f.tflops_max,
                       coalesce(f.spec_tflops, fleet.top) * $ceiling AS ceiling,
                       coalesce(f.catalogue_model, 'an unknown model (fleet ceiling used)') AS model,
                       w.timeouts, w.challenges, f.unverified_ok,
                       f.samples_bad > 0 AS wrong,
                       f.overclaimed_compute > 0 AS longer_than_observed,
                       f.tflops_max > coalesce(f.spec_tflops, fleet.top) * $ceiling
                         AND f.tflops_max > coalesce(p.p90_tflops, 0) * $ceiling AS too_fast,
                       w.timeouts >= $min_timeouts AND w.timeouts >= $share * w.challenges AS silent,
                       f.unverified_ok > 0 AS unverified
                FROM f CROSS JOIN fleet LEFT JOIN window_ w USING (device_id)
                LEFT JOIN model_peers p ON p.epoch = $epoch AND p.catalogue_model = f.catalogue_model
            )
            SELECT device_id, account_id,
                   CASE WHEN wrong OR longer_than_observed OR too_fast THEN 1.0
                        WHEN silent THEN 0.5 + 0.5 * timeouts / greatest(challenges, 1)
                        ELSE 0.7 END AS score,
                   CASE WHEN wrong OR longer_than_observed OR too_fast THEN 'reject' ELSE 'probation' END AS action,
                   concat_ws('; ',
                     CASE WHEN wrong THEN format('{} of {} PoW samples wrong ({})', samples_bad, samples_total, first_bad_sample) END,
                     CASE WHEN longer_than_observed THEN format('{} challenge(s) report compute_ms longer than the backend-observed round trip (up to {:.2f}x)', overclaimed_compute, max_compute_over_observed) END,
                     CASE WHEN too_fast THEN format('measured {:.1f} TFLOPS, above the physical ceiling {:.1f} for {}', tflops_max, ceiling, model) END,
                     CASE WHEN silent THEN format('{} of {} challenges timed out over the last {} hours', timeouts, challenges, $window) END,
                     CASE WHEN unverified THEN format('{} challenge(s) answered ok without samples to verify', unverified_ok) END
                   ) AS reason,
                   CAST(json_object('samples_bad', samples_bad, 'samples_total', samples_total,
                        'first_bad_sample', first_bad_sample, 'overclaimed_compute', overclaimed_compute,
                        'tflops_max', round(tflops_max, 2), 'ceiling_tflops', round(ceiling, 2),
                        'timeouts', timeouts, 'challenges', challenges, 'unverified_ok', unverified_ok) AS VARCHAR) AS details
            FROM judged WHERE wrong OR longer_than_observed OR too_fast OR silent OR unverified
            """,
            ceiling=self.ceiling_factor,
            window=self.timeout_window_hours,
            min_timeouts=self.min_timeouts,
            share=self.timeout_share,
        )
