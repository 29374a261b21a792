"""The code location ``fleetproof`` (``dg dev``; ``[tool.dg]`` in pyproject.toml): every
definition under ``dagster_project/defs/``, loaded with ``load_from_defs_folder``.

Paths come from the environment (``FLEETPROOF_DROPS``, ``FLEETPROOF_DB``, ``FLEETPROOF_OUT``,
``FLEETPROOF_POLICY``, ``FLEETPROOF_REWARDS_POLICY``; see ``defs/resources.py``); by default
the demo's, so ``fleetproof demo`` results show in the UI.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg


@dg.definitions
def defs() -> dg.Definitions:
    return dg.load_from_defs_folder(project_root=Path(__file__).resolve().parents[1])
