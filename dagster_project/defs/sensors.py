"""``drops_sensor``: the hours that exist become partitions, each delivery runs once, and what
``fleetproof run`` computed outside Dagster shows in the UI.

It runs from the start (``dg dev`` starts the daemon that ticks it).
- Every complete hour folder (manifest written) is added to the ``hours`` partitions.
- A new or re-delivered hour (its manifest's sha256 changed) gets a run, unless the database
  already holds it computed from that delivery; tiers carry state
  forward, so every later hour already seen runs again after it (the runner recomputes them).
- An epoch computed outside Dagster (the command line, on the same database) is reported as a
  runless materialization of every published table, once per computation.
"""

import json

import dagster as dg
from filelock import Timeout

from dagster_project.defs.epoch import KEYS, epoch_job
from dagster_project.defs.partitions import hours
from dagster_project.defs.resources import FleetproofStore
from pipelines.runner import current_deliveries, processed_at

LOCK_WAIT_S = 5.0
"""How long a tick waits for the database; a busy database is read on a later tick."""


def _requests(deliveries: dict[str, str], seen: dict[str, str], current: dict[str, str]) -> list[dg.RunRequest]:
    """Runs for new or changed deliveries (not those already computed, e.g. by the command
    line), and for every later hour seen before after a changed one."""
    changed_from: str | None = None
    requests = []
    for hour, sha in deliveries.items():
        if seen.get(hour) != sha and current.get(hour) == sha:
            seen[hour] = sha  # computed from this very delivery already
        elif seen.get(hour) != sha:
            if changed_from is None and any(h > hour for h in seen):
                changed_from = hour
            seen[hour] = sha
            requests.append(dg.RunRequest(partition_key=hour, run_key=f"{hour}:{sha}"))
        elif changed_from is not None:  # an earlier hour changed under this one
            requests.append(dg.RunRequest(partition_key=hour, run_key=f"{hour}:{sha}:after:{changed_from}:{seen[changed_from]}"))
    return requests


def _recorded(instance: dg.DagsterInstance, epoch: str, at: str) -> bool:
    """Whether this computation of the epoch already has a materialization (from a run or a report)."""
    records = instance.fetch_materializations(dg.AssetRecordsFilter(asset_key=KEYS[0], asset_partitions=[epoch]), limit=1).records
    meta = records[0].asset_materialization.metadata if records and records[0].asset_materialization else {}
    return "processed_at" in meta and meta["processed_at"].value == at


@dg.sensor(job=epoch_job, minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING)
def drops_sensor(context: dg.SensorEvaluationContext, store: FleetproofStore) -> dg.SensorResult | dg.SkipReason:
    """Watch ``drops_dir`` for complete hour folders and the database for computed epochs."""
    cursor = json.loads(context.cursor) if context.cursor else {}
    seen: dict[str, str] = cursor.get("deliveries", {})
    reported: dict[str, str] = cursor.get("reported", {})
    deliveries = store.deliveries()
    known = set(context.instance.get_dynamic_partitions(hours.name))
    new = [h for h in deliveries if h not in known]
    try:
        with store.connect(timeout_s=LOCK_WAIT_S) as con:
            done = {e: str(t) for e, t in processed_at(con).items()}
            current = current_deliveries(con)
    except Timeout:
        context.log.info(f"database busy for {LOCK_WAIT_S}s; read on a later tick")
        return dg.SkipReason(f"database busy for {LOCK_WAIT_S}s")
    requests = _requests(deliveries, seen, current)
    for epoch, at in done.items():
        if reported.get(epoch) != at and not _recorded(context.instance, epoch, at):
            for key in KEYS:
                context.instance.report_runless_asset_event(dg.AssetMaterialization(
                    key, partition=epoch, metadata={"processed_at": at, "computed_by": "outside Dagster"}))  # fmt: skip
        reported[epoch] = at
    return dg.SensorResult(
        run_requests=requests,
        dynamic_partitions_requests=[hours.build_add_request(new)] if new else [],
        cursor=json.dumps({"deliveries": seen, "reported": reported}, sort_keys=True),
    )
