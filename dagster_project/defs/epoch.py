"""``epoch``: one multi-asset partitioned by hour, one asset per published table, computed by
``pipelines.runner`` exactly as ``fleetproof run`` computes it.

Tiers carry state from hour to hour, so a partition asked for before earlier hours are computed
first computes every earlier stale hour, in order (and records their materializations too): the
exports are the command line's whatever order the partitions are asked in. The data-quality bars
of ``pipelines.quality`` are the asset checks; a failing bar stops the epoch (nothing written).
"""

from collections.abc import Iterator

import dagster as dg

from dagster_project.defs.partitions import hours
from dagster_project.defs.resources import FleetproofStore
from pipelines.export import PUBLISHED
from pipelines.quality import EPOCH_BARS, Outcome, epoch_outcomes
from pipelines.runner import RunSummary, processed_at, run_epochs

CHECKED_ON = {bar: "reward_allocations" if bar == "allocations_sum_to_pool" else "device_tiers" for bar in EPOCH_BARS}
"""Asset each bar is reported on: the allocation bar on the allocations, the others on the tiers."""

KEYS = [dg.AssetKey(table) for table in PUBLISHED]
"""One asset per published table (built inside the decorator: module-level specs would load twice)."""


def _stopped(summary: RunSummary, hour: str, outcomes: list[Outcome]) -> str:
    """Why the hour was not computed (or its data no longer passes), in one line."""
    if summary.blocked:
        epoch, failed = summary.blocked
        return f"{epoch} failed its quality bars: " + "; ".join(f"{o.name}: {o.description}" for o in failed)
    if summary.failed:
        return str(summary.failed)
    failed = [o for o in outcomes if not o.passed]
    if failed:
        return f"{hour} fails its quality bars: " + "; ".join(f"{o.name}: {o.description}" for o in failed)
    return f"{hour} has no ingested drop (is its folder complete, with its manifest?)"


@dg.multi_asset(
    name="epoch",
    specs=[dg.AssetSpec(key, group_name="epoch", kinds={"duckdb", "parquet"}, partitions_def=hours,
                        description=f"``{key.path[-1]}`` of the hour, in DuckDB and under ``<out>/{key.path[-1]}/epoch=<hour>/``")
           for key in KEYS],
    check_specs=[dg.AssetCheckSpec(bar, asset=asset) for bar, asset in CHECKED_ON.items()],
    partitions_def=hours,
)  # fmt: skip
def epoch(context: dg.AssetExecutionContext, store: FleetproofStore) -> Iterator[object]:
    """Land the hour (and any earlier new hour), compute every stale epoch up to it, export."""
    hour = context.partition_key
    ctx = store.context()
    # events are recorded while the database is still held, so drops_sensor (which reports what
    # was computed outside Dagster) never sees these epochs computed but not yet recorded
    with store.connect() as con:
        summary = run_epochs(con, store.drops_dir, ctx, until=hour)
        done = processed_at(con, [hour, *(e.epoch for e in summary.epochs)])
        outcomes = epoch_outcomes(con, hour, ctx.policy.quality, computed=hour in done)
        for earlier in summary.epochs:
            if earlier.epoch != hour:
                for key in KEYS:
                    context.log_event(dg.AssetMaterialization(key, partition=earlier.epoch, metadata={
                        "processed_at": str(done[earlier.epoch]), "computed_for": hour}))  # fmt: skip
        for o in outcomes:
            yield dg.AssetCheckResult(asset_key=CHECKED_ON[o.name], check_name=o.name, passed=o.passed,
                                      description=o.description, metadata=o.metadata)  # fmt: skip
        if hour not in done or summary.blocked or summary.failed or not all(o.passed for o in outcomes):
            raise dg.Failure(description=_stopped(summary, hour, outcomes))
        figures = next((e.figures for e in summary.epochs if e.epoch == hour), {})
        flat = {f"{stage}.{k}": int(v) for stage, fs in figures.items() for k, v in fs.items()}
        for key in KEYS:
            yield dg.MaterializeResult(asset_key=key, metadata={
                "processed_at": str(done[hour]), "computed_now": bool(figures), **flat})  # fmt: skip


epoch_job = dg.define_asset_job(
    "epoch_job",
    selection=dg.AssetSelection.assets(epoch),
    partitions_def=hours,
    description="One hour through every stage (`pipelines.stages`), as `fleetproof run` does it.",
)
