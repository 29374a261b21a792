"""``drops_sensor``: a run for every complete hour folder in ``drops_dir``, new or re-delivered.

The run key is the hour plus its manifest's sha256, so Dagster never runs the same delivery twice
while a changed delivery of an hour runs again. Runs are requested oldest hour first.
Tiers carry state from hour to hour, so a late or re-delivered hour also re-requests every
later hour already seen (as ``fleetproof run`` recomputes them): the cursor remembers which
delivery of each hour was requested.
"""

import json


from collections.abc import Iterator
from pathlib import Path

from dagster import RunRequest, SensorEvaluationContext, SkipReason, sensor

from dagster_project.jobs import hourly_pipeline
from dagster_project.partitions import epoch_for_partition, hourly_partitions, partition_for_epoch
from dagster_project.resources import FleetproofStore
from pipelines.contract import MANIFEST
from pipelines.ingest import complete_hours, sha256_file


@sensor(job=hourly_pipeline, minimum_interval_seconds=60)
def drops_sensor(
    context: SensorEvaluationContext, store: FleetproofStore
) -> Iterator[RunRequest | SkipReason]:
    """Watch ``drops_dir`` for hour folders that have their manifest."""
    drops = Path(store.drops_dir)
    if not drops.is_dir():
        yield SkipReason(f"drops folder {drops} does not exist")
        return
    first = epoch_for_partition(hourly_partitions.get_first_partition_key())  # type: ignore[arg-type]
    seen: dict[str, str] = json.loads(context.cursor) if context.cursor else {}
    changed_from: str | None = None
    for folder in complete_hours(drops):
        hour, key = folder.name, partition_for_epoch(folder.name)
        if hour < first:
            context.log.info(f"skipping {hour}: before the first partition {first} (FLEETPROOF_START)")
            continue
        if not hourly_partitions.has_partition_key(key):
            context.log.info(f"not yet {hour}: the hour has not ended, its partition does not exist")
            continue
        # the manifest's own bytes: what read_manifest hashes, also when the manifest is unusable
        sha = sha256_file(folder / MANIFEST)
        if seen.get(hour) != sha:
            if changed_from is None and any(h > hour for h in seen):
                changed_from = hour
            seen[hour] = sha
            yield RunRequest(partition_key=key, run_key=f"{hour}:{sha}")
        elif changed_from is not None:
            # an earlier hour changed under this one: recompute it after that hour
            yield RunRequest(partition_key=key, run_key=f"{hour}:{sha}:after:{changed_from}:{seen[changed_from]}")
    context.update_cursor(json.dumps(seen, sort_keys=True))
