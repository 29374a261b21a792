"""``reward_allocations``: stake positions, the epoch's exact allocations and slashing
(``pipelines.run.compute_rewards``), checked to add up to the pool before publishing."""

from dagster import AssetExecutionContext, MaterializeResult, asset

from dagster_project.partitions import epoch_for_partition, hourly_partitions, previous_hour_of
from dagster_project.resources import FleetproofStore
from pipelines.rewards_policy import load_rewards_policy
from pipelines.run import compute_rewards, mark_processed


@asset(
    partitions_def=hourly_partitions,
    group_name="rewards",
    kinds={"duckdb"},
    deps=["device_tiers", previous_hour_of("reward_allocations")],
)
def reward_allocations(context: AssetExecutionContext, store: FleetproofStore) -> MaterializeResult:
    """Who is paid how much this hour (integer base units), who is slashed, and why."""
    epoch = epoch_for_partition(context.partition_key)
    with store.transaction() as con:
        figures = compute_rewards(con, epoch, load_rewards_policy(store.rewards_policy_path))
        mark_processed(con, epoch)  # the last stage of the hour: the next hour may start
    return MaterializeResult(metadata={k: int(v) for k, v in figures.items()})
