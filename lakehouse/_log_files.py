"""The files of a Delta log directory, read and written as plain files (no snapshot, no Spark).

A commit's `commitInfo` and the commit times Delta uses for time travel (file modification times, or
`inCommitTimestamp`) from any engine's log; put-if-absent creation of a new file (O_EXCL, fsynced when
`LAKEHOUSE_TRACKING_FSYNC` is set); the rows of a lean data file.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import unquote, urlparse

import pyarrow.parquet as pq

from ._log_types import Row
from ._settings import tracking_fsync


def read_commit_info(log_dir: str, version: int) -> dict[str, Any] | None:
    """The `commitInfo` action of `<log_dir>/<version>.json` (any engine's commit), or None if absent."""
    try:
        with open(os.path.join(log_dir, f"{version:020d}.json"), "rb") as fh:
            data = fh.read()
    except FileNotFoundError:
        return None
    for line in data.splitlines():
        if line.strip():
            action = json.loads(line)
            if "commitInfo" in action:
                return dict(action["commitInfo"])
    return None


def commit_times(
    log_dir: str, *, in_commit_timestamps_from: int | None = None, versions: Iterable[int] | None = None
) -> list[tuple[int, int]]:
    """(version, commit time in epoch ms) of the commit files in `log_dir`, by version, as Delta times them.

    A commit's time is its file's modification time, or, from version `in_commit_timestamps_from` on (a table
    with `delta.enableInCommitTimestamps`), the `inCommitTimestamp` of its commitInfo. Not yet made monotonic
    (`lakehouse._timetravel.monotonic_commits` does that). Every commit: one directory listing and a stat per
    commit; only `versions` (those whose file still exists): a stat each.
    """

    def timed(version: int, mtime_ns: int) -> tuple[int, int]:
        ms = mtime_ns // 1_000_000
        if in_commit_timestamps_from is not None and version >= in_commit_timestamps_from:
            info = read_commit_info(log_dir, version) or {}
            ms = int(info.get("inCommitTimestamp", ms))
        return version, ms

    out: list[tuple[int, int]] = []
    if versions is not None:
        for version in versions:
            with contextlib.suppress(FileNotFoundError):
                out.append(timed(version, os.stat(os.path.join(log_dir, f"{version:020d}.json")).st_mtime_ns))
        return sorted(out)
    with os.scandir(log_dir) as entries:
        for entry in entries:
            name = entry.name
            if len(name) == 25 and name.endswith(".json") and name[:20].isdigit():
                out.append(timed(int(name[:20]), entry.stat().st_mtime_ns))
    return sorted(out)


def write_new(path: str, data: bytes) -> None:
    """Write a file that must not exist yet (O_EXCL), fsynced when LAKEHOUSE_TRACKING_FSYNC is set."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        os.write(fd, data)
        if tracking_fsync():
            os.fsync(fd)
    finally:
        os.close(fd)


def read_rows(path: str, columns: list[str]) -> list[Row]:
    table = pq.ParquetFile(path).read()
    present = [c for c in columns if c in table.column_names]
    data = {c: table.column(c).to_pylist() for c in present}
    n = table.num_rows
    missing = {c: None for c in columns if c not in data}
    return [{**{c: data[c][i] for c in present}, **missing} for i in range(n)]


def file_key(path: str) -> str:
    """A log action's (URL-encoded) `path` as the key of the file in a snapshot."""
    return unquote(path)


def unlink_quietly(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


def local_table_path(table_path: str) -> str | None:
    """The table's folder on local disk, or None for a table on another file system."""
    if table_path.startswith("file:"):
        return unquote(urlparse(table_path).path)
    return None if "://" in table_path else table_path


def delta_commit_times(
    local_path: str, properties: Mapping[str, str], versions: Iterable[int] | None = None
) -> list[tuple[int, int]]:
    """(version, epoch ms) of the commits (all, or `versions`) of a local table as Delta times them for time
    travel and history: the commit file's modification time, or its inCommitTimestamp from the version the
    table enabled them on."""
    ict_from = None
    if str(properties.get("delta.enableInCommitTimestamps", "false")).lower() == "true":
        ict_from = int(properties.get("delta.inCommitTimestampEnablementVersion", "0"))
    log_dir = os.path.join(local_path, "_delta_log")
    return commit_times(log_dir, in_commit_timestamps_from=ict_from, versions=versions)
