"""Retry of commits that lost a race with a concurrent writer."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TypeVar

from .errors import ConcurrentModificationError

R = TypeVar("R")

DEFAULT_ATTEMPTS = 8


def retry_on_conflict(
    fn: Callable[[], R],
    *,
    table: str,
    operation: str,
    is_conflict: Callable[[BaseException], bool],
    attempts: int = DEFAULT_ATTEMPTS,
) -> R:
    """Call `fn` until it commits; on a conflict wait (exponential backoff with jitter) and call it again.

    `fn` must re-read the table state itself, so each attempt is evaluated against the newest snapshot.
    After `attempts` conflicts, raise ConcurrentModificationError (retryable).
    """
    for attempt in range(1, attempts + 1):
        try:
            return fn()
        except Exception as exc:  # noqa: BLE001 - filtered by is_conflict, everything else re-raised
            if not is_conflict(exc):
                raise
            if attempt == attempts:
                raise ConcurrentModificationError(table, operation, attempts, str(exc).splitlines()[0]) from exc
            time.sleep(min(2.0, 0.02 * 2**attempt) * (0.5 + random.random()))
    raise AssertionError("unreachable")  # pragma: no cover
