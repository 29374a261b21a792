"""``dashboard_report``: the analyst dashboard as of the hour, refreshed with every hourly run
(``dashboards.build_report``), written to ``<out>/dashboard/epoch=<epoch>/``."""

from dagster import AssetExecutionContext, MaterializeResult, MetadataValue, asset

from dagster_project.partitions import epoch_for_partition, hourly_partitions
from dagster_project.resources import FleetproofStore
from dashboards import build_report


@asset(partitions_def=hourly_partitions, group_name="publish", kinds={"html"}, deps=["published_tables"])
def dashboard_report(context: AssetExecutionContext, store: FleetproofStore) -> MaterializeResult:
    """Static HTML pages (overview, GPU fraud, sybil, rewards, data quality, devices) as of the epoch."""
    epoch = epoch_for_partition(context.partition_key)
    with store.connect() as con:
        report = build_report(con, f"{store.out_dir}/dashboard/epoch={epoch}", as_of=epoch)
    return MaterializeResult(metadata={
        "index": MetadataValue.path(str(report.index)),
        "pages": len(report.pages), "device_pages": len(report.device_pages),
        **{f"seconds_{slug}": round(s, 2) for slug, s in report.seconds.items()},
    })  # fmt: skip
