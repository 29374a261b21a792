"""MIG instances: one card its owner partitioned, not one identity on several devices.

Honest model: NVIDIA's Multi-Instance GPU splits an A100- or H100-class card into up to seven
instances, each with memory and compute of its own and a ``MIG-`` UUID of its own; NVML reports
every instance with the parent card's serial and PCI bus id, and ``mig_mode`` on. Registered as
devices, an owner's instances share a serial and a bus id on one host by design (an
independently written network's honest A100s split in two were rejected as duplicate hardware
and as one identity on two devices). Each instance claims its share of the memory; slices of a
card sold as whole cards claim the whole card each. So devices that share a bus id on one host,
all in MIG mode, each with a UUID of its own, claiming one model and together no more memory
than that model's largest configuration (+ ``MIG_VRAM_TOLERANCE``), are one partitioned card:
their shared serial and bus id are no evidence. NVML names an instance after its parent card and
its profile (``NVIDIA A100-SXM4-80GB MIG 1g.10gb``); the parent's name, without the profile, is
the model the instances are held to (an independently written network's honest instances, so
named, were rejected as duplicate hardware: the full name is in no catalogue). Everything else
about them (contention, VRAM, speed) is judged as for any card.

A worker may report each instance with its card's UUID rather than the instance's own (the UUID
``nvidia-smi --query-gpu=uuid`` and NVML's parent handle give): an eighteenth network written by
others had honest A100s split into two 3g.40gb instances, each reporting the card's UUID, serial
and bus id, rejected and slashed as one identity on two devices (48 devices, 34 slashed). Instances
that all report one UUID are one card by the same tests; one of them (``card``, the first by
device id) stands for the card wherever that UUID is compared, so a copy of it on another machine
is still a shared identity.

Instances named after their profiles may also be one card when their claims add up to more than
its memory: each holds what its profile holds (+ the tolerance), and their compute slices add up
to at most the card's seven (``MIG_COMPUTE_SLICES``). A seventeenth network written by others
split honest A100s and H100s into 1g.10gb + 3g.40gb + 3g.40gb (90 GB of instances on an 80 GB
card; NVIDIA allots 3g.40gb four of its eight memory slices, so no card does this), and 12 of its
56 instances were rejected as one identity on three devices. Whether each instance holds its
memory is the VRAM challenges' to judge; slices of a card sold as whole cards name no profile, or
profiles whose slices add up to more than seven.
"""

from __future__ import annotations

from pipelines.catalogue import MEMORY_TOLERANCE as MIG_VRAM_TOLERANCE  # drivers report a little more or less

MIG_PROFILE = r"(?i)\s+MIG\s+[0-9]+g\.[0-9]+gb$"
"""The profile NVML appends to a MIG instance's name (``NVIDIA A100-SXM4-80GB MIG 1g.10gb``:
one of seven compute slices, 10 GB): without it the name is the parent card's."""

MIG_PROFILE_PARTS = r"(?i)\s+MIG\s+([0-9]+)g\.([0-9]+)gb$"
"""``MIG_PROFILE`` with its compute slices (group 1) and gigabytes (group 2)."""

MIG_COMPUTE_SLICES = 7
"""Compute slices of the largest MIG-capable cards (A100, H100, H200: seven; an A30 has four):
the profiles of one card's instances add up to at most this."""

UUID_NAMES_NO_CARD = "(gpu_uuid IS NULL OR coalesce(mig_mode, false) OR upper(gpu_uuid) LIKE 'MIG-%')"
"""SQL condition on a row with ``gpu_uuid`` and ``mig_mode``: no UUID names the card (none, or a
MIG instance's own), so its PCI bus id on its host is what identifies the card. Where a UUID
names it, a bus id is not compared: a worker in a container or VM may report a virtual slot
(``duplicate_hardware``)."""

NOT_A_STAND_IN = "device_id NOT IN (SELECT device_id FROM mig_instances WHERE device_id <> card)"
"""SQL condition on a row with ``device_id``, beside ``MIG_INSTANCES_CTE``: not an instance whose
card's UUID another instance of the card stands for (``mig_instances.card``). Where a UUID is
compared, the card it names is counted once."""

MIG_INSTANCES_CTE = f"""
mig_instances AS (  -- the epoch's devices that are instances of one MIG-partitioned card (detectors.mig), and
    -- where all report the card's own UUID, which of them stands for the card (``card``; null where each has its own)
    SELECT unnest(list(f.device_id)) AS device_id,
           CASE WHEN count(DISTINCT f.gpu_uuid) = 1 AND count(*) > 1 THEN min(f.device_id) END AS card
    FROM device_features f
    JOIN (  -- sites with two or more devices in MIG mode: the few the rest is computed for (every group
            -- below is all MIG, two or more; names are keyed by regular expressions, once per row)
        SELECT host_fingerprint, pci_bus_id FROM device_features
        WHERE epoch = $epoch AND coalesce(mig_mode, false) GROUP BY ALL HAVING count(*) >= 2
    ) USING (host_fingerprint, pci_bus_id)
    LEFT JOIN (SELECT DISTINCT name_key, model_key FROM gpu_alias) a  -- a model's aliases may share one key
           ON f.catalogue_model IS NULL AND a.name_key = gpu_name_key(regexp_replace(f.gpu_model, '{MIG_PROFILE}', ''))
    JOIN gpu_catalogue c ON c.model_key = coalesce(f.catalogue_model, a.model_key)
    WHERE f.epoch = $epoch AND f.host_fingerprint IS NOT NULL AND f.pci_bus_id IS NOT NULL
    GROUP BY f.host_fingerprint, f.pci_bus_id
    HAVING count(*) >= 2 AND bool_and(coalesce(f.mig_mode, false))
       AND (count(DISTINCT f.gpu_uuid) = count(*) OR count(DISTINCT f.gpu_uuid) = 1 AND count(f.gpu_uuid) = count(*))
       AND count(DISTINCT c.model_key) = 1
       AND (sum(f.vram_total_mb) <= max(c.vram_max_mb) * (1 + {MIG_VRAM_TOLERANCE})
            -- ...or each named after its profile, holding what the profile holds, within the card's compute slices
            OR bool_and(coalesce(f.vram_total_mb <= TRY_CAST(NULLIF(regexp_extract(f.gpu_model, '{MIG_PROFILE_PARTS}', 2), '')
                                                             AS INTEGER) * 1024 * (1 + {MIG_VRAM_TOLERANCE}), false))
               AND sum(TRY_CAST(NULLIF(regexp_extract(f.gpu_model, '{MIG_PROFILE_PARTS}', 1), '') AS INTEGER))
                   <= {MIG_COMPUTE_SLICES})
)"""
"""CTE ``mig_instances(device_id, card)``; needs ``$epoch``, ``device_features``, ``gpu_catalogue``,
``gpu_alias`` and the ``gpu_name_key`` macro (``pipelines.catalogue.register``)."""
