"""The one resource every asset, check and sensor uses: where drops, the database and exports live.

``store_from_env`` picks the paths for the environment named by ``FLEETPROOF_ENV``; tests build a
``FleetproofStore`` directly with their own temporary paths.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import duckdb
from dagster import ConfigurableResource

from pipelines.db import connect
from pipelines.policy import DetectionPolicy, load_policy


class FleetproofStore(ConfigurableResource):
    """Drop folders in, one DuckDB file, Parquet exports out, and the detection policy."""

    drops_dir: str
    db_path: str
    out_dir: str
    policy_path: str | None = None
    rewards_policy_path: str | None = None

    def connect(self) -> AbstractContextManager[duckdb.DuckDBPyConnection]:
        """A connection under the database's inter-process writer lock (see ``pipelines.db``)."""
        return connect(self.db_path)

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A locked connection inside one transaction: committed on success, rolled back on error."""
        with self.connect() as con:
            con.execute("BEGIN TRANSACTION")
            try:
                yield con
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise

    def policy(self) -> DetectionPolicy:
        """The detection policy (``data/policy/detection.toml`` unless ``policy_path`` is set)."""
        return load_policy(self.policy_path)

    def hour_folder(self, epoch: str) -> Path:
        return Path(self.drops_dir) / epoch


def store_from_env(env: Mapping[str, str] = os.environ) -> FleetproofStore:
    """The store for ``FLEETPROOF_ENV`` (only ``local`` so far: paths from ``FLEETPROOF_*``).

    By default the drops are the ones ``fleetproof demo`` simulates, and Dagster keeps its own
    database and exports under ``var/dagster/``."""
    name = env.get("FLEETPROOF_ENV", "local")
    if name != "local":
        raise ValueError(f"unknown FLEETPROOF_ENV {name!r}; known: local")
    return FleetproofStore(
        drops_dir=env.get("FLEETPROOF_DROPS", "var/demo/drops"),
        db_path=env.get("FLEETPROOF_DB", "var/dagster/fleetproof.duckdb"),
        out_dir=env.get("FLEETPROOF_OUT", "var/dagster/out"),
        policy_path=env.get("FLEETPROOF_POLICY") or None,
        rewards_policy_path=env.get("FLEETPROOF_REWARDS_POLICY") or None,
    )
