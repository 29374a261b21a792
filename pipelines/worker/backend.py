"""The network backend's part for one worker: issue challenges, ask samples after the
commitment, fill the fields only the backend knows, and write a contract hour.

Used to close the loop on a real worker (tests, ``benchmarks/bench_worker_gpu.py``): the
worker's own report and answers become a drop that ``fleetproof run`` ingests and verifies
like any other. The backend's clock stamps ``issued_at`` and ``responded_at`` around the
whole answer, so the pipeline's timing checks see real round trips.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import polars as pl

from pipelines.contract import HARDWARE, POW, UPTIME
from pipelines.epoch import name as epoch_name
from pipelines.simulate.writer import write_hour
from pipelines.worker.answer import Answer, AnswerError, Backend, Challenge, answer

SAMPLES_PER_CHALLENGE = 8


@dataclass(frozen=True)
class BackendView:
    """What the backend adds to a worker's report: its ids and what it sees of the host."""

    account_id: str
    device_prefix: str = "dev"
    ip: str = "203.0.113.10"
    asn: int = 64500
    country: str = "DE"
    bandwidth_down_mbps: float = 940.0
    bandwidth_up_mbps: float = 480.0

    def device_id(self, gpu_index: int) -> str:
        return f"{self.device_prefix}-{gpu_index}"


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def hardware_frame(rows: Sequence[dict[str, Any]], view: BackendView) -> pl.DataFrame:
    """The worker's report rows with the backend's fields filled, in contract column order."""
    if not rows:
        raise ValueError("the worker reported no GPU: there is no hardware row to send")
    filled = [
        {
            **row,
            "device_id": view.device_id(row["gpu_index"]),
            "account_id": view.account_id,
            "ip": view.ip,
            "asn": view.asn,
            "country": view.country,
            "bandwidth_down_mbps": view.bandwidth_down_mbps,
            "bandwidth_up_mbps": view.bandwidth_up_mbps,
        }
        for row in rows
    ]
    df = pl.DataFrame(filled, infer_schema_length=None)
    if df.schema["ts"] == pl.String:  # the report as sent: ISO 8601 UTC text
        df = df.with_columns(pl.col("ts").str.to_datetime("%Y-%m-%dT%H:%M:%S%.fZ", time_unit="us"))
    return df.select(HARDWARE.column_names)


class Worker(Protocol):
    """A worker as the backend sees it: it commits to a challenge, then reveals samples."""

    def commit(self, challenge: Challenge) -> dict[str, Any]:
        """The commitment (``status``, ``compute_ms``, ``result_digest``, ...) or status ``error``."""
        ...

    def reveal(self, positions: list[list[int]]) -> list[list[int]]:
        """``[[i, j, value], ...]`` for positions asked after the commitment."""
        ...


class InProcessWorker:
    """The answerer called directly (keeps a GPU backend warm between challenges)."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self._answer: Answer | None = None
        self.commitments: list[dict[str, Any]] = []
        """Every commitment so far, with its timing parts (for benchmarks)."""

    def commit(self, challenge: Challenge) -> dict[str, Any]:
        try:
            self._answer = answer(challenge, self.backend)
        except AnswerError as e:
            out = {"kind": challenge.kind, "n": challenge.n, "seed": challenge.seed, "status": "error", "reason": str(e)}
        else:
            out = self._answer.commitment()
        self.commitments.append(out)
        return out

    def reveal(self, positions: list[list[int]]) -> list[list[int]]:
        if self._answer is None:
            raise RuntimeError("reveal before commit")
        return self._answer.samples(positions)


class CommandWorker:
    """``fleetproof worker answer --samples-stdin`` as a separate process, one per challenge:
    it prints its commitment, then reads the positions, as a real worker would."""

    def __init__(self, backend: str = "cpu") -> None:
        self.backend = backend
        self._proc: subprocess.Popen | None = None

    def commit(self, challenge: Challenge) -> dict[str, Any]:
        argv = [sys.executable, "-m", "pipelines.cli", "worker", "answer", "--kind", challenge.kind,
                "--n", str(challenge.n), "--seed", str(challenge.seed), "--backend", self.backend, "--samples-stdin"]  # fmt: skip
        self._proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        line = self._proc.stdout.readline()  # type: ignore[union-attr]
        if not line:
            self._proc.wait()
            raise RuntimeError(f"the worker exited ({self._proc.returncode}) without a commitment")
        out = json.loads(line)
        if out["status"] != "ok":
            self._proc.wait()
        return out

    def reveal(self, positions: list[list[int]]) -> list[list[int]]:
        proc = self._proc
        if proc is None:
            raise RuntimeError("reveal before commit")
        out, _ = proc.communicate(json.dumps(positions) + "\n", timeout=600)
        if proc.returncode != 0:
            raise RuntimeError(f"the worker failed ({proc.returncode}) revealing samples")
        return json.loads(out.splitlines()[-1])["samples"]


def challenge_worker(
    device_id: str,
    challenges: Sequence[Challenge],
    worker: Worker,
    rng: np.random.Generator,
    samples: int = SAMPLES_PER_CHALLENGE,
) -> pl.DataFrame:
    """Issue each challenge, take the worker's commitment, then ask ``samples`` random
    positions (chosen only after the digest, as the contract requires); one ``pow`` row each.
    A worker that cannot answer correctly (out of memory, a faulty device) answers ``error``."""
    rows = []
    for k, ch in enumerate(challenges):
        issued = _now()
        row = {"challenge_id": f"{device_id}-{issued:%Y%m%d%H%M%S}-{k:04d}", "batch_id": None,
               "device_id": device_id, "kind": ch.kind, "issued_at": issued, "n": ch.n, "seed": ch.seed}  # fmt: skip
        commitment = worker.commit(ch)
        if commitment["status"] != "ok":
            rows.append({**row, "responded_at": _now(), "status": "error", "compute_ms": None,
                         "result_digest": None, "samples": None})  # fmt: skip
            continue
        positions = rng.integers(0, ch.n, size=(samples, 2)).tolist()
        entries = worker.reveal(positions)
        responded = _now()
        rows.append({**row, "responded_at": responded, "status": "ok", "compute_ms": commitment["compute_ms"],
                     "result_digest": commitment["result_digest"],
                     "samples": "[" + ",".join(f"[{i},{j},{v}]" for i, j, v in entries) + "]"})  # fmt: skip
    schema = {"seed": pl.UInt64, "issued_at": pl.Datetime("us"), "responded_at": pl.Datetime("us"),
              "compute_ms": pl.Float64, "batch_id": pl.String, "result_digest": pl.String, "samples": pl.String}  # fmt: skip
    return pl.DataFrame(rows, schema_overrides=schema, infer_schema_length=None).select(POW.column_names)


def heartbeats(device_ids: Sequence[str], start: datetime, every_minutes: int = 10, count: int = 6) -> pl.DataFrame:
    """The worker's heartbeats: ``count`` beats ``every_minutes`` apart from ``start``."""
    rows = [{"ts": start + timedelta(minutes=every_minutes * k), "device_id": d, "source": "heartbeat", "ok": True,
             "latency_ms": 25.0} for d in device_ids for k in range(count)]  # fmt: skip
    return pl.DataFrame(rows).select(UPTIME.column_names)


def write_worker_hour(drops: str | Path, hardware: pl.DataFrame, pow_: pl.DataFrame, uptime: pl.DataFrame,
                      fmt: str = "parquet") -> Path:  # fmt: skip
    """One complete contract hour (manifest last), named after the hour of the first challenge."""
    first = pow_["issued_at"].min() if pow_.height else hardware["ts"].min()
    hour = epoch_name(first)
    folder = Path(drops) / hour
    write_hour(folder, hour, {"hardware": hardware, "pow": pow_, "uptime": uptime}, fmt)
    return folder
