"""Benchmark: time to build the dashboard's overview page (and the whole report) from a scale
database, and time to open the overview in headless Chromium until every figure rendered.

    uv run python benchmarks/bench_sybil.py --scale --devices 100000 --hours 1 --workdir var/scale100k
    uv run python benchmarks/bench_dashboard.py --db var/scale100k/fp.duckdb

Target (issue 12): a page for 1M devices opens in a few seconds. Building reads the DuckDB file
under its writer lock; opening loads ``overview.html`` from disk (plotly.min.js beside it).
``--replicate K`` benchmarks a copy whose device rows (tiers, features, eligibility,
allocations) are repeated K times under new ids: the device-sized tables of a network K times
larger, for when the larger scale database cannot be simulated in the time at hand.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from dashboards import build_report
from dashboards.browser import check_page, chromium
from pipelines.db import connect, scalar

DEVICE_TABLES = ("device_tiers", "device_features", "reward_eligibility", "reward_allocations")


def replicated(db: Path, factor: int) -> Path:
    """A copy of ``db`` with every row of the device tables repeated ``factor`` times (ids ``<id>~k``)."""
    dest = Path(tempfile.mkdtemp(prefix="fp-dash-x")) / "fp.duckdb"
    shutil.copy(db, dest)
    with connect(dest) as con:
        for table in DEVICE_TABLES:
            con.execute(f"""INSERT INTO {table} SELECT t.* REPLACE (t.device_id || '~' || r.k AS device_id)
                            FROM {table} t CROSS JOIN range(1, {int(factor)}) r(k)""")  # fmt: skip
        con.execute("CHECKPOINT")
    return dest


def bench(db: Path, repeats: int) -> None:
    out = Path(tempfile.mkdtemp(prefix="fp-dash-"))
    builds = []
    with connect(db) as con:
        latest = scalar(con, "SELECT max(epoch) FROM processed_epochs")
        devices = scalar(con, "SELECT count(*) FROM device_tiers WHERE epoch = ?", [latest])
        for _ in range(repeats):
            started = time.perf_counter()
            build_report(con, out / "overview", only=["overview"])
            builds.append(time.perf_counter() - started)
        started = time.perf_counter()
        full = build_report(con, out / "full")
        full_s = time.perf_counter() - started
    page = out / "overview" / "overview.html"
    with chromium() as browser:
        checks = [check_page(browser, page) for _ in range(repeats)]
    bad = [c for c in checks if not c.ok]
    print(f"{db}: {devices:,} devices in epoch {latest}")
    print(f"build overview        {min(builds):6.2f} s  (best of {repeats}; all {', '.join(f'{b:.2f}' for b in builds)})")
    print(f"open overview         {min(c.seconds for c in checks):6.2f} s  (best of {repeats}, until all "
          f"{checks[0].figures} figures rendered; all {', '.join(f'{c.seconds:.2f}' for c in checks)})")  # fmt: skip
    print(
        f"overview.html         {page.stat().st_size / 1024:6.0f} KiB (+ plotly.min.js {(out / 'overview' / 'plotly.min.js').stat().st_size / 2**20:.1f} MiB)"
    )
    print(
        f"build whole report    {full_s:6.2f} s  ({len(full.pages)} pages + {len(full.device_pages)} device pages; "
        + ", ".join(f"{k} {v:.2f}" for k, v in full.seconds.items())
        + ")"
    )
    if bad:
        print("NOT RENDERED:", [(c.rendered, c.figures, c.errors) for c in bad])
    shutil.rmtree(out, ignore_errors=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--db", type=Path, action="append", required=True, help="a processed scale database (repeatable)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--replicate", type=int, default=1, help="benchmark a copy with the device rows repeated this many times")
    a = p.parse_args()
    if a.replicate < 1 or a.repeats < 1:
        p.error("--replicate and --repeats must be at least 1")
    for db in a.db:
        if not db.exists():
            p.error(f"no database at {db}: make it with benchmarks/bench_sybil.py --scale --workdir DIR")
        if a.replicate > 1:
            started = time.perf_counter()
            copy = replicated(db, a.replicate)
            print(f"{db} with its device rows repeated {a.replicate} times -> {copy} ({time.perf_counter() - started:.0f} s)")
            bench(copy, a.repeats)
            shutil.rmtree(copy.parent, ignore_errors=True)
        else:
            bench(db, a.repeats)


if __name__ == "__main__":
    main()
