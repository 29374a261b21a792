"""``device_tiers``: evidence and last state -> tier per device (``pipelines.tiering.assign_tiers``).

Hysteresis carries each device's state from one epoch to the next, so the asset depends on its
own previous partition: backfills then compute hours strictly in order.
"""

from dagster import AssetExecutionContext, MaterializeResult, asset

from dagster_project.partitions import epoch_for_partition, hourly_partitions, previous_hour_of
from dagster_project.resources import FleetproofStore
from pipelines.tiering import assign_tiers


@asset(
    partitions_def=hourly_partitions,
    group_name="tiers",
    kinds={"duckdb"},
    deps=["detector_evidence", previous_hour_of("device_tiers")],
)
def device_tiers(context: AssetExecutionContext, store: FleetproofStore) -> MaterializeResult:
    """Tier, fraud types, score and reasons per device."""
    epoch = epoch_for_partition(context.partition_key)
    tiering = store.policy().tiering
    with store.transaction() as con:
        counts = assign_tiers(con, epoch, tiering)
    tiers = {f"tier_{k}": v for k, v in sorted(counts.items())}
    return MaterializeResult(metadata={"devices": sum(counts.values()), **tiers})
