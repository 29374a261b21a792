"""``fleetproof bounty review``: a person accepts or dismisses queued reports; accepted ones pay.

Accepting a report turns its credited devices (pseudonyms mapped back with the season key) into
review overrides for the report's epochs, with the reporter named in the reason, and recomputes
those epochs (``pipelines.recalc``). The rewards the report stopped are what the credited devices
were allocated in those epochs before minus after; the bounty is ``floor(stopped x share)`` in
base units, paid to the report's wallet. Every step is kept in ``bounty_decisions``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import duckdb
import polars as pl

from pipelines.bounty.intake import BOUNTY_SCHEMA_SQL, BountyPolicy
from pipelines.contract import TIERS
from pipelines.policy import DetectionPolicy
from pipelines.recalc import Override, recalculate
from pipelines.release import pseudonymize
from pipelines.rewards_policy import SCALE, RewardsPolicy


@dataclass(frozen=True)
class Payout:
    report_id: str
    devices: list[str]
    stopped_base_units: int
    amount_base_units: int
    reward_wallet: str


def queue(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    con.execute(BOUNTY_SCHEMA_SQL)
    return pl.from_arrow(con.sql(
        "SELECT report_id, received_at, reporter, fraud_type, len(credited_devices) AS devices, epochs[1] AS first_epoch, reason "
        "FROM bounty_reports WHERE status = 'queued' ORDER BY received_at"
    ).to_arrow_table())  # type: ignore[return-value]  # fmt: skip


def decisions(con: duckdb.DuckDBPyConnection, report_id: str) -> pl.DataFrame:
    """What was decided about a report and why, in order (what the reporter is shown)."""
    con.execute(BOUNTY_SCHEMA_SQL)
    rows = con.sql("SELECT decided_at, step, outcome, reason FROM bounty_decisions WHERE report_id = $id ORDER BY rowid",
                   params={"id": report_id}).to_arrow_table()  # fmt: skip
    if rows.num_rows == 0:
        raise ValueError(f"no bounty report {report_id!r}")
    return pl.from_arrow(rows)  # type: ignore[return-value]


def _queued(con: duckdb.DuckDBPyConnection, report_id: str) -> tuple:
    con.execute(BOUNTY_SCHEMA_SQL)
    row = con.execute("SELECT status, reporter, reward_wallet, fraud_type, epochs, credited_devices FROM bounty_reports "
                      "WHERE report_id = ?", [report_id]).fetchall()  # fmt: skip
    if not row:
        raise ValueError(f"no bounty report {report_id!r}")
    if row[0][0] != "queued":
        raise ValueError(f"report {report_id} is {row[0][0]}, not queued for review")
    return row[0]


def dismiss(con: duckdb.DuckDBPyConnection, report_id: str, reason: str, now: datetime | None = None) -> None:
    _queued(con, report_id)
    now = now or datetime.now(UTC).replace(tzinfo=None)
    con.execute(
        "UPDATE bounty_reports SET status = 'dismissed', reason = ? WHERE report_id = ?",
        [f"dismissed in review: {reason}", report_id],
    )
    con.execute("INSERT INTO bounty_decisions VALUES (?, ?, 'review', 'dismiss', ?)", [report_id, now, reason])


def _raw_devices(con: duckdb.DuckDBPyConnection, secret: bytes, release_policy: pseudonymize.ReleasePolicy,
                 epochs: list[str], pseudonyms: list[str]) -> list[str]:  # fmt: skip
    found: set[str] = set()
    for season in {release_policy.season_at(e).id for e in epochs}:
        pseudonymize.register(con, pseudonymize.season_key(secret, season), release_policy.wallets)
        found |= {r[0] for r in con.execute(
            "SELECT DISTINCT device_id FROM device_tiers WHERE list_contains($e, epoch) AND list_contains($p, pseudo('device', device_id))",
            {"e": epochs, "p": pseudonyms}).fetchall()}  # fmt: skip
    return sorted(found)


def _allocated(con: duckdb.DuckDBPyConnection, devices: list[str], lo: str, hi: str) -> int:
    return int(con.execute("SELECT coalesce(sum(amount_base_units), 0) FROM reward_allocations "
                           "WHERE epoch BETWEEN ? AND ? AND list_contains(?, device_id)", [lo, hi, devices]).fetchall()[0][0])  # fmt: skip


def accept(
    con: duckdb.DuckDBPyConnection,
    report_id: str,
    reason: str,
    *,
    secret: bytes,
    release_policy: pseudonymize.ReleasePolicy,
    detection: DetectionPolicy,
    rewards: RewardsPolicy,
    bounty: BountyPolicy,
    tier: str = "rejected",
    now: datetime | None = None,
) -> Payout:
    """Accept a queued report: overrides, recomputation of its epochs, and the exact bounty."""
    if tier not in TIERS:
        raise ValueError(f"tier must be one of {TIERS}")
    _, reporter, wallet, fraud_type, epochs, credited = _queued(con, report_id)
    now = now or datetime.now(UTC).replace(tzinfo=None)
    epochs = sorted(epochs)
    devices = _raw_devices(con, secret, release_policy, epochs, list(credited))
    if len(devices) != len(credited):
        raise ValueError(f"report {report_id}: {len(credited) - len(devices)} credited pseudonym(s) do not map to a device "
                         "with this secret (wrong secret, or another release?)")  # fmt: skip
    lo, hi = epochs[0], epochs[-1]
    before = _allocated(con, devices, lo, hi)
    why = f"bounty report {report_id} by {reporter} ({fraud_type}): {reason}"
    recalculate(con, lo, hi, detection, rewards, [Override(d, tier, why) for d in devices], apply=True)
    stopped = max(0, before - _allocated(con, devices, lo, hi))
    amount = stopped * bounty.share_bp4 // SCALE
    con.execute("UPDATE bounty_reports SET status = 'accepted', reason = ? WHERE report_id = ?",
                [f"accepted in review: {reason}; bounty {amount} base units", report_id])  # fmt: skip
    con.execute(
        "INSERT INTO bounty_payouts VALUES (?, ?, ?, ?, ?, ?)", [report_id, wallet, stopped, bounty.share_bp4, amount, now]
    )
    con.executemany("INSERT INTO bounty_decisions VALUES (?, ?, ?, ?, ?)", [
        [report_id, now, "review", "accept", f"{reason}; {len(devices)} device(s) set to {tier} for {lo}..{hi}, reporter credited"],
        [report_id, now, "payout", "pay", f"stopped {stopped} base units x {bounty.share_bp4}/{SCALE} = {amount} base units to {wallet}"],
    ])  # fmt: skip
    return Payout(report_id, devices, stopped, amount, wallet)
