"""Every user mistake gets one line on stderr and a non-zero exit, never a traceback, and
nothing is created or deleted that the user did not ask for."""

from __future__ import annotations

import multiprocessing
import shutil
import time
from pathlib import Path

import pytest
from hostile_hours import make_hour

from pipelines.cli import DEMO_MARKER, main
from pipelines.db import connect


def fails_with(capsys, argv: list[str], *fragments: str) -> str:
    assert main(argv) != 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("fleetproof: error: ") and "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in err, err
    return err


def test_status_on_a_missing_path_says_so_and_creates_nothing(capsys, tmp_path: Path) -> None:
    fails_with(capsys, ["status", "--db", str(tmp_path / "nope.duckdb")], "does not exist")
    assert list(tmp_path.iterdir()) == []


def test_status_on_a_file_that_is_not_duckdb_is_one_line(capsys, tmp_path: Path) -> None:
    (tmp_path / "notes.duckdb").write_text("hello")
    fails_with(capsys, ["status", "--db", str(tmp_path / "notes.duckdb")], "is not a DuckDB database")


def test_status_on_a_duckdb_file_of_another_program_is_one_line(capsys, tmp_path: Path) -> None:
    import duckdb

    duckdb.connect(str(tmp_path / "other.duckdb")).close()
    fails_with(capsys, ["status", "--db", str(tmp_path / "other.duckdb")], "not a fleetproof one")


def _hold(db: str, seconds: float) -> None:
    with connect(db):
        time.sleep(seconds)


def test_status_says_at_once_that_a_run_holds_the_database(capsys, tmp_path: Path) -> None:
    db = tmp_path / "db.duckdb"
    with connect(db):
        pass
    holder = multiprocessing.get_context("spawn").Process(target=_hold, args=(str(db), 60))
    holder.start()
    try:
        deadline = time.monotonic() + 60
        while not (tmp_path / "db.duckdb.holder").read_text().startswith(f"pid {holder.pid} "):
            assert time.monotonic() < deadline
            time.sleep(0.1)
        started = time.monotonic()
        fails_with(capsys, ["status", "--db", str(db)], "a run holds", f"pid {holder.pid}", "since")
        assert time.monotonic() - started < 5
    finally:
        holder.kill()
        holder.join()
    assert main(["status", "--db", str(db)]) == 0


def test_run_on_an_empty_drops_folder_is_an_error(capsys, tmp_path: Path) -> None:
    (tmp_path / "drops").mkdir()
    fails_with(capsys, ["run", "--drops", str(tmp_path / "drops"), "--db", str(tmp_path / "db.duckdb"), "--out", str(tmp_path / "o")],
               "no complete hour folders")  # fmt: skip
    assert not (tmp_path / "db.duckdb").exists()


def test_run_on_a_missing_drops_folder_is_an_error(capsys, tmp_path: Path) -> None:
    fails_with(
        capsys,
        ["run", "--drops", str(tmp_path / "nope"), "--db", str(tmp_path / "db"), "--out", str(tmp_path / "o")],
        "does not exist",
    )


def test_run_with_a_non_duckdb_database_file_is_an_error(capsys, tmp_path: Path) -> None:
    make_hour(tmp_path / "drops")
    (tmp_path / "db.duckdb").write_text("not a database")
    fails_with(capsys, ["run", "--drops", str(tmp_path / "drops"), "--db", str(tmp_path / "db.duckdb"), "--out", str(tmp_path / "o")],
               "is not a DuckDB database")  # fmt: skip
    assert (tmp_path / "db.duckdb").read_text() == "not a database"


@pytest.mark.parametrize(
    "toml, fragments",
    [
        ('[quality]\nmax_quarantine_share = "lots"\n', ["quality.max_quarantine_share", "valid number", "'lots'"]),
        ("[quality]\nmax_quarantine_share = 2.0\n", ["quality.max_quarantine_share", "less than or equal to 1"]),
        ("[tiering]\nverify_after_clean_hours = 1.5\n", ["tiering.verify_after_clean_hours", "valid integer"]),
        ("[quality]\nmin_rows = { hardwre = 1 }\n", ["quality.min_rows.hardwre"]),
        ('[detectors.failed_pow]\nthreshold = "high"\n', ["detectors.failed_pow.threshold", "valid number"]),
        ("[detectors.failed_pow]\nthreshhold = 0.5\n", ["detectors.failed_pow.threshhold", "Extra inputs"]),
        ("[detectors.no_such]\n", ["detectors.no_such", "unknown detector"]),
        ("[surprise]\nx = 1\n", ["surprise", "Extra inputs"]),
        ("[quality\n", ["not valid TOML"]),
    ],
)
def test_a_broken_detection_policy_names_the_file_the_key_and_the_type(
    capsys, tmp_path: Path, toml: str, fragments: list[str]
) -> None:
    make_hour(tmp_path / "drops")
    policy = tmp_path / "policy.toml"
    policy.write_text(toml)
    argv = [
        "run",
        "--drops",
        str(tmp_path / "drops"),
        "--db",
        str(tmp_path / "db.duckdb"),
        "--out",
        str(tmp_path / "o"),
        "--policy",
        str(policy),
    ]
    fails_with(capsys, argv, str(policy), *fragments)
    assert not (tmp_path / "db.duckdb").exists()  # refused before anything ran


def test_a_broken_rewards_policy_names_the_file_the_key_and_the_type(capsys, tmp_path: Path) -> None:
    text = (Path(__file__).resolve().parent.parent / "data" / "policy" / "rewards.toml").read_text()
    policy = tmp_path / "rewards.toml"
    policy.write_text(text.replace('emission_per_epoch_io = "2283.10502283"', "emission_per_epoch_io = 2283.10502283", 1))
    make_hour(tmp_path / "drops")
    argv = ["run", "--drops", str(tmp_path / "drops"), "--db", str(tmp_path / "db.duckdb"), "--out", str(tmp_path / "o"),
            "--rewards-policy", str(policy)]  # fmt: skip
    fails_with(capsys, argv, str(policy), "version.0.emission_per_epoch_io", "valid string")


def test_two_connectivity_tiers_with_one_threshold_are_refused(tmp_path: Path) -> None:
    from pipelines.policy_errors import PolicyError
    from pipelines.rewards_policy import load_rewards_policy

    text = (Path(__file__).resolve().parent.parent / "data" / "policy" / "rewards.toml").read_text()
    policy = tmp_path / "rewards.toml"
    policy.write_text(text.replace("min_down_mbps = 50,", "min_down_mbps = 0,", 1))
    with pytest.raises(PolicyError, match="version.0.connectivity.*same min_down_mbps"):
        load_rewards_policy(policy)


def test_a_missing_policy_file_is_one_line(capsys, tmp_path: Path) -> None:
    make_hour(tmp_path / "drops")
    argv = [
        "run",
        "--drops",
        str(tmp_path / "drops"),
        "--db",
        str(tmp_path / "db"),
        "--out",
        str(tmp_path / "o"),
        "--policy",
        str(tmp_path / "x.toml"),
    ]
    fails_with(capsys, argv, "x.toml does not exist")


@pytest.mark.parametrize(
    "frm, to, fragment",
    [
        ("2024-08-14", "2024-08-14T02", "--from '2024-08-14' is not an hour"),
        ("2024-08-14T00", "2024-08-14T24", "--to '2024-08-14T24' is not an hour"),
        ("yesterday", "2024-08-14T02", "--from 'yesterday' is not an hour"),
        ("2024-08-14T05", "2024-08-14T02", "--from 2024-08-14T05 is after --to 2024-08-14T02"),
    ],
)
def test_recalc_refuses_a_period_that_is_not_hours_in_order(capsys, tmp_path: Path, frm: str, to: str, fragment: str) -> None:
    with connect(tmp_path / "db.duckdb"):
        pass
    fails_with(
        capsys, ["recalc", "--db", str(tmp_path / "db.duckdb"), "--out", str(tmp_path / "o"), "--from", frm, "--to", to], fragment
    )


def test_recalc_on_a_missing_database_creates_nothing(capsys, tmp_path: Path) -> None:
    argv = [
        "recalc",
        "--db",
        str(tmp_path / "db.duckdb"),
        "--out",
        str(tmp_path / "o"),
        "--from",
        "2024-08-14T00",
        "--to",
        "2024-08-14T01",
    ]
    fails_with(capsys, argv, "does not exist")
    assert list(tmp_path.iterdir()) == []


def test_demo_refuses_to_delete_a_folder_it_did_not_create(capsys, tmp_path: Path) -> None:
    work = tmp_path / "mine"
    work.mkdir()
    (work / "thesis.tex").write_text("years of work")
    fails_with(capsys, ["demo", "--workdir", str(work), "--devices", "10", "--hours", "1"], "was not made by `fleetproof demo`")
    assert (work / "thesis.tex").read_text() == "years of work"


def test_demo_asks_before_replacing_its_own_earlier_workdir(capsys, tmp_path: Path, monkeypatch) -> None:
    work = tmp_path / "demo"
    work.mkdir()
    (work / DEMO_MARKER).write_text("made by fleetproof demo")
    (work / "fleetproof.duckdb").write_text("earlier demo")
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    fails_with(capsys, ["demo", "--workdir", str(work), "--devices", "10", "--hours", "1"], "pass --keep", "--yes")
    assert (work / "fleetproof.duckdb").read_text() == "earlier demo"
    shutil.rmtree(work)
