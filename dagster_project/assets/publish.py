"""``published_tables``: the epoch's published tables as Parquet (``pipelines.export.export_epoch``)."""

from dagster import AssetExecutionContext, MaterializeResult, MetadataValue, asset

from dagster_project.partitions import epoch_for_partition, hourly_partitions
from dagster_project.resources import FleetproofStore
from pipelines.export import export_epoch


@asset(
    partitions_def=hourly_partitions, group_name="publish", kinds={"parquet"}, deps=["device_tiers", "challenge_plan", "reward_allocations"]
)
def published_tables(context: AssetExecutionContext, store: FleetproofStore) -> MaterializeResult:
    """``<out>/<table>/epoch=<epoch>/part-0.parquet`` for every published table, replaced whole."""
    epoch = epoch_for_partition(context.partition_key)
    with store.connect() as con:
        paths = export_epoch(con, store.out_dir, epoch)
    return MaterializeResult(
        metadata={p.parent.parent.name: MetadataValue.path(str(p)) for p in paths}
    )
