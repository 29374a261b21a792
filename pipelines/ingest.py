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
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from pipelines.db import one, scalar
from pipelines.contract import FEEDS, HOUR_RE, MANIFEST, REQUIRED_FEEDS, Feed, split_name


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


def complete_hours(drops: str | Path) -> list[Path]:
    """Hour folders that hold a manifest (complete), oldest first; anything else is ignored."""
    root = Path(drops)
    if not root.is_dir():
        raise FileNotFoundError(f"drops folder {root} does not exist")
    return sorted(p for p in root.iterdir() if p.is_dir() and HOUR_RE.match(p.name) and (p / MANIFEST).is_file())


def delivery_fingerprint(folder: Path) -> str:
    """Name, size and mtime of every file in the folder: a cheap test for 'delivered again
    unchanged' (anything that differs gets the full sha256 check)."""
    h = hashlib.sha256()
    for p in sorted(folder.iterdir()):
        if p.is_file():
            st = p.stat()
            h.update(f"{p.name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def read_manifest(folder: Path) -> tuple[dict, str]:
    """The manifest and its sha256; raises HourRejected when it cannot be used."""
    raw = (folder / MANIFEST).read_bytes()
    digest = hashlib.sha256(raw).hexdigest()
    try:
        manifest = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise HourRejected(f"{MANIFEST} is not valid JSON ({e})") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        raise HourRejected(f'{MANIFEST} must be an object with "hour" and a "files" object')
    if manifest.get("hour") != folder.name:
        raise HourRejected(f'{MANIFEST} says hour {manifest.get("hour")!r} but the folder is {folder.name!r}')
    for name, entry in manifest["files"].items():
        ok = isinstance(entry, dict) and isinstance(entry.get("rows"), int) and isinstance(entry.get("sha256"), str)
        if not ok or entry["rows"] < 0:
            raise HourRejected(f'{MANIFEST}: entry for {name!r} needs "rows" (int >= 0) and "sha256" (hex)')
    return manifest, digest


# --- staging: every format becomes one table of raw values per feed ---------------------------


def _csv_header(path: Path) -> list[str]:
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt", newline="", encoding="utf-8") as f:  # type: ignore[operator]
        return next(csv.reader(f), [])


def _stage_csv(con: duckdb.DuckDBPyConnection, feed: Feed, path: Path, tag: str) -> list[tuple[int, str, str]]:
    header = _csv_header(path)
    missing = [c for c in feed.column_names if c not in header]
    if missing:
        raise ValueError(f"CSV header lacks required columns {missing}")
    if len(set(header)) != len(header):
        raise ValueError("CSV header repeats a column name")
    columns = "{" + ", ".join(f"{_sql_str(c)}: 'VARCHAR'" for c in header) + "}"
    src = (
        f"read_csv({_sql_str(str(path))}, header=true, auto_detect=false, columns={columns}, "
        f"delim=',', quote='\"', escape='\"', store_rejects=true, "
        f"rejects_table='rej_{tag}', rejects_scan='rejscan_{tag}', max_line_size=10000000)"
    )
    cols = ", ".join(f'"{c}"' for c in feed.column_names)
    con.execute(f"CREATE TEMP TABLE raw_{tag} AS SELECT row_number() OVER () AS _row, {cols} FROM {src}")
    rejects = con.execute(
        f"SELECT line, error_message, csv_line FROM rej_{tag} ORDER BY line, column_idx"
    ).fetchall()
    con.execute(f"DROP TABLE IF EXISTS rej_{tag}; DROP TABLE IF EXISTS rejscan_{tag}")
    seen, out = set(), []
    for line, message, text in rejects:
        if line not in seen:
            seen.add(line)
            out.append((int(line), f"line {line} is not valid CSV: {message}", text))
    return out


def _stage_jsonl(con: duckdb.DuckDBPyConnection, feed: Feed, path: Path, tag: str) -> list[tuple[int, str, str]]:
    src = (
        f"read_csv({_sql_str(str(path))}, columns={{'line': 'VARCHAR'}}, header=false, "
        "auto_detect=false, delim='\x01', quote='', escape='', max_line_size=10000000)"
    )
    con.execute(
        f"CREATE TEMP TABLE lines_{tag} AS SELECT row_number() OVER () AS _row, line, "
        "CASE WHEN json_valid(line) THEN json_type(line::JSON) = 'OBJECT' ELSE false END AS _ok "
        f"FROM {src} WHERE trim(line) <> ''"
    )
    extract = ", ".join(f"json_extract_string(line, {_sql_str('$.' + c)}) AS \"{c}\"" for c in feed.column_names)
    con.execute(f"CREATE TEMP TABLE raw_{tag} AS SELECT _row, {extract} FROM lines_{tag} WHERE _ok")
    bad = con.execute(f"SELECT _row, line FROM lines_{tag} WHERE NOT _ok ORDER BY _row").fetchall()
    con.execute(f"DROP TABLE lines_{tag}")
    return [(int(r), f"line {r} is not a JSON object", text) for r, text in bad]


def _stage_parquet(con: duckdb.DuckDBPyConnection, feed: Feed, path: Path, tag: str) -> list[tuple[int, str, str]]:
    src = f"read_parquet({_sql_str(str(path))}, file_row_number=true)"
    names = [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {src}").fetchall()]
    missing = [c for c in feed.column_names if c not in names]
    if missing:
        raise ValueError(f"Parquet file lacks required columns {missing}")
    cols = ", ".join(f'"{c}"' for c in feed.column_names)
    con.execute(f"CREATE TEMP TABLE raw_{tag} AS SELECT file_row_number + 1 AS _row, {cols} FROM {src}")
    return []


STAGERS = {"csv": _stage_csv, "csv.gz": _stage_csv, "jsonl": _stage_jsonl, "jsonl.gz": _stage_jsonl, "parquet": _stage_parquet}


# --- validation: types, enumerations, rules and duplicate keys, in SQL ------------------------
#
# The common path only casts and computes one "bad" flag per row; reasons (and the raw values
# as JSON) are built afterwards for the bad rows alone, so a clean hour pays little for them.


def _casts(feed: Feed, raw_table: str) -> str:
    casts = ", ".join(f'TRY_CAST("{c.name}" AS {c.type}) AS "{c.name}", "{c.name}" AS "raw_{c.name}"' for c in feed.columns)
    return f"(SELECT _file, _file_order, _row, {casts} FROM {raw_table})"


def _problems(feed: Feed) -> list[tuple[str, str]]:
    """(SQL condition over raw_* and typed columns that makes a row bad, SQL reason text)."""
    out = []
    for c in feed.columns:
        raw, typed = f'"raw_{c.name}"', f'"{c.name}"'
        out.append(
            (f"({raw} IS NOT NULL AND {typed} IS NULL)",
             f"'{c.name}: cannot read ' || left(CAST({raw} AS VARCHAR), 60) || ' as {c.type}'")
        )  # fmt: skip
        if not c.nullable:
            out.append((f"{raw} IS NULL", f"'{c.name} is required'"))
        if c.allowed:
            allowed = ", ".join(_sql_str(a) for a in c.allowed)
            out.append(
                (f"coalesce({typed} NOT IN ({allowed}), false)",
                 f"'{c.name}: ' || {typed} || ' is not one of {'/'.join(c.allowed)}'")
            )  # fmt: skip
    for predicate, reason in feed.extra_checks:
        out.append((f"NOT coalesce(({predicate}), true)", _sql_str(reason)))
    return out


def _checked_select(feed: Feed, raw_table: str) -> str:
    """Typed columns plus ``_bad`` for every staged row."""
    cols = ", ".join(f'"{c.name}"' for c in feed.columns)
    bad = " OR ".join(cond for cond, _ in _problems(feed))
    return f"SELECT _file, _file_order, _row, {cols}, ({bad}) AS _bad FROM {_casts(feed, raw_table)}"


def _mark_duplicates(con: duckdb.DuckDBPyConnection, feed: Feed, checked: str) -> None:
    """Flag rows repeating an earlier row's key within the hour (the first one stays)."""
    if not feed.key:
        return
    key = ", ".join(f'"{k}"' for k in feed.key)
    con.execute(
        f"CREATE TEMP TABLE dups_{feed.name} AS SELECT _file_order, _row FROM ("
        f"  SELECT _file_order, _row, row_number() OVER (PARTITION BY {key} ORDER BY _file_order, _row) AS n"
        f"  FROM {checked} WHERE NOT _bad AND ({key}) IN (SELECT ({key}) FROM {checked} WHERE NOT _bad GROUP BY ALL HAVING count(*) > 1)"
        ") WHERE n > 1"
    )
    con.execute(f"UPDATE {checked} SET _bad = true FROM dups_{feed.name} d WHERE {checked}._file_order = d._file_order AND {checked}._row = d._row")


def _quarantine_select(feed: Feed, raw_table: str, checked: str) -> str:
    """(file, row, reason, raw values as JSON) for the rows flagged bad."""
    reasons = ", ".join(f"CASE WHEN {cond} THEN {text} END" for cond, text in _problems(feed))
    dup = "NULL"
    if feed.key:
        label = " || ', ' || ".join(f"coalesce(CAST(\"{k}\" AS VARCHAR), 'null')" for k in feed.key)
        dup = f"CASE WHEN d._row IS NOT NULL THEN 'duplicate {'/'.join(feed.key)} (' || {label} || ') already in this hour' END"
    raws = ", ".join(f"'{c.name}': \"raw_{c.name}\"" for c in feed.columns)
    bad_rows = (
        f"(SELECT r.* FROM {raw_table} r SEMI JOIN (SELECT _file_order, _row FROM {checked} WHERE _bad) b "
        "ON r._file_order = b._file_order AND r._row = b._row)"
    )
    dups = f"dups_{feed.name}" if feed.key else "(SELECT NULL::INTEGER AS _file_order, NULL::BIGINT AS _row WHERE false)"
    return (
        f"SELECT v._file, v._row, concat_ws('; ', {reasons}, {dup}) AS reason, CAST(to_json({{{raws}}}) AS VARCHAR) AS raw "
        f"FROM {_casts(feed, bad_rows)} v LEFT JOIN {dups} d ON d._file_order = v._file_order AND d._row = v._row "
        "ORDER BY v._file_order, v._row"
    )


def _land_feed(con: duckdb.DuckDBPyConnection, feed: Feed, tags: list[str], hour: str, result: IngestResult) -> None:
    """Validate one feed's staged files; good rows into the feed table, the rest to quarantine."""
    union = "(" + " UNION ALL BY NAME ".join(f"SELECT * FROM raw_{t}" for t in tags) + ")"
    checked = f"checked_{feed.name}"
    con.execute(f"CREATE TEMP TABLE {checked} AS {_checked_select(feed, union)}")
    _mark_duplicates(con, feed, checked)
    cols = ", ".join(f'"{c}"' for c in feed.column_names)
    con.execute(
        f"INSERT INTO {feed.name} SELECT {cols}, ?, _file, _row FROM {checked} WHERE NOT _bad ORDER BY _file_order, _row",
        [hour],
    )
    con.execute(f"INSERT INTO quarantine SELECT ?, ?, _file, _row, reason, raw FROM ({_quarantine_select(feed, union, checked)})", [hour, feed.name])
    for name, landed, bad in con.execute(
        f"SELECT _file, count(*) FILTER (NOT _bad), count(*) FILTER (_bad) FROM {checked} GROUP BY _file"
    ).fetchall():
        result.files[name].update(landed=landed, quarantined=bad)
    con.execute(f"DROP TABLE {checked}; DROP TABLE IF EXISTS dups_{feed.name}")
    for t in tags:
        con.execute(f"DROP TABLE raw_{t}")


def _check_files(folder: Path, manifest: dict) -> None:
    """Reject the hour unless every listed file is there with the declared sha256."""
    listed = manifest["files"]
    feeds_listed = {split_name(n)[0] for n in listed if split_name(n)}
    missing_required = [f for f in REQUIRED_FEEDS if f not in feeds_listed]
    if missing_required:
        raise HourRejected(f"required feeds missing from the manifest: {', '.join(missing_required)}")
    for name, entry in sorted(listed.items()):
        path = folder / name
        if not path.is_file():
            raise HourRejected(f"{name} is listed in the manifest but missing")
        actual = sha256_file(path)
        if actual != entry["sha256"].lower():
            raise HourRejected(f"{name}: sha256 {actual[:12]}… differs from the manifest's {entry['sha256'][:12]}…")


def ingest_hour(con: duckdb.DuckDBPyConnection, folder: str | Path, *, force: bool = False) -> IngestResult:
    """Land one complete hour folder (or reject it); safe to call any number of times."""
    folder = Path(folder)
    hour = folder.name
    fingerprint = delivery_fingerprint(folder)
    seen = one(
        con,
        "SELECT status, reason FROM ingest_attempts WHERE hour = ? AND fingerprint = ? ORDER BY attempted_at DESC LIMIT 1",
        [hour, fingerprint],
    )
    if seen and not force:
        return IngestResult(hour, "unchanged", seen[1])
    try:
        manifest, manifest_sha = read_manifest(folder)
        _check_files(folder, manifest)
    except HourRejected as e:
        return _record_rejection(con, hour, sha256_file(folder / MANIFEST), fingerprint, str(e))

    result = IngestResult(hour, "ingested")
    try:
        staged, row_quarantine, file_quarantine = _stage_hour(con, folder, manifest, result)
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
        for feed_name, tags in staged.items():
            _land_feed(con, FEEDS[feed_name], tags, hour, result)
        if row_quarantine:
            con.executemany(
                "INSERT INTO quarantine VALUES (?, ?, ?, ?, ?, ?)", [(hour, *q) for q in row_quarantine]
            )
            for _, name, *_ in row_quarantine:
                result.files[name]["quarantined"] = result.files[name].get("quarantined", 0) + 1
        if file_quarantine:
            con.executemany(
                "INSERT INTO quarantine VALUES (?, ?, ?, NULL, ?, NULL)",
                [(hour, feed, name, reason) for feed, name, reason in file_quarantine],
            )
            _keep_files(con, hour, folder, [name for _, name, _ in file_quarantine])
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


def _stage_hour(
    con: duckdb.DuckDBPyConnection, folder: Path, manifest: dict, result: IngestResult
) -> tuple[dict[str, list[str]], list[tuple], list[tuple]]:
    """Read every listed file into temporary tables (outside any transaction: a file DuckDB
    cannot read must not abort the hour). Returns staged tables per feed, unparseable rows
    and unreadable files; raises HourRejected when a row count differs from the manifest."""
    file_quarantine: list[tuple[str | None, str, str]] = []
    row_quarantine: list[tuple[str, str, int, str, str]] = []
    staged: dict[str, list[str]] = {}
    for order, (name, entry) in enumerate(sorted(manifest["files"].items())):
        parts = split_name(name)
        feed = FEEDS.get(parts[0]) if parts else None
        if feed is None:
            file_quarantine.append((None, name, "not a contract feed: the file name must be <feed>.<ext>"))
            continue
        tag = f"{feed.name}_{order}"
        try:
            bad_lines = STAGERS[parts[1]](con, feed, folder / name, tag)
        except Exception as e:  # untrusted bytes: any failure to read means the file is unreadable
            con.execute(f"DROP TABLE IF EXISTS raw_{tag}")
            message = (str(e).splitlines() or [type(e).__name__])[0][:300]
            file_quarantine.append((feed.name, name, f"unreadable {parts[1]} file: {message}"))
            continue
        got = int(scalar(con, f"SELECT count(*) FROM raw_{tag}")) + len(bad_lines)
        if got != entry["rows"]:
            raise HourRejected(f"{name}: {got} rows read but the manifest says {entry['rows']}")
        row_quarantine += [(feed.name, name, line, reason, text) for line, reason, text in bad_lines]
        con.execute(f"ALTER TABLE raw_{tag} ADD COLUMN _file VARCHAR DEFAULT {_sql_str(name)}")
        con.execute(f"ALTER TABLE raw_{tag} ADD COLUMN _file_order INTEGER DEFAULT {order}")
        staged.setdefault(feed.name, []).append(tag)
        result.files[name] = {"feed": feed.name, "rows": int(entry["rows"])}
    unlisted = sorted(p.name for p in folder.iterdir() if p.is_file() and p.name not in manifest["files"] and p.name != MANIFEST)
    file_quarantine += [(None, n, "file is not listed in the manifest; not read") for n in unlisted]
    return staged, row_quarantine, file_quarantine


KEEP_FILE_MAX_BYTES = 64 << 20


def _keep_files(con: duckdb.DuckDBPyConnection, hour: str, folder: Path, names: list[str]) -> None:
    """Keep the bytes of quarantined files in the database, so nothing is lost if the drop
    folder is cleaned up (files over 64 MiB keep their sha256 only)."""
    for name in names:
        path = folder / name
        size = path.stat().st_size
        data = path.read_bytes() if size <= KEEP_FILE_MAX_BYTES else None
        con.execute("INSERT INTO quarantine_files VALUES (?, ?, ?, ?, ?)", [hour, name, sha256_file(path), size, data])


def _drop_temp(con: duckdb.DuckDBPyConnection) -> None:
    for (name,) in con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE temporary AND "
        "(table_name LIKE 'raw_%' OR table_name LIKE 'checked_%' OR table_name LIKE 'dups_%' OR table_name LIKE 'rej%')"
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
    return [ingest_hour(con, folder) for folder in complete_hours(drops)]

