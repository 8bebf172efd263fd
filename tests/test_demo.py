"""`notebooks/demo.py`, the README's end-to-end demo on the embedded default, runs to the end and exits 0, and prints
what it promises (its printed results are checked here; the notebooks' oracles are in test_notebooks.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

DEMO = Path(__file__).parent.parent / "notebooks" / "demo.py"


@pytest.mark.slow
def test_demo_runs_and_exits_zero(tmp_path):
    env = {**os.environ, "LAKEHOUSE_ROOT": str(tmp_path / "lake")}
    p = subprocess.run([sys.executable, str(DEMO)], capture_output=True, text=True, timeout=1200, env=env)
    assert p.returncode == 0, p.stderr[-3000:]
    assert "DuplicateKeyError" in p.stdout and "tables under the root" in p.stdout
    assert "validation job succeeded" in p.stdout
    assert "spans ['answer', 'retrieve', 'generate']" in p.stdout and "|retrieve|RETRIEVER|OK" in p.stdout
    assert "load_df() still returns the same rows" in p.stdout and "): True" in p.stdout
    # It ends as a scheduler would: maintain, then monitor raising the drifted month's alert, chart and report written.
    assert "$ lakehouse-jobs maintain" in p.stdout and "-> exit 0" in p.stdout
    assert "-> exit 3 (3 = alert)" in p.stdout and "('2026-04-01', 'drift.psi.x0')" in p.stdout
    report = tmp_path / "lake" / "demo" / "tracking" / "monitoring" / "demo-churn-model"
    assert f"chart: {report / 'monitoring.png'}" in p.stdout and (report / "monitoring.png").stat().st_size > 0
    assert f"report: {report / 'monitoring.html'}" in p.stdout and "<html" in (report / "monitoring.html").read_text()
