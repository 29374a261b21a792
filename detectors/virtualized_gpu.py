"""``virtualized_gpu``: one physical card registered as several GPUs.

Signs, each explained in ``reasons``:
- *contention*: devices on one IP or host challenged in the same batch behave like one card:
  their matmul throughput falls towards 1/k of what each does alone, or their VRAM challenges
  fail for all but exactly one (all failing is a card short of memory, ``spoofed_model``;
  honest neighbours, a datacenter host or a lab behind NAT, each have a
  card of their own and pass together). The challenge plan puts suspected siblings in one batch
  so that this shows. Seen in one hour suspects; in ``confirm_hours`` hours establishes.
- *shared identity on one machine*: devices on one IP or host reporting the same GPU UUID,
  serial or bus id (establishes).
- *too many GPUs*: more devices on one host than the claimed model fits in a machine (suspects).
- *NVML virtualization*: ``virtualization_mode`` VGPU / HOST_VGPU / HOST_VSGA, a fraction of a
  card sold as a whole one (establishes); MIG mode enabled (suspects).
"""

from __future__ import annotations

import polars as pl

from detectors.base import Detector, Evidence


class VirtualizedGpu(Detector):
    name = "virtualized_gpu"
    fraud_type = "virtualized_gpu"

    def __init__(
        self,
        threshold: float = 0.5,
        window_hours: int = 24,
        slowdown_slack: float = 1.5,
        confirm_hours: int = 2,
    ):
        super().__init__(threshold)
        self.window_hours = window_hours
        self.slowdown_slack = slowdown_slack
        self.confirm_hours = confirm_hours

    def score(self, evidence: Evidence) -> pl.DataFrame:
        return evidence.sql(
            """
            WITH ctx AS (
                SELECT * FROM challenge_context
                WHERE epoch > hours_back($epoch, $window) AND epoch <= $epoch
            ),
            solo AS (  -- what each device does with no sibling in its batch
                SELECT device_id, median(tflops) AS solo_tflops FROM ctx
                WHERE kind = 'matmul' AND status = 'ok' AND batch_siblings = 0 GROUP BY device_id
            ),
            grouped AS (  -- co-batched sibling groups (same batch and IP), per kind
                SELECT epoch, batch_id, ip, kind, count(DISTINCT device_id) AS k,
                       count(*) FILTER (status = 'ok') AS ok, count(*) FILTER (status = 'error') AS errors,
                       median(tflops / s.solo_tflops) FILTER (status = 'ok') AS ratio,
                       list(DISTINCT device_id) AS devices
                FROM ctx LEFT JOIN solo s USING (device_id)
                WHERE batch_siblings > 0 AND ip IS NOT NULL
                GROUP BY ALL HAVING count(DISTINCT device_id) >= 2
            ),
            slow AS (
                SELECT epoch, ip, batch_id, k, ratio, devices FROM grouped
                WHERE kind = 'matmul' AND ratio IS NOT NULL AND ratio <= $slack / k
            ),
            vram_fail AS (
                SELECT g.epoch, g.ip, g.k, g.errors, g.ok, g.devices FROM grouped g
                WHERE g.kind = 'vram' AND g.errors >= 1 AND g.ok = 1
                  AND (g.k >= 3 OR EXISTS (SELECT 1 FROM slow s WHERE s.epoch = g.epoch AND s.ip = g.ip))
            ),
            contention AS (
                SELECT unnest(devices) AS device_id, epoch,
                       format('{} devices on IP {} in one batch ran at {:.0f}% of their solo speed', k, ip, 100 * ratio) AS what
                FROM slow
                UNION ALL
                SELECT unnest(devices), epoch,
                       format('{} devices on IP {} in one batch: {} VRAM challenge(s) failed, {} passed', k, ip, errors, ok)
                FROM vram_fail
            ),
            contended AS (
                SELECT device_id, count(DISTINCT epoch) AS hours, max(epoch) AS last, min(what) AS example
                FROM contention GROUP BY device_id
            ),
            now AS (SELECT * FROM device_features WHERE epoch = $epoch),
            ident AS (  -- one physical identity on several devices of one machine
                SELECT device_id, max(n) AS sharing FROM (
                    SELECT unnest(list(DISTINCT device_id)) AS device_id, count(DISTINCT device_id) AS n FROM now
                    WHERE gpu_uuid IS NOT NULL GROUP BY ip, gpu_uuid HAVING count(DISTINCT device_id) > 1
                    UNION ALL
                    SELECT unnest(list(DISTINCT device_id)), count(DISTINCT device_id) FROM now
                    WHERE pci_bus_id IS NOT NULL GROUP BY host_fingerprint, pci_bus_id HAVING count(DISTINCT device_id) > 1
                ) GROUP BY device_id
            ),
            crowded AS (
                SELECT unnest(list(n.device_id)) AS device_id, count(*) AS on_host, min(c.max_gpus_per_host) AS fits
                FROM now n JOIN gpu_catalogue c ON c.model_key = n.catalogue_model
                WHERE n.hw_reports > 0 GROUP BY n.host_fingerprint HAVING count(*) > min(c.max_gpus_per_host)
            ),
            judged AS (
                SELECT n.device_id, n.account_id, n.virtualization_mode, n.mig_mode,
                       c.hours, c.example, i.sharing, w.on_host, w.fits,
                       coalesce(c.hours, 0) > 0 AS contention,
                       coalesce(c.hours, 0) >= $confirm AS contention_confirmed,
                       i.sharing IS NOT NULL AS shared_identity,
                       w.on_host IS NOT NULL AS too_many,
                       coalesce(n.virtualization_mode IN ('VGPU', 'HOST_VGPU', 'HOST_VSGA'), false) AS vgpu,
                       coalesce(n.mig_mode, false) AS mig
                FROM now n
                LEFT JOIN contended c USING (device_id)
                LEFT JOIN ident i USING (device_id)
                LEFT JOIN crowded w USING (device_id)
            )
            SELECT device_id, account_id,
                   CASE WHEN contention_confirmed OR shared_identity OR vgpu THEN 1.0
                        WHEN contention THEN 0.85 ELSE 0.7 END AS score,
                   CASE WHEN contention_confirmed OR shared_identity OR vgpu THEN 'reject' ELSE 'probation' END AS action,
                   concat_ws('; ',
                     CASE WHEN contention THEN format('contention in {} of the last {} hours ({})', hours, $window, example) END,
                     CASE WHEN shared_identity THEN format('{} devices on one machine report the same GPU identity', sharing) END,
                     CASE WHEN too_many THEN format('{} GPUs on one host; that model fits {} in a machine', on_host, fits) END,
                     CASE WHEN vgpu THEN format('NVML reports virtualization mode {}', virtualization_mode) END,
                     CASE WHEN mig THEN 'NVML reports MIG mode enabled' END
                   ) AS reason,
                   CAST(json_object('contention_hours', hours, 'devices_sharing_identity', sharing,
                        'gpus_on_host', on_host, 'virtualization_mode', virtualization_mode, 'mig_mode', mig_mode) AS VARCHAR) AS details
            FROM judged WHERE contention OR shared_identity OR too_many OR vgpu OR mig
            """,
            window=self.window_hours,
            slack=self.slowdown_slack,
            confirm=self.confirm_hours,
        )
