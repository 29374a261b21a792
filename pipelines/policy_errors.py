"""Policy files read with pydantic: one clear error naming the file, the key and the type."""

from __future__ import annotations

import tomllib
from pathlib import Path

from pydantic import ValidationError


class PolicyError(ValueError):
    """A policy file that cannot be used; the message names the file and the key."""


def read_toml(path: Path) -> dict:
    """The parsed TOML file; PolicyError (with the path) when missing or not valid TOML."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PolicyError(f"policy file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as e:
        raise PolicyError(f"policy file {path} cannot be read: {e}") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise PolicyError(f"policy file {path} is not valid TOML: {e}") from None


def explain(path: Path, error: ValidationError, prefix: tuple[str | int, ...] = ()) -> PolicyError:
    """The first validation problem as ``file: key: what was expected (got value)``."""
    first = error.errors()[0]
    key = ".".join(str(p) for p in (*prefix, *first["loc"])) or "(top level)"
    got = first.get("input")
    shown = "" if first["type"] == "missing" else f" (got {got!r:.60})"
    more = f"; and {error.error_count() - 1} more problem(s)" if error.error_count() > 1 else ""
    return PolicyError(f"policy file {path}: {key}: {first['msg']}{shown}{more}")
