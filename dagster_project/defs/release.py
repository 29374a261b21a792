"""``public_release``: the epoch's signed, pseudonymized public release (``pipelines.release``).

Keys come from the environment: ``FLEETPROOF_RELEASE_SECRET`` (pseudonymization secret, hex),
``FLEETPROOF_RELEASE_SIGNING_KEY`` (Ed25519 private key, PEM file) and ``FLEETPROOF_RELEASE_DIR``
(default ``var/dagster/release``). Without them the asset publishes nothing and says so in its
metadata, so the hourly job still runs where no release is wanted.
"""

import os

from dagster import AssetExecutionContext, AutomationCondition, MaterializeResult, MetadataValue, asset

from dagster_project.defs.partitions import hours
from dagster_project.defs.resources import FleetproofStore
from pipelines.export import PUBLISHED
from pipelines.release import manifest, pseudonymize
from pipelines.release.writer import write_epoch
from pipelines.rewards_policy import load_rewards_policy


@asset(
    partitions_def=hours,
    group_name="publish",
    kinds={"parquet"},
    deps=list(PUBLISHED),
    automation_condition=AutomationCondition.eager(),
)
def public_release(context: AssetExecutionContext, store: FleetproofStore) -> MaterializeResult:
    """``<release>/<table>/epoch=<epoch>/`` and the signed ``<epoch>.datapackage.json``."""
    key_path = os.environ.get("FLEETPROOF_RELEASE_SIGNING_KEY")
    if not key_path or not os.environ.get(pseudonymize.SECRET_ENV):
        context.log.warning("public release not configured (FLEETPROOF_RELEASE_SIGNING_KEY, FLEETPROOF_RELEASE_SECRET)")
        return MaterializeResult(metadata={"published": False, "why": "release keys not configured"})
    epoch = context.partition_key
    root = os.environ.get("FLEETPROOF_RELEASE_DIR", "var/dagster/release")
    with store.connect() as con:
        done = write_epoch(con, root, epoch, pseudonymize.read_secret(), manifest.load_private_key(key_path),
                           load_rewards_policy(store.rewards_policy_path), pseudonymize.load_release_policy())  # fmt: skip
    return MaterializeResult(metadata={
        "published": True, "season": done.season, "manifest": MetadataValue.path(str(done.manifest)),
        **{f"rows_{t}": n for t, n in done.rows.items()},
    })  # fmt: skip
