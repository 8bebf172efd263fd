"""A Delta table written with lean commits and read through an in-process snapshot refreshed by version.

Why not delta-rs for every write: a one-row `write_deltalake` append costs 14-65 ms here, while MLflow
calls must take about a millisecond. A commit here is what the Delta protocol asks for and no more: one
Parquet file written by pyarrow, then `_delta_log/<version>.json` published with put-if-absent (a hard
link of a complete temporary file, atomic on POSIX), so a reader never sees a half-written commit and two
writers can never both win a version. The loser re-reads the log and re-plans (see `TrackingTables.write`).

Reads never scan the table: each process keeps the rows of every live file in memory, keyed by file, and
applies only the commits made since its snapshot (one `open()` probe per table per call when nothing
changed). Delta readers (delta-rs, Spark through `lakehouse`) see ordinary tables: small files are
compacted (`dataChange=false`) and a classic checkpoint is written every `CHECKPOINT_INTERVAL` versions
so that neither they nor a cold start of this store replay thousands of JSON commits.

Durability: a call returns after the data file and the commit file are written to the OS page cache,
so a crash of the process loses nothing and other processes see the write at once. An OS crash or power
loss can lose the last commits unless `LAKEHOUSE_TRACKING_FSYNC=1` (fsync of both files, ~2 ms a call).
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import pyarrow as pa
import pyarrow.parquet as pq

CHECKPOINT_INTERVAL = 100
"""A checkpoint is written at every version divisible by this."""
SMALL_FILE_ROWS = 2000
"""Files with fewer rows are compacted together; a compacted file holds at most about this many rows."""
COMPACT_AFTER_FILES = 40
"""Compaction starts once a table has this many small files."""

_FSYNC = os.environ.get("LAKEHOUSE_TRACKING_FSYNC", "").lower() in ("1", "true", "yes")

Row = dict[str, Any]


def _write_new(path: str, data: bytes) -> None:
    """Write a file that must not exist yet (O_EXCL), fsynced when LAKEHOUSE_TRACKING_FSYNC is set."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        os.write(fd, data)
        if _FSYNC:
            os.fsync(fd)
    finally:
        os.close(fd)


class CommitConflict(Exception):
    """Another writer published the version this commit wanted; refresh, re-plan and retry."""

    def __init__(self, table: str, version: int) -> None:
        super().__init__(f"table {table!r}: version {version} was committed by another writer")
        self.table = table
        self.version = version


class UnsupportedLogError(Exception):
    """The table's log holds something this lean reader does not handle (e.g. a multi-part checkpoint)."""


_DELTA_TYPES = {
    pa.string(): "string",
    pa.int64(): "long",
    pa.int32(): "integer",
    pa.float64(): "double",
    pa.bool_(): "boolean",
}


def delta_schema_string(schema: pa.Schema) -> str:
    fields = [
        {"name": f.name, "type": _DELTA_TYPES[f.type], "nullable": True, "metadata": {}} for f in schema
    ]
    return json.dumps({"type": "struct", "fields": fields})


class Index:
    """Live rows grouped as `groups[group(row)][key(row)] = (row, file)`; identity-checked on removal."""

    def __init__(self, group: Callable[[Row], Hashable], key: Callable[[Row], Hashable],
                 when: Callable[[Row], bool] | None = None) -> None:
        self.group = group
        self.key = key
        self.when = when
        self.groups: dict[Hashable, dict[Hashable, tuple[Row, str]]] = {}

    def add(self, row: Row, path: str) -> None:
        if self.when is not None and not self.when(row):
            return
        self.groups.setdefault(self.group(row), {})[self.key(row)] = (row, path)

    def remove(self, row: Row) -> None:
        g = self.group(row)
        items = self.groups.get(g)
        if items is None:
            return
        k = self.key(row)
        hit = items.get(k)
        if hit is not None and hit[0] is row:
            del items[k]
            if not items:
                del self.groups[g]

    def get(self, group: Hashable, key: Hashable) -> tuple[Row, str] | None:
        items = self.groups.get(group)
        return None if items is None else items.get(key)

    def rows(self, group: Hashable) -> list[Row]:
        return [r for r, _ in self.groups.get(group, {}).values()]


@dataclass
class _File:
    rows: list[Row]
    size: int
    modification_time: int


@dataclass
class DeltaLog:
    """One Delta table: its lean writer and the in-memory snapshot of its live rows."""

    path: str
    name: str
    schema: pa.Schema
    description: str = ""
    indexes: list[Index] = field(default_factory=list)
    on_change: Callable[[Row], None] | None = None

    def __post_init__(self) -> None:
        self.log_dir = os.path.join(self.path, "_delta_log")
        self.version = -1
        self.files: dict[str, _File] = {}
        self._metadata: dict[str, Any] | None = None
        self._protocol: dict[str, Any] | None = None
        self._columns = self.schema.names

    # -- creation ---------------------------------------------------------------------------------------
    def create_if_missing(self) -> None:
        """Publish version 0 (protocol + metadata) unless the table exists; safe when racing other processes."""
        if os.path.exists(os.path.join(self.log_dir, f"{0:020d}.json")):
            return
        os.makedirs(self.log_dir, exist_ok=True)
        now = _now_ms()
        actions = [
            {"commitInfo": {"timestamp": now, "operation": "CREATE TABLE", "operationParameters": {},
                            "clientVersion": "lakehouse-ml-tracking"}},
            {"protocol": {"minReaderVersion": 1, "minWriterVersion": 2}},
            {"metaData": {
                "id": str(uuid.uuid4()), "name": self.name, "description": self.description,
                "format": {"provider": "parquet", "options": {}},
                "schemaString": delta_schema_string(self.schema), "partitionColumns": [],
                "configuration": {}, "createdTime": now,
            }},
        ]
        try:
            self._publish(0, actions)
        except CommitConflict:
            pass

    # -- reading ----------------------------------------------------------------------------------------
    def refresh(self) -> None:
        """Apply every commit published since this snapshot (a cold snapshot starts at the last checkpoint)."""
        if self.version < 0:
            self._load_checkpoint()
        while True:
            nxt = self.version + 1
            try:
                with open(os.path.join(self.log_dir, f"{nxt:020d}.json"), "rb") as fh:
                    data = fh.read()
            except FileNotFoundError:
                return
            actions = [json.loads(line) for line in data.splitlines() if line.strip()]
            self._apply(nxt, actions, local_rows=None)

    def commit_info(self, version: int) -> dict[str, Any] | None:
        """The `commitInfo` action of commit `version` (read from its JSON file), or None if absent."""
        try:
            with open(os.path.join(self.log_dir, f"{version:020d}.json"), "rb") as fh:
                data = fh.read()
        except FileNotFoundError:
            return None
        for line in data.splitlines():
            if line.strip():
                action = json.loads(line)
                if "commitInfo" in action:
                    return action["commitInfo"]
        return None

    def _load_checkpoint(self) -> None:
        try:
            with open(os.path.join(self.log_dir, "_last_checkpoint"), "rb") as fh:
                last = json.loads(fh.read())
        except (FileNotFoundError, json.JSONDecodeError):
            return
        if last.get("parts") or last.get("v2Checkpoint"):
            raise UnsupportedLogError(
                f"table {self.name!r} at {self.path} has a multi-part or v2 checkpoint (version {last['version']}); "
                "the tracking store reads classic single-file checkpoints only. Write a classic checkpoint with "
                "deltalake.DeltaTable(path).create_checkpoint()."
            )
        v = int(last["version"])
        ckpt = pq.read_table(os.path.join(self.log_dir, f"{v:020d}.checkpoint.parquet"))
        cols = set(ckpt.column_names)
        actions: list[dict[str, Any]] = []
        for kind in ("protocol", "metaData", "add"):
            if kind in cols:
                for item in ckpt.column(kind).to_pylist():
                    if item is not None:
                        if kind == "metaData":
                            item["format"]["options"] = dict(item["format"].get("options") or {})
                            item["configuration"] = dict(item.get("configuration") or {})
                        actions.append({kind: item})
        self.version = v - 1
        self._apply(v, actions, local_rows=None)

    def _apply(self, version: int, actions: list[dict[str, Any]], local_rows: dict[str, list[Row]] | None) -> None:
        # Removes before adds: a compaction or rewrite removes the old rows and adds them back in new files.
        for action in actions:
            if "remove" in action:
                entry = self.files.pop(_rel(action["remove"]["path"]), None)
                if entry is not None:
                    for row in entry.rows:
                        for ix in self.indexes:
                            ix.remove(row)
                        if self.on_change is not None:
                            self.on_change(row)
        for action in actions:
            if "add" in action:
                add = action["add"]
                rel = _rel(add["path"])
                rows = local_rows.get(rel) if local_rows else None
                if rows is None:
                    rows = _read_rows(os.path.join(self.path, rel), self._columns)
                self.files[rel] = _File(rows, int(add.get("size") or 0), int(add.get("modificationTime") or 0))
                for row in rows:
                    for ix in self.indexes:
                        ix.add(row, rel)
                    if self.on_change is not None:
                        self.on_change(row)
            elif "metaData" in action:
                self._metadata = action["metaData"]
            elif "protocol" in action:
                self._protocol = action["protocol"]
        self.version = version

    # -- writing ----------------------------------------------------------------------------------------
    def commit(
        self,
        adds: Iterable[list[Row]],
        removes: Iterable[str] = (),
        *,
        operation: str = "WRITE",
        data_change: bool = True,
        info: dict[str, Any] | None = None,
    ) -> int:
        """Write one file per row list and publish one commit at `version + 1`; return that version.

        The snapshot must be fresh (`refresh()` just ran). Raises CommitConflict, with nothing published and
        the data files deleted again, when another writer took the version first. `info` is merged into the
        commit's `commitInfo` (e.g. the registry's events, published atomically with the change).
        """
        version = self.version + 1
        now = _now_ms()
        written: dict[str, list[Row]] = {}
        actions: list[dict[str, Any]] = [{"commitInfo": {
            "timestamp": now, "operation": operation,
            "operationParameters": {"mode": "Append"} if operation == "WRITE" else {},
            "clientVersion": "lakehouse-ml-tracking", **(info or {}),
        }}]
        for rel in removes:
            entry = self.files[rel]
            actions.append({"remove": {
                "path": rel, "deletionTimestamp": now, "dataChange": data_change,
                "extendedFileMetadata": True, "partitionValues": {}, "size": entry.size,
            }})
        try:
            for rows in adds:
                if not rows:
                    continue
                rel = f"part-{uuid.uuid4().hex}.parquet"
                size = self._write_file(rel, rows)
                written[rel] = rows
                actions.append({"add": {
                    "path": rel, "partitionValues": {}, "size": size, "modificationTime": now,
                    "dataChange": data_change, "stats": json.dumps({"numRecords": len(rows)}),
                }})
            self._publish(version, actions)
        except BaseException:
            for rel in written:
                _unlink_quietly(os.path.join(self.path, rel))
            raise
        self._apply(version, actions, local_rows=written)
        if version % CHECKPOINT_INTERVAL == 0:
            self.write_checkpoint()
        return version

    def _write_file(self, rel: str, rows: list[Row]) -> int:
        table = pa.table({c: [r[c] for r in rows] for c in self._columns}, schema=self.schema)
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink, compression="snappy")
        data = sink.getvalue().to_pybytes()
        _write_new(os.path.join(self.path, rel), data)
        return len(data)

    def _publish(self, version: int, actions: list[dict[str, Any]]) -> None:
        tmp = os.path.join(self.log_dir, f".tmp-{uuid.uuid4().hex}.json")
        payload = ("\n".join(json.dumps(a, separators=(",", ":")) for a in actions) + "\n").encode()
        _write_new(tmp, payload)
        try:
            os.link(tmp, os.path.join(self.log_dir, f"{version:020d}.json"))
        except FileExistsError:
            raise CommitConflict(self.name, version) from None
        finally:
            os.unlink(tmp)

    # -- maintenance ------------------------------------------------------------------------------------
    def small_files(self) -> list[str]:
        return [rel for rel, f in self.files.items() if len(f.rows) < SMALL_FILE_ROWS]

    def compact_if_needed(self) -> bool:
        """Rewrite the small files into files of about SMALL_FILE_ROWS rows; False when not needed or raced."""
        small = self.small_files()
        if len(small) < COMPACT_AFTER_FILES:
            return False
        groups: list[list[Row]] = [[]]
        for rel in small:
            if len(groups[-1]) >= SMALL_FILE_ROWS:
                groups.append([])
            groups[-1].extend(self.files[rel].rows)
        try:
            self.commit(groups, small, operation="OPTIMIZE", data_change=False)
        except CommitConflict:
            return False  # someone else wrote meanwhile; the next writer compacts
        return True

    def write_checkpoint(self) -> None:
        """Write the classic checkpoint of the current snapshot and point `_last_checkpoint` at it."""
        if self._metadata is None or self._protocol is None:
            return
        rows: list[dict[str, Any]] = [
            {"protocol": self._protocol},
            {"metaData": {**self._metadata,
                          "format": {"provider": self._metadata["format"].get("provider", "parquet"),
                                     "options": list((self._metadata["format"].get("options") or {}).items())},
                          "configuration": list((self._metadata.get("configuration") or {}).items())}},
        ]
        for rel, f in self.files.items():
            rows.append({"add": {"path": rel, "partitionValues": [], "size": f.size,
                                 "modificationTime": f.modification_time, "dataChange": False,
                                 "stats": json.dumps({"numRecords": len(f.rows)})}})
        table = pa.Table.from_pylist(
            [{"txn": None, "add": None, "remove": None, "metaData": None, "protocol": None, **r} for r in rows],
            schema=_CHECKPOINT_SCHEMA,
        )
        final = os.path.join(self.log_dir, f"{self.version:020d}.checkpoint.parquet")
        tmp = os.path.join(self.log_dir, f".tmp-{uuid.uuid4().hex}.checkpoint.parquet")
        pq.write_table(table, tmp)
        os.replace(tmp, final)
        last_tmp = os.path.join(self.log_dir, f".tmp-{uuid.uuid4().hex}.last_checkpoint")
        with open(last_tmp, "w") as fh:
            fh.write(json.dumps({"version": self.version, "size": len(rows)}))
        os.replace(last_tmp, os.path.join(self.log_dir, "_last_checkpoint"))


_STR_MAP = pa.map_(pa.string(), pa.string())
_CHECKPOINT_SCHEMA = pa.schema([
    ("txn", pa.struct([("appId", pa.string()), ("version", pa.int64()), ("lastUpdated", pa.int64())])),
    ("add", pa.struct([
        ("path", pa.string()), ("partitionValues", _STR_MAP), ("size", pa.int64()),
        ("modificationTime", pa.int64()), ("dataChange", pa.bool_()), ("stats", pa.string()),
        ("tags", _STR_MAP),
    ])),
    ("remove", pa.struct([
        ("path", pa.string()), ("deletionTimestamp", pa.int64()), ("dataChange", pa.bool_()),
        ("extendedFileMetadata", pa.bool_()), ("partitionValues", _STR_MAP), ("size", pa.int64()),
    ])),
    ("metaData", pa.struct([
        ("id", pa.string()), ("name", pa.string()), ("description", pa.string()),
        ("format", pa.struct([("provider", pa.string()), ("options", _STR_MAP)])),
        ("schemaString", pa.string()), ("partitionColumns", pa.list_(pa.string())),
        ("configuration", _STR_MAP), ("createdTime", pa.int64()),
    ])),
    ("protocol", pa.struct([("minReaderVersion", pa.int32()), ("minWriterVersion", pa.int32())])),
])


def _read_rows(path: str, columns: list[str]) -> list[Row]:
    table = pq.ParquetFile(path).read()
    present = [c for c in columns if c in table.column_names]
    data = {c: table.column(c).to_pylist() for c in present}
    n = table.num_rows
    missing = {c: None for c in columns if c not in data}
    return [{**{c: data[c][i] for c in present}, **missing} for i in range(n)]


def _rel(path: str) -> str:
    return unquote(path)


def _now_ms() -> int:
    return int(time.time() * 1000)


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
