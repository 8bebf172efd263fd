"""What a benchmark prints beside its figures: the machine's load and the commit measured (imported by the
benchmarks beside it; run them from the repository)."""

from __future__ import annotations

import functools
import os
import subprocess


def load() -> str:
    """The 1-minute load average: other processes on the machine skew every figure printed beside it."""
    return f"load {os.getloadavg()[0]:.2f}"


def revision() -> str:
    """The commit measured, and whether the working tree differs from it (the figures are of the tree)."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    run = functools.partial(subprocess.run, cwd=root, capture_output=True, text=True, check=False)
    head = run(["git", "rev-parse", "--short", "HEAD"]).stdout.strip() or "unknown"
    dirty = run(["git", "status", "--porcelain", "--untracked-files=no"]).stdout.strip()
    return f"commit {head}{' + uncommitted changes' if dirty else ''}"
