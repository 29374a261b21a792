"""Child-process entry points for the kill tests (importable by name, so a forkserver child can
run them): a plain ``fleetproof run``, and one that kills itself with SIGKILL at a named point."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from pathlib import Path

DEATH_POINTS = {
    "before_export": ("pipelines.stages.publish", "export_epoch"),  # epoch committed, nothing exported
    "before_export_record": ("pipelines.export", "_record"),  # files written, not recorded
}


def run_pipeline(drops: Path, db: Path, out: Path | None) -> None:
    from pipelines.run import run

    run(drops, db, out)


def run_and_die_at(drops: Path, db: Path, out: Path, point: str, nth: int) -> None:
    """Run, but SIGKILL this process on the ``nth`` call (1-based) of the function at ``point``."""
    import importlib

    module_name, attr = DEATH_POINTS[point]
    module = importlib.import_module(module_name)
    original: Callable = getattr(module, attr)
    calls = 0

    def dying(*args, **kwargs):
        nonlocal calls
        calls += 1
        if calls >= nth:
            os.kill(os.getpid(), signal.SIGKILL)
        return original(*args, **kwargs)

    setattr(module, attr, dying)
    run_pipeline(drops, db, out)
