"""The ``fleetproof`` command line: simulate, ingest, run, status, evaluate, demo."""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

import polars as pl

from pipelines.contract import FRAUD_TYPES

ISSUE2_TYPES = ["failed_pow", "duplicate_hardware", "spoofed_uptime"]
"""Fraud types whose detectors ship in this version (the rest are reported as not detected)."""


def _print_table(df: pl.DataFrame) -> None:
    with pl.Config(tbl_rows=100, tbl_cols=20, tbl_hide_dataframe_shape=True, tbl_width_chars=160,
                   float_precision=4, tbl_hide_column_data_types=True):  # fmt: skip
        print(df)


def cmd_simulate(a: argparse.Namespace) -> int:
    from pipelines.simulate import load_scenario, simulate

    started = time.perf_counter()
    net = simulate(a.out, a.devices, a.hours, a.seed, load_scenario(a.scenario))
    print(
        f"simulated {net.devices.height} devices, {net.accounts.height} accounts, {a.hours} hour(s) "
        f"into {a.out} in {time.perf_counter() - started:.1f}s (ground truth in {a.out}/_truth)"
    )
    return 0


class UserError(Exception):
    """A mistake in how the command was called: one line on stderr, exit status 2."""


def _existing_db(path: Path) -> Path:
    """An existing fleetproof database (nothing is created); UserError otherwise."""
    from pipelines.db import check_database_file

    return check_database_file(path)


def _writable_db(path: Path) -> Path:
    """A database path to write: a missing file is created, an existing one must be DuckDB."""
    if path.exists():
        _existing_db(path)
    return path


def _drops_with_hours(drops: Path) -> Path:
    """A drops folder holding at least one complete hour folder; UserError otherwise."""
    from pipelines.ingest import complete_hours, false_hours

    if not complete_hours(drops) and not false_hours(drops):
        raise UserError(f"no complete hour folders (YYYY-MM-DDTHH/ with _manifest.json) in {drops}; nothing to do")
    return drops


def _hour(value: str, option: str) -> str:
    from pipelines.contract import parse_hour

    if parse_hour(value) is None:
        raise UserError(f"{option} {value!r} is not an hour: use YYYY-MM-DDTHH, e.g. 2024-08-14T07")
    return value


def cmd_ingest(a: argparse.Namespace) -> int:
    from pipelines.db import connect
    from pipelines.ingest import ingest_drops

    _drops_with_hours(a.drops)
    with connect(_writable_db(a.db)) as con:
        results = ingest_drops(con, a.drops)
    for r in results:
        extra = f" ({r.reason})" if r.reason else ""
        print(
            f"{r.hour}  {r.status:<9} rows {r.rows_in:>9}  landed {r.rows_landed:>9}  quarantined {r.rows_quarantined:>7}{extra}"
        )
    return 0


def _print_epoch(e) -> None:
    """One line per computed epoch (the runner's progress callback)."""
    tiers = " ".join(f"{k}={v}" for k, v in sorted(e.tiers.items()))
    print(f"{e.epoch}  devices {e.devices:>7}  samples {e.samples:>7} ({e.bad_samples} wrong)  "
          f"evidence {e.evidence:>5}  {tiers}  [{e.seconds:.1f}s]", flush=True)  # fmt: skip


def _report_run(summaries: list, out: Path) -> int:
    """What one or more runs ingested, computed and exported, and where they stopped; 1 if one did."""
    ingested = [r for s in summaries for r in s.ingested]
    rejected = [r for r in ingested if r.status == "rejected"]
    landed = [r for r in ingested if r.status == "ingested"]
    print(f"hours ingested {len(landed)}, rejected {len(rejected)}, "
          f"epochs computed {sum(len(s.epochs) for s in summaries)}, "
          f"files exported {sum(len(s.exported) for s in summaries)} under {out}")  # fmt: skip
    for r in rejected:
        print(f"  rejected {r.hour}: {r.reason}")
    stopped = next((s for s in summaries if s.blocked or s.failed), None)
    if stopped is not None and stopped.blocked:
        epoch, failed = stopped.blocked
        print(f"STOPPED at {epoch}: it fails a data-quality bar; it and later epochs wait "
              "(fix the drop, or change [quality] in the policy, or pass --skip-quality-bars):")  # fmt: skip
        for o in failed:
            print(f"  {o.name}: {o.description}")
        return 1
    if stopped is not None and stopped.failed:
        f = stopped.failed
        print(f"STOPPED at {f.epoch}: stage {f.stage} failed ({f.reason}); it and later epochs wait. "
              "The failure is recorded (see `fleetproof status`); run again to retry.", file=sys.stderr)  # fmt: skip
        return 1
    return 0


def cmd_run(a: argparse.Namespace) -> int:
    from pipelines.policy import load_policy
    from pipelines.rewards_policy import load_rewards_policy
    from pipelines.run import run

    policy, rewards = load_policy(a.policy), load_rewards_policy(a.rewards_policy)
    _drops_with_hours(a.drops)
    summary = run(a.drops, _writable_db(a.db), a.out, policy, progress=_print_epoch, quality_bars=not a.skip_quality_bars,
                  rewards=rewards)  # fmt: skip
    return _report_run([summary], a.out)


def cmd_status(a: argparse.Namespace) -> int:
    from pipelines.status import status_report

    print(status_report(a.db, as_json=a.json))
    return 0


def cmd_evaluate(a: argparse.Namespace) -> int:
    from pipelines.evaluate import evaluate

    _existing_db(a.db)
    per_type, per_pop = evaluate(a.db, a.drops, a.types or [*FRAUD_TYPES, "burst"])
    print("Detection quality by fraud type (device flagged in any epoch):")
    _print_table(per_type)
    print("Flagged share by population (honest populations: the false-positive rate):")
    _print_table(per_pop)
    return 0


def cmd_recalc(a: argparse.Namespace) -> int:
    from pipelines.db import connect
    from pipelines.export import export_epoch
    from pipelines.policy import load_policy
    from pipelines.recalc import read_overrides, recalculate, recalculate_rewards
    from pipelines.rewards_policy import load_rewards_policy

    _hour(a.epoch_from, "--from")
    _hour(a.epoch_to, "--to")
    if a.epoch_from > a.epoch_to:
        raise UserError(f"--from {a.epoch_from} is after --to {a.epoch_to}: the period must start before it ends")
    policy, rewards = load_policy(a.policy), load_rewards_policy(a.rewards_policy)
    overrides = read_overrides(a.overrides) if a.overrides else []
    if a.rewards_only and (overrides or a.policy):
        raise UserError("--rewards-only keeps the stored tiers: review verdicts (--overrides) and a detection "
                        "--policy change them, so leave out --rewards-only")  # fmt: skip
    with connect(_existing_db(a.db)) as con:
        if a.rewards_only:
            statements = recalculate_rewards(con, a.epoch_from, a.epoch_to, rewards, apply=a.apply)
        else:
            statements = recalculate(con, a.epoch_from, a.epoch_to, policy, rewards, overrides, apply=a.apply)
        if a.apply:
            epochs = [
                r[0]
                for r in con.execute(
                    "SELECT epoch FROM processed_epochs WHERE epoch >= ? ORDER BY epoch", [a.epoch_from]
                ).fetchall()
            ]
            for epoch in epochs:
                export_epoch(con, a.out, epoch)
    folder = Path(a.out) / "recalc" / f"{a.epoch_from}_{a.epoch_to}"
    folder.mkdir(parents=True, exist_ok=True)
    statements.write_parquet(folder / "account_statements_diff.parquet")
    statements.write_csv(folder / "account_statements_diff.csv")
    moved = int(statements["delta_base_units"].abs().sum()) if statements.height else 0
    print(f"{statements.height} account(s) changed between {a.epoch_from} and {a.epoch_to}; "
          f"{moved / 10**8:.8f} IO moved; {'applied' if a.apply else 'dry run (nothing stored)'}; statements in {folder}")  # fmt: skip
    _print_table(statements.head(10).select("account_id", "old_base_units", "new_base_units", "delta_base_units", "changes"))
    return 0


DEMO_MARKER = ".fleetproof-demo"
"""Written into a workdir the demo created: only such a folder is ever deleted by the demo."""


def _confirm(question: str) -> bool:
    if not sys.stdin.isatty():
        return False
    return input(question).strip().lower() in ("y", "yes")


def cmd_dashboard(a: argparse.Namespace) -> int:
    from dashboards import build_report
    from pipelines.db import connect

    if not Path(a.db).exists():
        raise FileNotFoundError(f"no database at {a.db} (run `fleetproof run` first)")
    if Path(a.out).exists() and not Path(a.out).is_dir():
        raise ValueError(f"--out {a.out} is a file, not a folder")
    started = time.perf_counter()
    with connect(a.db) as con:
        report = build_report(con, a.out, devices=a.device or (), window_hours=a.window_hours, as_of=a.epoch, embed=a.embed)
    print(f"dashboard: {len(report.pages)} pages and {len(report.device_pages)} device pages in {a.out} "
          f"({time.perf_counter() - started:.1f}s); open {report.index.resolve().as_uri()}")  # fmt: skip
    return 0


def cmd_demo(a: argparse.Namespace) -> int:
    """The embedded default: simulate a network hour by hour, run the whole pipeline on each hour
    (closed loop: the simulated backend follows the pipeline's challenge plan, as a network's
    backend does; without it nothing would batch a card's virtual slices together), print a
    summary."""
    from pipelines.simulate import NetworkSimulator, load_scenario
    from pipelines.simulate.loop import closed_loop

    work = Path(a.workdir)
    marker = work / DEMO_MARKER
    if work.exists() and not a.keep:
        if not work.is_dir() or (any(work.iterdir()) and not marker.is_file()):
            raise UserError(
                f"{work} exists and was not made by `fleetproof demo`; choose another --workdir or remove it yourself"
            )
        if any(work.iterdir()) and not a.yes and not _confirm(f"delete the earlier demo in {work}? [y/N] "):
            raise UserError(f"kept {work}; pass --keep to reuse it or --yes to replace it")
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    marker.write_text("made by fleetproof demo; `fleetproof demo` may delete this folder\n")
    drops, db, out = work / "drops", work / "fleetproof.duckdb", work / "out"
    print(f"== simulating {a.devices} devices for {a.hours} hours (seed {a.seed}) into {drops}, an hour at a time: "
          "the simulated backend issues each hour's challenges by the plan the pipeline made from the hour before")  # fmt: skip
    print(f"== running the pipeline on each hour as it arrives: drops {drops} -> {db} -> {out}")
    started = time.perf_counter()
    sim = NetworkSimulator(drops, a.devices, a.hours, a.seed, load_scenario(a.scenario))
    summaries = closed_loop(sim, _writable_db(db), out, a.hours, progress=_print_epoch)
    stopped = _report_run(summaries, out)
    print(f"simulated {sim.network.devices.height} devices, {sim.network.accounts.height} accounts, {a.hours} hour(s) "
          f"and ran the pipeline on them in {time.perf_counter() - started:.1f}s (ground truth in {drops}/_truth)")  # fmt: skip
    if stopped:
        print("== the run stopped early (see above); the summary covers what was computed")
    print("== status")
    cmd_status(argparse.Namespace(db=db, json=False))
    print("== detection quality against the simulator's ground truth")
    cmd_evaluate(argparse.Namespace(db=db, drops=drops, types=None))
    print(f"== output tables: {out}/<table>/epoch=<YYYY-MM-DDTHH>/part-0.parquet")
    for table in sorted(p.name for p in out.iterdir() if p.is_dir()):
        files = sorted((out / table).glob("epoch=*/*.parquet"))
        print(f"  {table}: {len(files)} epoch file(s), e.g. {files[-1] if files else '-'}")
    print("== analyst dashboard")
    cmd_dashboard(argparse.Namespace(db=db, out=work / "dashboard", device=None, window_hours=168, epoch=None, embed=False))
    return 0


def cmd_ui(a: argparse.Namespace) -> int:
    """The Dagster UI (``dg dev``: webserver and daemon) over these drops and this database, with
    its instance in ``--home`` (never a temporary folder in the working tree)."""
    import os
    import shutil
    import sys

    root = Path(__file__).resolve().parents[1]
    if not (root / "pyproject.toml").is_file():
        raise UserError(f"fleetproof ui runs from a source checkout: dg dev needs {root / 'pyproject.toml'}")
    home = a.home.resolve()
    home.mkdir(parents=True, exist_ok=True)
    if not (home / "dagster.yaml").exists():
        shutil.copy(root / "dagster_project" / "dagster.yaml", home / "dagster.yaml")
    env = {**os.environ, "DAGSTER_HOME": str(home), "FLEETPROOF_DROPS": str(a.drops.resolve()),
           "FLEETPROOF_DB": str(a.db.resolve()), "FLEETPROOF_OUT": str(a.out.resolve())}  # fmt: skip
    dg = shutil.which("dg", path=str(Path(sys.executable).parent)) or shutil.which("dg")
    if dg is None:
        raise UserError("dg not found: install the project (uv sync) so dagster-dg-cli is there")
    print(f"Dagster UI on http://{a.host}:{a.port} over {a.drops} and {a.db} (instance {home})", flush=True)
    os.chdir(root)
    os.execve(dg, [dg, "dev", "--host", a.host, "--port", str(a.port)], env)
    return 0  # not reached: exec replaces this process


def cmd_worker_report(a: argparse.Namespace) -> int:
    """What this host would send: NVML status, host fields and one hardware row per GPU."""
    import json

    from pipelines.worker.report import collect_report, format_report

    report = collect_report(account_id=a.account)
    if a.json:
        print(json.dumps(report.as_dict(), indent=1, default=lambda v: f"{v:%Y-%m-%dT%H:%M:%S.%f}"[:-3] + "Z"))
    else:
        print(format_report(report))
    return 0


def cmd_worker_answer(a: argparse.Namespace) -> int:
    """Answer one challenge: commit to the digest, then give the asked samples."""
    import json

    from pipelines.worker.answer import (
        AnswerError,
        Challenge,
        answer,
        parse_positions,
        select_backend,
    )

    challenge = Challenge(a.kind, a.n, a.seed)
    positions = parse_positions(json.loads(a.samples), a.n) if a.samples else None
    bus_id = None
    if a.gpu_index is not None and a.backend != "cpu":
        from pipelines.worker.report import nvml_bus_id

        bus_id = nvml_bus_id(a.gpu_index)
    from pipelines.worker.gpu import GpuUnavailable

    try:
        backend = select_backend(a.backend, bus_id)
    except GpuUnavailable as e:
        print(f"fleetproof: error: --backend {a.backend}: {e}", file=sys.stderr)
        return 2
    try:
        ans = answer(challenge, backend)
    except AnswerError as e:
        print(json.dumps({"kind": a.kind, "n": a.n, "seed": a.seed, "status": "error", "reason": str(e)}))
        return 1
    out = ans.commitment()
    if positions is not None:
        out["samples"] = ans.samples([list(p) for p in positions])
    print(json.dumps(out), flush=True)
    if a.samples_stdin:
        line = sys.stdin.readline()
        try:
            asked = json.loads(line)
        except json.JSONDecodeError as e:
            raise ValueError(f"sample positions on stdin must be a JSON list of [i, j] pairs: {e}") from e
        print(json.dumps({"samples": ans.samples(asked)}), flush=True)
    return 0


def cmd_sybil_graph(a: argparse.Namespace) -> int:
    import resource

    from pipelines.sybil.transfer_graph import GraphRules, cluster_transfer_graph, read_edges, summary_lines, write_clusters

    started = time.perf_counter()
    rules = GraphRules(hub_quantile=a.hub_quantile, min_hub_degree=a.min_hub_degree, max_cluster=a.max_cluster)
    result = cluster_transfer_graph(read_edges(a.edges), rules)
    write_clusters(result, a.out)
    for line in summary_lines(result.summary):
        print(line)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"wrote {result.clusters.height} rows to {a.out} in {time.perf_counter() - started:.1f} s, peak memory {peak:.0f} MiB")
    return 0


def cmd_release(a: argparse.Namespace) -> int:
    """Publish the signed public release, verify one, or make the release keys."""
    from pipelines.release import manifest

    if a.release_command == "keygen":
        private, public, secret = manifest.generate_keys(a.out)
        print(f"signing key {private} (keep private), public key {public} (publish it), "
              f"pseudonymization secret {secret} (keep private)")  # fmt: skip
        return 0
    if a.release_command == "verify":
        try:
            epochs = manifest.verify_release(a.dir, manifest.load_public_key(a.key), a.epoch or None)
        except manifest.ReleaseVerificationError as e:
            print(f"fleetproof: {e}", file=sys.stderr)
            return 1
        print(
            f"release {a.dir}: {len(epochs)} epoch(s) verified ({epochs[0]} .. {epochs[-1]}): signatures, sha256, sizes and rows"
        )
        return 0
    from pipelines.release.publish import publish

    if not (a.db and a.out and a.signing_key):
        raise ValueError("fleetproof release needs --db, --out and --signing-key (and --secret or $FLEETPROOF_RELEASE_SECRET)")

    def progress(r) -> None:
        print(f"{r.epoch}  season {r.season}  rows " + " ".join(f"{t}={n}" for t, n in r.rows.items() if n), flush=True)

    written = publish(a.db, a.out, secret_file=a.secret, signing_key=a.signing_key, epoch_from=a.epoch_from,
                      epoch_to=a.epoch_to, release_policy=a.release_policy, rewards_policy=a.rewards_policy,
                      progress=progress)  # fmt: skip
    print(f"released {len(written)} epoch(s) under {a.out}, each with a signed <epoch>.datapackage.json")
    return 0


def cmd_bounty(a: argparse.Namespace) -> int:
    """Submit a hunter's report, review the queue, or show a report's decisions."""
    from pipelines.bounty import intake, review
    from pipelines.db import connect

    bounty = intake.load_bounty_policy(a.bounty_policy)
    with connect(a.db) as con:
        if a.bounty_command == "submit":
            d = intake.submit(con, a.report, a.release, a.key, bounty)
            print(f"{d.report_id}: {d.status}: {d.reason}")
            for step, outcome, reason in d.steps:
                print(f"  {step:<10} {outcome:<6} {reason}")
            return 0 if d.status == "queued" else 1
        if a.bounty_command == "status":
            _print_table(review.decisions(con, a.report_id))
            return 0
        if a.accept or a.dismiss:
            if not a.reason:
                raise ValueError("a review needs --reason (the reporter sees it)")
            if a.dismiss:
                review.dismiss(con, a.dismiss, a.reason)
                print(f"{a.dismiss}: dismissed")
                return 0
            from pipelines.policy import load_policy
            from pipelines.release.pseudonymize import load_release_policy, read_secret
            from pipelines.rewards_policy import load_rewards_policy

            p = review.accept(con, a.accept, a.reason, secret=read_secret(a.secret), release_policy=load_release_policy(a.release_policy),
                              detection=load_policy(a.policy), rewards=load_rewards_policy(a.rewards_policy), bounty=bounty,
                              tier=a.tier)  # fmt: skip
            print(f"{p.report_id}: accepted; {len(p.devices)} device(s) overridden; stopped {p.stopped_base_units} base units; "
                  f"bounty {p.amount_base_units} base units ({p.amount_base_units / 10**8:.8f} IO) to {p.reward_wallet}")  # fmt: skip
            return 0
        _print_table(review.queue(con))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="fleetproof", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("simulate", help="write simulated hourly drops plus ground truth")
    s.add_argument("--out", required=True, type=Path)
    s.add_argument("--devices", type=int, default=2000)
    s.add_argument("--hours", type=int, default=24)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--scenario", type=Path, help="scenario TOML (default: the built-in network)")
    s.set_defaults(func=cmd_simulate)

    s = sub.add_parser("ingest", help="ingest complete hour folders into DuckDB (no detection)")
    s.add_argument("--drops", required=True, type=Path)
    s.add_argument("--db", required=True, type=Path)
    s.set_defaults(func=cmd_ingest)

    s = sub.add_parser("run", help="ingest new hours, recompute affected epochs, export tables")
    s.add_argument("--drops", required=True, type=Path)
    s.add_argument("--db", required=True, type=Path)
    s.add_argument("--out", required=True, type=Path)
    s.add_argument("--policy", type=Path, help="detection policy TOML (default: data/policy/detection.toml)")
    s.add_argument("--rewards-policy", type=Path, help="reward policy TOML (default: data/policy/rewards.toml)")
    s.add_argument("--skip-quality-bars", action="store_true", help="process hours that fail the [quality] bars")
    s.set_defaults(func=cmd_run)

    s = sub.add_parser("recalc", help="re-run a past period under new verdicts or policy; per-account diff statements")
    s.add_argument("--db", required=True, type=Path)
    s.add_argument("--out", required=True, type=Path, help="statements go to OUT/recalc/FROM_TO/")
    s.add_argument("--from", dest="epoch_from", required=True, help="first epoch, YYYY-MM-DDTHH")
    s.add_argument("--to", dest="epoch_to", required=True, help="last epoch of the period, YYYY-MM-DDTHH")
    s.add_argument("--overrides", type=Path, help="CSV: device_id,tier,reason (a person's verdicts for the period)")
    s.add_argument("--policy", type=Path, help="detection policy TOML")
    s.add_argument("--rewards-policy", type=Path, help="reward policy TOML (e.g. a new version)")
    s.add_argument("--apply", action="store_true", help="store the recomputation (default: dry run) and re-export")
    s.add_argument("--rewards-only", action="store_true",
                   help="a reward policy change only: recompute staking, allocations and slashing on the stored tiers")  # fmt: skip
    s.set_defaults(func=cmd_recalc)

    s = sub.add_parser("status", help="hours in, rejected and quarantined, with reasons")
    s.add_argument("--db", required=True, type=Path)
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_status)

    s = sub.add_parser("evaluate", help="precision/recall against a simulation's ground truth")
    s.add_argument("--db", required=True, type=Path)
    s.add_argument("--drops", required=True, type=Path, help="the simulated drops (holds _truth/)")
    s.add_argument("--types", nargs="*", choices=sorted(set(FRAUD_TYPES) | {"burst"}))
    s.set_defaults(func=cmd_evaluate)

    w = sub.add_parser("worker", help="the worker side: NVML report and proof-of-work answers").add_subparsers(
        dest="worker_command", required=True
    )
    s = w.add_parser("report", help="what this host reports: NVML fields per GPU and a host fingerprint")
    s.add_argument("--json", action="store_true", help="print exactly what would be sent")
    s.add_argument("--account", help="account id to put in the rows (default: null, the backend fills it)")
    s.set_defaults(func=cmd_worker_report)
    s = w.add_parser("answer", help="answer one proof-of-work challenge (JSON out)")
    s.add_argument("--n", required=True, type=int)
    s.add_argument("--seed", required=True, type=int, help="64-bit unsigned")
    s.add_argument("--kind", default="matmul", choices=["matmul", "vram"])
    s.add_argument("--backend", default="auto", choices=["auto", "cpu", "gpu"], help="auto: the GPU when one works")
    s.add_argument("--gpu-index", type=int, help="the GPU to use, numbered as in `worker report` (default: CUDA device 0)")
    s.add_argument("--samples", help="JSON [[i, j], ...]: positions to answer along with the commitment")
    s.add_argument(
        "--samples-stdin", action="store_true", help="after printing the commitment, read one JSON line of positions from stdin"
    )
    s.set_defaults(func=cmd_worker_answer)

    s = sub.add_parser("dashboard", help="write the analyst dashboard: static HTML pages that open offline")
    s.add_argument("--db", required=True, type=Path)
    s.add_argument("--out", required=True, type=Path, help="report folder (index.html, one page per topic, devices/)")
    s.add_argument(
        "--device", action="append", help="also write this device's page (repeatable; default: the 10 most suspicious)"
    )
    s.add_argument("--window-hours", type=int, default=168, help="hours of history the time series show (default 168)")
    s.add_argument("--epoch", help="report as of this epoch, YYYY-MM-DDTHH (default: the latest processed)")
    s.add_argument("--embed", action="store_true", help="embed plotly.js in every page (default: one shared plotly.min.js)")
    s.set_defaults(func=cmd_dashboard)

    s = sub.add_parser("sybil-graph", help="sybil clusters on a wallet transfer edge list (Parquet or CSV)")
    s.add_argument("--edges", required=True, type=Path, help="edge list: address_a,address_b (or src,dst)")
    s.add_argument("--out", required=True, type=Path, help="Parquet: address, cluster_id, score, evidence")
    s.add_argument("--hub-quantile", type=float, default=0.999, help="degrees above this quantile are hubs")
    s.add_argument("--min-hub-degree", type=int, default=50)
    s.add_argument("--max-cluster", type=int, default=1000, help="larger components are peeled")
    s.set_defaults(func=cmd_sybil_graph)

    s = sub.add_parser("release", help="publish the signed, pseudonymized public release (or: verify, keygen)")
    s.add_argument("--db", type=Path)
    s.add_argument("--out", type=Path, help="release folder")
    s.add_argument("--secret", type=Path, help="pseudonymization secret file (default: $FLEETPROOF_RELEASE_SECRET)")
    s.add_argument("--signing-key", type=Path, help="Ed25519 private key (PEM)")
    s.add_argument("--from", dest="epoch_from", help="first epoch (default: the first processed)")
    s.add_argument("--to", dest="epoch_to", help="last epoch (default: the last processed)")
    s.add_argument("--release-policy", type=Path, help="release policy TOML (default: data/policy/release.toml)")
    s.add_argument("--rewards-policy", type=Path, help="the reward policy TOML that paid the epochs")
    s.set_defaults(func=cmd_release, release_command=None)
    rsub = s.add_subparsers(dest="release_command")
    v = rsub.add_parser("verify", help="check a release's signatures, hashes, sizes and row counts")
    v.add_argument("dir", type=Path)
    v.add_argument("--key", required=True, type=Path, help="the release's public key (PEM)")
    v.add_argument("--epoch", action="append", help="only this epoch (repeatable)")
    k = rsub.add_parser("keygen", help="make a signing key pair and a pseudonymization secret")
    k.add_argument("--out", required=True, type=Path)

    s = sub.add_parser("bounty", help="hunters' reports: submit, review (accept / dismiss), status")
    s.add_argument("--db", required=True, type=Path)
    s.add_argument("--bounty-policy", type=Path, help="bounty policy TOML (default: data/policy/bounty.toml)")
    bsub = s.add_subparsers(dest="bounty_command", required=True)
    b = bsub.add_parser("submit", help="receive a report and run the automatic checks")
    b.add_argument("report", type=Path, help="report JSON (pipelines/bounty/report.schema.json)")
    b.add_argument("--release", required=True, type=Path, help="the public release the report's ids come from")
    b.add_argument("--key", required=True, type=Path, help="the release's public key (PEM)")
    b = bsub.add_parser("review", help="list queued reports, or --accept / --dismiss one")
    b.add_argument("--accept", metavar="REPORT_ID")
    b.add_argument("--dismiss", metavar="REPORT_ID")
    b.add_argument("--reason", help="why (kept, and shown to the reporter)")
    b.add_argument("--tier", default="rejected", choices=["rejected", "probation"], help="verdict for the credited devices")
    b.add_argument("--secret", type=Path, help="pseudonymization secret (default: $FLEETPROOF_RELEASE_SECRET)")
    b.add_argument("--release-policy", type=Path)
    b.add_argument("--policy", type=Path, help="detection policy TOML")
    b.add_argument("--rewards-policy", type=Path)
    b = bsub.add_parser("status", help="every decision about a report, with its reason")
    b.add_argument("report_id")
    s.set_defaults(func=cmd_bounty)

    s = sub.add_parser("demo", help="simulate a network and run the whole pipeline on it")
    s.add_argument("--workdir", type=Path, default=Path("var/demo"))
    s.add_argument("--devices", type=int, default=3000)
    s.add_argument("--hours", type=int, default=12)
    s.add_argument("--seed", type=int, default=7)
    s.add_argument("--scenario", type=Path)
    s.add_argument("--keep", action="store_true", help="keep an existing workdir (process only what is new)")
    s.add_argument("--yes", action="store_true", help="replace an earlier demo's workdir without asking")
    s.set_defaults(func=cmd_demo)

    s = sub.add_parser("ui", help="the Dagster UI (dg dev) over the demo's (or the given) drops and database")
    s.add_argument("--drops", type=Path, default=Path("var/demo/drops"))
    s.add_argument("--db", type=Path, default=Path("var/demo/fleetproof.duckdb"))
    s.add_argument("--out", type=Path, default=Path("var/demo/out"))
    s.add_argument("--home", type=Path, default=Path("var/dagster"), help="the Dagster instance (runs, history)")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=3000)
    s.set_defaults(func=cmd_ui)
    return p


def _user_errors() -> tuple[type[BaseException], ...]:
    """Exceptions that mean the input or the call is wrong (a one-line message, no traceback)."""
    import duckdb
    from filelock import Timeout

    from pipelines.db import DatabaseBusy, NotADatabase

    return (UserError, FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError, ValueError,
            DatabaseBusy, NotADatabase, Timeout, duckdb.IOException)  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except _user_errors() as e:
        message = " ".join(str(e).split()) or type(e).__name__
        print(f"fleetproof: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["main", "build_parser"]
