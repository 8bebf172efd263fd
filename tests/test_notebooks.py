"""The notebooks and the demo are documentation that must keep running: execute each one."""

import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))
DEMO = Path(__file__).parent.parent / "notebooks" / "demo.py"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs(path, tmp_path, monkeypatch):
    monkeypatch.setenv("LAKEHOUSE_ROOT", str(tmp_path / "lake"))
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors


@pytest.mark.slow
def test_demo_runs_and_exits_zero(tmp_path):
    env = {**os.environ, "LAKEHOUSE_ROOT": str(tmp_path / "lake")}
    p = subprocess.run([sys.executable, str(DEMO)], capture_output=True, text=True, timeout=600, env=env)
    assert p.returncode == 0, p.stderr[-3000:]
    assert "DuplicateKeyError" in p.stdout and "tables under the root" in p.stdout
    assert "validation job succeeded" in p.stdout
    assert "spans ['answer', 'retrieve', 'generate']" in p.stdout and "|retrieve|RETRIEVER|OK" in p.stdout
    assert "load_df() still returns the same rows" in p.stdout and "): True" in p.stdout
