"""Stage ``verify``: every sampled PoW product entry of the epoch recomputed exactly
(``pipelines.features.verify_pow``), then the bars on how many answers could be checked and how
many of them were wrong."""

from __future__ import annotations

import duckdb

from pipelines.features import verify_pow
from pipelines.quality import sample_verification_rate, wrong_sample_share
from pipelines.stages.context import StageContext, require

NAME = "verify"
WRITES = ("pow_checks",)
READS = ("pow",)
DDL = """
CREATE TABLE IF NOT EXISTS pow_checks (
    challenge_id VARCHAR NOT NULL,
    _hour VARCHAR NOT NULL,
    samples_total INTEGER NOT NULL,
    samples_bad INTEGER NOT NULL,
    first_bad VARCHAR,                  -- e.g. "[12, 40] = 17, expected 23"
    samples_flipped INTEGER             -- of the bad ones, one bit off the exact entry (a hardware fault's mark;
                                        -- NULL in rows written before it was counted)
);
"""


def run(con: duckdb.DuckDBPyConnection, epoch: str, ctx: StageContext) -> dict[str, int]:
    samples, bad = verify_pow(con, epoch)
    if ctx.quality_bars:
        q = ctx.policy.quality
        require(
            epoch,
            [
                sample_verification_rate(con, epoch, q.min_sample_verification_rate),
                wrong_sample_share(con, epoch, q.max_wrong_sample_share),
            ],
        )
    return {"samples": samples, "bad_samples": bad}
