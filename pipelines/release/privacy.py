"""Free-text rewriting and the privacy scan of a release.

Reasons and evidence are JSON written by detectors; they may quote any identifier (a GPU UUID,
a list of device ids). ``rewrite_text`` replaces every raw identifier known for the epoch with
its public form in every string column, with polars' Aho-Corasick ``replace_many`` (longest
identifier first, so ``dev_1`` never eats the front of ``dev_10``).

``scan_release`` reads every byte of every file under a release: the raw bytes of each file
(JSON, signatures, Parquet footers and statistics) and, for Parquet, every decoded value cast to
text (so compression hides nothing), and reports each raw identifier it finds.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl

EMAIL_RE = r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"
"""Anything shaped like an email address: never published, whatever produced it."""
EMAIL_PATTERN_RE = r"[a-z0-9-]+(\.[a-z0-9-]+)*\.[a-z]{2,}\|[^|\"\s]+\|[^\"\s)]*"
"""``domain|local-part|digits``: the sybil stage's email-pattern signal, derived from an email."""


PUBLIC_FORM_COLUMNS = frozenset({
    "epoch", "device_id", "account_id", "host_fingerprint", "gpu_uuid", "gpu_serial", "ip_prefix", "signup_ip_prefix",
    "email_class", "email_domain", "client_account_id", "referrer_account_id", "cluster_id",
})  # fmt: skip
"""Columns the release queries fill from the pseudonymization macros only: nothing to rewrite
(the privacy scan still reads them)."""


def rewrite_text(frame: pl.DataFrame, identifiers: pl.DataFrame) -> pl.DataFrame:
    """Every other string (and list-of-string) column with each raw ``value`` replaced by its
    ``replacement``, and any email-shaped or email-derived string masked."""
    ids = identifiers.filter(pl.col("value").str.len_bytes() > 0).sort(
        pl.col("value").str.len_bytes(), "value", descending=[True, False]
    )
    patterns, replacements = ids["value"].to_list(), ids["replacement"].to_list()
    strings = [c for c, t in frame.schema.items() if t == pl.String and c not in PUBLIC_FORM_COLUMNS]
    lists = [c for c, t in frame.schema.items() if t == pl.List(pl.String) and c not in PUBLIC_FORM_COLUMNS]
    return frame.with_columns(
        *(
            pl.col(c)
            .str.replace_many(patterns, replacements)
            .str.replace_all(EMAIL_RE, "<email>")
            .str.replace_all(EMAIL_PATTERN_RE, "<email_pattern>")
            for c in strings
        ),
        *(pl.col(c).list.eval(pl.element().str.replace_many(patterns, replacements)) for c in lists),
    )


@dataclass(frozen=True)
class Finding:
    file: str
    where: str  # "bytes" or "column <name>"
    kind: str
    value: str


def _values_as_text(con: duckdb.DuckDBPyConnection, path: Path) -> pl.Series:
    """One text row per Parquet row: every column's decoded value cast to VARCHAR, joined."""
    names = [r[0] for r in con.execute("DESCRIBE SELECT * FROM read_parquet(?)", [str(path)]).fetchall()]
    if not names:
        return pl.Series("text", [], dtype=pl.String)
    joined = " || chr(31) || ".join(f"coalesce(CAST(\"{n}\" AS VARCHAR), '')" for n in names)
    return pl.from_arrow(con.sql(f"SELECT {joined} AS text FROM read_parquet(?)", params=[str(path)]).to_arrow_table())["text"]  # type: ignore[index]


def _matches(texts: pl.Series, patterns: list[str], shapes: bool = True) -> set[str]:
    """Raw identifiers in ``texts``, and with ``shapes`` anything shaped like an email. Shapes
    are looked for in text only: compressed Parquet pages are random bytes, and over a month of
    files ``x@ab.cd`` turns up in them by chance (the decoded values are still checked)."""
    found = set()
    if patterns:
        found |= set(texts.str.extract_many(patterns, overlapping=True).explode().drop_nulls().unique().to_list())
    if shapes:
        found |= {f"email-shaped: {v}" for v in texts.str.extract_all(EMAIL_RE).explode().drop_nulls().unique().to_list()}
    return found


def scan_release(root: str | Path, identifiers: pl.DataFrame, folders: list[Path] | None = None) -> list[Finding]:
    """Every raw identifier (``kind``, ``value`` rows) found anywhere under ``root`` (or only in
    ``folders`` under it)."""
    root = Path(root)
    ids = identifiers.filter(pl.col("value").str.len_bytes() > 0).unique(["kind", "value"])
    patterns = ids["value"].unique().to_list()
    kind_of = dict(zip(ids["value"].to_list(), ids["kind"].to_list(), strict=True))
    findings: list[Finding] = []
    con = duckdb.connect()
    try:
        for path in sorted(p for folder in (folders or [root]) for p in folder.rglob("*") if p.is_file()):
            rel = str(path.relative_to(root))
            raw = pl.Series([path.read_bytes().decode("latin-1")])
            binary = path.suffix == ".parquet"
            findings += [Finding(rel, "bytes", kind_of.get(v, "email"), v) for v in sorted(_matches(raw, patterns, not binary))]
            if path.suffix == ".parquet":
                texts = _values_as_text(con, path)
                findings += [Finding(rel, "values", kind_of.get(v, "email"), v) for v in sorted(_matches(texts, patterns))]
    finally:
        con.close()
    return findings
