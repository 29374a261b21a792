"""Epochs: one UTC hour, named ``YYYY-MM-DDTHH`` in drop folders, tables and export paths.

The one place that knows the name's format; Python code converts with these functions and
SQL with the macros in ``SQL_MACROS`` (``epoch_start``, ``hours_back``).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

FORMAT = "%Y-%m-%dT%H"
PATTERN = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}$")


def parse(epoch: str) -> datetime:
    """``2024-08-14T07`` -> the hour's start (naive UTC); ValueError for anything else."""
    if not isinstance(epoch, str) or not PATTERN.match(epoch):
        raise ValueError(f"not an epoch (YYYY-MM-DDTHH): {epoch!r}")
    return datetime.strptime(epoch, FORMAT)


def try_parse(epoch: str) -> datetime | None:
    """``parse``, or None when the name is not a real UTC hour (``T99`` is not)."""
    try:
        return parse(epoch)
    except ValueError:
        return None


def name(start: datetime) -> str:
    """The epoch containing ``start``."""
    return start.strftime(FORMAT)


def shift(epoch: str, hours: int) -> str:
    """The epoch ``hours`` later (earlier when negative)."""
    return name(parse(epoch) + timedelta(hours=hours))


def previous(epoch: str) -> str:
    return shift(epoch, -1)


SQL_MACROS = f"""
CREATE OR REPLACE TEMP MACRO epoch_start(epoch) AS strptime(epoch, '{FORMAT}');
CREATE OR REPLACE TEMP MACRO hours_back(epoch, hours) AS
    strftime(strptime(epoch, '{FORMAT}') - to_hours(CAST(hours AS BIGINT)), '{FORMAT}');
CREATE OR REPLACE TEMP MACRO epoch_shift(epoch, hours) AS
    strftime(strptime(epoch, '{FORMAT}') + to_hours(CAST(hours AS BIGINT)), '{FORMAT}');
"""
"""``epoch_start('2024-08-14T05')`` = its first instant; ``hours_back('2024-08-14T05', 3)`` =
``'2024-08-14T02'`` (window bounds over epoch names)."""
