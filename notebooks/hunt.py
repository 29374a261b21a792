"""A bounty hunter's notebook (marimo; also a plain script):

    uv run marimo edit notebooks/hunt.py -- --release DIR --key release_signing.pub
    uv run python notebooks/hunt.py --release DIR --key release_signing.pub --out var/hunt

Loads a public release with DuckDB and polars only, verifies it, explores tiers and evidence,
finds a sybil cluster from raw signals, recomputes an epoch's rewards and writes a bounty report.
"""

import marimo

__generated_with = "0.25.2"
app = marimo.App(width="medium")


@app.cell
def _():
    import argparse
    import base64
    import hashlib
    import importlib.util
    import json
    from pathlib import Path

    import duckdb
    import marimo as mo
    import networkx as nx
    import plotly.express as px
    import polars as pl
    from cryptography.hazmat.primitives import serialization

    return Path, argparse, base64, duckdb, hashlib, importlib, json, mo, nx, pl, px, serialization


@app.cell
def _(Path, argparse):
    parser = argparse.ArgumentParser(description="hunt through a fleetproof public release")
    parser.add_argument("--release", default="var/demo/release")
    parser.add_argument("--key", default="var/demo/keys/release_signing.pub", help="the release's public key (PEM)")
    parser.add_argument("--out", default="var/hunt", help="where the plots and the report go")
    parser.add_argument("--recompute", default=str(Path(__file__).resolve().parents[1] / "pipelines" / "release" / "recompute.py"),
                        help="the standalone recompute function (DuckDB only, no other project code)")
    parser.add_argument("--reporter", default="hunter-notebook")
    parser.add_argument("--wallet", default="HunterWa11et1111111111111111111111111111111")
    args, _ = parser.parse_known_args()
    release, out = Path(args.release), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    return args, out, release


@app.cell
def _(Path, args, base64, hashlib, json, mo, release, serialization):
    # 1. Verify: every manifest's Ed25519 signature, then every file's sha256 and size.
    public = serialization.load_pem_public_key(Path(args.key).read_bytes())
    verified = []
    for desc_path in sorted(release.glob("*.datapackage.json")):
        data = desc_path.read_bytes()
        public.verify(base64.b64decode(desc_path.with_name(desc_path.name + ".sig").read_bytes().strip()), data)
        for res in json.loads(data)["resources"]:
            blob = (release / res["path"]).read_bytes()
            assert res["hash"] == "sha256:" + hashlib.sha256(blob).hexdigest(), res["path"]
            assert res["bytes"] == len(blob), res["path"]
        verified.append(desc_path.name.removesuffix(".datapackage.json"))
    assert verified, f"no manifest under {release}"
    epochs = verified
    mo.md(f"**{len(verified)} epochs verified** ({verified[0]} .. {verified[-1]})")
    return (epochs,)


@app.cell
def _(duckdb, release):
    # 2. Load: each table is a glob over its epoch folders.
    def table(name):
        return duckdb.sql(f"SELECT * FROM read_parquet('{release}/{name}/epoch=*/part-0.parquet', union_by_name = true)").pl()

    tiers, hardware, pow_ = table("device_tiers"), table("hardware"), table("pow_challenges")
    return hardware, pow_, table, tiers


@app.cell
def _(out, pl, px, tiers):
    # 3. Tiers and their evidence.
    per_epoch = tiers.group_by("epoch", "tier").len().sort("epoch", "tier")
    fig = px.bar(per_epoch.to_pandas(), x="epoch", y="len", color="tier", title="devices per tier and epoch")
    fig.write_html(out / "tiers.html")
    by_type = tiers.explode("fraud_types").drop_nulls("fraud_types").group_by("fraud_types").agg(pl.col("device_id").n_unique())
    px.bar(by_type.to_pandas(), x="fraud_types", y="device_id", title="devices flagged per fraud type").write_html(out / "fraud_types.html")
    by_type
    return


@app.cell
def _(duckdb, tiers):
    # The evidence behind each verdict: detector, action and reason, from the reasons JSON.
    evidence = duckdb.sql("""
        SELECT r ->> 'detector' AS detector, r ->> 'action' AS action, count(*) AS verdicts,
               any_value(r ->> 'reason') AS example
        FROM (SELECT unnest(from_json(reasons, '["json"]')) AS r FROM tiers WHERE tier IN ('probation', 'rejected'))
        GROUP BY ALL ORDER BY verdicts DESC""").pl()
    evidence
    return


@app.cell
def _(hardware, nx, pl, table, tiers):
    # 4. A sybil cluster from raw signals: accounts linked when they share a host, a referrer or a funder.
    accounts = table("accounts")
    stakes = table("stake_events")
    dev_acc = hardware.select("device_id", "account_id").unique()
    signals = pl.concat([
        hardware.select("account_id", pl.lit("host").alias("kind"), pl.col("host_fingerprint").alias("value")),
        accounts.select("account_id", pl.lit("referrer").alias("kind"), pl.col("referrer_account_id").alias("value")),
        stakes.join(dev_acc, on="device_id").select("account_id", pl.lit("funder").alias("kind"), pl.col("funder_wallet").alias("value")),
    ]).drop_nulls().unique()
    pairs = signals.join(signals, on=["kind", "value"]).filter(pl.col("account_id") < pl.col("account_id_right"))
    strong = pairs.group_by("account_id", "account_id_right").agg(pl.col("kind").n_unique().alias("kinds")).filter(pl.col("kinds") >= 2)
    graph = nx.Graph(strong.select("account_id", "account_id_right").rows())
    found = max(nx.connected_components(graph), key=len) if graph.number_of_nodes() else set()
    published = tiers.filter(pl.col("fraud_types").list.contains("sybil"))["account_id"].unique()
    print(f"largest linked group: {len(found)} accounts, {len(set(published) & found)} of them in published sybil verdicts")
    return (found,)


@app.cell
def _(args, epochs, importlib, json, pl, release, out):
    # 5. Recompute an epoch's rewards from the release alone, byte for byte.
    spec = importlib.util.spec_from_file_location("recompute", args.recompute)
    recompute = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(recompute)
    paid = [e for e in epochs if pl.read_parquet(release / f"reward_allocations/epoch={e}/part-0.parquet").height]
    checked = {}
    for e in paid:
        mine = recompute.recompute_allocations(release, e)
        checked[e] = mine.equals(pl.read_parquet(release / f"reward_allocations/epoch={e}/part-0.parquet"))
    (out / "recompute.json").write_text(json.dumps(checked, indent=1))
    assert all(checked.values()), checked
    print(f"rewards recomputed byte for byte for {len(checked)} epoch(s)")
    return


@app.cell
def _(args, epochs, hardware, json, out, pl, pow_, tiers):
    # 6. A bounty report: hosts whose several GPUs each measure far below their model's peers
    #    (one physical card sliced into many "devices") and that the pipeline has not flagged.
    window = epochs[-3:]
    speed = (pow_.filter(pl.col("epoch").is_in(window) & pl.col("measured_tflops").is_not_null())
             .join(hardware.select("device_id", "gpu_model", "host_fingerprint", "ip_prefix").unique("device_id"), on="device_id")
             .group_by("device_id", "gpu_model", "host_fingerprint", "ip_prefix").agg(pl.col("measured_tflops").median()))
    speed = speed.with_columns((pl.col("measured_tflops") / pl.col("measured_tflops").median().over("gpu_model")).alias("vs_peers"))
    hosts = (speed.group_by("host_fingerprint").agg(pl.col("device_id"), pl.col("vs_peers").median(), pl.len().alias("n"))
             .filter((pl.col("n") >= 2) & (pl.col("vs_peers") < 0.6)).sort("vs_peers"))
    flagged = set(tiers.filter(pl.col("epoch").is_in(window) & pl.col("tier").is_in(["rejected", "probation"]))["device_id"])
    hosts = hosts.with_columns(pl.col("device_id").list.eval(pl.element().is_in(list(flagged)).not_()).list.sum().alias("new"))
    target = hosts.sort("new", "n", descending=True).row(0, named=True) if hosts.height else None
    report = None
    if target:
        report = {"report_version": 1, "reporter": args.reporter, "reward_wallet": args.wallet, "epochs": window,
                  "fraud_type": "virtualized_gpu", "devices": sorted(target["device_id"]),
                  "signals": ["host_fingerprint", "ip_prefix"],
                  "reasoning": f"{target['n']} GPUs on one host each measure {target['vs_peers']:.0%} of their model's peers in PoW: one card shared.",
                  "method": "median measured_tflops per device from pow_challenges, divided by the median of the same model, grouped by host_fingerprint"}
        (out / "bounty_report.json").write_text(json.dumps(report, indent=1))
    print("report:", json.dumps(report)[:300] if report else "no suspicious host found")
    return


if __name__ == "__main__":
    app.run()
