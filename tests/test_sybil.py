"""Sybil rings, wash trading and double listing on hand-made networks, and the baselines."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from detectors import DoubleListed, Evidence, SybilRings, WashTrading
from pipelines.db import connect
from pipelines.evaluate import sybil_pairwise
from pipelines.sybil.baselines import attribute_components, funding_louvain
from pipelines.sybil.links import build_account_graph

EPOCH = "2024-08-14T05"


@pytest.fixture
def con(tmp_path: Path):
    with connect(tmp_path / "db.duckdb") as c:
        yield c


def account(con, acc: str, email: str, wallet: str, signup_ip: str, referrer: str | None = None) -> None:
    con.execute(
        "INSERT INTO accounts VALUES (?, TIMESTAMP '2024-08-01 10:00:00', ?, ?, ?, ?, '2024-08-14T00', 'accounts.csv', 1)",
        [acc, email, wallet, signup_ip, referrer],
    )


def device(con, dev: str, acc: str, ip: str, host: str, cpu: str = "AMD Ryzen 9 7950X", uuid: str | None = None) -> None:
    con.execute(
        "INSERT INTO hardware (ts, device_id, account_id, host_fingerprint, ip, worker_version, cpu_model, cpu_cores, "
        "ram_gb, gpu_uuid, _hour, _file, _row) VALUES (TIMESTAMP '2024-08-14 05:10:00', ?, ?, ?, ?, '2.5.2', ?, 16, 64, ?, ?, 'h.csv', 1)",
        [dev, acc, host, ip, cpu, uuid, EPOCH],
    )
    con.execute("INSERT INTO device_features (epoch, device_id, account_id, ip) VALUES (?, ?, ?, ?)", [EPOCH, dev, acc, ip])


def funded(con, wallet: str, funder: str) -> None:
    con.execute(
        "INSERT INTO stake_events VALUES (?, TIMESTAMP '2024-08-14 00:10:00', ?, NULL, 'stake', 200, ?, '2024-08-14T00', 's.csv', 1)",
        [f"e-{wallet}", wallet, funder],
    )


def restart(con, dev: str, minute: int) -> None:
    con.execute(
        "INSERT INTO restart_gaps VALUES (?, ?, TIMESTAMP '2024-08-14 03:00:00' + to_minutes(?), 20.0)", [EPOCH, dev, minute]
    )


def ring(con, n: int = 8) -> list[str]:
    """An operator: one funder (half through an intermediate), bulk emails, proxies, one restart time."""
    funded(con, "middle", "boss")
    accounts = []
    for k in range(n):
        acc = f"ring{k}"
        account(con, acc, f"kai{4000 + k}f{k}a@outlook.com", f"w-{acc}", f"185.1.{k}.9")
        funded(con, f"w-{acc}", "middle" if k % 2 else "boss")
        device(con, f"d-{acc}", acc, f"185.1.{k}.9", f"host-{acc}", cpu="Intel Xeon E5-2680 v4")
        restart(con, f"d-{acc}", 17 + k)
        accounts.append(acc)
    return accounts


def lab(con, n: int = 12) -> list[str]:
    """A university lab: independent people behind one NAT address, funded by an exchange."""
    accounts = []
    for k in range(n):
        acc = f"lab{k}"
        account(con, acc, f"student.{k}x@uni.edu", f"w-{acc}", "131.1.1.1")
        funded(con, f"w-{acc}", f"own-{acc}")
        device(con, f"d-{acc}", acc, "131.1.1.1", f"host-{acc}")
        accounts.append(acc)
    return accounts


def family(con) -> list[str]:
    accounts = []
    for k in range(3):
        acc = f"fam{k}"
        account(con, acc, f"ana{k}.silva@gmail.com", f"w-{acc}", "84.2.2.2", referrer="fam0" if k else None)
        device(con, f"d-{acc}", acc, "84.2.2.2", f"host-{acc}")
        accounts.append(acc)
    return accounts


def test_ring_found_honest_shared_networks_spared(con) -> None:
    members = ring(con)
    lab(con)
    family(con)
    detector = SybilRings()
    found = detector.detect(Evidence(con, EPOCH))
    clusters = con.execute("SELECT DISTINCT cluster_id, account_id FROM sybil_clusters WHERE epoch = ?", [EPOCH]).fetchall()
    assert sorted(a for _, a in clusters) == sorted(members) and len({c for c, _ in clusters}) == 1
    assert sorted(found["device_id"]) == sorted(f"d-{a}" for a in members)
    story = con.execute("SELECT json_extract_string(evidence, '$.story') FROM sybil_clusters LIMIT 1").fetchall()[0][0]
    assert story.startswith("8 accounts;") and "funding" in story and "restart" in story


def test_normalized_gmail_and_weak_links_alone(con) -> None:
    for k, email in enumerate(["j.o.h.n+1@gmail.com", "john+2@gmail.com", "jo.hn@googlemail.com"]):
        account(con, f"g{k}", email, f"w{k}", f"9.9.9.{k}")
    build_account_graph(con, EPOCH)
    values = con.execute("SELECT DISTINCT value FROM account_attrs WHERE kind = 'email'").fetchall()
    assert values == [("john@gmail.com",)]
    # one shared mailbox is one strong kind: not enough for a ring
    assert SybilRings().detect(Evidence(con, EPOCH)).is_empty()


def test_pairwise_metrics_and_baselines(con) -> None:
    members = ring(con, 25)
    lab(con, 30)
    build_account_graph(con, EPOCH)
    hop = attribute_components(con)
    arbitrum = funding_louvain(con, EPOCH)
    truth = pl.DataFrame({
        "account_id": members + [f"lab{k}" for k in range(30)],
        "population": ["sybil_ring"] * 25 + ["shared_nat_lab"] * 30,
        "cluster": ["r"] * 25 + [None] * 30,
    })  # fmt: skip
    # Hop's components join the whole lab behind its NAT address
    assert sybil_pairwise(truth, hop)["shared_network_flagged"] == 30
    # Arbitrum's Louvain splits the funding tree (boss, and boss -> middle) below its 20-account bar
    assert arbitrum.group_by("cluster_id").len()["len"].min() is None or arbitrum.group_by("cluster_id").len()["len"].min() >= 20
    assert sybil_pairwise(truth, arbitrum)["shared_network_flagged"] == 0
    ours = SybilRings()
    ours.detect(Evidence(con, EPOCH))
    mine = pl.from_arrow(con.sql("SELECT cluster_id, account_id FROM sybil_clusters").to_arrow_table())
    m = sybil_pairwise(truth, mine)
    assert (m["pair_precision"], m["pair_recall"], m["shared_network_flagged"]) == (1.0, 1.0, 0)


def job(con, job_id: str, client: str, dev: str, minutes: int) -> None:
    con.execute(
        "INSERT INTO jobs VALUES (?, ?, ?, TIMESTAMP '2024-08-14 05:00:00', TIMESTAMP '2024-08-14 05:01:00', "
        "TIMESTAMP '2024-08-14 05:01:00' + to_minutes(?), 'completed', 1.5, ?, 'jobs.csv', 1)",
        [job_id, client, dev, minutes, EPOCH],
    )


def test_wash_trading_needs_ties_between_client_and_owner(con) -> None:
    account(con, "owner", "o@x.com", "w-owner", "1.1.1.1")
    account(con, "alt", "a@y.com", "w-alt", "1.1.1.1", referrer="owner")
    account(con, "stranger", "s@z.com", "w-s", "2.2.2.2")
    device(con, "gpu1", "owner", "1.1.1.1", "h1")
    device(con, "gpu2", "stranger", "2.2.2.2", "h2")
    for k in range(4):
        job(con, f"self{k}", "alt", "gpu1", 10)
        job(con, f"real{k}", "owner", "gpu2", 10)  # owner renting someone else's card: fine
    found = WashTrading().detect(Evidence(con, EPOCH))
    assert found["device_id"].to_list() == ["gpu1"] and found["action"][0] == "reject"
    assert "a referral" in found["reason"][0] and "the same signup IP" in found["reason"][0]


def test_double_listing_elsewhere_is_flagged_same_host_is_not(con) -> None:
    account(con, "a", "a@x.com", "w-a", "1.1.1.1")
    device(con, "moved", "a", "1.1.1.1", "host-1", uuid="GPU-1")
    device(con, "cross", "a", "1.1.1.2", "host-2", uuid="GPU-2")
    con.execute(
        "INSERT INTO external_listings VALUES (TIMESTAMP '2024-08-14 05:20:00', 'akash', 'GPU-1', 'other-host', '77.7.7.7', ?, 'x.csv', 1), "
        "(TIMESTAMP '2024-08-14 05:20:00', 'render', 'GPU-2', 'host-2', '1.1.1.2', ?, 'x.csv', 2)",
        [EPOCH, EPOCH],
    )
    found = DoubleListed().detect(Evidence(con, EPOCH))
    assert found["device_id"].to_list() == ["moved"] and found["action"][0] == "probation"
    assert "listed on akash from 77.7.7.7" in found["reason"][0]
