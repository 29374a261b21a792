"""``dashboard_report``: the analyst dashboard as of the hour (``dashboards.build_report``),
written to ``<out>/dashboard/epoch=<hour>/``; materialize it after the hour's ``epoch``."""

import dagster as dg

from dagster_project.defs.partitions import hours
from dagster_project.defs.resources import FleetproofStore
from dashboards import build_report


@dg.asset(
    partitions_def=hours,
    group_name="publish",
    kinds={"html"},
    deps=["device_tiers", "reward_allocations"],
    automation_condition=dg.AutomationCondition.eager(),
)
def dashboard_report(context: dg.AssetExecutionContext, store: FleetproofStore) -> dg.MaterializeResult:
    """Static HTML pages (overview, GPU fraud, sybil, rewards, data quality, devices) as of the hour."""
    hour = context.partition_key
    with store.connect() as con:
        report = build_report(con, f"{store.out_dir}/dashboard/epoch={hour}", as_of=hour)
    return dg.MaterializeResult(metadata={
        "index": dg.MetadataValue.path(str(report.index)),
        "pages": len(report.pages), "device_pages": len(report.device_pages),
        **{f"seconds_{slug}": round(s, 2) for slug, s in report.seconds.items()},
    })  # fmt: skip
