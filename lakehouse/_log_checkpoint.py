"""Checkpoints and log retention of the lean Delta log: find, read and write checkpoints; clean up expired logs.

Rules followed (Delta PROTOCOL.md "Checkpoints", delta-spark `Checkpoints` / `MetadataCleanup`):

* A checkpoint at version v holds the table state at v: protocol, metadata, app transactions (`txn`), every
  live file (`add`) and every *unexpired tombstone* (`remove` whose `deletionTimestamp` is later than now
  minus `delta.deletedFileRetentionDuration`, default 1 week), all with `dataChange = false`. Without the
  tombstones, VACUUM run by any engine after the checkpoint would no longer know the files a compaction removed.
* Log files expire after `delta.logRetentionDuration` (default 30 days), and only behind a checkpoint: a file
  at version u is deleted when u is below a complete checkpoint c whose own commit is older than the retention,
  and every file of every version up to u is older than the retention too. Every version at or after c stays
  reconstructable (c plus the commits after it), so every version younger than the retention does.
  delta-spark also rounds the cut-off down to midnight; we do not, so tiny retentions work in tests.
* Multi-part classic checkpoints are read (all parts); v2 checkpoints (UUID-named, sidecar files,
  `_last_checkpoint.v2Checkpoint`) are refused with UnsupportedTableFeatureError("v2Checkpoint").
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any, NamedTuple

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from . import _storage
from ._log_files import file_key
from .errors import InvalidArgumentError, UnsupportedTableFeatureError

DELETED_FILE_RETENTION = ("delta.deletedFileRetentionDuration", "interval 1 weeks")
LOG_RETENTION = ("delta.logRetentionDuration", "interval 30 days")

_UNIT_MS = {
    "nanosecond": 1e-6,
    "microsecond": 1e-3,
    "millisecond": 1,
    "second": 1000,
    "minute": 60_000,
    "hour": 3_600_000,
    "day": 86_400_000,
    "week": 604_800_000,
}
_INTERVAL_PART = re.compile(r"(-?\d+(?:\.\d+)?)\s*([a-z]+?)s?\b")

_COMMIT = re.compile(r"^(\d{20})\.json$")
_CRC = re.compile(r"^(\d{20})\.crc$")
_CLASSIC = re.compile(r"^(\d{20})\.checkpoint\.parquet$")
_MULTIPART = re.compile(r"^(\d{20})\.checkpoint\.(\d{10})\.(\d{10})\.parquet$")
_V2 = re.compile(r"^(\d{20})\.checkpoint\.[0-9a-fA-F-]{36}\.(?:json|parquet)$")


def parse_interval(value: str) -> int:
    """A Delta interval table property ('interval 1 weeks', '30 days', '2 hours 30 minutes') in milliseconds.

    Raises:
        ValueError: not an interval of weeks/days/hours/minutes/seconds/ms/us/ns (months and years have no
            fixed length, and Delta refuses them for retention properties too).
    """
    text = value.strip().lower()
    if text.startswith("interval"):
        text = text[len("interval") :]
    parts = _INTERVAL_PART.findall(text)
    if not parts or _INTERVAL_PART.sub("", text).strip():
        raise InvalidArgumentError(
            "properties", f"cannot parse the interval {value!r}: use e.g. 'interval 7 days' or 'interval 12 hours'"
        )
    total = 0.0
    for number, unit in parts:
        if unit not in _UNIT_MS:
            raise InvalidArgumentError(
                "properties",
                f"cannot parse the interval {value!r}: unit {unit!r} is not one of {sorted(_UNIT_MS)} "
                "(e.g. 'interval 7 days')",
            )
        total += float(number) * _UNIT_MS[unit]
    return int(total)


def retention_ms(metadata: Mapping[str, Any] | None, prop: tuple[str, str]) -> int:
    """The retention table property `prop` = (key, Delta's default) of a table, in milliseconds."""
    key, default = prop
    config = (metadata or {}).get("configuration") or {}
    value = config.get(key, default)
    try:
        return parse_interval(value)
    except ValueError as exc:
        raise InvalidArgumentError("properties", f"table property {key} = {value!r}: {exc}") from None


# -- finding and reading --------------------------------------------------------------------------------------
class CheckpointRef(NamedTuple):
    """A complete classic checkpoint: its version and its files (one, or the parts of a multi-part one)."""

    version: int
    files: tuple[str, ...]


def find_checkpoint(log_dir: str, table: str) -> CheckpointRef | None:
    """The newest complete checkpoint (as `_last_checkpoint` says, else by listing), or None when there is none."""
    try:
        last = json.loads(_storage.read(_storage.join(log_dir, "_last_checkpoint")))
    except (FileNotFoundError, json.JSONDecodeError):
        last = None
    if not isinstance(last, dict):
        last = None  # no hint, or not Delta's: ignored, as delta-spark ignores an unparsable one; the log is listed
    if last is not None:
        if last.get("v2Checkpoint"):
            detail = f"_last_checkpoint points at a v2 checkpoint (version {last.get('version')})"
            raise UnsupportedTableFeatureError(table, "v2Checkpoint", "read", detail)
        try:
            v, parts = int(last["version"]), int(last.get("parts") or 0)
        except (KeyError, TypeError, ValueError):
            return _newest_listed(log_dir, table)
        files = _checkpoint_files(v, parts)
        if v >= 0 and all(_storage.exists(_storage.join(log_dir, f)) for f in files):
            return CheckpointRef(v, files)
    return _newest_listed(log_dir, table)


def older_checkpoint(log_dir: str, table: str, than: int) -> CheckpointRef | None:
    """The newest complete classic checkpoint below version `than` (by listing), or None: where a reader goes
    when the checkpoint at `than` cannot be read, as delta-spark does."""
    complete = {v: f for v, f in _complete_checkpoints(_listing(log_dir)).items() if v < than}
    newest = max(complete, default=None)
    return None if newest is None else CheckpointRef(newest, complete[newest])


def read_checkpoint_parts(log_dir: str, table: str, ref: CheckpointRef) -> tuple[list[dict[str, Any]], int]:
    """A checkpoint's protocol, metaData, txn and add actions as dicts, and its number of actions (tombstones
    included). Its tombstones (`remove`), a week of them
    on a busy table, are not read: only a writer's next checkpoint needs them (`read_checkpoint_removes`).

    Read column by column with `ParquetFile` on one thread: `pq.read_table` would load pyarrow's dataset
    machinery and its scratch memory, tens of megabytes a process keeps."""
    actions: list[dict[str, Any]] = []
    size = 0
    for name in ref.files:
        pf = pq.ParquetFile(pa.BufferReader(_storage.read(_storage.join(log_dir, name))))
        size += pf.metadata.num_rows
        cols = set(pf.schema_arrow.names)
        # deltalake writes an all-null `sidecar` column into classic checkpoints: only a value makes it a v2 one.
        v2 = sorted(cols & {"sidecar", "checkpointMetadata"})
        if v2 and pf.read(columns=v2, use_threads=False).drop_null().num_rows:
            raise UnsupportedTableFeatureError(
                table, "v2Checkpoint", "read", f"checkpoint {name} refers to sidecar files"
            )
        kinds = [kind for kind in ("protocol", "metaData", "txn", "add") if kind in cols]
        data = pf.read(columns=kinds, use_threads=False)
        for kind in kinds:
            column = data.column(kind)
            actions.extend(
                {kind: _from_checkpoint(kind, item)}
                for chunk in column.chunks
                for item in chunk.filter(chunk.is_valid()).to_pylist()
            )
    return actions, size


def read_checkpoint_removes(log_dir: str, ref: CheckpointRef) -> list[pa.Array]:
    """A checkpoint's tombstones (`remove` actions), left in Arrow (`unexpired_removes`, `removes_as_dicts`).

    Raises:
        FileNotFoundError: log cleanup removed the checkpoint since it was loaded.
    """
    removes: list[pa.Array] = []
    for name in ref.files:
        pf = pq.ParquetFile(pa.BufferReader(_storage.read(_storage.join(log_dir, name))))
        if "remove" in pf.schema_arrow.names:
            column = pf.read(columns=["remove"], use_threads=False).column("remove")
            removes.extend(c.filter(c.is_valid()) for c in column.chunks if c.null_count < len(c))
    return removes


def removes_as_dicts(removes: Iterable[pa.Array]) -> list[dict[str, Any]]:
    """The `remove` actions of `read_checkpoint_parts`, maps turned back into dicts."""
    return [_from_checkpoint("remove", item) for array in removes for item in array.to_pylist()]


def _checkpoint_files(version: int, parts: int) -> tuple[str, ...]:
    if parts <= 1:
        return (f"{version:020d}.checkpoint.parquet",)
    return tuple(f"{version:020d}.checkpoint.{i:010d}.{parts:010d}.parquet" for i in range(1, parts + 1))


def _newest_listed(log_dir: str, table: str) -> CheckpointRef | None:
    names = _listing(log_dir)
    complete = _complete_checkpoints(names)
    v2 = [int(m.group(1)) for n in names if (m := _V2.match(n))]
    newest = max(complete, default=None)
    if v2 and (newest is None or max(v2) > newest):
        raise UnsupportedTableFeatureError(table, "v2Checkpoint", "read", f"a v2 checkpoint at version {max(v2)}")
    return None if newest is None else CheckpointRef(newest, complete[newest])


def _listing(log_dir: str) -> list[str]:
    return list(_storage.listing(log_dir))


def _complete_checkpoints(names: Iterable[str]) -> dict[int, tuple[str, ...]]:
    """{version: files} of every complete classic checkpoint among `names` (single-file or all parts)."""
    out: dict[int, tuple[str, ...]] = {}
    parts: dict[tuple[int, int], set[int]] = {}
    for n in names:
        if m := _CLASSIC.match(n):
            out[int(m.group(1))] = (n,)
        elif m := _MULTIPART.match(n):
            parts.setdefault((int(m.group(1)), int(m.group(3))), set()).add(int(m.group(2)))
    for (v, total), seen in parts.items():
        if v not in out and seen == set(range(1, total + 1)):
            out[v] = _checkpoint_files(v, total)
    return out


def _from_checkpoint(kind: str, item: dict[str, Any]) -> dict[str, Any]:
    if kind == "metaData":
        fmt = item.get("format") or {}
        item["format"] = {"provider": fmt.get("provider") or "parquet", "options": _dict(fmt.get("options"))}
        item["configuration"] = _dict(item.get("configuration"))
        item["partitionColumns"] = list(item.get("partitionColumns") or [])
    elif kind in ("add", "remove"):
        item["partitionValues"] = _dict(item.get("partitionValues"))
        if item.get("tags") is not None:
            item["tags"] = _dict(item["tags"])
    return {k: v for k, v in item.items() if v is not None}


def _dict(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    return dict(value.items()) if isinstance(value, Mapping) else dict(value)


# -- writing --------------------------------------------------------------------------------------------------
_STR_MAP = pa.map_(pa.string(), pa.string())
CHECKPOINT_SCHEMA = pa.schema(
    [
        ("txn", pa.struct([("appId", pa.string()), ("version", pa.int64()), ("lastUpdated", pa.int64())])),
        (
            "add",
            pa.struct(
                [
                    ("path", pa.string()),
                    ("partitionValues", _STR_MAP),
                    ("size", pa.int64()),
                    ("modificationTime", pa.int64()),
                    ("dataChange", pa.bool_()),
                    ("stats", pa.string()),
                    ("tags", _STR_MAP),
                ]
            ),
        ),
        (
            "remove",
            pa.struct(
                [
                    ("path", pa.string()),
                    ("deletionTimestamp", pa.int64()),
                    ("dataChange", pa.bool_()),
                    ("extendedFileMetadata", pa.bool_()),
                    ("partitionValues", _STR_MAP),
                    ("size", pa.int64()),
                    ("tags", _STR_MAP),
                ]
            ),
        ),
        (
            "metaData",
            pa.struct(
                [
                    ("id", pa.string()),
                    ("name", pa.string()),
                    ("description", pa.string()),
                    ("format", pa.struct([("provider", pa.string()), ("options", _STR_MAP)])),
                    ("schemaString", pa.string()),
                    ("partitionColumns", pa.list_(pa.string())),
                    ("configuration", _STR_MAP),
                    ("createdTime", pa.int64()),
                ]
            ),
        ),
        (
            "protocol",
            pa.struct(
                [
                    ("minReaderVersion", pa.int32()),
                    ("minWriterVersion", pa.int32()),
                    ("readerFeatures", pa.list_(pa.string())),
                    ("writerFeatures", pa.list_(pa.string())),
                ]
            ),
        ),
    ]
)


def write_checkpoint(
    log_dir: str,
    version: int,
    *,
    protocol: Mapping[str, Any],
    metadata: Mapping[str, Any],
    txns: Iterable[Mapping[str, Any]],
    adds: Iterable[Mapping[str, Any]],
    removes: pa.StructArray,
) -> int:
    """Write the classic checkpoint of `version` and point `_last_checkpoint` at it; return its action count.

    `removes` are the unexpired tombstones, of the checkpoint's `remove` type (`REMOVE_TYPE`: `unexpired_removes`,
    `removes_array`). Both files are written to a temporary name and renamed, so a reader sees a whole
    checkpoint or none.
    """
    fmt = metadata.get("format") or {}
    rows: list[dict[str, Any]] = [
        {
            "protocol": {
                k: protocol.get(k) for k in ("minReaderVersion", "minWriterVersion", "readerFeatures", "writerFeatures")
            }
        },
        {
            "metaData": {
                **{k: metadata.get(k) for k in ("id", "name", "description", "schemaString", "createdTime")},
                "format": {"provider": fmt.get("provider", "parquet"), "options": _items(fmt.get("options"))},
                "partitionColumns": list(metadata.get("partitionColumns") or []),
                "configuration": _items(metadata.get("configuration")),
            }
        },
    ]
    rows.extend({"txn": dict(t)} for t in txns)
    head = pa.Table.from_pylist(
        [{"txn": None, "add": None, "remove": None, "metaData": None, "protocol": None, **r} for r in rows],
        schema=CHECKPOINT_SCHEMA,
    )
    # Adds and tombstones (tens of thousands on a busy table) are built column by column, not as nested dicts.
    adds = list(adds)
    blocks = [head, _rows("add", _actions_array("add", adds)), _rows("remove", removes)]
    table = pa.concat_tables(blocks)
    n_adds = len(adds)
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    data = sink.getvalue().to_pybytes()
    _storage.replace(_storage.join(log_dir, f"{version:020d}.checkpoint.parquet"), data)
    last = {"version": version, "size": table.num_rows, "sizeInBytes": len(data), "numOfAddFiles": n_adds}
    _storage.replace(_storage.join(log_dir, "_last_checkpoint"), json.dumps(last).encode())
    return int(table.num_rows)


REMOVE_TYPE: pa.StructType = CHECKPOINT_SCHEMA.field("remove").type
"""The type of a checkpoint's `remove` column, as this writer writes it."""


def removes_array(removes: Sequence[Mapping[str, Any]]) -> pa.StructArray:
    """`remove` actions (dicts, as a snapshot holds its newest tombstones) as a `REMOVE_TYPE` array."""
    return _actions_array("remove", removes)


def unexpired_removes(arrays: Sequence[pa.Array], cutoff_ms: int, drop: Collection[str]) -> pa.StructArray:
    """The tombstones of a checkpoint (`read_checkpoint_parts`, or the last one written) whose `deletionTimestamp`
    is later than `cutoff_ms`, without the files in `drop` (keys as `file_key` gives them: files added again, or
    removed again since), as one `REMOVE_TYPE` array. Stays in Arrow: a busy table carries a week of tombstones
    (hundreds of thousands) from checkpoint to checkpoint, which a pass through Python dicts made the dominant
    cost of its writes."""
    parts = [_as_remove_type(a) for a in arrays if len(a)]
    if not parts:
        return removes_array([])
    removes = pa.concat_arrays(parts)
    keep = pc.fill_null(pc.greater(removes.field("deletionTimestamp"), cutoff_ms), False)
    if drop:
        paths = removes.field("path")
        if pc.any(pc.match_substring(paths, "%")).as_py():  # URL-encoded paths (another engine's): compare keys
            paths = pa.array([file_key(p) for p in paths.to_pylist()], pa.string())
        keep = pc.and_(keep, pc.invert(pc.is_in(paths, value_set=pa.array(list(drop), pa.string()))))
    return removes.filter(keep)


def _as_remove_type(array: pa.Array) -> pa.StructArray:
    """A checkpoint's `remove` column (another engine's may carry more fields, or lack some) as `REMOVE_TYPE`;
    `dataChange` false and `partitionValues` never null, as a checkpoint has them."""
    if array.type == REMOVE_TYPE:
        return array
    names = {array.type.field(i).name for i in range(array.type.num_fields)}
    fields = list(REMOVE_TYPE)
    try:
        children = [
            array.field(f.name).cast(f.type) if f.name in names else pa.nulls(len(array), f.type) for f in fields
        ]
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return removes_array(removes_as_dicts([array]))
    by_name = dict(zip([f.name for f in fields], children, strict=True))
    by_name["dataChange"] = pa.array([False] * len(array), pa.bool_())
    by_name["partitionValues"] = pc.fill_null(by_name["partitionValues"], pa.scalar([], _STR_MAP))
    return pa.StructArray.from_arrays([by_name[f.name] for f in fields], fields=fields)


def _actions_array(kind: str, actions: Sequence[Mapping[str, Any]]) -> pa.StructArray:
    """`kind` actions ("add" or "remove") as one array of the checkpoint's type, built one field at a time:
    `dataChange` is false in a checkpoint, `partitionValues` is never null, `tags` null when empty."""
    actions = list(actions)
    struct = CHECKPOINT_SCHEMA.field(kind).type
    fields = [struct.field(i) for i in range(struct.num_fields)]

    def values(name: str) -> list[Any]:
        if name == "dataChange":
            return [False] * len(actions)
        if name == "partitionValues":
            return [_items(a.get(name)) for a in actions]
        if name == "tags":
            return [_items(a[name]) if a.get(name) else None for a in actions]
        return [a.get(name) for a in actions]

    return pa.StructArray.from_arrays([pa.array(values(f.name), type=f.type) for f in fields], fields=fields)


def _rows(kind: str, action: pa.StructArray) -> pa.Table:
    """Checkpoint rows holding only the `kind` actions of `action`."""
    return pa.Table.from_arrays(
        [action if f.name == kind else pa.nulls(len(action), f.type) for f in CHECKPOINT_SCHEMA],
        schema=CHECKPOINT_SCHEMA,
    )


def _items(value: Any) -> list[tuple[str, Any]]:
    return list(_dict(value).items()) if value else []


# -- log retention --------------------------------------------------------------------------------------------
def cleanup_expired_logs(log_dir: str, cutoff_ms: int) -> list[str]:
    """Delete the commits, checkpoints and checksums that expired at `cutoff_ms`; return their names, oldest first.

    Only files at versions below a complete checkpoint whose commit is itself at or before the cut-off are
    candidates, and they go oldest version first, stopping at the first version holding a file younger than
    the cut-off (so a clock that went backwards never leaves a young version without its checkpoint).
    """
    by_version: dict[int, list[tuple[str, int]]] = {}
    listed = _storage.listing(log_dir)
    names = list(listed)
    for n, mtime in listed.items():
        m = _COMMIT.match(n) or _CRC.match(n) or _CLASSIC.match(n) or _MULTIPART.match(n)
        if m is None:
            continue
        by_version.setdefault(int(m.group(1)), []).append((n, mtime))
    checkpoints = sorted(_complete_checkpoints(names))

    def version_time(v: int) -> int:
        files = by_version.get(v, [])
        commit = [t for n, t in files if _COMMIT.match(n)]
        return commit[0] if commit else max((t for _, t in files), default=cutoff_ms + 1)

    keep_from = max((c for c in checkpoints if version_time(c) <= cutoff_ms), default=None)
    while keep_from is not None:
        young = next(
            (v for v in sorted(by_version) if v < keep_from and any(t > cutoff_ms for _, t in by_version[v])), None
        )
        if young is None:
            break
        keep_from = max((c for c in checkpoints if c <= young), default=None)
    if keep_from is None:
        return []
    deleted: list[str] = []
    for v in sorted(v for v in by_version if v < keep_from):
        for n, _ in sorted(by_version[v]):
            if _storage.delete_quietly(_storage.join(log_dir, n)):
                deleted.append(n)  # (False: another process cleaned up at the same time)
    return deleted
