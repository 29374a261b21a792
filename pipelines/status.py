"""``fleetproof status``: what came in, what was rejected or quarantined, and why; stage
failures and epochs whose exports are not written yet.

Reads through a read-only connection and never waits: if a run holds the database, it says
so at once (``DatabaseBusy``); a missing path or a file that is not a DuckDB database is an
error, and nothing is created."""

from __future__ import annotations

import json
from pathlib import Path

from pipelines.db import connect_for_reading


def _table_exists(con, name: str) -> bool:
    return bool(con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = ?", [name]).fetchall()[0][0])


def status_data(db: str | Path) -> dict:
    with connect_for_reading(db) as con:
        if not _table_exists(con, "ingest_log"):
            raise ValueError(f"{db} is a DuckDB database but not a fleetproof one (no ingest_log table)")
        hours = con.execute(
            "SELECT hour, status, reason, rows_in, rows_landed, rows_quarantined FROM ingest_log ORDER BY hour"
        ).fetchall()
        reasons = con.execute(
            """
            SELECT hour, feed, file, CASE WHEN row_number IS NULL THEN 'file' ELSE 'row' END AS level,
                   regexp_replace(reason, '''[^'']*''|\\d+', '…', 'g') AS kind, count(*) AS n, min(reason) AS example
            FROM quarantine GROUP BY ALL ORDER BY hour, n DESC
            """
        ).fetchall()
        attempts = con.execute(
            "SELECT hour, status, reason, attempted_at FROM ingest_attempts WHERE status = 'rejected' ORDER BY attempted_at"
        ).fetchall()
        epochs = con.execute("SELECT count(*), min(epoch), max(epoch) FROM processed_epochs").fetchall()[0]
        tiers = con.execute(
            "SELECT tier, count(*) FROM device_tiers WHERE epoch = (SELECT max(epoch) FROM device_tiers) GROUP BY tier ORDER BY tier"
        ).fetchall()
        failures = (
            con.execute("SELECT epoch, stage, reason, failed_at FROM stage_failures ORDER BY epoch").fetchall()
            if _table_exists(con, "stage_failures") else []
        )  # fmt: skip
        unexported = (
            [r[0] for r in con.execute(
                "SELECT epoch FROM processed_epochs p WHERE NOT EXISTS (SELECT 1 FROM epoch_exports e "
                "WHERE e.epoch = p.epoch AND e.processed_at = p.processed_at) ORDER BY epoch").fetchall()]
            if _table_exists(con, "epoch_exports") else []
        )  # fmt: skip
    return {
        "hours": [dict(zip(("hour", "status", "reason", "rows_in", "rows_landed", "rows_quarantined"), h)) for h in hours],
        "quarantine": [dict(zip(("hour", "feed", "file", "level", "kind", "count", "example"), r)) for r in reasons],
        "rejected_deliveries": [dict(zip(("hour", "status", "reason", "attempted_at"), (*a[:3], str(a[3])))) for a in attempts],
        "epochs": {"processed": epochs[0], "first": epochs[1], "last": epochs[2]},
        "latest_tiers": dict(tiers),
        "stage_failures": [dict(zip(("epoch", "stage", "reason", "failed_at"), (*f[:3], str(f[3])))) for f in failures],
        "epochs_not_exported": unexported,
    }


def status_report(db: str | Path, as_json: bool = False) -> str:
    d = status_data(db)
    if as_json:
        return json.dumps(d, indent=1, default=str)
    hours = d["hours"]
    ok = [h for h in hours if h["status"] == "ingested"]
    lines = [
        f"hours ingested: {len(ok)}   rejected: {len(hours) - len(ok)}   "
        f"rows landed: {sum(h['rows_landed'] for h in ok)}   quarantined: {sum(h['rows_quarantined'] for h in ok)}",
        f"epochs processed: {d['epochs']['processed']} ({d['epochs']['first']} .. {d['epochs']['last']})",
        "latest tiers: " + (", ".join(f"{k} {v}" for k, v in d["latest_tiers"].items()) or "-"),
    ]
    for f in d["stage_failures"]:
        lines.append(f"  FAILED {f['epoch']} at stage {f['stage']} ({f['failed_at']}): {f['reason']}; "
                     "later epochs wait; `fleetproof run` retries it")  # fmt: skip
    if d["epochs_not_exported"]:
        e = d["epochs_not_exported"]
        lines.append(f"  {len(e)} processed epoch(s) not exported yet ({e[0]} .. {e[-1]}); `fleetproof run` writes them")
    for h in hours:
        if h["status"] != "ingested":
            lines.append(f"  REJECTED {h['hour']}: {h['reason']}")
    for a in d["rejected_deliveries"]:
        if any(h["hour"] == a["hour"] and h["status"] == "ingested" for h in hours):
            lines.append(f"  a later delivery of {a['hour']} was rejected (earlier data kept): {a['reason']}")
    if d["quarantine"]:
        lines.append("quarantine (hour, feed, file, level, count, example reason):")
        for q in d["quarantine"]:
            lines.append(f"  {q['hour']} {q['feed'] or '-'} {q['file']} {q['level']} x{q['count']}: {q['example']}")
    return "\n".join(lines)
