"""The one resource: where drops, the database and exports live, and the policies; plus the
in-process executor (one process per run: the stages share one DuckDB file behind one lock)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from contextlib import AbstractContextManager
from pathlib import Path

import dagster as dg
import duckdb

from pipelines.contract import MANIFEST
from pipelines.db import connect
from pipelines.ingest import complete_hours, sha256_file
from pipelines.policy import DetectionPolicy, load_policy
from pipelines.rewards_policy import load_rewards_policy
from pipelines.stages.context import StageContext


class FleetproofStore(dg.ConfigurableResource):
    """Drop folders in, one DuckDB file, Parquet exports out, and the policies."""

    drops_dir: str
    db_path: str
    out_dir: str
    policy_path: str | None = None
    rewards_policy_path: str | None = None

    def connect(self, timeout_s: float | None = None) -> AbstractContextManager[duckdb.DuckDBPyConnection]:
        """A connection under the database's inter-process writer lock (``pipelines.db``)."""
        return connect(self.db_path) if timeout_s is None else connect(self.db_path, timeout_s=timeout_s)

    def policy(self) -> DetectionPolicy:
        return load_policy(self.policy_path)

    def context(self) -> StageContext:
        """What the runner needs besides the connection: policies and the export folder."""
        return StageContext(load_rewards_policy(self.rewards_policy_path), self.policy(), out=Path(self.out_dir))

    def deliveries(self) -> dict[str, str]:
        """Complete hour folders (manifest written) -> the manifest's sha256, oldest first."""
        return {folder.name: sha256_file(folder / MANIFEST) for folder in complete_hours(self.drops_dir)}


def store_from_env(env: Mapping[str, str] = os.environ) -> FleetproofStore:
    """Paths from ``FLEETPROOF_*``; by default ``fleetproof demo``'s (``var/demo``)."""
    name = env.get("FLEETPROOF_ENV", "local")
    if name != "local":
        raise ValueError(f"unknown FLEETPROOF_ENV {name!r}; known: local")
    return FleetproofStore(
        drops_dir=env.get("FLEETPROOF_DROPS", "var/demo/drops"),
        db_path=env.get("FLEETPROOF_DB", "var/demo/fleetproof.duckdb"),
        out_dir=env.get("FLEETPROOF_OUT", "var/demo/out"),
        policy_path=env.get("FLEETPROOF_POLICY") or None,
        rewards_policy_path=env.get("FLEETPROOF_REWARDS_POLICY") or None,
    )


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(resources={"store": store_from_env()}, executor=dg.in_process_executor)
