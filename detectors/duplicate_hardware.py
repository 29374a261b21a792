"""``duplicate_hardware``: one physical GPU identity reported by several devices at once.

Identities are the NVML UUID, the board serial, and the PCI bus id *on the same host* (bus ids
repeat across machines, so alone they prove nothing). Null identities (Apple, consumer cards
without serials) never match. The bus id is compared only between devices whose UUID does not name a card (none, or a MIG
instance's own):
two cards of one machine sit in different slots, yet a worker in a container or a VM may report
a virtual or placeholder slot (a tenth network written by others had two-card homes report
``00000000:01:00.0`` for both cards, of different models, and a datacenter host the same bus id
for its eight; 120 honest devices were rejected), while the UUID names the card itself. Yet a
machine is at one address: one fingerprint's slot reported by several owners from several sites
at once (``host and slot``) is a copied machine image whose clones made up UUIDs of their own (a
sixteenth network's three clones of a four-card host, 24 devices, none caught before); it is
contested like any identity on several owners' machines, so held for review. Tenants renting one
machine's cards from its one address are not compared by it. A card's
slices that make up UUIDs of their own are the physics' to judge (``virtualized_gpu``). Only devices alive at the same time share an identity
(``detectors.concurrent``: a reinstalled worker's old and new registration both report the card
in the hour of the switch, one after the other). Sharing in one hour suspects; sharing in
``confirm_hours`` of the last ``window_hours`` epochs establishes it.

Honest model: a GPU is in one machine, so the devices that share its identity report from one
public IP (two when the address changes within the hour). A value that devices report from more
than ``max_ips`` addresses at once (default ``MACHINE_MAX_IPS``, the bound a host fingerprint is
held to) is not one card's identity: it is a writer's stand-in for "no value" that ingest does
not know (``[N/A]`` and its kin land as null already), or identities made up, which only the
physics (PoW timing and contention) can judge. Such a value proves nothing and is not counted.

An identity on the machines of several owners (several accounts at several sites) is a copy,
or a card that moved: one of its holders may be the card's owner, whose identity was taken (an
independently written network's stolen-identity victim was rejected and slashed with its two
clones), and a cloud GPU reassigned to another tenant's machine may still be reported by its
old registration (a third network's spot instances: the later holder, the card's real one, was
rejected and slashed). Which holder has the card is not in the identity, so every holder is
held for review, never rejected on the identity alone; the evidence names the one that reported
it first (over ``seniority_hours``). The physics can say which: when every other holder has
failed the card's work (held or rejected by ``spoofed_model``, ``virtualized_gpu`` or
``failed_pow`` in the last ``seniority_hours``: slow, short of memory, wrong or silent) and this
one has not, the card is this one's and its hold ends (``clear``): a sixth network written by
others copied ten honest cards' UUID and bus id onto slow machines abroad, whose VRAM and
throughput then failed, while the ten owners stayed held for review to the end. A copy that
does the card's work as well as the card is judged by the identity alone, as above. A card
serving several machines is slow when they are asked together, which ``virtualized_gpu``
judges. One owner's devices sharing an identity
(virtual slices of one card, one account's cloned image, one owner's accounts at one site) are
rejected once it is established where they claim one card (one UUID, a slot no UUID names, or
vGPU guests on one serial: in a guest NVML reports the physical board's), except a holder the
physics names as above. One serial beside UUIDs of their own says that one device carries a
copied serial, not which one: such devices are held until the physics names the card, and
then its copies are rejected. A twentieth network's operator added slots that copy its real
cards' serials and bus ids and fabricate answers; the real cards were rejected with their
copies after two hours of sharing, before the copies' wrong answers showed (16 stayed rejected
when the physics had named them the cards). The instances of one card
its owner partitioned with MIG report its serial and bus id by design and are not compared by
them (``detectors.mig``); nor are the GPUs of one multi-GPU board (a Tesla K80 carries two,
an A16 four), which NVML reports with the board's one serial, each with a UUID and a bus id
of its own (``pipelines.catalogue.load_boards``; the same network's K80s: 20 honest devices
rejected before).
"""

from __future__ import annotations

import polars as pl

from detectors.base import Detector, Evidence
from detectors.concurrent import OVERLAP_MINUTES, concurrent_cte
from detectors.mig import MIG_INSTANCES_CTE, NOT_A_STAND_IN, UUID_NAMES_NO_CARD
from pipelines.features import MACHINE_MAX_IPS


class DuplicateHardware(Detector):
    name = "duplicate_hardware"
    fraud_type = "duplicate_hardware"

    def __init__(
        self,
        threshold: float = 0.5,
        window_hours: int = 3,
        confirm_hours: int = 2,
        max_ips: int = MACHINE_MAX_IPS,
        overlap_minutes: int = OVERLAP_MINUTES,
        seniority_hours: int = 24,
    ):
        super().__init__(threshold)
        self.seniority_hours = seniority_hours
        self.overlap_minutes = overlap_minutes
        self.window_hours = window_hours
        self.confirm_hours = confirm_hours
        self.max_ips = max_ips

    def score(self, evidence: Evidence) -> pl.DataFrame:
        return evidence.sql(
            """
            WITH {MIG},
            serials AS (  -- each serial reported this hour, and what its holders say of it
                SELECT h.gpu_serial AS value,
                       -- one multi-GPU board's GPUs (pipelines.catalogue.load_boards): each with a UUID and a bus id of
                       -- its own, on one machine of one owner, no more of them than the board carries
                       count(*) FILTER (b.name_key IS NULL) = 0
                         AND count(DISTINCT h.device_id) <= min(b.gpus_per_board)
                         AND count(DISTINCT h.device_id) = count(DISTINCT h.gpu_uuid)
                         AND count(DISTINCT h.device_id) = count(DISTINCT h.pci_bus_id)
                         AND count(DISTINCT h.host_fingerprint) = 1 AND count(DISTINCT h.account_id) = 1 AS board,
                       -- every holder a vGPU guest: in a guest NVML reports the physical board's serial, so two guests
                       -- on one serial share one card (a whole-card profile is one VM's)
                       bool_and(coalesce(h.virtualization_mode IN ('VGPU', 'HOST_VGPU', 'HOST_VSGA'), false)) AS guests
                FROM hardware h LEFT JOIN gpu_board b ON b.name_key = gpu_name_key(h.gpu_model)
                WHERE h._hour = $epoch AND h.gpu_serial IS NOT NULL
                GROUP BY h.gpu_serial
            ),
            ids AS (  -- a MIG instance's identity is its own UUID: the serial and bus id are its card's (detectors.mig)
                SELECT DISTINCT device_id, account_id, ip_site(ip) AS ip, 'gpu_uuid' AS kind, gpu_uuid AS value FROM hardware
                WHERE _hour = $epoch AND gpu_uuid IS NOT NULL AND {NOT_A_STAND_IN}  -- instances on their card's UUID
                UNION ALL
                SELECT DISTINCT device_id, account_id, ip_site(ip), 'gpu_serial', gpu_serial FROM hardware
                WHERE _hour = $epoch AND gpu_serial IS NOT NULL AND device_id NOT IN (SELECT device_id FROM mig_instances)
                  AND gpu_serial NOT IN (SELECT value FROM serials WHERE board)
                UNION ALL
                -- a bus id only where no UUID names the card (detectors.mig.UUID_NAMES_NO_CARD)
                SELECT DISTINCT device_id, account_id, ip_site(ip),
                       CASE WHEN {UUID_NAMES_NO_CARD} THEN 'pci_bus_id on host' ELSE 'host and slot' END,
                       host_fingerprint || ' ' || pci_bus_id
                FROM hardware WHERE _hour = $epoch AND pci_bus_id IS NOT NULL AND host_fingerprint IS NOT NULL
                  AND device_id NOT IN (SELECT device_id FROM mig_instances)
            ),
            shared AS (  -- one card's identity on several devices, from at most max_ips sites (an IPv6 /64 is one);
                -- a slot whose card a UUID names only when several owners report it from several sites
                SELECT kind, value FROM ids GROUP BY kind, value
                HAVING count(DISTINCT device_id) > 1 AND count(DISTINCT ip) <= $max_ips
                   AND (kind <> 'host and slot' OR (count(DISTINCT ip) > 1 AND count(DISTINCT account_id) > 1))
            ),
            candidates AS (
                SELECT DISTINCT i.device_id, i.kind || ' ' || i.value AS grp, i.kind, i.value
                FROM ids i JOIN shared USING (kind, value)
            ),
            {CONCURRENT},
            groups AS (  -- ...alive at the same time (a reinstall's two registrations are not)
                SELECT c.kind, c.value, list(DISTINCT c.device_id ORDER BY c.device_id) AS devices
                FROM candidates c JOIN concurrent k USING (grp, device_id)
                GROUP BY c.kind, c.value HAVING count(DISTINCT c.device_id) > 1
            ),
            holders AS (  -- each group's devices with their owner and site
                SELECT DISTINCT g.kind, g.value, i.device_id, i.account_id, i.ip
                FROM groups g JOIN ids i ON i.kind = g.kind AND i.value = g.value AND list_contains(g.devices, i.device_id)
            ),
            contested AS (  -- one identity on the machines of several owners: a copy, or the card's owner among copies
                SELECT kind, value FROM holders GROUP BY kind, value
                HAVING count(DISTINCT account_id) > 1 AND count(DISTINCT ip) > 1
            ),
            first_seen AS (  -- when each holder of a contested identity first reported it in the window
                SELECT x.kind, x.value, x.device_id, min(h._hour) AS first_hour
                FROM (SELECT x.* FROM holders x JOIN contested USING (kind, value)) x
                JOIN hardware h ON h.device_id = x.device_id AND h._hour > hours_back($epoch, $seniority) AND h._hour <= $epoch
                 AND CASE x.kind WHEN 'gpu_uuid' THEN h.gpu_uuid WHEN 'gpu_serial' THEN h.gpu_serial
                                 ELSE h.host_fingerprint || ' ' || h.pci_bus_id END = x.value
                GROUP BY ALL
            ),
            seniority AS (  -- the senior holder: the only one that reported the identity before every other did
                SELECT kind, value, device_id, first_hour,
                       first_hour = min_hour AND count(*) FILTER (first_hour = min_hour) OVER w = 1 AS senior
                FROM (SELECT *, min(first_hour) OVER (PARTITION BY kind, value) AS min_hour FROM first_seen)
                WINDOW w AS (PARTITION BY kind, value)
            ),
            per_device AS (
                SELECT i.device_id, list(DISTINCT g.kind ORDER BY g.kind) AS kinds,
                       max(len(g.devices)) AS group_size,
                       min(g.kind || ' ' || g.value) AS example,
                       list_distinct(flatten(list(g.devices))) AS sharing,
                       bool_or(c.kind IS NOT NULL) AS contested,
                       -- the devices claim one card (one UUID, or one slot where no UUID names a card); a serial alone
                       -- beside UUIDs of their own says one of them carries a copied serial, not which one
                       bool_or(g.kind IN ('gpu_uuid', 'pci_bus_id on host')
                               OR g.kind = 'gpu_serial' AND g.value IN (SELECT value FROM serials WHERE guests)) AS one_card,
                       coalesce(bool_and(s.senior) FILTER (c.kind IS NOT NULL), false) AS senior,
                       bool_or(c.kind IS NOT NULL AND NOT coalesce(z.any_senior, false)) AS undecided,
                       min(s.first_hour) AS first_hour
                FROM (SELECT DISTINCT device_id, kind, value FROM ids) i JOIN groups g USING (kind, value)
                LEFT JOIN contested c USING (kind, value)
                LEFT JOIN seniority s ON s.kind = i.kind AND s.value = i.value AND s.device_id = i.device_id
                LEFT JOIN (SELECT kind, value, bool_or(senior) AS any_senior FROM seniority GROUP BY ALL) z USING (kind, value)
                GROUP BY i.device_id
            ),
            disproven AS (  -- holders that failed a card's work lately: slow, short of memory, wrong or silent
                SELECT DISTINCT device_id FROM evidence
                WHERE action IN ('probation', 'reject') AND detector IN ('spoofed_model', 'virtualized_gpu', 'failed_pow')
                  AND epoch < $epoch AND epoch > hours_back($epoch, $seniority)
            ),
            physics AS (  -- an identity whose holders the physics split: exactly one is not disproven (on one
                -- owner's machines too: a written network's operator added slots that copy real cards' serials
                -- and fabricate answers, and the real cards were rejected with them)
                SELECT h.kind, h.value, any_value(h.device_id) FILTER (d.device_id IS NULL) AS holder,
                       list(DISTINCT h.device_id ORDER BY h.device_id) FILTER (d.device_id IS NOT NULL) AS copies
                FROM holders h LEFT JOIN disproven d USING (device_id)
                GROUP BY h.kind, h.value HAVING count(DISTINCT h.device_id) FILTER (d.device_id IS NULL) = 1
            ),
            the_card AS (  -- a device the physics names the holder of every identity it shares
                SELECT h.device_id, list_sort(list_distinct(flatten(list(x.copies)))) AS copies
                FROM (SELECT DISTINCT kind, value, device_id FROM holders) h LEFT JOIN physics x USING (kind, value)
                GROUP BY h.device_id HAVING bool_and(coalesce(x.holder = h.device_id, false))
            ),
            history AS (
                SELECT device_id, count(DISTINCT epoch) AS past_hours FROM evidence
                WHERE detector = 'duplicate_hardware' AND action <> 'clear' AND epoch < $epoch
                  AND epoch > hours_back($epoch, $window)
                GROUP BY device_id
            )
            SELECT p.device_id, f.account_id,
                   CASE WHEN t.device_id IS NOT NULL THEN 0.0
                        WHEN p.contested OR NOT p.one_card THEN 0.8
                        WHEN coalesce(h.past_hours, 0) + 1 >= $confirm THEN 1.0 ELSE 0.8 END AS score,
                   CASE WHEN t.device_id IS NOT NULL THEN 'clear'
                        WHEN NOT p.contested AND (p.one_card OR x.device_id IS NOT NULL)
                             AND coalesce(h.past_hours, 0) + 1 >= $confirm THEN 'reject'
                        ELSE 'probation' END AS action,
                   CASE WHEN t.device_id IS NOT NULL THEN
                     format('{} shared with {} other device(s) {} this hour ({}); every other holder ({}) '
                            'failed the card''s work in the last {} hours (held or rejected by spoofed_model, '
                            'virtualized_gpu or failed_pow) and this one did not: the card is this one''s, the copies theirs',
                            array_to_string(p.kinds, ' and '), len(p.sharing) - 1,
                            CASE WHEN p.contested THEN 'of other owners' ELSE 'of the same owner' END, p.example,
                            array_to_string(t.copies, ', '), $seniority)
                   ELSE concat(format('{} shared with {} other device(s) this hour ({}); shared in {} of the last {} hours',
                                 array_to_string(p.kinds, ' and '), len(p.sharing) - 1, p.example,
                                 coalesce(h.past_hours, 0) + 1, $window),
                          CASE WHEN p.senior THEN format('; on machines of several owners: it held the identity first (from {}), '
                                                         'the other owners'' devices later: the card''s owner, copied? held for review',
                                                         p.first_hour)
                               WHEN p.undecided THEN '; on machines of several owners, from the same hour: which one is the '
                                                     'card''s is not in the data, held for review'
                               WHEN p.contested THEN format('; on machines of several owners, this one from {}, after another: a '
                                                            'copy, or the card moved and its old registration still reports it; '
                                                            'which one has the card is not in the data, held for review',
                                                            p.first_hour)
                               WHEN NOT p.one_card AND x.device_id IS NOT NULL THEN '; each reports a UUID of its own, and '
                                                        'the physics names another holder the card: this one carries its copy'
                               WHEN NOT p.one_card THEN '; each reports a UUID of its own, so one of them carries a copied '
                                                        'serial and which one is not in the data: held until the physics '
                                                        'names the card' END) END AS reason,
                   CAST(json_object('proof', CASE WHEN (p.contested OR NOT (p.one_card OR x.device_id IS NOT NULL))
                                                       AND t.device_id IS NULL THEN 'suspicion' ELSE 'exact' END,
                        'kinds', p.kinds, 'group_size', p.group_size, 'devices', p.sharing[1:20],
                        'hours_shared', coalesce(h.past_hours, 0) + 1, 'several_owners', p.contested,
                        'first_holder', p.senior, 'the_card', t.device_id IS NOT NULL, 'copies', t.copies[1:20]) AS VARCHAR)
                     AS details
            FROM per_device p
            LEFT JOIN the_card t USING (device_id)
            LEFT JOIN (SELECT DISTINCT unnest(copies) AS device_id FROM the_card) x USING (device_id)  -- a copy the physics named
            LEFT JOIN history h USING (device_id)
            LEFT JOIN device_features f ON f.device_id = p.device_id AND f.epoch = $epoch
            """.replace("{CONCURRENT}", concurrent_cte("candidates"))
            .replace("{MIG}", MIG_INSTANCES_CTE)
            .replace("{UUID_NAMES_NO_CARD}", UUID_NAMES_NO_CARD)
            .replace("{NOT_A_STAND_IN}", NOT_A_STAND_IN),
            window=self.window_hours,
            confirm=self.confirm_hours,
            max_ips=self.max_ips,
            overlap_minutes=self.overlap_minutes,
            seniority=self.seniority_hours,
        )
