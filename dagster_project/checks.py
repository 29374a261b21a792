"""Blocking data-quality checks: a failed check stops every asset downstream of it in the run.

The measurements are ``pipelines.quality`` (the command line applies the same bars).
Thresholds come from the detection policy's ``[quality]`` section; each check's config may
override its threshold for one run (leave it unset to use the policy). Every result's metadata
shows the measured value next to the threshold.
"""

from typing import TypeVar

from dagster import AssetCheckExecutionContext, AssetCheckResult, Config, asset_check

from dagster_project.assets import device_features, hourly_drop, reward_allocations
from dagster_project.partitions import epoch_for_partition
from dagster_project.resources import FleetproofStore
from pipelines import quality
from pipelines.quality import Outcome


class ShareConfig(Config):
    max_share: float | None = None
    """Override of ``quality.max_quarantine_share``."""


class RowsConfig(Config):
    min_rows: dict[str, int] | None = None
    """Override of ``quality.min_rows`` (feed -> rows that must land)."""


class RateConfig(Config):
    min_rate: float | None = None
    """Override of ``quality.min_sample_verification_rate``."""


T = TypeVar("T")


def _pick(override: T | None, policy_value: T) -> T:
    """The check config's value when set, else the policy's."""
    return policy_value if override is None else override


def _result(outcome: Outcome) -> AssetCheckResult:
    return AssetCheckResult(passed=outcome.passed, description=outcome.description, metadata=outcome.metadata)


@asset_check(asset=hourly_drop, blocking=True)
def manifest_accepted(context: AssetCheckExecutionContext, store: FleetproofStore) -> AssetCheckResult:
    """The hour's manifest, file list and checksums were accepted (``ingest_log.status``)."""
    with store.connect() as con:
        return _result(quality.manifest_accepted(con, epoch_for_partition(context.partition_key)))


@asset_check(asset=hourly_drop, blocking=True)
def quarantine_share(
    context: AssetCheckExecutionContext, store: FleetproofStore, config: ShareConfig
) -> AssetCheckResult:
    """Quarantined rows / rows in, at most ``max_quarantine_share``."""
    limit = _pick(config.max_share, store.policy().quality.max_quarantine_share)
    with store.connect() as con:
        return _result(quality.quarantine_share(con, epoch_for_partition(context.partition_key), limit))


@asset_check(asset=hourly_drop, blocking=True)
def required_rows(
    context: AssetCheckExecutionContext, store: FleetproofStore, config: RowsConfig
) -> AssetCheckResult:
    """Rows landed per required feed, at least ``min_rows[feed]``."""
    minimum = _pick(config.min_rows, store.policy().quality.min_rows)
    with store.connect() as con:
        return _result(quality.required_rows(con, epoch_for_partition(context.partition_key), minimum))


@asset_check(asset=device_features, blocking=True)
def sample_verification_rate(
    context: AssetCheckExecutionContext, store: FleetproofStore, config: RateConfig
) -> AssetCheckResult:
    """Answered challenges whose samples were verified, at least ``min_sample_verification_rate``."""
    limit = _pick(config.min_rate, store.policy().quality.min_sample_verification_rate)
    with store.connect() as con:
        return _result(quality.sample_verification_rate(con, epoch_for_partition(context.partition_key), limit))


@asset_check(asset=reward_allocations, blocking=True)
def allocations_sum_to_pool(context: AssetCheckExecutionContext, store: FleetproofStore) -> AssetCheckResult:
    """The hour's allocations add up exactly to its pool, in integer base units."""
    with store.connect() as con:
        return _result(quality.allocations_sum_to_pool(con, epoch_for_partition(context.partition_key)))


ALL_CHECKS = [manifest_accepted, quarantine_share, required_rows, sample_verification_rate, allocations_sum_to_pool]
