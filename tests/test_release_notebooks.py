"""The hunters' notebook runs top to bottom on a small simulated release (as a plain script)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
from test_release import released_network

from pipelines.bounty import intake
from pipelines.db import connect

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "hunt.py"


@pytest.mark.slow
def test_hunt_notebook_verifies_recomputes_and_writes_a_report_the_intake_accepts_for_review(tmp_path: Path) -> None:
    rel = released_network()
    out = tmp_path / "hunt"
    done = subprocess.run([sys.executable, str(NOTEBOOK), "--release", str(rel.release), "--key", str(rel.public_key),
                           "--out", str(out)], check=False, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "epochs verified" in done.stdout or (out / "recompute.json").exists()
    checked = json.loads((out / "recompute.json").read_text())
    assert checked and all(checked.values())
    assert (out / "tiers.html").stat().st_size > 1000
    report = json.loads((out / "bounty_report.json").read_text())
    jsonschema.validate(report, json.loads(intake.SCHEMA_PATH.read_text()))
    db = tmp_path / "fp.duckdb"
    db.write_bytes(rel.db.read_bytes())
    with connect(db) as con:
        decision = intake.submit(con, out / "bounty_report.json", rel.release, rel.public_key, intake.load_bounty_policy())
    assert [s[:2] for s in decision.steps[:4]] == [
        ("schema", "pass"),
        ("rate_limit", "pass"),
        ("release", "pass"),
        ("ids", "pass"),
    ]
