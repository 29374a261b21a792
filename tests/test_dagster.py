"""Dagster wiring: the command line's exports in any partition order, the quality bars as
checks, partitions from the drops, CLI results in the UI, and the UI itself."""

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
from dagster import AssetKey, AssetRecordsFilter, DagsterInstance, ExecuteInProcessResult, build_sensor_context, materialize

from dagster_project.defs.epoch import KEYS, epoch
from dagster_project.defs.partitions import hours
from dagster_project.defs.resources import FleetproofStore, store_from_env
from dagster_project.defs.sensors import drops_sensor
from pipelines.contract import MANIFEST
from pipelines.db import connect
from pipelines.export import CSV_TOO, PUBLISHED
from pipelines.run import run
from pipelines.simulate import simulate

REPO = Path(__file__).resolve().parents[1]
HOURS = ["2024-08-14T00", "2024-08-14T01", "2024-08-14T02"]
TABLES = {k.path[-1] for k in KEYS}


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


def instance_with_hours() -> DagsterInstance:
    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(hours.name, HOURS)
    return instance


def materialize_hour(store: FleetproofStore, hour: str, instance: DagsterInstance | None = None) -> ExecuteInProcessResult:
    return materialize(
        [epoch], partition_key=hour, resources={"store": store}, instance=instance or instance_with_hours(), raise_on_error=False
    )


def materialized(result: ExecuteInProcessResult) -> set[tuple[str, str | None]]:
    return {(e.asset_key.path[-1], e.partition) for e in result.get_asset_materialization_events()}


def checks(result: ExecuteInProcessResult) -> dict[str, object]:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def rows(db: str | Path, sql: str) -> list[tuple]:
    with connect(db) as con:
        return con.execute(sql).fetchall()


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_store_from_env_defaults_to_the_demo_and_takes_overrides() -> None:
    assert store_from_env({}).db_path == "var/demo/fleetproof.duckdb"
    assert store_from_env({"FLEETPROOF_DROPS": "/d", "FLEETPROOF_POLICY": "p.toml"}).drops_dir == "/d"
    with pytest.raises(ValueError, match="FLEETPROOF_ENV"):
        store_from_env({"FLEETPROOF_ENV": "nowhere"})


@pytest.mark.slow
def test_partitions_asked_out_of_order_export_the_command_lines_bytes(drops: Path, tmp_path: Path) -> None:
    store, instance = store_for(drops, tmp_path), instance_with_hours()
    last = materialize_hour(store, HOURS[2], instance)  # the last hour first: it computes 00 and 01 before it
    assert last.success
    assert materialized(last) == {(t, h) for t in TABLES for h in HOURS}
    assert all(e.passed for e in checks(last).values()) and len(checks(last)) == 6
    for hour in (HOURS[0], HOURS[1]):  # already computed: nothing recomputed, still materialized
        again = materialize_hour(store, hour, instance)
        assert again.success and materialized(again) == {(t, hour) for t in TABLES}

    cli_drops = tmp_path / "cli_drops"
    shutil.copytree(drops, cli_drops)
    run(cli_drops, tmp_path / "cli.duckdb", tmp_path / "cli_out")
    ours, theirs = tree(tmp_path / "out"), tree(tmp_path / "cli_out")
    assert len(ours) == (len(PUBLISHED) + len(CSV_TOO)) * len(HOURS)  # every table in Parquet, some in CSV too
    assert ours == theirs


def test_broken_manifest_fails_its_check_and_writes_nothing(drops: Path, tmp_path: Path) -> None:
    hour = HOURS[0]
    victim = drops / hour / "hardware.csv"
    data = bytearray(victim.read_bytes())
    data[-2] = ord("x") if data[-2] != ord("x") else ord("y")
    victim.write_bytes(bytes(data))
    store = store_for(drops, tmp_path)

    result = materialize_hour(store, hour)
    assert not result.success and materialized(result) == set()
    accepted = checks(result)["manifest_accepted"]
    assert not accepted.passed
    assert "sha256" in accepted.description and "hardware.csv" in accepted.description
    assert checks(result)["allocations_sum_to_pool"].description == f"{hour} was not computed"
    assert rows(store.db_path, "SELECT count(*) FROM device_tiers") == [(0,)]
    assert not (tmp_path / "out").exists()


def test_required_rows_threshold_comes_from_the_policy_file(drops: Path, tmp_path: Path) -> None:
    policy = tmp_path / "strict.toml"
    policy.write_text("[quality]\nmin_rows = { hardware = 1, pow = 1000000, uptime = 1 }\n")
    result = materialize_hour(store_for(drops, tmp_path, policy), HOURS[0])
    assert not result.success and materialized(result) == set()
    check = checks(result)["required_rows"]
    assert not check.passed and "pow" in check.description
    assert check.metadata["pow_min"].value == 1000000 and 0 < check.metadata["pow_rows"].value < 1000000


def sensor_tick(store: FleetproofStore, instance: DagsterInstance, cursor: dict[str, str | None]):
    """One evaluation of ``drops_sensor``; applies its partition requests as the daemon would."""
    context = build_sensor_context(instance=instance, resources={"store": store}, cursor=cursor["value"])
    result = drops_sensor(context)
    for request in result.dynamic_partitions_requests:
        instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
    cursor["value"] = result.cursor
    return [(r.partition_key, r.run_key) for r in result.run_requests]


def test_sensor_adds_only_existing_hours_and_requests_each_delivery_once(drops: Path, tmp_path: Path) -> None:
    (drops / "2024-08-14T03").mkdir()  # incomplete: no manifest yet
    (drops / "2024-08-14T03" / "hardware.csv").write_text("ts\n")
    store, instance = store_for(drops, tmp_path), DagsterInstance.ephemeral()
    cursor: dict[str, str | None] = {"value": None}

    def sha(hour: str) -> str:
        return hashlib.sha256((drops / hour / MANIFEST).read_bytes()).hexdigest()

    assert sensor_tick(store, instance, cursor) == [(h, f"{h}:{sha(h)}") for h in HOURS]
    assert list(instance.get_dynamic_partitions(hours.name)) == HOURS
    assert sensor_tick(store, instance, cursor) == []  # nothing new
    manifest = json.loads((drops / HOURS[1] / MANIFEST).read_text())
    (drops / HOURS[1] / MANIFEST).write_text(json.dumps(manifest))  # re-delivered with other bytes
    # the changed hour runs again, and so does every later hour (tiers carry state forward)
    assert sensor_tick(store, instance, cursor) == [
        (HOURS[1], f"{HOURS[1]}:{sha(HOURS[1])}"),
        (HOURS[2], f"{HOURS[2]}:{sha(HOURS[2])}:after:{HOURS[1]}:{sha(HOURS[1])}"),
    ]


@pytest.mark.slow
def test_sensor_reports_what_the_command_line_computed_once(drops: Path, tmp_path: Path) -> None:
    store, instance = store_for(drops, tmp_path), DagsterInstance.ephemeral()
    run(drops, store.db_path, store.out_dir)  # the command line, on the database Dagster reads
    cursor: dict[str, str | None] = {"value": None}
    assert sensor_tick(store, instance, cursor) == []  # computed already: no run requested
    assert list(instance.get_dynamic_partitions(hours.name)) == HOURS

    def recorded(hour: str) -> int:
        found = instance.fetch_materializations(
            AssetRecordsFilter(asset_key=AssetKey("device_tiers"), asset_partitions=[hour]), limit=10
        )
        return len(found.records)

    assert [recorded(h) for h in HOURS] == [1, 1, 1]
    sensor_tick(store, instance, cursor)
    assert [recorded(h) for h in HOURS] == [1, 1, 1]  # once per computation, not per tick
    assert materialize_hour(store, HOURS[2], instance).success  # a run recomputes nothing ...
    sensor_tick(store, instance, {"value": None})  # ... and even a fresh cursor reports no duplicate
    assert [recorded(h) for h in HOURS] == [1, 1, 2]


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
    """The README's UI command (``fleetproof ui``: ``dg dev``, webserver and daemon) on a free
    port over a private instance, after ``fleetproof run`` computed the first hour into the same
    database; yields (url, db, log)."""
    home = tmp_path / "dagster_home"
    db = tmp_path / "ui.duckdb"
    run(drops, db, tmp_path / "ui_out", until=HOURS[0])
    env = {**os.environ, "FLEETPROOF_ENV": "local"}
    env.pop("FLEETPROOF_POLICY", None)
    port = _free_port()
    exe = Path(sys.executable).parent / "fleetproof"
    log = (tmp_path / "webserver.log").open("wb")
    proc = subprocess.Popen(
        [str(exe), "ui", "--drops", str(drops), "--db", str(db), "--out", str(tmp_path / "ui_out"), "--home", str(home),
         "--port", str(port)],
        cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"

    def tail() -> str:
        return (tmp_path / "webserver.log").read_text(errors="replace")[-3000:]

    try:
        deadline = time.monotonic() + 180
        while True:
            if proc.poll() is not None:
                pytest.fail(f"dg dev exited ({proc.returncode}):\n{tail()}")
            try:
                _http(f"{url}/server_info", timeout=5)
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"dg dev did not answer in 180 s:\n{tail()}")
                time.sleep(1)
        yield url, db, tmp_path / "webserver.log"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)  # dg dev shuts its children down on SIGINT
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        log.close()
    assert not list(REPO.glob(".tmp_dagster_home_*")), "dg dev left a temporary DAGSTER_HOME in the repository"


LOCATION_QUERY = """
{
  repositoriesOrError { ... on RepositoryConnection { nodes { name location { name } } } }
  assetNodes { assetKey { path } }
}
"""

PARTITIONS_QUERY = """
query Partitions($selector: RepositorySelector!) {
  partitionSetsOrError(repositorySelector: $selector, pipelineName: "epoch_job") {
    ... on PartitionSets { results { partitionsOrError { ... on Partitions { results { name } } } } }
  }
}
"""

MATERIALIZED_QUERY = """
query Materialized($partitions: [String!]) {
  assetOrError(assetKey: {path: ["device_tiers"]}) {
    ... on Asset { assetMaterializations(partitions: $partitions) { partition runId } }
  }
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


def _until(what: str, seconds: float, probe):
    """Poll ``probe`` every second until it returns something truthy."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(1)
    pytest.fail(f"{what}: not within {seconds:.0f} s")


@pytest.mark.slow
def test_ui_shows_the_existing_hours_and_cli_results_and_runs_a_partition(webserver: tuple[str, Path, Path]) -> None:
    url, db, log = webserver
    graphql = f"{url}/graphql"

    def gql(query: str, **variables: object) -> dict:
        return _http(graphql, {"query": query, "variables": variables})["data"]

    data = _until("code location loaded", 120, lambda: (d := gql(LOCATION_QUERY))["repositoriesOrError"].get("nodes") and d)
    [repo] = data["repositoriesOrError"]["nodes"]
    assert repo["location"]["name"] == "fleetproof"
    assert {"/".join(n["assetKey"]["path"]) for n in data["assetNodes"]} >= TABLES
    selector = {"repositoryLocationName": "fleetproof", "repositoryName": repo["name"]}

    def partition_keys() -> list[str]:
        sets = gql(PARTITIONS_QUERY, selector=selector)["partitionSetsOrError"]["results"]
        return [p["name"] for s in sets for p in s["partitionsOrError"]["results"]]

    # the sensor runs from the start: the hours of the drops, and only those, become partitions
    assert _until("partitions from the drops", 120, lambda: partition_keys() == HOURS or None)
    # the hour the command line computed shows as materialized (reported by the sensor)
    cli = _until(
        "CLI result reported", 60, lambda: gql(MATERIALIZED_QUERY, partitions=[HOURS[0]])["assetOrError"]["assetMaterializations"]
    )
    assert cli[0]["partition"] == HOURS[0] and not cli[0]["runId"]

    params = {
        "selector": {**selector, "jobName": "epoch_job"},
        "runConfigData": {},
        "executionMetadata": {"tags": [{"key": "dagster/partition", "value": HOURS[1]}]},
    }
    launched = gql(LAUNCH_RUN, params=params)["launchRun"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    run_id = launched["run"]["runId"]
    status = _until(
        "run finished",
        300,
        lambda: (s := gql(RUN_STATUS, runId=run_id)["runOrError"]["status"]) in {"SUCCESS", "FAILURE", "CANCELED"} and s,
    )
    assert status == "SUCCESS", log.read_text(errors="replace")[-5000:]
    assert rows(db, f"SELECT count(*) > 0 FROM device_tiers WHERE epoch = '{HOURS[1]}'") == [(True,)]
