"""The lean Delta log: a table written with lean commits and read through an in-process snapshot.

(Near 480 lines: `LeanTable`'s snapshot, commits and compaction share one mutable state and stay one class;
its vocabulary is in `_log_types`, the plain log files in `_log_files`, checkpoints in `_log_checkpoint`,
protocol checks in `_log_protocol`.)

Why not delta-rs for every write: a one-row `write_deltalake` append costs 14-65 ms here, while MLflow
calls must take about a millisecond. A commit here is what the Delta protocol asks for and no more: one
Parquet file written by pyarrow, then `_delta_log/<version>.json` published with put-if-absent (a hard
link of a complete temporary file on a local disk, atomic on POSIX; a conditional PUT on an object store: see
`lakehouse._storage`), so a reader never sees a half-written commit and two writers can never both win a
version. The loser gets `CommitConflict` (a ConcurrentModificationError),
re-reads the log and re-plans; callers retry through `lakehouse._retry.retry_on_conflict`.

Reads never scan the table: each process keeps the rows of every live file in memory, keyed by file, and
applies only the commits made since its snapshot (one `open()` probe per table per call when nothing
changed). Delta readers (delta-rs, Spark through `lakehouse`) see ordinary tables: small files are
compacted (`dataChange=false`; off when the table sets `delta.autoOptimize.autoCompact=false`, for a table
that another engine's scheduled OPTIMIZE maintains), a classic checkpoint (with the unexpired tombstones) is
written every `delta.checkpointInterval` versions (`CHECKPOINT_INTERVAL` when unset), and expired log files
are then cleaned up (`lakehouse._log_checkpoint`). Tables whose protocol asks for more than this reader and writer
do are refused (`lakehouse._log_protocol`).

Durability: a commit returns after the data file and the commit file are written to the OS page cache,
so a crash of the process loses nothing and other processes see the write at once. An OS crash or power
loss can lose the last commits unless `LAKEHOUSE_TRACKING_FSYNC=1` (fsync of both files, ~2 ms a commit).

    >>> t = LeanTable(path="/tmp/lake/demo", name="demo", schema=pa.schema([("id", pa.int64())]))
    >>> t.create_if_missing(); t.refresh()
    >>> t.commit([[{"id": 1}]])
    1
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import pyarrow as pa
import pyarrow.parquet as pq

from . import _log_cold, _log_covering, _storage
from ._log_checkpoint import (
    DELETED_FILE_RETENTION,
    LOG_RETENTION,
    CheckpointRef,
    cleanup_expired_logs,
    find_checkpoint,
    older_checkpoint,
    read_checkpoint_parts,
    read_checkpoint_removes,
    removes_array,
    removes_as_dicts,
    retention_ms,
    unexpired_removes,
    write_checkpoint,
)
from ._log_cold import (
    ROW_GROUP_ROWS,
    ColdReader,
    bloom_filter,
    bloom_may_hold,
    bloom_tag,
    file_stats,
    held_values,
    may_hold,
    may_overlap,
    merge_sorted,
    plan_merge,
    read_arrow,
)
from ._log_files import commit_versions, file_key, parse_commit, read_commit_info, read_rows, rows_of
from ._log_protocol import check_add, check_known_reader_features, check_readable, check_writable
from ._log_types import Change, CommitConflict, DataFile, Row, RowIndex, delta_schema_string
from ._memory import release_freed
from ._retry import LEAN_COMMIT_POLICY, RetryPolicy, retry_on_conflict
from .errors import ConcurrentModificationError, CorruptTableError, UnsupportedTableFeatureError

__all__ = ["Change", "CommitConflict", "DataFile", "LeanTable", "Row", "RowIndex"]

_log = logging.getLogger(__name__)
_COLD = ColdReader()
"""The row-group and footer caches of every cold table of the process (one memory bound for all)."""

CHECKPOINT_INTERVAL = 100
"""Without `delta.checkpointInterval` on the table, a checkpoint is written this many commits after the last one
(the first at version 100), or later on a table whose checkpoint is large (CHECKPOINT_SPREAD)."""
CHECKPOINT_SPREAD = 100
"""A table whose last checkpoint held N actions checkpoints again after N / CHECKPOINT_SPREAD commits (when more
than CHECKPOINT_INTERVAL). A busy table's checkpoint holds a week of tombstones (two per run on `mlflow.runs`);
rewritten every 100 commits they made the log grow with the square of the history (8 GB of checkpoints at 80k
runs). So a commit writes about CHECKPOINT_SPREAD checkpoint actions on average, whatever the table's size, and a
reader's replay after a checkpoint stays under 1% of its actions in commits."""
SMALL_FILE_ROWS = 2000
"""Files with fewer rows are compacted together; a compacted file holds at most about this many rows."""
COMPACT_AFTER_FILES = 40
"""Compaction starts once a table has this many small files."""
AUTO_COMPACT_PROPERTY = "delta.autoOptimize.autoCompact"
"""Delta's table property for automatic compaction; "false" turns the store's compaction off for the table."""
RECENT_FILES = 64
"""A cold table remembers the rows of this many files it wrote itself (what `rows_added_since` reads first)."""
BLOOM_PROBES = 256
"""An uncached `arrow_where` of at most this many values probes each file's Bloom filter with each value first
(a page of ids: files that hold none of them are not opened); a bulk read of more skips the probes."""
CLEANUP_EVERY_MS = 10 * 60 * 1000
"""Log cleanup (a listing of `_delta_log`, which holds every commit of the retention period) runs at a checkpoint
at most this often per table and process; Delta asks for it at checkpoints, never for it at every one."""
TRUNCATION_PROBE_SECONDS = 1.0
"""How often an idle snapshot checks whether log cleanup removed the commits it would need next."""


@dataclass
class LeanTable:
    """One Delta table: its lean writer and the in-memory snapshot of its live rows.

    Not thread-safe: callers serialise access (the MLflow stores hold one lock per lake). `configuration`
    holds the table properties written at creation (e.g. `delta.logRetentionDuration`); later changes made
    by any engine are read from the log. `clock` (seconds since the epoch) exists for tests.
    """

    path: str
    name: str
    schema: pa.Schema
    description: str = ""
    configuration: Mapping[str, str] = field(default_factory=dict)
    indexes: Sequence[RowIndex] = ()
    on_change: Callable[[Row], None] | None = None
    clock: Callable[[], float] = time.time
    client_version: str = "lakehouse-ml"
    """Written as `clientVersion` in every commit's `commitInfo`: which of our writers made it."""
    keep_rows: bool = True
    """False for a cold table (a history too large to hold): the snapshot keeps only the files' `add` actions,
    rows are read on demand by `rows_where`, compaction is clustered by `cluster_by` (`lakehouse._log_cold`);
    `indexes` and `on_change` are not fed."""
    cluster_by: str | None = None
    """A cold table's clustering column: compaction sorts by it, and `rows_where` on it reads few row groups."""
    stats_columns: Sequence[str] = ()
    """Columns whose min, max and null count every written file's Delta `stats` carry (data skipping)."""
    on_range_change: Callable[[Any, Any], None] | None = None
    """A cold table's change hook: called with the (min, max) of `cluster_by` of every file a data change added or
    removed (None, None when unknown: any value may have changed); compactions (`dataChange=false`) change no row
    and call nothing."""
    keep_covering: bool = False
    """A cold table whose writers keep its covering index (every live row in mapped Arrow files beside it, for searches:
    `covering`, `lakehouse._log_covering`) up to date after each compaction, as a SQL store keeps an index."""
    covering_orders: Sequence[tuple[str, ...]] = ()
    """Orders of rows the covering index's base keeps (its row numbers sorted by these columns): the rows holding
    given values of them are then one run of it, found by binary search (`Covering.having`)."""
    covering_sorted_by: str | None = None
    """The covering base's rows in this column's order (ties in the key's hash order) instead of the key's hash
    order: the first rows by it are consecutive (`Covering.first` then takes a slice), while finding rows by key
    scans the base. For a table searched by that column and never looked up by key."""
    max_merge_rows: int | None = None
    """A cold table's largest compacted file (default `lakehouse._log_cold.MAX_MERGE_ROWS`): a table whose rows are
    updated keeps it small, since an update rewrites the file that holds the row."""

    retry_policy: ClassVar[RetryPolicy] = LEAN_COMMIT_POLICY
    """How to retry a lost race on these ~1 ms commits with `lakehouse._retry.retry_on_conflict`."""

    def __post_init__(self) -> None:
        self.log_dir = _storage.join(self.path, "_delta_log")
        self._columns = self.schema.names
        self._probed = 0.0
        self.damaged_checkpoint: tuple[str, str] | None = None
        """(file, what is wrong) of a checkpoint the last load skipped for an older state, as delta-spark does."""
        self._cleaned_ms = -CLEANUP_EVERY_MS
        self._coverings: dict[tuple[str, ...], _log_covering.Covering] = {}  # see `covering`
        self._reset_state()

    def _reset_state(self) -> None:
        self.version = -1
        self.files: dict[str, DataFile] = {}
        self._tombstones: dict[str, dict[str, Any]] = {}
        self._ckpt_removes: list[pa.Array] = []  # the last checkpoint's tombstones, still in Arrow
        self._ckpt_unread: CheckpointRef | None = None  # the loaded checkpoint, its tombstones not read yet
        self._ckpt_at: tuple[int, int] = (-1, 0)  # the last checkpoint known: its version and action count
        self._readded: set[str] = set()  # files added again since that checkpoint
        self.txns: dict[str, dict[str, Any]] = {}
        self.protocol: dict[str, Any] | None = None
        self.metadata: dict[str, Any] | None = None
        self._writable: bool = False
        self._stats: dict[str, dict[str, Any]] = {}
        self._blooms: dict[str, bytes] = {}  # cold: the Bloom filters of the clustering column its adds carry
        self._recent: OrderedDict[str, list[Row]] = OrderedDict()
        self._added_at: OrderedDict[int, list[str]] = OrderedDict()  # version -> its dataChange adds (cold)

    @property
    def tombstones(self) -> dict[str, dict[str, Any]]:
        """The snapshot's removed files (path -> `remove` action): what a checkpoint must carry until they
        expire. Those of a loaded checkpoint are turned into dicts only here, when first asked for (by the next
        checkpoint a writer makes), so a reader never pays for a week of tombstones."""
        if self._ckpt_removes or self._ckpt_unread:
            merged: dict[str, dict[str, Any]] = {}
            for r in removes_as_dicts(self._checkpoint_tombstones()):
                rel = file_key(r["path"])
                if rel not in self._readded:
                    merged[rel] = {**r, "path": rel}
            merged.update(self._tombstones)
            self._tombstones, self._ckpt_removes, self._readded = merged, [], set()
        return self._tombstones

    def _checkpoint_tombstones(self) -> list[pa.Array]:
        """The last checkpoint's tombstones, read from the loaded checkpoint the first time a writer needs them.

        Raises:
            FileNotFoundError: log cleanup by another process removed that checkpoint meanwhile.
        """
        if self._ckpt_unread is not None:
            self._ckpt_removes = read_checkpoint_removes(self.log_dir, self._ckpt_unread)
            self._ckpt_unread = None
        return self._ckpt_removes

    # -- creation ---------------------------------------------------------------------------------------
    def exists(self) -> bool:
        """Whether the table was created (its log holds version 0 or a checkpoint), by any process."""
        if self.version >= 0:
            return True
        return _storage.exists(_storage.join(self.log_dir, f"{0:020d}.json")) or bool(
            find_checkpoint(self.log_dir, self.name)
        )

    def create_if_missing(self) -> None:
        """Publish version 0 (protocol + metadata) unless the table exists; safe when racing other processes."""
        if self.exists():
            return
        _storage.makedirs(self.log_dir)
        now = self._now_ms()
        actions: list[dict[str, Any]] = [
            {
                "commitInfo": {
                    "timestamp": now,
                    "operation": "CREATE TABLE",
                    "operationParameters": {},
                    "clientVersion": self.client_version,
                }
            },
            {"protocol": {"minReaderVersion": 1, "minWriterVersion": 2}},
            {
                "metaData": {
                    "id": str(uuid.uuid4()),
                    "name": self.name,
                    "description": self.description,
                    "format": {"provider": "parquet", "options": {}},
                    "schemaString": delta_schema_string(self.schema),
                    "partitionColumns": [],
                    "configuration": dict(self.configuration),
                    "createdTime": now,
                }
            },
        ]
        with contextlib.suppress(CommitConflict):
            self._publish(0, actions)

    # -- reading ----------------------------------------------------------------------------------------
    def refresh(self) -> None:
        """Apply every commit published since this snapshot (a cold snapshot starts at the last checkpoint).

        Raises:
            UnsupportedTableFeatureError: the table (now) uses a feature the lean reader cannot read.
        """
        loading = self.version < 0
        if loading:
            self._load_checkpoint()
        while True:
            nxt = self.version + 1
            path = _storage.join(self.log_dir, f"{nxt:020d}.json")
            try:
                data = _storage.read(path)
            except FileNotFoundError:
                if self.version >= 0 and self._log_moved_past(nxt):
                    self._reload()
                    continue
                if loading and self._check_loaded(nxt):
                    continue
                return
            self._apply(nxt, parse_commit(self.name, path, data), local_rows=None)

    def _check_loaded(self, missing: int) -> bool:
        """After a first load: refuse a log that skips commit `missing` or lacks protocol / metadata (delta-spark's
        DELTA_VERSIONS_NOT_CONTIGUOUS, DELTA_STATE_RECOVER_ERROR) rather than show a silently older table. One
        listing per table and process. True when `missing` appeared meanwhile (another writer): read on."""
        versions = commit_versions(self.log_dir)
        if missing in versions:
            return True
        later = [v for v in versions if v > missing]
        path = _storage.join(self.log_dir, f"{missing:020d}.json")
        # A local directory listing taken while writers link commits into it is no snapshot: readdir may return
        # a newer commit and not `missing`, published just before it. Commits are published in order, so once a
        # later one was listed, `missing` is there unless it is really gone: look at it directly.
        if later and _storage.exists(path):
            return True
        if later:
            ref = older_checkpoint(self.log_dir, self.name, later[-1] + 1)  # the newest one listed
            if ref is not None and ref.version >= missing:  # log cleanup behind a newer checkpoint: start from it
                self._reload(ref)
                return True
            raise CorruptTableError(
                self.name, path, f"is missing but later commits exist (up to version {later[-1]}): the log has a gap"
            )
        if self.version >= 0 and (self.protocol is None or self.metadata is None):
            what = "protocol" if self.protocol is None else "metaData"
            raise CorruptTableError(
                self.name,
                self.log_dir,
                f"holds no {what} action up to version {self.version} (a commit or checkpoint lost it)",
            )
        return False

    def txn_version(self, app_id: str) -> int:
        """The version the last `txn` action of `app_id` recorded (Delta's SetTransaction, how an idempotent
        writer knows what it has already committed), or -1 when the table has none."""
        txn = self.txns.get(app_id)
        return int(txn["version"]) if txn else -1

    def commit_info(self, version: int) -> dict[str, Any] | None:
        """The `commitInfo` action of commit `version` (read from its JSON file), or None if absent."""
        return read_commit_info(self.log_dir, version)

    def _load_checkpoint(self, ref: CheckpointRef | None = None) -> None:
        """Load the newest readable checkpoint. One that cannot be read (truncated, not Parquet) is skipped for
        an older one, or for the commits from version 0, as delta-spark does; CorruptTableError names it when
        the commits it replaced are gone too."""
        ref = ref or find_checkpoint(self.log_dir, self.name)
        bad: tuple[str, str] | None = None
        while ref is not None:
            try:
                actions, size = read_checkpoint_parts(self.log_dir, self.name, ref)
                break
            except (pa.ArrowException, OSError, ValueError) as exc:
                failed = _storage.join(self.log_dir, ref.files[0])
                bad = bad or (failed, f"is not a readable checkpoint ({type(exc).__name__}: {exc})")
                self.damaged_checkpoint = bad
                _log.warning("table %s: checkpoint %s cannot be read (%s); using an older one", self.name, failed, exc)
                ref = older_checkpoint(self.log_dir, self.name, ref.version)
        if ref is None:
            if bad is not None and not _storage.exists(_storage.join(self.log_dir, f"{0:020d}.json")):
                raise CorruptTableError(self.name, bad[0], f"{bad[1]}, and no older state is left")
            return
        self.version = ref.version - 1
        self._apply(ref.version, actions, local_rows=None, checkpoint=True)
        self._ckpt_removes, self._ckpt_unread, self._ckpt_at = [], ref, (ref.version, size)
        release_freed()  # the Parquet decoding's scratch, not kept by the process

    def _log_moved_past(self, missing: int) -> bool:
        """Whether commit `missing` is absent because log cleanup removed it (a checkpoint covers it).

        Only a snapshot left idle for longer than the log retention meets this; probed at most every
        TRUNCATION_PROBE_SECONDS so the per-call cost stays one failed `open()`.
        """
        now = time.monotonic()
        if now - self._probed < TRUNCATION_PROBE_SECONDS:
            return False
        self._probed = now
        ref = find_checkpoint(self.log_dir, self.name)
        return ref is not None and ref.version >= missing

    def _reload(self, ref: CheckpointRef | None = None) -> None:
        """Forget the snapshot (telling the indexes) and load the newest checkpoint instead."""
        for rel, f in self.files.items():
            for row in f.rows or ():
                for ix in self.indexes:
                    ix.remove(row, rel)
                if self.on_change is not None:
                    self.on_change(row)
        self._reset_state()
        self._load_checkpoint(ref)

    def _apply(
        self,
        version: int,
        actions: list[dict[str, Any]],
        local_rows: dict[str, list[Row]] | None,
        checkpoint: bool = False,
    ) -> None:
        protocol, metadata = self.protocol, self.metadata
        for action in actions:
            if "protocol" in action:
                protocol = action["protocol"]
            elif "metaData" in action:
                metadata = action["metaData"]
        if protocol is not self.protocol or metadata is not self.metadata:
            check_readable(self.name, protocol, metadata)  # before any of its data files is read
            self.protocol, self.metadata, self._writable = protocol, metadata, False
        added: list[str] = []
        gone: list[str] = []
        # Removes before adds: a compaction or rewrite removes the old rows and adds them back in new files.
        for action in actions:
            if "remove" in action:
                remove = action["remove"]
                rel = file_key(remove["path"])
                entry = self.files.pop(rel, None)
                self._tombstones[rel] = (
                    {**remove, "path": rel}
                    if entry is None
                    else {
                        "size": entry.add.get("size"),
                        "partitionValues": entry.add.get("partitionValues") or {},
                        **remove,
                        "path": rel,
                    }
                )
                if not self.keep_rows:
                    stats = self._stats.pop(rel, None)
                    self._blooms.pop(rel, None)
                    gone.append(_storage.join(self.path, rel))
                    if remove.get("dataChange", True) and not checkpoint:
                        self._range_changed(stats)
                elif entry is not None:
                    for row in entry.rows or ():
                        for ix in self.indexes:
                            ix.remove(row, rel)
                        if self.on_change is not None:
                            self.on_change(row)
        for action in actions:
            if "add" in action:
                add = action["add"]
                check_add(self.name, add)
                rel = file_key(add["path"])
                rows = local_rows.get(rel) if local_rows else None
                if not self.keep_rows:
                    self.files[rel] = DataFile(None, {**add, "path": rel})
                    self._untombstone(rel)
                    self._stats[rel] = json.loads(add["stats"]) if add.get("stats") else {}
                    bloom = (add.get("tags") or {}).get(bloom_tag(self.cluster_by or self._columns[0]))
                    if bloom:
                        self._blooms[rel] = base64.b64decode(bloom)
                    if add.get("dataChange", True):
                        added.append(rel)
                        if not checkpoint:
                            self._range_changed(self._stats[rel])
                        if rows is not None:
                            self._remember(rel, rows)
                    continue
                if rows is None:
                    rows = self._read_rows(rel)
                self.files[rel] = DataFile(rows, {**add, "path": rel})
                self._untombstone(rel)
                for row in rows:
                    for ix in self.indexes:
                        ix.add(row, rel)
                    if self.on_change is not None:
                        self.on_change(row)
            elif "txn" in action:
                self.txns[action["txn"]["appId"]] = action["txn"]
        if gone:
            _COLD.forget(gone)
        if checkpoint and self.on_range_change is not None:
            self.on_range_change(None, None)  # a whole snapshot at once: anything may differ from before
        if not self.keep_rows and not checkpoint:
            self._added_at[version] = added  # the commit's writes, for rows_added_since
            while len(self._added_at) > 4 * RECENT_FILES:
                self._added_at.popitem(last=False)
        self.version = version

    def _read_rows(self, rel: str) -> list[Row]:
        path = _storage.join(self.path, rel)
        try:
            return read_rows(path, self._columns)
        except FileNotFoundError:
            raise CorruptTableError(
                self.name,
                path,
                "is a live data file of the log but does not exist",
                hint="restore the file from a backup, or drop its entry with delta-spark's "
                f"FSCK REPAIR TABLE delta.`{self.path}` (its rows are then lost)",
            ) from None
        except pa.ArrowInvalid as exc:
            raise CorruptTableError(self.name, path, f"is not a readable Parquet file ({exc})") from None

    # -- writing ----------------------------------------------------------------------------------------
    def commit(
        self,
        adds: Iterable[list[Row] | pa.Table],
        removes: Iterable[str] = (),
        *,
        operation: str = "WRITE",
        data_change: bool = True,
        info: dict[str, Any] | None = None,
        txn: tuple[str, int] | None = None,
    ) -> int:
        """Write one file per row list (or Arrow table) and publish one commit at `version + 1`; return that version.

        The snapshot must be fresh (`refresh()` just ran). `info` is merged into the commit's `commitInfo`
        (e.g. the registry's events, published atomically with the change); `txn` = (appId, version) adds Delta's
        `txn` action (an idempotent writer's watermark, `txns` of the snapshot). Every `delta.checkpointInterval`
        versions a checkpoint follows, then log cleanup; their failure is logged, never raised (the commit
        stands).

        Raises:
            CommitConflict: another writer took the version first; nothing was published and the data files
                written for this commit were deleted again.
            UnsupportedTableFeatureError: the table uses a writer feature the lean writer does not honour.
        """
        self._check_writable()
        version = self.version + 1
        now = self._now_ms()
        written: dict[str, list[Row]] = {}
        actions: list[dict[str, Any]] = [
            {
                "commitInfo": {
                    "timestamp": now,
                    "operation": operation,
                    "operationParameters": {"mode": "Append"} if operation == "WRITE" else {},
                    "clientVersion": self.client_version,
                    **(info or {}),
                }
            }
        ]
        for rel in removes:
            add = self.files[rel].add
            actions.append(
                {
                    "remove": {
                        "path": rel,
                        "deletionTimestamp": now,
                        "dataChange": data_change,
                        "extendedFileMetadata": True,
                        "partitionValues": add.get("partitionValues") or {},
                        "size": add.get("size"),
                    }
                }
            )
        files: list[str] = []
        try:
            for rows in adds:
                if isinstance(rows, pa.Table):
                    if rows.num_rows == 0:
                        continue
                    table = rows
                elif not rows:
                    continue
                else:
                    table = pa.table({c: [r[c] for r in rows] for c in self._columns}, schema=self.schema)
                rel = f"part-{uuid.uuid4().hex}.parquet"
                files.append(rel)
                size, tags = self._write_file(rel, table)
                if not isinstance(rows, pa.Table):
                    written[rel] = rows
                add = {
                    "path": rel,
                    "partitionValues": {},
                    "size": size,
                    "modificationTime": now,
                    "dataChange": data_change,
                    "stats": json.dumps(file_stats(table, self.stats_columns), separators=(",", ":")),
                }
                if tags:
                    add["tags"] = tags
                actions.append({"add": add})
            if txn is not None:
                actions.append({"txn": {"appId": txn[0], "version": txn[1], "lastUpdated": now}})
            self._publish(version, actions)
        except BaseException:
            for rel in files:
                _storage.delete_quietly(_storage.join(self.path, rel))
            raise
        self._apply(version, actions, local_rows=written)
        if self._checkpoint_due(version):
            self._checkpoint_and_clean_up()
        return version

    def _check_writable(self) -> None:
        if not self._writable:
            check_writable(self.name, self.protocol, self.metadata)
            self._writable = True

    def _checkpoint_due(self, version: int) -> bool:
        """Whether this commit writes a checkpoint: at every multiple of the table's `delta.checkpointInterval`
        when set, as delta-spark does; otherwise CHECKPOINT_INTERVAL commits after the last checkpoint, or more on
        a table whose last checkpoint is large (one commit per CHECKPOINT_SPREAD actions it held)."""
        value = ((self.metadata or {}).get("configuration") or {}).get("delta.checkpointInterval")
        if value is not None:
            try:
                return version % max(1, int(value)) == 0
            except ValueError:
                pass
        last, size = self._ckpt_at
        if last < 0:
            return version % CHECKPOINT_INTERVAL == 0
        every = max(CHECKPOINT_INTERVAL, size // CHECKPOINT_SPREAD)
        if version - last < every:
            return False
        ref = find_checkpoint(self.log_dir, self.name)  # another process may have written one since
        if ref is not None and ref.version > last:
            self._ckpt_at = (ref.version, size)
            return version - ref.version >= every
        return True

    def _write_file(self, rel: str, table: pa.Table) -> tuple[int, dict[str, str] | None]:
        """Write `table` as data file `rel`: its size, and the `tags` of its add action. A cold table's file of
        several clustering values gets a Bloom filter of them (`lakehouse._log_cold.bloom_filter`) as the tag
        `lakehouse.bloom.<column>`, which other readers ignore: the log carries it to every reader, so ruling a file
        out needs no read of the file. (A file of one value needs none: its statistics' min and max are that value.)"""
        tags = None
        column = self.cluster_by or self._columns[0]
        if not self.keep_rows and table.num_rows > 1 and pa.types.is_string(table.schema.field(column).type):
            bloom = bloom_filter(table.column(column))
            if bloom is not None:
                tags = {bloom_tag(column): base64.b64encode(bloom).decode()}
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink, compression="snappy", row_group_size=ROW_GROUP_ROWS)
        data = sink.getvalue().to_pybytes()
        _storage.create_new(_storage.join(self.path, rel), data)
        return len(data), tags

    def _publish(self, version: int, actions: list[dict[str, Any]]) -> None:
        payload = ("\n".join(json.dumps(a, separators=(",", ":")) for a in actions) + "\n").encode()
        try:
            _storage.publish(_storage.join(self.log_dir, f"{version:020d}.json"), payload)
        except FileExistsError as exc:
            raise CommitConflict(self.name, version) from exc  # the cause says how the store refused

    def write(
        self,
        plan: Callable[[], Change | None],
        *,
        refresh: Callable[[], None] | None = None,
        operation: str = "WRITE",
        policy: RetryPolicy | None = None,
    ) -> bool:
        """Commit what `plan()` returns on the freshest snapshot, re-planning after every lost race; then compact.

        `plan` runs after `refresh` (default: this table's own; pass one that also refreshes the tables the plan
        validates against), may raise to refuse the write, and returns a `Change` (see its no-side-effects rule)
        or None when there is nothing to write. Returns whether a commit was made.

        Raises:
            ConcurrentModificationError: other writers kept winning until `policy.deadline` (default
                `retry_policy`); nothing of this write was published.
        """

        def attempt() -> bool:
            (refresh or self.refresh)()
            change = plan()
            if change is None:
                return False
            self.commit(
                change.adds, change.removes, operation=operation, info=dict(change.info) or None, txn=change.txn
            )
            return True

        wrote = retry_on_conflict(
            attempt,
            table=self.name,
            operation=operation.lower(),
            is_conflict=lambda exc: isinstance(exc, ConcurrentModificationError),
            policy=policy or self.retry_policy,
        )
        if wrote:
            self.compact_if_needed()
        return wrote

    # -- maintenance ------------------------------------------------------------------------------------
    def small_files(self) -> list[str]:
        return [rel for rel, n in self._file_rows().items() if n < SMALL_FILE_ROWS]

    def _file_rows(self) -> dict[str, int]:
        if self.keep_rows:
            return {rel: len(f.rows or ()) for rel, f in self.files.items()}
        return {rel: int(self._stats.get(rel, {}).get("numRecords", 0)) for rel in self.files}

    def auto_compact_enabled(self) -> bool:
        """False when the table sets Delta's auto-compaction switch `delta.autoOptimize.autoCompact` off.

        Two compactions of one table conflict in Delta (the later one's files were removed under it), so a
        table maintained by a scheduled OPTIMIZE from another engine turns the store's compaction off, exactly
        as it would turn off delta-spark's own auto compaction.
        """
        config = (self.metadata or {}).get("configuration") or {}
        return str(config.get(AUTO_COMPACT_PROPERTY, "true")).strip().lower() != "false"

    def compact_if_needed(self) -> bool:
        """Rewrite the small files into files of about SMALL_FILE_ROWS rows; False when not needed or raced.

        Never compacts a table whose `delta.autoOptimize.autoCompact` is false (see `auto_compact_enabled`).
        """
        if not self.auto_compact_enabled():
            return False
        if not self.keep_rows:
            return self._compact_clustered()
        small = self.small_files()
        if len(small) < COMPACT_AFTER_FILES:
            return False
        groups: list[list[Row]] = [[]]
        for rel in small:
            if len(groups[-1]) >= SMALL_FILE_ROWS:
                groups.append([])
            groups[-1].extend(self.files[rel].rows or ())
        try:
            self.commit(groups, small, operation="OPTIMIZE", data_change=False)
        except CommitConflict:
            return False  # someone else wrote meanwhile; the next writer compacts
        return True

    def _compact_clustered(self) -> bool:
        """One size-tiered merge of a cold table, sorted by `cluster_by` (`lakehouse._log_cold.plan_merge`)."""
        files = plan_merge(self._file_rows(), COMPACT_AFTER_FILES, self.max_merge_rows)
        if not files:
            return False
        merged = merge_sorted(self.path, files, self.schema, self.cluster_by or self._columns[0], self._recent)
        try:
            self.commit([merged], files, operation="OPTIMIZE", data_change=False)
        except CommitConflict:
            return False
        if self.keep_covering:
            self._keep_covering()
        return True

    # -- reading a cold table -------------------------------------------------------------------------------
    def rows_where(self, column: str, value: Any) -> list[Row]:
        """The live rows whose `column` equals `value` (None: is null), reading only files and row groups whose
        statistics may hold it (a cold table), or from memory (a table that keeps its rows)."""
        return [row for row, _ in self.hits_where(column, value)]

    def hits_where(self, column: str, value: Any) -> list[tuple[Row, str]]:
        """`rows_where`, each row with the data file (path in the table) that holds it."""
        if self.keep_rows:
            return [(r, rel) for rel, f in self.files.items() for r in f.rows or () if r[column] == value]
        out: list[tuple[Row, str]] = []
        for rel in self.files:
            if not may_hold(self._stats.get(rel), column, value):
                continue
            rows = self._recent.get(rel)
            if rows is not None:
                out.extend((r, rel) for r in rows if r[column] == value)
            else:
                bloom = self._blooms.get(rel) if column == self.cluster_by else None
                path = _storage.join(self.path, rel)
                out.extend((r, rel) for r in _COLD.rows_where(path, self._columns, column, value, bloom))
        return out

    def arrow_where(self, column: str, values: Iterable[Any], columns: list[str], *, cache: bool = True) -> pa.Table:
        """The live rows whose `column` is one of `values`, as Arrow `columns` (plus nothing else): a scan of the
        files and row groups whose statistics may hold one of them, reading only those columns (a search's
        filter, never held after the call)."""
        wanted = [v for v in dict.fromkeys(values) if v is not None]
        schema = pa.schema([self.schema.field(c) for c in columns])
        if not wanted:
            return schema.empty_table()
        lo, hi = min(wanted), max(wanted)
        value_set = pa.array(wanted, self.schema.field(column).type)
        wanted_set = set(wanted)
        ordered = sorted(wanted)
        parts = []
        for rel in list(self.files):
            rows = self.files[rel].rows if self.keep_rows else self._recent.get(rel)
            if rows is not None:
                hits = [r for r in rows if r[column] in wanted_set]
                if hits:
                    parts.append(pa.Table.from_pylist([{c: r[c] for c in columns} for r in hits], schema=schema))
                continue
            if not may_overlap(self._stats.get(rel), column, lo, hi):
                continue
            path = _storage.join(self.path, rel)
            if cache:
                part = _COLD.scan(path, self.schema, columns, column, value_set)
            else:
                held = held_values(self._stats.get(rel), column, ordered)
                probe = column == self.cluster_by and len(held) <= BLOOM_PROBES
                bloom = self._blooms.get(rel) if probe else None
                if bloom is not None:
                    held = [v for v in held if bloom_may_hold(bloom, v)]
                if not held:
                    continue
                part = _COLD.scan_values(path, self.schema, columns, column, held)
            if part.num_rows:
                parts.append(part)
        return pa.concat_tables(parts) if parts else schema.empty_table()

    def file_rows(self, rel: str) -> list[Row]:
        """Every row of live data file `rel` (held in memory, remembered, or read)."""
        if self.keep_rows:
            return list(self.files[rel].rows or ())
        rows = self._recent.get(rel)
        if rows is not None:
            return list(rows)
        return rows_of(read_arrow(self.path, rel, self.schema), self._columns)

    def rows_added_since(self, version: int) -> list[Row] | None:
        """The rows that the commits after `version` up to this snapshot added (`dataChange` adds: writes, not
        compactions), from the commits this snapshot applied or else their commit files; None when a commit file or data file is gone (log cleanup
        or VACUUM): the caller then rebuilds from the whole table."""
        out: list[Row] = []
        for v in range(version + 1, self.version + 1):
            rels = self._added_at.get(v)
            if rels is None:
                try:
                    data = _storage.read(_storage.join(self.log_dir, f"{v:020d}.json"))
                except FileNotFoundError:
                    return None
                actions = [json.loads(line) for line in data.splitlines() if line.strip()]
                adds = [a["add"] for a in actions if "add" in a]
                rels = [file_key(a["path"]) for a in adds if a.get("dataChange", True)]
            for rel in rels:
                rows = self._recent.get(rel)
                if rows is None:
                    try:
                        rows = read_rows(_storage.join(self.path, rel), self._columns)
                    except FileNotFoundError:
                        return None
                out.extend(rows)
        return out

    def file_stats(self, rel: str) -> dict[str, Any] | None:
        """The parsed Delta `stats` of live file `rel` (None when it has none)."""
        if not self.keep_rows:
            return self._stats.get(rel) or None
        raw = self.files[rel].add.get("stats")
        return json.loads(raw) if raw else None

    def covering(self) -> _log_covering.Covering:
        """Every live row, kept beside the table (`lakehouse._log_covering`) and brought up to this snapshot: what a
        scan of every file reads, without reading them; for searches over a whole cold table."""
        return _log_covering.live_covering(self, self.schema.names, self._coverings)

    def _keep_covering(self) -> None:
        """After a compaction: bring the covering index beside the table up to it (`keep_covering`); never fails
        the write."""
        try:
            _log_covering.live_covering(self, self.schema.names, self._coverings, writer=True)
        except Exception as exc:  # noqa: BLE001 - a cache: the next reader brings it up instead
            _log.warning("could not bring the covering index of %s up to date: %s", self.name, exc)

    def iter_arrow(self, columns: list[str]) -> Iterable[pa.Table]:
        """The live files' `columns`, one Arrow table per file (a scan that holds one file at a time)."""
        for rel in list(self.files):
            yield read_arrow(self.path, rel, self.schema).select(columns)

    def unclustered_files(self) -> list[str]:
        """Live files whose Delta stats lack the clustering column (written before the table was clustered, or by
        an engine that records no such statistics)."""
        column = self.cluster_by or self._columns[0]
        return [rel for rel in self.files if column not in ((self.file_stats(rel) or {}).get("nullCount") or {})]

    def recluster(self) -> int:
        """Rewrite the `unclustered_files`, sorted by the clustering column, in merges of at most `max_merge_rows`
        rows (one `OPTIMIZE` commit, `dataChange=false`, re-planned after every lost race like a write); returns
        the files rewritten.

        Raises:
            ConcurrentModificationError: other writers kept winning until the retry policy's deadline.
        """
        column = self.cluster_by or self._columns[0]
        limit = self.max_merge_rows or _log_cold.MAX_MERGE_ROWS

        def attempt() -> int:
            self.refresh()
            stale = self.unclustered_files()
            if not stale:
                return 0
            sizes = self._file_rows()
            groups: list[list[str]] = [[]]
            total = 0
            for rel in stale:
                if groups[-1] and total + sizes[rel] > limit:
                    groups.append([])
                    total = 0
                groups[-1].append(rel)
                total += sizes[rel]
            merged = (merge_sorted(self.path, g, self.schema, column) for g in groups)  # one group in memory at a time
            self.commit(merged, stale, operation="OPTIMIZE", data_change=False)
            return len(stale)

        return retry_on_conflict(
            attempt,
            table=self.name,
            operation="optimize",
            is_conflict=lambda exc: isinstance(exc, ConcurrentModificationError),
            policy=self.retry_policy,
        )

    def _untombstone(self, rel: str) -> None:
        self._tombstones.pop(rel, None)
        if self._ckpt_removes or self._ckpt_unread:
            self._readded.add(rel)

    def _range_changed(self, stats: Mapping[str, Any] | None) -> None:
        if self.on_range_change is None:
            return
        column = self.cluster_by or self._columns[0]
        lo = ((stats or {}).get("minValues") or {}).get(column)
        hi = ((stats or {}).get("maxValues") or {}).get(column)
        if lo is None or hi is None:
            lo = hi = None  # unknown: any value may have changed
        self.on_range_change(lo, hi)

    def _remember(self, rel: str, rows: list[Row]) -> None:
        self._recent[rel] = rows
        while len(self._recent) > RECENT_FILES:
            self._recent.popitem(last=False)

    def write_checkpoint(self) -> None:
        """Write the classic checkpoint of the current snapshot, with the tombstones still within retention.

        The tombstones of the last checkpoint (read, or written by this snapshot) stay in Arrow: only those removed
        since are dicts. So a table with a week of tombstones pays an Arrow filter per checkpoint, not a Python
        object per tombstone."""
        if self.metadata is None or self.protocol is None:
            return
        try:
            previous = self._checkpoint_tombstones()
        except FileNotFoundError:  # cleaned up by another process: start again from the newest checkpoint
            self._reload()
            self.refresh()
            previous = self._checkpoint_tombstones()
        cutoff = self._now_ms() - retention_ms(self.metadata, DELETED_FILE_RETENTION)
        fresh = [r for r in self._tombstones.values() if int(r.get("deletionTimestamp") or 0) > cutoff]
        kept = unexpired_removes(previous, cutoff, drop=self._readded | self._tombstones.keys())
        removes = pa.concat_arrays([kept, removes_array(fresh)])
        self._ckpt_at = (self.version, len(removes) + len(self.files) + len(self.txns) + 2)
        write_checkpoint(
            self.log_dir,
            self.version,
            protocol=self.protocol,
            metadata=self.metadata,
            txns=self.txns.values(),
            adds=[f.add for f in self.files.values()],
            removes=removes,
        )
        self._ckpt_removes, self._tombstones, self._readded = [removes], {}, set()

    def clean_up_expired_logs(self) -> list[str]:
        """Delete the log files older than `delta.logRetentionDuration` that no young version needs.

        Does nothing when `delta.enableExpiredLogCleanup` is false. Returns the deleted file names.
        """
        config = (self.metadata or {}).get("configuration") or {}
        if config.get("delta.enableExpiredLogCleanup", "true").lower() == "false":
            return []
        return cleanup_expired_logs(self.log_dir, self._now_ms() - retention_ms(self.metadata, LOG_RETENTION))

    def _checkpoint_and_clean_up(self) -> None:
        try:
            self.write_checkpoint()
            now = self._now_ms()
            if now - self._cleaned_ms >= CLEANUP_EVERY_MS or now < self._cleaned_ms:
                self._cleaned_ms = now
                self.clean_up_expired_logs()
        except (OSError, ValueError, pa.ArrowException) as exc:
            _log.warning(
                "table %r: checkpoint/log cleanup at version %d failed (the commit stands): %s",
                self.name,
                self.version,
                exc,
            )

    def _now_ms(self) -> int:
        return int(self.clock() * 1000)


def diagnose(name: str, path: str) -> Exception | None:
    """Why the Delta log at `path` cannot be read, as a typed error naming the file (a truncated or unparsable
    commit or checkpoint, a gap, lost protocol or metadata, a reader feature no engine knows), or None when the
    lean reader finds nothing wrong. For turning an engine's deep error into one a user can act on."""
    probe = LeanTable(path=path, name=name, schema=pa.schema([("_", pa.int64())]), keep_rows=False)
    try:
        probe.refresh()
    except CorruptTableError as exc:
        return exc
    except UnsupportedTableFeatureError:
        try:
            check_known_reader_features(name, _last_protocol(probe))
        except UnsupportedTableFeatureError as unknown:
            return unknown
        return None
    if probe.damaged_checkpoint is not None or _dangling_hint(probe.log_dir):
        file, detail = probe.damaged_checkpoint or (
            _storage.join(probe.log_dir, "_last_checkpoint"),
            "points at a checkpoint that does not exist",
        )
        return CorruptTableError(
            name,
            file,
            detail,
            hint="the commits still hold the table, and delta-spark (and the lean log) read it from them, as Delta "
            "does; for deltalake, delete the damaged checkpoint and `_last_checkpoint` (a new checkpoint is written "
            "later)",
        )
    return None


def _dangling_hint(log_dir: str) -> bool:
    """Whether `_last_checkpoint` names a checkpoint version whose file is missing."""
    try:
        last = json.loads(_storage.read(_storage.join(log_dir, "_last_checkpoint")))
        version, parts = int(last["version"]), int(last.get("parts") or 0)
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        return False
    names = (
        [f"{version:020d}.checkpoint.parquet"]
        if parts <= 1
        else [f"{version:020d}.checkpoint.{i:010d}.{parts:010d}.parquet" for i in range(1, parts + 1)]
    )
    return not all(_storage.exists(_storage.join(log_dir, n)) for n in names)


def _last_protocol(table: LeanTable) -> dict[str, Any] | None:
    """The protocol of the newest commit that has one (what a refused refresh stopped at)."""
    for version in reversed(commit_versions(table.log_dir)):
        data = _storage.read(_storage.join(table.log_dir, f"{version:020d}.json"))
        for action in parse_commit(table.name, table.log_dir, data):
            if "protocol" in action:
                protocol: dict[str, Any] = action["protocol"]
                return protocol
    return None
