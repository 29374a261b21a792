"""``fleetproof status``: what came in, what was rejected or quarantined, and why."""

from __future__ import annotations

import json
from pathlib import Path

from pipelines.db import connect


def status_data(db: str | Path) -> dict:
    with connect(db) as con:
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
    return {
        "hours": [dict(zip(("hour", "status", "reason", "rows_in", "rows_landed", "rows_quarantined"), h)) for h in hours],
        "quarantine": [dict(zip(("hour", "feed", "file", "level", "kind", "count", "example"), r)) for r in reasons],
        "rejected_deliveries": [dict(zip(("hour", "status", "reason", "attempted_at"), (*a[:3], str(a[3])))) for a in attempts],
        "epochs": {"processed": epochs[0], "first": epochs[1], "last": epochs[2]},
        "latest_tiers": dict(tiers),
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
