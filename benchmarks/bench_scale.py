"""Benchmark: one simulated hour of N devices through `fleetproof run`, stage by stage, with a
bare DuckDB load of the same files; and a rewards-only recalculation.

    uv run python benchmarks/bench_scale.py --devices 100000 300000 --workdir var/scale
    uv run python benchmarks/bench_scale.py --devices 1000000 --workdir var/scale
    uv run python benchmarks/bench_scale.py --recalc-db var/scale/fp-100000.duckdb
    uv run python benchmarks/bench_scale.py --pow-compare var/scale/fp-100000.duckdb

Each size runs three processes in turn, each measured alone (wall time and its own peak RSS):
``fleetproof simulate`` of the hour, a bare load (DuckDB's default readers, no validation) and
``pipelines.run.run`` with a timer around each stage (``pipelines.stages``). Results are kept in
``WORKDIR/scale-N.json``; the table shows every size measured in the work folder and each
stage's exponent (time ~ devices^k) between the smallest and the largest. Targets (issue 14):
1M x 1 h end to end <= 60 s and <= 8 GiB on 2 cores, exponents <= 1.05, ingest <= 2x bare load,
simulate <= 90 s; rewards-only recalculation of 720 epochs at 100k devices <= 10 min.
``--recalc-db`` times a rewards-only recalculation of a database's last ``--recalc-epochs``
epochs and projects it to 720 epochs (measure a database of more than a day: ``fleetproof
simulate --hours 26`` then ``fleetproof run``; the first hours pay no one and their windows are
not full); ``--pow-compare`` times the compiled kernel against numpy's generator on a
database's PoW samples, in CPU seconds.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

STAGES = {  # stage -> the function of its module (`pipelines.stages`) the runner calls
    "ingest": "land",
    "verify": "run",
    "features": "run",
    "detect": "run",
    "tier": "run",
    "plan": "run",
    "stake": "run",
    "reward": "run",
    "slash": "run",
    "publish": "write",
}


def _child(args: list[str]) -> tuple[float, float, str]:
    """Run ``python args``; (wall seconds, its own peak RSS in GiB, stdout)."""
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, *args], stdout=subprocess.PIPE, text=True)
    out = proc.stdout.read() if proc.stdout else ""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed with exit code {proc.returncode}")
    return time.perf_counter() - started, usage.ru_maxrss / 2**20, out


def bare_load(folder: Path, db: Path) -> float:
    """bench_ingest's bare DuckDB load of the hour's files, in a fresh database removed after."""
    from bench_ingest import bare_load as load  # benchmarks/ is on sys.path when run as a script

    db.unlink(missing_ok=True)
    elapsed = load(folder, db)
    db.unlink(missing_ok=True)
    return elapsed


def pipeline(drops: Path, db: Path, out: Path) -> dict:
    """`fleetproof run` on the drops with a timer around each stage function; seconds per stage."""
    import importlib
    import shutil

    import pipelines.run as run_module

    db.unlink(missing_ok=True)
    shutil.rmtree(out, ignore_errors=True)
    seconds: dict[str, float] = dict.fromkeys(STAGES, 0.0)

    def timed(stage: str, fn):
        def wrapper(*args, **kwargs):
            started = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                seconds[stage] += time.perf_counter() - started

        return wrapper

    for stage, name in STAGES.items():
        module = importlib.import_module(f"pipelines.stages.{stage}")
        setattr(module, name, timed(stage, getattr(module, name)))
    started = time.perf_counter()
    summary = run_module.run(drops, db, out)
    total = time.perf_counter() - started
    if summary.blocked:
        raise SystemExit(f"blocked at {summary.blocked[0]}")
    sybil = sum(e.detector_seconds.get("sybil", 0.0) for e in summary.epochs)
    return {"total": total, **seconds, "sybil": sybil, "other": total - sum(seconds.values()),
            "samples": sum(e.samples for e in summary.epochs), "devices": max(e.devices for e in summary.epochs)}  # fmt: skip


def measure(devices: int, work: Path, seed: int, reuse: bool) -> dict:
    drops = work / f"drops-{devices}"
    result: dict = {"devices": devices}
    if not (reuse and (drops / "_truth").exists()):
        import shutil

        shutil.rmtree(drops, ignore_errors=True)
        wall, rss, _ = _child(["-m", "pipelines.cli", "simulate", "--out", str(drops), "--devices", str(devices),
                               "--hours", "1", "--seed", str(seed)])  # fmt: skip
        result |= {"simulate": wall, "simulate_rss_gib": rss}
    hour = next(p for p in sorted(drops.iterdir()) if not p.name.startswith("_"))
    result["hour_mib"] = sum(f.stat().st_size for f in hour.iterdir()) / 2**20
    wall, _, out = _child([__file__, "--bare-child", str(hour), str(work / "bare.duckdb")])
    result["bare_load"] = float(out.strip().splitlines()[-1])
    wall, rss, out = _child(
        [__file__, "--run-child", str(drops), str(work / f"fp-{devices}.duckdb"), str(work / f"out-{devices}")]
    )
    result |= json.loads(out.strip().splitlines()[-1]) | {"run_rss_gib": rss, "run_process_wall": wall}
    (work / f"scale-{devices}.json").write_text(json.dumps(result, indent=1))
    return result


def report(work: Path) -> None:
    results = sorted((json.loads(p.read_text()) for p in work.glob("scale-*.json")), key=lambda r: r["devices"])
    if not results:
        return
    cols = [
        "total",
        "ingest",
        "bare_load",
        "verify",
        "features",
        "detect",
        "sybil",
        "tier",
        "plan",
        "stake",
        "reward",
        "slash",
        "publish",
        "other",
    ]
    print(f"{'devices x 1 h':>14} " + " ".join(f"{c:>10}" for c in cols) + f" {'peak GiB':>9} {'simulate':>9}")
    for r in results:
        sim = f"{r['simulate']:9.1f}" if "simulate" in r else f"{'reused':>9}"
        print(f"{r['devices']:>14,} " + " ".join(f"{r[c]:10.1f}" for c in cols) + f" {r['run_rss_gib']:9.2f} {sim}")
    for r in results:
        print(f"{r['devices']:>14,}  ingest / bare load {r['ingest'] / r['bare_load']:.2f} x; "
              f"{r['samples']:,} PoW samples, {r['hour_mib']:.0f} MiB hour folder")  # fmt: skip
    lo, hi = results[0], results[-1]
    if hi["devices"] > lo["devices"]:
        ratio = math.log(hi["devices"] / lo["devices"])
        exps = {c: math.log(max(hi[c], 1e-3) / max(lo[c], 1e-3)) / ratio for c in cols if c not in ("other",)}
        print(f"exponent {lo['devices']:,} -> {hi['devices']:,}: " + ", ".join(f"{c} {k:.2f}" for c, k in exps.items()))


def recalc(db: Path, last: int) -> None:
    """Time a rewards-only recalculation of the last ``last`` processed epochs of ``db`` (a dry
    run: rolled back) and project it to 720 epochs (a month).

    The projection is only as good as the epochs measured: an epoch in which no device is
    eligible yet (a network's first hours: no 5 hours of uptime) splits nothing and costs a
    fraction of one that pays, and the 24-hour windows (throughput, bandwidth) are full only
    from the 24th hour. So the last epochs of a database of more than a day are measured, and
    the devices they gave a share to and the history behind them are printed beside the figure."""
    from pipelines.db import connect
    from pipelines.recalc import recalculate_rewards
    from pipelines.rewards_policy import load_rewards_policy

    policy = load_rewards_policy()
    with connect(db) as con:
        epochs = [r[0] for r in con.execute("SELECT epoch FROM processed_epochs ORDER BY epoch").fetchall()]
        measured = epochs[-last:]
        devices = con.execute("SELECT count(*) FROM device_features WHERE epoch = ?", [epochs[-1]]).fetchone()[0]
        paid = con.execute(
            "SELECT count(*) FILTER (weight > 0) / count(DISTINCT epoch) FROM reward_eligibility WHERE epoch >= ?",
            [measured[0]],
        ).fetchone()[0]
        started, cpu = time.perf_counter(), time.process_time()
        statements = recalculate_rewards(con, measured[0], measured[-1], policy)
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    per_epoch = seconds / len(measured)
    print(f"rewards-only recalculation, {devices:,} devices, the last {len(measured)} of {len(epochs)} epoch(s) "
          f"({len(epochs) - len(measured)} hours of history before them; {paid or 0:,.0f} devices with a share "
          "per epoch, paid or held): "
          f"{seconds:.1f} s wall, {cpu:.1f} s CPU, {per_epoch:.2f} s per epoch "
          f"({statements.height} accounts changed, dry run)")  # fmt: skip
    if len(epochs) - len(measured) < 24:
        print("  (fewer than 24 hours before the measured epochs: the 24-hour windows are not full; "
              "simulate more hours for a month's steady state)")  # fmt: skip
    print(f"projected 720 epochs: {per_epoch * 720 / 60:.1f} min wall (target <= 10 min), "
          f"{cpu / len(measured) * 720 / 60:.1f} min of CPU")  # fmt: skip


def pow_compare(db: Path, limit: int) -> None:
    """The compiled kernel against numpy's generator (one generator per distinct vector of a
    challenge, the contract's definition) on the first ``limit`` samples of ``db``'s last hour;
    CPU seconds, so that other load on the machine does not count."""
    import duckdb
    import numpy as np

    from pipelines.pow_math import a_row, b_col, sample_entries

    con = duckdb.connect(str(db), read_only=True)
    s = con.execute(
        """
        WITH s AS (SELECT seed, n, unnest(CAST(CAST(samples AS JSON) AS BIGINT[][])) AS t FROM pow
                   WHERE _hour = (SELECT max(_hour) FROM pow) AND status = 'ok' AND samples IS NOT NULL)
        SELECT seed, n, t[1] AS i, t[2] AS j FROM s WHERE t[1] BETWEEN 0 AND n - 1 AND t[2] BETWEEN 0 AND n - 1
        ORDER BY seed, n, i, j LIMIT ?
        """,
        [limit],
    ).fetchnumpy()
    con.close()
    seed, n, i, j = s["seed"], s["n"], s["i"], s["j"]
    sample_entries(seed[:2], n[:2], i[:2], j[:2])  # load the compiled kernel before timing

    def numpy_entries() -> np.ndarray:
        out, rows, cols, key = np.empty(seed.size, np.int64), {}, {}, None
        for k in range(seed.size):
            if (seed[k], n[k]) != key:
                key, rows, cols = (seed[k], n[k]), {}, {}
            a = rows.get(i[k])
            if a is None:
                a = rows[i[k]] = a_row(int(seed[k]), int(i[k]), int(n[k]))
            b = cols.get(j[k])
            if b is None:
                b = cols[j[k]] = b_col(int(seed[k]), int(j[k]), int(n[k]))
            out[k] = int(a @ b)
        return out

    starts = np.flatnonzero(np.r_[True, (seed[1:] != seed[:-1]) | (n[1:] != n[:-1])])
    ends = np.r_[starts[1:], seed.size]
    values = sum(int(n[a]) * (len(set(i[a:b].tolist())) + len(set(j[a:b].tolist()))) for a, b in zip(starts, ends))
    results = {}
    for name, fn in (("numpy generator", numpy_entries), ("kernel, 1 thread", lambda: sample_entries(seed, n, i, j, threads=1)),
                     ("kernel, all threads", lambda: sample_entries(seed, n, i, j))):  # fmt: skip
        cpu, wall = time.process_time(), time.perf_counter()
        results[name] = fn()
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        print(f"{name:<20} {cpu:7.2f} s CPU {wall:7.2f} s wall  {cpu / values * 1e9:5.2f} ns CPU per generated value")
    assert all(np.array_equal(results["numpy generator"], r) for r in results.values())
    print(f"{seed.size:,} samples, {values:,} generated values (each distinct vector of a challenge once); identical entries")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--bare-child":
        print(bare_load(Path(sys.argv[2]), Path(sys.argv[3])))
        return
    if len(sys.argv) > 1 and sys.argv[1] == "--run-child":
        print(json.dumps(pipeline(Path(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4]))))
        return
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--devices", type=int, nargs="*", default=[], help="sizes to measure, e.g. 100000 300000 1000000")
    p.add_argument("--workdir", type=Path, default=Path("var/scale"))
    p.add_argument("--seed", type=int, default=3)
    p.add_argument("--reuse", action="store_true", help="reuse drops already simulated in the work folder")
    p.add_argument("--recalc-db", type=Path, help="time a rewards-only recalculation of this database's last epochs")
    p.add_argument("--recalc-epochs", type=int, default=2, help="how many of its last epochs (default 2)")
    p.add_argument("--pow-compare", type=Path, help="kernel vs numpy's generator on this database's PoW samples")
    p.add_argument("--pow-samples", type=int, default=20_000)
    a = p.parse_args()
    a.workdir.mkdir(parents=True, exist_ok=True)
    for devices in a.devices:
        measure(devices, a.workdir, a.seed, a.reuse)
    report(a.workdir)
    if a.recalc_db:
        recalc(a.recalc_db, a.recalc_epochs)
    if a.pow_compare:
        pow_compare(a.pow_compare, a.pow_samples)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    main()
