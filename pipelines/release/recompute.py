"""Recompute an epoch's reward allocations from the public release alone (DuckDB, nothing else).

Standalone on purpose (no other project module): the hunters' notebook carries the same
function, and anyone can run it against a release. From ``reward_inputs`` (per-device factors),
``stake_positions`` and ``reward_pool`` (pool and policy parameters) it recomputes each device's
status and integer weight, then the largest-remainder split of the pool and the operator /
co-staker split, exactly as ``pipelines.rewards`` does, ties broken by the published
``device_order`` and ``wallet_order``. The result has the columns and row order of the release's
``reward_allocations``; equal bytes in, equal bytes out.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import polars as pl

RECOMPUTE_SQL = """
WITH pool AS (SELECT * FROM read_parquet($pool_file)),
inputs AS (SELECT * FROM read_parquet($inputs_file)),
judged AS (
    SELECT i.*, p.*,
        concat_ws('; ',
            CASE WHEN tier = 'rejected' THEN 'x' END,
            CASE WHEN tier = 'probation' AND p.probation = 'redistribute' THEN 'x' END,
            CASE WHEN NOT pow_passed THEN 'x' END,
            CASE WHEN up_hours < p.min_continuous_uptime_hours THEN 'x' END,
            CASE WHEN measured_class IS NULL THEN 'x' END,
            CASE WHEN multiplier_bp4 = 0 AND measured_class IS NOT NULL THEN 'x' END,
            CASE WHEN connectivity_bp4 = 0 THEN 'x' END,
            CASE WHEN p.stake_required AND stake_units < stake_needed THEN 'x' END,
            CASE WHEN wallet IS NULL THEN 'x' END) <> '' AS ineligible
    FROM inputs i CROSS JOIN (SELECT scale, operator_share_bp4, hired_bonus_bp4, min_continuous_uptime_hours,
                                     stake_required, probation, standard, pool_units, policy_version FROM pool) p
),
e AS (
    SELECT *, CASE WHEN tier = 'probation' OR (tier = 'standard' AND standard = 'hold') THEN 'held' ELSE 'paid' END AS status_r,
           multiplier_bp4 * tier_bp4 // scale * connectivity_bp4 // scale
             * (scale + hired_bonus_bp4 * hired_permille // 1000) // scale * uptime_permille // 1000 AS weight_r
    FROM judged WHERE NOT ineligible
),
e2 AS (SELECT * FROM e WHERE weight_r > 0),
total AS (SELECT sum(CAST(weight_r AS HUGEINT)) AS w FROM e2),
shares AS (
    SELECT e2.*, CAST(pool_units AS HUGEINT) * weight_r // t.w AS base, CAST(pool_units AS HUGEINT) * weight_r % t.w AS rem
    FROM e2 CROSS JOIN total t
),
ranked AS (
    SELECT *, row_number() OVER (ORDER BY rem DESC, device_order) AS rank, pool_units - sum(base) OVER () AS leftover
    FROM shares
),
device_amount AS (
    SELECT device_id, device_order, account_id, wallet, status_r AS status, weight_r AS weight, multiplier_bp4, tier_bp4,
           connectivity_bp4, uptime_permille, hired_permille, measured_class, operator_share_bp4, scale, policy_version,
           CAST(base + CASE WHEN rank <= leftover THEN 1 ELSE 0 END AS BIGINT) AS amount
    FROM ranked
),
stakers AS (
    SELECT d.device_id, p.wallet, p.wallet_order, p.active_units FROM device_amount d
    JOIN read_parquet($stakes_file) p ON p.device_id = d.device_id AND p.active_units > 0
),
staked AS (SELECT device_id, sum(active_units) AS units FROM stakers GROUP BY device_id),
split AS (
    SELECT d.*, CASE WHEN s.units IS NULL THEN d.amount ELSE d.amount * operator_share_bp4 // scale END AS operator_part,
           s.units AS staked_units
    FROM device_amount d LEFT JOIN staked s USING (device_id)
),
staker_shares AS (
    SELECT sp.device_id, st.wallet, st.wallet_order, st.active_units,
           CAST(sp.amount - sp.operator_part AS HUGEINT) * st.active_units // sp.staked_units AS base,
           CAST(sp.amount - sp.operator_part AS HUGEINT) * st.active_units % sp.staked_units AS rem,
           sp.amount - sp.operator_part AS pot
    FROM split sp JOIN stakers st USING (device_id)
),
staker_ranked AS (
    SELECT *, row_number() OVER (PARTITION BY device_id ORDER BY rem DESC, wallet_order) AS rank,
           pot - sum(base) OVER (PARTITION BY device_id) AS leftover
    FROM staker_shares
),
parts AS (
    SELECT device_id, wallet, operator_part AS amount, 'operator' AS role, NULL::BIGINT AS stake FROM split
    UNION ALL
    SELECT device_id, wallet, CAST(base + CASE WHEN rank <= leftover THEN 1 ELSE 0 END AS BIGINT), 'staker', active_units
    FROM staker_ranked
),
per_wallet AS (
    SELECT device_id, wallet, sum(amount) AS amount,
           list(struct_pack(role := role, amount := amount, stake := stake) ORDER BY role) AS roles
    FROM parts GROUP BY device_id, wallet
)
SELECT $epoch AS epoch, w.device_id, d.account_id, w.wallet, CAST(w.amount AS BIGINT) AS amount_base_units, d.weight,
       CAST(CAST(json_object('status', d.status, 'policy_version', d.policy_version, 'measured_class', d.measured_class,
            'multiplier_bp4', d.multiplier_bp4, 'tier_bp4', d.tier_bp4, 'connectivity_bp4', d.connectivity_bp4,
            'uptime_permille', d.uptime_permille, 'hired_permille', d.hired_permille,
            'device_amount', d.amount, 'roles', w.roles) AS JSON) AS VARCHAR) AS components
FROM per_wallet w JOIN device_amount d USING (device_id)
WHERE w.amount > 0 OR w.wallet = d.wallet
ORDER BY w.device_id, w.wallet
"""


def recompute_allocations(release: str | Path, epoch: str) -> pl.DataFrame:
    """The epoch's ``reward_allocations`` recomputed from ``release``."""
    root = Path(release)
    files = {
        name: root / name / f"epoch={epoch}" / "part-0.parquet" for name in ("reward_pool", "reward_inputs", "stake_positions")
    }
    missing = [str(p) for p in files.values() if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"release lacks {', '.join(missing)}")
    con = duckdb.connect()
    pool = con.execute("SELECT count(*) FROM read_parquet(?)", [str(files["reward_pool"])]).fetchall()[0][0]
    if pool != 1:
        raise ValueError(f"{files['reward_pool']} must hold one row, holds {pool}")
    columns = {r[0] for r in con.execute("DESCRIBE SELECT * FROM read_parquet(?)", [str(files["reward_pool"])]).fetchall()}
    sql = RECOMPUTE_SQL
    if "standard" not in columns:  # releases written before standard devices' shares could be held paid them
        sql = sql.replace("SELECT * FROM read_parquet($pool_file)", "SELECT *, 'pay' AS standard FROM read_parquet($pool_file)")
    params = {"epoch": epoch, "pool_file": str(files["reward_pool"]), "inputs_file": str(files["reward_inputs"]),
              "stakes_file": str(files["stake_positions"])}  # fmt: skip
    try:
        return pl.from_arrow(con.sql(sql, params=params).to_arrow_table())
    finally:
        con.close()
