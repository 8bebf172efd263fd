"""Rules for safe maintenance shared by every engine: the VACUUM retention check and the OPTIMIZE lock."""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator

from filelock import FileLock

from ._names import is_uri
from .errors import InvalidArgumentError

DEFAULT_RETENTION = "interval 1 week"
_UNIT_HOURS = {
    "microsecond": 1 / 3_600_000_000,
    "millisecond": 1 / 3_600_000,
    "second": 1 / 3600,
    "minute": 1 / 60,
    "hour": 1,
    "day": 24,
    "week": 168,
}


def retention_hours(properties: dict[str, str]) -> float:
    """`delta.deletedFileRetentionDuration` in hours (Delta's default: one week)."""
    text = properties.get("delta.deletedFileRetentionDuration") or DEFAULT_RETENTION
    m = re.fullmatch(r"\s*(?:interval\s+)?(\d+(?:\.\d+)?)\s*([a-z]+?)s?\s*", text.lower())
    if not m or m.group(2) not in _UNIT_HOURS:
        raise InvalidArgumentError(
            "properties",
            f"table property delta.deletedFileRetentionDuration={text!r} is not an interval such as 'interval 7 days'",
        )
    return float(m.group(1)) * _UNIT_HOURS[m.group(2)]


@contextlib.contextmanager
def optimize_lock(table_path: str, timeout: float | None = None) -> Iterator[None]:
    """Serialise OPTIMIZE on one table across processes (delta-rs lets two concurrent compactions both
    commit, duplicating every row). The lock file lives in the table's hidden `_lakehouse` folder, which
    VACUUM leaves alone. Object stores have no local lock: there, run OPTIMIZE from one job at a time."""
    if is_uri(table_path):
        yield
        return
    folder = os.path.join(table_path, "_lakehouse")
    os.makedirs(folder, exist_ok=True)
    with FileLock(os.path.join(folder, "optimize.lock"), timeout=-1 if timeout is None else timeout):
        yield
