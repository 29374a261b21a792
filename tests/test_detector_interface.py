"""The detector interface: parameters from the ``__init__`` signature, a threshold that filters,
``fit`` that learns only ``*_`` state, and cross-detector inputs declared and ordered."""

from __future__ import annotations

import duckdb
import polars as pl
import pytest

from detectors import REGISTRY, SybilRings, WashTrading
from detectors.base import Detector, Evidence
from pipelines.db import ensure_schema
from pipelines.policy import load_policy
from pipelines.stages.detect import check_order, collect_evidence


class Fixed(Detector):
    """Scores three devices with the given scores."""

    name = "fixed"
    fraud_type = "test"

    def __init__(self, threshold: float = 0.5, scores: tuple[float, ...] = (0.2, 0.6, 0.9), greedy: bool = False):
        super().__init__(threshold)
        self.scores = scores
        self.greedy = greedy

    def fit(self, evidence: Evidence) -> Fixed:
        if self.greedy:
            self.scores = (1.0, 1.0, 1.0)  # a parameter changed by fitting: refused
        self.seen_ = evidence.epoch
        return self

    def score(self, evidence: Evidence) -> pl.DataFrame:
        n = len(self.scores)
        return pl.DataFrame({
            "device_id": [f"d{i}" for i in range(n)], "account_id": ["a"] * n, "score": list(self.scores),
            "action": ["probation"] * n, "reason": ["test"] * n, "details": ["{}"] * n,
        })  # fmt: skip


@pytest.fixture
def evidence() -> Evidence:
    return Evidence(duckdb.connect(), "2024-08-14T05")


def test_params_are_the_init_signature_and_unknown_ones_are_refused() -> None:
    d = Fixed(threshold=0.7)
    assert Fixed.param_names() == ["threshold", "scores", "greedy"]
    assert d.get_params() == {"threshold": 0.7, "scores": (0.2, 0.6, 0.9), "greedy": False}
    assert d.set_params(threshold=0.9).threshold == 0.9
    with pytest.raises(ValueError, match="unknown parameters"):
        d.set_params(treshold=0.9)
    for cls in REGISTRY.values():
        assert set(cls().get_params()) == set(cls.param_names())


def test_threshold_keeps_only_scores_at_or_above_it(evidence: Evidence) -> None:
    assert Fixed(threshold=0.5).detect(evidence)["device_id"].to_list() == ["d1", "d2"]
    assert Fixed(threshold=0.9).detect(evidence)["device_id"].to_list() == ["d2"]
    assert Fixed(threshold=0.95).detect(evidence).is_empty()
    with pytest.raises(ValueError, match="outside 0..1"):
        Fixed(threshold=1.5)


def test_fit_learns_only_underscore_state(evidence: Evidence) -> None:
    d = Fixed()
    d.detect(evidence)
    assert d.seen_ == evidence.epoch and "seen_" not in d.get_params()
    with pytest.raises(RuntimeError, match="fit changed its parameters"):
        Fixed(greedy=True).detect(evidence)


def test_a_detector_runs_after_the_detectors_it_needs() -> None:
    assert WashTrading.needs == ("sybil",) and "sybil_clusters" in SybilRings.writes
    check_order(load_policy().build_detectors())  # the shipped order
    with pytest.raises(ValueError, match="wash_trading reads what sybil writes"):
        check_order([WashTrading(), SybilRings()])
    check_order([WashTrading()])  # sybil disabled: its table is empty for the epoch


def test_a_disabled_detectors_table_is_empty_for_the_epoch_not_left_from_an_earlier_run(evidence: Evidence) -> None:
    """The sybil graph reads the epoch's ``timeshare_rotas``: an hour run again with ``timeshare``
    disabled must not find the rotas of the run before."""
    con = evidence.con
    ensure_schema(con)
    con.execute("INSERT INTO timeshare_rotas VALUES (?, 'ip', '203.0.113.9', 'd1', 'a1', 4, 7, 4, 48, 0)", [evidence.epoch])
    con.execute("INSERT INTO timeshare_rotas VALUES ('2024-08-14T04', 'ip', '203.0.113.9', 'd1', 'a1', 4, 7, 4, 48, 0)")
    collect_evidence(con, evidence.epoch, [Fixed()])
    assert con.execute("SELECT epoch FROM timeshare_rotas").fetchall() == [("2024-08-14T04",)]


class Remembers(Detector):
    """Keeps the devices it scored in ``anomaly_top`` (as a frame from ``fit``); scores them from there."""

    name = "remembers"
    fraud_type = "test"
    writes = ("anomaly_top",)

    def __init__(self, threshold: float = 0.5, forget: bool = False):
        super().__init__(threshold)
        self.forget = forget

    def fit(self, evidence: Evidence) -> Remembers:
        if not self.forget:
            self.tables_ = {"anomaly_top": pl.DataFrame({"device_id": ["d1", "d2"], "score": [0.7, 0.8]})}
        return self

    def score(self, evidence: Evidence) -> pl.DataFrame:
        return evidence.sql(
            "SELECT device_id, NULL AS account_id, score, 'probation' AS action, 'kept' AS reason, '{}' AS details "
            "FROM anomaly_top WHERE epoch = $epoch ORDER BY device_id"
        )


def test_the_rows_fit_returns_are_stored_before_score_reads_them() -> None:
    con = duckdb.connect()
    ensure_schema(con)
    evidence = Evidence(con, "2024-08-14T05")
    con.execute("INSERT INTO anomaly_top VALUES ('2024-08-14T05', 'stale', 0.9)")  # replaced, not kept
    assert Remembers().detect(evidence)["device_id"].to_list() == ["d1", "d2"]
    assert con.execute("SELECT device_id FROM anomaly_top ORDER BY 1").fetchall() == [("d1",), ("d2",)]
    with pytest.raises(ValueError, match="did not return its table anomaly_top"):
        Remembers(forget=True).detect(evidence)
