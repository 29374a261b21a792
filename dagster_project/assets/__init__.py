"""The hourly pipeline as assets, one module per domain, in the order they run."""

from dagster_project.assets.ingest import hourly_drop
from dagster_project.assets.plan import challenge_plan
from dagster_project.assets.publish import published_tables
from dagster_project.assets.rewards import reward_allocations
from dagster_project.assets.tiers import device_tiers
from dagster_project.assets.verification import detector_evidence, device_features

ALL_ASSETS = [hourly_drop, device_features, detector_evidence, device_tiers, challenge_plan, reward_allocations, published_tables]

__all__ = [
    "ALL_ASSETS", "hourly_drop", "device_features", "detector_evidence", "device_tiers", "challenge_plan",
    "reward_allocations", "published_tables",
]
