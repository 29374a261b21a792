"""A network written to the same contract by another backend gives the same verdicts and the same
prices. The backends here are pandas (its own CSV, JSON and Parquet writers) and Python's csv and
json modules (CRLF, every field quoted, spaces in JSON, seeds as JSON strings), in every format
the contract allows, nullable integer columns as floats (``450.0``), timestamps as naive UTC
(``2024-08-14 07:00:01.468``), enumerations capitalized (``Linux``) and model names spelled as
older drivers and other tools do (``GEFORCE RTX 4090``). A third backend spells "no value" as
text: ``None`` in CSV (``str(None)``), ``""`` in JSON, and nvidia-smi's ``[N/A]`` for a serial or
UUID a card does not have; it also reports hardware three times an hour, writes rows in any
order and PoW samples as floats (``[7381.0, 6945.0, -1927.0]``, a worker's fp32 product). Some of these once cost every hardware report, every device's price,
or (``[N/A]`` read as one serial shared by every consumer card) most honest devices their stake.
A fourth sees every device over IPv6, each at its own privacy address in its LAN's /64, a new one
every hour: compared address by address, a machine's VMs were on different "IPs" and escaped.
A fifth writes as a JVM service with pynvml-fed workers: seeds as signed 64-bit integers, NVML's
integer virtualization modes, ``os`` as ``platform.system()`` names it (``Darwin``), CSV with a
byte-order mark, and 2% of the rows delivered twice (at-least-once delivery): each of these
once stopped a run at its first hour or left Macs unpaid, and here they come all at once. A
sixth writes honest people as another simulator would: emails from a few common names, and a
referral campaign (one influencer's link, thirty sign-ups in twenty minutes), coincidences that
a sybil detector must not read as a ring."""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from pipelines.cli import main
from pipelines.contract import FEEDS, Feed
from pipelines.ingest import REPEAT_REASON
from pipelines.simulate.scenario import HONEST_POPULATIONS

FORMATS = ("csv", "jsonl", "parquet", "csv.gz", "jsonl.gz")


def _as_pandas_would(df: pd.DataFrame) -> pd.DataFrame:
    """numpy dtypes, as a pandas backend has them: an integer column with a null is float64."""
    for column in df.columns:
        if df[column].dtype.kind in "iu" or str(df[column].dtype).startswith(("Int", "UInt")):
            if df[column].isna().any():
                df[column] = df[column].astype("float64")
    if "os" in df.columns:
        df["os"] = df["os"].str.capitalize()
    if "gpu_model" in df.columns:
        df["gpu_model"] = df["gpu_model"].str.replace("NVIDIA GeForce ", "GEFORCE ", regex=False)
    return df


def _spell_nulls(records: list[dict], feed: Feed, fmt: str) -> None:
    """Nulls as a backend that writes text for them: NVML's ``[N/A]`` for a missing identity,
    ``""`` in JSON, ``None`` in CSV."""
    for column in (c for c in feed.columns if c.nullable):
        spelling = "[N/A]" if column.nvml else "" if fmt.startswith("jsonl") else "None"
        for r in records:
            if r.get(column.name) is None:
                r[column.name] = spelling


def _reported_thrice(df: pd.DataFrame) -> pd.DataFrame:
    """Hardware reported three times an hour (the contract asks for at least once): copies 20
    and 40 minutes later, wrapped inside the hour."""
    start = df["ts"].dt.floor("h")
    copies = [df.assign(ts=start + (df["ts"] - start + pd.Timedelta(minutes=m)) % pd.Timedelta(hours=1)) for m in (20, 40)]
    return pd.concat([df, *copies], ignore_index=True)


def _stdlib_bytes(df: pd.DataFrame, fmt: str, spell_nulls: Feed | None = None, float_samples: bool = False) -> bytes:
    """What a backend using Python's own csv and json modules writes: CRLF line ends (the csv
    module's default), every CSV field quoted, ``json.dumps``' spaces (in ``samples`` too) and
    the 64-bit seed as a JSON string, as JavaScript-minded writers keep it. With
    ``spell_nulls``, that feed's nulls are written as text (``_spell_nulls``); with
    ``float_samples``, every number of a PoW sample as a float, as a worker keeping the fp32
    product in a float array writes them."""
    records = json.loads(df.to_json(orient="records", date_format="iso", date_unit="ms"))
    for r in records:
        if r.get("samples"):
            triples = json.loads(r["samples"])
            r["samples"] = json.dumps([[float(x) for x in t] for t in triples] if float_samples else triples)
    if "seed" in df.columns:
        for r, seed in zip(records, df["seed"].tolist(), strict=True):
            r["seed"] = str(seed)
    if spell_nulls is not None:
        _spell_nulls(records, spell_nulls, fmt)
    if fmt.startswith("jsonl"):
        return "".join(json.dumps(r) + "\n" for r in records).encode()
    text = io.StringIO()
    writer = csv.writer(text, quoting=csv.QUOTE_ALL)
    writer.writerow(df.columns)
    for r in records:
        writer.writerow(["" if r[c] is None else str(r[c]).lower() if isinstance(r[c], bool) else r[c] for c in df.columns])
    return text.getvalue().encode()


NVML_VIRTUALIZATION = {"NONE": 0, "PASSTHROUGH": 1, "VGPU": 2, "HOST_VGPU": 3, "HOST_VSGA": 4}
"""pynvml's ``nvmlDeviceGetVirtualizationMode`` values for the contract's names."""


def _as_the_jvm_would(df: pd.DataFrame, feed: str, turn: int) -> pd.DataFrame:
    """Seeds as signed 64-bit integers (two's complement: half of them negative), virtualization
    modes as pynvml's integers, ``os`` as ``platform.system()`` names it, and 2% of a keyed
    feed's rows sent twice, identical."""
    if "seed" in df.columns:
        df["seed"] = df["seed"].to_numpy(dtype="uint64").view("int64")
    if feed == "hardware":
        df["virtualization_mode"] = df["virtualization_mode"].map(NVML_VIRTUALIZATION).astype("Int64")
        df["os"] = df["os"].replace({"Macos": "Darwin"})
    if FEEDS[feed].key:
        df = pd.concat([df, df.sample(frac=0.02, random_state=turn)], ignore_index=True)
    return df


FIRST_NAMES = ("james", "mary", "john", "patricia", "robert", "jennifer", "michael", "linda", "david", "sarah")
LAST_NAMES = ("smith", "johnson", "williams", "brown", "jones", "garcia", "miller", "davis", "martinez", "lopez")


def _people(drops: Path) -> dict[str, dict]:
    """What changes per honest account when another simulator writes people: an email made of
    common names (``first.last``, ``firstlast1987``, ``flast``, ``first_last`` at the big
    providers, unique as providers make them), and for thirty of them one honest influencer as
    referrer and a sign-up in the same twenty minutes after the influencer's post."""
    truth = pd.read_parquet(drops / "_truth" / "accounts.parquet")
    honest = sorted(truth.loc[truth["cluster"].isna() & truth["population"].isin(HONEST_POPULATIONS), "account_id"])
    used: set[str] = set()
    people: dict[str, dict] = {}
    for k, account in enumerate(honest):
        h = int(hashlib.sha256(account.encode()).hexdigest(), 16)
        first, last = FIRST_NAMES[h % 10], LAST_NAMES[h // 10 % 10]
        provider = ("gmail.com", "gmail.com", "yahoo.com", "outlook.com", "icloud.com")[h // 100 % 5]
        local = (f"{first}.{last}", f"{first}{last}{1960 + h // 500 % 45}", f"{first[0]}{last}", f"{first}_{last}")[h // 500 % 4]
        email, n = f"{local}@{provider}", 2
        while email in used:
            email, n = f"{local}{n}@{provider}", n + 1
        used.add(email)
        people[account] = {"email": email}
        if 1 <= k <= 30:
            people[account] |= {
                "referrer_account_id": honest[0],
                "created_at": pd.Timestamp("2024-03-02 18:00:00") + pd.Timedelta(seconds=40 * k),
            }
    return people


def _as_people_write(df: pd.DataFrame, people: dict[str, dict]) -> pd.DataFrame:
    """``accounts`` with ``_people``'s emails, referrers and sign-up times."""
    for column in ("email", "referrer_account_id", "created_at"):
        new = df["account_id"].map(lambda a, c=column: people.get(a, {}).get(c))
        if column == "created_at":
            new = pd.to_datetime(new)
        df[column] = new.where(new.notna(), df[column])
    return df


def _ipv6(address: str | None, interface: str) -> str | None:
    """An IPv4 address's LAN as an IPv6 /64 (``2a02:a0b:c0d:1::/64`` for 10.11.12.13), and in it the
    address of ``interface``: without NAT every device, every VM too, has its own address there."""
    if address is None or ":" in address:
        return address
    a, b, c, d = (int(x) for x in address.split("."))
    h = hashlib.sha256(interface.encode()).hexdigest()
    return f"2a02:{a:02x}{b:02x}:{c:02x}{d:02x}:1:{h[0:4]}:{h[4:8]}:{h[8:12]}:{h[12:16]}"


def _on_ipv6(df: pd.DataFrame, feed: str, hour: str) -> pd.DataFrame:
    """Every address IPv6: each device its own privacy address in its LAN's /64, a new one every
    hour; sign-ups and other networks' listings at other addresses of the same /64."""
    if feed == "hardware":
        df["ip"] = [_ipv6(ip, f"{device}|{hour}") for ip, device in zip(df["ip"], df["device_id"], strict=True)]
    elif feed == "accounts":
        df["signup_ip"] = [_ipv6(ip, f"signup|{ip}") for ip in df["signup_ip"]]
    elif feed == "external_listings":
        df["ip"] = [_ipv6(ip, f"listing|{ip}") for ip in df["ip"]]
    return df


def _rewrite(db: Path, drops: Path, out: Path, writer: str = "pandas") -> None:
    """Every hour of ``drops`` again from the rows ``db`` ingested, written by ``writer`` (pandas;
    Python's csv and json modules with Parquet left to pandas; or those with nulls spelled as
    text, ``placeholders``; or pandas with every address IPv6, ``ipv6``; or pandas as a JVM
    service writes, ``jvm``: ``_as_the_jvm_would``, CSV with a byte-order mark; or pandas with
    honest people as another simulator writes them, ``people``), formats rotated."""
    con = duckdb.connect(str(db), read_only=True)
    people = _people(drops) if writer == "people" else {}
    turn = 0
    for hour in sorted(p for p in drops.iterdir() if p.name[:2] == "20"):
        folder = out / hour.name
        folder.mkdir(parents=True)
        files = {}
        for feed in FEEDS:
            if not list(hour.glob(f"{feed}.*")):
                continue
            columns = [r[0] for r in con.execute(f"DESCRIBE {feed}").fetchall() if not r[0].startswith("_")]
            df = _as_pandas_would(
                con.execute(f"SELECT {', '.join(columns)} FROM {feed} WHERE _hour = ? ORDER BY _file, _row", [hour.name]).df()
            )
            fmt = FORMATS[turn % len(FORMATS)]
            turn += 1
            df = _on_ipv6(df, feed, hour.name) if writer == "ipv6" else df
            df = _as_the_jvm_would(df, feed, turn) if writer == "jvm" else df
            df = _as_people_write(df, people) if writer == "people" and feed == "accounts" else df
            if writer == "placeholders":
                for column in (c.name for c in FEEDS[feed].columns if c.nvml):
                    df[column] = df[column].astype(object).where(df[column].notna(), "[N/A]")
                df = _reported_thrice(df) if feed == "hardware" else df
                df = df.sample(frac=1.0, random_state=turn)  # rows in the order workers finish
            if writer in ("stdlib", "placeholders") and not fmt.startswith("parquet"):
                placeholders = writer == "placeholders"
                raw = _stdlib_bytes(df, fmt, FEEDS[feed] if placeholders else None, float_samples=placeholders)
            elif fmt.startswith("csv"):
                raw = (("\ufeff" if writer == "jvm" else "") + df.to_csv(index=False)).encode()
            elif fmt.startswith("jsonl"):
                raw = df.to_json(orient="records", lines=True, date_format="iso", date_unit="ms").encode()
            else:
                buffer = io.BytesIO()
                df.to_parquet(buffer, index=False)
                raw = buffer.getvalue()
            raw = gzip.compress(raw, mtime=0) if fmt.endswith(".gz") else raw
            (folder / f"{feed}.{fmt}").write_bytes(raw)
            files[f"{feed}.{fmt}"] = {"rows": len(df), "sha256": hashlib.sha256(raw).hexdigest()}
        (folder / "_manifest.json").write_text(json.dumps({"hour": hour.name, "files": files}))
    con.close()


@pytest.mark.parametrize("writer", ["pandas", "stdlib", "placeholders", "ipv6", "jvm", "people"])
def test_a_network_written_by_another_backend_gives_the_same_verdicts_and_prices(
    small_drops: Path, tmp_path: Path, writer: str
) -> None:
    ours, theirs = tmp_path / "ours.duckdb", tmp_path / "theirs.duckdb"
    assert main(["run", "--drops", str(small_drops), "--db", str(ours), "--out", str(tmp_path / "out-ours")]) == 0
    _rewrite(ours, small_drops, tmp_path / "theirs", writer)
    hardware = tmp_path / "theirs" / "2024-08-14T00" / "hardware.csv"
    written = pd.read_csv(hardware, dtype=str, keep_default_na=False)
    written = written.rename(columns=lambda c: c.removeprefix("\ufeff"))  # pandas keeps a byte-order mark in the name
    assert written["power_limit_w"].str.endswith(".0").any() and written["os"].str.istitle().all()  # their forms are there
    assert (b"\r\n" in hardware.read_bytes()) == (writer in ("stdlib", "placeholders"))
    assert written["ip"].str.contains(":").all() == (writer == "ipv6")
    if writer == "placeholders":
        assert (written["gpu_serial"] == "[N/A]").sum() > 10 and (written["driver_version"] == "None").any()
        pow_files = [f for f in (tmp_path / "theirs").glob("*/pow.*") if "parquet" not in f.name]
        assert any(b".0]" in (gzip.decompress(f.read_bytes()) if f.name.endswith(".gz") else f.read_bytes()) for f in pow_files)
    assert main(["run", "--drops", str(tmp_path / "theirs"), "--db", str(theirs), "--out", str(tmp_path / "out-theirs")]) == 0
    con = duckdb.connect()
    con.execute(f"ATTACH '{ours}' AS ours (READ_ONLY)")
    con.execute(f"ATTACH '{theirs}' AS theirs (READ_ONLY)")
    quarantined = con.execute("SELECT reason, count(*) FROM theirs.quarantine GROUP BY reason").fetchall()
    if writer == "jvm":  # only the second copies of rows delivered twice, each kept once
        assert [r for r, _ in quarantined] == [REPEAT_REASON] and quarantined[0][1] > 20, quarantined
        assert "Darwin" in set(written["os"]) and set(written["virtualization_mode"]) <= {"0", "1", "2", "3", "4", ""}
        assert con.execute("SELECT min(seed) < 0 FROM theirs.pow").fetchall() == [(False,)]
    else:
        assert quarantined == []
    if writer == "people":  # the campaign is there: thirty sign-ups of twenty minutes under one referrer
        referred, minutes, dotted = con.execute(
            "SELECT n, span, (SELECT count(*) FROM theirs.accounts WHERE regexp_matches(email, '^[a-z]+\\.[a-z]+@gmail')) "
            "FROM (SELECT count(DISTINCT account_id) AS n, date_diff('minute', min(created_at), max(created_at)) AS span "
            "      FROM theirs.accounts WHERE referrer_account_id IS NOT NULL GROUP BY referrer_account_id) ORDER BY n DESC LIMIT 1"
        ).fetchall()[0]
        assert referred >= 30 and minutes <= 20 and dotted > 10, (referred, minutes, dotted)
    for sql in (
        "SELECT epoch, device_id, tier, fraud_types FROM {}.device_tiers",
        # four hours: no device has the five hours of uptime to be paid yet, so the prices are compared
        "SELECT epoch, device_id, measured_class, multiplier_bp4, status, reason, weight FROM {}.reward_eligibility",
        "SELECT epoch, cluster_id, account_id FROM {}.sybil_clusters",
    ):
        rows = con.execute(sql.format("ours")).fetchall()
        assert rows, sql
        for a, b in (("ours", "theirs"), ("theirs", "ours")):
            differ = con.execute(f"SELECT count(*) FROM ({sql.format(a)} EXCEPT ALL {sql.format(b)})").fetchall()[0][0]
            assert differ == 0, (sql, a, b)
