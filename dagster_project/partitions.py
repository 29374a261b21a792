"""Hourly partitions: one Dagster partition per pipeline epoch (a UTC hour).

Dagster names an hourly partition ``YYYY-MM-DD-HH:MM``; the pipeline, the drop folders and every
table name the same hour ``YYYY-MM-DDTHH``. The two converters are the only place that knows both.
"""

from __future__ import annotations

import os
from datetime import datetime

from dagster import AssetDep, HourlyPartitionsDefinition, TimeWindowPartitionMapping

PARTITION_FMT = "%Y-%m-%d-%H:%M"
EPOCH_FMT = "%Y-%m-%dT%H"

hourly_partitions = HourlyPartitionsDefinition(
    start_date=os.environ.get("FLEETPROOF_START", "2024-08-14-00:00")
)

PREVIOUS_HOUR = TimeWindowPartitionMapping(start_offset=-1, end_offset=-1)
"""Maps a partition to the one before it (nothing for the first partition)."""


def epoch_for_partition(partition_key: str) -> str:
    """``2024-08-14-03:00`` -> ``2024-08-14T03``."""
    return datetime.strptime(partition_key, PARTITION_FMT).strftime(EPOCH_FMT)


def partition_for_epoch(epoch: str) -> str:
    """``2024-08-14T03`` -> ``2024-08-14-03:00``."""
    return datetime.strptime(epoch, EPOCH_FMT).strftime(PARTITION_FMT)


def previous_hour_of(asset_name: str) -> AssetDep:
    """A dependency on the previous hour's partition of ``asset_name`` (it may be the asset itself):
    the pipeline carries state from one epoch to the next, so hours must be computed in order."""
    return AssetDep(asset_name, partition_mapping=PREVIOUS_HOUR)
