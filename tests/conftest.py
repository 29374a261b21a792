"""Shared fixtures: small simulated networks, written once per test session."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pipelines.simulate import simulate


@pytest.fixture(scope="session")
def small_drops(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """400 devices x 4 hours of every population and attack (read-only: copy before editing)."""
    out = tmp_path_factory.mktemp("small") / "drops"
    simulate(out, devices=400, hours=4, seed=11)
    return out


@pytest.fixture(scope="session")
def tiny_drops(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """16 devices x 3 hours, for tests of the runner's bookkeeping (read-only: copy before editing)."""
    out = tmp_path_factory.mktemp("tiny") / "drops"
    simulate(out, devices=16, hours=3, seed=4)
    return out


@pytest.fixture
def drops_copy(small_drops: Path, tmp_path: Path) -> Path:
    """A private, editable copy of ``small_drops``."""
    dest = tmp_path / "drops"
    shutil.copytree(small_drops, dest)
    return dest


@pytest.fixture
def catalogue_con(tmp_path: Path):
    """A connection to a fresh database with the GPU catalogue views registered."""
    from pipelines import catalogue
    from pipelines.db import connect

    with connect(tmp_path / "db.duckdb") as con:
        catalogue.register(con)
        yield con


@pytest.fixture(scope="session")
def day_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """A simulated day (1,500 devices x 24 hours) run through the command line: (drops, db, out)."""
    from pipelines.cli import main

    root = tmp_path_factory.mktemp("day")
    drops, db, out = root / "drops", root / "fp.duckdb", root / "out"
    assert main(["simulate", "--out", str(drops), "--devices", "1500", "--hours", "24", "--seed", "21"]) == 0
    assert main(["run", "--drops", str(drops), "--db", str(db), "--out", str(out)]) == 0
    return drops, db, out
