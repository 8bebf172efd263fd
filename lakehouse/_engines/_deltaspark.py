"""The native engine: delta-spark, used when Delta's JVM classes are on the session's classpath.

Every operation is Delta's own (DeltaTable builders, DataFrame writers, SQL for VACUUM DRY RUN and CTAS);
the lakehouse facade in front of it supplies the same validation and errors as with the embedded engine.
"""

from __future__ import annotations

import json
import os
import uuid
from typing import Any, Literal
from urllib.parse import unquote, urlparse

import pyarrow.fs as pafs
from pyspark.errors import AnalysisException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from .._entities import HistoryEntry, MergeResult, OptimizeResult, RestoreResult, VacuumResult, WriteResult
from .._files import data_files
from .._keys import check_unique_spark
from .._log_files import delta_commit_times, local_table_path, read_commit_info
from .._names import TableRef
from .._retry import retry_on_conflict
from .._session import scoped_conf
from .._storage import arrow_filesystem
from .._timetravel import ms_to_utc
from ..errors import DataFilesMissingError, EngineUnavailableError, TableNotFoundError, UnsupportedTableFeatureError
from ._base import Engine, MergeSpec, TableState
from ._base import quote_ident as _q

_CONFLICT_NAMES = (
    "ConcurrentAppendException",
    "ConcurrentDeleteDeleteException",
    "ConcurrentDeleteReadException",
    "ConcurrentTransactionException",
    "ConcurrentWriteException",
    "MetadataChangedException",
    "ProtocolChangedException",
    "DeltaConcurrentModificationException",
)


def _sql_path(path: str) -> str:
    return "delta.`" + path.replace("`", "``") + "`"


def _sql_str(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _relative_to(table_path: str, file_uri: str) -> str:
    """VACUUM DRY RUN lists `file:/lake/t/part-0.parquet`; report `part-0.parquet`, as the other engine does."""
    path = unquote(urlparse(file_uri).path) if "://" in file_uri or file_uri.startswith("file:") else file_uri
    root = unquote(urlparse(table_path).path) if "://" in table_path else table_path
    root = root.rstrip("/") + "/"
    return path[len(root) :] if path.startswith(root) else file_uri


def _arrow_fs(uris: tuple[str, ...] | list[str]) -> tuple[pafs.FileSystem, list[str]]:
    """pyarrow's file system for the files of one table (`arrow_filesystem`, which knows `s3a://` is S3), and
    their paths in it: a local path as it is, an object-store URI as `bucket/key`."""
    fs, _ = arrow_filesystem(uris[0])
    if "://" not in uris[0]:
        return fs, list(uris)
    parsed = [urlparse(u) for u in uris]
    return fs, [p.path if p.scheme == "file" else p.netloc + p.path for p in parsed]


class DeltaSparkEngine(Engine):
    name = "delta-spark"

    def __init__(self, spark: SparkSession) -> None:
        super().__init__(spark)
        try:
            from delta.tables import DeltaTable
        except ImportError as exc:  # pragma: no cover - delta-spark is a dependency
            raise EngineUnavailableError(self.name, f"the delta-spark package is not installed ({exc})") from exc
        self._DeltaTable = DeltaTable
        # Spark Connect has no JVM handle, and its server serves Delta's `DeltaTable` API only with Delta's
        # Connect plugin: there the metadata is read with SQL (DESCRIBE DETAIL / HISTORY) instead.
        try:
            self._classic = spark.sparkContext._jvm is not None
        except Exception:  # noqa: BLE001 - a Connect session refuses `sparkContext`
            self._classic = False

    def _table(self, ref: TableRef) -> Any:
        if not self.exists(ref):
            raise TableNotFoundError(ref.name, ref.path)
        return self._DeltaTable.forPath(self.spark, ref.path)

    def _sql_name(self, ref: TableRef) -> str:
        return "delta.`" + ref.path.replace("`", "``") + "`"

    def _history_df(self, ref: TableRef, limit: int | None) -> DataFrame:
        if self._classic:
            table = self._table(ref)
            history: DataFrame = table.history(limit) if limit else table.history()
            return history
        if not self.exists(ref):
            raise TableNotFoundError(ref.name, ref.path)
        return self.spark.sql(f"DESCRIBE HISTORY {self._sql_name(ref)}" + (f" LIMIT {int(limit)}" if limit else ""))

    def _detail(self, ref: TableRef) -> dict[str, Any]:
        if self._classic:
            return dict(self._table(ref).detail().first().asDict())
        detail = self._detail_sql(ref)
        if detail is None:
            raise TableNotFoundError(ref.name, ref.path)
        return detail

    def _detail_sql(self, ref: TableRef) -> dict[str, Any] | None:
        """`DESCRIBE DETAIL` of a Delta table, or None when the path holds none (one query answers both)."""
        try:
            row = self.spark.sql(f"DESCRIBE DETAIL {self._sql_name(ref)}").first()
        except AnalysisException:  # no such path, or not a Delta table
            return None
        return dict(row.asDict()) if row is not None and row["format"] == "delta" else None

    def _delta_log(self, ref: TableRef) -> Any | None:
        """Delta's own DeltaLog for the table through py4j (metadata in milliseconds, no Spark job), or None
        under Spark Connect, where the slower DataFrame calls below are used instead."""
        try:
            jvm = self.spark.sparkContext._jvm
            if jvm is None:
                return None
            return jvm.org.apache.spark.sql.delta.DeltaLog.forTable(self.spark._jsparkSession, ref.path)
        except Exception:  # noqa: BLE001 - Spark Connect has no sparkContext
            return None

    def _snapshot(self, log: Any, version: int | None) -> Any:
        jvm: Any = self.spark.sparkContext._jvm  # a DeltaLog exists, so this is a classic session with a JVM
        none = jvm.scala.Option.empty()
        return log.update(False, none, none) if version is None else log.getSnapshotAt(version, none, none, False)

    def _latest_version(self, ref: TableRef) -> int:
        log = self._delta_log(ref)
        if log is not None:
            return int(self._snapshot(log, None).version())
        newest = self._history_df(ref, 1).select("version").first()
        if newest is None:  # pragma: no cover - a Delta table has at least its version 0
            raise TableNotFoundError(ref.name, ref.path)
        return int(newest[0])

    def _last_commit(self, ref: TableRef) -> dict[str, Any]:
        """The newest commit's version and commitInfo (operationMetrics), read from its commit file."""
        version = self._latest_version(ref)
        local = local_table_path(ref.path)
        if local is not None:
            info = read_commit_info(os.path.join(local, "_delta_log"), version)
            if info is not None:
                return {"version": version, **info}
        newest = self._history_df(ref, 1).first()
        return {} if newest is None else dict(newest.asDict(recursive=True))

    # -- metadata -------------------------------------------------------------------------------------------
    def exists(self, ref: TableRef) -> bool:
        if self._classic:
            return bool(self._DeltaTable.isDeltaTable(self.spark, ref.path))
        return self._detail_sql(ref) is not None

    def state(self, ref: TableRef, version: int | None = None) -> TableState:
        log = self._delta_log(ref)
        if log is None:
            return self._state_without_jvm(ref, version)
        if not self.exists(ref):
            raise TableNotFoundError(ref.name, ref.path)
        snapshot = self._snapshot(log, version)
        meta = json.loads(snapshot.metadata().json())["metaData"]
        return TableState(
            version=int(snapshot.version()),
            schema=T.StructType.fromJson(json.loads(meta["schemaString"])),
            partition_columns=tuple(meta.get("partitionColumns") or ()),
            name=meta.get("name"),
            description=meta.get("description"),
            properties=dict(meta.get("configuration") or {}),
            created_ms=meta.get("createdTime"),
        )

    def _state_without_jvm(self, ref: TableRef, version: int | None) -> TableState:
        detail = self._detail(ref)
        latest = self._latest_version(ref)
        v = latest if version is None else version
        schema = self.spark.read.format("delta").option("versionAsOf", v).load(ref.path).schema
        created = detail.get("createdAt")
        return TableState(
            version=v,
            schema=schema,
            partition_columns=tuple(detail.get("partitionColumns") or ()),
            name=detail.get("name"),
            description=detail.get("description"),
            properties=dict(detail.get("properties") or {}),
            created_ms=int(created.timestamp() * 1000) if created is not None else None,
        )

    def _history_rows(self, ref: TableRef, limit: int | None) -> list[dict[str, Any]]:
        h = self._history_df(ref, limit)
        # Spark hands timestamps to Python in the process's local zone: take epoch millis instead.
        h = h.withColumn("__ms", F.unix_millis(F.col("timestamp")))
        return [r.asDict(recursive=True) for r in h.collect()]

    def commits(self, ref: TableRef) -> list[tuple[int, int]]:
        local = local_table_path(ref.path)
        if local is None:
            return sorted((int(r["version"]), int(r["__ms"])) for r in self._history_rows(ref, None))
        # On local disk the commit files say it without a Spark job.
        return delta_commit_times(local, self.state(ref).properties)

    def history(self, ref: TableRef, limit: int | None) -> list[HistoryEntry]:
        return [
            HistoryEntry(
                version=int(r["version"]),
                timestamp=ms_to_utc(int(r["__ms"])),
                operation=str(r.get("operation") or ""),
                parameters=dict(r.get("operationParameters") or {}),
                metrics=dict(r.get("operationMetrics") or {}),
                engine=r.get("engineInfo"),
            )
            for r in sorted(self._history_rows(ref, limit), key=lambda r: -int(r["version"]))
        ]

    # -- read / write ---------------------------------------------------------------------------------------
    def read(self, ref: TableRef, version: int | None) -> DataFrame:
        reader = self.spark.read.format("delta")
        if version is not None:
            self._check_files_exist(ref, version)
            reader = reader.option("versionAsOf", version)
        return reader.load(ref.path)

    def _check_files_exist(self, ref: TableRef, version: int) -> None:
        """Spark reads lazily: a version whose files VACUUM removed would fail only at the first action, with
        FILE_NOT_EXIST. Check the version's files now, to raise the typed error where the read is asked for."""
        try:
            files = data_files(ref.name, ref.path, version)
        except UnsupportedTableFeatureError:
            return  # deletion vectors etc.: the files alone do not say; Spark's own error stands
        if not files.files:
            return
        fs, paths = _arrow_fs(files.files)
        for f, info in zip(files.files, fs.get_file_info(paths), strict=True):
            if info.type == pafs.FileType.NotFound:
                raise DataFilesMissingError(ref.name, version, files.retention, f)

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
        cols = ", ".join(f"{_q(f.name)} {f.dataType.simpleString()}" for f in schema.fields)
        clauses = ""
        if partition_by:
            clauses += f" PARTITIONED BY ({', '.join(_q(p) for p in partition_by)})"
        if description:
            clauses += f" COMMENT {_sql_str(description)}"
        if properties:
            props = ", ".join(f"{_sql_str(k)} = {_sql_str(v)}" for k, v in properties.items())
            clauses += f" TBLPROPERTIES ({props})"
        if df is None:
            self.spark.sql(f"CREATE TABLE {_sql_path(ref.path)} ({cols}) USING DELTA{clauses}")
            return WriteResult(version=0, num_rows=0, num_files=0)
        view = f"__lakehouse_src_{uuid.uuid4().hex}"
        df.select([F.col(_q(f.name)).cast(f.dataType) for f in schema.fields]).createOrReplaceTempView(view)
        try:
            self.spark.sql(f"CREATE TABLE {_sql_path(ref.path)} USING DELTA{clauses} AS SELECT * FROM {view}")
        finally:
            self.spark.catalog.dropTempView(view)
        return self._write_result(ref)

    def _write_result(self, ref: TableRef) -> WriteResult:
        last = self._last_commit(ref)
        metrics = last.get("operationMetrics") or {}
        return WriteResult(
            version=int(last["version"]),
            num_rows=int(metrics.get("numOutputRows", 0)),
            num_files=int(metrics.get("numFiles", 0)),
        )

    def write(
        self,
        ref: TableRef,
        df: DataFrame,
        *,
        mode: Literal["append", "overwrite"],
        state: TableState,
        new_schema: T.StructType | None,
    ) -> WriteResult:
        writer = df.write.format("delta").mode(mode)
        if new_schema is not None:
            writer = writer.option("mergeSchema" if mode == "append" else "overwriteSchema", "true")

        def run() -> WriteResult:
            writer.save(ref.path)
            return self._write_result(ref)

        return retry_on_conflict(run, table=ref.name, operation=mode, is_conflict=self.is_conflict)

    def merge(self, ref: TableRef, df: DataFrame, spec: MergeSpec, state: TableState) -> MergeResult:
        check_unique_spark(ref.name, df, spec.keys)

        updates = spec.when_matched == "update" and bool(spec.update_columns)
        if not (
            updates
            or spec.when_matched == "delete"
            or spec.when_not_matched == "insert"
            or spec.when_not_matched_by_source == "delete"
        ):
            # Every clause is "ignore": Delta refuses a MERGE without WHEN clauses; nothing to change, no commit.
            return MergeResult(
                version=self._latest_version(ref),
                num_source_rows=df.count(),
                num_target_rows_inserted=0,
                num_target_rows_updated=0,
                num_target_rows_deleted=0,
                num_target_rows_copied=0,
            )

        def run() -> MergeResult:
            if not self._classic:
                self._merge_sql(ref, df, spec)
                return self._merge_result(ref)
            m = self._table(ref).alias("t").merge(df.alias("s"), spec.predicate)
            if spec.schema_evolution:
                m = m.withSchemaEvolution()
            if spec.when_matched == "update" and spec.update_columns:
                m = m.whenMatchedUpdate(set=spec.update_assignments)
            elif spec.when_matched == "delete":
                m = m.whenMatchedDelete()
            if spec.when_not_matched == "insert":
                m = m.whenNotMatchedInsert(values=spec.insert_assignments)
            if spec.when_not_matched_by_source == "delete":
                m = m.whenNotMatchedBySourceDelete(condition=spec.by_source_condition)
            m.execute()
            return self._merge_result(ref)

        return retry_on_conflict(run, table=ref.name, operation="merge", is_conflict=self.is_conflict)

    def _merge_sql(self, ref: TableRef, df: DataFrame, spec: MergeSpec) -> None:
        """The merge as Delta's `MERGE INTO` statement: what a Spark Connect session (no `DeltaTable` API without
        Delta's Connect plugin on the server) sends, with the same clauses the builder above makes."""
        clauses = []
        if spec.when_matched == "update" and spec.update_columns:
            sets = ", ".join(f"t.{c} = {v}" for c, v in spec.update_assignments.items())
            clauses.append(f"WHEN MATCHED THEN UPDATE SET {sets}")
        elif spec.when_matched == "delete":
            clauses.append("WHEN MATCHED THEN DELETE")
        if spec.when_not_matched == "insert":
            cols, vals = zip(*spec.insert_assignments.items(), strict=True)
            clauses.append(f"WHEN NOT MATCHED THEN INSERT ({', '.join(cols)}) VALUES ({', '.join(vals)})")
        if spec.when_not_matched_by_source == "delete":
            condition = "" if spec.by_source_condition is None else f" AND ({spec.by_source_condition})"
            clauses.append(f"WHEN NOT MATCHED BY SOURCE{condition} THEN DELETE")
        view = f"__lakehouse_src_{uuid.uuid4().hex}"
        df.createOrReplaceTempView(view)
        evolution = " WITH SCHEMA EVOLUTION" if spec.schema_evolution else ""
        try:
            self.spark.sql(
                f"MERGE{evolution} INTO {self._sql_name(ref)} AS t USING {view} AS s ON {spec.predicate} "
                + " ".join(clauses)
            ).collect()
        finally:
            self.spark.catalog.dropTempView(view)

    def _merge_result(self, ref: TableRef) -> MergeResult:
        last = self._last_commit(ref)
        metrics = last.get("operationMetrics") or {}
        return MergeResult(
            version=int(last["version"]),
            num_source_rows=int(metrics.get("numSourceRows", 0)),
            num_target_rows_inserted=int(metrics.get("numTargetRowsInserted", 0)),
            num_target_rows_updated=int(metrics.get("numTargetRowsUpdated", 0)),
            num_target_rows_deleted=int(metrics.get("numTargetRowsDeleted", 0)),
            num_target_rows_copied=int(metrics.get("numTargetRowsCopied", 0)),
        )

    # -- maintenance ----------------------------------------------------------------------------------------
    def restore(self, ref: TableRef, version: int) -> RestoreResult:
        if self._classic:
            row = self._table(ref).restoreToVersion(version).first().asDict()
        else:  # Spark Connect: Delta's RESTORE statement
            if not self.exists(ref):
                raise TableNotFoundError(ref.name, ref.path)
            restored = self.spark.sql(f"RESTORE TABLE {self._sql_name(ref)} TO VERSION AS OF {int(version)}").first()
            row = restored.asDict() if restored is not None else {}
        return RestoreResult(
            version=self._latest_version(ref),
            restored_version=version,
            num_restored_files=int(row.get("num_restored_files", 0)),
            num_removed_files=int(row.get("num_removed_files", 0)),
        )

    def optimize(self, ref: TableRef, *, target_size: int | None, z_order_by: tuple[str, ...]) -> OptimizeResult:
        settings = {"spark.databricks.delta.optimize.maxFileSize": str(target_size)} if target_size else {}

        def run() -> tuple[int, dict[str, Any]]:
            # Delta refuses a compaction whose files a concurrent commit removed first
            # (ConcurrentDeleteDeleteException / ConcurrentDeleteReadException): re-plan from the newer version.
            before = self._latest_version(ref)
            with scoped_conf(self.spark, **settings):
                if self._classic:
                    opt = self._table(ref).optimize()
                    out = opt.executeZOrderBy(*z_order_by) if z_order_by else opt.executeCompaction()
                else:  # Spark Connect: Delta's OPTIMIZE statement
                    if not self.exists(ref):
                        raise TableNotFoundError(ref.name, ref.path)
                    zorder = f" ZORDER BY ({', '.join(_q(c) for c in z_order_by)})" if z_order_by else ""
                    out = self.spark.sql(f"OPTIMIZE {self._sql_name(ref)}{zorder}")
            return before, out.first().asDict(recursive=True).get("metrics") or {}

        before, metrics = retry_on_conflict(run, table=ref.name, operation="optimize", is_conflict=self.is_conflict)
        after = self._latest_version(ref)
        changed = int(metrics.get("numFilesAdded", 0)) or int(metrics.get("numFilesRemoved", 0))
        return OptimizeResult(
            version=after if after != before and changed else None,
            num_files_added=int(metrics.get("numFilesAdded", 0)),
            num_files_removed=int(metrics.get("numFilesRemoved", 0)),
            files_added_size=dict(metrics.get("filesAdded") or {}),
            files_removed_size=dict(metrics.get("filesRemoved") or {}),
            z_order_by=tuple(z_order_by),
        )

    def vacuum(self, ref: TableRef, *, retention_hours: float, dry_run: bool) -> VacuumResult:
        sql = f"VACUUM {_sql_path(ref.path)} RETAIN {retention_hours:g} HOURS"
        # The retention check was made by the facade, with the same rule for both engines.
        with scoped_conf(self.spark, **{"spark.databricks.delta.retentionDurationCheck.enabled": "false"}):
            listed = [r[0] for r in self.spark.sql(sql + " DRY RUN").collect()]
            files = tuple(sorted(_relative_to(ref.path, f) for f in listed))
            if not dry_run:
                self.spark.sql(sql).collect()
        return VacuumResult(dry_run=dry_run, retention_hours=retention_hours, files=files)

    def is_conflict(self, exc: BaseException) -> bool:
        text = f"{type(exc).__name__} {exc}"
        return any(n in text for n in _CONFLICT_NAMES)
