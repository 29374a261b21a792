"""Benchmark: a gzip bomb in an hour folder is refused at the stated size, memory stays small,
and its hour is rejected with the reason (its rows cannot be counted against the manifest).

    uv run python benchmarks/bench_hostile.py --inflated-gib 2

Writes only into a temporary folder.
"""

from __future__ import annotations

import argparse
import gzip
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from hostile_hours import make_hour  # noqa: E402

from pipelines.contract import MAX_DECOMPRESSED_BYTES  # noqa: E402
from pipelines.db import connect  # noqa: E402
from pipelines.ingest import ingest_hour  # noqa: E402


def gzip_bomb(path: Path, inflated: int) -> int:
    """Newlines only, streamed into gzip level 9; returns the compressed size."""
    chunk = b"\n" * (16 << 20)
    with gzip.GzipFile(path, "wb", compresslevel=9, mtime=0) as f:
        for _ in range(inflated // len(chunk)):
            f.write(chunk)
    return path.stat().st_size


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--inflated-gib", type=float, default=2.0)
    a = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        inflated = int(a.inflated_gib * (1 << 30))
        size = gzip_bomb(root / "bomb.gz", inflated)
        folder = make_hour(root / "drops", extra={"uptime.csv.gz": ((root / "bomb.gz").read_bytes(), 0)})
        started = time.perf_counter()
        with connect(root / "db.duckdb") as con:
            result = ingest_hour(con, folder)
        seconds = time.perf_counter() - started
    print(
        f"gzip bomb           {size / 2**20:.1f} MiB -> {inflated / 2**30:.1f} GiB (limit {MAX_DECOMPRESSED_BYTES / 2**30:.0f} GiB)"
    )
    print(f"hour                {result.status}, {result.rows_landed} rows landed")
    print(f"reason              {result.reason}")
    print(f"ingest              {seconds:.1f} s, peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024} MiB")


if __name__ == "__main__":
    main()
