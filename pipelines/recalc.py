"""Recalculation: re-run a past period under new verdicts or a new policy, and say what changed.

Verdict overrides (a person's review, e.g. sybils removed after the fact) are added to
``verdict_overrides``; every epoch from the start of the period on is recomputed in order
(tiers carry state forward), and the allocations and slashing of the period are compared with
what was stored before: one statement per account with the old and new amounts and, per
device, what changed (tier, eligibility, weight, policy version). With ``apply=False`` the
whole recomputation is rolled back and only the statements remain.

A rewards-only change (``recalculate_rewards``: a new reward policy, no new verdicts) re-runs
only the reward stage; verification and detection, most of an epoch's cost, are skipped.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import polars as pl

from pipelines.contract import TIERS
from pipelines.features import build_measures
from pipelines.policy import DetectionPolicy
from pipelines.rewards_policy import RewardsPolicy
from pipelines.runner import compute
from pipelines.stages import REWARD_STAGES
from pipelines.stages.context import StageContext

DDL = """
CREATE TABLE IF NOT EXISTS verdict_overrides (  -- a person's review: this tier for these epochs
    device_id VARCHAR NOT NULL,
    epoch_from VARCHAR NOT NULL,
    epoch_to VARCHAR NOT NULL,
    tier VARCHAR NOT NULL,
    reason VARCHAR NOT NULL,
    created_at TIMESTAMP NOT NULL
);
"""

SNAPSHOT_SQL = """
CREATE OR REPLACE TEMP TABLE {name} AS
WITH a AS (  -- a device's allocations of an epoch (owner and co-stakers), summed, under the epoch's
    -- policy version (epoch_pools holds the one the split used: no JSON read per allocation)
    SELECT a.epoch, a.device_id, a.account_id, sum(a.amount_base_units) AS amount, any_value(p.policy_version) AS policy_version
    FROM reward_allocations a LEFT JOIN epoch_pools p USING (epoch) WHERE a.epoch BETWEEN $lo AND $hi GROUP BY ALL
),
e AS (SELECT epoch, device_id, account_id, tier, status, reason, weight FROM reward_eligibility WHERE epoch BETWEEN $lo AND $hi)
SELECT coalesce(a.account_id, e.account_id) AS account_id, coalesce(a.device_id, e.device_id) AS device_id,
       coalesce(a.epoch, e.epoch) AS epoch, coalesce(a.amount, 0) AS amount,  -- devices paid nothing still have a tier and a reason
       e.tier, e.status, e.reason AS why, e.weight, a.policy_version
FROM a FULL JOIN e ON e.epoch = a.epoch AND e.device_id = a.device_id
"""

SLASH_SQL = """
CREATE OR REPLACE TEMP TABLE {name} AS
SELECT account_id, sum(amount_base_units) FILTER (status <> 'reversed') AS slashed
FROM slashing_events WHERE epoch BETWEEN $lo AND $hi GROUP BY account_id
"""

DIFF_SQL = """
WITH o AS (SELECT account_id, device_id, sum(amount) AS amount, list(DISTINCT tier ORDER BY tier) AS tiers,
                  min(why) AS why, sum(weight) AS weight, list(DISTINCT policy_version ORDER BY policy_version) AS versions
           FROM old_alloc GROUP BY ALL),
n AS (SELECT account_id, device_id, sum(amount) AS amount, list(DISTINCT tier ORDER BY tier) AS tiers,
             min(why) AS why, sum(weight) AS weight, list(DISTINCT policy_version ORDER BY policy_version) AS versions
      FROM new_alloc GROUP BY ALL),
d AS (
    SELECT coalesce(n.account_id, o.account_id) AS account_id, coalesce(n.device_id, o.device_id) AS device_id,
           coalesce(o.amount, 0) AS old_amount, coalesce(n.amount, 0) AS new_amount,
           concat_ws('; ',
             CASE WHEN o.tiers IS DISTINCT FROM n.tiers THEN format('tier {} -> {}', o.tiers, n.tiers) END,
             CASE WHEN o.why IS DISTINCT FROM n.why THEN format('eligibility "{}" -> "{}"', coalesce(o.why, 'eligible'), coalesce(n.why, 'eligible')) END,
             CASE WHEN o.weight IS DISTINCT FROM n.weight THEN format('weight {} -> {}', o.weight, n.weight) END,
             CASE WHEN len(list_filter(o.versions, lambda x: x IS NOT NULL)) > 0
                   AND len(list_filter(n.versions, lambda x: x IS NOT NULL)) > 0
                   AND list_filter(o.versions, lambda x: x IS NOT NULL) <> list_filter(n.versions, lambda x: x IS NOT NULL)
                  THEN format('policy {} -> {}', o.versions, n.versions) END,
             CASE WHEN coalesce(o.amount, 0) <> coalesce(n.amount, 0) AND o.tiers IS NOT DISTINCT FROM n.tiers
                   AND o.weight IS NOT DISTINCT FROM n.weight THEN 'other devices'' weights changed the split' END) AS what
    FROM o FULL JOIN n ON n.account_id IS NOT DISTINCT FROM o.account_id AND n.device_id = o.device_id  -- devices without an account too
)
SELECT d.account_id, CAST(sum(d.old_amount) AS BIGINT) AS old_base_units, CAST(sum(d.new_amount) AS BIGINT) AS new_base_units,
       CAST(sum(d.new_amount) - sum(d.old_amount) AS BIGINT) AS delta_base_units,
       CAST(coalesce(any_value(so.slashed), 0) AS BIGINT) AS old_slashed_base_units,
       CAST(coalesce(any_value(sn.slashed), 0) AS BIGINT) AS new_slashed_base_units,
       to_json(list(json_object('device_id', d.device_id, 'old', d.old_amount, 'new', d.new_amount, 'why', d.what)
                    ORDER BY d.device_id) FILTER (d.what <> '')) AS changes
FROM d LEFT JOIN old_slash so USING (account_id) LEFT JOIN new_slash sn USING (account_id)
GROUP BY d.account_id
HAVING sum(d.old_amount) <> sum(d.new_amount) OR any_value(so.slashed) IS DISTINCT FROM any_value(sn.slashed)
    OR count(*) FILTER (d.what <> '') > 0
ORDER BY abs(sum(d.new_amount) - sum(d.old_amount)) DESC, d.account_id
"""


@dataclass(frozen=True)
class Override:
    device_id: str
    tier: str
    reason: str


def read_overrides(path: str | Path) -> list[Override]:
    """A CSV with ``device_id, tier, reason``; an unknown tier is an error."""
    with Path(path).open(newline="") as f:
        rows = [Override(r["device_id"], r["tier"], r.get("reason") or "review") for r in csv.DictReader(f)]
    bad = [r.tier for r in rows if r.tier not in TIERS]
    if bad:
        raise ValueError(f"unknown tiers in overrides: {sorted(set(bad))}; expected one of {TIERS}")
    return rows


def recalculate(
    con: duckdb.DuckDBPyConnection,
    epoch_from: str,
    epoch_to: str,
    policy: DetectionPolicy,
    rewards: RewardsPolicy,
    overrides: list[Override] = (),  # type: ignore[assignment]
    apply: bool = False,
) -> pl.DataFrame:
    """Recompute every processed epoch from ``epoch_from``; return per-account statements for
    ``epoch_from..epoch_to`` (old vs new). Rolled back unless ``apply``."""

    def add_overrides() -> None:
        now = datetime.now(UTC).replace(tzinfo=None)
        for o in overrides:
            con.execute(
                "INSERT INTO verdict_overrides VALUES (?, ?, ?, ?, ?, ?)",
                [o.device_id, epoch_from, epoch_to, o.tier, o.reason, now],
            )

    return _recompute_and_compare(
        con,
        epoch_from,
        epoch_to,
        lambda epoch: compute(con, epoch, StageContext(rewards, policy, quality_bars=False)),
        add_overrides,
        apply,
    )


def recalculate_rewards(
    con: duckdb.DuckDBPyConnection, epoch_from: str, epoch_to: str, rewards: RewardsPolicy, apply: bool = False
) -> pl.DataFrame:
    """``recalculate`` for a rewards-only change (a new reward policy version): only stake
    positions, allocations and slashing are recomputed, in order from ``epoch_from`` (slashing
    carries accrued rewards and open incidents forward). PoW verification, features, detectors
    and tiers are read as stored: none of them reads a reward table, so they cannot change.
    Verdict overrides change tiers and need ``recalculate``. The reward stage reads each
    epoch's stored ``reward_facts`` (what eligibility needs that no reward policy changes)
    instead of joining those tables again. An epoch processed before ``device_measures`` or
    ``reward_facts`` existed gets them first, from the same stored rows (``build_measures``:
    what the reward stage used to compute itself; ``pipelines.rewards.record_facts``)."""
    ctx = StageContext(rewards, rewards_only=True)

    def recompute(epoch: str) -> None:
        if not con.execute("SELECT 1 FROM device_measures WHERE epoch = ? LIMIT 1", [epoch]).fetchall():
            build_measures(con, epoch)
        compute(con, epoch, ctx, REWARD_STAGES, mark=False)

    return _recompute_and_compare(con, epoch_from, epoch_to, recompute, None, apply)


def _recompute_and_compare(
    con: duckdb.DuckDBPyConnection,
    epoch_from: str,
    epoch_to: str,
    recompute: Callable[[str], object],
    before: Callable[[], None] | None,
    apply: bool,
) -> pl.DataFrame:
    """Snapshot the period's allocations and slashing, run ``before`` then ``recompute`` for every
    processed epoch from ``epoch_from`` in one transaction, diff, commit only if ``apply``.

    A dry run keeps the rows it writes in DuckDB's transaction-local storage instead of writing
    them to the database file as they come (``enable_optimistic_write``: large appends are
    compressed and written before the commit, so that the commit is cheap): the rollback
    discards them, so that writing was wasted, a quarter of a rewards-only recalculation at 100k
    devices (docs/scaling.md). Memory stays within DuckDB's limit: local storage beyond it
    spills to the temporary directory. ``apply`` keeps optimistic writes: its rows are kept. The
    setting is the database instance's (DuckDB scopes it globally): another connection of this
    process to the same file meanwhile commits its rows through the log instead, only slower."""
    params = {"lo": epoch_from, "hi": epoch_to}
    con.execute(SNAPSHOT_SQL.format(name="old_alloc"), params)
    con.execute(SLASH_SQL.format(name="old_slash"), params)
    epochs = [
        r[0] for r in con.execute("SELECT epoch FROM processed_epochs WHERE epoch >= ? ORDER BY epoch", [epoch_from]).fetchall()
    ]
    if not epochs:
        raise ValueError(f"no processed epoch at or after {epoch_from}")
    optimistic = con.execute("SELECT current_setting('enable_optimistic_write')").fetchall()[0][0]
    if not apply:  # rolled back: nothing it writes need reach the database file
        con.execute("SET enable_optimistic_write = false")
    con.execute("BEGIN TRANSACTION")
    try:
        if before is not None:
            before()
        for epoch in epochs:
            recompute(epoch)
        con.execute(SNAPSHOT_SQL.format(name="new_alloc"), params)
        con.execute(SLASH_SQL.format(name="new_slash"), params)
        statements = pl.from_arrow(con.sql(DIFF_SQL).to_arrow_table())
        con.execute("COMMIT" if apply else "ROLLBACK")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    finally:
        con.execute(f"SET enable_optimistic_write = {bool(optimistic)}")
    return statements.with_columns(pl.lit(epoch_from).alias("epoch_from"), pl.lit(epoch_to).alias("epoch_to"))  # type: ignore[union-attr]
