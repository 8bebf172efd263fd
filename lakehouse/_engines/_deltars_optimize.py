"""OPTIMIZE for the delta-rs engine, safe when several processes run it at once (on a local disk or an object store).

delta-rs's own `optimize.compact` / `z_order` let two concurrent compactions both commit: each rewrites the same
small files and both rewrites stay live, duplicating every row (measured with deltalake 1.6.6, also with
`max_commit_retries=0`). Here the compaction is planned and rewritten by us, and committed through delta-rs's
`create_write_transaction` with no automatic retry, after checking Delta's delete-delete rule ourselves:

1. plan at version V: per partition, bins of files smaller than the target size (a bin of one file is left
   alone), or for Z-order every file of each partition;
2. rewrite each bin into one new file (pyarrow, under `lh-<uuid>/` in the table);
3. commit: read every commit after V up to the latest version L; if one of them removed a file of the plan, the
   plan is stale (another OPTIMIZE, an overwrite, a delete got there first): the new files are deleted and
   `CommitConflict` makes `retry_on_conflict` re-plan from the new version (a no-op when the table is compact).
   Otherwise the remove + add actions are committed at exactly L + 1 (put-if-absent; delta-rs retries nothing);
   losing that race repeats step 3 only, against the newer commits.

Appends that land meanwhile never conflict (they remove nothing), so an OPTIMIZE concurrent with writers
compacts without losing their rows and without rewriting twice.
"""

from __future__ import annotations

import json
import math
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from deltalake import CommitProperties, DeltaTable
from deltalake.exceptions import CommitFailedError
from deltalake.transaction import AddAction, RemoveAction

from .. import _storage
from .._entities import OptimizeResult
from .._log_cold import file_stats
from .._log_types import CommitConflict
from .._maintenance import DEFAULT_TARGET_FILE_SIZE, files_removed_after
from .._names import TableRef
from .._retry import retry_on_conflict
from .._storage import arrow_filesystem

OPERATION_KEY = "lakehouse.operation"
"""Commit metadata key naming the operation (delta-rs records a transaction's commit as WRITE)."""


@dataclass(frozen=True)
class LiveFile:
    """One live data file of the snapshot being compacted. `path` is the log's form (URI-encoded)."""

    path: str
    size: int
    rows: int
    partition: tuple[tuple[str, str | None], ...]


@dataclass(frozen=True)
class Plan:
    """What one OPTIMIZE rewrites: `bins` of files (each becomes one or more new files), read at `version`."""

    version: int
    bins: tuple[tuple[LiveFile, ...], ...]
    target_size: int
    z_order_by: tuple[str, ...]


def plan(dt: DeltaTable, target_size: int | None, z_order_by: tuple[str, ...]) -> Plan:
    """The compaction of `dt`'s snapshot, as delta-rs plans it: per partition, files under the target size packed
    into bins of at most the target size (first fit, smallest first); bins of a single file are dropped. With
    `z_order_by`, each partition with any file is one bin (Z-order rewrites it whole)."""
    target = target_size or int(dt.metadata().configuration.get("delta.targetFileSize") or DEFAULT_TARGET_FILE_SIZE)
    parts = list(dt.metadata().partition_columns)
    actions = pa.table(dt.get_add_actions(flatten=True)).to_pylist()
    by_partition: dict[tuple[tuple[str, str | None], ...], list[LiveFile]] = {}
    for a in actions:
        key = tuple(
            (p, None if a.get(f"partition.{p}") is None else _partition_text(a[f"partition.{p}"])) for p in parts
        )
        rows = a.get("num_records")
        by_partition.setdefault(key, []).append(
            LiveFile(path=a["path"], size=int(a["size_bytes"]), rows=-1 if rows is None else int(rows), partition=key)
        )
    bins: list[tuple[LiveFile, ...]] = []
    for files in by_partition.values():
        if z_order_by:
            bins.append(tuple(sorted(files, key=lambda f: f.path)))
            continue
        open_bins: list[list[LiveFile]] = []
        for f in sorted((f for f in files if f.size < target), key=lambda f: (f.size, f.path)):
            for b in open_bins:
                if sum(x.size for x in b) + f.size <= target:
                    b.append(f)
                    break
            else:
                open_bins.append([f])
        bins.extend(tuple(b) for b in open_bins if len(b) > 1)
    return Plan(version=dt.version(), bins=tuple(bins), target_size=target, z_order_by=z_order_by)


def _partition_text(value: Any) -> str:
    """A typed partition value as Delta serialises it in `partitionValues`."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):  # Delta: "2024-01-31 12:00:00.000000", in UTC for a timestamp with time zone
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return str(value.strftime("%Y-%m-%d %H:%M:%S.%f"))
    return str(value)


def rewrite(table_path: str, p: Plan) -> list[AddAction]:
    """Write each bin's rows as new file(s) under a fresh `lh-<uuid>/` folder; their add actions (dataChange
    false). A bin is read whole into memory (at most about the target size of Parquet per bin when compacting)."""
    fs, base = arrow_filesystem(table_path)
    sub = f"lh-{uuid.uuid4().hex}"
    _storage.makedirs(_storage.join(table_path, sub))  # object stores have no folders
    adds: list[AddAction] = []
    now = int(time.time() * 1000)
    for i, b in enumerate(p.bins):
        tables = [_read_file(fs, f"{base}/{unquote(f.path)}") for f in b]
        data = pa.concat_tables(tables, promote_options="permissive")
        if p.z_order_by:
            data = data.take(_z_order(data, p.z_order_by))
        total = sum(f.size for f in b)
        pieces = max(1, math.ceil(total / p.target_size)) if p.z_order_by else 1
        step = max(1, math.ceil(data.num_rows / pieces))
        for j, start in enumerate(range(0, max(data.num_rows, 1), step)):
            chunk = data.slice(start, step)
            rel = f"{sub}/part-{i:05d}-{j:03d}-{uuid.uuid4().hex}.parquet"
            pq.write_table(chunk, f"{base}/{rel}", filesystem=fs, compression="snappy")
            size = fs.get_file_info(f"{base}/{rel}").size
            stats = file_stats(chunk, [c for c in chunk.column_names])
            adds.append(
                AddAction(
                    path=rel,
                    size=int(size),
                    partition_values=dict(b[0].partition),
                    modification_time=now,
                    data_change=False,
                    stats=json.dumps(stats, separators=(",", ":"), default=str),
                )
            )
    return adds


def _read_file(fs: Any, path: str) -> pa.Table:
    """One data file as it is (no columns inferred from `key=value` folders: partition values live in the log),
    view types read as the plain ones (delta-rs's writers store `string_view`, Spark's `string`: one file each
    would not concatenate)."""
    with fs.open_input_file(path) as fh:
        table = pq.ParquetFile(fh).read()
    plain = pa.schema([f.with_type(_PLAIN.get(f.type, f.type)) for f in table.schema], metadata=table.schema.metadata)
    return table if plain.equals(table.schema) else table.cast(plain)


_PLAIN = {pa.string_view(): pa.string(), pa.binary_view(): pa.binary()}


def _z_order(data: pa.Table, columns: Sequence[str]) -> pa.Array:
    """Row order along the Z-order curve of `columns`: each column's dense rank, scaled to the bits it gets,
    bits interleaved into one 64-bit key (nulls rank last)."""
    bits = max(1, min(21, 64 // len(columns)))
    keys = np.zeros(data.num_rows, dtype=np.uint64)
    ranks = []
    for c in columns:
        r = pc.rank(data.column(c), sort_keys="ascending", tiebreaker="dense")
        r = np.asarray(r.to_numpy(zero_copy_only=False), dtype=np.float64) - 1
        top = r.max() if len(r) else 0
        ranks.append(np.floor(r / top * ((1 << bits) - 1)).astype(np.uint64) if top > 0 else r.astype(np.uint64))
    for bit in range(bits - 1, -1, -1):
        for r in ranks:
            keys = (keys << np.uint64(1)) | ((r >> np.uint64(bit)) & np.uint64(1))
    return pa.array(np.argsort(keys, kind="stable"))


def commit(
    table_path: str,
    name: str,
    p: Plan,
    adds: list[AddAction],
    *,
    parameters: dict[str, Any],
) -> int:
    """Commit the plan's removes and `adds` at the next free version, if no commit after the plan's version
    removed one of its files; return the version.

    Raises:
        CommitConflict: a commit after `p.version` removed a file of the plan (or changed the table's metadata
            or protocol): the plan is stale; the caller deletes `adds` and re-plans.
    """
    mine = {unquote(f.path) for b in p.bins for f in b}
    now = int(time.time() * 1000)
    removes = [
        RemoveAction(
            path=unquote(f.path),  # the file system path: delta-rs URI-encodes it in the log again
            data_change=False,
            deletion_timestamp=now,
            size=f.size,
            partition_values=dict(f.partition),
        )
        for b in p.bins
        for f in b
    ]

    def attempt() -> int:
        dt = DeltaTable(table_path)
        latest = dt.version()
        removed = files_removed_after(table_path, p.version, latest)
        if removed is None or removed & mine:
            raise CommitConflict(name, latest)
        actions: list[AddAction | RemoveAction] = [*adds, *removes]
        metadata = {OPERATION_KEY: "OPTIMIZE", "operationParameters": parameters}
        # max_commit_retries=0: delta-rs must not commit at a later version than `latest + 1` on its own (its
        # conflict check lets a second compaction through); a lost race comes back here to check the newer commits.
        dt.create_write_transaction(
            actions,
            mode="append",
            schema=dt.schema(),
            partition_by=list(dt.metadata().partition_columns) or None,
            commit_properties=CommitProperties(max_commit_retries=0, custom_metadata=metadata),
        )
        return latest + 1

    return retry_on_conflict(
        attempt, table=name, operation="optimize", is_conflict=lambda e: isinstance(e, CommitFailedError)
    )


def optimize(
    ref: TableRef,
    *,
    target_size: int | None,
    z_order_by: tuple[str, ...],
) -> OptimizeResult:
    """Plan, rewrite and commit one OPTIMIZE (see the module docstring); re-planned from the newest version
    whenever another commit removed a file of the plan. Idempotent: nothing to compact gives `version` None."""

    def attempt() -> OptimizeResult:
        dt = DeltaTable(ref.path)
        p = plan(dt, target_size, z_order_by)
        if not p.bins:
            return OptimizeResult(
                version=None,
                num_files_added=0,
                num_files_removed=0,
                files_added_size={},
                files_removed_size={},
                z_order_by=tuple(z_order_by),
            )
        adds = rewrite(ref.path, p)
        parameters: dict[str, Any] = {"targetSize": str(p.target_size), "readVersion": str(p.version)}
        if z_order_by:
            parameters["zOrderBy"] = json.dumps(list(z_order_by))
        try:
            version = commit(ref.path, ref.name, p, adds, parameters=parameters)
        except BaseException:
            _discard(ref.path, adds)
            raise
        removed = [f.size for b in p.bins for f in b]
        return OptimizeResult(
            version=version,
            num_files_added=len(adds),
            num_files_removed=len(removed),
            files_added_size=_size_metrics([a.size for a in adds]),
            files_removed_size=_size_metrics(removed),
            z_order_by=tuple(z_order_by),
        )

    return retry_on_conflict(
        attempt, table=ref.name, operation="optimize", is_conflict=lambda e: isinstance(e, CommitConflict)
    )


def _size_metrics(sizes: list[int]) -> dict[str, Any]:
    """Delta's file size metrics of OPTIMIZE (`filesAdded` / `filesRemoved`)."""
    if not sizes:
        return {}
    return {
        "min": min(sizes),
        "max": max(sizes),
        "avg": sum(sizes) / len(sizes),
        "totalFiles": len(sizes),
        "totalSize": sum(sizes),
    }


def _discard(table_path: str, adds: list[AddAction]) -> None:
    for sub in {a.path.split("/")[0] for a in adds}:
        folder = _storage.join(table_path, sub)
        fs, base = arrow_filesystem(folder)
        try:
            fs.delete_dir(base)
        except OSError:
            for a in adds:
                _storage.delete_quietly(_storage.join(table_path, a.path))
