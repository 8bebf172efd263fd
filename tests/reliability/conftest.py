"""Fixtures of the reliability suites: each test in its own directory, its figures written for RELIABILITY.md.

The helpers these modules share live in `reliability_helpers.py` beside this file; this folder is put on
sys.path here because pytest's importlib mode does not (the project's `pythonpath` lists other test folders).
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from datetime import UTC, datetime

import pytest

sys.path.insert(0, os.path.dirname(__file__))

ARTIFACTS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "test-artifacts")


@pytest.fixture(autouse=True)
def run_in_tmp_path(monkeypatch, tmp_path):
    """No suite writes ./mlruns or ./spark-warehouse in the checkout."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LAKEHOUSE_ENGINE", raising=False)


@pytest.fixture
def figures(request):
    """A dict the test fills with its figures; written to test-artifacts/reliability/<test name>.json at the end,
    with whether the test passed, the run's options and the machine, so RELIABILITY.md quotes a run."""
    data: dict = {}
    started = time.monotonic()
    yield data
    report = getattr(request.node, "rep_call", None)
    record = {
        "test": request.node.nodeid,
        "outcome": report.outcome if report is not None else "setup-failed",
        "long": bool(request.config.getoption("--long")),
        "command": " ".join(["pytest", *request.config.invocation_params.args]),
        "finished_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "seconds": round(time.monotonic() - started, 1),
        "machine": {"cores": os.cpu_count(), "python": platform.python_version(), "system": platform.platform()},
        "figures": data,
    }
    out = os.path.join(ARTIFACTS, "reliability")
    os.makedirs(out, exist_ok=True)
    name = request.node.name.replace("/", "_").replace("[", "-").replace("]", "")
    suffix = "-long" if record["long"] else ""
    with open(os.path.join(out, f"{name}{suffix}.json"), "w") as fh:
        json.dump(record, fh, indent=2, sort_keys=True)
    print(f"\nfigures of {request.node.name}: {json.dumps(data, sort_keys=True)}")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.when == "call":
        item.rep_call = report
    return report
