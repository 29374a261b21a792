"""The one small interface every detector implements: evidence in, scores and reasons out.

Modelled on pyod and scikit-learn: parameters are set in ``__init__`` and never changed by
running; ``fit`` learns whatever state a detector needs (``*_`` attributes) from the evidence
of an epoch; ``score`` returns one row per device it holds something against, with a score in
0..1 (higher is more suspicious), an action (``probation`` suspects, ``reject`` establishes
fraud, ``clear`` refutes the detector's own earlier suspicion) and a reason a person can read.
``detect`` keeps the rows at or above ``threshold`` (0..1), and every ``clear`` row, and refuses
a ``fit`` that changed a parameter. ``get_params`` reads the parameters
from the ``__init__`` signature, as scikit-learn does.
"""

from __future__ import annotations

import inspect
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
ACTIONS = ("review", "probation", "reject", "clear")
"""``review``: a lead for a person, stored with the evidence, no effect on the tier;
``probation``: suspected, rewards held until the evidence expires; ``reject``: established;
``clear``: exact evidence that refutes the detector's earlier suspicion of the device (score 0):
its probation of that fraud type ends now instead of at its expiry."""


def held_since_cleared(detector: str, rests_on: str) -> str:
    """CTEs ``cleared`` and ``held(device_id, account_id, since, rests_on)``: each device's
    probation by ``detector`` in the window (``$window`` hours back, before ``$epoch``) since the
    detector last refuted it (``clear``), and whether every row of it meets ``rests_on`` (an SQL
    condition on the evidence row ``e``): the suspicion a later ``clear`` may refute."""
    return f"""cleared AS (  -- the detector's last refutation of each device in the window
    SELECT device_id, max(epoch) AS at FROM evidence
    WHERE detector = '{detector}' AND action = 'clear' AND epoch > hours_back($epoch, $window) AND epoch < $epoch
    GROUP BY device_id
),
held AS (  -- its suspicion since then, and whether every row of it rested on what a refutation answers
    SELECT e.device_id, any_value(e.account_id) AS account_id, min(e.epoch) AS since,
           bool_and(coalesce({rests_on}, false)) AS rests_on
    FROM evidence e LEFT JOIN cleared c USING (device_id)
    WHERE e.detector = '{detector}' AND e.action = 'probation'
      AND e.epoch > hours_back($epoch, $window) AND e.epoch < $epoch AND (c.at IS NULL OR e.epoch > c.at)
    GROUP BY e.device_id
)"""


@dataclass(frozen=True)
class Evidence:
    """What a detector may look at: the database (features, raw feeds, its own past evidence)
    as of one epoch. Detectors only read it: the pipeline writes the findings, and the rows of a
    detector's own tables (``writes``: ``anomaly_top``, ``sybil_clusters``) that ``fit`` returns."""

    con: duckdb.DuckDBPyConnection
    epoch: str

    def sql(self, query: str, **params: object) -> pl.DataFrame:
        """Run a query with ``$epoch`` and any named parameters bound; return polars."""
        table = self.con.sql(query, params={"epoch": self.epoch, **params}).to_arrow_table()
        return pl.from_arrow(table)  # type: ignore[return-value]


def store_tables(evidence: Evidence, detector: Detector) -> None:
    """Replace the epoch's rows of each table the detector ``writes`` with its ``tables_`` frame."""
    for table in detector.writes:
        frame = detector.tables_.get(table)
        if frame is None:
            raise ValueError(f"{detector.name}.fit did not return its table {table} in tables_")
        evidence.con.execute(f"DELETE FROM {table} WHERE epoch = ?", [evidence.epoch])
        if frame.height:
            evidence.con.register("detector_rows", frame.to_arrow())
            evidence.con.execute(f"INSERT INTO {table} SELECT ?, * FROM detector_rows", [evidence.epoch])
            evidence.con.unregister("detector_rows")


class Detector(ABC):
    """Base class: subclasses set ``name`` and ``fraud_type`` and implement ``score``."""

    name: ClassVar[str]
    fraud_type: ClassVar[str]
    writes: ClassVar[tuple[str, ...]] = ()
    """Tables of its own (its memory, or what other detectors read): ``fit`` returns the epoch's
    rows of each in ``tables_`` (a frame of the table's columns after ``epoch``, in order), and
    ``detect`` stores them before ``score`` runs."""
    needs: ClassVar[tuple[str, ...]] = ()
    """Detectors whose tables this one reads for the same epoch: they must run before it."""

    def __init__(self, threshold: float = 0.5):
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"{self.name}: threshold {threshold} is outside 0..1 (scores are 0..1)")
        self.threshold = threshold

    def fit(self, evidence: Evidence) -> Self:
        """Learn state from the epoch's evidence; rule-based detectors learn nothing."""
        return self

    @abstractmethod
    def score(self, evidence: Evidence) -> pl.DataFrame:
        """Rows (SCORE_SCHEMA) for devices with something against them; others score 0."""

    def detect(self, evidence: Evidence) -> pl.DataFrame:
        """``fit`` then ``score``, keeping rows at or above the threshold (EVIDENCE_SCHEMA)."""
        params = self.get_params()
        self.tables_: dict[str, pl.DataFrame] = {}
        self.fit(evidence)
        if self.get_params() != params:
            raise RuntimeError(f"{self.name}.fit changed its parameters; learned state belongs in attributes ending in _")
        store_tables(evidence, self)
        scored = self.score(evidence)
        missing = set(SCORE_SCHEMA) - set(scored.columns)
        if missing:
            raise ValueError(f"{self.name}.score() did not return columns {sorted(missing)}")
        bad_action = scored.filter(~pl.col("action").is_in(ACTIONS))
        if not bad_action.is_empty():
            raise ValueError(f"{self.name}: unknown action {bad_action['action'][0]!r}")
        return (
            scored.select(list(SCORE_SCHEMA))
            .cast(SCORE_SCHEMA)  # type: ignore[arg-type]
            .filter((pl.col("score") >= self.threshold) | (pl.col("action") == "clear"))
            .with_columns(pl.lit(self.name).alias("detector"), pl.lit(self.fraud_type).alias("fraud_type"))
            .select(list(EVIDENCE_SCHEMA))
            .sort("device_id")
        )

    @classmethod
    def param_names(cls) -> list[str]:
        """The parameters: every named argument of ``__init__`` (scikit-learn's convention)."""
        kinds = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
        return [n for n, p in inspect.signature(cls.__init__).parameters.items() if n != "self" and p.kind not in kinds]

    def get_params(self) -> dict[str, object]:
        """Each ``__init__`` argument's current value, read from the attribute of the same name."""
        return {name: getattr(self, name) for name in self.param_names()}

    def set_params(self, **params: object) -> Self:
        """Change parameters by name; an unknown name is an error."""
        unknown = set(params) - set(self.param_names())
        if unknown:
            raise ValueError(f"{self.name}: unknown parameters {sorted(unknown)}; known: {self.param_names()}")
        for name, value in params.items():
            setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({params})"
