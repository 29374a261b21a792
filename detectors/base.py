"""The one small interface every detector implements: evidence in, scores and reasons out.

Modelled on pyod and scikit-learn: parameters are set in ``__init__`` and never changed by
running; ``fit`` learns whatever state a detector needs (``*_`` attributes) from the evidence
of an epoch; ``score`` returns one row per device it holds something against, with a score in
0..1 (higher is more suspicious), an action (``probation`` suspects, ``reject`` establishes
fraud) and a reason a person can read. ``detect`` keeps the rows at or above ``threshold``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar, Self

import duckdb
import polars as pl

SCORE_SCHEMA = {
    "device_id": pl.String,
    "account_id": pl.String,
    "score": pl.Float64,
    "action": pl.String,
    "reason": pl.String,
    "details": pl.String,
}
"""What ``score`` returns; ``details`` is a JSON object with the figures behind the reason."""

EVIDENCE_SCHEMA = {"detector": pl.String, "fraud_type": pl.String, **SCORE_SCHEMA}
ACTIONS = ("review", "probation", "reject")
"""``review``: a lead for a person, stored with the evidence, no effect on the tier;
``probation``: suspected, rewards held until the evidence expires; ``reject``: established."""


@dataclass(frozen=True)
class Evidence:
    """What a detector may look at: the database (features, raw feeds, its own past evidence)
    as of one epoch. The pipeline writes the findings; a detector that needs memory of its own
    between epochs keeps it in a table named after it (``anomaly_top``)."""

    con: duckdb.DuckDBPyConnection
    epoch: str

    def sql(self, query: str, **params: object) -> pl.DataFrame:
        """Run a query with ``$epoch`` and any named parameters bound; return polars."""
        table = self.con.sql(query, params={"epoch": self.epoch, **params}).to_arrow_table()
        return pl.from_arrow(table)  # type: ignore[return-value]


class Detector(ABC):
    """Base class: subclasses set ``name`` and ``fraud_type`` and implement ``score``."""

    name: ClassVar[str]
    fraud_type: ClassVar[str]

    def __init__(self, threshold: float = 0.5):
        self.threshold = threshold

    def fit(self, evidence: Evidence) -> Self:
        """Learn state from the epoch's evidence; rule-based detectors learn nothing."""
        return self

    @abstractmethod
    def score(self, evidence: Evidence) -> pl.DataFrame:
        """Rows (SCORE_SCHEMA) for devices with something against them; others score 0."""

    def detect(self, evidence: Evidence) -> pl.DataFrame:
        """``fit`` then ``score``, keeping rows at or above the threshold (EVIDENCE_SCHEMA)."""
        scored = self.fit(evidence).score(evidence)
        missing = set(SCORE_SCHEMA) - set(scored.columns)
        if missing:
            raise ValueError(f"{self.name}.score() did not return columns {sorted(missing)}")
        bad_action = scored.filter(~pl.col("action").is_in(ACTIONS))
        if not bad_action.is_empty():
            raise ValueError(f"{self.name}: unknown action {bad_action['action'][0]!r}")
        return (
            scored.select(list(SCORE_SCHEMA))
            .cast(SCORE_SCHEMA)  # type: ignore[arg-type]
            .filter(pl.col("score") >= self.threshold)
            .with_columns(pl.lit(self.name).alias("detector"), pl.lit(self.fraud_type).alias("fraud_type"))
            .select(list(EVIDENCE_SCHEMA))
            .sort("device_id")
        )

    def get_params(self) -> dict[str, object]:
        return {k: v for k, v in vars(self).items() if not k.endswith("_") and not k.startswith("_")}

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({params})"
