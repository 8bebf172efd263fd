"""The one retry loop for commits that lost a race with a concurrent writer.

Every writer in the project retries through `retry_on_conflict`: the Delta engines (whose commits take tens of
milliseconds) with `DEFAULT_POLICY`, the lean tables behind the MLflow stores (commits of about a millisecond)
with `LEAN_COMMIT_POLICY`. Both give up at the same deadline, not after a count of attempts: how many attempts
fit in 30 s depends on how long a commit takes, while how long a caller may wait does not.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from .errors import ConcurrentModificationError, InvalidArgumentError

_log = logging.getLogger(__name__)

R = TypeVar("R")


@dataclass(frozen=True)
class RetryPolicy:
    """How long to keep retrying a commit, and how to space the attempts.

    The wait after the n-th conflict is drawn uniformly from [0, min(max_delay, first_delay * 2**(n-1))]
    seconds ("full jitter": writers that collided once do not collide again in lock-step). Once the next wait
    would end past `deadline` seconds after the first attempt, the loop gives up, but not before `min_retries`
    retries: an operation whose one attempt outlasts the deadline (an OPTIMIZE of a large table, or any commit on
    a loaded machine) still gets those retries after a conflict, which a retry usually settles.
    """

    deadline: float = 30.0
    first_delay: float = 0.02
    max_delay: float = 2.0
    min_retries: int = 0

    def __post_init__(self) -> None:
        for name in ("deadline", "first_delay", "max_delay"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or value < 0:
                raise InvalidArgumentError(name, f"RetryPolicy.{name} must be a number of seconds >= 0, got {value!r}")
        if not isinstance(self.min_retries, int) or isinstance(self.min_retries, bool) or self.min_retries < 0:
            raise InvalidArgumentError(
                "min_retries", f"RetryPolicy.min_retries must be a whole number >= 0, got {self.min_retries!r}"
            )

    def delay(self, conflicts: int) -> float:
        """The jittered wait, in seconds, after `conflicts` conflicts in a row (>= 1)."""
        return random.uniform(0.0, min(self.max_delay, self.first_delay * 2.0 ** min(conflicts - 1, 32)))


DEFAULT_POLICY = RetryPolicy(min_retries=2)
"""Engine commits (delta-rs, delta-spark): waits from 20 ms growing to 2 s, for up to 30 s, and at least two retries
(a delta-spark OPTIMIZE on a busy 2-core machine took over 30 s, lost one race and was not retried)."""
LEAN_COMMIT_POLICY = RetryPolicy(first_delay=0.0005, max_delay=0.02)
"""Lean commits (`lakehouse._log`): ~1 ms each, so waits from 0.5 ms growing to 20 ms, for up to 30 s."""


def retry_on_conflict(
    fn: Callable[[], R],
    *,
    table: str,
    operation: str,
    is_conflict: Callable[[BaseException], bool],
    policy: RetryPolicy = DEFAULT_POLICY,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> R:
    """Call `fn` until it commits; after each conflict wait (see `RetryPolicy`) and call it again.

    `fn` must re-read the table state itself, so each attempt is evaluated against the newest snapshot.
    Exceptions for which `is_conflict` is false propagate at once. `clock` and `sleep` exist for tests.

    Raises:
        ConcurrentModificationError: (retryable) the conflicts went on past `policy.deadline` seconds; it
            carries the number of attempts made and the last conflict's first line.
    """
    start = clock()
    conflicts = 0
    while True:
        try:
            return fn()
        except Exception as exc:
            if not is_conflict(exc):
                raise
            conflicts += 1
            wait = policy.delay(conflicts)
            if conflicts > policy.min_retries and clock() - start + wait > policy.deadline:
                cause = (str(exc).splitlines() or [type(exc).__name__])[0]
                _log.warning("%s on %s: gave up after %d lost commit races (%s)", operation, table, conflicts, cause)
                raise ConcurrentModificationError(table, operation, conflicts, cause) from exc
            _log.debug("%s on %s: commit race %d lost, retrying in %.3f s", operation, table, conflicts, wait)
            sleep(wait)
