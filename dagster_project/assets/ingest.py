"""``hourly_drop``: land the partition's hour folder in DuckDB (``pipelines.ingest.ingest_hour``).

A rejected manifest is recorded, not raised: the blocking ``manifest_accepted`` check reports it
and stops everything downstream. A folder that is missing or has no manifest yet is an error.
"""

from dagster import AssetExecutionContext, Failure, MaterializeResult, asset

from dagster_project.partitions import epoch_for_partition, hourly_partitions
from dagster_project.resources import FleetproofStore
from pipelines.contract import MANIFEST
from pipelines.db import one
from pipelines.ingest import ingest_hour


@asset(partitions_def=hourly_partitions, group_name="ingest", kinds={"duckdb"})
def hourly_drop(context: AssetExecutionContext, store: FleetproofStore) -> MaterializeResult:
    """The hour's drop, verified against its manifest, typed rows landed and bad rows quarantined."""
    epoch = epoch_for_partition(context.partition_key)
    folder = store.hour_folder(epoch)
    if not folder.is_dir():
        raise Failure(f"no drop for {epoch}: {folder} does not exist")
    if not (folder / MANIFEST).is_file():
        raise Failure(f"drop {folder} is incomplete: no {MANIFEST} yet (the sender writes it last)")
    with store.connect() as con:
        result = ingest_hour(con, folder)
        status, reason, rows_in, landed, quarantined, sha = one(
            con,
            "SELECT status, reason, rows_in, rows_landed, rows_quarantined, manifest_sha256 "
            "FROM ingest_log WHERE hour = ?",
            [epoch],
        )  # type: ignore[misc]
    context.log.info(f"{epoch}: this delivery {result.status}; hour {status} ({reason or 'ok'})")
    return MaterializeResult(
        metadata={
            "delivery": result.status,
            "status": status,
            "reason": reason or "",
            "rows_in": rows_in,
            "rows_landed": landed,
            "rows_quarantined": quarantined,
            "manifest_sha256": sha,
        }
    )
