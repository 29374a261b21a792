"""Reward allocation per epoch: eligibility, integer weights, an exact split of the pool.

Eligibility (policy version in force at the epoch): tier verified or standard (probation:
held or redistributed per policy; rejected: nothing); PoW passed this epoch (an answered
challenge, every sample right, no failed_pow evidence; or, not challenged this epoch, passed
within ``POW_CARRY_HOURS``); up for the last
``min_continuous_uptime_hours`` hours by the backend's own pings (an hour with no drop at all, never
delivered or rejected whole, is the backend's outage and waived); a *measured* class (the
claimed model if its measured throughput is consistent with honest peers, else the strongest
model of its vendor that throughput supports; a model the catalogue does not list is classed
the same way, its vendor read from its name; where the backend records no compute times at
all, the claimed model of a device whose answers are exact); and, where required, active stake
of ``stake_per_gpu x max(1, multiplier)`` on the device.

Weight (an integer): multiplier(measured class) x tier x connectivity x (1 + hired bonus x
hired share) x uptime share, each factor in integer 1/10,000ths or 1/1,000ths. The epoch's
pool (integer base units) is split by largest remainder: floor(pool x w / W) each, then one
base unit to the largest remainders (ties by device id) until the pool is spent. A device's
amount is split between its owner (``operator_share``) and its co-stakers pro rata to stake,
the same way. Amounts of an epoch add up exactly to its pool.

A held share (probation under the ``hold`` policy) goes into the ``held_rewards`` ledger and
stays there until the device's tier settles it: released to the wallet it was held for once
the device has been out of probation for ``release_after_hours``, forfeited when it is
rejected.
"""

from __future__ import annotations

import duckdb

from pipelines import catalogue
from pipelines.cadence import REFERENCE_HEARTBEAT_MINUTES, Cadence
from pipelines.rewards_policy import SCALE, PolicyVersion

PAYOUTS_SQL = """
SELECT epoch, device_id, account_id, wallet, amount_base_units FROM {allocations} WHERE components ->> 'status' = 'paid'
UNION ALL
SELECT settled_epoch, device_id, account_id, wallet, amount_base_units FROM {held} WHERE outcome = 'released'"""
"""What was paid out, per epoch: allocations paid when earned, held shares in the epoch of their
release. The ``payouts`` view applies it to the whole ledgers; slashing's accrual state applies
it to two epoch ranges of them (``payouts_of``), because the status test reads JSON (~200 ns a
row) and the accrual window holds a month of every device's allocations."""


def payouts_of(allocations: str, held: str) -> str:
    """``PAYOUTS_SQL`` over these relations (the ledgers, or rows of them already narrowed)."""
    return PAYOUTS_SQL.replace("{allocations}", allocations).replace("{held}", held)


CLASS_FLOOR_SHARE = 0.45
"""A device is paid as the model it claims while its best throughput over a day (its 90th
percentile) is at least this share of the model's peers' median (the spec x 0.8 without peers),
and as the strongest model of its vendor that throughput supports below it. Pricing is not a
verdict: nobody is held or slashed for it. Across seven networks written by others no honest
device measured under 0.465 of its model's peers over the whole window, and heat, power caps and
a game in the evening take a day's best under 0.45 in at most 0.42% of honest device-hours (a
thirteenth network's evening gamers); cards sold as their next model up sit there (an eighteenth
network's RTX 3090s sold as 4090s and A100s sold as H100s at 0.34 of their peers, 33 of 39 in the
band, paid as what they claimed at the bar of 0.3 that ``spoofed_model`` holds slowness to)."""

FACTS_SQL = f"""
INSERT INTO reward_facts
WITH f AS (SELECT * FROM device_features WHERE epoch = $epoch),
tiers AS (SELECT device_id, tier FROM device_tiers WHERE epoch = $epoch),
owner_wallet AS (
    SELECT account_id, arg_max(wallet, _hour) AS wallet FROM accounts WHERE _hour <= $epoch GROUP BY account_id
),
measures AS (SELECT device_id, tflops, down_mbps FROM device_measures WHERE epoch = $epoch),
hired AS (  -- completed jobs reported this hour (jobs arrive when they end): their part in this hour
    SELECT device_id, least(1000, CAST(sum(date_diff('millisecond',
               greatest(coalesce(started_at, created_at), epoch_start($epoch)),
               least(ended_at, epoch_start($epoch) + INTERVAL 1 HOUR))) / 3600 AS BIGINT)) AS permille
    FROM jobs
    WHERE status = 'completed' AND ended_at > epoch_start($epoch)
      AND coalesce(started_at, created_at) < epoch_start($epoch) + INTERVAL 1 HOUR
      AND _hour = $epoch
    GROUP BY device_id
),
failed AS (SELECT DISTINCT device_id FROM evidence WHERE epoch = $epoch AND fraud_type = 'failed_pow'),
proven AS (  -- not challenged this hour (the backend's choice: challenges every few hours, none while a device is
    -- hired) but passed within the day: its hardware is still proven
    SELECT DISTINCT device_id FROM device_features
    WHERE epoch > hours_back($epoch, $pow_carry) AND epoch < $epoch
      AND pow_ok > 0 AND samples_bad = 0 AND overclaimed_compute = 0 AND unverified_ok = 0
      AND device_id IN (SELECT device_id FROM f WHERE pow_total = 0)
)
SELECT $epoch, f.device_id, f.account_id, w.wallet, t.tier, f.catalogue_model, m.tflops,
       {CLASS_FLOOR_SHARE} * coalesce(p.median_tflops, f.spec_tflops * 0.8) AS class_floor, m.down_mbps,
       CASE WHEN c.pings_per_hour = 0  -- no pings this hour: the share of the heartbeats the cadence brings
                 -- or every ping dropped on a device that answered a challenge this hour (a firewall or carrier NAT
                 -- dropping the backend's probes: reachable_hour counts it up, so its share is read as in an hour
                 -- without pings; a twentieth network's 71 ping-blocked devices were eligible and weighted 0)
                 OR f.ping_total > 0 AND f.ping_ok = 0 AND f.pow_ok > 0
            THEN least(1000, f.heartbeat_ok * 1000 // greatest(1, 60 // coalesce(c.heartbeat_minutes, {REFERENCE_HEARTBEAT_MINUTES})))
            WHEN f.ping_total > 0 THEN f.ping_ok * 1000 // f.ping_total ELSE 0 END AS uptime_permille,
       coalesce(h.permille, 0) AS hired_permille,
       (f.pow_ok > 0 AND f.samples_bad = 0 AND f.overclaimed_compute = 0 AND f.unverified_ok = 0
        OR f.pow_total = 0 AND v.device_id IS NOT NULL) AND x.device_id IS NULL AS pow_passed
FROM f
LEFT JOIN tiers t USING (device_id)
LEFT JOIN owner_wallet w ON w.account_id = f.account_id
LEFT JOIN measures m USING (device_id)
LEFT JOIN model_peers p ON p.epoch = $epoch AND p.catalogue_model = f.catalogue_model
LEFT JOIN hired h USING (device_id)
LEFT JOIN failed x USING (device_id)
LEFT JOIN proven v USING (device_id)
LEFT JOIN uptime_cadence c ON c.epoch = $epoch
ORDER BY f.device_id
"""
"""What eligibility reads that no reward policy changes, one row per device of the epoch: the
owner's wallet, the tier, the measured throughput and the floor at which it backs the claimed
model, bandwidth, ping uptime, hired share and whether PoW passed. A rewards-only recalculation
reads these instead of joining verification's, detection's and the ledgers' tables again."""

ELIGIBILITY_SQL = """
INSERT INTO reward_eligibility
WITH x AS (SELECT * FROM reward_facts WHERE epoch = $epoch),
unlisted AS (  -- a claimed model the catalogue does not list (a real card outside it): its vendor by name
    SELECT device_id, gpu_vendor(gpu_model) AS vendor FROM device_features WHERE epoch = $epoch AND catalogue_model IS NULL
),
declared AS (  -- a vGPU guest that declares its profile claims its share of a card: paid no more than that share of
    -- the card's multiplier (where its name can stand for several cards of a family, the most generous)
    SELECT d.device_id, max(least(pm.bp4, pm.bp4 * d.profile_mib // d.card_mib)) AS cap_bp4
    FROM ({DECLARED}) d JOIN policy_multipliers pm ON pm.model_key = d.model_key
    WHERE d.card_mib > 0
    GROUP BY d.device_id
),
claimed AS MATERIALIZED (  -- measured devices below their claimed model's floor (an unlisted model has none),
    -- with its vendor and the claimed model's multiplier, planned on their own: inside one plan the catalogue's
    -- inequality join came first (45M rows, 10 s at 100k devices)
    SELECT x.device_id, x.tflops, coalesce(k.vendor, u.vendor) AS vendor, coalesce(cm.bp4, dv.cap_bp4) AS claimed_bp4
    FROM x LEFT JOIN gpu_catalogue k ON k.model_key = x.catalogue_model LEFT JOIN unlisted u USING (device_id)
    LEFT JOIN policy_multipliers cm ON cm.model_key = x.catalogue_model LEFT JOIN declared dv USING (device_id)
    WHERE x.tflops IS NOT NULL AND (x.tflops >= x.class_floor) IS NOT TRUE AND coalesce(k.vendor, u.vendor) IS NOT NULL
),
supported AS (  -- the strongest model of the same vendor that a measured throughput supports, never one paid
    -- more than the model claimed (the multiplier table pays an RTX 3090 more than a 4090: a 4090 measuring
    -- like a 3090 was paid as one, above its claim)
    SELECT m.device_id, arg_max(c.model_key, pm.bp4 * 1000000 + c.fp16_tensor_tflops) AS model
    FROM claimed m
    JOIN gpu_catalogue c ON c.vendor = m.vendor AND c.fp16_tensor_tflops * 0.8 <= m.tflops
    JOIN policy_multipliers pm ON pm.model_key = c.model_key AND (m.claimed_bp4 IS NULL OR pm.bp4 <= m.claimed_bp4)
    GROUP BY m.device_id
),
untimed AS (  -- the backend records no worker-reported compute time this hour (compute_ms is optional):
    -- throughput cannot be measured, so exact answers class a device as the model it claims (VRAM challenges
    -- still test the claim); a device that alone omits its times, where others report theirs, earns no class
    SELECT coalesce(count(compute_ms) < 0.01 * count(*), false) AS yes FROM pow WHERE _hour = $epoch AND status = 'ok'
),
classed AS (  -- the claimed model if the throughput backs it, else the strongest it supports
    SELECT x.device_id,
           CASE WHEN x.tflops >= x.class_floor THEN x.catalogue_model
                WHEN x.tflops IS NULL AND x.pow_passed AND (SELECT yes FROM untimed) THEN x.catalogue_model
                ELSE s.model END AS measured_class
    FROM x LEFT JOIN supported s USING (device_id)
),
uptime AS (  -- up: pings mostly answered (or a challenge answered: reachable_hour) and half the heartbeats the hour's cadence brings (3 of 6 at
    -- 10-minute heartbeats; an epoch stored before the cadence was measured: 3); a source absent from
    -- the whole hour (no pings, no heartbeats) is waived (pipelines.cadence)
    SELECT f.device_id,
           count(*) FILTER (reachable_hour(f.ping_total, f.ping_ok, f.pow_ok, c.pings_per_hour)
                            AND f.heartbeat_ok >= coalesce(c.up_heartbeats, $reference_up)) AS up_hours
    FROM device_features f LEFT JOIN uptime_cadence c ON c.epoch = f.epoch
    WHERE f.epoch > hours_back($epoch, $min_up) AND f.epoch <= $epoch
    GROUP BY f.device_id
),
gap AS (  -- hours of the window, since the first one measured, with no data at all (an hour never delivered, or
    -- rejected whole): the backend's outage, not the devices', so waived like a source absent from a whole hour
    SELECT greatest(0, least($min_up, date_diff('hour',
               epoch_start(least(coalesce((SELECT min(epoch) FROM uptime_cadence), $epoch), $epoch)),
               epoch_start($epoch)) + 1) - count(DISTINCT epoch)) AS hours
    FROM device_features WHERE epoch > hours_back($epoch, $min_up) AND epoch <= $epoch
),
bandwidth AS (SELECT device_id, down_mbps AS down FROM x WHERE down_mbps IS NOT NULL),
conn AS (  -- the highest connectivity tier the bandwidth reaches (an as-of join: one sorted pass)
    SELECT b.device_id, b.down, c.bp4 FROM bandwidth b ASOF JOIN policy_connectivity c ON b.down >= c.min_down
),
stake AS (SELECT device_id, sum(active_units) AS units FROM stake_positions WHERE epoch = $epoch GROUP BY device_id),
judged AS (
    SELECT x.device_id, x.account_id, x.wallet, x.tier, k.measured_class, x.tflops, cl.vendor, x.catalogue_model AS claimed_model,
           cl.claimed_bp4,
           coalesce(pm.bp4, 0) AS multiplier_bp4,
           coalesce(tm.bp4, 0) AS tier_bp4,
           coalesce(cn.bp4, 0) AS connectivity_bp4, cn.down AS down_mbps,
           x.uptime_permille, x.hired_permille,
           coalesce(u.up_hours, 0) AS up_hours, (SELECT hours FROM gap) AS gap_hours,
           x.pow_passed,
           coalesce(s.units, 0) AS stake_units,
           $stake_per_gpu * greatest($scale, coalesce(pm.bp4, 0)) // $scale AS stake_needed
    FROM x
    LEFT JOIN classed k USING (device_id)
    LEFT JOIN claimed cl USING (device_id)
    LEFT JOIN policy_multipliers pm ON pm.model_key = k.measured_class
    LEFT JOIN policy_tiers tm ON tm.tier = x.tier
    LEFT JOIN conn cn USING (device_id)
    LEFT JOIN uptime u USING (device_id)
    LEFT JOIN stake s USING (device_id)
),
reasoned AS (
    SELECT *, concat_ws('; ',
        CASE WHEN tier = 'rejected' THEN 'rejected' END,
        CASE WHEN tier = 'probation' AND $probation = 'redistribute' THEN 'in probation' END,
        CASE WHEN NOT pow_passed THEN 'PoW not passed this hour' END,
        CASE WHEN up_hours + gap_hours < $min_up AND gap_hours = 0 THEN format('up {} of the last {} hours', up_hours, $min_up)
             WHEN up_hours + gap_hours < $min_up
             THEN format('up {} of the last {} hours ({} without data waived)', up_hours, $min_up, gap_hours) END,
        CASE WHEN measured_class IS NOT NULL THEN NULL
             WHEN tflops IS NULL THEN 'no measured class (no consistent PoW throughput)'
             WHEN vendor IS NULL THEN 'no measured class (a model of no vendor the catalogue lists)'
             ELSE format('no measured class ({} TFLOPS measured: under 0.8 x the spec of every {} model the catalogue lists{})',
                         round(tflops, 1), vendor,
                         CASE WHEN claimed_bp4 IS NOT NULL
                              THEN format(' that is paid no more than {}', coalesce(claimed_model, 'its declared share of the card'))
                              ELSE '' END) END,
        CASE WHEN multiplier_bp4 = 0 AND measured_class IS NOT NULL THEN format('{} earns no multiplier', measured_class) END,
        CASE WHEN connectivity_bp4 = 0 THEN 'no bandwidth report' END,
        CASE WHEN $stake_required AND stake_units < stake_needed
             THEN format('stake {} of {} base units required', stake_units, stake_needed) END,
        CASE WHEN wallet IS NULL THEN 'owner has no wallet on record' END) AS why_not
    FROM judged
)
SELECT $epoch, device_id, account_id, wallet, tier, measured_class, tflops, multiplier_bp4, tier_bp4,
       connectivity_bp4, down_mbps, uptime_permille, hired_permille, up_hours, pow_passed, stake_units, stake_needed,
       CASE WHEN why_not <> '' THEN 'ineligible'
            WHEN tier = 'probation' OR (tier = 'standard' AND $standard = 'hold') THEN 'held' ELSE 'paid' END AS status,
       nullif(why_not, '') AS reason,
       CASE WHEN why_not <> '' THEN 0 ELSE
           multiplier_bp4 * tier_bp4 // $scale * connectivity_bp4 // $scale
           * ($scale + $hired_bonus * hired_permille // 1000) // $scale * uptime_permille // 1000 END AS weight
FROM reasoned ORDER BY device_id
"""

ALLOCATION_SQL = """
INSERT INTO reward_allocations
WITH e AS (SELECT * FROM reward_eligibility WHERE epoch = $epoch AND weight > 0),
total AS (SELECT sum(CAST(weight AS HUGEINT)) AS w FROM e),
shares AS (
    SELECT e.*, CAST($pool AS HUGEINT) * weight // t.w AS base, CAST($pool AS HUGEINT) * weight % t.w AS rem
    FROM e CROSS JOIN total t
),
ranked AS (
    SELECT *, row_number() OVER (ORDER BY rem DESC, device_id) AS rank,
           $pool - sum(base) OVER () AS leftover
    FROM shares
),
device_amount AS (
    SELECT device_id, account_id, wallet, status, weight, multiplier_bp4, tier_bp4, connectivity_bp4, uptime_permille,
           hired_permille, measured_class, CAST(base + CASE WHEN rank <= leftover THEN 1 ELSE 0 END AS BIGINT) AS amount
    FROM ranked
),
stakers AS (  -- co-stakers of each paid device, with their active stake
    SELECT d.device_id, p.wallet, p.active_units FROM device_amount d
    JOIN stake_positions p ON p.epoch = $epoch AND p.device_id = d.device_id AND p.active_units > 0
),
staked AS (SELECT device_id, sum(active_units) AS units, count(*) AS stakers FROM stakers GROUP BY device_id),
split AS (  -- the owner's operator share, then the rest pro rata to stake (all to the owner if none)
    SELECT d.*, CASE WHEN s.units IS NULL THEN d.amount ELSE d.amount * $operator // $scale END AS operator_part,
           s.units AS staked_units, s.stakers
    FROM device_amount d LEFT JOIN staked s USING (device_id)
),
staker_shares AS (
    SELECT sp.device_id, st.wallet, st.active_units,
           CAST(sp.amount - sp.operator_part AS HUGEINT) * st.active_units // sp.staked_units AS base,
           CAST(sp.amount - sp.operator_part AS HUGEINT) * st.active_units % sp.staked_units AS rem,
           sp.amount - sp.operator_part AS pot, sp.stakers
    FROM split sp JOIN stakers st USING (device_id)
),
staker_ranked AS (  -- a device's only staker takes the whole pot; several share it by largest remainder
    -- (a window partitioned by device costs ~1 us a row, and most devices have one staker)
    SELECT *, 1 AS rank, pot - base AS leftover FROM staker_shares WHERE stakers = 1
    UNION ALL
    SELECT *, row_number() OVER (PARTITION BY device_id ORDER BY rem DESC, wallet) AS rank,
           pot - sum(base) OVER (PARTITION BY device_id) AS leftover
    FROM staker_shares WHERE stakers > 1
),
operator_parts AS (
    SELECT device_id, wallet, CAST(operator_part AS BIGINT) AS amount FROM split
),
staker_parts AS (
    SELECT device_id, wallet, CAST(base + CASE WHEN rank <= leftover THEN 1 ELSE 0 END AS BIGINT) AS amount, active_units AS stake
    FROM staker_ranked
),
per_wallet AS (  -- a wallet holds at most one operator and one staker part of a device: a join, not a list aggregate
    SELECT coalesce(o.device_id, s.device_id) AS device_id, coalesce(o.wallet, s.wallet) AS wallet,
           coalesce(o.amount, 0) + coalesce(s.amount, 0) AS amount,
           list_filter([CASE WHEN o.device_id IS NOT NULL THEN struct_pack(role := 'operator', amount := o.amount, stake := NULL::BIGINT) END,
                        CASE WHEN s.device_id IS NOT NULL THEN struct_pack(role := 'staker', amount := s.amount, stake := s.stake) END],
                       lambda r: r IS NOT NULL) AS roles
    FROM operator_parts o FULL JOIN staker_parts s ON s.device_id = o.device_id AND s.wallet IS NOT DISTINCT FROM o.wallet
)
SELECT $epoch, w.device_id, d.account_id, w.wallet, CAST(w.amount AS BIGINT), d.weight,
       CAST(json_object('status', d.status, 'policy_version', $version, 'measured_class', d.measured_class,
            'multiplier_bp4', d.multiplier_bp4, 'tier_bp4', d.tier_bp4, 'connectivity_bp4', d.connectivity_bp4,
            'uptime_permille', d.uptime_permille, 'hired_permille', d.hired_permille,
            'device_amount', d.amount, 'roles', w.roles) AS JSON)
FROM per_wallet w JOIN device_amount d USING (device_id)
WHERE w.amount > 0 OR w.wallet = d.wallet
ORDER BY w.device_id, w.wallet
"""


def register_policy(con: duckdb.DuckDBPyConnection, version: PolicyVersion) -> None:
    """The version's multipliers, tiers and connectivity tiers as temporary SQL tables (one
    statement each: a recalculation registers a version every epoch)."""
    catalogue.register(con)
    tables = (
        ("policy_multipliers", "model_key", "VARCHAR", version.multiplier_rows()),
        ("policy_tiers", "tier", "VARCHAR", sorted(version.tier_multipliers.items())),
        ("policy_connectivity", "min_down", "DOUBLE", list(version.connectivity)),
    )
    for name, column, kind, rows in tables:
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE {name} AS "
            f"SELECT unnest(CAST($keys AS {kind}[])) AS {column}, unnest(CAST($bp4 AS BIGINT[])) AS bp4",
            {"keys": [k for k, _ in rows], "bp4": [int(v) for _, v in rows]},
        )


POW_CARRY_HOURS = 24
"""A device the backend did not challenge this hour counts as having passed PoW when it passed
within this many hours (the day over which ``failed_pow`` judges wrong samples). The backend
decides whom to challenge; a device cannot dodge a challenge it is sent (a timeout counts as
one). A backend that challenges each device every few hours, or pauses challenges while a device
is hired, left such devices unpaid in every hour without one: challenged every second hour, 217
of a 600-device network's 603 devices were unpaid at its last epoch ("PoW not passed this hour")."""


def record_facts(con: duckdb.DuckDBPyConnection, epoch: str) -> None:
    """Write ``reward_facts`` for the epoch (replacing any)."""
    con.execute("DELETE FROM reward_facts WHERE epoch = ?", [epoch])
    con.execute(FACTS_SQL, {"epoch": epoch, "pow_carry": POW_CARRY_HOURS})


DECLARED_FROM = "(SELECT * FROM device_features WHERE epoch = $epoch)"
"""The epoch's devices, as ``catalogue.declared_vgpu_sql`` reads them for declared vGPU guests."""


def has_facts(con: duckdb.DuckDBPyConnection, epoch: str) -> bool:
    """Whether the epoch's ``reward_facts`` are stored (an epoch processed before the table
    existed has none)."""
    return bool(con.execute("SELECT 1 FROM reward_facts WHERE epoch = ? LIMIT 1", [epoch]).fetchall())


def assess(con: duckdb.DuckDBPyConnection, epoch: str, version: PolicyVersion, reuse_facts: bool = False) -> None:
    """Write ``reward_eligibility`` for the epoch: status, reasons and integer weight per device.
    The epoch's ``reward_facts`` are recorded first, unless ``reuse_facts`` and they are stored
    (a rewards-only recalculation: nothing they are made of has changed)."""
    if not (reuse_facts and has_facts(con, epoch)):
        record_facts(con, epoch)
    register_policy(con, version)
    con.execute("DELETE FROM reward_eligibility WHERE epoch = ?", [epoch])
    con.execute(
        ELIGIBILITY_SQL.replace("{DECLARED}", catalogue.declared_vgpu_sql(DECLARED_FROM)),
        {"epoch": epoch, "min_up": version.min_continuous_uptime_hours, "scale": SCALE,
         "stake_per_gpu": version.stake_per_gpu, "stake_required": version.stake_required,
         "hired_bonus": version.hired_bonus, "probation": version.probation, "standard": version.standard,
         "reference_up": Cadence().up_heartbeats},
    )  # fmt: skip


def split_pool(con: duckdb.DuckDBPyConnection, epoch: str, version: PolicyVersion) -> dict[str, int]:
    """Split the epoch's pool over ``reward_eligibility`` into ``reward_allocations`` and record
    the pool in ``epoch_pools``; returns its figures."""
    for table in ("reward_allocations", "epoch_pools"):
        con.execute(f"DELETE FROM {table} WHERE epoch = ?", [epoch])
    con.execute(
        ALLOCATION_SQL,
        {"epoch": epoch, "pool": version.emission_per_epoch, "operator": version.operator_share,
         "scale": SCALE, "version": version.id},
    )  # fmt: skip
    allocated, held = con.execute(
        "SELECT coalesce(sum(amount_base_units), 0), "
        "coalesce(sum(amount_base_units) FILTER (components ->> 'status' = 'held'), 0) "
        "FROM reward_allocations WHERE epoch = ?",
        [epoch],
    ).fetchall()[0]
    pool = version.emission_per_epoch
    con.execute(
        "INSERT INTO epoch_pools VALUES (?, ?, ?, ?, ?, ?)",
        [epoch, version.id, pool, int(allocated), int(held), pool - int(allocated)],
    )
    return {"pool": pool, "allocated": int(allocated), "held": int(held), "undistributed": pool - int(allocated)}


HOLD_SQL = """
INSERT INTO held_rewards
SELECT epoch, device_id, account_id, wallet, amount_base_units, NULL, NULL FROM reward_allocations
WHERE epoch = $epoch AND components ->> 'status' = 'held' AND amount_base_units > 0
"""

SETTLE_SQL = """
UPDATE held_rewards h
SET settled_epoch = $epoch, outcome = CASE WHEN s.tier = 'rejected' THEN 'forfeited' ELSE 'released' END
FROM (  -- the epoch's devices whose held shares settle now; the window's probation rows are read once, as a
    -- set (a correlated NOT EXISTS per held share read the window's tiers 2.5x slower)
    SELECT t.device_id, t.tier FROM device_tiers t
    WHERE t.epoch = $epoch
      AND (t.tier = 'rejected' OR ((t.tier = 'verified' OR (t.tier = 'standard' AND $standard = 'pay'))
           AND t.device_id NOT IN (SELECT device_id FROM device_tiers WHERE tier = 'probation'
                                   AND epoch > hours_back($epoch, $clear_hours) AND epoch <= $epoch)))
) s
WHERE s.device_id = h.device_id AND h.settled_epoch IS NULL AND h.held_epoch < $epoch
"""


def settle_held(con: duckdb.DuckDBPyConnection, epoch: str, clear_hours: int, standard: str = "pay") -> dict[str, int]:
    """Record the epoch's held shares in ``held_rewards`` and settle earlier ones by the tier
    each device has now: ``forfeited`` when rejected; ``released`` when verified (or standard,
    unless ``standard`` is ``hold``) and in no probation for the last ``clear_hours`` epochs (a
    device flagged again meanwhile keeps its shares held); a device still in probation, not yet
    verified under ``standard = "hold"``, or not seen this epoch, stays held.

    The ledger is put back to its state after the previous epoch first (an epoch is only ever
    recomputed together with every later one), so a re-run settles exactly what it did before.
    """
    con.execute("DELETE FROM held_rewards WHERE held_epoch >= ?", [epoch])
    con.execute("UPDATE held_rewards SET settled_epoch = NULL, outcome = NULL WHERE settled_epoch >= ?", [epoch])
    con.execute(HOLD_SQL, {"epoch": epoch})
    con.execute(SETTLE_SQL, {"epoch": epoch, "clear_hours": clear_hours, "standard": standard})
    released, forfeited = con.execute(
        "SELECT coalesce(sum(amount_base_units) FILTER (outcome = 'released'), 0), "
        "coalesce(sum(amount_base_units) FILTER (outcome = 'forfeited'), 0) FROM held_rewards WHERE settled_epoch = ?",
        [epoch],
    ).fetchall()[0]
    return {"released": int(released), "forfeited": int(forfeited)}


def allocate(con: duckdb.DuckDBPyConnection, epoch: str, version: PolicyVersion, reuse_facts: bool = False) -> dict[str, int]:
    """Eligibility, allocations and the held-rewards ledger for one epoch (replacing any);
    returns the pool's figures and what was released or forfeited."""
    assess(con, epoch, version, reuse_facts)
    figures = split_pool(con, epoch, version)
    return figures | settle_held(con, epoch, version.release_after_hours, version.standard)
