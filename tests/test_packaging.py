"""The wheel carries its own data: an installed package finds its catalogue and policies."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

PROBE = """
import pipelines.catalogue as c
from pipelines.policy import load_policy
from pipelines.rewards_policy import load_rewards_policy
from pipelines.simulate import load_scenario
assert c.DATA_DIR.is_relative_to({root!r}), c.DATA_DIR
load_policy(); load_rewards_policy(); load_scenario(c.DATA_DIR / "scenarios" / "default.toml")
print(len(c.load_catalogue()), "catalogue models from", c.DATA_DIR)
"""


@pytest.mark.slow
def test_the_built_wheel_finds_its_catalogue_policies_and_scenarios(tmp_path: Path) -> None:
    uv = shutil.which("uv")
    assert uv, "uv is needed to build the wheel (.ci/run installs it)"
    subprocess.run([uv, "build", "--wheel", "-o", str(tmp_path / "dist"), str(REPO)], check=True, capture_output=True)
    [wheel] = (tmp_path / "dist").glob("fleetproof-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for needed in ("pipelines/data/gpu_catalogue.csv", "pipelines/data/policy/detection.toml",
                   "pipelines/data/policy/rewards.toml", "pipelines/data/scenarios/default.toml",
                   "dagster_project/dagster.yaml"):  # fmt: skip
        assert needed in names
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    # the unpacked wheel first on the path, the checkout nowhere: only the wheel's data can be found
    env = {**os.environ, "PYTHONPATH": str(site), "PYTHONSAFEPATH": "1"}
    probe = subprocess.run([sys.executable, "-c", PROBE.format(root=str(site))], cwd=tmp_path, env=env,
                           capture_output=True, text=True)  # fmt: skip
    assert probe.returncode == 0, probe.stderr
    assert "catalogue models from" in probe.stdout
