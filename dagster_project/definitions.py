"""The code location: ``dagster dev -m dagster_project.definitions``.

Paths come from the environment (``FLEETPROOF_ENV``, ``FLEETPROOF_DROPS``, ``FLEETPROOF_DB``,
``FLEETPROOF_OUT``, ``FLEETPROOF_POLICY``; see ``resources.store_from_env``).
"""

from __future__ import annotations

from dagster import Definitions

from dagster_project.assets import ALL_ASSETS
from dagster_project.assets.dashboard import dashboard_report
from dagster_project.assets.release import public_release
from dagster_project.checks import ALL_CHECKS
from dagster_project.jobs import hourly_pipeline
from dagster_project.resources import store_from_env
from dagster_project.schedules import hourly_schedule
from dagster_project.sensors import drops_sensor

defs = Definitions(
    assets=[*ALL_ASSETS, dashboard_report, public_release],
    asset_checks=ALL_CHECKS,
    jobs=[hourly_pipeline],
    schedules=[hourly_schedule],
    sensors=[drops_sensor],
    resources={"store": store_from_env()},
)
