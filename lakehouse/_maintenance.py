"""Rules for safe maintenance shared by every engine: the VACUUM retention check and Delta's delete-delete
conflict rule for OPTIMIZE (no lock: concurrent OPTIMIZE runs are safe on a local disk and on an object store)."""

from __future__ import annotations

import re
from urllib.parse import unquote

from . import _storage
from ._log_files import parse_commit
from .errors import InvalidArgumentError

DEFAULT_RETENTION = "interval 1 week"
DEFAULT_TARGET_FILE_SIZE = 104_857_600
LIVE_WRITE_HOURS = 1.0
"""VACUUM never removes a folder or staged commit file younger than this, whatever the retention: a live write
may be about to use it (an empty `lh-` folder about to receive files, a `_delta_log` staging file about to be
linked)."""
"""OPTIMIZE's target file size when the table sets no `delta.targetFileSize`: delta-rs's default (100 MiB)."""
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


def files_removed_after(table_path: str, version: int, latest: int) -> set[str] | None:
    """The data files (file system paths, relative to the table) that commits `version + 1` .. `latest` removed,
    read from the log itself (any engine's commits); None when one of those commits changed the table's metadata
    or protocol, or is no longer in the log: then nothing planned at `version` may be committed.

    Delta's delete-delete rule: a commit that removes a file another commit after its read version already
    removed must fail (two compactions of the same files would both stay live and duplicate every row)."""
    removed: set[str] = set()
    log_dir = _storage.join(table_path, "_delta_log")
    for v in range(version + 1, latest + 1):
        path = _storage.join(log_dir, f"{v:020d}.json")
        try:
            data = _storage.read(path)
        except FileNotFoundError:
            return None
        for action in parse_commit(table_path, path, data):
            if "metaData" in action or "protocol" in action:
                return None
            if "remove" in action:
                removed.add(unquote(action["remove"]["path"]))
    return removed
