"""Dagster wiring: same tables as the command line, blocking checks, the sensor, and the UI."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from dagster import AssetSelection, DagsterInstance, ExecuteInProcessResult, build_sensor_context, materialize

from dagster_project.assets import ALL_ASSETS
from dagster_project.assets.verification import previous_hour_pending
from dagster_project.checks import ALL_CHECKS
from dagster_project.partitions import epoch_for_partition, hourly_partitions, partition_for_epoch
from dagster_project.resources import FleetproofStore, store_from_env
from dagster_project.sensors import drops_sensor
from pipelines.contract import MANIFEST
from pipelines.db import connect
from pipelines.run import run
from pipelines.simulate import simulate
from pipelines.simulate.writer import write_manifest

REPO = Path(__file__).resolve().parents[1]
HOURS = ["2024-08-14T00", "2024-08-14T01", "2024-08-14T02"]
ASSET_NAMES = {"hourly_drop", "device_features", "detector_evidence", "device_tiers", "challenge_plan", "reward_allocations", "published_tables"}


@pytest.fixture(scope="module")
def sim_drops(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """300 devices x 3 hours (read-only: copy before editing)."""
    out = tmp_path_factory.mktemp("dagster") / "drops"
    simulate(out, devices=300, hours=3, seed=1)
    return out


@pytest.fixture
def drops(sim_drops: Path, tmp_path: Path) -> Path:
    dest = tmp_path / "drops"
    shutil.copytree(sim_drops, dest)
    return dest


def store_for(drops: Path, tmp_path: Path, policy: Path | None = None) -> FleetproofStore:
    return FleetproofStore(
        drops_dir=str(drops),
        db_path=str(tmp_path / "dagster.duckdb"),
        out_dir=str(tmp_path / "out"),
        policy_path=str(policy) if policy else None,
    )


def materialize_hour(
    store: FleetproofStore, hour: str, run_config: dict | None = None, selection: AssetSelection | None = None
) -> ExecuteInProcessResult:
    return materialize(
        [*ALL_ASSETS, *ALL_CHECKS],
        partition_key=partition_for_epoch(hour),
        resources={"store": store},
        instance=DagsterInstance.ephemeral(),
        run_config=run_config,
        selection=selection,
        raise_on_error=False,
    )


def materialized(result: ExecuteInProcessResult) -> set[str]:
    return {e.asset_key.path[-1] for e in result.get_asset_materialization_events()}


def checks(result: ExecuteInProcessResult) -> dict[str, object]:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def rows(db: str | Path, sql: str) -> list[tuple]:
    with connect(db) as con:
        return con.execute(sql).fetchall()


def test_partition_keys_and_epochs_convert_both_ways() -> None:
    assert epoch_for_partition("2024-08-14-03:00") == "2024-08-14T03"
    assert partition_for_epoch("2024-08-14T03") == "2024-08-14-03:00"
    first = hourly_partitions.get_first_partition_key()
    assert first is not None and partition_for_epoch(epoch_for_partition(first)) == first


def test_store_from_env_defaults_and_overrides() -> None:
    assert store_from_env({}).db_path == "var/dagster/fleetproof.duckdb"
    assert store_from_env({"FLEETPROOF_DROPS": "/d", "FLEETPROOF_POLICY": "p.toml"}).drops_dir == "/d"
    with pytest.raises(ValueError, match="FLEETPROOF_ENV"):
        store_from_env({"FLEETPROOF_ENV": "nowhere"})


@pytest.mark.slow
def test_three_partitions_give_the_command_lines_tables(drops: Path, tmp_path: Path) -> None:
    store = store_for(drops, tmp_path)
    for hour in HOURS:
        result = materialize_hour(store, hour)
        assert result.success, hour
        assert materialized(result) == ASSET_NAMES
        assert all(e.passed for e in checks(result).values()) and len(checks(result)) == 5
        assert (tmp_path / "out" / "device_tiers" / f"epoch={hour}" / "part-0.parquet").is_file()

    cli_drops = tmp_path / "cli_drops"
    shutil.copytree(drops, cli_drops)
    run(cli_drops, tmp_path / "cli.duckdb", tmp_path / "cli_out")
    for query in (
        "SELECT * FROM device_tiers ORDER BY epoch, device_id",
        "SELECT * FROM reward_allocations ORDER BY epoch, device_id, wallet",
        "SELECT * FROM challenge_plan ORDER BY ALL",
    ):
        ours, theirs = rows(store.db_path, query), rows(tmp_path / "cli.duckdb", query)
        assert {r[0] for r in ours} <= set(HOURS)
        assert ours == theirs, query


def test_broken_manifest_blocks_everything_downstream(drops: Path, tmp_path: Path) -> None:
    hour = HOURS[0]
    victim = drops / hour / "hardware.csv"
    data = bytearray(victim.read_bytes())
    data[-2] = ord("x") if data[-2] != ord("x") else ord("y")
    victim.write_bytes(bytes(data))
    store = store_for(drops, tmp_path)

    result = materialize_hour(store, hour)
    assert not result.success
    assert materialized(result) == {"hourly_drop"}
    accepted = checks(result)["manifest_accepted"]
    assert not accepted.passed
    assert "sha256" in accepted.description and "hardware.csv" in accepted.description
    assert accepted.metadata["status"].value == "rejected"
    assert rows(store.db_path, f"SELECT count(*) FROM device_features WHERE epoch = '{hour}'") == [(0,)]
    assert rows(store.db_path, "SELECT count(*) FROM device_tiers") == [(0,)]


def test_required_rows_threshold_comes_from_the_policy_file(drops: Path, tmp_path: Path) -> None:
    policy = tmp_path / "strict.toml"
    policy.write_text("[quality]\nmin_rows = { hardware = 1, pow = 1000000, uptime = 1 }\n")
    result = materialize_hour(store_for(drops, tmp_path, policy), HOURS[0])
    assert not result.success and materialized(result) == {"hourly_drop"}
    check = checks(result)["required_rows"]
    assert not check.passed and "pow" in check.description
    assert check.metadata["pow_min"].value == 1000000 and 0 < check.metadata["pow_rows"].value < 1000000


def test_quarantine_share_check_fails_above_its_configured_maximum(drops: Path, tmp_path: Path) -> None:
    folder = drops / HOURS[0]
    uptime = folder / "uptime.csv"
    lines = uptime.read_text().splitlines(keepends=True)
    lines[1] = "not,a,valid,uptime,row,at,all,really\n"
    uptime.write_text("".join(lines))
    manifest = json.loads((folder / MANIFEST).read_text())
    manifest["files"]["uptime.csv"]["sha256"] = hashlib.sha256(uptime.read_bytes()).hexdigest()
    write_manifest(folder, manifest)
    store = store_for(drops, tmp_path)

    lenient = materialize_hour(store, HOURS[0], selection=AssetSelection.assets("hourly_drop"))
    share = checks(lenient)["quarantine_share"]
    assert lenient.success and share.passed and share.metadata["rows_quarantined"].value == 1
    assert share.metadata["max_share"].value == pytest.approx(0.01)

    override = {"ops": {"hourly_drop_quarantine_share": {"config": {"max_share": 0.0}}}}
    strict = materialize_hour(store, HOURS[0], override)
    share = checks(strict)["quarantine_share"]
    assert not strict.success and not share.passed and share.metadata["max_share"].value == 0.0
    assert materialized(strict) == {"hourly_drop"}


def test_sample_verification_rate_fails_when_answers_carry_no_samples(drops: Path, tmp_path: Path) -> None:
    store = store_for(drops, tmp_path)
    assert materialize_hour(store, HOURS[0], selection=AssetSelection.assets("hourly_drop")).success
    with connect(store.db_path) as con:  # a tenth of the answered challenges come back with no samples
        con.execute(
            "UPDATE pow SET samples = '[]' WHERE _hour = ? AND status = 'ok' AND samples IS NOT NULL "
            "AND hash(challenge_id) % 10 = 0",
            [HOURS[0]],
        )
    features_on = AssetSelection.assets("device_features").downstream()
    result = materialize_hour(store, HOURS[0], selection=features_on)
    check = checks(result)["sample_verification_rate"]
    assert not result.success and not check.passed
    assert 0.8 < check.metadata["rate"].value < 0.99
    assert check.metadata["min_rate"].value == pytest.approx(0.99)
    assert materialized(result) == {"device_features"}


def test_features_wait_while_the_previous_hour_is_ingested_but_not_tiered(
    drops: Path, tmp_path: Path
) -> None:
    store = store_for(drops, tmp_path)
    ingest_only = AssetSelection.assets("hourly_drop")
    assert materialize_hour(store, HOURS[0], selection=ingest_only).success
    assert not previous_hour_pending(store, HOURS[0])  # nothing before the first hour
    assert previous_hour_pending(store, HOURS[1])
    assert materialize_hour(store, HOURS[0]).success
    assert not previous_hour_pending(store, HOURS[1])


def test_sensor_requests_each_complete_hour_once_per_delivery(drops: Path, tmp_path: Path) -> None:
    (drops / "2024-08-14T03").mkdir()  # incomplete: no manifest yet
    (drops / "2024-08-14T03" / "hardware.csv").write_text("ts\n")
    shutil.copytree(drops / HOURS[0], drops / "2024-08-13T23")  # before the first partition

    cursor: dict[str, str | None] = {"value": None}

    def requests() -> list[tuple[str | None, str | None]]:
        context = build_sensor_context(resources={"store": store_for(drops, tmp_path)}, cursor=cursor["value"])
        found = [(r.partition_key, r.run_key) for r in drops_sensor(context)]
        cursor["value"] = context.cursor
        return found

    def sha(hour: str) -> str:
        return hashlib.sha256((drops / hour / MANIFEST).read_bytes()).hexdigest()

    assert requests() == [(partition_for_epoch(h), f"{h}:{sha(h)}") for h in HOURS]
    assert requests() == []  # nothing new
    manifest = json.loads((drops / HOURS[1] / MANIFEST).read_text())
    (drops / HOURS[1] / MANIFEST).write_text(json.dumps(manifest))  # re-delivered with other bytes
    # the changed hour runs again, and so does every later hour (tiers carry state forward)
    assert requests() == [
        (partition_for_epoch(HOURS[1]), f"{HOURS[1]}:{sha(HOURS[1])}"),
        (partition_for_epoch(HOURS[2]), f"{HOURS[2]}:{sha(HOURS[2])}:after:{HOURS[1]}:{sha(HOURS[1])}"),
    ]


# --- the web UI, as a user would run it -------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _http(url: str, body: dict | None = None, timeout: float = 30) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with _NO_PROXY.open(request, timeout=timeout) as response:
        return json.loads(response.read())


@pytest.fixture
def webserver(drops: Path, tmp_path: Path) -> Iterator[tuple[str, Path, Path]]:
    """The README's UI command (``dagster dev``: webserver and daemon) on a free port over a
    private instance; yields (url, db, log)."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    db = tmp_path / "ui.duckdb"
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "FLEETPROOF_ENV": "local",
        "FLEETPROOF_DROPS": str(drops),
        "FLEETPROOF_DB": str(db),
        "FLEETPROOF_OUT": str(tmp_path / "ui_out"),
    }
    env.pop("FLEETPROOF_POLICY", None)
    env.pop("FLEETPROOF_START", None)
    port = _free_port()
    exe = Path(sys.executable).parent / "dagster"
    log = (tmp_path / "webserver.log").open("wb")
    proc = subprocess.Popen(
        [str(exe), "dev", "-m", "dagster_project.definitions", "-h", "127.0.0.1", "-p", str(port)],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"

    def tail() -> str:
        return (tmp_path / "webserver.log").read_text(errors="replace")[-3000:]

    try:
        deadline = time.monotonic() + 180
        while True:
            if proc.poll() is not None:
                pytest.fail(f"dagster dev exited ({proc.returncode}):\n{tail()}")
            try:
                _http(f"{url}/server_info", timeout=5)
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"dagster dev did not answer in 180 s:\n{tail()}")
                time.sleep(1)
        yield url, db, tmp_path / "webserver.log"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)  # dagster dev shuts its children down on SIGINT
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        log.close()


ASSETS_QUERY = """
{
  repositoriesOrError { ... on RepositoryConnection { nodes { name location { name } } } }
  assetNodes { assetKey { path } }
}
"""

LAUNCH_RUN = """
mutation LaunchRun($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId status } }
    ... on PythonError { message }
    ... on RunConfigValidationInvalid { errors { message } }
    ... on PipelineNotFoundError { message }
    ... on InvalidSubsetError { message }
  }
}
"""

RUN_STATUS = """
query RunStatus($runId: ID!) {
  runOrError(runId: $runId) {
    __typename
    ... on Run { status }
  }
}
"""


@pytest.mark.slow
def test_webserver_shows_the_assets_and_runs_a_partition(webserver: tuple[str, Path, Path]) -> None:
    url, db, log = webserver
    graphql = f"{url}/graphql"
    deadline = time.monotonic() + 120
    while True:  # the code location loads in its own process after the server answers
        data = _http(graphql, {"query": ASSETS_QUERY})["data"]
        if data["repositoriesOrError"].get("nodes") or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert {"/".join(n["assetKey"]["path"]) for n in data["assetNodes"]} >= ASSET_NAMES
    [repo] = data["repositoriesOrError"]["nodes"]

    params = {
        "selector": {
            "repositoryLocationName": repo["location"]["name"],
            "repositoryName": repo["name"],
            "jobName": "hourly_pipeline",
        },
        "runConfigData": {},
        "executionMetadata": {"tags": [{"key": "dagster/partition", "value": partition_for_epoch(HOURS[0])}]},
    }
    launched = _http(graphql, {"query": LAUNCH_RUN, "variables": {"params": params}})["data"]["launchRun"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    run_id = launched["run"]["runId"]

    deadline, status = time.monotonic() + 300, None
    while time.monotonic() < deadline:
        answer = _http(graphql, {"query": RUN_STATUS, "variables": {"runId": run_id}})
        status = answer["data"]["runOrError"]["status"]
        if status in {"SUCCESS", "FAILURE", "CANCELED"}:
            break
        time.sleep(2)
    assert status == "SUCCESS", log.read_text(errors="replace")[-5000:]
    assert rows(db, f"SELECT count(*) > 0 FROM device_tiers WHERE epoch = '{HOURS[0]}'") == [(True,)]
