"""A rewards-only recalculation skips verification and detection and gives exactly the full result."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pipelines.cli import main
from pipelines.db import connect

DETECTION_TABLES = ("pow_checks", "device_features", "device_measures", "evidence", "device_tiers", "challenge_plan")
REWARD_TABLES = ("stake_positions", "reward_facts", "reward_eligibility", "reward_allocations", "epoch_pools", "slashing_events")


def _policy(tmp_path: Path, name: str, **replace: str) -> Path:
    """The shipped reward policy with 1 hour of continuous uptime (a 4-hour network) and edits."""
    text = (
        Path("data/policy/rewards.toml").read_text().replace("min_continuous_uptime_hours = 5", "min_continuous_uptime_hours = 1")
    )
    for old, new in replace.items():
        assert old in text
        text = text.replace(old, new)
    path = tmp_path / name
    path.write_text(text)
    return path


def _tables(db: Path, tables: tuple[str, ...]) -> dict[str, list]:
    with connect(db) as con:
        return {t: con.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall() for t in tables}


def _tree_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def processed_once(small_drops: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """small_drops run once under the shipped policy (read-only: copy before changing)."""
    root = tmp_path_factory.mktemp("recalc")
    db = root / "processed.duckdb"
    assert main(["run", "--drops", str(small_drops), "--db", str(db), "--out", str(root / "out"),
                 "--rewards-policy", str(_policy(root, "old.toml"))]) == 0  # fmt: skip
    return db


@pytest.fixture
def processed(processed_once: Path, tmp_path: Path) -> tuple[Path, Path]:
    """Two private copies of the processed database."""
    first, second = tmp_path / "full.duckdb", tmp_path / "rewards_only.duckdb"
    shutil.copyfile(processed_once, first)
    shutil.copyfile(processed_once, second)
    return first, second


@pytest.mark.slow
def test_rewards_only_recalculation_equals_the_full_one_byte_for_byte(processed, tmp_path: Path, monkeypatch) -> None:
    """A new multiplier and emission for the period: same statements, exports and reward tables
    as a full recalculation; verification and detection are never called and stay as stored."""
    from pipelines.stages import detect, features, verify

    full_db, rewards_db = processed
    new = _policy(
        tmp_path,
        "new.toml",
        **{
            "rtx_4090 = 1.25": "rtx_4090 = 3",
            'emission_per_epoch_io = "2283.10502283"   #': 'emission_per_epoch_io = "1000"   #',
        },
    )
    detection_before = _tables(rewards_db, DETECTION_TABLES)
    args = ["recalc", "--from", "2024-08-14T01", "--to", "2024-08-14T02", "--rewards-policy", str(new), "--apply"]
    assert main([*args, "--db", str(full_db), "--out", str(tmp_path / "full_out")]) == 0

    def not_called(*_a, **_k):
        raise AssertionError("a rewards-only recalculation must not verify or detect")

    for stage in (verify, features, detect):
        monkeypatch.setattr(stage, "run", not_called)
    assert main([*args, "--rewards-only", "--db", str(rewards_db), "--out", str(tmp_path / "rewards_out")]) == 0

    full_files, rewards_files = _tree_bytes(tmp_path / "full_out"), _tree_bytes(tmp_path / "rewards_out")
    statements = "recalc/2024-08-14T01_2024-08-14T02/account_statements_diff.csv"
    assert len(full_files[statements].splitlines()) > 10  # the policy change moved money for many accounts
    assert rewards_files == full_files
    assert _tables(rewards_db, REWARD_TABLES) == _tables(full_db, REWARD_TABLES)
    assert _tables(rewards_db, DETECTION_TABLES) == detection_before
    with connect(rewards_db) as con:
        pools = dict(con.execute("SELECT epoch, pool_units FROM epoch_pools").fetchall())
    assert pools["2024-08-14T00"] == 228310502283 and pools["2024-08-14T03"] == 100000000000


def test_rewards_only_dry_run_stores_nothing_and_states_what_apply_does(processed, tmp_path: Path) -> None:
    """The dry run keeps its rows out of the database file (optimistic writes off for its
    transaction only): the connection's setting is as before, and applying gives the same
    statements."""
    from pipelines.recalc import recalculate_rewards
    from pipelines.rewards_policy import load_rewards_policy

    _, db = processed
    before = _tables(db, REWARD_TABLES)
    new = load_rewards_policy(_policy(tmp_path, "new.toml", **{"rtx_4090 = 1.25": "rtx_4090 = 3"}))
    setting = "SELECT current_setting('enable_optimistic_write')"
    with connect(db) as con:
        statements = recalculate_rewards(con, "2024-08-14T02", "2024-08-14T03", new)
        assert con.execute(setting).fetchall() == [(True,)]
    assert statements.height > 0 and int(statements["delta_base_units"].sum()) == 0  # same pool, split differently
    assert _tables(db, REWARD_TABLES) == before
    with connect(db) as con:
        applied = recalculate_rewards(con, "2024-08-14T02", "2024-08-14T03", new, apply=True)
        assert con.execute(setting).fetchall() == [(True,)]
    assert applied.equals(statements)
    assert _tables(db, REWARD_TABLES) != before


def test_recalculation_under_the_same_policy_reports_no_change(processed, tmp_path: Path) -> None:
    """Devices without an account on record included: nothing moved, no statement."""
    from pipelines.recalc import recalculate_rewards
    from pipelines.rewards_policy import load_rewards_policy

    _, db = processed
    with connect(db) as con:
        unowned = con.execute("SELECT count(*) FROM reward_eligibility WHERE account_id IS NULL").fetchone()[0]
        statements = recalculate_rewards(
            con, "2024-08-14T00", "2024-08-14T03", load_rewards_policy(_policy(tmp_path, "same.toml"))
        )
    assert unowned > 0
    assert statements.height == 0


def test_rewards_only_measures_the_epochs_of_a_database_from_before_device_measures_and_reward_facts(
    processed, tmp_path: Path
) -> None:
    """Epochs processed before ``device_measures`` and ``reward_facts`` were kept get them from
    their stored challenges, hardware reports, tiers and ledgers: the same measures, facts,
    statements and reward tables as a database that kept them."""
    from pipelines.recalc import recalculate_rewards
    from pipelines.rewards_policy import load_rewards_policy

    kept, older = processed
    with connect(older) as con:
        con.execute("DELETE FROM device_measures")
        con.execute("DELETE FROM reward_facts")
    new = load_rewards_policy(_policy(tmp_path, "new.toml", **{"rtx_4090 = 1.25": "rtx_4090 = 3"}))
    statements = []
    for db in (kept, older):
        with connect(db) as con:
            statements.append(recalculate_rewards(con, "2024-08-14T00", "2024-08-14T03", new, apply=True))
    assert statements[0].height > 0 and statements[0].equals(statements[1])
    tables = (*REWARD_TABLES, "device_measures")
    assert _tables(older, tables) == _tables(kept, tables)
    with connect(older) as con:
        assert con.execute("SELECT count(DISTINCT epoch) FROM device_measures").fetchall()[0][0] == 4
        assert con.execute("SELECT count(DISTINCT epoch) FROM reward_facts").fetchall()[0][0] == 4


def test_rewards_only_with_review_verdicts_is_a_clear_error(tmp_path: Path, capsys) -> None:
    overrides = tmp_path / "o.csv"
    overrides.write_text("device_id,tier,reason\nd1,rejected,review\n")
    code = main(["recalc", "--db", str(tmp_path / "x.duckdb"), "--out", str(tmp_path), "--from", "2024-08-14T01",
                 "--to", "2024-08-14T02", "--overrides", str(overrides), "--rewards-only"])  # fmt: skip
    assert code == 2 and "--rewards-only keeps the stored tiers" in capsys.readouterr().err
