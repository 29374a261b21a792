"""``fleetproof bounty submit``: the automatic checks a report goes through, each decision kept.

In order: JSON Schema; the reporter's rate limit (reports received in the last 24 hours,
rejected ones included); the cited epochs are in the release and it verifies with the published
key; every device id exists in those epochs; duplicates (a device another report already
claimed for the same fraud type; the first report by receipt time keeps it); overlap with the
pipeline's own verdicts (shown; devices already under a verdict earn nothing); coherence (the
claimed group must be tied together by the signals it cites, per the release). A report that
passes waits for a person (``review``). Every step writes a row to ``bounty_decisions``.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import jsonschema

from pipelines.catalogue import DATA_DIR
from pipelines.release import manifest
from pipelines.rewards_policy import bp4

SCHEMA_PATH = Path(__file__).with_name("report.schema.json")
DEFAULT_BOUNTY_POLICY = DATA_DIR / "policy" / "bounty.toml"

BOUNTY_SCHEMA_SQL = """
CREATE TABLE IF NOT EXISTS bounty_reports (
    report_id VARCHAR PRIMARY KEY,
    reporter VARCHAR,
    reward_wallet VARCHAR,
    received_at TIMESTAMP NOT NULL,
    fraud_type VARCHAR,
    epochs VARCHAR[],
    devices VARCHAR[],                  -- as reported (pseudonyms)
    credited_devices VARCHAR[],         -- new, not yet claimed nor under a verdict
    report JSON NOT NULL,
    status VARCHAR NOT NULL,            -- rejected | queued | accepted | dismissed
    reason VARCHAR NOT NULL
);
CREATE TABLE IF NOT EXISTS bounty_decisions (
    report_id VARCHAR NOT NULL,
    decided_at TIMESTAMP NOT NULL,
    step VARCHAR NOT NULL,
    outcome VARCHAR NOT NULL,           -- pass | reject | note | accept | dismiss | pay
    reason VARCHAR NOT NULL
);
CREATE TABLE IF NOT EXISTS bounty_payouts (
    report_id VARCHAR NOT NULL,
    reward_wallet VARCHAR NOT NULL,
    stopped_base_units BIGINT NOT NULL,  -- rewards the credited devices lost in the report's epochs
    share_bp4 BIGINT NOT NULL,
    amount_base_units BIGINT NOT NULL,   -- floor(stopped x share)
    paid_at TIMESTAMP NOT NULL
);
"""


@dataclass(frozen=True)
class BountyPolicy:
    share_bp4: int
    max_reports_per_day: int
    min_coherence: float
    max_devices: int


def load_bounty_policy(path: str | Path | None = None) -> BountyPolicy:
    raw = tomllib.loads(Path(path or DEFAULT_BOUNTY_POLICY).read_text())
    policy = BountyPolicy(
        bp4(raw["share"]), int(raw["max_reports_per_day"]), float(raw["min_coherence"]), int(raw["max_devices"])
    )
    if not 0 <= policy.share_bp4 <= 10_000 or policy.max_reports_per_day < 1 or not 0 < policy.min_coherence <= 1:
        raise ValueError("bounty policy: share in 0..1, max_reports_per_day >= 1, min_coherence in (0, 1]")
    return policy


@dataclass(frozen=True)
class Decision:
    report_id: str
    status: str
    reason: str
    steps: list[tuple[str, str, str]]  # (step, outcome, reason)


class _Rejected(Exception):
    def __init__(self, step: str, reason: str):
        super().__init__(reason)
        self.step, self.reason = step, reason


SIGNAL_CTES = """
WITH hw AS (SELECT * FROM read_parquet($hardware)),
acc AS (SELECT account_id, arg_max(COLUMNS(* EXCLUDE (account_id)), epoch) FROM read_parquet($accounts) GROUP BY account_id),
dev_acc AS (SELECT DISTINCT device_id, account_id FROM hw),
claimed AS (SELECT unnest($devices::VARCHAR[]) AS device_id),
vals(device_id, signal, value) AS (
    SELECT device_id, 'gpu_uuid', gpu_uuid FROM hw UNION SELECT device_id, 'gpu_serial', gpu_serial FROM hw
    UNION SELECT device_id, 'host_fingerprint', host_fingerprint FROM hw UNION SELECT device_id, 'ip_prefix', ip_prefix FROM hw
    UNION SELECT device_id, 'account_id', account_id FROM hw
    UNION SELECT d.device_id, 'email_domain', a.email_domain FROM dev_acc d JOIN acc a USING (account_id)
    UNION SELECT d.device_id, 'signup_ip_prefix', a.signup_ip_prefix FROM dev_acc d JOIN acc a USING (account_id)
    UNION SELECT d.device_id, 'referrer_account_id', a.referrer_account_id FROM dev_acc d JOIN acc a USING (account_id)
    UNION SELECT device_id, 'funder_wallet', funder_wallet FROM read_parquet($stakes) WHERE device_id IS NOT NULL
    UNION SELECT device_id, 'failed_samples', 'failed' FROM read_parquet($pow) WHERE samples_bad > 0
),
mine AS (SELECT v.* FROM vals v JOIN claimed USING (device_id) WHERE v.value IS NOT NULL AND list_contains($signals::VARCHAR[], v.signal)),
shared AS (  -- a device is tied in by a signal when another claimed device has the same value (failed_samples: its own)
    SELECT DISTINCT a.device_id, a.signal FROM mine a
    WHERE a.signal = 'failed_samples'
       OR EXISTS (SELECT 1 FROM mine b WHERE b.signal = a.signal AND b.value = a.value AND b.device_id <> a.device_id)
)
"""
PER_SIGNAL_SQL = (
    SIGNAL_CTES
    + """
SELECT s.signal, count(DISTINCT sh.device_id) AS devices
FROM (SELECT unnest($signals::VARCHAR[]) AS signal) s LEFT JOIN shared sh USING (signal)
GROUP BY s.signal ORDER BY s.signal
"""
)
TIED_SQL = SIGNAL_CTES + "SELECT count(DISTINCT device_id) FROM shared"


def _files(release: Path, table: str, epochs: list[str] | None) -> list[str]:
    paths = sorted(release.glob(f"{table}/epoch=*/part-0.parquet"))
    if epochs is not None:
        paths = [p for p in paths if p.parent.name.removeprefix("epoch=") in epochs]
    return [str(p) for p in paths]


def coherence(release: Path, epochs: list[str], devices: list[str], signals: list[str]) -> tuple[float, dict[str, int]]:
    """Share of ``devices`` tied to the group by at least one cited signal, and per signal how many."""
    con = duckdb.connect()
    try:
        params = {"hardware": _files(release, "hardware", epochs), "accounts": _files(release, "accounts", None),
                  "stakes": _files(release, "stake_events", None), "pow": _files(release, "pow_challenges", epochs),
                  "devices": devices, "signals": signals}  # fmt: skip
        per_signal = dict(con.execute(PER_SIGNAL_SQL, params).fetchall())
        tied = con.execute(TIED_SQL, params).fetchall()[0][0]
    finally:
        con.close()
    return tied / len(devices), per_signal


def _tiers(release: Path, epochs: list[str], devices: list[str]) -> tuple[set[str], dict[str, str]]:
    """The devices present in the epochs, and the verdict (tier and types) of those already flagged."""
    files = _files(release, "device_tiers", epochs)
    if not files:
        return set(), {}
    rows = duckdb.sql(
        "SELECT device_id, string_agg(DISTINCT tier || ' (' || array_to_string(fraud_types, ', ') || ')', '; ' "
        "ORDER BY tier || ' (' || array_to_string(fraud_types, ', ') || ')') "
        "FILTER (tier IN ('rejected', 'probation')) FROM read_parquet($files) WHERE list_contains($devices, device_id) GROUP BY device_id",
        params={"files": files, "devices": devices},
    ).fetchall()
    return {r[0] for r in rows}, {r[0]: r[1] for r in rows if r[1]}


def _new_report_id(con: duckdb.DuckDBPyConnection, received_at: datetime) -> str:
    n = con.execute("SELECT count(*) FROM bounty_reports").fetchall()[0][0]
    return f"br-{received_at:%Y%m%d%H%M%S}-{n + 1:05d}"


def _checks(con, report: dict, received_at: datetime, release: Path, public_key, policy: BountyPolicy, steps: list) -> list[str]:
    """Run every automatic check; returns the devices to credit, or raises ``_Rejected``."""
    errors = sorted(jsonschema.Draft202012Validator(json.loads(SCHEMA_PATH.read_text())).iter_errors(report), key=str)
    if errors:
        where = "/".join(str(p) for p in errors[0].absolute_path) or "report"
        raise _Rejected("schema", f"the report does not follow the schema: {where}: {errors[0].message}")
    steps.append(("schema", "pass", "the report follows the schema"))
    recent = con.execute("SELECT count(*) FROM bounty_reports WHERE reporter = ? AND received_at > ? AND received_at <= ?",
                         [report["reporter"], received_at - timedelta(hours=24), received_at]).fetchall()[0][0]  # fmt: skip
    if recent >= policy.max_reports_per_day:
        raise _Rejected("rate_limit", f"{report['reporter']} already sent {recent} report(s) in the last 24 hours "
                                      f"(limit {policy.max_reports_per_day}); send the rest later")  # fmt: skip
    steps.append(("rate_limit", "pass", f"report {recent + 1} of {policy.max_reports_per_day} allowed in 24 hours"))
    epochs = sorted(report["epochs"])
    try:
        manifest.verify_release(release, public_key, epochs)
    except manifest.ReleaseVerificationError as e:
        raise _Rejected("release", f"the cited epochs are not in a verified release: {e}") from None
    steps.append(("release", "pass", f"epochs {epochs[0]}..{epochs[-1]} are in the release and verify"))
    devices = report["devices"]
    if len(devices) > policy.max_devices:
        raise _Rejected("ids", f"{len(devices)} devices; at most {policy.max_devices} per report")
    present, flagged = _tiers(release, epochs, devices)
    unknown = sorted(set(devices) - present)
    if unknown:
        raise _Rejected(
            "ids", f"{len(unknown)} device id(s) are not in the release for the cited epochs: {', '.join(unknown[:10])}"
        )
    steps.append(("ids", "pass", f"all {len(devices)} device ids exist in the cited epochs"))
    earlier = con.execute(
        "SELECT report_id, list_intersect(credited_devices, $devices::VARCHAR[]) FROM bounty_reports "
        "WHERE fraud_type = $type AND status IN ('queued', 'accepted') AND received_at <= $at "
        "AND len(list_intersect(credited_devices, $devices::VARCHAR[])) > 0 ORDER BY received_at",
        {"devices": devices, "type": report["fraud_type"], "at": received_at},
    ).fetchall()
    claimed = {d for _, ds in earlier for d in ds}
    if claimed:
        ids = ", ".join(r for r, _ in earlier)
        if claimed >= set(devices) - set(flagged):
            raise _Rejected(
                "duplicate",
                f"duplicate: every device was already reported as {report['fraud_type']} by {ids} (first reporter wins)",
            )
        steps.append(("duplicate", "note", f"{len(claimed)} device(s) already reported by {ids}: not credited to this report"))
    else:
        steps.append(("duplicate", "pass", "no earlier report claims these devices"))
    if flagged:
        shown = "; ".join(f"{d}: {v}" for d, v in sorted(flagged.items())[:10])
        steps.append(("verdicts", "note", f"{len(flagged)} device(s) already under a verdict, not credited: {shown}"))
    else:
        steps.append(("verdicts", "pass", "no device is under a verdict yet"))
    credited = sorted(set(devices) - claimed - set(flagged))
    if not credited:
        raise _Rejected("verdicts", "nothing new: every device is already under a verdict or claimed by an earlier report")
    share, per_signal = coherence(release, epochs, devices, report["signals"])
    detail = ", ".join(f"{s} ties {n} of {len(devices)}" for s, n in per_signal.items())
    if share < policy.min_coherence:
        raise _Rejected("coherence", f"the claimed group does not cohere on the signals it cites: {detail} "
                                     f"({share:.0%} tied in, {policy.min_coherence:.0%} needed)")  # fmt: skip
    steps.append(("coherence", "pass", f"{share:.0%} of the devices are tied in: {detail}"))
    return credited


def submit(
    con: duckdb.DuckDBPyConnection,
    report_path: str | Path,
    release: str | Path,
    public_key_path: str | Path,
    policy: BountyPolicy,
    received_at: datetime | None = None,
) -> Decision:
    """Receive one report: run the checks, store it with every decision, and return the outcome."""
    con.execute(BOUNTY_SCHEMA_SQL)
    received_at = received_at or datetime.now(UTC).replace(tzinfo=None)
    text = Path(report_path).read_text()
    try:
        report = json.loads(text)
    except json.JSONDecodeError as e:
        report, bad_json = {}, f"not JSON: {e}"
    else:
        bad_json = None if isinstance(report, dict) else "the report must be a JSON object"
    report_id = _new_report_id(con, received_at)
    steps: list[tuple[str, str, str]] = []
    credited: list[str] = []
    try:
        if bad_json:
            raise _Rejected("schema", bad_json)
        credited = _checks(con, report, received_at, Path(release), manifest.load_public_key(public_key_path), policy, steps)
        status, reason = "queued", f"passed the automatic checks; {len(credited)} device(s) would be credited; awaiting review"
    except _Rejected as r:
        steps.append((r.step, "reject", r.reason))
        status, reason = "rejected", r.reason
    con.execute(
        "INSERT INTO bounty_reports VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [report_id, str(report.get("reporter")) if report.get("reporter") else None, report.get("reward_wallet"), received_at,
         report.get("fraud_type"), list(report.get("epochs") or []) if isinstance(report.get("epochs"), list) else None,
         list(report.get("devices") or []) if isinstance(report.get("devices"), list) else None, credited,
         text if bad_json is None else json.dumps({"unparsed": text[:10000]}), status, reason],
    )  # fmt: skip
    con.executemany("INSERT INTO bounty_decisions VALUES (?, ?, ?, ?, ?)", [[report_id, received_at, *s] for s in steps])
    return Decision(report_id, status, reason, steps)
