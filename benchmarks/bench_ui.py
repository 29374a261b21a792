"""Benchmark: one hour materialized from the Dagster UI on the demo network, and the command
line's results shown in it (``fleetproof ui``).

    uv run python benchmarks/bench_ui.py --devices 3000 --hours 12

Simulates the network (the demo's by default; ``--drops var/demo/drops`` reuses the demo's drops), computes every
hour but the last with ``fleetproof run``, starts ``fleetproof ui`` (``dg dev``: webserver and daemon) over the same
database, waits until the drops' hours are partitions and the command line's results show as
materializations, then delivers the last hour, adds its partition and launches its run through
the UI's GraphQL API (what *Materialize* does), timing launch to success; then once more for an
hour already computed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from pipelines.epoch import PATTERN
from pipelines.run import run
from pipelines.simulate import simulate

OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))

LOCATION = "{ repositoriesOrError { ... on RepositoryConnection { nodes { name } } } }"
PARTITIONS = """query($s: RepositorySelector!) { partitionSetsOrError(repositorySelector: $s, pipelineName: "epoch_job") {
  ... on PartitionSets { results { partitionsOrError { ... on Partitions { results { name } } } } } } }"""
MATERIALIZED = """query($p: [String!]) { assetOrError(assetKey: {path: ["device_tiers"]}) {
  ... on Asset { assetMaterializations(partitions: $p) { partition } } } }"""
SENSOR = """query($s: SensorSelector!) { sensorOrError(sensorSelector: $s) { ... on Sensor { id sensorState { status } } } }"""
STOP_SENSOR = "mutation($id: String!) { stopSensor(id: $id) { __typename } }"
ADD_PARTITION = """mutation($s: RepositorySelector!, $k: String!) {
  addDynamicPartition(repositorySelector: $s, partitionsDefName: "hours", partitionKey: $k) { __typename } }"""
LAUNCH = """mutation($p: ExecutionParams!) { launchRun(executionParams: $p) {
  __typename ... on LaunchRunSuccess { run { runId } } ... on PythonError { message } } }"""
STATUS = "query($id: ID!) { runOrError(runId: $id) { ... on Run { status } } }"


def gql(url: str, query: str, **variables: object) -> dict:
    body = json.dumps({"query": query, "variables": variables}).encode()
    request = urllib.request.Request(f"{url}/graphql", data=body, headers={"Content-Type": "application/json"})
    with OPENER.open(request, timeout=60) as response:
        answer = json.loads(response.read())
    if answer.get("errors"):
        raise SystemExit(f"GraphQL error: {answer['errors']}")
    return answer["data"]


def wait(what: str, seconds: float, probe):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            found = probe()
        except OSError:
            found = None
        if found:
            return found
        time.sleep(0.5)
    raise SystemExit(f"{what}: not within {seconds:.0f} s")


def materialize(url: str, selector: dict, hour: str) -> float:
    """Launch the hour's run as the UI does; seconds from launch to SUCCESS."""
    params = {"selector": {**selector, "jobName": "epoch_job"}, "runConfigData": {},
              "executionMetadata": {"tags": [{"key": "dagster/partition", "value": hour}]}}  # fmt: skip
    started = time.perf_counter()
    launched = gql(url, LAUNCH, p=params)["launchRun"]
    if launched["__typename"] != "LaunchRunSuccess":
        raise SystemExit(f"launch failed: {launched}")
    run_id = launched["run"]["runId"]
    status = wait(
        "run", 600, lambda: (s := gql(url, STATUS, id=run_id)["runOrError"]["status"]) in {"SUCCESS", "FAILURE", "CANCELED"} and s
    )
    if status != "SUCCESS":
        raise SystemExit(f"run {run_id} ended {status}")
    return time.perf_counter() - started


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--devices", type=int, default=3000)
    p.add_argument("--hours", type=int, default=12)
    p.add_argument("--seed", type=int, default=7)  # the demo's
    p.add_argument("--drops", type=Path, help="reuse these drops instead of simulating")
    p.add_argument("--work", type=Path, help="working folder (default: a temporary one, removed after)")
    a = p.parse_args()
    work = a.work or Path(tempfile.mkdtemp(prefix="bench_ui_"))
    drops, held, home = work / "drops", work / "held", work / "dagster_home"
    for d in (drops, held, home):
        shutil.rmtree(d, ignore_errors=True)
    if a.drops:
        shutil.copytree(a.drops, drops)
    else:
        simulate(drops, devices=a.devices, hours=a.hours, seed=a.seed)
    hours = sorted(d.name for d in drops.iterdir() if PATTERN.match(d.name))
    last = hours[-1]
    held.mkdir(parents=True)
    shutil.move(drops / last, held / last)  # delivered later, while the UI runs
    db, out = work / "fleetproof.duckdb", work / "out"
    db.unlink(missing_ok=True)
    started = time.perf_counter()
    run(drops, db, out)
    print(f"fleetproof run, {len(hours) - 1} hours: {time.perf_counter() - started:.1f} s")

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    log = (work / "dg.log").open("wb")
    command = [str(Path(sys.executable).parent / "fleetproof"), "ui", "--drops", str(drops), "--db", str(db),
               "--out", str(out), "--home", str(home), "--port", str(port)]  # fmt: skip
    proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        started = time.perf_counter()
        repo = wait("code location", 300, lambda: gql(url, LOCATION)["repositoriesOrError"].get("nodes"))[0]["name"]
        selector = {"repositoryLocationName": "fleetproof", "repositoryName": repo}

        def partitions() -> list[str]:
            sets = gql(url, PARTITIONS, s=selector)["partitionSetsOrError"]["results"]
            return [x["name"] for s in sets for x in s["partitionsOrError"]["results"]]

        wait("partitions", 300, lambda: partitions() == hours[:-1])
        shown = wait(
            "CLI results",
            120,
            lambda: (
                len(m := gql(url, MATERIALIZED, p=hours[:-1])["assetOrError"]["assetMaterializations"]) == len(hours) - 1 and m
            ),
        )
        print(f"dg dev up, {len(partitions())} partitions (the hours in the drops), command line results shown for "
              f"{len({m['partition'] for m in shown})} of {len(hours) - 1} hours: {time.perf_counter() - started:.1f} s")  # fmt: skip
        sensor = gql(url, SENSOR, s={**selector, "sensorName": "drops_sensor"})["sensorOrError"]
        gql(url, STOP_SENSOR, id=sensor["id"])  # the next hour is launched by hand, not by the sensor
        shutil.move(held / last, drops / last)
        gql(url, ADD_PARTITION, s=selector, k=last)
        print(f"materialize {last} from the UI (new hour, {a.devices} devices): {materialize(url, selector, last):.1f} s")
        print(f"materialize {last} again (already computed):          {materialize(url, selector, last):.1f} s")
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()
        if not a.work:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
