"""``challenge_plan``: devices the backend should challenge together next hour
(``pipelines.challenge_plan.build_plan``), published with the epoch's tables."""

from dagster import AssetExecutionContext, MaterializeResult, asset

from dagster_project.partitions import epoch_for_partition, hourly_partitions
from dagster_project.resources import FleetproofStore
from pipelines.challenge_plan import build_plan


@asset(partitions_def=hourly_partitions, group_name="tiers", kinds={"duckdb"}, deps=["device_tiers"])
def challenge_plan(context: AssetExecutionContext, store: FleetproofStore) -> MaterializeResult:
    """Suspected siblings (shared IP or host, burst arrivals) grouped into synchronized batches."""
    epoch = epoch_for_partition(context.partition_key)
    with store.transaction() as con:
        planned = build_plan(con, epoch)
    return MaterializeResult(metadata={"devices_planned": planned})
