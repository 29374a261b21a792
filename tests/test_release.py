"""The public release: signed, verifiable, readable without project code, private, recomputable."""

from __future__ import annotations

import atexit
import base64
import functools
import hashlib
import hmac
import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd
import polars as pl
import pytest

from pipelines.cli import main
from pipelines.db import connect
from pipelines.release import manifest, privacy, pseudonymize
from pipelines.release.recompute import recompute_allocations
from pipelines.release.writer import identifiers

EPOCHS = 7


@dataclass(frozen=True)
class Released:
    root: Path
    drops: Path
    db: Path
    release: Path
    keys: Path

    @property
    def public_key(self) -> Path:
        return self.keys / "release_signing.pub"

    @property
    def secret(self) -> bytes:
        return pseudonymize.read_secret(self.keys / "release_secret.hex")

    def epochs(self) -> list[str]:
        return manifest.release_epochs(self.release)


@functools.cache
def released_network() -> Released:
    """300 devices x 7 hours, run and released once per test process (read-only: copy to edit)."""
    root = Path(tempfile.mkdtemp(prefix="fp-release-"))
    atexit.register(shutil.rmtree, root, True)
    r = Released(root, root / "drops", root / "fp.duckdb", root / "release", root / "keys")
    assert main(["simulate", "--out", str(r.drops), "--devices", "300", "--hours", str(EPOCHS), "--seed", "5"]) == 0
    assert main(["run", "--drops", str(r.drops), "--db", str(r.db), "--out", str(root / "out")]) == 0
    assert main(["release", "keygen", "--out", str(r.keys)]) == 0
    assert main(["release", "--db", str(r.db), "--out", str(r.release), "--secret", str(r.keys / "release_secret.hex"),
                 "--signing-key", str(r.keys / "release_signing.pem")]) == 0  # fmt: skip
    return r


@pytest.fixture(scope="module")
def rel() -> Released:
    return released_network()


@pytest.fixture
def release_copy(rel: Released, tmp_path: Path) -> Path:
    dest = tmp_path / "release"
    shutil.copytree(rel.release, dest)
    return dest


def _verify(release: Path, key: Path) -> tuple[int, str]:
    import contextlib
    import io

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(["release", "verify", str(release), "--key", str(key)])
    return code, err.getvalue()


def test_release_writes_every_table_per_epoch_and_verifies(rel: Released) -> None:
    assert rel.epochs() == [f"2024-08-14T{h:02d}" for h in range(EPOCHS)]
    for table in ("pow_challenges", "uptime", "hardware", "device_tiers", "sybil_clusters", "reward_inputs",
                  "reward_allocations", "held_settlements", "slashing_events", "stake_positions", "reward_pool"):  # fmt: skip
        assert len(list(rel.release.glob(f"{table}/epoch=*/part-0.parquet"))) == EPOCHS, table
    assert _verify(rel.release, rel.public_key) == (0, "")


def test_manifest_is_a_frictionless_data_package_with_hashes_and_rows(rel: Released) -> None:
    import json

    epoch = rel.epochs()[-1]
    desc = json.loads(manifest.descriptor_path(rel.release, epoch).read_text())
    assert desc["$schema"] == manifest.PROFILE
    res = {r["name"]: r for r in desc["resources"]}
    tiers = res["device_tiers"]
    path = rel.release / tiers["path"]
    assert tiers["hash"] == "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()
    assert tiers["rows"] == pl.read_parquet(path).height > 0
    assert {f["name"]: f["type"] for f in tiers["schema"]["fields"]}["fraud_types"] == "array"
    assert desc["fleetproof"]["reward_policy_version"] == "2024-08"


def test_verify_fails_clearly_on_a_flipped_byte(rel: Released, release_copy: Path) -> None:
    target = next(release_copy.glob("hardware/epoch=2024-08-14T03/part-0.parquet"))
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0x01
    target.write_bytes(bytes(data))
    code, err = _verify(release_copy, rel.public_key)
    assert code == 1
    assert "2024-08-14T03: file hardware/epoch=2024-08-14T03/part-0.parquet was changed" in err


def test_verify_fails_clearly_on_a_missing_file(rel: Released, release_copy: Path) -> None:
    (release_copy / "device_tiers" / "epoch=2024-08-14T05" / "part-0.parquet").unlink()
    code, err = _verify(release_copy, rel.public_key)
    assert code == 1 and "file device_tiers/epoch=2024-08-14T05/part-0.parquet is missing" in err


def test_verify_fails_clearly_on_a_wrong_key_and_on_an_edited_manifest(rel: Released, release_copy: Path, tmp_path: Path) -> None:
    manifest.generate_keys(tmp_path / "other")
    code, err = _verify(release_copy, tmp_path / "other" / "release_signing.pub")
    assert code == 1 and "signature does not verify with key" in err
    desc = manifest.descriptor_path(release_copy, "2024-08-14T01")
    desc.write_text(desc.read_text().replace('"rows": ', '"rows": 1', 1))
    code, err = _verify(release_copy, rel.public_key)
    assert code == 1 and "2024-08-14T01: the manifest's signature does not verify" in err
    assert "2024-08-14T00" not in err


def test_verify_rejects_a_file_slipped_into_an_epoch(rel: Released, release_copy: Path) -> None:
    shutil.copy(
        release_copy / "uptime/epoch=2024-08-14T02/part-0.parquet", release_copy / "uptime/epoch=2024-08-14T02/extra.parquet"
    )
    code, err = _verify(release_copy, rel.public_key)
    assert code == 1 and "uptime/epoch=2024-08-14T02/extra.parquet is not in the manifest" in err


def test_duckdb_polars_and_pandas_read_the_release_without_project_code(rel: Released) -> None:
    pattern = f"{rel.release}/device_tiers/*/part-0.parquet"
    via_duckdb = duckdb.sql(f"SELECT count(*), count(DISTINCT epoch) FROM read_parquet('{pattern}')").fetchall()[0]
    via_polars = pl.read_parquet(pattern)
    via_pandas = pd.concat(pd.read_parquet(p) for p in sorted(rel.release.glob("device_tiers/*/part-0.parquet")))
    assert via_duckdb == (via_polars.height, EPOCHS) and len(via_pandas) == via_polars.height
    pow_ = pl.read_parquet(f"{rel.release}/pow_challenges/*/part-0.parquet")
    assert pow_["seed"].dtype == pl.UInt64 and pow_["samples_bad"].sum() > 0
    assert pd.read_parquet(next(rel.release.glob("reward_allocations/*/part-0.parquet")))["amount_base_units"].dtype == "int64"


def test_sql_pseudonyms_are_hmac_sha256_under_the_season_key(catalogue_con) -> None:
    key = pseudonymize.season_key(b"s" * 32, "2024-H2")
    pseudonymize.register(catalogue_con, key)
    got = catalogue_con.execute("SELECT pseudo('device', 'dev_1'), pseudo('gpu', 'GPU-x'), ip_prefix('10.1.2.3'), "
                                "ip_prefix('2001:db8:aa::1'), ip_prefix('::1'), email_class('a@gmail.com'), "
                                "email_class('x@corp.example'), email_domain('a@gmail.com')").fetchall()[0]  # fmt: skip
    expected = "d-" + hmac.new(key, b"device:dev_1", hashlib.sha256).hexdigest()[:20]
    assert got == (expected, pseudonymize.pseudonym(key, "gpu", "GPU-x"), "10.1.2.0/24", "2001:db8:aa::/48", "0:0:0::/48",
                   "free_mail", "own_domain", None)  # fmt: skip
    assert pseudonymize.pseudonym(pseudonymize.season_key(b"s" * 32, "2025-H1"), "device", "dev_1") != expected
    assert catalogue_con.execute("SELECT wallet_out('W1')").fetchall()[0][0] == "W1"
    pseudonymize.register(catalogue_con, key, wallets="keyed")
    assert catalogue_con.execute("SELECT wallet_out('W1')").fetchall()[0][0] == pseudonymize.pseudonym(key, "wallet", "W1")


def test_an_ipv6_sites_64_quoted_in_evidence_is_published_as_the_addresss_48(catalogue_con) -> None:
    """Detectors and the sybil graph name an IPv6 LAN by its /64 (``ip_site``), which no device
    reports as such: a reason quoting it would pass the raw-identifier rewrite, and the /64 is
    finer than the /48 a release publishes."""
    pseudonymize.register(catalogue_con, pseudonymize.season_key(b"s" * 32, "2024-H2"))
    catalogue_con.execute(
        "INSERT INTO hardware (ts, device_id, account_id, ip, _hour, _file, _row) VALUES "
        "(TIMESTAMP '2024-08-14 05:10:00', 'dev_1', 'acc_1', '2001:db8:aa:17:1c2d::9', '2024-08-14T05', 'h.csv', 1)"
    )
    catalogue_con.execute(
        "INSERT INTO accounts VALUES ('acc_2', TIMESTAMP '2024-08-01 10:00:00', 'b@x.org', 'W2', '2001:db8:bb:3::7', NULL, "
        "'2024-08-14T00', 'a.csv', 1)"
    )
    ids = identifiers(catalogue_con, "2024-08-14T05", keyed_wallets=False)
    reasons = pl.DataFrame({"reason": ["one address held in turn (2001:db8:aa:17::/64); signup_ip 2001:db8:bb:3::/64"]})
    assert (
        privacy.rewrite_text(reasons, ids)["reason"][0]
        == "one address held in turn (2001:db8:aa::/48); signup_ip 2001:db8:bb::/48"
    )


def test_pseudonyms_are_stable_within_a_season_and_keep_the_signals(rel: Released) -> None:
    hw = pl.read_parquet(f"{rel.release}/hardware/*/part-0.parquet")
    per_device = hw.group_by("device_id").agg(pl.col("gpu_uuid").n_unique(), pl.col("epoch").n_unique())
    assert per_device["epoch"].max() == EPOCHS  # the same pseudonym in every hour of the season
    truth = pl.read_parquet(rel.drops / "_truth" / "devices.parquet")
    key = pseudonymize.season_key(rel.secret, "2024-H2")
    dup = set(truth.filter(pl.col("fraud_types").list.contains("duplicate_hardware"))["device_id"])
    dup_pseudo = {pseudonymize.pseudonym(key, "device", d) for d in dup}
    shared = hw.group_by("epoch", "gpu_uuid").agg(pl.col("device_id").n_unique().alias("n")).filter(pl.col("n") > 1)
    sharing = set(hw.join(shared, on=["epoch", "gpu_uuid"])["device_id"])
    assert dup_pseudo and dup_pseudo <= sharing  # duplicate hardware is still visible from the release


def test_no_raw_identifier_anywhere_in_the_release(rel: Released) -> None:
    with connect(rel.db) as con:
        pseudonymize.register(con, b"k" * 32)
        raw = identifiers(con, rel.epochs()[-1], keyed_wallets=False)
    assert set(raw["kind"]) >= {"device", "account", "host", "gpu", "serial", "ip", "email"}
    assert privacy.scan_release(rel.release, raw) == []


def test_privacy_scan_finds_a_planted_identifier_in_compressed_parquet(rel: Released, tmp_path: Path) -> None:
    raw = pl.DataFrame({"kind": ["gpu", "email"], "value": ["GPU-aaaa-planted", "someone@corp.example"]})
    pl.DataFrame({"x": ["ok", "see GPU-aaaa-planted here"] * 500}).write_parquet(tmp_path / "a.parquet", compression="zstd")
    (tmp_path / "b.json").write_text('{"contact": "other@mail.example"}')
    found = {(f.file, f.kind) for f in privacy.scan_release(tmp_path, raw)}
    assert ("a.parquet", "gpu") in found and ("b.json", "email") in found


def test_email_shapes_in_compressed_bytes_are_chance_but_in_values_are_found(tmp_path: Path) -> None:
    """Compressed pages are random bytes where ``x@ab.cd`` turns up by chance (it did once in a
    simulated month); the shape is looked for in decoded values and text files, which still catch
    an email that leaks."""
    chance = int.from_bytes(b"k@ab.cd\x00", "little")  # a number whose stored bytes spell an address
    pl.DataFrame({"x": [chance] * 3}).write_parquet(tmp_path / "clean.parquet", compression="uncompressed")
    assert b"k@ab.cd" in (tmp_path / "clean.parquet").read_bytes()
    pl.DataFrame({"x": ["fine", "write to leak@mail.example"]}).write_parquet(tmp_path / "leak.parquet", compression="zstd")
    nothing_known = pl.DataFrame(schema={"kind": pl.String, "value": pl.String})
    found = {(f.file, f.where) for f in privacy.scan_release(tmp_path, nothing_known)}
    assert found == {("leak.parquet", "values")}


def test_join_back_with_the_simulators_identifiers_reidentifies_nobody_without_the_key(rel: Released) -> None:
    """Real IPs, emails, UUIDs, hosts and ids, raw or hashed without the key, match no released value."""
    with connect(rel.db) as con:
        pseudonymize.register(con, b"k" * 32)
        raw = identifiers(con, rel.epochs()[-1], keyed_wallets=False)
    values = raw["value"].to_list()
    guesses = set(values)
    for v in values:
        guesses |= {hashlib.sha256(v.encode()).hexdigest()[:20], hashlib.md5(v.encode()).hexdigest()}
        guesses |= {f"{p}-{hashlib.sha256(f'{k}:{v}'.encode()).hexdigest()[:20]}" for k, p in pseudonymize.KINDS.items()}
    released: set[str] = set()
    for path in rel.release.glob("*/epoch=*/part-0.parquet"):  # every string value of every table
        frame = pl.read_parquet(path)
        for name, dtype in frame.schema.items():
            if dtype == pl.String:
                released |= set(frame[name].drop_nulls().unique())
            elif dtype == pl.List(pl.String):
                released |= set(frame[name].explode().drop_nulls().unique())
    assert len(released) > 5000
    assert not released & guesses
    key = pseudonymize.season_key(rel.secret, "2024-H2")  # with the key the operator can (the control)
    devices = raw.filter(pl.col("kind") == "device")["value"].to_list()
    assert len({pseudonymize.pseudonym(key, "device", d) for d in devices} & released) >= 290


def test_rewards_recompute_from_the_release_alone_byte_for_byte(rel: Released) -> None:
    paid_epochs = [
        e for e in rel.epochs() if pl.read_parquet(rel.release / f"reward_allocations/epoch={e}/part-0.parquet").height
    ]
    assert paid_epochs
    for epoch in paid_epochs:
        published = rel.release / f"reward_allocations/epoch={epoch}/part-0.parquet"
        again = recompute_allocations(rel.release, epoch)
        assert again.equals(pl.read_parquet(published)), epoch
    # and the published table is the database's own, identifier for identifier
    epoch = paid_epochs[-1]
    key = pseudonymize.season_key(rel.secret, "2024-H2")
    with connect(rel.db) as con:
        internal = con.execute("SELECT device_id, account_id, wallet, amount_base_units, weight, CAST(components AS VARCHAR) "
                               "FROM reward_allocations WHERE epoch = ?", [epoch]).fetchall()  # fmt: skip
    mapped = sorted((pseudonymize.pseudonym(key, "device", d), pseudonymize.pseudonym(key, "account", a), w, amt, wt, c)
                    for d, a, w, amt, wt, c in internal)  # fmt: skip
    again = recompute_allocations(rel.release, epoch)
    assert sorted(again.drop("epoch").rows()) == mapped
    assert (
        again["amount_base_units"].sum()
        == pl.read_parquet(rel.release / f"reward_pool/epoch={epoch}/part-0.parquet")["pool_units"][0]
    )


def test_a_release_written_before_the_standard_column_recomputes_standard_devices_as_paid(rel: Released, tmp_path: Path) -> None:
    epoch = next(e for e in rel.epochs() if pl.read_parquet(rel.release / f"reward_allocations/epoch={e}/part-0.parquet").height)
    for table in ("reward_pool", "reward_inputs", "stake_positions"):
        (tmp_path / table / f"epoch={epoch}").mkdir(parents=True)
        frame = pl.read_parquet(rel.release / f"{table}/epoch={epoch}/part-0.parquet")
        frame.drop("standard" if table == "reward_pool" else []).write_parquet(
            tmp_path / table / f"epoch={epoch}" / "part-0.parquet"
        )
    tiers = dict(pl.read_parquet(rel.release / f"reward_inputs/epoch={epoch}/part-0.parquet").select("device_id", "tier").rows())
    now, before = recompute_allocations(rel.release, epoch), recompute_allocations(tmp_path, epoch)
    status = {d: json.loads(c)["status"] for d, c in before.select("device_id", "components").rows()}
    held = {d: json.loads(c)["status"] for d, c in now.select("device_id", "components").rows()}
    standard = [d for d in status if tiers[d] == "standard"]
    assert standard and {status[d] for d in standard} == {"paid"} and {held[d] for d in standard} == {"held"}
    assert before["amount_base_units"].to_list() == now["amount_base_units"].to_list()  # status only, never amounts


def test_a_release_that_would_leak_is_refused_and_removed(rel: Released, tmp_path: Path, monkeypatch) -> None:
    from pipelines.release import tables

    leaky = {**tables.TABLES, "hardware": tables.TABLES["hardware"].replace("ip_prefix(ip) AS ip_prefix", "ip AS ip_prefix")}
    monkeypatch.setattr("pipelines.release.writer.TABLES", leaky)
    monkeypatch.setattr("pipelines.release.privacy.rewrite_text", lambda frame, ids: frame)  # no safety net but the scan
    db = tmp_path / "db.duckdb"
    shutil.copy(rel.db, db)
    code = main(["release", "--db", str(db), "--out", str(tmp_path / "rel"), "--secret", str(rel.keys / "release_secret.hex"),
                 "--signing-key", str(rel.keys / "release_signing.pem"), "--from", "2024-08-14T02", "--to", "2024-08-14T02"])  # fmt: skip
    assert code == 2
    assert not list((tmp_path / "rel").glob("*/epoch=2024-08-14T02/*")) and not list((tmp_path / "rel").glob("*.json"))


def test_signature_file_is_base64_ed25519_over_the_manifest_bytes(rel: Released) -> None:
    epoch = rel.epochs()[0]
    sig = base64.b64decode(manifest.signature_path(rel.release, epoch).read_bytes().strip())
    manifest.load_public_key(rel.public_key).verify(sig, manifest.descriptor_path(rel.release, epoch).read_bytes())


def test_dagster_public_release_asset_publishes_one_signed_epoch(rel: Released, tmp_path: Path, monkeypatch) -> None:
    from dagster import DagsterInstance, materialize

    from dagster_project.defs.partitions import hours
    from dagster_project.defs.release import public_release
    from dagster_project.defs.resources import FleetproofStore

    db = tmp_path / "db.duckdb"
    shutil.copy(rel.db, db)
    monkeypatch.setenv("FLEETPROOF_RELEASE_SECRET", (rel.keys / "release_secret.hex").read_text().strip())
    monkeypatch.setenv("FLEETPROOF_RELEASE_SIGNING_KEY", str(rel.keys / "release_signing.pem"))
    monkeypatch.setenv("FLEETPROOF_RELEASE_DIR", str(tmp_path / "release"))
    store = FleetproofStore(drops_dir=str(rel.drops), db_path=str(db), out_dir=str(tmp_path / "out"))
    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(hours.name, ["2024-08-14T05"])
    result = materialize([public_release], partition_key="2024-08-14T05", resources={"store": store}, instance=instance)
    assert result.success
    assert manifest.verify_release(tmp_path / "release", manifest.load_public_key(rel.public_key)) == ["2024-08-14T05"]
    published = tmp_path / "release" / "reward_allocations" / "epoch=2024-08-14T05" / "part-0.parquet"
    assert published.read_bytes() == (rel.release / "reward_allocations" / "epoch=2024-08-14T05" / "part-0.parquet").read_bytes()
