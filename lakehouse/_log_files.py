"""The files of a Delta log directory, read as plain files (no snapshot, no Spark), on disk or an object store.

A commit's `commitInfo` and the commit times Delta uses for time travel (file modification times, or
`inCommitTimestamp`) from any engine's log; the rows of a lean data file. Where the files live (and how a file
is created only if absent) is `lakehouse._storage`.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import unquote, urlparse

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from . import _storage
from ._log_types import Row
from .errors import CorruptTableError


def read_commit_info(log_dir: str, version: int) -> dict[str, Any] | None:
    """The `commitInfo` action of `<log_dir>/<version>.json` (any engine's commit), or None if absent."""
    try:
        data = _storage.read(_storage.join(log_dir, f"{version:020d}.json"))
    except FileNotFoundError:
        return None
    for line in data.splitlines():
        if line.strip():
            action = json.loads(line)
            if "commitInfo" in action:
                return dict(action["commitInfo"])
    return None


def parse_commit(table: str, path: str, data: bytes) -> list[dict[str, Any]]:
    """The actions of commit file `path` (newline-delimited JSON objects; an empty file has none, as in Delta).

    Raises:
        CorruptTableError: a line is not a JSON object (a truncated or overwritten commit), or an `add` /
            `remove` has no `path`; the error names the file.
    """
    try:
        actions = [json.loads(line) for line in data.splitlines() if line.strip()]
    except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError is a ValueError
        raise CorruptTableError(
            table, path, f"is not valid newline-delimited JSON ({exc}): truncated or overwritten"
        ) from None
    for action in actions:
        if not isinstance(action, dict):
            raise CorruptTableError(table, path, f"holds {action!r}, not a Delta action (a JSON object)")
        for kind in ("add", "remove"):
            if kind in action and not (isinstance(action[kind], dict) and isinstance(action[kind].get("path"), str)):
                raise CorruptTableError(table, path, f"has an {kind!r} action without a file path")
    return actions


STAGED_LOG_FILE = re.compile(
    r"\.tmp-[0-9a-f]{32}-.+"  # ours (`_storage.publish` / `replace`): linked or renamed into place, then unlinked
    r"|.+#\d+"  # object_store's local staging (delta-rs): `<v>.json#1`, linked into place
    r"|_commit_[0-9a-f-]{36}\.json\.tmp"  # delta-rs's commit staged by name before its rename
    r"|\.{1,2}.+\.[0-9a-f-]{36}\.tmp(\.crc)?"  # Hadoop's (delta-spark): `.<name>.<uuid>.tmp` and its `.crc`
)
"""The temporary files each engine writes in `_delta_log` before a commit or checkpoint is put in place. A writer
killed in between leaves one behind; no reader lists it, and neither Delta's VACUUM (which never enters
`_delta_log`) nor its log cleanup (which matches commit and checkpoint names only) removes it."""


def abandoned_log_files(log_dir: str, older_than: float) -> list[str]:
    """The staged files (`STAGED_LOG_FILE`) in local `log_dir` last modified before `older_than` (epoch s), by
    name. A younger one may be a live writer's commit about to be linked. Object stores have none (a commit
    there is one conditional PUT)."""
    try:
        entries = list(os.scandir(log_dir))
    except FileNotFoundError:
        return []
    out = []
    for entry in entries:
        if not STAGED_LOG_FILE.fullmatch(entry.name):
            continue
        try:
            if entry.is_file(follow_symlinks=False) and entry.stat(follow_symlinks=False).st_mtime < older_than:
                out.append(entry.name)
        except FileNotFoundError:  # linked and unlinked by its writer meanwhile
            continue
    return sorted(out)


def commit_versions(log_dir: str) -> list[int]:
    """The versions of the commit files in `log_dir` (one listing), sorted."""
    return sorted(
        int(n[:20]) for n in _storage.listing(log_dir) if len(n) == 25 and n.endswith(".json") and n[:20].isdigit()
    )


def commit_times(
    log_dir: str, *, in_commit_timestamps_from: int | None = None, versions: Iterable[int] | None = None
) -> list[tuple[int, int]]:
    """(version, commit time in epoch ms) of the commit files in `log_dir`, by version, as Delta times them.

    A commit's time is its file's modification time, or, from version `in_commit_timestamps_from` on (a table
    with `delta.enableInCommitTimestamps`), the `inCommitTimestamp` of its commitInfo. Not yet made monotonic
    (`lakehouse._timetravel.monotonic_commits` does that). Every commit: one directory listing and a stat per
    commit; only `versions` (those whose file still exists): a stat each.
    """

    def timed(version: int, ms: int) -> tuple[int, int]:
        if in_commit_timestamps_from is not None and version >= in_commit_timestamps_from:
            info = read_commit_info(log_dir, version) or {}
            ms = int(info.get("inCommitTimestamp", ms))
        return version, ms

    out: list[tuple[int, int]] = []
    if versions is not None:
        for version in versions:
            ms = _storage.mtime_ms(_storage.join(log_dir, f"{version:020d}.json"))
            if ms is not None:
                out.append(timed(version, ms))
        return sorted(out)
    for name, ms in _storage.listing(log_dir).items():
        if len(name) == 25 and name.endswith(".json") and name[:20].isdigit():
            out.append(timed(int(name[:20]), ms))
    return sorted(out)


SHARED_STRINGS_FROM_ROWS = 64
"""Files of at least this many rows get one (interned) string object per distinct value, not one per row."""


def read_rows(path: str, columns: list[str]) -> list[Row]:
    source = pa.BufferReader(_storage.read(path)) if _storage.is_object_store(path) else path
    return rows_of(pq.ParquetFile(source).read(), columns)


def rows_of(table: pa.Table, columns: list[str]) -> list[Row]:
    """An Arrow table's rows as dicts of `columns` (a column the table lacks is None)."""
    names = set(table.column_names)
    present = [c for c in columns if c in names]
    data = {c: _values(table.column(c)) for c in present}
    missing = {c: None for c in columns if c not in data}
    return [{**{c: data[c][i] for c in present}, **missing} for i in range(table.num_rows)]


def file_key(path: str) -> str:
    """A log action's (URL-encoded) `path` as the key of the file in a snapshot."""
    return unquote(path)


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
    log_dir = _storage.join(local_path, "_delta_log")
    return commit_times(log_dir, in_commit_timestamps_from=ict_from, versions=versions)


def _values(column: pa.ChunkedArray) -> list[Any]:
    """A column as Python values; strings repeated across rows (run ids, keys) share one interned object, which
    keeps a hot table's rows about 40% smaller in memory at the same read speed."""
    if len(column) < SHARED_STRINGS_FROM_ROWS or not pa.types.is_string(column.type):
        values: list[Any] = column.to_pylist()
        return values
    encoded = pc.dictionary_encode(column).combine_chunks()
    distinct = [None if v is None else sys.intern(v) for v in encoded.dictionary.to_pylist()]
    return [None if i is None else distinct[i] for i in encoded.indices.to_pylist()]
