"""``virtualized_gpu``: one physical card registered as several GPUs.

Honest model: neighbours share a lot without sharing a card. A datacenter host carries 8 GPUs,
a lab or a family sits behind one NAT address, a home miner runs two cards in one case, and the
challenge plan batches such neighbours together on purpose. Each has a card of its own, so
together they still compute like k cards; what they do suffer is noise (a few percent per
challenge) and throttling (a hot card loses up to a third of its speed for an hour). Honest
operators may enable MIG on their own cards, and mining rigs hold up to ~19 cards per host.

Signs, each explained in ``reasons`` (``proof`` in ``details`` says which kind):
- *contention* (statistical): devices on one IP (an IPv6 /64: without NAT each VM has its own
  address there, ``contract.ip_site``) or host challenged in the same batch computed,
  all together, like at most ``combined_max`` cards: the sum over members of (pace in the
  batch / the member's own solo median pace) is <= ``combined_max`` (1.15) with every member
  measured. A pace is a speed over the window's median for its claimed model and product size
  (``detectors.pace``): a small product fills no card, and two networks written by others that
  asked products of n = 256 to 2048 at random had 186 honest devices of one rejected here when
  answers of different sizes were compared as they came. k honest cards sum to ~k; two cards
  each throttled by a third still sum to 1.33. A device whose every matmul came with its
  siblings (one address's devices batched every hour) takes its solo pace from its VRAM
  challenges, which come alone; one never challenged alone at all is measured against its
  model's fleet (pace 1.0), except a card in MIG mode, whose instances run at their share of
  it by design. A pair measured either way is not judged (two gaming cards of one house slow
  together often enough); three or more honest cards sum to ~k either way.
  Or their VRAM challenges failed for all but exactly one while the failing members never
  failed alone (for k = 2 only together with the slowdown in the same hour). One hour proves
  nothing: heat and noise line up now and then, and a single solo measurement is a noisy
  baseline. The honest model allows an honest co-batched group to look like one card in up to
  ``honest_contention_rate`` (10%) of its co-batched hours; with x contended hours out of n
  co-batched hours in the window, the binomial tail P(X >= x | n, 10%) <= ``alpha_suspect``
  (1e-2, and x >= 2) suspects and <= ``alpha_confirm`` (1e-4, and x >= 3) establishes.
- *slow together* (statistical): k >= 3 such siblings all measured and every one below
  ``batch_slow`` (60%) of its own solo pace in the same batch: k devices served by fewer cards
  (an independently written network's six "RTX 3090s" backed by two cards, at a third of their
  pace in every batch and at full pace alone, computed like two cards, more than
  ``combined_max``). Honest cards slow down one at a time (a game, a rental, heat by up to a
  third); a cafe's gamers slowed some of its PCs, never a whole batch. What slows a whole host
  at once (a gamer on all its cards, a renter of the whole box) slows it without its siblings
  too, so the honest rate is the device's own: the larger of ``honest_contention_rate`` and its
  Laplace-smoothed share of challenges without a sibling below ``batch_slow`` of its solo pace;
  x such hours of the n co-batched ones at the same binomial levels as contention.
- *slow in batches* (suspicion): a card that answers for other devices too (clones behind
  proxies, time-sliced VMs on other addresses, hidden slices in a rig among real cards) is slow
  exactly when the others are challenged with it, whatever address they sit on. A batched
  challenge counts when its lone challenge (no batch at all) of the same hour ran at >=
  ``lone_pace`` (80%) of its lone median, so a rental, a game or heat in that hour would have
  shown there; it is slow below ``batch_slow`` (60%: beyond the third that heat takes). Beside
  strangers only (no sibling on its IP or host: nothing of its machine is shared with them), x
  slow of n at the binomial tail of ``honest_contention_rate`` <= ``alpha_suspect`` (and x >= 2).
  Case-mates share the machine, and an owner who games now and then is slow inside an hour whose
  lone challenge was at pace, then as often alone: over all its batches the device's honest rate
  is the larger of ``honest_contention_rate`` and its own share of lone challenges that slow
  (Laplace-smoothed, (y + 1) / (m + 2)). Honest devices of five networks written by others were
  slow so in 0-5.8% of such batches. Either test holds the device in probation, never more: the
  card it answers for is not named.
- *shared identity on one machine* (exact): devices on one IP (or /64) or host reporting the same GPU
  UUID, or one PCI bus id on one host where no UUID names the card (``duplicate_hardware``), alive at the same time (``detectors.concurrent``: a
  reinstalled worker's old and new registration report the card in the hour of the switch), of
  one owner (one account, or one site): a host fingerprint is a value the worker reports, and a
  thief who copies a victim's fingerprint and bus id from another country is not on the victim's
  machine (a sixth network written by others had 10 such victims rejected here); such a copy is
  ``duplicate_hardware``'s, which holds every holder for review.
- *too many GPUs* (suspicion): more devices on one host than the claimed model fits in a
  machine and more than ``host_gpu_floor`` (the largest PCIe mining boards hold 19 cards).
- *NVML virtualization* (exact): ``virtualization_mode`` VGPU / HOST_VGPU / HOST_VSGA, a
  fraction of a card sold as a whole one. Not a guest that declares its vGPU profile (NVML
  names a guest after its card and profile, ``NVIDIA A40-48Q``: 48 GB of an A40's 48, one VM per
  card, as a campus VDI lends its idle desktops, a tenth network written by others had 16 such
  guests rejected; or after its card's family and board, ``NVIDIA A100D-80C``: all of an A100
  PCIe 80GB, 16 cloud VMs of a twenty-second network rejected before; ``NVIDIA L40S-24C``: half
  an L40S, 38 cloud VMs on half and quarter profiles of a twenty-fourth network rejected and
  slashed before), claiming no more memory than its profile's frame buffer: a share declared is
  not a share sold as a card, and it is paid the class its own measured throughput supports, no
  more than its share of the card (``pipelines.catalogue.declared_vgpu_sql``); nor one named after the card alone whose reported
  memory is the card's (a guest reports its profile's frame buffer, carved out of the card,
  never shared: a fourteenth such network's 40 cloud VMs on whole-card profiles were rejected).
  A slice that reports the whole card's name and memory is judged by its
  contention and its VRAM challenges like any other device. MIG mode alone is an operator's own setting and is
  only recorded in ``details``; the instances of one card that its owner partitioned share its
  bus id by design and claim their shares of its memory (``detectors.mig``), while MIG slices
  registered as whole cards show up as shared identity, contention or a slow ``spoofed_model``.
"""

from __future__ import annotations

import numpy as np
import polars as pl
from scipy.stats import binom

from detectors.base import Detector, Evidence
from detectors.concurrent import OVERLAP_MINUTES, concurrent_cte
from detectors.mig import MIG_INSTANCES_CTE, MIG_VRAM_TOLERANCE, NOT_A_STAND_IN, UUID_NAMES_NO_CARD
from detectors.pace import PACED_CTE
from pipelines.catalogue import VGPU_PROFILE, declared_vgpu_sql


class VirtualizedGpu(Detector):
    name = "virtualized_gpu"
    fraud_type = "virtualized_gpu"

    def __init__(
        self,
        threshold: float = 0.5,
        window_hours: int = 24,
        combined_max: float = 1.15,
        honest_contention_rate: float = 0.1,
        alpha_suspect: float = 1e-2,
        alpha_confirm: float = 1e-4,
        host_gpu_floor: int = 20,
        overlap_minutes: int = OVERLAP_MINUTES,
        lone_pace: float = 0.8,
        batch_slow: float = 0.6,
    ):
        super().__init__(threshold)
        self.window_hours = window_hours
        self.overlap_minutes = overlap_minutes
        self.combined_max = combined_max
        self.honest_contention_rate = honest_contention_rate
        self.alpha_suspect = alpha_suspect
        self.alpha_confirm = alpha_confirm
        self.host_gpu_floor = host_gpu_floor
        self.lone_pace = lone_pace
        self.batch_slow = batch_slow

    def score(self, evidence: Evidence) -> pl.DataFrame:
        judged = evidence.sql(
            """
            WITH {PACED},
            ctx AS (SELECT * REPLACE (pace AS tflops) FROM paced),  -- speeds as paces: answers of any product size compare (detectors.pace)
            solo AS (  -- what each device does with no sibling in its batch: its matmuls' pace, or where every matmul
                -- came with siblings (one IP's devices batched every hour), its VRAM challenges' (a matmul of their own size)
                SELECT device_id, coalesce(median(tflops) FILTER (kind = 'matmul' AND status = 'ok'),
                                           median(tflops) FILTER (kind = 'vram' AND status = 'ok')) AS solo_tflops,
                       count(*) FILTER (kind = 'matmul' AND status = 'ok') = 0 AS vram_based,
                       count(*) FILTER (kind = 'vram' AND status = 'error') AS solo_vram_errors
                FROM ctx WHERE batch_siblings = 0 GROUP BY device_id
            ),
            members AS (  -- co-batched siblings (same batch and IP), one row per challenge
                SELECT c.epoch, c.batch_id, c.ip, c.kind, c.device_id, c.status,
                       c.tflops / s.solo_tflops AS ratio, coalesce(s.solo_vram_errors, 0) AS solo_vram_errors,
                       coalesce(s.vram_based, false) AS vram_based,
                       -- never alone at all: its pace against its model's fleet (1.0), for contention among >= 3 only;
                       -- not for a card in MIG mode, whose instances run at their share of the card by design
                       coalesce(c.tflops / s.solo_tflops, CASE WHEN m.device_id IS NULL THEN c.tflops END) AS fleet_ratio
                FROM ctx c LEFT JOIN solo s USING (device_id)
                LEFT JOIN (SELECT DISTINCT device_id FROM device_features
                           WHERE epoch > hours_back($epoch, $window) AND epoch <= $epoch AND mig_mode) m USING (device_id)
                WHERE c.batch_siblings > 0 AND c.ip IS NOT NULL
            ),
            grouped AS (
                SELECT epoch, batch_id, ip, kind, count(DISTINCT device_id) AS k,
                       count(ratio) FILTER (status = 'ok') AS measured, sum(ratio) FILTER (status = 'ok') AS combined,
                       max(ratio) FILTER (status = 'ok') AS fastest,
                       count(*) FILTER (status = 'ok') AS ok, count(*) FILTER (status = 'error') AS errors,
                       count(*) FILTER (status = 'error' AND solo_vram_errors > 0) AS errors_also_alone,
                       list(DISTINCT device_id ORDER BY device_id) AS devices, bool_or(vram_based) AS vram_based,
                       count(fleet_ratio) FILTER (status = 'ok') AS fleet_measured,
                       sum(fleet_ratio) FILTER (status = 'ok') AS fleet_combined
                FROM members GROUP BY ALL HAVING count(DISTINCT device_id) >= 2
            ),
            slow AS (  -- all k measured, together no faster than combined_max cards (a pair measured against VRAM
                -- challenges alone is not judged: two honest gaming cards of one house slow together often enough)
                SELECT epoch, ip, batch_id, k, CASE WHEN measured = k THEN combined ELSE fleet_combined END AS combined, devices,
                       CASE WHEN contains(ip, ':') THEN 'one IPv6 /64' ELSE 'one IP' END AS where_
                FROM grouped
                WHERE kind = 'matmul' AND ((measured = k AND combined <= $combined_max AND (k >= 3 OR NOT vram_based))
                                           OR (measured < k AND k >= 3 AND fleet_measured = k AND fleet_combined <= $combined_max))
            ),
            together AS (  -- k >= 3, all measured, every one below batch_slow of its own solo pace at once
                SELECT unnest(devices) AS device_id, epoch,
                       format('{}: {} devices on {} in one batch, the fastest at {}% of its own solo pace', epoch, k,
                              CASE WHEN contains(ip, ':') THEN 'one IPv6 /64' ELSE 'one IP' END,
                              CAST(round(100 * fastest) AS BIGINT)) AS what
                FROM grouped
                WHERE kind = 'matmul' AND measured = k AND k >= 3 AND fastest < $batch_slow
            ),
            slowed_together AS (
                SELECT device_id, count(DISTINCT epoch) AS hours, min(what) AS example FROM together GROUP BY device_id
            ),
            solo_slow AS (  -- how often the device is that slow with no sibling in its batch: its own honest rate
                SELECT c.device_id, count(*) AS solo_challenges, count(*) FILTER (c.tflops < $batch_slow * s.solo_tflops) AS solo_slow
                FROM ctx c JOIN solo s USING (device_id)
                WHERE c.batch_siblings = 0 AND c.kind = 'matmul' AND c.status = 'ok' AND c.tflops IS NOT NULL
                  AND c.device_id IN (SELECT device_id FROM slowed_together)
                GROUP BY c.device_id
            ),
            vram_fail AS (  -- exactly one of k held its VRAM challenge; the others never failed alone
                SELECT g.epoch, g.ip, g.k, g.errors, g.ok, g.devices,
                       CASE WHEN contains(g.ip, ':') THEN 'one IPv6 /64' ELSE 'one IP' END AS where_
                FROM grouped g
                WHERE g.kind = 'vram' AND g.errors >= 1 AND g.ok = 1 AND g.errors_also_alone = 0
                  AND (g.k >= 3 OR EXISTS (SELECT 1 FROM slow s WHERE s.epoch = g.epoch AND s.ip = g.ip))
            ),
            contention AS (
                SELECT unnest(devices) AS device_id, epoch,
                       format('{}: {} devices on {} in one batch computed like {:.2f} cards', epoch, k, where_, combined) AS what
                FROM slow
                UNION ALL
                SELECT unnest(devices), epoch,
                       format('{}: {} devices on {} in one batch: {} VRAM challenge(s) failed, exactly {} passed', epoch, k, where_, errors, ok)
                FROM vram_fail
            ),
            cobatched AS (  -- hours in which the device was co-batched and could be judged
                SELECT unnest(devices) AS device_id, epoch FROM grouped
                WHERE (kind = 'matmul' AND (measured = k OR (k >= 3 AND fleet_measured = k))) OR kind = 'vram'
            ),
            contended AS (
                SELECT b.device_id, count(DISTINCT b.epoch) AS cobatched_hours,
                       count(DISTINCT c.epoch) AS hours, min(c.what) AS example
                FROM cobatched b LEFT JOIN contention c ON c.device_id = b.device_id AND c.epoch = b.epoch
                GROUP BY b.device_id
            ),
            lone AS (  -- challenges nobody else shared (no batch): the cleanest measure of a card's own pace
                SELECT device_id, epoch, max(tflops) AS tflops FROM ctx
                WHERE batch_id IS NULL AND kind = 'matmul' AND status = 'ok' AND tflops IS NOT NULL GROUP BY ALL
            ),
            lone_pace AS (SELECT device_id, median(tflops) AS tflops FROM lone GROUP BY device_id),
            shared_batches AS (SELECT batch_id FROM ctx WHERE batch_id IS NOT NULL GROUP BY batch_id HAVING count(*) >= 2),
            batched AS (  -- batched with others, in an hour its lone challenge ran at pace
                SELECT c.device_id, c.epoch, c.tflops / p.tflops AS ratio, c.batch_siblings = 0 AS strangers
                FROM ctx c
                JOIN lone_pace p USING (device_id)
                JOIN lone l ON l.device_id = c.device_id AND l.epoch = c.epoch
                WHERE c.kind = 'matmul' AND c.status = 'ok' AND c.tflops IS NOT NULL
                  AND c.batch_id IN (SELECT batch_id FROM shared_batches) AND l.tflops >= $lone_pace * p.tflops
            ),
            lone_slow AS (  -- how often the device is that slow alone: its own honest rate
                SELECT c.device_id, count(*) AS lone_challenges, count(*) FILTER (c.tflops < $batch_slow * p.tflops) AS lone_slow
                FROM ctx c JOIN lone_pace p USING (device_id)
                WHERE c.batch_id IS NULL AND c.kind = 'matmul' AND c.status = 'ok' AND c.tflops IS NOT NULL
                GROUP BY c.device_id
            ),
            batch_slow AS (
                SELECT b.device_id, count(*) AS batches, count(*) FILTER (b.ratio < $batch_slow) AS slow_batches,
                       min(b.epoch) FILTER (b.ratio < $batch_slow) AS slow_first,
                       min(b.ratio) FILTER (b.ratio < $batch_slow) AS slow_worst,
                       count(*) FILTER (b.strangers) AS stranger_batches,
                       count(*) FILTER (b.strangers AND b.ratio < $batch_slow) AS stranger_slow,
                       min(b.epoch) FILTER (b.strangers AND b.ratio < $batch_slow) AS stranger_first,
                       min(b.ratio) FILTER (b.strangers AND b.ratio < $batch_slow) AS stranger_worst,
                       any_value(s.lone_slow) AS lone_slow, any_value(s.lone_challenges) AS lone_challenges
                FROM batched b JOIN lone_slow s USING (device_id)
                GROUP BY b.device_id HAVING count(*) FILTER (b.ratio < $batch_slow) > 0
            ),
            now AS NOT MATERIALIZED (SELECT * FROM device_features WHERE epoch = $epoch),
            {MIG},
            idents AS (  -- one physical identity on one machine: a UUID on one site or one host, a bus id on one host
                -- (which the instances of one MIG-partitioned card share by design: detectors.mig)
                SELECT DISTINCT device_id, 'uuid ' || coalesce(ip_site(ip), '') || ' ' || gpu_uuid AS grp
                FROM now WHERE gpu_uuid IS NOT NULL AND {NOT_A_STAND_IN}  -- instances on their card's UUID: one counts
                UNION ALL
                SELECT DISTINCT device_id, 'uuid on host ' || host_fingerprint || ' ' || gpu_uuid AS grp
                FROM now WHERE gpu_uuid IS NOT NULL AND host_fingerprint IS NOT NULL AND {NOT_A_STAND_IN}
                UNION ALL
                SELECT DISTINCT device_id, 'bus ' || host_fingerprint || ' ' || pci_bus_id AS grp
                FROM now WHERE pci_bus_id IS NOT NULL AND host_fingerprint IS NOT NULL AND {UUID_NAMES_NO_CARD}
                  AND device_id NOT IN (SELECT device_id FROM mig_instances)
            ),
            candidates AS (
                SELECT * FROM idents WHERE grp IN (SELECT grp FROM idents GROUP BY grp HAVING count(*) > 1)
            ),
            {CONCURRENT},
            owned AS (  -- ...of one owner: one account, or one site (a host fingerprint and a bus id are values a worker
                -- reports; a copy of them from another owner's machine elsewhere is duplicate_hardware's to review)
                SELECT c.grp FROM concurrent c JOIN now n USING (device_id) GROUP BY c.grp
                HAVING count(DISTINCT n.account_id) = 1 OR count(DISTINCT ip_site(n.ip)) = 1
            ),
            ident AS (  -- ...on several devices alive at once (a reinstall's two registrations are not)
                SELECT device_id, max(n) AS sharing
                FROM (SELECT device_id, count(*) OVER (PARTITION BY grp) AS n FROM concurrent WHERE grp IN (SELECT grp FROM owned))
                GROUP BY device_id
            ),
            crowded AS (
                SELECT unnest(list(n.device_id)) AS device_id, count(*) AS on_host, min(c.max_gpus_per_host) AS fits
                FROM now n JOIN gpu_catalogue c ON c.model_key = n.catalogue_model
                WHERE n.hw_reports > 0 AND n.host_fingerprint IS NOT NULL GROUP BY n.host_fingerprint
                HAVING count(*) > greatest(min(c.max_gpus_per_host), $host_floor)
            ),
            declared_vgpu AS (  -- a guest that declares its vGPU profile: NVML names it after its card (or the card's
                -- family and board: A100D, A100DX, H100XM, H100L) and the profile (NVIDIA A40-48Q: 48 GB of an A40's 48;
                -- NVIDIA L40S-24C: half an L40S), and it claims no more memory than the profile's frame buffer, which is
                -- no more than the card's. A share declared is no share sold as a whole card (a twenty-fourth network
                -- written by others: 38 cloud VMs on half and quarter profiles of A100, H100 and L40S cards rejected and
                -- slashed; the tenth's and twenty-second's whole-card guests before); it is paid no more than its share
                -- of the card (pipelines.rewards), and contention judges slices that share one card
                SELECT device_id FROM ({DECLARED})
                UNION  -- ...or named after the card alone, its frame buffer the card's memory: a guest reports its profile's
                -- frame buffer, and frame buffers are carved out of the card, never shared (a fourteenth network written by
                -- others: 40 cloud VMs on whole-card profiles, NVIDIA RTX A6000 and L40S at their full memory, rejected)
                SELECT n.device_id FROM now n JOIN gpu_catalogue c ON c.model_key = n.catalogue_model
                WHERE n.virtualization_mode = 'VGPU' AND NOT regexp_matches(n.gpu_model, '{VGPU_PROFILE}')
                  -- ECC sets 1/16 of GDDR memory aside (an L40S reports 46,068 of its 49,152 MiB): 0.9 of the card is
                  -- all of it, a half or a quarter profile is not
                  AND n.vram_total_mb >= c.vram_mb * 0.9 AND n.vram_total_mb <= c.vram_max_mb * (1 + {TOL})
            ),
            judged AS (
                SELECT n.device_id, n.account_id, n.virtualization_mode, n.mig_mode,
                       coalesce(c.hours, 0) AS hours, coalesce(c.cobatched_hours, 0) AS cobatched_hours,
                       c.example, i.sharing, w.on_host, w.fits,
                       coalesce(r.slow_batches, 0) AS slow_batches, coalesce(r.batches, 0) AS batches,
                       r.slow_first, r.slow_worst, coalesce(r.lone_slow, 0) AS lone_slow,
                       coalesce(r.lone_challenges, 0) AS lone_challenges,
                       coalesce(g.hours, 0) AS together_hours, g.example AS together_example,
                       coalesce(ss.solo_slow, 0) AS solo_slow, coalesce(ss.solo_challenges, 0) AS solo_challenges,
                       coalesce(r.stranger_slow, 0) AS stranger_slow, coalesce(r.stranger_batches, 0) AS stranger_batches,
                       r.stranger_first, r.stranger_worst,
                       i.sharing IS NOT NULL AS shared_identity,
                       w.on_host IS NOT NULL AS too_many,
                       coalesce(n.virtualization_mode IN ('VGPU', 'HOST_VGPU', 'HOST_VSGA'), false)
                         AND n.device_id NOT IN (SELECT device_id FROM declared_vgpu) AS vgpu
                FROM now n
                LEFT JOIN contended c USING (device_id)
                LEFT JOIN ident i USING (device_id)
                LEFT JOIN crowded w USING (device_id)
                LEFT JOIN batch_slow r USING (device_id)
                LEFT JOIN slowed_together g USING (device_id)
                LEFT JOIN solo_slow ss USING (device_id)
            )
            SELECT * FROM judged
            WHERE hours > 0 OR slow_batches > 0 OR together_hours > 0 OR shared_identity OR too_many OR vgpu
            """.replace("{PACED}", PACED_CTE)
            .replace("{CONCURRENT}", concurrent_cte("candidates"))
            .replace("{MIG}", MIG_INSTANCES_CTE)
            .replace("{DECLARED}", declared_vgpu_sql("now"))
            .replace("{VGPU_PROFILE}", VGPU_PROFILE)
            .replace("{TOL}", str(MIG_VRAM_TOLERANCE))
            .replace("{UUID_NAMES_NO_CARD}", UUID_NAMES_NO_CARD)
            .replace("{NOT_A_STAND_IN}", NOT_A_STAND_IN),
            window=self.window_hours,
            combined_max=self.combined_max,
            host_floor=self.host_gpu_floor,
            overlap_minutes=self.overlap_minutes,
            lone_pace=self.lone_pace,
            batch_slow=self.batch_slow,
        )
        # binomial tail of the contended hours under the honest model (vectorised; the bounds are
        # inclusive, so 2 of 2 hours at 10% is exactly 1e-2 despite floating-point rounding)
        tail = binom.sf(judged["hours"].to_numpy() - 1, judged["cobatched_hours"].to_numpy(), self.honest_contention_rate)
        # slow in batches: beside strangers only at the honest rate; in any batch (case-mates share the
        # machine) beyond the device's own rate of slow lone challenges, at least the honest rate
        stranger_tail = binom.sf(
            judged["stranger_slow"].to_numpy() - 1, judged["stranger_batches"].to_numpy(), self.honest_contention_rate
        )
        slow_rate = np.maximum(
            self.honest_contention_rate, (judged["lone_slow"].to_numpy() + 1) / (judged["lone_challenges"].to_numpy() + 2)
        )
        slow_tail = binom.sf(judged["slow_batches"].to_numpy() - 1, judged["batches"].to_numpy(), slow_rate)
        # slow together: co-batched hours in which a whole batch of >= 3 was slow at once, beyond the device's own
        # rate of slow challenges without a sibling (at least the honest rate)
        together_rate = np.maximum(
            self.honest_contention_rate, (judged["solo_slow"].to_numpy() + 1) / (judged["solo_challenges"].to_numpy() + 2)
        )
        together_tail = binom.sf(judged["together_hours"].to_numpy() - 1, judged["cobatched_hours"].to_numpy(), together_rate)
        judged = (
            judged.with_columns(
                pl.Series("p_value", tail, dtype=pl.Float64),
                pl.Series("stranger_p_value", stranger_tail, dtype=pl.Float64),
                pl.Series("slow_p_value", slow_tail, dtype=pl.Float64),
                pl.Series("slow_rate", slow_rate, dtype=pl.Float64),
                pl.Series("together_p_value", together_tail, dtype=pl.Float64),
                pl.Series("together_rate", together_rate, dtype=pl.Float64),
            )
            .with_columns(
                ((pl.col("hours") >= 2) & (pl.col("p_value") <= self.alpha_suspect * (1 + 1e-9))).alias("contention"),
                ((pl.col("stranger_slow") >= 2) & (pl.col("stranger_p_value") <= self.alpha_suspect * (1 + 1e-9))).alias(
                    "beside_strangers"
                ),
                ((pl.col("slow_batches") >= 2) & (pl.col("slow_p_value") <= self.alpha_suspect * (1 + 1e-9))).alias("in_batches"),
                ((pl.col("together_hours") >= 2) & (pl.col("together_p_value") <= self.alpha_suspect * (1 + 1e-9))).alias(
                    "together"
                ),
            )
            .with_columns(
                ((pl.col("hours") >= 3) & (pl.col("p_value") <= self.alpha_confirm * (1 + 1e-9))).alias("contention_confirmed"),
                ((pl.col("together_hours") >= 3) & (pl.col("together_p_value") <= self.alpha_confirm * (1 + 1e-9))).alias(
                    "together_confirmed"
                ),
                (pl.col("beside_strangers") | pl.col("in_batches")).alias("slowed"),
            )
        )
        exact = pl.col("shared_identity") | pl.col("vgpu")
        established = exact | pl.col("contention_confirmed") | pl.col("together_confirmed")
        suspected = pl.col("contention") | pl.col("together") | pl.col("slowed")
        reason = pl.concat_str(
            [
                pl.when(pl.col("contention")).then(
                    pl.format(
                        "contention in {} of {} co-batched hours of the last {} (p = {} under an honest {}% rate; e.g. {})",
                        "hours",
                        "cobatched_hours",
                        pl.lit(self.window_hours),
                        pl.col("p_value").round_sig_figs(2).cast(pl.String),
                        pl.lit(round(100 * self.honest_contention_rate, 1)),
                        "example",
                    )
                ),  # fmt: skip
                pl.when(pl.col("together")).then(
                    pl.format(
                        "slow together in {} of {} co-batched hours of the last {}: every device of a batch of 3 or more "
                        "below {}% of its own solo pace at once (e.g. {}), and without a sibling that slow in {} of {} "
                        "challenges (p = {} under an honest {}% rate)",
                        "together_hours",
                        "cobatched_hours",
                        pl.lit(self.window_hours),
                        pl.lit(round(100 * self.batch_slow)),
                        "together_example",
                        "solo_slow",
                        "solo_challenges",
                        pl.col("together_p_value").round_sig_figs(2).cast(pl.String),
                        (100 * pl.col("together_rate")).round(1).cast(pl.String),
                    )
                ),  # fmt: skip
                pl.when(pl.col("beside_strangers"))
                .then(
                    pl.format(
                        "slowed to {}% of its own lone pace in {} of {} batches shared with devices elsewhere (none on its IP or "
                        "host; first {}) while its lone challenges of the same hours ran at pace (p = {} under an honest {}% "
                        "rate): its card answers for other devices too",
                        (100 * pl.col("stranger_worst")).round(0).cast(pl.Int64),
                        "stranger_slow",
                        "stranger_batches",
                        "stranger_first",
                        pl.col("stranger_p_value").round_sig_figs(2).cast(pl.String),
                        pl.lit(round(100 * self.honest_contention_rate, 1)),
                    )
                )
                .when(pl.col("in_batches"))
                .then(
                    pl.format(
                        "slowed to {}% of its own lone pace in {} of {} batches (first {}) while its lone challenges of the same "
                        "hours ran at pace, and alone that slow in {} of {} challenges (p = {} under an honest {}% rate): its "
                        "card answers for other devices too",
                        (100 * pl.col("slow_worst")).round(0).cast(pl.Int64),
                        "slow_batches",
                        "batches",
                        "slow_first",
                        "lone_slow",
                        "lone_challenges",
                        pl.col("slow_p_value").round_sig_figs(2).cast(pl.String),
                        (100 * pl.col("slow_rate")).round(1).cast(pl.String),
                    )
                ),
                pl.when(pl.col("shared_identity")).then(
                    pl.format("{} devices on one machine report the same GPU identity", "sharing")
                ),
                pl.when(pl.col("too_many")).then(
                    pl.format("{} GPUs on one host; that model fits {} in a machine", "on_host", "fits")
                ),
                pl.when(pl.col("vgpu")).then(pl.format("NVML reports virtualization mode {}", "virtualization_mode")),
            ],
            separator="; ",
            ignore_nulls=True,
        )
        return judged.filter(suspected | exact | pl.col("too_many")).select(
            "device_id",
            "account_id",
            pl.when(established).then(1.0).when(suspected).then(0.85).otherwise(0.7).alias("score"),
            pl.when(established).then(pl.lit("reject")).otherwise(pl.lit("probation")).alias("action"),
            reason.alias("reason"),
            pl.struct(
                pl.when(exact)
                .then(pl.lit("exact"))
                .when(established)
                .then(pl.lit("statistical"))
                .otherwise(pl.lit("suspicion"))
                .alias("proof"),
                pl.col("hours").alias("contention_hours"),
                "cobatched_hours",
                "p_value",
                "slow_batches",
                pl.col("batches").alias("judged_batches"),
                "lone_slow",
                "lone_challenges",
                "slow_p_value",
                "together_hours",
                "together_p_value",
                "solo_slow",
                "solo_challenges",
                pl.col("stranger_slow").alias("stranger_slow_batches"),
                "stranger_batches",
                "stranger_p_value",
                pl.col("sharing").alias("devices_sharing_identity"),
                pl.col("on_host").alias("gpus_on_host"),
                "virtualization_mode",
                "mig_mode",
            )
            .struct.json_encode()
            .alias("details"),
        )
