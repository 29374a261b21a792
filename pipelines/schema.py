"""Every table's DDL, gathered from the modules that own (write) them: the stages, the runner's
bookkeeping and recalculation's review verdicts. ``pipelines.db.ensure_schema`` runs it."""

from __future__ import annotations

from functools import cache


@cache
def schema_sql() -> str:
    from pipelines import recalc, runner
    from pipelines.stages import STAGES

    return "\n".join([*(s.DDL for s in STAGES), runner.DDL, recalc.DDL])


def owners() -> dict[str, str]:
    """Table -> the module that writes it (stages only; the runner and recalc own the rest)."""
    from pipelines.stages import STAGES

    return {table: s.__name__ for s in STAGES for table in s.WRITES}
