"""``hourly_pipeline``: every asset (and its checks) for one hour partition."""

from __future__ import annotations

from dagster import AssetSelection, define_asset_job

from dagster_project.partitions import hourly_partitions

hourly_pipeline = define_asset_job(
    "hourly_pipeline",
    selection=AssetSelection.all(),
    partitions_def=hourly_partitions,
    description="Ingest, verify, detect, tier and publish one hour; the same stages as `fleetproof run`.",
)
