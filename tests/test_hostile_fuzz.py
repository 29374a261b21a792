"""Property-based hostile input: generated malformed values and damaged files.

Per CI run: 50 hours x 40..45 malformed rows (>= 2,000 rows, every value in a form the
contract refuses) plus 60 damaged or random files. Properties: ingestion never raises; each
malformed row is quarantined with a reason naming its column; every good row of the same hour
lands; a damaged file costs at most itself (or rejects the hour with a reason naming it)."""

from __future__ import annotations

import json
import re
import tempfile
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from hostile_hours import (
    HOUR,
    csv_bytes,
    gz,
    jsonl,
    make_hour,
    pow_row,
    stake_row,
    uptime_row,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipelines.contract import FEEDS, LATE_ROW_HOURS, TEXT_FORMS
from pipelines.db import connect, scalar
from pipelines.ingest import ingest_hour

ROWS_PER_HOUR = 40
EXAMPLES = 50
FILES = 60
HOUR_START = datetime(2024, 8, 14, 7)

_text = st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=30)
_digits = st.integers(0, 10**6).map(str)


def _outside_hour() -> st.SearchStrategy[str]:
    """Times a row's time column may not carry: after its hour, or older than a late row may be."""
    far = st.datetimes(datetime(1900, 1, 1), datetime(2200, 1, 1)).filter(
        lambda d: not HOUR_START - timedelta(hours=LATE_ROW_HOURS, minutes=3) <= d < HOUR_START + timedelta(hours=1, minutes=3)
    )
    return st.one_of(
        far.map(lambda d: d.strftime("%Y-%m-%dT%H:%M:%SZ")),
        st.integers(1, 12).map(lambda h: f"2024-08-14T07:30:00-{h:02d}:00"),
        st.sampled_from(["infinity", "-infinity", "epoch", "14/08/2024 07:10", "2024-08-14", "2024-08-14T07:61:00Z",
                         "2024-13-14T07:10:00Z", "1723619400", "now"]),
        _text.filter(lambda s: not s[:1].isdigit()),
    )  # fmt: skip


def _stake_time_refused() -> st.SearchStrategy[str]:
    """A stake event may carry the date it was placed (before its hour), not one after the hour's
    end nor before 2000, and not a form that is no time."""
    far = st.datetimes(datetime(1900, 1, 1), datetime(2200, 1, 1)).filter(
        lambda d: d < datetime(2000, 1, 1) or d >= HOUR_START + timedelta(hours=1, minutes=3)
    )
    return st.one_of(
        far.map(lambda d: d.strftime("%Y-%m-%dT%H:%M:%SZ")),
        st.sampled_from(["infinity", "-infinity", "epoch", "14/08/2024 07:10", "2024-08-14T07:61:00Z",
                         "2024-13-14T07:10:00Z", "1723619400", "now"]),
        _text.filter(lambda s: not s[:1].isdigit()),
    )  # fmt: skip


def _not_unsigned() -> st.SearchStrategy[str]:
    """Not a 64-bit seed: a negative one down to -2^63 is a signed store, read as its two's complement."""
    return st.one_of(
        st.floats(allow_nan=True, allow_infinity=True).map(repr).filter(lambda s: not s.isdigit()),
        st.integers(1, 2**64).map(lambda i: hex(i)),
        st.integers(1000, 10**9).map(lambda i: f"{i:_}"),
        st.integers(2**63 + 1, 2**70).map(lambda i: f"-{i}"),
        st.just("-0"),
        st.integers(2**64, 2**80).map(str),
        st.integers(0, 999).map(lambda i: f"{i}e3"),
        _digits.map(lambda d: f" {d}"), _digits.map(lambda d: f"+{d}"), _digits.map(lambda d: f"{d}.0"),
        _text.filter(lambda s: not s.isdigit() and not re.fullmatch(r"-[0-9]+", s)),
    )  # fmt: skip


def _null_text(feed: str, column: str) -> frozenset[str]:
    """What lands as null in a nullable column (``None``, ``NaN``, ``""``): no breaker there."""
    return next(c for c in FEEDS[feed].columns if c.name == column).null_texts


def _not_finite_number(feed: str, column: str) -> st.SearchStrategy[str]:
    nulls = _null_text(feed, column)
    return st.one_of(
        st.sampled_from(["inf", "-inf", "Infinity", "1e999", "0x1p3", "1,5", "12ms", "--1", "1..2", " nan"]),
        _text.filter(lambda s: not s.replace(".", "", 1).isdigit() and s not in nulls),
    )


def _not_money() -> st.SearchStrategy[str]:
    return st.one_of(
        st.integers(1, 10**8).map(lambda i: f"0.{i:09d}"),  # 9 decimals
        st.integers(10**9, 10**15).map(str),  # 10+ integer digits
        st.integers(1, 999).map(lambda i: f"{i}e3"),
        st.integers(1000, 10**6).map(lambda i: f"{i:_}"),
        st.integers(1, 10**6).map(lambda i: f"-{i}"),
        st.sampled_from(["0", "0.0", "NaN", "Infinity", "1,50", "$5", "5 IO"]),
    )


def _not_in(allowed: tuple[str, ...]) -> st.SearchStrategy[str]:
    """Text that is no spelling of an allowed value (case and surrounding spaces are forgiven)."""
    return _text.filter(lambda s: s.strip().lower() not in {a.lower() for a in allowed})


# feed -> column -> strategy of values that must be refused
BREAKERS: dict[str, dict[str, st.SearchStrategy]] = {
    "pow": {
        "seed": _not_unsigned(),
        "n": st.one_of(
            st.sampled_from(["0", "-4", "262145", "4096.5", "4e3", "0x1000"]),
            _text.filter(lambda s: not re.fullmatch(r"-?[0-9]+(\.0+)?", s)),  # 4096.0 is 4096 (a float column's form)
        ),
        "issued_at": _outside_hour(),
        "kind": _not_in(FEEDS["pow"].columns[3].allowed),
        "status": _not_in(FEEDS["pow"].columns[6].allowed),
        "compute_ms": st.one_of(_not_finite_number("pow", "compute_ms"), st.integers(1, 10**6).map(lambda i: f"-{i}.5")),
        "samples": st.one_of(st.sampled_from(["[[1,2]]", "[[1.5,2,3]]", "[[1,2,3e2]]", "[[-1,2,3]]", "{}", "[[1,2,3]"]),
                             _text.filter(lambda s: s[:1] != "[" and s not in _null_text("pow", "samples"))),
        "device_id": st.none(),
    },
    "uptime": {
        "ts": _outside_hour(),
        "ok": st.one_of(st.sampled_from(["perhaps", "TRUE!", "2", "-1", "on", "off", "tru", "none"]),
                        _text.filter(lambda s: not re.fullmatch(TEXT_FORMS["BOOLEAN"][0], s))),
        "source": _not_in(FEEDS["uptime"].columns[2].allowed),
        "latency_ms": _not_finite_number("uptime", "latency_ms"),
        "device_id": st.none(),
    },
    "stake_events": {
        "amount_io": _not_money(),
        "ts": _stake_time_refused(),
        "kind": _not_in(FEEDS["stake_events"].columns[4].allowed),
        "wallet": st.none(),
    },
}  # fmt: skip
GOOD = {"pow": pow_row, "uptime": uptime_row, "stake_events": stake_row}
BASE_ROWS = {"pow": 6, "uptime": 6, "stake_events": 0}
FORMATS = {"csv": lambda rows: csv_bytes(rows), "csv.gz": lambda rows: gz(csv_bytes(rows)),
           "jsonl": jsonl, "jsonl.gz": lambda rows: gz(jsonl(rows))}  # fmt: skip


@st.composite
def hostile_file(draw):
    """(feed, format, rows, {row index: broken column}) with good and malformed rows mixed."""
    feed = draw(st.sampled_from(sorted(BREAKERS)))
    n_bad = draw(st.integers(ROWS_PER_HOUR, ROWS_PER_HOUR + 5))
    n_good = draw(st.integers(0, 10))
    rows = [GOOD[feed](100 + i) for i in range(n_good + n_bad)]
    bad_at = draw(st.lists(st.integers(0, len(rows) - 1), min_size=n_bad, max_size=n_bad, unique=True))
    broken = {}
    for i in bad_at:
        column = draw(st.sampled_from(sorted(BREAKERS[feed])))
        rows[i][column] = draw(BREAKERS[feed][column])
        broken[i] = column
    fmt = draw(st.sampled_from(sorted(FORMATS)))
    return feed, fmt, rows, broken


@pytest.fixture(scope="module")
def con(tmp_path_factory: pytest.TempPathFactory):
    with connect(tmp_path_factory.mktemp("fuzz") / "db.duckdb") as c:
        yield c


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(spec=hostile_file())
def test_malformed_values_are_quarantined_and_every_good_row_lands(con, spec) -> None:
    feed, fmt, rows, broken = spec
    name = f"{feed}.{fmt}" if not (feed in ("pow", "uptime") and fmt == "jsonl") else f"{feed}.jsonl.gz"
    data = FORMATS["jsonl.gz"](rows) if name.endswith("jsonl.gz") and fmt == "jsonl" else FORMATS[fmt](rows)
    with tempfile.TemporaryDirectory() as tmp:
        folder = make_hour(Path(tmp), extra={name: (data, len(rows))})
        result = ingest_hour(con, folder, force=True)  # hypothesis may replay the same bytes
        assert result.status == "ingested", result.reason
        landed = scalar(con, f"SELECT count(*) FROM {feed} WHERE _hour = ?", [HOUR])
        assert landed == BASE_ROWS[feed] + len(rows) - len(broken)
        reasons = con.execute(
            "SELECT row_number, reason FROM quarantine WHERE hour = ? AND file = ? ORDER BY 1", [HOUR, name]
        ).fetchall()
        assert len(reasons) == len(broken)
        assert scalar(con, "SELECT count(*) FROM quarantine WHERE hour = ? AND file <> ?", [HOUR, name]) == 0
        by_row = dict(reasons)
        for i, column in broken.items():
            row_no = i + 1
            if row_no in by_row:  # CSV/JSONL data rows are numbered in file order
                assert column in by_row[row_no], (column, rows[i][column], by_row[row_no])
        assert all(any(column in r for _, r in reasons) for column in set(broken.values()))


@st.composite
def damaged_bytes(draw):
    """A good uptime file, damaged: bytes flipped, inserted or cut, or replaced by random bytes."""
    fmt = draw(st.sampled_from(sorted(FORMATS)))
    good = FORMATS[fmt]([uptime_row(100 + i) for i in range(12)])
    how = draw(st.sampled_from(["flip", "insert", "truncate", "random"]))
    data = bytearray(good)
    if how == "random":
        data = bytearray(draw(st.binary(min_size=0, max_size=400)))
    elif how == "truncate":
        data = data[: draw(st.integers(0, len(data) - 1))]
    else:
        for _ in range(draw(st.integers(1, 6))):
            at = draw(st.integers(0, len(data) - 1))
            byte = draw(st.integers(0, 255))
            if how == "flip":
                data[at] ^= byte or 1
            else:
                data[at:at] = bytes([byte])
    return fmt, bytes(data), draw(st.integers(0, 14))


@settings(
    max_examples=FILES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(spec=damaged_bytes())
def test_damaged_files_never_crash_and_cost_at_most_themselves(con, spec) -> None:
    fmt, data, declared_rows = spec
    name = f"uptime.{fmt}" if fmt != "jsonl" else "uptime.jsonl.gz"
    data = gz(data) if fmt == "jsonl" else data
    with tempfile.TemporaryDirectory() as tmp:
        folder = make_hour(Path(tmp), extra={name: (data, declared_rows)})
        result = ingest_hour(con, folder, force=True)
        if result.status == "rejected":  # rows that cannot be read, or counted, cannot match the manifest
            assert name in result.reason
            assert "rows read but the manifest says" in result.reason or "rows cannot be counted" in result.reason
            return
        assert result.status == "ingested"
        assert scalar(con, "SELECT count(*) FROM pow WHERE _hour = ?", [HOUR]) == 6
        assert scalar(con, "SELECT count(*) FROM hardware WHERE _hour = ?", [HOUR]) == 3
        assert scalar(con, "SELECT count(*) FROM uptime WHERE _hour = ? AND _file = 'uptime.jsonl'", [HOUR]) == 6
        from_file = scalar(con, "SELECT count(*) FROM uptime WHERE _hour = ? AND _file = ?", [HOUR, name])
        whole = scalar(con, "SELECT count(*) FROM quarantine WHERE hour = ? AND file = ? AND row_number IS NULL", [HOUR, name])
        rows_q = scalar(
            con, "SELECT count(*) FROM quarantine WHERE hour = ? AND file = ? AND row_number IS NOT NULL", [HOUR, name]
        )
        assert whole == 0 and from_file + rows_q == declared_rows
        assert result.rows_in == result.rows_landed + result.rows_quarantined
        assert json.dumps(result.files)  # the per-file report is plain data
