"""What every job shows while it runs: a progress bar on a terminal (tqdm, on stderr), nothing when stderr is not
one (cron, Airflow, a Databricks job, a test), so logs hold only `logging` lines."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

from tqdm import tqdm

T = TypeVar("T")


def track(items: Iterable[T], *, total: int | None = None, description: str = "") -> Iterator[T]:
    """`items`, one bar step each, with `description` (e.g. "maintain mlflow.metrics") and `total` when known."""
    quiet = not sys.stderr.isatty()
    yield from tqdm(items, total=total, desc=description, disable=quiet, file=sys.stderr, leave=False)
