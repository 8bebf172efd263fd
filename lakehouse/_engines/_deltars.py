"""The embedded engine: delta-rs (`deltalake`) keeps the Delta log, Spark reads and writes the Parquet.

Reads hand Spark the exact file list of a version (the Arrow route only for tables whose files alone are
not the data: deletion vectors, column mapping). Appends and overwrites let Spark write Parquet under the
table root and commit those files in one delta-rs transaction, so data never passes through the driver.
Merges hand delta-rs an Arrow copy of the source. The pyarrow-dataset readers (`to_pyarrow_table`,
`to_pandas`) are never used: they can abort the process at exit (exit 134; tests/feature_store/test_exit_codes.py).

Over 400 lines because it is one class implementing the whole `Engine` contract (`_base.py`) for delta-rs.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import posixpath
import time
import uuid
from typing import Any, Literal
from urllib.parse import unquote

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
from deltalake import CommitProperties, DeltaTable, QueryBuilder, write_deltalake
from deltalake import Schema as DeltaSchema
from deltalake.exceptions import CommitFailedError, DeltaError
from deltalake.exceptions import TableNotFoundError as DeltaTableNotFound
from deltalake.transaction import AddAction, RemoveAction, create_table_with_add_actions
from pyspark.errors import AnalysisException
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T
from pyspark.sql.pandas.types import to_arrow_schema

from .._entities import HistoryEntry, MergeResult, OptimizeResult, RestoreResult, VacuumResult, WriteResult
from .._keys import check_unique_arrow
from .._log_files import delta_commit_times, local_table_path
from .._maintenance import LIVE_WRITE_HOURS
from .._names import TableRef
from .._retry import retry_on_conflict
from .._schema import from_json
from .._session import scoped_conf, spark_reaches
from .._storage import arrow_filesystem
from .._timetravel import ms_to_utc
from ..errors import DataFilesMissingError, TableNotFoundError
from . import _deltars_optimize
from ._base import Engine, MergeSpec, TableState
from ._base import quote_ident as _q

# Partition column types whose Hive directory value Spark writes exactly as Delta serialises it.
_DIRECT_PARTITION_TYPES = (T.StringType, T.IntegerType, T.LongType, T.ShortType, T.ByteType, T.BooleanType, T.DateType)
_HIVE_NULL = "__HIVE_DEFAULT_PARTITION__"
_TOKEN_KEY = "lakehouse.commitToken"
_ZORDER_KEY = "lakehouse.zOrderBy"
"""The commit metadata key holding an OPTIMIZE's Z-order columns (JSON), which delta-rs leaves out of its parameters."""


def _arrow_schema(schema: T.StructType) -> pa.Schema:
    return to_arrow_schema(schema, error_on_duplicated_field_names_in_struct=True)


def _nullable_arrow(tbl: pa.Table, schema: T.StructType, *, keep_not_null: bool = False) -> pa.Table:
    """The Arrow table with the table's exact types, every field nullable (no NOT NULL columns by accident).

    `keep_not_null` keeps the input's NOT NULL fields instead, for a merge that creates no column: a NOT NULL
    key lets delta-rs join faster (~0.1 s per 1M rows). Casts only when some type differs."""
    target = _arrow_schema(schema)
    target = pa.schema([f.with_nullable(not keep_not_null or tbl.schema.field(f.name).nullable) for f in target])
    picked = tbl.select(target.names)
    return picked if picked.schema.equals(target) else picked.cast(target)


class DeltaRsEngine(Engine):
    name = "deltalake"

    # -- metadata -------------------------------------------------------------------------------------------
    def _open(self, ref: TableRef, version: int | None = None) -> DeltaTable:
        try:
            return DeltaTable(ref.path, version=version)
        except DeltaTableNotFound:
            raise TableNotFoundError(ref.name, ref.path) from None

    def exists(self, ref: TableRef) -> bool:
        return DeltaTable.is_deltatable(ref.path)

    def state(self, ref: TableRef, version: int | None = None) -> TableState:
        dt = self._open(ref, version)
        md = dt.metadata()
        return TableState(
            version=dt.version(),
            schema=from_json(dt.schema().to_json()),
            partition_columns=tuple(md.partition_columns),
            name=md.name,
            description=md.description,
            properties=dict(md.configuration),
            created_ms=md.created_time,
        )

    def commits(self, ref: TableRef) -> list[tuple[int, int]]:
        dt = self._open(ref)
        local = local_table_path(ref.path)
        if local is not None:  # Delta's times (file mtime / inCommitTimestamp), not commitInfo's clock reading
            return delta_commit_times(local, dt.metadata().configuration)
        return sorted((int(h["version"]), int(h["timestamp"])) for h in dt.history())

    def history(self, ref: TableRef, limit: int | None) -> list[HistoryEntry]:
        out = []
        dt = self._open(ref)
        entries = dt.history(limit)
        local = local_table_path(ref.path)
        times: dict[int, int] = {}
        if local is not None:  # Delta's times for the versions listed (a stat each), not commitInfo's clock
            listed = [int(h["version"]) for h in entries]
            times = dict(delta_commit_times(local, dt.metadata().configuration, versions=listed))
        for h in entries:
            parameters = dict(h.get("operationParameters") or {})
            operation = str(h.get(_deltars_optimize.OPERATION_KEY) or h.get("operation", ""))
            if operation == "OPTIMIZE":  # ours is a delta-rs transaction, which records WRITE and its mode
                parameters.pop("mode", None)
                if _ZORDER_KEY in h and "zOrderBy" not in parameters:
                    parameters["zOrderBy"] = h[_ZORDER_KEY]  # as delta-spark records it: a JSON list of the columns
            out.append(
                HistoryEntry(
                    version=int(h["version"]),
                    timestamp=ms_to_utc(times.get(int(h["version"]), int(h["timestamp"]))),
                    operation=operation,
                    parameters=parameters,
                    metrics=dict(h.get("operationMetrics") or {}),
                    engine=h.get("engineInfo") or h.get("clientVersion"),
                )
            )
        return out

    # -- read -----------------------------------------------------------------------------------------------
    def read(self, ref: TableRef, version: int | None) -> DataFrame:
        dt = self._open(ref, version)
        schema = from_json(dt.schema().to_json())
        md = dt.metadata()
        parts = list(md.partition_columns)
        reader_features = set(dt.protocol().reader_features or [])
        if reader_features & {"deletionVectors", "columnMapping"} or md.configuration.get(
            "delta.columnMapping.mode", "none"
        ) not in ("none", None):
            return self._read_via_arrow(dt, schema)
        files = dt.file_uris()
        if not files:
            return self.spark.createDataFrame([], schema)
        if not spark_reaches(self.spark, ref.path):
            return self._read_via_arrow(dt, schema)
        data_schema = T.StructType([f for f in schema.fields if f.name not in parts])
        try:
            df = self.spark.read.schema(data_schema).parquet(*files)
        except AnalysisException as exc:
            if "PATH_NOT_FOUND" in str(exc) or "does not exist" in str(exc):
                text = str(exc)
                missing = text.split("does not exist:")[-1].strip().split()[0].rstrip(".") if "exist:" in text else "?"
                raise DataFilesMissingError(ref.name, dt.version(), _retention(dt), missing) from None
            raise
        if parts:
            df = self._attach_partitions(dt, df, schema, parts)
        return df.select([_q(f.name) for f in schema.fields])

    def _attach_partitions(self, dt: DeltaTable, df: DataFrame, schema: T.StructType, parts: list[str]) -> DataFrame:
        """Add partition values by joining on the data file's name with the add actions' typed values.

        Sturdier than parsing directory names: it holds for any writer's layout and keeps Delta's types.
        """
        actions = pa.table(dt.get_add_actions(flatten=True))
        names = [unquote(posixpath.basename(p)) for p in actions.column("path").to_pylist()]
        if len(set(names)) != len(names):  # two files with one name in different folders: cannot join on name
            return self._read_via_arrow(dt, schema)
        part_fields = [schema[p] for p in parts]
        rows = zip(names, *[actions.column(f"partition.{p}").to_pylist() for p in parts], strict=True)
        map_schema = T.StructType([T.StructField("__lh_file", T.StringType()), *part_fields])
        files_df = self.spark.createDataFrame(list(rows), map_schema)
        return df.withColumn("__lh_file", F.col("_metadata.file_name")).join(F.broadcast(files_df), "__lh_file")

    def _read_via_arrow(self, dt: DeltaTable, schema: T.StructType) -> DataFrame:
        tbl = QueryBuilder().register("t", dt).execute("SELECT * FROM t").read_all()
        tbl = pa.table(tbl).cast(_arrow_schema(schema))  # string_view etc. -> the types Spark accepts
        return self.spark.createDataFrame(tbl, schema=schema)

    # -- write ----------------------------------------------------------------------------------------------
    def _write_parquet(self, ref: TableRef, df: DataFrame, partition_by: tuple[str, ...]) -> list[AddAction] | None:
        """Spark writes the data as Parquet in a fresh folder under the table root; return its add actions.

        None when a partition column's type is not one whose directory value equals Delta's serialisation, or
        when Spark cannot write to the table's file system (then the caller writes through Arrow).
        """
        schema = df.schema
        if any(not isinstance(schema[p].dataType, _DIRECT_PARTITION_TYPES) for p in partition_by):
            return None
        if not spark_reaches(self.spark, ref.path):
            return None
        sub = f"lh-{uuid.uuid4().hex}"
        target = f"{ref.path.rstrip('/')}/{sub}"
        writer = df.write.mode("error")  # Spark Connect refuses the synonym "errorifexists"
        if partition_by:
            writer = writer.partitionBy(*partition_by)
        # Delta readers expect INT64 microsecond timestamps; Spark's default is INT96. Scoped to this write.
        with scoped_conf(self.spark, **{"spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS"}):
            writer.parquet(target)
        fs, base = arrow_filesystem(target)
        adds: list[AddAction] = []
        for info in fs.get_file_info(pafs.FileSelector(base, recursive=True)):
            if info.type != pafs.FileType.File:
                continue
            rel = posixpath.relpath(info.path, base)
            leaf = posixpath.basename(rel)
            if leaf.startswith((".", "_")) or not leaf.endswith(".parquet"):
                fs.delete_file(info.path)  # checksums and markers: not data, and VACUUM would never remove them
                continue
            values: dict[str, str | None] = {}
            for seg in rel.split("/")[:-1]:
                key, _, raw = seg.partition("=")
                value = unquote(raw)  # Spark escapes directory values with %XX
                values[key] = None if value == _HIVE_NULL else value
            n_rows = pq.read_metadata(info.path, filesystem=fs).num_rows
            adds.append(
                AddAction(
                    path=f"{sub}/{rel}",  # the file system path: delta-rs URI-encodes it in the log
                    size=info.size,
                    partition_values=values,
                    modification_time=int(info.mtime.timestamp() * 1000) if info.mtime else 0,
                    data_change=True,
                    stats=json.dumps({"numRecords": n_rows}),
                )
            )
        return adds

    def _discard(self, ref: TableRef, adds: list[AddAction]) -> None:
        subs = {a.path.split("/")[0] for a in adds}
        for sub in subs:
            fs, base = arrow_filesystem(f"{ref.path.rstrip('/')}/{sub}")
            with contextlib.suppress(OSError):
                fs.delete_dir(base)

    def create(
        self,
        ref: TableRef,
        schema: T.StructType,
        df: DataFrame | None,
        *,
        partition_by: tuple[str, ...],
        name: str | None,
        description: str | None,
        properties: dict[str, str],
    ) -> WriteResult:
        # delta-rs refuses properties outside the `delta.*` set at creation but accepts them afterwards, so
        # custom properties (Delta allows any TBLPROPERTIES) are set in a second commit.
        known = {k: v for k, v in properties.items() if k.startswith("delta.")} or None
        custom = {k: v for k, v in properties.items() if not k.startswith("delta.")}
        dschema = DeltaSchema.from_json(schema.json())
        parts = list(partition_by) or None
        if df is None:
            DeltaTable.create(
                ref.path,
                schema=dschema,
                mode="error",
                partition_by=parts,
                name=name,
                description=description,
                configuration=known,
            )
            result = WriteResult(version=0, num_rows=0, num_files=0)
        else:
            adds = self._write_parquet(ref, df, partition_by)
            if adds is None:
                data = _nullable_arrow(df.toArrow(), schema)
                write_deltalake(
                    ref.path,
                    data,
                    mode="error",
                    partition_by=parts,
                    name=name,
                    description=description,
                    configuration=known,
                )
                result = WriteResult(version=0, num_rows=data.num_rows, num_files=-1)
            else:
                try:
                    create_table_with_add_actions(
                        ref.path,
                        dschema,
                        adds,
                        mode="error",
                        partition_by=parts,
                        name=name,
                        description=description,
                        configuration=known,
                    )
                except BaseException:
                    self._discard(ref, adds)
                    raise
                result = WriteResult(version=0, num_rows=_rows(adds), num_files=len(adds))
        if custom:
            dt = DeltaTable(ref.path)
            dt.alter.set_table_properties(custom, raise_if_not_exists=False)
            result = WriteResult(version=dt.version(), num_rows=result.num_rows, num_files=result.num_files)
        return result

    def write(
        self,
        ref: TableRef,
        df: DataFrame,
        *,
        mode: Literal["append", "overwrite"],
        state: TableState,
        new_schema: T.StructType | None,
    ) -> WriteResult:
        parts = list(state.partition_columns) or None
        if new_schema is not None:
            # Schema change and data in one commit: only delta-rs's writer updates the metadata with the data.
            schema_mode: Literal["merge", "overwrite"] = "merge" if mode == "append" else "overwrite"
            data = _nullable_arrow(df.toArrow(), new_schema)

            def commit_arrow() -> WriteResult:
                token, props = _tagged()
                write_deltalake(
                    ref.path, data, mode=mode, schema_mode=schema_mode, partition_by=parts, commit_properties=props
                )
                return WriteResult(version=_version_of(ref.path, token), num_rows=data.num_rows, num_files=-1)

            return retry_on_conflict(commit_arrow, table=ref.name, operation=mode, is_conflict=self.is_conflict)
        adds = self._write_parquet(ref, df, state.partition_columns)
        if adds is None:
            data = _nullable_arrow(df.toArrow(), state.schema)

            def commit_fallback() -> WriteResult:
                token, props = _tagged()
                write_deltalake(ref.path, data, mode=mode, partition_by=parts, commit_properties=props)
                return WriteResult(version=_version_of(ref.path, token), num_rows=data.num_rows, num_files=-1)

            return retry_on_conflict(commit_fallback, table=ref.name, operation=mode, is_conflict=self.is_conflict)
        dschema = DeltaSchema.from_json(state.schema.json())

        def commit() -> WriteResult:
            token, props = _tagged()
            dt = DeltaTable(ref.path)
            actions: list[AddAction | RemoveAction] = list(adds)
            dt.create_write_transaction(actions, mode=mode, schema=dschema, partition_by=parts, commit_properties=props)
            return WriteResult(version=_version_of(ref.path, token), num_rows=_rows(adds), num_files=len(adds))

        try:
            return retry_on_conflict(commit, table=ref.name, operation=mode, is_conflict=self.is_conflict)
        except BaseException:
            self._discard(ref, adds)
            raise

    def merge(self, ref: TableRef, df: DataFrame, spec: MergeSpec, state: TableState) -> MergeResult:
        source = df.toArrow()
        check_unique_arrow(ref.name, source, spec.keys)
        target_schema = state.schema
        if spec.schema_evolution:
            known = {f.name for f in target_schema.fields}
            target_schema = T.StructType([*target_schema.fields, *[f for f in df.schema.fields if f.name not in known]])
        # New columns (schema evolution) take the source's fields: then every field must be nullable, as in Delta.
        source = _nullable_arrow(
            source,
            T.StructType([target_schema[c] for c in source.column_names]),
            keep_not_null=not spec.schema_evolution,
        )

        def run() -> MergeResult:
            dt = DeltaTable(ref.path)
            m = dt.merge(source, spec.predicate, source_alias="s", target_alias="t", merge_schema=spec.schema_evolution)
            if spec.when_matched == "update" and spec.update_columns:
                m = m.when_matched_update(updates=spec.update_assignments)
            elif spec.when_matched == "delete":
                m = m.when_matched_delete()
            if spec.when_not_matched == "insert":
                m = m.when_not_matched_insert(updates=spec.insert_assignments)
            if spec.when_not_matched_by_source == "delete":
                m = m.when_not_matched_by_source_delete(spec.by_source_condition)
            metrics = m.execute()
            return MergeResult(
                version=dt.version(),
                num_source_rows=int(metrics.get("num_source_rows", source.num_rows)),
                num_target_rows_inserted=int(metrics.get("num_target_rows_inserted", 0)),
                num_target_rows_updated=int(metrics.get("num_target_rows_updated", 0)),
                num_target_rows_deleted=int(metrics.get("num_target_rows_deleted", 0)),
                num_target_rows_copied=int(metrics.get("num_target_rows_copied", 0)),
            )

        return retry_on_conflict(run, table=ref.name, operation="merge", is_conflict=self.is_conflict)

    # -- maintenance ----------------------------------------------------------------------------------------
    def restore(self, ref: TableRef, version: int) -> RestoreResult:
        def run() -> RestoreResult:
            dt = DeltaTable(ref.path)
            try:
                metrics = dt.restore(version)
            except DeltaError as exc:
                if "missing file" not in str(exc).lower():
                    raise
                missing = str(exc).split("file", 1)[-1].split(" when ")[0].strip()
                raise DataFilesMissingError(ref.name, version, _retention(dt), missing) from None
            return RestoreResult(
                version=dt.version(),
                restored_version=version,
                num_restored_files=int(metrics.get("numRestoredFile", 0)),
                num_removed_files=int(metrics.get("numRemovedFile", 0)),
            )

        return retry_on_conflict(run, table=ref.name, operation="restore", is_conflict=self.is_conflict)

    def optimize(self, ref: TableRef, *, target_size: int | None, z_order_by: tuple[str, ...]) -> OptimizeResult:
        dt = self._open(ref)
        if "deletionVectors" not in set(dt.protocol().reader_features or []):
            # Planned, rewritten and committed by us: safe against concurrent OPTIMIZEs (see _deltars_optimize).
            return _deltars_optimize.optimize(ref, target_size=target_size, z_order_by=z_order_by)
        # Files with deletion vectors hold deleted rows, which a plain rewrite would bring back: delta-rs's own
        # OPTIMIZE, which is not safe against a concurrent OPTIMIZE of the same table (delta-spark writes these).
        before = dt.version()
        if z_order_by:
            # delta-rs records no zOrderBy among the operation's parameters (delta-spark does): kept in the commit's
            # metadata and shown by `history` where Delta shows it.
            recorded = CommitProperties(custom_metadata={_ZORDER_KEY: json.dumps(list(z_order_by))})
            metrics = dt.optimize.z_order(list(z_order_by), target_size=target_size, commit_properties=recorded)
        else:
            metrics = dt.optimize.compact(target_size=target_size)
        after = DeltaTable(ref.path).version()
        return OptimizeResult(
            version=after if after != before else None,
            num_files_added=int(metrics.get("numFilesAdded", 0)),
            num_files_removed=int(metrics.get("numFilesRemoved", 0)),
            files_added_size=_as_dict(metrics.get("filesAdded")),
            files_removed_size=_as_dict(metrics.get("filesRemoved")),
            z_order_by=tuple(z_order_by),
        )

    def vacuum(self, ref: TableRef, *, retention_hours: float, dry_run: bool) -> VacuumResult:
        hours = math.ceil(retention_hours)
        dt = DeltaTable(ref.path)
        # `full`: files no version references (a killed writer's) go too, as Delta's VACUUM deletes every
        # untracked file older than the retention; delta-rs's default looks at the log's tombstones only. It
        # lists tombstones already deleted; report only files that exist, as Delta's VACUUM (which lists storage)
        # does.
        fs, base = arrow_filesystem(ref.path)
        candidates = dt.vacuum(retention_hours=hours, dry_run=True, enforce_retention_duration=False, full=True)
        infos = fs.get_file_info([f"{base}/{unquote(f)}" for f in candidates]) if candidates else []
        present = tuple(sorted(f for f, i in zip(candidates, infos, strict=True) if i.type == pafs.FileType.File))
        if not dry_run and present:
            dt.vacuum(retention_hours=hours, dry_run=False, enforce_retention_duration=False, full=True)
            if isinstance(fs, pafs.LocalFileSystem):  # object stores have no empty folders
                _remove_empty_folders(base, time.time() - max(retention_hours, LIVE_WRITE_HOURS) * 3600)
        return VacuumResult(dry_run=dry_run, retention_hours=retention_hours, files=present)

    def is_conflict(self, exc: BaseException) -> bool:
        if isinstance(exc, CommitFailedError):
            return True
        # delta-rs reports some lost races (e.g. a merge whose snapshot a concurrent commit superseded) as a
        # plain DeltaError whose message names the conflict.
        return isinstance(exc, DeltaError) and "conflict" in str(exc).lower() and "transaction" in str(exc).lower()


def _remove_empty_folders(base: str, cutoff: float) -> None:
    """Remove the `lh-` folders our writes left empty under a local table, if last changed before `cutoff`
    (epoch s): a younger one may be an OPTIMIZE's or an append's about to receive its files. `rmdir` refuses a
    folder that is not empty, so a writer that just put a file there keeps it."""
    with os.scandir(base) as entries:
        folders = [e.path for e in entries if e.name.startswith("lh-") and e.is_dir(follow_symlinks=False)]
    for folder in folders:
        with contextlib.suppress(OSError):  # not empty, or gone (another VACUUM)
            if os.stat(folder).st_mtime < cutoff:
                os.rmdir(folder)


def _retention(dt: DeltaTable) -> str:
    return dt.metadata().configuration.get("delta.deletedFileRetentionDuration") or "interval 1 week (default)"


def _as_dict(value: object) -> dict[str, Any]:
    if isinstance(value, str):
        value = json.loads(value)
    return dict(value) if isinstance(value, dict) else {}


def _tagged() -> tuple[str, CommitProperties]:
    """A token recorded in the commit's metadata, so the version it got can be found exactly afterwards."""
    token = uuid.uuid4().hex
    return token, CommitProperties(custom_metadata={_TOKEN_KEY: token})


def _version_of(path: str, token: str) -> int:
    """The version of the commit carrying `token` (delta-rs's writers do not return it)."""
    dt = DeltaTable(path)
    for h in dt.history(64):
        if h.get(_TOKEN_KEY) == token:
            return int(h["version"])
    return dt.version()  # pragma: no cover - more than 64 commits raced ours; the latest is the best bound


def _rows(adds: list[AddAction]) -> int:
    return sum(json.loads(a.stats).get("numRecords", 0) for a in adds)
