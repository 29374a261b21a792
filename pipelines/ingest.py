"""Ingest hourly drop folders into DuckDB: verify, validate, quarantine, land atomically.

One hour is one transaction. The manifest is checked first (every listed file present, sha256
and row count as declared, required feeds listed); any mismatch rejects the whole hour and
nothing of it lands. Within an accepted hour each row is type-checked in SQL: a row that fails
goes to ``quarantine`` with a reason a person can read and its raw values; a file that cannot
be read at all is quarantined whole. Re-delivering the same bytes is a no-op; a changed
delivery replaces the hour's rows, so arrival order never changes the tables.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
import os
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pyarrow.parquet as pq

from pipelines.contract import (
    ANSWER_GRACE_S,
    EARLIEST_TIMESTAMP,
    FEEDS,
    HOUR_RE,
    LATE_ROW_HOURS,
    MANIFEST,
    MAX_DECOMPRESSED_BYTES,
    MAX_LINE_BYTES,
    MAX_MANIFEST_BYTES,
    MAX_MANIFEST_DEPTH,
    MAX_TEXT_CHARS,
    NVML_ZEROS,
    REQUIRED_FEEDS,
    TEXT_FORMS,
    TIME_TOLERANCE_S,
    Column,
    Feed,
    parse_hour,
    split_name,
)
from pipelines.db import one, scalar


class HourRejected(Exception):
    """The hour fails the manifest check; the message says why."""


@dataclass
class IngestResult:
    hour: str
    status: str  # ingested | rejected | unchanged
    reason: str | None = None
    rows_in: int = 0
    rows_landed: int = 0
    rows_quarantined: int = 0
    files: dict[str, dict] = field(default_factory=dict)


def _sql_str(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _hour_like_folders(drops: str | Path) -> list[Path]:
    root = Path(drops)
    if not root.is_dir():
        raise FileNotFoundError(f"drops folder {root} does not exist")
    return sorted(p for p in root.iterdir() if HOUR_RE.match(p.name) and p.is_dir() and (p / MANIFEST).is_file())


def complete_hours(drops: str | Path) -> list[Path]:
    """Hour folders that hold a manifest (complete), oldest first; anything else is ignored."""
    return [p for p in _hour_like_folders(drops) if parse_hour(p.name) is not None]


def false_hours(drops: str | Path) -> list[Path]:
    """Folders with a manifest whose name only looks like an hour (``2024-08-13T99``):
    ``ingest_drops`` rejects them with a reason instead of skipping them without a word."""
    return [p for p in _hour_like_folders(drops) if parse_hour(p.name) is None]


def delivery_fingerprint(manifest_sha: str, folder: Path) -> str:
    """What was delivered: the manifest's sha256 (which pins every listed file's content once
    their hashes are checked) and the names of everything else in the folder (never read)."""
    h = hashlib.sha256(manifest_sha.encode())
    for name in sorted(p.name for p in folder.iterdir()):
        h.update(b"\0" + name.encode("utf-8", "surrogateescape"))
    return h.hexdigest()


def _no_duplicate_keys(pairs: list[tuple[str, object]]) -> dict:
    keys = [k for k, _ in pairs]
    if len(keys) != len(set(keys)):
        raise HourRejected(f"{MANIFEST} repeats a key ({min(k for k in set(keys) if keys.count(k) > 1)!r})")
    return dict(pairs)


def _depth(value: object) -> int:
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


def is_plain_file_name(name: object) -> bool:
    """A bare file name inside the hour folder: no separators, no ``..``, no hidden names."""
    return (
        isinstance(name, str) and 0 < len(name) <= 255 and "/" not in name and "\\" not in name
        and "\0" not in name and not name.startswith(".") and name.isprintable()
    )  # fmt: skip


def read_manifest_bytes(folder: Path) -> bytes:
    """The manifest's bytes, refusing a link or an oversized file (HourRejected)."""
    path = folder / MANIFEST
    if path.is_symlink():
        raise HourRejected(f"{MANIFEST} is a symbolic link; links are not followed")
    size = path.stat().st_size
    if size > MAX_MANIFEST_BYTES:
        raise HourRejected(f"{MANIFEST} is {size} bytes; the limit is {MAX_MANIFEST_BYTES}")
    return path.read_bytes()


def read_manifest(folder: Path, raw: bytes | None = None) -> tuple[dict, str]:
    """The manifest and its sha256; raises HourRejected when it cannot be used."""
    raw = read_manifest_bytes(folder) if raw is None else raw
    digest = hashlib.sha256(raw).hexdigest()
    try:
        manifest = json.loads(raw, object_pairs_hook=_no_duplicate_keys)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise HourRejected(f"{MANIFEST} is not valid JSON ({e})") from None
    except RecursionError:
        raise HourRejected(f"{MANIFEST} is nested deeper than {MAX_MANIFEST_DEPTH} levels") from None
    if _depth(manifest) > MAX_MANIFEST_DEPTH:
        raise HourRejected(f"{MANIFEST} is nested deeper than {MAX_MANIFEST_DEPTH} levels")
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        raise HourRejected(f'{MANIFEST} must be an object with "hour" and a "files" object')
    if manifest.get("hour") != folder.name:
        raise HourRejected(f"{MANIFEST} says hour {str(manifest.get('hour'))[:40]!r} but the folder is {folder.name!r}")
    for name, entry in manifest["files"].items():
        if not is_plain_file_name(name) or name == MANIFEST:
            raise HourRejected(f"{MANIFEST} lists {name[:80]!r}: entries must be plain file names in the hour folder")
        ok = isinstance(entry, dict) and type(entry.get("rows")) is int and isinstance(entry.get("sha256"), str)
        if not ok or entry["rows"] < 0:
            raise HourRejected(f'{MANIFEST}: entry for {name!r} needs "rows" (int >= 0) and "sha256" (hex)')
    return manifest, digest


# --- staging: every format becomes one table of raw values per feed ---------------------------


def _inflated_chunks(path: Path) -> Iterator[bytes]:
    """A gzip file's content in 1 MiB chunks, streamed (memory stays small whatever the file
    claims); ``ValueError`` when it is corrupt or inflates past ``MAX_DECOMPRESSED_BYTES``."""
    inflated = 0
    try:
        with gzip.open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                inflated += len(chunk)
                if inflated > MAX_DECOMPRESSED_BYTES:
                    raise ValueError(f"inflates past {MAX_DECOMPRESSED_BYTES} bytes (decompression limit); not read further")
                yield chunk
    except (OSError, EOFError, zlib.error) as e:
        raise ValueError(f"corrupt gzip data ({e})") from None


def _inflate_problem(path: Path) -> str | None:
    """Why DuckDB must not read this gzip file (corrupt, or inflates past the limit), or None."""
    try:
        for _ in _inflated_chunks(path):
            pass
    except ValueError as e:
        return str(e)
    return None


def _csv_header(path: Path) -> list[str]:
    """The header row, read as bytes (a bad byte further down must not spoil it); a UTF-8 BOM
    is dropped."""
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rb") as f:  # type: ignore[operator]
        first = f.readline(MAX_LINE_BYTES + 1)
    if len(first) > MAX_LINE_BYTES:
        raise ValueError(f"CSV header is longer than {MAX_LINE_BYTES} bytes")
    try:
        text = first.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ValueError("CSV header is not UTF-8") from None
    return next(csv.reader([text]), [])


def _rejected_lines(con: duckdb.DuckDBPyConnection, tag: str, what: str) -> list[tuple[int, str, str]]:
    """Lines DuckDB's reader refused (bad bytes, over-long, malformed), one reason per line."""
    rejects = con.execute(
        f"SELECT line, error_message, left(csv_line, {MAX_TEXT_CHARS}) FROM rej_{tag} ORDER BY line, column_idx"
    ).fetchall()
    con.execute(f"DROP TABLE IF EXISTS rej_{tag}; DROP TABLE IF EXISTS rejscan_{tag}")
    seen, out = set(), []
    for line, message, text in rejects:
        if line not in seen:
            seen.add(line)
            out.append((int(line), f"line {line} is not valid {what}: {message[:200]}", text))
    return out


def _reader_options(tag: str) -> str:
    return (
        f"store_rejects=true, rejects_table='rej_{tag}', rejects_scan='rejscan_{tag}', "
        f"max_line_size={MAX_LINE_BYTES}, strict_mode=true"
    )


def _check_columns(feed: Feed, names: list[str], what: str) -> None:
    """A file must have every required column. A nullable column it leaves out is null in every
    row, as a JSONL line that leaves out a key is: a writer that never has a value for a column
    (``mig_mode``, ``cuda_version``) may drop it, and that once cost every hardware row."""
    missing = [c.name for c in feed.columns if not c.nullable and c.name not in names]
    if missing:
        raise ValueError(f"{what} lacks required columns {missing}")


def _stage_csv(con: duckdb.DuckDBPyConnection, feed: Feed, path: Path, tag: str) -> list[tuple[int, str, str]]:
    header = _csv_header(path)
    _check_columns(feed, header, "CSV header")
    if len({h.lower() for h in header}) != len(header):
        raise ValueError("CSV header repeats a column name")
    columns = "{" + ", ".join(f"{_sql_str(c)}: 'VARCHAR'" for c in header) + "}"
    src = (
        f"read_csv({_sql_str(str(path))}, header=true, auto_detect=false, columns={columns}, "
        f"delim=',', quote='\"', escape='\"', {_reader_options(tag)})"
    )
    cols = ", ".join(f'"{c}"' if c in header else f'NULL::VARCHAR AS "{c}"' for c in feed.column_names)
    con.execute(f"CREATE TEMP TABLE stage_{tag} AS SELECT {cols} FROM {src}")
    # a row's number is its place in the staged table (insertion order is kept): a numbering
    # window over the reader cost as much again as reading (uptime of a 1M-device hour: 2.3 s vs 1.2)
    con.execute(f"CREATE TEMP VIEW raw_{tag} AS SELECT rowid + 1 AS _row, * FROM stage_{tag}")
    return _rejected_lines(con, tag, "CSV")


def _stage_jsonl(con: duckdb.DuckDBPyConnection, feed: Feed, path: Path, tag: str) -> list[tuple[int, str, str]]:
    src = (
        f"read_csv({_sql_str(str(path))}, columns={{'line': 'VARCHAR'}}, header=false, "
        f"auto_detect=false, delim='\x01', quote='', escape='', {_reader_options(tag)})"
    )
    # read first, check after: a gzip stream is read by one thread, and checks in the same
    # pipeline ran on it too (PoW of a 1M-device hour: 11-12 s in one statement, 7-8 s in two)
    con.execute(f"CREATE TEMP TABLE text_{tag} AS SELECT line FROM {src} WHERE trim(line) <> ''")
    # a valid JSON text that starts with '{' is an object: json_type parses only the others
    con.execute(
        f"CREATE TEMP TABLE lines_{tag} AS SELECT _row, line, "
        "CASE WHEN NOT valid THEN 'is not a JSON object' "
        r"     WHEN NOT starts_with(ltrim(line, E' \t\n\r'), '{') AND json_type(line) <> 'OBJECT' "
        "          THEN 'is not a JSON object' "
        "     WHEN len(keys) <> len(list_distinct(keys)) THEN 'repeats a key' "
        "END AS _problem "
        "FROM (SELECT _row, line, valid, CASE WHEN valid THEN json_keys(line) END AS keys "
        f"      FROM (SELECT rowid + 1 AS _row, line, json_valid(line) AS valid FROM text_{tag}))"
    )
    con.execute(f"DROP TABLE text_{tag}")
    # every column from one parse of the line (a path list), not one parse per column: 4.5x faster on PoW
    paths = "[" + ", ".join(_sql_str("$." + c) for c in feed.column_names) + "]"
    columns = ", ".join(f'v[{k}] AS "{c}"' for k, c in enumerate(feed.column_names, start=1))
    con.execute(
        f"CREATE TEMP TABLE stage_{tag} AS SELECT _row, {columns} "
        f"FROM (SELECT _row, json_extract_string(line, {paths}) AS v FROM lines_{tag} WHERE _problem IS NULL)"
    )
    con.execute(f"CREATE TEMP VIEW raw_{tag} AS SELECT * FROM stage_{tag}")
    bad = con.execute(
        f"SELECT _row, _problem, left(line, {MAX_TEXT_CHARS}) FROM lines_{tag} WHERE _problem IS NOT NULL ORDER BY _row"
    ).fetchall()
    con.execute(f"DROP TABLE lines_{tag}")
    return _rejected_lines(con, tag, "JSONL") + [(int(r), f"line {r} {problem}", text) for r, problem, text in bad]


def _stage_parquet(con: duckdb.DuckDBPyConnection, feed: Feed, path: Path, tag: str) -> list[tuple[int, str, str]]:
    """Every column is read as text, so one set of text-form checks covers every format (a
    float64 seed shows as ``7.16e+18`` and is refused, never rounded)."""
    try:
        names = pq.read_schema(path).names
    except Exception as e:
        raise ValueError(f"not a readable Parquet file ({str(e)[:200]})") from None
    if len({n.lower() for n in names}) != len(names):
        raise ValueError("Parquet file repeats a column name")
    _check_columns(feed, names, "Parquet file")
    src = f"read_parquet({_sql_str(str(path))}, file_row_number=true)"
    cols = ", ".join(f'CAST("{c}" AS VARCHAR) AS "{c}"' if c in names else f'NULL::VARCHAR AS "{c}"' for c in feed.column_names)
    con.execute(f"CREATE TEMP TABLE stage_{tag} AS SELECT file_row_number + 1 AS _row, {cols} FROM {src}")
    con.execute(f"CREATE TEMP VIEW raw_{tag} AS SELECT * FROM stage_{tag}")
    return []


# Each stager copies one file into ``stage_<tag>`` (every value as text) and defines the view
# ``raw_<tag>``: ``_row`` (the row's number in the file) and every contract column.
STAGERS = {"csv": _stage_csv, "csv.gz": _stage_csv, "jsonl": _stage_jsonl, "jsonl.gz": _stage_jsonl, "parquet": _stage_parquet}


# --- validation: types, enumerations, rules and duplicate keys, in SQL ------------------------
#
# The common path only casts and computes one "bad" flag per row; reasons (and the raw values
# as JSON) are built afterwards for the bad rows alone, and not at all for a feed without any.


def _quoted(column: str) -> str:
    return f'"{column}"'


def _unsigned_flag(column: str) -> str:
    """The per-file column that says the file writes ``column`` unsigned (``_unsigned_writers``)."""
    return f'"_unsigned_{column}"'


def _typed(type_: str, raw: str, unsigned: str = "false") -> str:
    """SQL for one column's typed value: NULL unless the raw text has the type's exact form.
    ``unsigned``: SQL, true where the row's file writes this 64-bit column unsigned."""
    pattern = TEXT_FORMS.get(type_)
    if type_ == "TIMESTAMP":  # offsets honoured: read as TIMESTAMPTZ, stored as UTC
        cast = f"TRY_CAST(TRY_CAST({raw} AS TIMESTAMPTZ) AS TIMESTAMP)"
    elif type_ == "UBIGINT":  # a negative value is a signed 64-bit store: its two's complement (TEXT_FORMS),
        # unless its file writes values above 2^63 unsigned: there it is no store of anything
        cast = (
            f"CASE WHEN starts_with({raw}, '-') "
            f"THEN CASE WHEN NOT {unsigned} THEN TRY_CAST(CAST(TRY_CAST({raw} AS BIGINT) AS HUGEINT) + 18446744073709551616 AS UBIGINT) END "
            f"ELSE TRY_CAST({raw} AS UBIGINT) END"
        )
    else:
        cast = f"TRY_CAST({raw} AS {type_})"
    if pattern is None:
        return cast
    finite = f" AND isfinite({cast})" if type_ == "DOUBLE" else ""  # '1e999' reads as infinity
    return f"CASE WHEN regexp_full_match({raw}, {_sql_str(pattern[0])}){finite} THEN {cast} END"


def _canonical(allowed: tuple[str, ...], typed: str, aliases: tuple[tuple[str, str], ...] = ()) -> str:
    """SQL for an enumeration's value in the contract's own spelling when it differs only in case
    or surrounding whitespace (``Linux``, `` VGPU ``) or is a known alias (``Darwin``, ``2``:
    ``Column.aliases``); anything else is left for the allowed-values check to quarantine."""
    exact = ", ".join(_sql_str(a) for a in allowed)
    pairs = [(a.lower(), a) for a in allowed] + list(aliases)
    cases = " ".join(f"WHEN {_sql_str(spelling)} THEN {_sql_str(value)}" for spelling, value in pairs)
    return f"CASE WHEN {typed} IN ({exact}) THEN {typed} ELSE CASE lower(trim({typed})) {cases} ELSE {typed} END END"


def _null_spelled(c: Column, raw: str) -> str:
    """SQL: whether a nullable column's raw text spells "no value" (``Column.null_texts``; for an
    NVML reading also all zeros). Only short texts are compared, so a long value (a PoW row's
    samples) costs one length test."""
    if not c.nullable:
        return "false"
    test = f"{raw} IN ({', '.join(_sql_str(w) for w in sorted(c.null_texts))})"
    if c.nvml:
        test += f" OR regexp_full_match({raw}, {_sql_str(NVML_ZEROS)})"
    return f"coalesce(CASE WHEN strlen({raw}) <= 64 THEN {test} END, false)"


def _casts(feed: Feed, raw_table: str) -> str:
    """Typed values and raw texts of every column; a nullable column's "no value" spellings are
    nulled first, in an inner select (the typing reads its text two or three times)."""

    def typed(c: Column) -> str:
        unsigned = _unsigned_flag(c.name) if c.type == "UBIGINT" else "false"
        value = _typed(c.type, f'"nulled_{c.name}"' if c.nullable else _quoted(c.name), unsigned)
        if c.canonical:
            value = f"{c.canonical}({value})"
        return _canonical(c.allowed, value, c.aliases) if c.allowed else value

    nulled = ", ".join(
        f'CASE WHEN NOT {_null_spelled(c, _quoted(c.name))} THEN {_quoted(c.name)} END AS "nulled_{c.name}"'
        for c in feed.columns
        if c.nullable
    )
    inner = f"(SELECT *, {nulled} FROM {raw_table})" if nulled else raw_table
    casts = ", ".join(f'{typed(c)} AS "{c.name}", "{c.name}" AS "raw_{c.name}"' for c in feed.columns)
    flags = "".join(f", {_unsigned_flag(c.name)}" for c in feed.columns if c.type == "UBIGINT")
    return f"(SELECT _file, _file_order, _row{flags}, {casts} FROM {inner})"


def hour_bounds(hour: str) -> tuple[str, str]:
    """SQL timestamp literals: the earliest and (exclusive) latest time a row's time column may
    carry in the hour's folder (a late row up to ``LATE_ROW_HOURS`` back lands with it); other
    timestamps may be older (down to ``EARLIEST_TIMESTAMP``) but never later."""
    start = parse_hour(hour)
    if start is None:
        raise ValueError(f"not an hour: {hour!r}")
    tol = timedelta(seconds=TIME_TOLERANCE_S)
    fmt = "TIMESTAMP '%Y-%m-%d %H:%M:%S'"
    return (start - timedelta(hours=LATE_ROW_HOURS) - tol).strftime(fmt), (start + timedelta(hours=1) + tol).strftime(fmt)


def _problems(feed: Feed, hour: str) -> list[tuple[str, str]]:
    """(SQL condition over raw_* and typed columns that makes a row bad, SQL reason text)."""
    lo, hi = hour_bounds(hour)
    out = []
    for c in feed.columns:
        raw, typed = f'"raw_{c.name}"', f'"{c.name}"'
        form = TEXT_FORMS.get(c.type, (None, c.type))[1]
        # a negative value where its file writes the column unsigned has a reason of its own (below)
        signed_store = (
            f" AND NOT coalesce(starts_with({raw}, '-') AND {_unsigned_flag(c.name)}, false)" if c.type == "UBIGINT" else ""
        )
        out.append(
            (f"({raw} IS NOT NULL AND {typed} IS NULL AND NOT {_null_spelled(c, raw)}{signed_store})",
             f"'{c.name}: cannot read ' || left(CAST({raw} AS VARCHAR), 60) || ' as {form}'")
        )  # fmt: skip
        if c.type == "UBIGINT":
            out.append(
                (f"coalesce(starts_with({raw}, '-') AND {_unsigned_flag(c.name)}, false)",
                 f"'{c.name}: ' || left({raw}, 60) || ' is negative in a file that writes values above 2^63 unsigned "
                 f"(not a signed 64-bit store of one)'")
            )  # fmt: skip
        if not c.nullable:
            out.append((f"{raw} IS NULL", f"'{c.name} is required'"))
        if c.type == "VARCHAR" and c.name != "samples":
            out.append(
                (f"coalesce(length({raw}) > {MAX_TEXT_CHARS}, false)",
                 f"'{c.name}: longer than {MAX_TEXT_CHARS} characters'")
            )  # fmt: skip
        if c.type == "TIMESTAMP" and c.name == feed.time_column:
            out.append(
                (f"coalesce({typed} < {lo} OR {typed} >= {hi}, false)",
                 f"'{c.name}: ' || CAST({typed} AS VARCHAR) || ' is outside the hour {hour} "
                 f"(tolerance {TIME_TOLERANCE_S} s; late rows up to {LATE_ROW_HOURS} h back land)'")
            )  # fmt: skip
        elif c.type == "TIMESTAMP":
            latest, after = hi, "after the hour"
            if c.name in feed.answer_columns:  # an answer to a challenge of the hour's last minutes
                latest, after = f"{hi} + to_seconds({ANSWER_GRACE_S})", f"{ANSWER_GRACE_S // 60} minutes after the hour"
            out.append(
                (f"coalesce({typed} < TIMESTAMP '{EARLIEST_TIMESTAMP}' OR {typed} >= {latest}, false)",
                 f"'{c.name}: ' || CAST({typed} AS VARCHAR) || ' is before {EARLIEST_TIMESTAMP[:10]} or {after} {hour}'")
            )  # fmt: skip
        if c.allowed:
            allowed = ", ".join(_sql_str(a) for a in c.allowed)
            out.append(
                (f"coalesce({typed} NOT IN ({allowed}), false)",
                 f"'{c.name}: ' || left({typed}, 60) || ' is not one of {'/'.join(c.allowed)}'")
            )  # fmt: skip
    for predicate, reason in feed.extra_checks:
        out.append((f"NOT coalesce(({predicate}), true)", _sql_str(reason)))
    return out


def _checked_select(feed: Feed, raw_table: str, hour: str) -> str:
    """Typed columns plus ``_bad`` for every staged row."""
    cols = ", ".join(f'"{c.name}"' for c in feed.columns)
    bad = " OR ".join(cond for cond, _ in _problems(feed, hour))
    return f"SELECT _file, _file_order, _row, {cols}, ({bad}) AS _bad FROM {_casts(feed, raw_table)}"


REPEAT_REASON = "identical repeat of a row already in this hour (delivered twice); the first is kept"
"""A row equal in every column to an earlier one of the hour: an at-least-once delivery, not a
conflict. It does not land (it would count twice), goes to quarantine with this reason, and is
not held against the hour's quarantine bar (``quality.quarantine_share``): 2% of rows written
twice stopped a whole network at its first hour. A repeated key with other values is a conflict."""


def _mark_duplicates(con: duckdb.DuckDBPyConnection, feed: Feed, checked: str) -> None:
    """Flag rows repeating an earlier row's key within the hour (the first one stays); ``identical``:
    the row equals that first one in every column."""
    if not feed.key:
        return
    key = ", ".join(f'"{k}"' for k in feed.key)
    # no two keys with one hash means no repeated key: one pass over hashes settles the usual case
    # (uptime of a 1M-device hour: 9.7M keys, no repeat) without grouping and joining the keys
    if scalar(con, f"SELECT count(*) = count(DISTINCT hash({key})) FROM {checked} WHERE NOT _bad"):
        con.execute(f"CREATE TEMP TABLE dups_{feed.name} (_file_order INTEGER, _row BIGINT, identical BOOLEAN)")
        return
    row = "{" + ", ".join(f"'{c.name}': \"{c.name}\"" for c in feed.columns) + "}"
    con.execute(
        f"CREATE TEMP TABLE dups_{feed.name} AS SELECT _file_order, _row, identical FROM ("
        f"  SELECT _file_order, _row, row_number() OVER w AS n, {row} IS NOT DISTINCT FROM first_value({row}) OVER w AS identical"
        f"  FROM {checked} WHERE NOT _bad AND ({key}) IN (SELECT ({key}) FROM {checked} WHERE NOT _bad GROUP BY ALL HAVING count(*) > 1)"
        f"  WINDOW w AS (PARTITION BY {key} ORDER BY _file_order, _row)"
        ") WHERE n > 1"
    )
    con.execute(
        f"UPDATE {checked} SET _bad = true FROM dups_{feed.name} d WHERE {checked}._file_order = d._file_order AND {checked}._row = d._row"
    )


def _dups_table(feed: Feed) -> str:
    """The feed's repeated-key rows (`_mark_duplicates`), or an empty stand-in for a feed without a key."""
    if feed.key:
        return f"dups_{feed.name}"
    return "(SELECT NULL::INTEGER AS _file_order, NULL::BIGINT AS _row, NULL::BOOLEAN AS identical WHERE false)"


def _quarantine_select(feed: Feed, raw_table: str, checked: str, hour: str) -> str:
    """(file, row, reason, raw values as JSON) for the rows flagged bad."""
    reasons = ", ".join(f"CASE WHEN {cond} THEN {text} END" for cond, text in _problems(feed, hour))
    dup = "NULL"
    if feed.key:
        label = " || ', ' || ".join(f"coalesce(CAST(\"{k}\" AS VARCHAR), 'null')" for k in feed.key)
        dup = (
            f"CASE WHEN d.identical THEN {_sql_str(REPEAT_REASON)} WHEN d._row IS NOT NULL "
            f"THEN 'duplicate {'/'.join(feed.key)} (' || {label} || ') already in this hour' END"
        )
    raws = ", ".join(f"'{c.name}': \"raw_{c.name}\"" for c in feed.columns)
    bad_rows = (
        f"(SELECT r.* FROM {raw_table} r SEMI JOIN (SELECT _file_order, _row FROM {checked} WHERE _bad) b "
        "ON r._file_order = b._file_order AND r._row = b._row)"
    )
    return (
        f"SELECT v._file, v._row, concat_ws('; ', {reasons}, {dup}) AS reason, CAST(to_json({{{raws}}}) AS VARCHAR) AS raw "
        f"FROM {_casts(feed, bad_rows)} v LEFT JOIN {_dups_table(feed)} d ON d._file_order = v._file_order AND d._row = v._row "
        "ORDER BY v._file_order, v._row"
    )


@dataclass(frozen=True)
class Staged:
    """One file read into ``raw_<tag>``; ``order``: its place in the hour (manifest names sorted)."""

    tag: str
    name: str
    order: int


def _drop_staged(con: duckdb.DuckDBPyConnection, tag: str) -> None:
    con.execute(f"DROP VIEW IF EXISTS raw_{tag}; DROP TABLE IF EXISTS stage_{tag}")
    con.execute(f"DROP TABLE IF EXISTS lines_{tag}; DROP TABLE IF EXISTS text_{tag}")


def _unsigned_writers(con: duckdb.DuckDBPyConnection, feed: Feed, files: list[Staged]) -> dict[str, str]:
    """Per staged file, SELECT columns saying whether it writes each unsigned 64-bit column unsigned
    (some value above 2^63 - 1 in plain digits). A writer stores such a value either unsigned or as
    its signed 64-bit two's complement, never both: in a file of the first kind a negative value is
    a broken row, not a signed store (an independently written network's ``seed = -42`` was read as
    2^64 - 42, its samples checked against that seed, and an honest device rejected)."""
    columns = [c.name for c in feed.columns if c.type == "UBIGINT"]
    out = {f.tag: "" for f in files}
    if not columns:
        return out
    for f in files:
        tests = ", ".join(
            f'coalesce(bool_or(NOT starts_with("{c}", \'-\') AND TRY_CAST("{c}" AS UBIGINT) > 9223372036854775807), false)'
            for c in columns
        )
        flags = con.execute(f"SELECT {tests} FROM raw_{f.tag}").fetchall()[0]
        out[f.tag] = "".join(f", {bool(v)} AS {_unsigned_flag(c)}" for c, v in zip(columns, flags))
    return out


def _land_feed(con: duckdb.DuckDBPyConnection, feed: Feed, files: list[Staged], hour: str, result: IngestResult) -> None:
    """Validate one feed's staged files; good rows into the feed table, the rest to quarantine."""
    unsigned = _unsigned_writers(con, feed, files)
    selects = [
        f"SELECT *, {_sql_str(f.name)} AS _file, {f.order} AS _file_order{unsigned[f.tag]} FROM raw_{f.tag}" for f in files
    ]
    union = "(" + " UNION ALL BY NAME ".join(selects) + ")"
    checked = f"checked_{feed.name}"
    con.execute(f"CREATE TEMP TABLE {checked} AS {_checked_select(feed, union, hour)}")
    _mark_duplicates(con, feed, checked)
    cols = ", ".join(f'"{c}"' for c in feed.column_names)
    con.execute(
        f"INSERT INTO {feed.name} SELECT {cols}, ?, _file, _row FROM {checked} WHERE NOT _bad ORDER BY _file_order, _row",
        [hour],
    )
    counts = con.execute(
        f"SELECT _file, count(*) FILTER (NOT _bad), count(*) FILTER (_bad), count(*) FILTER (d.identical) "
        f"FROM {checked} c LEFT JOIN {_dups_table(feed)} d ON d._file_order = c._file_order AND d._row = c._row GROUP BY _file"
    ).fetchall()
    for name, landed, bad, repeated in counts:
        result.files[name].update(landed=landed, quarantined=bad, **({"repeated": repeated} if repeated else {}))
    if any(bad for _, _, bad, _ in counts):  # a clean feed (the usual case) skips the bad rows' join and casts
        con.execute(
            f"INSERT INTO quarantine SELECT ?, ?, _file, _row, reason, raw FROM ({_quarantine_select(feed, union, checked, hour)})",
            [hour, feed.name],
        )
    con.execute(f"DROP TABLE {checked}; DROP TABLE IF EXISTS dups_{feed.name}")
    for f in files:
        _drop_staged(con, f.tag)


def _check_files(folder: Path, manifest: dict) -> dict[str, str]:
    """Reject the hour unless every listed file is a regular file (not a link) in the folder
    with the declared sha256. Returns, per listed gzip file DuckDB must not read, why
    (``_inflate_problem``): its rows cannot be counted, so ``_stage_hour`` rejects the hour.

    The hashes and the gzip checks run side by side (hashlib and zlib release the GIL: a
    1M-device hour's 1.2 GB cost 2.5 s one after another)."""
    listed = manifest["files"]
    feeds_listed = {split_name(n)[0] for n in listed if split_name(n)}
    missing_required = [f for f in REQUIRED_FEEDS if f not in feeds_listed]
    if missing_required:
        raise HourRejected(f"required feeds missing from the manifest: {', '.join(missing_required)}")
    names = sorted(listed)
    for name in names:
        path = folder / name
        if path.is_symlink():
            raise HourRejected(f"{name} is a symbolic link; links are not followed")
        if not path.is_file():
            raise HourRejected(f"{name} is listed in the manifest but missing")
    gzipped = [n for n in names if n.endswith(".gz")]
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        inflating = pool.map(_inflate_problem, [folder / n for n in gzipped])  # both submitted before either is awaited
        hashing = pool.map(sha256_file, [folder / n for n in names])
        problems = dict(zip(gzipped, inflating, strict=True))
        digests = dict(zip(names, hashing, strict=True))
    for name in names:
        declared = listed[name]["sha256"].lower()
        if digests[name] != declared and not (name.endswith(".gz") and _inflated_sha256(folder / name) == declared):
            raise HourRejected(f"{name}: sha256 differs from the manifest's")
    return {name: problem for name, problem in problems.items() if problem}


def _inflated_sha256(path: Path) -> str | None:
    """sha256 of a gzip file's content, for a manifest that hashes what was compressed rather
    than the file (an extension: both pin the content; a writer that hashes before compressing
    had every hour rejected). None when the file is corrupt or inflates past the limit."""
    h = hashlib.sha256()
    try:
        for chunk in _inflated_chunks(path):
            h.update(chunk)
    except ValueError:
        return None
    return h.hexdigest()


def _rejected_fingerprint(folder: Path) -> tuple[str, str]:
    """(manifest sha256, delivery fingerprint) for an hour being rejected, however broken: the
    manifest's bytes, the content of the regular files it lists (it may not match them) and
    the names of everything else."""
    try:
        raw = read_manifest_bytes(folder)
    except (HourRejected, OSError):
        raw = b""
    manifest_sha = hashlib.sha256(raw).hexdigest()
    try:
        listed = sorted(read_manifest(folder, raw)[0]["files"])
    except (HourRejected, OSError):
        listed = []
    h = hashlib.sha256(delivery_fingerprint(manifest_sha, folder).encode())
    for name in listed:
        path = folder / name
        if path.is_file() and not path.is_symlink():
            h.update(f"{name}\0{sha256_file(path)}\n".encode())
    return manifest_sha, h.hexdigest()


def ingest_hour(con: duckdb.DuckDBPyConnection, folder: str | Path, *, force: bool = False) -> IngestResult:
    """Land one complete hour folder (or reject it); safe to call any number of times.

    A delivery is identified by content (the manifest's sha256, every listed file checked
    against it, and the names of anything else in the folder): the same content again is
    ``unchanged``, changed content is landed anew whatever its sizes and mtimes."""
    folder = Path(folder)
    hour = folder.name
    try:
        if parse_hour(hour) is None:
            raise HourRejected(f"folder name {hour!r} is not a real UTC hour (YYYY-MM-DDTHH)")
        if folder.is_symlink():
            raise HourRejected("the hour folder is a symbolic link; links are not followed")
        manifest, manifest_sha = read_manifest(folder)
        unreadable = _check_files(folder, manifest)
    except HourRejected as e:
        manifest_sha, fingerprint = _rejected_fingerprint(folder)
        seen = _seen(con, hour, fingerprint)
        if seen and not force:
            return IngestResult(hour, "unchanged", seen[1])
        return _record_rejection(con, hour, manifest_sha, fingerprint, str(e))
    fingerprint = delivery_fingerprint(manifest_sha, folder)
    seen = _seen(con, hour, fingerprint)
    if seen and not force:
        return IngestResult(hour, "unchanged", seen[1])

    result = IngestResult(hour, "ingested")
    try:
        staged, row_quarantine, file_quarantine = _stage_hour(con, folder, manifest, unreadable, result)
    except HourRejected as e:
        _drop_temp(con)
        return _record_rejection(con, hour, manifest_sha, fingerprint, str(e))
    except BaseException:
        _drop_temp(con)
        raise
    con.execute("BEGIN TRANSACTION")
    try:
        for table in [*FEEDS, "quarantine_files"]:
            con.execute(f"DELETE FROM {table} WHERE {'hour' if table == 'quarantine_files' else '_hour'} = ?", [hour])
        con.execute("DELETE FROM quarantine WHERE hour = ?", [hour])
        for feed_name, files in staged.items():
            _land_feed(con, FEEDS[feed_name], files, hour, result)
        if row_quarantine:
            con.executemany("INSERT INTO quarantine VALUES (?, ?, ?, ?, ?, ?)", [(hour, *q) for q in row_quarantine])
            for _, name, *_ in row_quarantine:
                result.files[name]["quarantined"] = result.files[name].get("quarantined", 0) + 1
        if file_quarantine:
            con.executemany(
                "INSERT INTO quarantine VALUES (?, ?, ?, NULL, ?, NULL)",
                [(hour, feed, name, reason) for feed, name, reason in file_quarantine],
            )
            _keep_files(con, hour, folder, [name for _, name, _ in file_quarantine if name in manifest["files"]])
            for feed, name, reason in file_quarantine:
                entry = manifest["files"].get(name, {})
                result.files[name] = {"feed": feed, "rows": entry.get("rows"), "landed": 0, "file_quarantined": reason}

        result.rows_in = sum(int(e["rows"]) for e in manifest["files"].values())
        result.rows_landed = sum(f.get("landed", 0) for f in result.files.values())
        result.rows_quarantined = result.rows_in - result.rows_landed
        _log(con, result, manifest_sha, fingerprint)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        _drop_temp(con)
        raise
    return result


def _seen(con: duckdb.DuckDBPyConnection, hour: str, fingerprint: str) -> tuple | None:
    return one(
        con,
        "SELECT status, reason FROM ingest_attempts WHERE hour = ? AND fingerprint = ? ORDER BY attempted_at DESC LIMIT 1",
        [hour, fingerprint],
    )


def _stage_hour(
    con: duckdb.DuckDBPyConnection, folder: Path, manifest: dict, unreadable: dict[str, str], result: IngestResult
) -> tuple[dict[str, list[Staged]], list[tuple], list[tuple]]:
    """Read every listed file into temporary tables (outside any transaction), except those in
    ``unreadable`` (name: why; not read). Returns staged tables per feed, unparseable rows and
    the files not read (listed under no contract feed, or unlisted); raises HourRejected when
    a feed's file cannot be read (corrupt, truncated past its compression's end, inflating
    past the limit, without a required column: the contract's row count cannot be met, and a
    hardware file quarantined alone stopped a written network's run at its quality bar) or
    its row count differs from the manifest."""
    file_quarantine: list[tuple[str | None, str, str]] = []
    row_quarantine: list[tuple[str, str, int, str, str]] = []
    staged: dict[str, list[Staged]] = {}
    for order, (name, entry) in enumerate(sorted(manifest["files"].items())):
        parts = split_name(name)
        feed = FEEDS.get(parts[0]) if parts else None
        if feed is None:
            file_quarantine.append((None, name, "not a contract feed: the file name must be <feed>.<ext>"))
            continue
        tag = f"{feed.name}_{order}"
        try:
            if name in unreadable:
                raise ValueError(unreadable[name])
            bad_lines = STAGERS[parts[1]](con, feed, folder / name, tag)
        except Exception as e:  # untrusted bytes: any failure to read means the file is unreadable
            _drop_staged(con, tag)
            con.execute(f"DROP TABLE IF EXISTS rej_{tag}; DROP TABLE IF EXISTS rejscan_{tag}")
            message = (str(e).splitlines() or [type(e).__name__])[0][:300]
            raise HourRejected(
                f"{name}: unreadable {parts[1]} file ({message}); its rows cannot be counted against the manifest's {entry['rows']}"
            ) from None
        got = int(scalar(con, f"SELECT count(*) FROM raw_{tag}")) + len(bad_lines)
        if got != entry["rows"]:
            raise HourRejected(f"{name}: {got} rows read but the manifest says {entry['rows']}")
        row_quarantine += [(feed.name, name, line, reason, text) for line, reason, text in bad_lines]
        staged.setdefault(feed.name, []).append(Staged(tag, name, order))
        result.files[name] = {"feed": feed.name, "rows": int(entry["rows"])}
    unlisted = sorted(
        p.name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        for p in folder.iterdir()
        if p.name not in manifest["files"] and p.name != MANIFEST and not (p.is_dir() and not p.is_symlink())
    )
    file_quarantine += [(None, n, "file is not listed in the manifest; not read") for n in unlisted]
    return staged, row_quarantine, file_quarantine


KEEP_FILE_MAX_BYTES = 64 << 20


def _keep_files(con: duckdb.DuckDBPyConnection, hour: str, folder: Path, names: list[str]) -> None:
    """Keep the bytes of quarantined listed files (regular files in the hour folder, checked
    against the manifest) in the database, so nothing is lost if the drop folder is cleaned up
    (files over 64 MiB keep their sha256 only). Unlisted files are never read."""
    for name in names:
        path = folder / name
        size = path.stat().st_size
        data = path.read_bytes() if size <= KEEP_FILE_MAX_BYTES else None
        con.execute("INSERT INTO quarantine_files VALUES (?, ?, ?, ?, ?)", [hour, name, sha256_file(path), size, data])


def _drop_temp(con: duckdb.DuckDBPyConnection) -> None:
    for (name,) in con.execute("SELECT view_name FROM duckdb_views() WHERE temporary AND view_name LIKE 'raw_%'").fetchall():
        con.execute(f'DROP VIEW IF EXISTS "{name}"')
    for (name,) in con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE temporary AND "
        "(table_name LIKE 'stage_%' OR table_name LIKE 'checked_%' OR table_name LIKE 'dups_%' OR table_name LIKE 'rej%' "
        "OR table_name LIKE 'lines_%' OR table_name LIKE 'text_%')"
    ).fetchall():
        con.execute(f'DROP TABLE IF EXISTS "{name}"')


def _log(con: duckdb.DuckDBPyConnection, r: IngestResult, manifest_sha: str, fingerprint: str) -> None:
    now = datetime.now(UTC).replace(tzinfo=None)
    con.execute(
        "INSERT OR REPLACE INTO ingest_log VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [r.hour, r.status, r.reason, manifest_sha, json.dumps(r.files, sort_keys=True),
         r.rows_in, r.rows_landed, r.rows_quarantined, now],
    )  # fmt: skip
    con.execute(
        "INSERT INTO ingest_attempts VALUES (?, ?, ?, ?, ?, ?)", [r.hour, manifest_sha, fingerprint, r.status, r.reason, now]
    )


def _record_rejection(
    con: duckdb.DuckDBPyConnection, hour: str, manifest_sha: str, fingerprint: str, reason: str
) -> IngestResult:
    """Log the rejection; rows of an earlier good delivery of the same hour stay as they were."""
    result = IngestResult(hour, "rejected", reason)
    landed = one(con, "SELECT status FROM ingest_log WHERE hour = ?", [hour])
    if not landed or landed[0] == "rejected":
        _log(con, result, manifest_sha, fingerprint)
    else:
        now = datetime.now(UTC).replace(tzinfo=None)
        con.execute(
            "INSERT INTO ingest_attempts VALUES (?, ?, ?, ?, ?, ?)", [hour, manifest_sha, fingerprint, "rejected", reason, now]
        )
    return result


def ingest_drops(con: duckdb.DuckDBPyConnection, drops: str | Path) -> list[IngestResult]:
    """Ingest every complete hour folder under ``drops`` (new or changed ones), oldest first."""
    return [ingest_hour(con, folder) for folder in false_hours(drops) + complete_hours(drops)]
