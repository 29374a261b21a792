"""Write the signed public release of one epoch: ``<release>/<table>/epoch=<epoch>/part-0.parquet``.

Per epoch: pseudonymize every table in SQL, rewrite free text, write Parquet atomically, scan
the epoch's files for any raw identifier (refusing to publish, and removing them, on a hit),
then write and sign the manifest. Re-running an epoch replaces it whole.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from pipelines.contract import HOUR_RE
from pipelines.release import manifest, privacy, pseudonymize
from pipelines.release.tables import IDENTIFIERS_SQL, TABLES
from pipelines.rewards_policy import SCALE, RewardsPolicy

LOOKBACK_HOURS = 24 * 31
"""Hardware identifiers older than this are not looked for in an epoch's free text."""


@dataclass(frozen=True)
class EpochRelease:
    epoch: str
    season: str
    rows: dict[str, int]
    manifest: Path


def query(con: duckdb.DuckDBPyConnection, sql: str, params: dict) -> pl.DataFrame:
    return pl.from_arrow(con.sql(sql, params=params).to_arrow_table())  # type: ignore[return-value]


def identifiers(con: duckdb.DuckDBPyConnection, epoch: str, keyed_wallets: bool) -> pl.DataFrame:
    """``kind, value, replacement`` for every raw identifier the epoch could mention (macros registered)."""
    return query(con, IDENTIFIERS_SQL, {"epoch": epoch, "lookback": LOOKBACK_HOURS, "keyed_wallets": keyed_wallets})


def _policy_parameters(con: duckdb.DuckDBPyConnection, epoch: str, rewards: RewardsPolicy) -> dict:
    version = rewards.at(epoch)
    paid = con.execute("SELECT policy_version FROM epoch_pools WHERE epoch = ?", [epoch]).fetchall()
    if paid and paid[0][0] != version.id:
        raise ValueError(f"{epoch} was paid under reward policy {paid[0][0]}, but the policy file has {version.id} "
                         "in force there: release with the policy file that paid it")  # fmt: skip
    return {"scale": SCALE, "operator_share_bp4": version.operator_share, "hired_bonus_bp4": version.hired_bonus,
            "min_up": version.min_continuous_uptime_hours, "stake_required": version.stake_required,
            "probation": version.probation, "standard": version.standard}  # fmt: skip


def _write_parquet(frame: pl.DataFrame, final: Path) -> None:
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.tmp")
    frame.write_parquet(tmp, compression="zstd", statistics=True)
    os.replace(tmp, final)


def _remove_epoch(root: Path, epoch: str) -> None:
    for folder in root.glob(f"*/epoch={epoch}"):
        shutil.rmtree(folder)
    for path in (manifest.descriptor_path(root, epoch), manifest.signature_path(root, epoch)):
        path.unlink(missing_ok=True)


def write_epoch(
    con: duckdb.DuckDBPyConnection,
    root: str | Path,
    epoch: str,
    secret: bytes,
    signing_key: Ed25519PrivateKey,
    rewards: RewardsPolicy,
    policy: pseudonymize.ReleasePolicy,
) -> EpochRelease:
    """Publish one processed epoch (see the module docstring)."""
    if not HOUR_RE.match(epoch):
        raise ValueError(f"not an epoch: {epoch!r}")
    if not con.execute("SELECT 1 FROM processed_epochs WHERE epoch = ?", [epoch]).fetchall():
        raise ValueError(f"epoch {epoch} has not been processed by `fleetproof run`; nothing to release")
    root = Path(root)
    season = policy.season_at(epoch)
    pseudonymize.register(con, pseudonymize.season_key(secret, season.id), policy.wallets)
    ids = identifiers(con, epoch, policy.wallets == "keyed")
    params = _policy_parameters(con, epoch, rewards)
    _remove_epoch(root, epoch)
    files, rows = {}, {}
    for table, sql in TABLES.items():
        args = {"epoch": epoch, **(params if table == "reward_pool" else {})}
        frame = privacy.rewrite_text(query(con, sql, args), ids)
        path = root / table / f"epoch={epoch}" / "part-0.parquet"
        _write_parquet(frame, path)
        files[table], rows[table] = path, frame.height
    leaks = privacy.scan_release(root, ids, [path.parent for path in files.values()])
    if leaks:
        _remove_epoch(root, epoch)
        kinds = sorted({f.kind for f in leaks})
        raise ValueError(f"release of {epoch} would publish {len(leaks)} raw identifier(s) ({', '.join(kinds)}), "
                         f"first in {leaks[0].file}; nothing was published")  # fmt: skip
    version = con.execute("SELECT policy_version FROM epoch_pools WHERE epoch = ?", [epoch]).fetchall()
    meta = {"season": season.id, "wallets": policy.wallets, "reward_policy_version": version[0][0] if version else None}
    path = manifest.write_manifest(root, epoch, files, meta, signing_key)
    return EpochRelease(epoch, season.id, rows, path)


def processed_epochs(con: duckdb.DuckDBPyConnection, epoch_from: str | None, epoch_to: str | None) -> list[str]:
    rows = con.execute(
        "SELECT epoch FROM processed_epochs WHERE epoch >= coalesce(?, '') AND epoch <= coalesce(?, '9999') ORDER BY epoch",
        [epoch_from, epoch_to],
    ).fetchall()
    return [r[0] for r in rows]
