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
        print(f"{r.hour}  {r.status:<9} rows {r.rows_in:>9}  landed {r.rows_landed:>9}  quarantined {r.rows_quarantined:>7}{extra}")
    return 0


def cmd_run(a: argparse.Namespace) -> int:
    from pipelines.policy import load_policy
    from pipelines.run import run

    def progress(e) -> None:
        tiers = " ".join(f"{k}={v}" for k, v in sorted(e.tiers.items()))
        print(f"{e.epoch}  devices {e.devices:>7}  samples {e.samples:>7} ({e.bad_samples} wrong)  "
              f"evidence {e.evidence:>5}  {tiers}  [{e.seconds:.1f}s]", flush=True)  # fmt: skip

    from pipelines.rewards_policy import load_rewards_policy

    policy, rewards = load_policy(a.policy), load_rewards_policy(a.rewards_policy)
    _drops_with_hours(a.drops)
    summary = run(a.drops, _writable_db(a.db), a.out, policy, progress=progress, quality_bars=not a.skip_quality_bars,
                  rewards=rewards)  # fmt: skip
    rejected = [r for r in summary.ingested if r.status == "rejected"]
    landed = [r for r in summary.ingested if r.status == "ingested"]
    print(f"hours ingested {len(landed)}, rejected {len(rejected)}, epochs computed {len(summary.epochs)}, "
          f"files exported {len(summary.exported)} under {a.out}")  # fmt: skip
    for r in rejected:
        print(f"  rejected {r.hour}: {r.reason}")
    if summary.blocked:
        epoch, failed = summary.blocked
        print(f"STOPPED at {epoch}: it fails a data-quality bar; it and later epochs wait "
              "(fix the drop, or change [quality] in the policy, or pass --skip-quality-bars):")  # fmt: skip
        for o in failed:
            print(f"  {o.name}: {o.description}")
        return 1
    if summary.failed:
        f = summary.failed
        print(f"STOPPED at {f.epoch}: stage {f.stage} failed ({f.reason}); it and later epochs wait. "
              "The failure is recorded (see `fleetproof status`); run again to retry.", file=sys.stderr)  # fmt: skip
        return 1
    return 0


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
    from pipelines.recalc import read_overrides, recalculate
    from pipelines.rewards_policy import load_rewards_policy

    _hour(a.epoch_from, "--from")
    _hour(a.epoch_to, "--to")
    if a.epoch_from > a.epoch_to:
        raise UserError(f"--from {a.epoch_from} is after --to {a.epoch_to}: the period must start before it ends")
    policy, rewards = load_policy(a.policy), load_rewards_policy(a.rewards_policy)
    overrides = read_overrides(a.overrides) if a.overrides else []
    with connect(_existing_db(a.db)) as con:
        statements = recalculate(con, a.epoch_from, a.epoch_to, policy, rewards, overrides, apply=a.apply)
        if a.apply:
            epochs = [r[0] for r in con.execute("SELECT epoch FROM processed_epochs WHERE epoch >= ? ORDER BY epoch", [a.epoch_from]).fetchall()]
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


def cmd_demo(a: argparse.Namespace) -> int:
    """The embedded default: simulate a network, run the whole pipeline, print a summary."""
    work = Path(a.workdir)
    marker = work / DEMO_MARKER
    if work.exists() and not a.keep:
        if not work.is_dir() or (any(work.iterdir()) and not marker.is_file()):
            raise UserError(f"{work} exists and was not made by `fleetproof demo`; choose another --workdir or remove it yourself")
        if any(work.iterdir()) and not a.yes and not _confirm(f"delete the earlier demo in {work}? [y/N] "):
            raise UserError(f"kept {work}; pass --keep to reuse it or --yes to replace it")
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    marker.write_text("made by fleetproof demo; `fleetproof demo` may delete this folder\n")
    drops, db, out = work / "drops", work / "fleetproof.duckdb", work / "out"
    print(f"== simulating {a.devices} devices for {a.hours} hours (seed {a.seed}) into {drops}")
    cmd_simulate(argparse.Namespace(out=drops, devices=a.devices, hours=a.hours, seed=a.seed, scenario=a.scenario))
    print(f"== running the pipeline: drops {drops} -> {db} -> {out}")
    if cmd_run(argparse.Namespace(drops=drops, db=db, out=out, policy=None, rewards_policy=None, skip_quality_bars=False)):
        print("== the run stopped early (see above); the summary covers what was computed")
    print("== status")
    cmd_status(argparse.Namespace(db=db, json=False))
    print("== detection quality against the simulator's ground truth")
    cmd_evaluate(argparse.Namespace(db=db, drops=drops, types=None))
    print(f"== output tables: {out}/<table>/epoch=<YYYY-MM-DDTHH>/part-0.parquet")
    for table in sorted(p.name for p in out.iterdir() if p.is_dir()):
        files = sorted((out / table).glob("epoch=*/*.parquet"))
        print(f"  {table}: {len(files)} epoch file(s), e.g. {files[-1] if files else '-'}")
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

    s = sub.add_parser("demo", help="simulate a network and run the whole pipeline on it")
    s.add_argument("--workdir", type=Path, default=Path("var/demo"))
    s.add_argument("--devices", type=int, default=3000)
    s.add_argument("--hours", type=int, default=12)
    s.add_argument("--seed", type=int, default=7)
    s.add_argument("--scenario", type=Path)
    s.add_argument("--keep", action="store_true", help="keep an existing workdir (process only what is new)")
    s.add_argument("--yes", action="store_true", help="replace an earlier demo's workdir without asking")
    s.set_defaults(func=cmd_demo)
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
