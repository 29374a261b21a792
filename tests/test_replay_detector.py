"""``benchmarks/replay_detector.py``: a detector replayed over a stored run, compared with what it stored."""

from __future__ import annotations

import hashlib
import runpy
import shutil
import sys
from pathlib import Path

import duckdb
import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "replay_detector.py"


def _copy(db: Path, tmp_path: Path) -> Path:
    """A copy of a run's database to change or replay."""
    copy = tmp_path / "fp.duckdb"
    shutil.copyfile(db, copy)
    return copy


def _replay(monkeypatch, capsys, *args: str) -> str:
    monkeypatch.setattr(sys, "argv", ["replay_detector.py", *args])
    runpy.run_path(str(SCRIPT), run_name="__main__")
    return capsys.readouterr().out


def test_a_replay_of_unchanged_code_matches_what_the_run_stored_and_leaves_the_database_as_it_was(
    day_run, tmp_path, monkeypatch, capsys
) -> None:
    drops, db, _ = day_run
    copy = _copy(db, tmp_path)
    before = hashlib.sha256(copy.read_bytes()).hexdigest()
    out = _replay(monkeypatch, capsys, "--db", str(copy), "--detector", "sybil",
                  "--truth", str(drops / "_truth" / "devices.parquet"))  # fmt: skip
    assert "sybil over 24 epochs" in out and "sybil_ring" in out
    assert "devices whose held hours differ: 0" in out
    assert hashlib.sha256(copy.read_bytes()).hexdigest() == before  # sybil_clusters were rewritten on a copy only


def test_a_replay_names_the_devices_whose_verdicts_differ_from_the_stored_ones(day_run, tmp_path, monkeypatch, capsys) -> None:
    _, db, _ = day_run
    copy = _copy(db, tmp_path)
    with duckdb.connect(str(copy)) as con:  # as if the run had been made before failed_pow held this device
        device, epochs = con.execute(
            "SELECT device_id, count(*) FROM evidence WHERE detector = 'failed_pow' AND action IN ('probation', 'reject') "
            "GROUP BY device_id ORDER BY device_id LIMIT 1"
        ).fetchall()[0]
        con.execute("DELETE FROM evidence WHERE detector = 'failed_pow' AND device_id = ?", [device])
    out = _replay(monkeypatch, capsys, "--db", str(copy), "--detector", "failed_pow")
    assert "devices whose held hours differ: 1" in out
    assert device in out and f"now only ┆ {epochs} " in out


def test_a_replay_refuses_an_unknown_detector_a_missing_database_or_a_truth_file_it_cannot_use(
    day_run, tmp_path, monkeypatch, capsys
) -> None:
    _, db, _ = day_run
    with pytest.raises(SystemExit, match="no detector 'nope'; known: anomaly"):
        _replay(monkeypatch, capsys, "--db", str(db), "--detector", "nope")
    with pytest.raises(SystemExit, match="no database at"):
        _replay(monkeypatch, capsys, "--db", str(tmp_path / "none.duckdb"), "--detector", "sybil")
    (tmp_path / "truth.csv").write_text("device_id,kind\ndev_1,honest\n")
    with pytest.raises(SystemExit, match="has no column population, is_fraud"):
        _replay(monkeypatch, capsys, "--db", str(db), "--detector", "sybil", "--truth", str(tmp_path / "truth.csv"))
    with pytest.raises(SystemExit, match="cannot read the truth file"):
        _replay(monkeypatch, capsys, "--db", str(db), "--detector", "sybil", "--truth", str(tmp_path / "none.csv"))


def test_a_replay_stops_at_once_while_a_run_holds_the_database(day_run, tmp_path) -> None:
    import subprocess

    from pipelines.db import connect

    _, db, _ = day_run
    copy = _copy(db, tmp_path)
    with connect(copy):  # a run in progress
        done = subprocess.run([sys.executable, str(SCRIPT), "--db", str(copy), "--detector", "failed_pow"],
                              capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 1 and "replay_detector: a run holds" in done.stderr and "Traceback" not in done.stderr


def test_a_replay_builds_the_detector_from_the_policy_so_a_changed_parameter_replays_as_a_code_change(
    day_run, tmp_path, monkeypatch, capsys
) -> None:
    from pipelines.policy import DEFAULT_POLICY

    _, db, _ = day_run
    copy = _copy(db, tmp_path)
    with duckdb.connect(str(copy)) as con:
        below = con.execute(
            "SELECT count(DISTINCT device_id) FROM evidence WHERE detector = 'failed_pow' AND action IN ('probation', 'reject') "
            "AND score < 1"
        ).fetchall()[0][0]
    assert below > 0
    policy = tmp_path / "detection.toml"  # the shipped policy, keeping only failed_pow's rows of score 1
    text = DEFAULT_POLICY.read_text()
    start = text.index("[detectors.failed_pow]")
    policy.write_text(text[:start] + text[start:].replace("threshold = 0.5", "threshold = 1.0", 1))
    out = _replay(monkeypatch, capsys, "--db", str(copy), "--detector", "failed_pow", "--policy", str(policy))
    assert "devices whose held hours differ: 0" not in out and "before only" in out
    (tmp_path / "bad.toml").write_text(text[:start] + text[start:].replace("threshold = 0.5", 'threshold = "high"', 1))
    with pytest.raises(SystemExit, match="bad.toml"):
        _replay(monkeypatch, capsys, "--db", str(copy), "--detector", "failed_pow", "--policy", str(tmp_path / "bad.toml"))
