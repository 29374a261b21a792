"""Privacy of the public release over a long simulated run (issue 11): the scan and the join-back.

    uv run python benchmarks/bench_release_privacy.py --devices 1250 --days 30

Simulates, runs the pipeline, publishes the signed release of every epoch, verifies it, then
scans every byte of every file for every raw identifier of the whole run (IPs, emails, host
fingerprints, GPU UUIDs, serials, device and account ids) and tries to join the simulator's
real identifiers (raw, and hashed without the key) to the released values. Prints the figures.
"""

from __future__ import annotations

import argparse
import hashlib
import resource
import shutil
import tempfile
import time
from pathlib import Path

import polars as pl

from pipelines.cli import main
from pipelines.db import connect
from pipelines.release import manifest, privacy, pseudonymize
from pipelines.release.writer import identifiers


def _timed(label: str, fn) -> float:
    started = time.perf_counter()
    assert fn() == 0, label
    took = time.perf_counter() - started
    print(f"{label:<28} {took:8.1f} s", flush=True)
    return took


def main_(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--devices", type=int, default=1250)
    p.add_argument("--days", type=int, default=30)
    p.add_argument("--seed", type=int, default=3)
    p.add_argument("--workdir", type=Path, help="default: a temporary folder")
    p.add_argument("--reuse", action="store_true", help="with --workdir: keep its simulated and processed network, release again")
    a = p.parse_args(argv)
    work = a.workdir or Path(tempfile.mkdtemp(prefix="fp-bench-release-"))
    drops, db, out, rel, keys = work / "drops", work / "fp.duckdb", work / "out", work / "release", work / "keys"
    hours = 24 * a.days
    if not (a.reuse and db.exists()):
        _timed("simulate", lambda: main(["simulate", "--out", str(drops), "--devices", str(a.devices), "--hours", str(hours),
                                         "--seed", str(a.seed)]))  # fmt: skip
        _timed("run", lambda: main(["run", "--drops", str(drops), "--db", str(db), "--out", str(out)]))
    shutil.rmtree(rel, ignore_errors=True)
    if not (keys / "release_signing.pem").exists():  # --reuse keeps the keys too
        _timed("keygen", lambda: main(["release", "keygen", "--out", str(keys)]))
    _timed("release (all epochs)", lambda: main(["release", "--db", str(db), "--out", str(rel), "--secret", str(keys / "release_secret.hex"),
                                                  "--signing-key", str(keys / "release_signing.pem")]))  # fmt: skip
    _timed("verify", lambda: main(["release", "verify", str(rel), "--key", str(keys / "release_signing.pub")]))
    epochs = manifest.release_epochs(rel)
    with connect(db) as con:
        pseudonymize.register(con, b"\0" * 32)
        con.execute("CREATE OR REPLACE TEMP MACRO hours_back(epoch, hours) AS '0000'")  # every hour, not a window
        raw = identifiers(con, epochs[-1], keyed_wallets=False).select("kind", "value")
    files = [f for f in rel.rglob("*") if f.is_file()]
    size = sum(f.stat().st_size for f in files)
    started = time.perf_counter()
    findings = privacy.scan_release(rel, raw)
    scan_s = time.perf_counter() - started
    values = raw["value"].to_list()
    guesses = set(values)
    for v in values:
        guesses |= {hashlib.sha256(v.encode()).hexdigest()[:20], hashlib.md5(v.encode()).hexdigest()}
        guesses |= {f"{p}-{hashlib.sha256(f'{k}:{v}'.encode()).hexdigest()[:20]}" for k, p in pseudonymize.KINDS.items()}
    released: set[str] = set()
    for path in rel.glob("*/epoch=*/part-0.parquet"):  # every string value of every table
        frame = pl.read_parquet(path)
        for name, dtype in frame.schema.items():
            if dtype == pl.String:
                released |= set(frame[name].drop_nulls().unique())
            elif dtype == pl.List(pl.String):
                released |= set(frame[name].explode().drop_nulls().unique())
    counts = raw.group_by("kind").len().sort("kind")
    print(f"epochs released {len(epochs)}, files {len(files)}, {size / 2**20:.1f} MiB")
    print("raw identifiers looked for: " + ", ".join(f"{k} {n}" for k, n in counts.iter_rows()))
    print(f"privacy scan (every byte, decoded Parquet values) {scan_s:.1f} s: {len(findings)} finding(s)")
    print(f"join-back: {len(guesses)} raw and unkeyed-hash guesses vs {len(released)} released string values: "
          f"{len(guesses & released)} match(es)")  # fmt: skip
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    for f in findings[:10]:
        print("  LEAK", f)
    return 0 if not findings and not guesses & released else 1


if __name__ == "__main__":
    raise SystemExit(main_())
