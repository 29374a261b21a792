"""A stage that fails on one epoch is recorded with its reason, shown by ``status``, blocks
only that epoch and the later ones (state carries forward), and a rerun retries it."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.cli import main
from pipelines.simulate import simulate
from pipelines.stages import tier
from pipelines.status import status_data, status_report

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def drops(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("stage") / "drops"
    simulate(out, devices=16, hours=3, seed=4)
    return out


def test_a_failing_stage_is_recorded_visible_and_retried(drops: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    epochs = sorted(p.name for p in drops.iterdir() if p.name.startswith("2024"))
    real = tier.assign_tiers

    def breaks_on_the_second_epoch(con, epoch, *args, **kwargs):
        if epoch == epochs[1]:
            raise RuntimeError("disk full while tiering")
        return real(con, epoch, *args, **kwargs)

    monkeypatch.setattr(tier, "assign_tiers", breaks_on_the_second_epoch)
    argv = ["run", "--drops", str(drops), "--db", str(tmp_path / "db.duckdb"), "--out", str(tmp_path / "out")]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert f"STOPPED at {epochs[1]}: stage tier failed (RuntimeError: disk full while tiering)" in err
    data = status_data(tmp_path / "db.duckdb")
    assert data["stage_failures"] == [
        {
            "epoch": epochs[1],
            "stage": "tier",
            "reason": "RuntimeError: disk full while tiering",
            "failed_at": data["stage_failures"][0]["failed_at"],
        }
    ]
    assert data["epochs"]["processed"] == 1  # the failed epoch rolled back; the later one waits
    assert f"FAILED {epochs[1]} at stage tier" in status_report(tmp_path / "db.duckdb")

    monkeypatch.setattr(tier, "assign_tiers", real)
    assert main(argv) == 0
    data = status_data(tmp_path / "db.duckdb")
    assert data["stage_failures"] == [] and data["epochs"]["processed"] == 3 and data["epochs_not_exported"] == []
    assert len(list((tmp_path / "out" / "device_tiers").glob("epoch=*/part-0.parquet"))) == 3
