"""``device_features`` (exact PoW verification + per-device features) and ``detector_evidence``.

Both read earlier epochs (previous features, detector windows, past evidence), so each depends on
its own previous partition, and features wait until the previous ingested hour has its tiers:
runs launched together by the sensor still compute hours in order, as the command line does.
"""

from collections import Counter

from dagster import AssetExecutionContext, MaterializeResult, RetryRequested, asset

from dagster_project.partitions import epoch_for_partition, hourly_partitions, previous_hour_of
from dagster_project.resources import FleetproofStore
from pipelines.db import one
from pipelines.features import previous_epoch
from pipelines.run import compute_features
from pipelines.tiering import collect_evidence

WAIT_S = 60
MAX_WAITS = 60


def previous_hour_pending(store: FleetproofStore, epoch: str) -> bool:
    """Whether the previous hour is ingested but its tiers are missing or older than its data."""
    with store.connect() as con:
        return (
            one(
                con,
                "SELECT 1 FROM ingest_log l LEFT JOIN processed_epochs p ON p.epoch = l.hour "
                "WHERE l.hour = ? AND l.status = 'ingested' "
                "AND (p.epoch IS NULL OR l.ingested_at > p.inputs_ingested_at)",
                [previous_epoch(epoch)],
            )
            is not None
        )


@asset(
    partitions_def=hourly_partitions,
    group_name="verification",
    kinds={"duckdb"},
    deps=["hourly_drop", previous_hour_of("device_features")],
)
def device_features(context: AssetExecutionContext, store: FleetproofStore) -> MaterializeResult:
    """Every sampled PoW entry recomputed (``pow_checks``) and one feature row per device."""
    epoch = epoch_for_partition(context.partition_key)
    if previous_hour_pending(store, epoch):
        context.log.warning(f"{previous_epoch(epoch)} is ingested but not yet tiered; waiting {WAIT_S}s")
        raise RetryRequested(max_retries=MAX_WAITS, seconds_to_wait=WAIT_S)
    with store.transaction() as con:
        samples, bad, devices = compute_features(con, epoch)
    return MaterializeResult(metadata={"devices": devices, "samples": samples, "bad_samples": bad})


@asset(
    partitions_def=hourly_partitions,
    group_name="verification",
    kinds={"duckdb"},
    deps=["device_features", previous_hour_of("detector_evidence")],
)
def detector_evidence(context: AssetExecutionContext, store: FleetproofStore) -> MaterializeResult:
    """What each enabled detector of the policy holds against which device this hour."""
    epoch = epoch_for_partition(context.partition_key)
    detectors = store.policy().build_detectors()
    with store.transaction() as con:
        evidence = collect_evidence(con, epoch, detectors)
    per_detector = Counter(evidence["detector"].to_list())
    return MaterializeResult(
        metadata={
            "rows": evidence.height,
            "devices": evidence["device_id"].n_unique(),
            **{f"rows_{d.name}": per_detector.get(d.name, 0) for d in detectors},
        }
    )
