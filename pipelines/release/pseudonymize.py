"""Pseudonymization for the public release: keyed hashes, generalized IPs, email classes.

Identifiers become ``<kind>-<20 hex>``: the first 80 bits of HMAC-SHA256 under the season key,
over ``<kind>:<value>`` (so a device and an account with the same string differ). The season
key is HMAC-SHA256(release secret, ``fleetproof-release-season:<season id>``): one secret, a new
set of pseudonyms per season (``data/policy/release.toml``). Without the secret nobody can map
a real identifier to its pseudonym; with it the operator can (bounty intake does).

The same HMAC runs in DuckDB SQL (``register``), so whole tables are pseudonymized set-wise;
``pseudonym`` is the Python reference the tests compare it with.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

import duckdb

from pipelines.catalogue import DATA_DIR
from pipelines.contract import FREE_MAIL, HOUR_RE

DEFAULT_RELEASE_POLICY = DATA_DIR / "policy" / "release.toml"
SECRET_ENV = "FLEETPROOF_RELEASE_SECRET"
PSEUDONYM_HEX = 20
KINDS = {
    "device": "d",
    "account": "a",
    "host": "h",
    "gpu": "g",
    "serial": "s",
    "email_domain": "m",
    "wallet": "w",
    "cluster": "c",
}
"""Identifier kinds and the prefix of their pseudonyms."""


@dataclass(frozen=True)
class Season:
    id: str
    starts: str


@dataclass(frozen=True)
class ReleasePolicy:
    wallets: str
    seasons: tuple[Season, ...]

    def season_at(self, epoch: str) -> Season:
        """The season in force at an epoch (the newest one that has started)."""
        started = [s for s in self.seasons if s.starts <= epoch]
        if not started:
            raise ValueError(f"no release season has started at {epoch}; add a [[season]] to the release policy")
        return max(started, key=lambda s: s.starts)


def load_release_policy(path: str | Path | None = None) -> ReleasePolicy:
    raw = tomllib.loads(Path(path or DEFAULT_RELEASE_POLICY).read_text())
    wallets = raw.get("wallets", "public")
    if wallets not in ("public", "keyed"):
        raise ValueError(f"release policy: wallets must be 'public' or 'keyed', got {wallets!r}")
    seasons = tuple(Season(str(s["id"]), str(s["starts"])) for s in raw.get("season", []))
    if not seasons:
        raise ValueError("release policy has no [[season]]")
    for s in seasons:
        if not HOUR_RE.match(s.starts):
            raise ValueError(f"season {s.id}: starts must be YYYY-MM-DDTHH, got {s.starts!r}")
    if len({s.starts for s in seasons}) != len(seasons) or len({s.id for s in seasons}) != len(seasons):
        raise ValueError("release policy: two seasons share an id or a start")
    return ReleasePolicy(wallets, seasons)


def read_secret(path: str | Path | None = None) -> bytes:
    """The release secret: the file's bytes (hex text is decoded), else ``$FLEETPROOF_RELEASE_SECRET``."""
    if path is not None:
        text = Path(path).read_bytes().strip()
    elif os.environ.get(SECRET_ENV):
        text = os.environ[SECRET_ENV].encode()
    else:
        raise ValueError(f"no release secret: pass --secret FILE or set {SECRET_ENV}")
    try:
        secret = bytes.fromhex(text.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        secret = text
    if len(secret) < 16:
        raise ValueError("the release secret must be at least 16 bytes")
    return secret


def season_key(secret: bytes, season_id: str) -> bytes:
    return hmac.new(secret, f"fleetproof-release-season:{season_id}".encode(), hashlib.sha256).digest()


def pseudonym(key: bytes, kind: str, value: str) -> str:
    """Reference implementation of the SQL ``pseudo(kind, value)`` macro."""
    digest = hmac.new(key, f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()
    return f"{KINDS[kind]}-{digest[:PSEUDONYM_HEX]}"


def register(con: duckdb.DuckDBPyConnection, key: bytes, wallets: str = "public") -> None:
    """Temporary SQL macros: ``pseudo(kind, v)``, ``wallet_out(v)``, ``ip_prefix(ip)``,
    ``email_class(email)``, ``email_domain(email)``. The key lives in this connection only."""
    block = key if len(key) <= 64 else hashlib.sha256(key).digest()
    block = block.ljust(64, b"\0")
    ipad = bytes(b ^ 0x36 for b in block).hex()
    opad = bytes(b ^ 0x5C for b in block).hex()
    prefixes = " ".join(f"WHEN '{k}' THEN '{p}-'" for k, p in KINDS.items())
    free = ", ".join(f"'{d}'" for d in FREE_MAIL)
    con.execute(f"""
        CREATE OR REPLACE TEMP MACRO pseudo(kind, v) AS CASE WHEN v IS NULL THEN NULL ELSE
            (CASE kind {prefixes} END) || left(sha256(unhex('{opad}') || unhex(sha256(unhex('{ipad}')
            || encode(kind || ':' || CAST(v AS VARCHAR))))), {PSEUDONYM_HEX}) END;
        CREATE OR REPLACE TEMP MACRO wallet_out(v) AS {"pseudo('wallet', v)" if wallets == "keyed" else "v"};
        CREATE OR REPLACE TEMP MACRO v6_left(ip) AS CASE WHEN split_part(ip, '::', 1) = '' THEN []::VARCHAR[]
            ELSE string_split(split_part(ip, '::', 1), ':') END;
        CREATE OR REPLACE TEMP MACRO v6_right(ip) AS CASE WHEN NOT contains(ip, '::') OR split_part(ip, '::', 2) = ''
            THEN []::VARCHAR[] ELSE string_split(split_part(ip, '::', 2), ':') END;
        CREATE OR REPLACE TEMP MACRO v6_groups(ip) AS CASE WHEN contains(ip, '::')
            THEN list_concat(list_concat(v6_left(ip), list_resize([]::VARCHAR[],
                 greatest(0, 8 - len(v6_left(ip)) - len(v6_right(ip))), '0')), v6_right(ip))
            ELSE string_split(ip, ':') END;
        CREATE OR REPLACE TEMP MACRO ip_prefix(ip) AS CASE
            WHEN ip IS NULL THEN NULL
            WHEN regexp_full_match(ip, '\\d{{1,3}}(\\.\\d{{1,3}}){{3}}') THEN regexp_replace(ip, '\\.\\d{{1,3}}$', '.0') || '/24'
            WHEN regexp_full_match(ip, '[0-9A-Fa-f:]+') AND contains(ip, ':')
            THEN array_to_string(list_transform(v6_groups(ip)[1:3],
                 lambda g: coalesce(nullif(ltrim(lower(g), '0'), ''), '0')), ':') || '::/48'
            ELSE 'unparsable' END;
        CREATE OR REPLACE TEMP MACRO email_class(email) AS CASE
            WHEN email IS NULL OR NOT contains(email, '@') THEN 'none'
            WHEN lower(split_part(email, '@', 2)) IN ({free}) THEN 'free_mail' ELSE 'own_domain' END;
        CREATE OR REPLACE TEMP MACRO email_domain(email) AS CASE WHEN email_class(email) = 'own_domain'
            THEN pseudo('email_domain', lower(split_part(email, '@', 2))) END;
    """)  # fmt: skip
