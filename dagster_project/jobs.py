"""``hourly_pipeline``: every asset (and its checks) for one hour partition."""

from __future__ import annotations

from dagster import AssetSelection, define_asset_job, in_process_executor

from dagster_project.partitions import hourly_partitions

hourly_pipeline = define_asset_job(
    "hourly_pipeline",
    selection=AssetSelection.all(),
    partitions_def=hourly_partitions,
    # one process for the whole hour: the stages share one DuckDB file behind one lock, so a
    # process per step only adds start-up time (seconds per step) and lock hand-offs
    executor_def=in_process_executor,
    description="Ingest, verify, detect, tier and publish one hour; the same stages as `fleetproof run`.",
)
