"""``spoofed_model``: the card is not the model it claims (a T4 sold as an A100 80GB).

Honest model: honest cards run slower than the spec sheet (thermal or power throttling takes a
third, small cases and old paste more; 30-55% of spec is seen on healthy consumer cards, and
heat can take a third off that: a throttled card at 23% of spec and 29% of its peers' median
was seen on random networks, seed 16), so slowness alone is not below 20% of both the spec and
what their honest peers reach. Memory comes in configurations:
Apple chips share unified memory of several sizes and report a share of it as GPU memory (an
M2 with 16 GB reports ~10.9 GB where the base M2 has 8 GB), so a claim is judged against the
model's largest configuration (``vram_max_mb``), and a claim that the device backs (its VRAM
challenges pass) is never a spoof. Under-claiming memory gains nothing and is not judged.
Unified memory is the system's too: macOS lets the GPU wire about two thirds of it (three
quarters on the largest machines), and apps hold part of that, so on a system-on-chip (the
catalogue's ``form`` ``soc``) a VRAM product above ``unified_gpu_share`` (2/3) of the claim that
fails, hangs or crawls is no evidence (a sixth network written by others sized its challenges
up to 85% of a Mac's claimed memory: honest Macs failed 44 of 182 there, and two were held); a
Mac that claims twice its memory still fails the products below that share.

Three independent signs, each explained in ``reasons``:
- *slow*: over the window even the device's best matmul throughput (90th percentile, so a
  card that is only slowed while sharing a batch is not slow; measured while it claimed the
  model it claims now, as an owner who upgrades the card in a slot keeps its device id) is
  below ``slow_alone_ratio`` (0.2, the honest floor) of BOTH its honest fleet peers' median
  (same claimed model, devices under suspicion left out) AND the catalogue spec, so one wrong
  catalogue figure cannot flag a whole model. Speeds are compared per product size: a small
  product fills no card, so every card looks alike on it (two networks written by others asked
  n = 256 to 2048 at random; their honest H100s measured 2, 17, 108 and 366 TFLOPS by size,
  and RTX 4090s sold as H100s matched them at 256). Against the spec counts the device's best
  size; against its peers, a *telling* size, one its model's honest fleet runs at
  ``telling_share`` (half) of its best size's median or more, the peers' median there (each
  device's median for the size): the telling size where the device falls furthest behind among
  those it answered at least twice (its best of two answers or more there, so one answer slowed by
  a game or a rental is not its measure), else the telling size where it comes closest. A weaker
  card is filled by a smaller product than the card it claims, so a size that does not yet fill
  the claimed model flatters it (a ninth network written by others sold RTX 3090s as H100s: 22%
  of the H100s at n = 2048, where the H100s ran at 59% of their best, 14% at 4096; 4 of 19 were
  held while the closest size judged them); a device measured at no telling size is not slow.
  With no size of ``min_peers`` honest peers the spec alone decides, and so it does when even
  the peers' best size is below the ratio of the spec: a catalogue figure is not wrong by 3x,
  but a model claimed only by a farm of misnamed cards has no honest peers to speak for it.
  Beside VRAM short, an independent sign that chance explains at <= ``vram_false_alarm``, the
  looser ``slow_ratio`` (0.3) corroborates;
- *VRAM short*: VRAM challenges sized to a share of the claimed memory failed, none of that
  size or larger passed in their hour or after them (hangs and crawls, below: in the window at
  all, before them too), and no sibling in the batch passed either
  (a virtualized card lets exactly one slice pass). Memory does not grow, so a later pass shows
  the failures before it were errors or a card in use; a pass before them backs nothing after
  it (a sixteenth network written by others swapped sleepers' 4090s for 3060s and 3070s after a
  day of clean answers: 6 of 16 were never held, the day's passes backing the failures after the
  swap and the new card's slower pace excusing them as a card in use, below). A pass backs the
  memory it used, not the claim: the contract leaves the share to the backend, and a card with half the claimed memory answers the challenges
  sized to a quarter of it and fails those sized to a half (an independently written network).
  Honest workers fail a challenge now and then (a restart, a driver hiccup): at the fleet's own
  error rate e, measured each window on matmul challenges (which a short memory does not fail),
  k failures in a row happen by chance with probability e^k, so VRAM short needs the smallest
  k >= ``min_vram_errors`` (3) with e^k <= ``vram_false_alarm`` (3 failures at e up to 2%,
  4 at 5%; one run of failures per VRAM challenge, ~120 a month at one every 6 h, so <= 0.12%
  of honest device-months). The floor is 3, not 2, because memory held by a rental or a game
  fails in sessions, not at chance: a fifth network written by others, its fleet erring on
  0.18% of matmuls, had 11 rented honest hosts held on two errors each while their jobs still
  ran. Where hangs or crawls are among the failures (below), which a card in use does not
  produce, ``min_vram_failures`` (2) is the floor. Two chance errors in a row held an honest Mac and two RTX 4090s for
  10-11 hours on random networks (seed 15) when two failures were always enough. Errors are not
  always chance: a game or a training run holds part of a card's memory for hours, and every VRAM
  challenge of that session fails (an independently written network's gamers failed two in the
  first hours of a session and passed later that day). A card without the memory fails whenever
  it is asked, so the failures must also span ``vram_span_hours`` (6: an evening's play; a
  longer run still holds the card, in probation, until it passes one). Failures, and the passes
  that answer them, count over ``vram_window_hours`` (48), speed and peers over
  ``window_hours`` (24): a backend may ask for memory once or twice a day (a nineteenth network
  written by others asked every ~13 hours; its cards without the claimed memory failed every
  VRAM challenge, 3-4 in two days and never 3 in one, and none was held), and memory does not
  grow, so a failure two days old still counts until a pass answers it;
  A card without the memory may also hang or crawl instead of failing (paging to host
  memory): a VRAM challenge left unanswered while pings and heartbeats show the device alive
  counts with the failures, where its own measured speed finishes the product in
  1/``vram_timeout_margin`` of the longest VRAM answer the backend accepted in the window (so
  the deadline is not what it missed), and so does one answered alone at under
  1/``vram_timeout_margin`` of its own pace (``detectors.pace``: speeds against the model's at
  each product size; a game or a rental sharing the card slows it by up to about 3), or whose
  round trip on the backend's clock, less the device's own time beyond computing (the median
  over its matmul answers of round trip minus ``compute_ms``: a satellite link adds most of a
  second to every answer, and an eighth network written by others had its remote honest devices
  held at 5.7x their peers' round trip; and the worker draws the matrices from the seed on the
  host, 2 n^2 values, so what is left of that time once two pinged round trips are off grows
  with the product: a twenty-eighth network's honest two-core hosts took 53 s to draw a VRAM
  product that eight-core peers drew in 7-13 s), took over ``vram_timeout_margin``
  times the median round trip of the honest fleet's answers alone for the same claimed model and
  product size (from at least ``vram_trip_peers`` devices): a worker reports its own
  ``compute_ms``, and a fifth network written by others had careful spoofers claim 1.3 s for
  products that took 105 s from host memory, where honest cards took 3-14 s and Apple chips,
  models of their own, 33; at the honest fleet's rate of failed, unanswered or equally slow matmul
  challenges (devices held or rejected in the window left out: a network's own fraud must not
  raise the bar for the rest); such a VRAM short is suspicion only (a hung or crawling product
  shows no memory missing);
- *flat timing*: on a product too small to fill its model (smaller than the size the fleet does
  best at, where its honest cards run it, card by card, at a median under ``flat_fill``, 0.7, of
  their own best at that size; at that size itself a fleet slower than its best is a rented one:
  a twenty-fourth network written by others had 63 honest datacenter cards held so)
  its typical speed (median of two answers or more) is at least ``flat_share`` (0.9) of the
  fleet's median at the best size, and of its own speed there. Every card's efficiency falls on
  small products (the call's fixed cost, tiles that do not fill the card); a timing computed
  from the product's size
  (a cracked worker sleeping 2n^3/spec and answering only the sampled entries, which are
  right) does not fall. A twelfth network written by others had such workers at 2.0-2.9x their
  honest peers' median on its smallest products, honest devices at most 1.12x; a card larger
  than it claims is faster at every size and still slower on small products than on large;
  suspicion only (``probation``);
- *impossible VRAM*: it claims more memory than any configuration of the model has, and no VRAM
  product it answered needed more than that (a card that answers a 41 GB product as a "24 GB"
  RTX 4090 is a VRAM-modded card, sold as such: a sixth network written by others had its 48 GB
  4090s held as impossible claims while they passed every VRAM challenge).
A rental holds part of a card's memory and shares its time: a VRAM challenge issued while a
known job ran on the device (``jobs``: from start, or creation, to end) is not counted (an
independently written network's honest datacenter cards failed 385 of 392 while rented and
passed every one in between), nor one issued after the device's last known rental ended on a card
its known rentals kept busy for at least ``rented_share`` (1/4) of the window, unless it also
failed between two known rentals, when the card was provably free: the renter's next job, still
running, is not in ``jobs`` yet (two networks written by others: of their heavily rented honest
hosts' failures outside known jobs, 147 of 149 and 70 of 71 had no later rental known, and 26 of
40 such hosts were held; their known rentals covered a median 53-57% of the last day, their
spoofers' 2-10% (90th percentile 22-31%), and the spoofers failed between known rentals too),
and neither is one that fails in an hour whose best
matmul ran below ``vram_busy_pace`` of the card's own speed at the same product size (its own,
not its model's: a card of another model keeps its own speed at every size), when a later hour
of the window ran at that speed again (a session ends; a card swapped for a slower one never
gets its speed back): a job shows in ``jobs`` only once
it has ended, and a rental or a game that holds the memory slows the card in that hour (a fifth
network written by others: 85% of its honest VRAM failures fell in such hours, 15% of its
spoofers'; its rented honest hosts were held on two failures each while their jobs still ran).
A hang is not excused so: a product paged through host memory keeps the card busy by itself
(on our randomized networks spoofers that hang were paid twice as long while it was).
A suspicion that rested on the memory alone is refuted once the card answers, at its own pace,
a product at least as large as every one that failed, hung or crawled in the window: the card
holds what the failures doubted (a training run or a game held it then), and a ``clear`` row
(proof ``exact``) ends the probation at once instead of at its expiry (an independently written
network's mining rigs failed eleven VRAM challenges, passed one of the same size, and stayed
held six more hours). A card without the memory cannot answer one; a suspicion that also rested
on slowness or on an impossible claim is not refuted by memory.
- *memory short*: the device's own report gives less memory than the model's base configuration
  (under ``memory_floor``, 0.85: ECC sets 1/16 of GDDR aside, the driver a few hundred MiB), outside
  vGPU, MIG and unified memory, where a guest, an instance or a system-on-chip reports its share.
  It is nothing alone (an RTX 3060 8 GB reports the 12 GB card's name), and with slow (below
  ``slow_ratio``) it establishes the spoof: the card names a smaller card and computes like one (a
  twenty-second network written by others sold RTX 3090s as A100 80GB with their own 24 GB in the
  report, at 24% of their peers, and none was held). With a pace below ``short_pace`` (0.75) of
  its honest peers at a telling size and of the spec, where no rental ran, it is suspected
  (``probation``): a twenty-third network written by others sold RTX 4080s as 4090s with their
  own 16 GB at 61% of the 4090s' pace, and laptop cards as the desktop card at 39%, 37 of 43 never
  held; heat, power caps and a shared card slow an honest card, but none reports a smaller card's
  memory.
Any sign alone suspects (``probation``, proof ``suspicion``); VRAM short on failures together
with slow (below ``slow_ratio``) or
with an impossible claim establishes it (``reject``, proof ``exact``: the device failed,
repeatedly and alone, to hold the memory it claims, and its speed or claim does not fit the
model either). Slowness backs that proof only where no known job ran in the window (a job is in
``jobs`` once it has ended, and one still running explains failures and slowness both) and, with
fewer than ``min_peers`` honest peers, only below ``slow_alone_ratio`` of the spec.
"""

from __future__ import annotations

import polars as pl

from detectors.base import Detector, Evidence, held_since_cleared
from detectors.pace import PACED_CTE
from detectors.rentals import RENTAL_COVER_CTE, RENTALS_CTE


class SpoofedModel(Detector):
    name = "spoofed_model"
    fraud_type = "spoofed_model"

    def __init__(
        self,
        threshold: float = 0.5,
        window_hours: int = 24,
        vram_window_hours: int = 48,
        slow_ratio: float = 0.3,
        slow_alone_ratio: float = 0.2,
        min_measurements: int = 3,
        min_peers: int = 10,
        telling_share: float = 0.5,
        min_vram_failures: int = 2,
        min_vram_errors: int = 3,
        vram_tolerance: float = 0.06,
        memory_floor: float = 0.85,
        short_pace: float = 0.75,
        vram_false_alarm: float = 1e-5,
        vram_span_hours: int = 6,
        vram_timeout_margin: float = 4.0,
        vram_trip_peers: int = 5,
        vram_busy_pace: float = 0.8,
        unified_gpu_share: float = 2 / 3,
        rented_share: float = 0.25,
        flat_fill: float = 0.7,
        flat_share: float = 0.9,
    ):
        super().__init__(threshold)
        if not 0 < vram_false_alarm <= 1:
            raise ValueError(f"{self.name}: vram_false_alarm {vram_false_alarm} is outside (0, 1] (a probability)")
        self.window_hours = window_hours
        if vram_window_hours < window_hours:
            raise ValueError(f"{self.name}: vram_window_hours {vram_window_hours} is below window_hours {window_hours}")
        self.vram_window_hours = vram_window_hours
        if not 0 < memory_floor <= 1:
            raise ValueError(f"{self.name}: memory_floor {memory_floor} is outside (0, 1] (a share of the model's memory)")
        self.memory_floor = memory_floor
        if not slow_ratio <= short_pace <= 1:
            raise ValueError(f"{self.name}: short_pace {short_pace} must be in [slow_ratio {slow_ratio}, 1]")
        self.short_pace = short_pace
        if not 0 < slow_alone_ratio <= slow_ratio:
            raise ValueError(f"{self.name}: slow_alone_ratio {slow_alone_ratio} must be in (0, slow_ratio {slow_ratio}]")
        self.slow_ratio = slow_ratio
        self.slow_alone_ratio = slow_alone_ratio
        self.min_measurements = min_measurements
        self.min_peers = min_peers
        if not 0 < telling_share <= 1:
            raise ValueError(f"{self.name}: telling_share {telling_share} must be in (0, 1] (a share of the best size's median)")
        self.telling_share = telling_share
        self.min_vram_failures = min_vram_failures
        self.min_vram_errors = min_vram_errors
        self.vram_tolerance = vram_tolerance
        self.vram_false_alarm = vram_false_alarm
        self.vram_span_hours = vram_span_hours
        if vram_timeout_margin < 1:
            raise ValueError(
                f"{self.name}: vram_timeout_margin {vram_timeout_margin} is below 1 (its own time must fit the deadline)"
            )
        self.vram_timeout_margin = vram_timeout_margin
        self.vram_trip_peers = vram_trip_peers
        self.vram_busy_pace = vram_busy_pace
        if not 0 < unified_gpu_share <= 1:
            raise ValueError(f"{self.name}: unified_gpu_share {unified_gpu_share} is outside (0, 1] (a share of the claim)")
        self.unified_gpu_share = unified_gpu_share
        if not 0 <= rented_share <= 1:
            raise ValueError(f"{self.name}: rented_share {rented_share} is outside [0, 1] (a share of the window)")
        self.rented_share = rented_share
        if not 0 < flat_fill < flat_share <= 1:
            raise ValueError(f"{self.name}: need 0 < flat_fill {flat_fill} < flat_share {flat_share} <= 1 (shares of a speed)")
        self.flat_fill = flat_fill
        self.flat_share = flat_share

    def score(self, evidence: Evidence) -> pl.DataFrame:
        return evidence.sql(
            """
            WITH now AS (SELECT * FROM device_features WHERE epoch = $epoch AND catalogue_model IS NOT NULL),
            {PACED},
            {RENTALS},
            {RENTAL_COVER},
            rented_pow AS MATERIALIZED (  -- the window's challenges of devices with a known rental: one scan of pow
                SELECT challenge_id, device_id, kind, issued_at FROM pow
                WHERE _hour > hours_back($epoch, $window) AND _hour <= $epoch
                  AND device_id IN (SELECT device_id FROM rentals)
            ),
            hired AS (  -- challenges issued while a rental ran on the device: it holds the card's memory and time
                SELECT DISTINCT p.challenge_id FROM rented_pow p JOIN rentals r ON r.device_id = p.device_id
                WHERE p.issued_at >= r.from_ts AND p.issued_at <= r.to_ts
            ),
            rental_times AS (  -- VRAM challenges of rented devices: after the last known rental ended (the renter's next
                -- job, still running, is not in jobs yet), or between two known rentals (the card was provably free)
                -- and the share of the window its known rentals covered: a card renters keep busy is likely rented now
                SELECT p.challenge_id, p.issued_at > r.last_end AND r.covered >= $rented_share AS after_last,
                       p.issued_at > r.first_end AND p.issued_at < r.last_start AS between_known
                FROM rented_pow p
                JOIN rental_cover r USING (device_id)
                WHERE p.kind = 'vram'
            ),
            ctx AS (  -- recent: within the speed window (the VRAM window reaches further back)
                SELECT c.*, c.epoch > hours_back($epoch, $speed_window) AS recent, h.challenge_id IS NOT NULL AS hired,
                       coalesce(t.after_last, false) AS after_rental, coalesce(t.between_known, false) AS between_rentals
                FROM paced c LEFT JOIN hired h USING (challenge_id) LEFT JOIN rental_times t USING (challenge_id)
            ),
            speed AS (  -- its best speed (a rental only slows a card: what it reached while rented counts too),
                -- measured under the model it claims now: a card swapped for another in its slot was another card
                -- and its pace (detectors.pace: against its model at each product size), which answers of any size
                -- are compared with
                SELECT c.device_id, quantile_cont(c.tflops, 0.9) AS tflops, count(c.tflops) AS measurements,
                       quantile_cont(c.pace, 0.9) AS pace
                FROM ctx c JOIN now n ON n.device_id = c.device_id AND n.catalogue_model = c.catalogue_model
                WHERE c.kind = 'matmul' AND c.tflops IS NOT NULL AND c.recent GROUP BY c.device_id
            ),
            batch_ok AS (  -- VRAM challenges passed per batch and IP
                SELECT batch_id, ip, count(*) FILTER (status = 'ok') AS ok FROM ctx WHERE kind = 'vram' GROUP BY ALL
            ),
            suspects AS (  -- devices held or rejected in the window: chance is the honest fleet's
                SELECT DISTINCT device_id FROM evidence
                WHERE epoch > hours_back($epoch, $speed_window) AND epoch < $epoch AND action IN ('probation', 'reject')
            ),
            sized AS (  -- each device's speed per product size: a small product measures the launch and the tiles, not
                -- the card (a seventh network written by others had its honest H100s at 2, 17, 108 and 366 TFLOPS
                -- on products of n = 256 to 2048, and one asked only twice a day at 2048 looked slow beside the rest)
                SELECT device_id, catalogue_model, n, q[2] AS tflops, q[1] AS typical, answers
                FROM (SELECT device_id, catalogue_model, n, quantile_cont(tflops, [0.5, 0.9]) AS q, count(*) AS answers
                      FROM ctx WHERE kind = 'matmul' AND tflops IS NOT NULL AND recent GROUP BY ALL)
            ),
            size_peers AS (  -- the honest fleet's typical speed per claimed model and product size
                SELECT catalogue_model, n, median(typical) AS median_tflops, count(*) AS devices
                FROM sized WHERE device_id NOT IN (SELECT device_id FROM suspects) GROUP BY ALL
            ),
            yardstick AS (  -- per model, the size at which its honest fleet comes closest to the spec
                SELECT catalogue_model, max(median_tflops) AS best_median, arg_max(n, median_tflops) AS best_n FROM size_peers
                WHERE devices >= $min_peers GROUP BY ALL
            ),
            against_own AS (  -- each device's speed per size beside its own best at the size its model's fleet does best
                SELECT d.*, b.tflops AS own_best, y.best_n, y.best_median
                FROM sized d
                JOIN yardstick y ON y.catalogue_model = d.catalogue_model
                JOIN sized b ON b.device_id = d.device_id AND b.catalogue_model = d.catalogue_model AND b.n = y.best_n
                WHERE b.tflops > 0
            ),
            fills AS (  -- per model and size, the honest fleet's typical speed there against its own best at the size the
                -- fleet does best, device by device (sizes are drawn per challenge: the medians of two sizes are of two
                -- sets of devices, and a mixed fleet's T4s measured 0.70 apart where each card's own ratio was 0.94)
                SELECT catalogue_model, n, median(typical / own_best) AS fill, count(*) AS devices
                FROM against_own WHERE device_id NOT IN (SELECT device_id FROM suspects)
                GROUP BY ALL
            ),
            flat AS (  -- a product too small to fill its model (its honest cards run it at under flat_fill of their own
                -- best at the size the fleet does best) answered, typically, at flat_share of the fleet's median at the
                -- best size or more, and of the device's own speed there: the speed of a filled card where none is filled, a timing computed from
                -- the product's size rather than measured on a card (a twelfth network written by others: cracked
                -- workers at 2.0-2.9x their honest peers on the smallest products, 1.2x on the largest). A card larger
                -- than claimed is faster at every size and still slower on small products than on large ones. Quoted at the
                -- size where it is furthest ahead of its peers
                SELECT d.device_id, arg_max(struct_pack(n := d.n, t := d.typical, peers := p.median_tflops,
                                                        k := p.devices, fill := f.fill, best_n := d.best_n,
                                                        best := d.best_median, own_best := d.own_best),
                                            d.typical / p.median_tflops) AS at
                FROM against_own d
                JOIN now w ON w.device_id = d.device_id AND w.catalogue_model = d.catalogue_model
                JOIN size_peers p ON p.catalogue_model = d.catalogue_model AND p.n = d.n
                JOIN fills f ON f.catalogue_model = d.catalogue_model AND f.n = d.n
                WHERE p.devices >= $min_peers AND f.devices >= $min_peers AND d.answers >= 2 AND f.fill < $flat_fill
                  -- smaller than the size the fleet does best: at that size itself, or a larger one, the card is filled, and
                  -- a fleet whose typical answer is slower than its best there is a rented fleet (a twenty-fourth network
                  -- written by others asked one matmul size of datacenter cards rented 65% of the time: 63 honest
                  -- devices held, typical 0.6-0.7 of their own best)
                  AND d.n < d.best_n
                  AND d.typical >= $flat_share * d.best_median AND d.typical >= $flat_share * d.own_best
                GROUP BY d.device_id
            ),
            by_size AS (  -- per device, under the model it claims now: its best speed at any size (against the spec),
                -- and against its honest peers' at a telling size: one its model's fleet runs at >= telling_share of
                -- its best size's median (a small product fills no card, so every card looks alike there: a seventh
                -- network's RTX 4090s sold as H100s ran at 92% of the H100s' median at n = 256 and at 12% at n = 2048).
                -- The telling size where it falls furthest behind, among those it answered at least twice (its best
                -- of two or more, so one answer slowed by a game or a rental is not its measure): a weaker card fills
                -- up at a smaller product than the one it claims, so a size that does not yet fill the claimed model
                -- flatters it (a ninth network's RTX 3090s sold as H100s: 22% of the H100s at n = 2048, 14% at 4096).
                -- Answered at no such size twice: the telling size where it comes closest
                SELECT device_id, best_tflops, best_n, judged_at.r AS peer_ratio, judged_at.m AS peers,
                       judged_at.k AS peer_devices, judged_at.n AS peer_n, judged_at.t AS peer_tflops
                FROM (
                    SELECT d.device_id, max(d.tflops) AS best_tflops, arg_max(d.n, d.tflops) AS best_n,
                           arg_min(struct_pack(r := ratio, m := p.median_tflops, k := p.devices, n := d.n, t := d.tflops),
                                   [CASE WHEN d.answers >= 2 THEN 0 ELSE 1 END,
                                    CASE WHEN d.answers >= 2 THEN ratio ELSE -ratio END]) FILTER (telling) AS judged_at
                    FROM sized d
                    JOIN now w ON w.device_id = d.device_id AND w.catalogue_model = d.catalogue_model
                    LEFT JOIN size_peers p ON p.catalogue_model = d.catalogue_model AND p.n = d.n
                    LEFT JOIN yardstick y ON y.catalogue_model = d.catalogue_model,
                    LATERAL (SELECT coalesce(p.devices >= $min_peers AND p.median_tflops >= $telling * y.best_median, false)
                             AS telling, d.tflops / p.median_tflops AS ratio)
                    GROUP BY d.device_id
                )
            ),
            chance AS (  -- the honest fleet's share of answered matmul challenges that failed (a short memory fails none),
                -- and of those issued to reachable devices that failed, went unanswered or were answered alone at
                -- under 1/margin of the device's own speed
                SELECT coalesce(count(*) FILTER (status = 'error') / nullif(count(*) FILTER (status IN ('ok', 'error')), 0), 0)
                         AS error_rate,
                       coalesce(count(*) FILTER (status = 'error' OR (status = 'timeout' AND reachable) OR crawled)
                                / nullif(count(*) FILTER (status IN ('ok', 'error') OR (status = 'timeout' AND reachable)), 0), 0)
                         AS failure_rate
                FROM (SELECT c.status, c.reachable,
                             coalesce(c.status = 'ok' AND c.batch_siblings = 0 AND c.pace * $margin < s.pace, false) AS crawled
                      FROM ctx c LEFT JOIN speed s USING (device_id)
                      WHERE c.kind = 'matmul' AND NOT c.hired AND c.recent AND c.device_id NOT IN (SELECT device_id FROM suspects))
            ),
            needed AS (  -- failures in a row that chance explains with probability <= vram_false_alarm
                SELECT error_rate, failure_rate, NEEDED(error_rate) AS vram_needed, NEEDED(failure_rate) AS vram_needed_any
                FROM chance
            ),
            accepted AS (  -- the longest VRAM product the backend accepted in the window: its deadline is no shorter
                SELECT max(2 * pow(n, 3) / (tflops * 1e9)) AS longest_ms
                FROM ctx WHERE kind = 'vram' AND status = 'ok' AND tflops > 0 AND n > 0
            ),
            trips AS (  -- each answered VRAM challenge's round trip on the backend's clock (a worker cannot forge it)
                SELECT challenge_id, date_diff('millisecond', issued_at, responded_at) AS trip_ms FROM pow
                WHERE _hour > hours_back($epoch, $window) AND _hour <= $epoch AND kind = 'vram' AND status = 'ok'
                  AND responded_at IS NOT NULL
            ),
            trip_peers AS (  -- the honest fleet's median round trip per claimed model and product size, answered alone
                SELECT c.catalogue_model, c.n, median(t.trip_ms) AS median_ms, count(DISTINCT c.device_id) AS devices
                FROM ctx c JOIN trips t USING (challenge_id)
                WHERE c.kind = 'vram' AND c.batch_siblings = 0 AND NOT c.hired AND c.device_id NOT IN (SELECT device_id FROM suspects)
                GROUP BY ALL
            ),
            slow_trips AS (  -- devices with a VRAM answer that took over margin x its peers' round trip
                SELECT DISTINCT c.device_id FROM ctx c JOIN trips t USING (challenge_id)
                JOIN trip_peers tp ON tp.catalogue_model = c.catalogue_model AND tp.n = c.n
                WHERE c.kind = 'vram' AND tp.devices >= $trip_peers AND t.trip_ms > $margin * tp.median_ms
            ),
            own_network AS (  -- their own time beyond the computation on matmul answers, on the backend's clock (the
                -- network and the worker's CPU): every answer of a satellite link takes most of a second longer (an
                -- eighth network written by others had honest remote devices at 650-850 ms round trips, 5.7x
                -- their peers' median, on products their peers answered in 155 ms). The CPU's part grows with the
                -- product: the worker draws A and B from the seed on the host, 2 n^2 values (the contract's rule),
                -- so the time left once two of its pinged round trips are taken off is its time per value (a
                -- twenty-eighth network written by others had honest two-core hosts take 53 s to draw a VRAM
                -- product's matrices that eight-core peers drew in 7-13 s). Never pinged: no time per value
                SELECT p.device_id, median(date_diff('millisecond', p.issued_at, p.responded_at) - p.compute_ms) AS overhead_ms,
                       any_value(l.latency_ms) AS link_ms,
                       median(greatest(date_diff('millisecond', p.issued_at, p.responded_at) - p.compute_ms - 2 * l.latency_ms, 0)
                              / (2 * pow(nullif(p.n, 0), 2))) AS per_value_ms
                FROM pow p
                LEFT JOIN (SELECT device_id, median(latency_ms) AS latency_ms FROM uptime
                           WHERE _hour > hours_back($epoch, $window) AND _hour <= $epoch AND source = 'ping' AND ok
                             AND latency_ms >= 0 AND device_id IN (SELECT device_id FROM slow_trips)
                           GROUP BY device_id) l ON l.device_id = p.device_id
                WHERE p._hour > hours_back($epoch, $window) AND p._hour <= $epoch AND p.kind = 'matmul' AND p.status = 'ok'
                  AND p.responded_at IS NOT NULL AND p.compute_ms >= 0
                  AND p.device_id IN (SELECT device_id FROM slow_trips)
                GROUP BY p.device_id
            ),
            hour_pace AS (  -- each hour's best matmul against the card's own: a card in use (a rental not yet in jobs, a
                -- game) is slow all hour. Its own speed at the same product size (p90, from two answers of that size
                -- on; with fewer, its pace against its p90 pace: detectors.pace): a card of another model than it
                -- claims keeps its own speed at every size, not its claimed model's
                SELECT c.device_id, c.epoch,
                       max(CASE WHEN o.answers >= 2 THEN c.tflops / o.tflops ELSE c.pace / s.pace END) AS share
                FROM ctx c
                JOIN (SELECT DISTINCT device_id, epoch FROM ctx WHERE kind = 'vram') v  -- only hours with a VRAM challenge
                  ON v.device_id = c.device_id AND v.epoch = c.epoch
                JOIN sized o ON o.device_id = c.device_id AND o.catalogue_model = c.catalogue_model AND o.n IS NOT DISTINCT FROM c.n
                LEFT JOIN speed s ON s.device_id = c.device_id
                WHERE c.kind = 'matmul' AND c.tflops IS NOT NULL GROUP BY ALL
            ),
            back_at_speed AS (  -- the last hour each card's best matmul ran at busy x its own speed or faster: a card in
                -- use gets its speed back when the session ends; a card swapped for a slower one never does
                SELECT c.device_id, max(c.epoch) AS epoch
                FROM ctx c
                JOIN sized o ON o.device_id = c.device_id AND o.catalogue_model = c.catalogue_model AND o.n IS NOT DISTINCT FROM c.n
                LEFT JOIN speed s ON s.device_id = c.device_id
                WHERE c.kind = 'matmul' AND c.tflops IS NOT NULL
                  AND CASE WHEN o.answers >= 2 THEN c.tflops / o.tflops ELSE c.pace / s.pace END >= $busy
                GROUP BY c.device_id
            ),
            vram_ctx AS (  -- each VRAM challenge and what it shows: failures over the VRAM window (a backend may ask for
                -- memory once or twice a day: a nineteenth network written by others asked every ~13 h, and its cards
                -- without the claimed memory failed every one, 3-4 in two days, never 3 in one), hangs and crawls, which
                -- every pass before them answers, and those passes, over the speed window
                SELECT c.device_id, c.epoch, c.status, c.hired, c.n, c.recent,
                       -- slow in its hour, and back at its own speed after it: a session that ended
                       coalesce(h.share < $busy AND k.epoch > c.epoch, false) AS busy,
                       -- a rental holds part of the card's memory: what fails while one runs is not counted, nor what
                       -- fails in an hour its matmul ran below busy x its own speed (in use: one still running, a game);
                       -- a hang is not excused so: a product paged through host memory keeps the card busy itself
                       -- after its last known rental: a job still running, unless it also failed while provably free
                       c.after_rental AND count(*) FILTER (c.status = 'error' AND c.between_rentals AND NOT c.hired)
                                            OVER (PARTITION BY c.device_id) = 0 AS running_job,
                       c.status = 'error' AND coalesce(b.ok, 0) = 0 AND NOT c.hired AND NOT busy AND NOT running_job
                         AS solo_failure,
                       2 * pow(c.n, 3) / (s.tflops * 1e9) AS predicted_ms, c.pace / s.pace AS own_share,
                       -- unanswered while alive, no sibling passed, and its own speed is no excuse
                       coalesce(c.status = 'timeout' AND c.reachable AND coalesce(b.ok, 0) = 0 AND NOT c.hired AND recent
                                AND s.measurements >= $min_meas
                                AND $margin * predicted_ms <= a.longest_ms, false) AS solo_timeout,
                       -- its round trip, less its own time beyond computing (its link, and its CPU drawing this product's values),
                       -- over its peers' median
                       greatest(t.trip_ms - coalesce(greatest(w.overhead_ms, 2 * w.link_ms + w.per_value_ms * 2 * pow(c.n, 2), 0), 0), 0)
                         / tp.median_ms AS trip_ratio,
                       -- answered alone, at under 1/margin of its own speed, or in over margin x its peers' round trip for
                       -- the product (a worker reports its own compute_ms; the backend's clock it cannot forge): the
                       -- product ran from host memory
                       coalesce(c.status = 'ok' AND c.batch_siblings = 0 AND NOT c.hired AND recent
                                AND (s.measurements >= $min_meas AND c.pace * $margin < s.pace
                                     OR tp.devices >= $trip_peers AND trip_ratio > $margin), false) AS crawled
                FROM ctx c LEFT JOIN batch_ok b ON b.batch_id = c.batch_id AND b.ip = c.ip
                LEFT JOIN speed s ON s.device_id = c.device_id CROSS JOIN accepted a
                LEFT JOIN hour_pace h ON h.device_id = c.device_id AND h.epoch = c.epoch
                LEFT JOIN back_at_speed k ON k.device_id = c.device_id
                LEFT JOIN trips t ON t.challenge_id = c.challenge_id
                LEFT JOIN own_network w ON w.device_id = c.device_id
                LEFT JOIN trip_peers tp ON tp.catalogue_model = c.catalogue_model AND tp.n = c.n
                WHERE c.kind = 'vram'
            ),
            unified AS (  -- a system-on-chip's claim: memory the OS shares with its GPU (macOS wires about 2/3 of it)
                SELECT n.device_id, n.vram_total_mb FROM now n JOIN gpu_catalogue g ON g.model_key = n.catalogue_model
                WHERE g.form = 'soc'
            ),
            vram_held AS (  -- a card holds at least the largest product it answered from then on: only failures above
                -- what it answered in their hour or later count (memory does not grow, so a later pass shows the failures
                -- before it were errors; a card swapped for a smaller one fails after its last pass), and on unified
                -- memory only those the GPU may wire (a product above the share fails on an honest Mac)
                SELECT v.*, NOT coalesce(8 * pow(v.n, 2) / 1048576 > $unified_share * u.vram_total_mb, false) AS wirable,
                       (held_later = 0 OR coalesce(n > held_later_n, false)) AND wirable AS above,  -- a pass of unknown size
                       -- backs every size; a hang or a crawl is held to every pass of the window, before it too: a box whose
                       -- pings a proxy answers while it is off leaves its challenges unanswered, spoofed_uptime's to judge
                       (held = 0 OR coalesce(n > held_n, false)) AND wirable AS above_any
                FROM (SELECT *, max(n) FILTER (status = 'ok' AND NOT crawled AND recent) OVER w AS held_n,
                             count(*) FILTER (status = 'ok' AND NOT crawled AND recent) OVER w AS held,
                             max(n) FILTER (status = 'ok' AND NOT crawled) OVER later AS held_later_n,
                             count(*) FILTER (status = 'ok' AND NOT crawled) OVER later AS held_later
                      FROM vram_ctx
                      WINDOW w AS (PARTITION BY device_id),
                             later AS (PARTITION BY device_id ORDER BY epoch RANGE BETWEEN CURRENT ROW AND UNBOUNDED FOLLOWING)) v
                LEFT JOIN unified u USING (device_id)
            ),
            unified_chance AS (  -- unified memory is the apps' too: the honest system-on-chip fleet's own share of VRAM
                -- challenges below the wired share that failed as a short memory would (a twelfth network written by
                -- others: its honest Macs failed 9.5% of them, discrete cards' matmuls 0.57%)
                SELECT count(*) FILTER (v.solo_failure) / nullif(count(*) FILTER (v.status IN ('ok', 'error')), 0)
                         AS unified_rate,
                       count(DISTINCT v.device_id) AS unified_devices
                FROM vram_held v JOIN unified u USING (device_id)
                WHERE NOT v.hired AND v.device_id NOT IN (SELECT device_id FROM suspects)
                  AND 8 * pow(v.n, 2) / 1048576 <= $unified_share * u.vram_total_mb
            ),
            unified_needed AS (  -- from min_peers such devices on; with fewer, the fleet's matmul rate alone
                SELECT CASE WHEN unified_devices >= $min_peers THEN unified_rate END AS unified_rate,
                       CASE WHEN unified_devices >= $min_peers THEN NEEDED(unified_rate) END AS unified_needed
                FROM unified_chance
            ),
            vram AS (
                SELECT device_id, count(*) FILTER (solo_failure AND above) AS solo_failures,
                       any_value(held) AS passed,
                       CAST(round(8 * pow(max(held_n), 2) / 1048576) AS BIGINT) AS held_mib,
                       date_diff('hour', epoch_start(min(epoch) FILTER (solo_failure AND above)),
                                 epoch_start(max(epoch) FILTER (solo_failure AND above))) AS failure_span,
                       count(*) FILTER (solo_timeout AND above_any) AS solo_timeouts,
                       max(predicted_ms) FILTER (solo_timeout AND above_any) AS timeout_predicted_ms,
                       count(*) FILTER (crawled AND above_any) AS crawled_answers,
                       min(own_share) FILTER (crawled AND above_any) AS crawled_share,
                       max(trip_ratio) FILTER (crawled AND above_any) AS crawled_trip_ratio,
                       date_diff('hour', epoch_start(min(epoch) FILTER (solo_failure AND above OR (solo_timeout OR crawled) AND above_any)),
                                 epoch_start(max(epoch) FILTER (solo_failure AND above OR (solo_timeout OR crawled) AND above_any)))
                         AS any_span,
                       count(*) FILTER (hired AND status IN ('error', 'timeout')) AS hired_failures,
                       count(*) FILTER (busy AND NOT hired AND status = 'error') AS busy_failures,  -- excused; hangs are not
                       count(*) FILTER (running_job AND NOT busy AND NOT hired AND status = 'error') AS after_rental_failures
                FROM vram_held GROUP BY device_id
            ),
            {HELD},  -- held(rests_on): every row of its suspicion rested on the memory alone
            judged AS (
                SELECT n.device_id, n.account_id, n.catalogue_model AS model, n.vram_total_mb, c.vram_mb,
                       s.tflops, s.measurements, z.best_tflops, z.best_n, z.peers, z.peer_devices, z.peer_n, z.peer_tflops, n.spec_tflops AS spec,
                       v.solo_failures, v.passed, v.held_mib, v.failure_span,
                       -- on unified memory the rarer of the two: the fleet's matmul errors, its Macs' VRAM failures
                       CASE WHEN un.device_id IS NOT NULL AND m.unified_needed > q.vram_needed
                            THEN m.unified_rate ELSE q.error_rate END AS error_rate,
                       CASE WHEN un.device_id IS NOT NULL AND m.unified_needed > q.vram_needed THEN 'unified-memory fleet''s'
                            ELSE 'fleet''s' END AS rate_of,
                       greatest(q.vram_needed, CASE WHEN un.device_id IS NOT NULL THEN m.unified_needed END) AS failures_needed,
                       v.solo_timeouts, v.timeout_predicted_ms, v.crawled_answers, v.crawled_share, v.crawled_trip_ratio, v.any_span, q.failure_rate,
                       greatest(q.vram_needed_any, CASE WHEN un.device_id IS NOT NULL THEN m.unified_needed END)
                         AS failures_needed_any,
                       a.longest_ms,
                       SLOWER_THAN_SLOW_RATIO AS slow,
                       SLOWER_THAN_ALONE_RATIO AS slow_alone,
                       SLOWER_THAN_SHORT_PACE AS short_paced,
                       coalesce(v.solo_failures >= failures_needed AND v.failure_span >= $span, false) AS failed_short,
                       coalesce(v.solo_timeouts + v.crawled_answers > 0 AND v.solo_failures + v.solo_timeouts + v.crawled_answers >= failures_needed_any
                                AND v.any_span >= $span, false) AS unbacked_short,
                       failed_short OR unbacked_short AS vram_short,
                       f.device_id IS NOT NULL AS flat_timing, f.at AS flat_at,
                       v.hired_failures, v.busy_failures, v.after_rental_failures, r.device_id IS NOT NULL AS rented,
                       -- more memory than any configuration has, unless the card answered a product that needed more
                       -- (a VRAM-modded card: a 4090 with 48 GB is sold; the catalogue lists what vendors ship)
                       n.vram_total_mb > c.vram_max_mb * (1 + $tol) AND coalesce(v.held_mib <= c.vram_max_mb * (1 + $tol), true)
                         AS impossible_vram,
                       -- its own report names a smaller card: less memory than the model's base configuration less what
                       -- ECC and the driver set aside, outside vGPU and MIG (a guest or instance reports its share) and
                       -- unified memory (a share of the system's)
                       n.vram_total_mb < c.vram_mb * $memory_floor AND c.form <> 'soc' AND NOT coalesce(n.mig_mode, false)
                         AND upper(coalesce(n.gpu_uuid, '')) NOT LIKE 'MIG-%'
                         AND coalesce(n.virtualization_mode, 'NONE') NOT IN ('VGPU', 'HOST_VGPU', 'HOST_VSGA') AS memory_short,
                       -- established: failures alone, with a claim no configuration has, or with slowness where no
                       -- rental ran (a rental still running is not in jobs yet, and it explains memory and speed both)
                       -- with too few honest peers to compare, the spec alone backs proof only below the honest floor
                       -- (a rented H100 at 26% of a spec its few peers reach 62% of was rejected)
                       (failed_short OR memory_short) AND (impossible_vram OR (slow AND (z.peer_ratio IS NOT NULL OR slow_alone) AND NOT rented))
                         AND (failed_short OR slow) AS proven,
                       -- suspected: its own report names a smaller card and it computes below short_pace of its peers
                       -- and of the spec, where no rental ran: two independent signs, neither of them proof
                       memory_short AND short_paced AND z.peer_ratio IS NOT NULL AND NOT rented AND NOT proven AS memory_suspect,
                       c.vram_max_mb,
                       -- refuted: held on the memory alone, it has since answered a product at its own pace and nothing
                       -- larger failed, hung or crawled in the window: the card holds what the failures doubted
                       coalesce(o.rests_on AND v.passed > 0 AND v.solo_failures + v.solo_timeouts + v.crawled_answers = 0
                                AND NOT coalesce(slow_alone OR vram_short OR impossible_vram OR flat_timing OR memory_suspect, false), false)
                         AS refuted,
                       o.since AS suspected_since
                FROM now n
                JOIN gpu_catalogue c ON c.model_key = n.catalogue_model
                LEFT JOIN speed s USING (device_id)
                LEFT JOIN vram v USING (device_id)
                LEFT JOIN (SELECT DISTINCT device_id FROM rentals) r USING (device_id)
                LEFT JOIN by_size z USING (device_id)
                LEFT JOIN yardstick y ON y.catalogue_model = n.catalogue_model
                LEFT JOIN flat f USING (device_id)
                LEFT JOIN held o USING (device_id)
                LEFT JOIN unified un USING (device_id)
                CROSS JOIN needed q CROSS JOIN accepted a CROSS JOIN unified_needed m
            )
            SELECT device_id, account_id,
                   CASE WHEN refuted THEN 0.0 WHEN proven THEN 1.0 WHEN vram_short THEN 0.8 ELSE 0.7 END AS score,
                   CASE WHEN refuted THEN 'clear' WHEN proven THEN 'reject' ELSE 'probation' END AS action,
                   CASE WHEN refuted THEN format('the VRAM suspicion held since {} is refuted: it answered a {} MiB product at its '
                                                 'own pace, and no larger one failed, hung or crawled in the window',
                                                 suspected_since, held_mib) ELSE
                   concat_ws('; ',
                     CASE WHEN slow AND (slow_alone OR vram_short OR memory_short AND proven) THEN format('measures {:.1f} TFLOPS at best{}: {:.0f}% of the spec {:.1f} for {}{}',
                                                best_tflops, coalesce(format(' (products of n = {})', best_n), ''),
                                                100 * best_tflops / spec, spec, model,
                                                CASE WHEN peers IS NOT NULL
                                                     THEN format(' and, at n = {}, {:.0f}% of its {} honest peers'' median {:.1f}',
                                                                 peer_n, 100 * peer_tflops / peers, peer_devices, peers)
                                                     ELSE ' (too few honest peers to compare)' END) END,
                     CASE WHEN failed_short THEN format('{} VRAM challenge(s) at the claimed {} MiB failed over {} hours, {} (no batch '
                                                      'sibling passed either; {} needed at the {} {:.2f}% error rate)',
                                                      solo_failures, vram_total_mb, failure_span, HELD, failures_needed, rate_of,
                                                      100 * error_rate)
                          WHEN unbacked_short THEN format('{} VRAM challenge(s) at the claimed {} MiB over {} hours, none backed while the '
                                                      'device was seen alive{}: {} (no batch sibling passed); {} needed at the '
                                                      'fleet''s {:.2f}% rate of failed, unanswered or crawling challenges',
                                                      solo_failures + solo_timeouts + crawled_answers, vram_total_mb, any_span, HELD_TAIL,
                                                      concat_ws(', ',
                                                        CASE WHEN solo_timeouts > 0 THEN format(
                                                          '{} unanswered, though its own speed finishes one in {:.1f} s and the '
                                                          'backend accepted a VRAM answer that took {:.1f} s',
                                                          solo_timeouts, timeout_predicted_ms / 1000, longest_ms / 1000) END,
                                                        CASE WHEN crawled_answers > 0 THEN format(
                                                          '{} answered alone at {} (the pace of host memory)', crawled_answers,
                                                          concat_ws(' or ',
                                                            CASE WHEN crawled_share * $margin < 1 THEN format(
                                                              '{:.0f}% of its own speed or less', 100 * crawled_share) END,
                                                            CASE WHEN crawled_trip_ratio > $margin THEN format(
                                                              'up to {:.1f}x its peers'' median round trip for the product, its own network''s time taken off',
                                                              crawled_trip_ratio) END)) END,
                                                        CASE WHEN solo_failures > 0 THEN format('{} failed', solo_failures) END),
                                                      failures_needed_any, 100 * failure_rate) END,
                     CASE WHEN impossible_vram THEN format('claims {} MiB; no {} has more than {} MiB', vram_total_mb, model, vram_max_mb) END,
                     CASE WHEN memory_short AND proven THEN format('reports {} MiB of memory, where a {} has {} MiB: its own report names a '
                                                                   'smaller card, and it computes like one', vram_total_mb, model, vram_mb) END,
                     CASE WHEN memory_suspect THEN format('reports {} MiB of memory, where a {} has {} MiB, and computes {:.1f} TFLOPS at '
                                                          'best, {:.0f}% of its {} honest peers'' median {:.1f} at n = {}: its own report '
                                                          'names a smaller card, and its speed fits one (suspicion, not proof)',
                                                          vram_total_mb, model, vram_mb, best_tflops, 100 * peer_tflops / peers,
                                                          peer_devices, peers, peer_n) END,
                     CASE WHEN flat_timing THEN format('answers products of n = {} at {:.1f} TFLOPS, {:.1f}x its {} honest peers'' median '
                                                       'there, {:.0f}% of its own speed at n = {}, where they run at {:.1f}: a product '
                                                       'that size fills no card, so its timing is computed, not measured',
                                                       flat_at.n, flat_at.t, flat_at.t / flat_at.peers, flat_at.k,
                                                       100 * flat_at.t / flat_at.own_best, flat_at.best_n, flat_at.best) END,
                     CASE WHEN failed_short AND slow AND NOT proven AND rented
                          THEN 'rented in the window: a rental still running holds memory and slows the card, so this is '
                               'suspicion, not proof'
                          WHEN failed_short AND slow AND NOT proven
                          THEN 'slow against the spec alone (too few honest peers), above its honest floor: suspicion, not proof' END
                   ) END AS reason,
                   CAST(json_object('proof', CASE WHEN proven OR refuted THEN 'exact' ELSE 'suspicion' END,
                        'signs', list_filter([CASE WHEN slow AND (slow_alone OR vram_short OR memory_short AND proven) THEN 'slow' END,
                                              CASE WHEN memory_short AND (proven OR memory_suspect) THEN 'memory_short' END,
                                              CASE WHEN vram_short THEN 'vram_short' END,
                                              CASE WHEN impossible_vram THEN 'impossible_vram' END,
                                              CASE WHEN flat_timing THEN 'flat_timing' END], lambda x: x IS NOT NULL),
                        'rented', rented,
                        'vram_failures_while_hired', hired_failures,
                        'vram_failures_while_busy', busy_failures, 'vram_failures_after_last_rental', after_rental_failures,
                        'model', model, 'tflops', round(tflops, 2), 'best_tflops', round(best_tflops, 2), 'best_n', best_n,
                        'peer_n', peer_n, 'peer_tflops', round(peer_tflops, 2), 'peer_median_tflops', round(peers, 2),
                        'peer_devices', peer_devices,
                        'spec_tflops', spec, 'measurements', measurements, 'vram_solo_failures', solo_failures,
                        'vram_passed', passed, 'vram_largest_held_mib', held_mib, 'vram_failures_needed', failures_needed, 'vram_failure_span_hours', failure_span,
                        'vram_unanswered_alive', solo_timeouts, 'vram_own_time_s', round(timeout_predicted_ms / 1000, 2),
                        'vram_crawled_answers', crawled_answers, 'vram_crawled_own_share', round(crawled_share, 3),
                        'vram_crawled_trip_ratio', round(crawled_trip_ratio, 2),
                        'vram_longest_accepted_s', round(longest_ms / 1000, 2), 'vram_failures_needed_with_unanswered', failures_needed_any,
                        'fleet_failure_rate', round(failure_rate, 5),
                        'fleet_error_rate', round(error_rate, 5), 'claimed_vram_mb', vram_total_mb, 'catalogue_vram_mb', vram_mb,
                        'catalogue_vram_max_mb', vram_max_mb, 'flat_n', flat_at.n, 'flat_tflops', round(flat_at.t, 2),
                        'flat_peer_median_tflops', round(flat_at.peers, 2), 'flat_best_n', flat_at.best_n,
                        'flat_best_median_tflops', round(flat_at.best, 2), 'flat_own_best_tflops', round(flat_at.own_best, 2))
                        AS VARCHAR) AS details
            FROM judged WHERE slow_alone OR vram_short OR impossible_vram OR flat_timing OR refuted OR proven OR memory_suspect
            """.replace(
                "{HELD}",
                held_since_cleared("spoofed_model", "CAST(json_extract(e.details, '$.signs') AS VARCHAR[]) = ['vram_short']"),
            )
            .replace("SLOWER_THAN_SLOW_RATIO", _slower_than("$slow"))
            .replace("SLOWER_THAN_ALONE_RATIO", _slower_than("$alone"))
            .replace("SLOWER_THAN_SHORT_PACE", _slower_than("$short_pace"))
            .replace(
                "HELD_TAIL",
                "CASE WHEN held_mib IS NULL THEN '' ELSE format(' (each larger than the {} MiB it held)', held_mib) END",
            )
            .replace(
                "HELD",
                "CASE WHEN held_mib IS NULL THEN 'none passed' ELSE format('each larger than the {} MiB it held', held_mib) END",
            )
            .replace("{PACED}", PACED_CTE)
            .replace("{RENTALS}", RENTALS_CTE)
            .replace("{RENTAL_COVER}", RENTAL_COVER_CTE.replace("$window", "$speed_window"))  # busy a quarter of the last day
            .replace("NEEDED(error_rate)", _failures_needed("error_rate", "$min_errors"))
            .replace("NEEDED(unified_rate)", _failures_needed("unified_rate", "$min_errors"))
            .replace("NEEDED(failure_rate)", _failures_needed("failure_rate", "$min_vram")),
            window=self.vram_window_hours,  # what the VRAM challenges show: failures, passes, rentals, round trips
            speed_window=self.window_hours,  # how fast it is, and who its honest peers are
            slow=self.slow_ratio,
            alone=self.slow_alone_ratio,
            min_meas=self.min_measurements,
            min_peers=self.min_peers,
            telling=self.telling_share,
            min_vram=self.min_vram_failures,
            min_errors=self.min_vram_errors,
            tol=self.vram_tolerance,
            memory_floor=self.memory_floor,
            short_pace=self.short_pace,
            alarm=self.vram_false_alarm,
            span=self.vram_span_hours,
            margin=self.vram_timeout_margin,
            trip_peers=self.vram_trip_peers,
            busy=self.vram_busy_pace,
            unified_share=self.unified_gpu_share,
            rented_share=self.rented_share,
            flat_fill=self.flat_fill,
            flat_share=self.flat_share,
        )


def _slower_than(ratio: str) -> str:
    """SQL: measured often enough, its best speed at any product size below ``ratio`` x the spec,
    and below ``ratio`` x its peers' median at the telling size that judges it (``min_peers``
    honest peers there, running at ``telling_share`` of their best size's median or more; of
    those it answered twice or more, the one where it falls furthest behind, else the one where it
    comes closest: ``by_size``'s ``peer_ratio``); not slow where it was measured at no telling size. The spec alone judges where no size
    has that many peers, or where even the size the model's honest fleet does best at stays
    below ``ratio`` of the spec: a model claimed only by a farm of misnamed cards has no honest
    peers to speak for it."""
    return (
        f"coalesce(s.measurements >= $min_meas AND z.best_tflops < {ratio} * n.spec_tflops"
        f" AND (y.best_median IS NULL OR y.best_median < {ratio} * n.spec_tflops OR z.peer_ratio < {ratio}), false)"
    )


def _failures_needed(rate: str, floor: str) -> str:
    """SQL: the least k >= ``floor`` (a parameter) with rate^k <= ``vram_false_alarm``."""
    return f"CAST(greatest({floor}, CASE WHEN {rate} <= 0 THEN 0 ELSE ceil(ln($alarm) / ln(least({rate}, 0.5))) END) AS INTEGER)"
