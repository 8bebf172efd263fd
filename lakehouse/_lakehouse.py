"""The public face of the lakehouse: Delta tables by name under a root, computed on with Spark.

Longer than 400 lines on purpose: `Lakehouse` is the one public class, one method per Delta operation
(create, write, merge, read, history, restore, optimize, vacuum, ...), each validating its arguments once
before one engine call. The work itself lives elsewhere: names in `_names`, schema rules in `_schema`, time
travel in `_timetravel`, the engines in `_engines`; splitting the class would scatter its public surface.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import shutil
import time
from collections.abc import Iterable, Sequence
from datetime import tzinfo
from typing import Any, Literal, cast

from deltalake.exceptions import DeltaError
from pyspark.errors import PySparkException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from . import _schema, _storage
from ._engines import Engine, MergeSpec, choose_engine
from ._engines._base import quote_ident
from ._entities import (
    HistoryEntry,
    MergeResult,
    OptimizeResult,
    RestoreResult,
    TableInfo,
    VacuumResult,
    WriteResult,
)
from ._files import DataFiles, data_files
from ._frames import to_spark_dataframe
from ._log import diagnose
from ._log_covering import holding
from ._log_files import abandoned_log_files, local_table_path
from ._maintenance import LIVE_WRITE_HOURS
from ._maintenance import retention_hours as retention_hours_of
from ._names import TableRef, find_tables, is_uri, normalise_root, resolve
from ._session import ROOT_CONF, delta_classes_loaded, lake_catalog_enabled, local_spark
from ._settings import settings
from ._storage import arrow_filesystem
from ._timetravel import TimestampLike, check_version, ms_to_utc, session_zone, to_utc, version_at
from .errors import (
    ArgumentTypeError,
    InvalidArgumentError,
    LakehouseError,
    NullConstraintError,
    RetentionPeriodTooShortError,
    SchemaMismatchError,
    TableAlreadyExistsError,
    TableNotFoundError,
    VersionNotFoundError,
)

_log = logging.getLogger(__name__)

SYSTEM_NAMESPACES = frozenset({"mlflow"})
"""Namespaces the platform writes (MLflow's tracking and registry tables); `list_tables()` leaves them out."""

_MATCHED = ("update", "delete", "ignore")
_NOT_MATCHED = ("insert", "ignore")
_BY_SOURCE = ("delete", "ignore")


class Lakehouse:
    """Delta tables addressed by name under `root`, read and written as Spark DataFrames.

    `root` is a local folder (created if missing) or a URI the engines support; it defaults to
    `$LAKEHOUSE_ROOT`. `"features.customers"` names `<root>/features/customers`; an absolute path or URI
    addresses a table anywhere. `spark` defaults to a local session (see `local_spark`), started on first use
    with engine="deltalake" (which needs none for history, OPTIMIZE, VACUUM, RESTORE or listing). `engine` is
    "auto" (delta-spark when Delta's classes are on the classpath, else deltalake), "deltalake" or
    "delta-spark"; `$LAKEHOUSE_ENGINE` sets the default.

    Example:
        >>> lh = Lakehouse("/tmp/lake")
        >>> lh.create_table("sales.orders", spark_df, partition_by=["day"], description="one row per order")
        >>> lh.read("sales.orders", version=0).count()
    """

    def __init__(
        self,
        root: str | os.PathLike[str] | None = None,
        *,
        spark: SparkSession | None = None,
        engine: str | None = None,
    ) -> None:
        root = root if root is not None else settings().root
        if root is None:
            raise InvalidArgumentError("root", "no lakehouse root: pass Lakehouse(root=...) or set $LAKEHOUSE_ROOT")
        self.root = normalise_root(root)
        if not is_uri(self.root):
            os.makedirs(self.root, exist_ok=True)
        self._spark: SparkSession | None = None
        if spark is not None:
            self._use_session(spark)
        if spark is None and (engine or settings().engine).strip().lower() == "deltalake":
            # JVM-less: the deltalake engine starts Spark only for what returns or takes a DataFrame.
            chosen = choose_engine(lambda: self.spark, engine, self.root)
        else:
            chosen = choose_engine(self.spark, engine, self.root)
        self._engine: Engine = cast(Engine, _Diagnosed(chosen))

    @property
    def spark(self) -> SparkSession:
        """The Spark session (`local_spark()` unless one was passed); with engine="deltalake" it starts on first
        use, so history, OPTIMIZE, VACUUM, restore and the like run without a JVM."""
        if self._spark is None:
            self._use_session(local_spark())
        assert self._spark is not None
        return self._spark

    def _use_session(self, spark: SparkSession) -> None:
        self._spark = spark
        if lake_catalog_enabled(spark):
            # This session's lake: `spark.table("ns.t")` / SQL names resolve under this root from now on.
            spark.conf.set(ROOT_CONF, self.root)

    def _started_session(self) -> SparkSession | None:
        """The session if this lakehouse started or was given one, else the process's active one, else None
        (and none is started)."""
        if self._spark is None and SparkSession.getActiveSession() is not None:
            return self.spark
        return self._spark

    def _zone(self) -> tzinfo:
        """The session time zone, in which naive time-travel timestamps are read (as Spark's timestampAsOf); UTC
        (what `local_spark` sets) when no session runs."""
        session = self._started_session()
        return session_zone(session.conf.get("spark.sql.session.timeZone", None) if session is not None else None)

    @property
    def engine(self) -> str:
        """The Delta engine in use: "deltalake" or "delta-spark"."""
        return self._engine.name

    def __repr__(self) -> str:
        return f"Lakehouse(root={self.root!r}, engine={self.engine!r})"

    # -- addressing -----------------------------------------------------------------------------------------
    def table_path(self, name: str | os.PathLike[str]) -> str:
        """Where table `name` lives (whether or not it exists)."""
        return resolve(self.root, name).path

    def exists(self, name: str | os.PathLike[str]) -> bool:
        return self._engine.exists(resolve(self.root, name))

    def _existing(self, name: str | os.PathLike[str]) -> TableRef:
        ref = resolve(self.root, name)
        if not self._engine.exists(ref):
            raise TableNotFoundError(ref.name, ref.path, [t for t in self._table_names()])
        return ref

    # -- create / describe / list / drop --------------------------------------------------------------------
    def create_table(
        self,
        name: str,
        df: Any = None,
        *,
        schema: T.StructType | str | None = None,
        partition_by: Sequence[str] | str | None = None,
        description: str | None = None,
        properties: dict[str, str] | None = None,
        exists_ok: bool = False,
    ) -> WriteResult:
        """Create a Delta table from a DataFrame (its rows are version 0) or from a schema (empty).

        `schema` is a StructType or a DDL string ("id long, name string"). Columns are made nullable, as
        Delta does. With `exists_ok`, an existing table is left untouched and its latest version returned.

        Raises:
            TableAlreadyExistsError: the table exists and `exists_ok` is False.
            SchemaMismatchError: a column without a type (all nulls), or duplicate names.
            ValueError: neither or both of `df` and `schema`, or unknown partition columns.
        """
        ref = resolve(self.root, name)
        if (df is None) == (schema is None):
            raise InvalidArgumentError(
                "df/schema", "create_table needs exactly one of df= (a DataFrame) or schema= (StructType or DDL)"
            )
        if self._engine.exists(ref):
            if exists_ok:
                st = self._engine.state(ref)
                return WriteResult(version=st.version, num_rows=0, num_files=0)
            raise TableAlreadyExistsError(ref.name, ref.path)
        sdf = self._to_spark(df, "df") if df is not None else None
        if sdf is not None:
            struct = sdf.schema
        elif isinstance(schema, str):
            struct = _schema.parse_ddl(ref.name, schema)
        elif isinstance(schema, T.StructType):
            struct = schema
        else:
            raise ArgumentTypeError(
                "schema", f"schema must be a StructType or a DDL string, got {type(schema).__name__}"
            )
        struct = _schema.as_nullable(struct)
        _schema.check_new_schema(ref.name, struct)
        parts = _names_list(partition_by, "partition_by")
        unknown = [p for p in parts if p not in struct.names]
        if unknown:
            raise InvalidArgumentError(
                "partition_by", f"partition_by column(s) {unknown} are not in the schema; columns: {struct.names}"
            )
        props = {str(k): str(v) for k, v in (properties or {}).items()}
        if sdf is not None:
            sdf = sdf.select([F.col(f"`{c}`") for c in struct.names])
        named = not is_uri(ref.name) and "/" not in ref.name
        result = self._engine.create(
            ref,
            struct,
            sdf,
            partition_by=tuple(parts),
            name=ref.name if named else None,
            description=description,
            properties=props,
        )
        if named and self._registers_tables():
            self._register(ref)
        return result

    def data_files(self, name: str | os.PathLike[str], version: int | None = None) -> DataFiles:
        """The Parquet files of `name` at `version` (default latest), for readers that read them directly.

        No data is read: the list, typed partition values and row counts come from the Delta log.

        Raises:
            UnsupportedTableFeatureError: the files alone are not the rows (deletion vectors, column mapping).
        """
        ref = self._existing(name)
        version = self._engine.state(ref).version if version is None else self._checked_version(ref, version)
        return data_files(ref.name, ref.path, version)

    # -- names in the session's catalog ---------------------------------------------------------------------
    def _registers_tables(self) -> bool:
        """True when tables must be registered in the session's metastore to be found by name.

        With lakehouse's lake catalog (local sessions) names resolve to paths at lookup time and nothing is
        registered. A session with Delta but without it (a cluster, Databricks) gets external Delta tables.
        """
        session = self._started_session()
        return session is not None and not lake_catalog_enabled(session) and delta_classes_loaded(session)

    def _register(self, ref: TableRef) -> str:
        *ns, table = ref.name.split(".")
        ident = ".".join(quote_ident(p) for p in (ns or [self.spark.catalog.currentDatabase()]) + [table])
        if ns:
            self.spark.sql(f"CREATE SCHEMA IF NOT EXISTS {'.'.join(quote_ident(p) for p in ns)}")
        location = "'" + ref.path.replace("\\", "\\\\").replace("'", "\\'") + "'"
        self.spark.sql(f"CREATE TABLE IF NOT EXISTS {ident} USING DELTA LOCATION {location}")
        return ident

    def register_tables(self, namespace: str | None = None) -> list[str]:
        """Register the lake's tables in the session's metastore as external Delta tables; return their names.

        For a cluster or Databricks session, where tables by name come from the metastore: tables that
        `create_table` makes are registered at once; this catches up on the ones other processes made (e.g. the
        JVM-less MLflow store's `mlflow.*`). Idempotent. With the lake catalog (local sessions) there is
        nothing to register and this returns [].
        """
        if lake_catalog_enabled(self.spark):
            return []
        if namespace is None:
            names = self._table_names()
        else:
            names = [n for n in self._table_names() if n.startswith(namespace.rstrip(".") + ".")]
        return [self._register(resolve(self.root, n)) for n in names]

    def describe(self, name: str | os.PathLike[str]) -> TableInfo:
        """Name, path, latest version, columns, partitioning, description and properties of a table."""
        ref = self._existing(name)
        st = self._engine.state(ref)
        return TableInfo(
            name=ref.name,
            path=ref.path,
            version=st.version,
            description=st.description,
            partition_columns=st.partition_columns,
            columns=tuple(_schema.fields(st.schema)),
            properties=st.properties,
            created_at=ms_to_utc(st.created_ms) if st.created_ms else None,
        )

    def schema(self, name: str | os.PathLike[str], *, version: int | None = None) -> T.StructType:
        ref = self._existing(name)
        return self._engine.state(ref, None if version is None else self._checked_version(ref, version)).schema

    def list_tables(self, namespace: str | None = None) -> list[TableInfo]:
        """The Delta tables under the root, sorted by name, with their descriptions and latest versions.

        Without `namespace`: the users' own tables, leaving out the namespaces the platform keeps for itself
        (`mlflow`: the tracking and registry tables; folders starting with `_`, e.g. the feature store's
        `_feature_store`). With it: the tables in that namespace only, e.g. `list_tables("mlflow")`.
        """
        names = self._table_names(include_private=namespace is not None and namespace.startswith("_"))
        if namespace is None:
            chosen = [n for n in names if n.split(".")[0] not in SYSTEM_NAMESPACES]
        else:
            chosen = [n for n in names if n.startswith(namespace.rstrip(".") + ".")]
        return [self.describe(n) for n in chosen]

    def _table_names(self, *, include_private: bool = False) -> list[str]:
        return find_tables(self.root, include_private=include_private)

    def drop_table(self, name: str | os.PathLike[str]) -> None:
        """Delete a table and all its files and history. Irreversible."""
        ref = self._existing(name)
        if is_uri(ref.path):
            fs, base = arrow_filesystem(ref.path)
            fs.delete_dir(base)
        else:
            shutil.rmtree(ref.path)

    # -- read / time travel ---------------------------------------------------------------------------------
    def latest_version(self, name: str | os.PathLike[str]) -> int:
        return self._engine.state(self._existing(name)).version

    def version_at(
        self, name: str | os.PathLike[str], timestamp: TimestampLike, *, allow_after_last: bool = False
    ) -> int:
        """The latest version committed at or before `timestamp` (naive = session time zone), as timestampAsOf.

        Raises TimestampOutOfRangeError before the first commit, and after the last one unless
        `allow_after_last` (then the latest version: "what was known at that time", as RESTORE resolves it)."""
        ref = self._existing(name)
        when = to_utc(timestamp, zone=self._zone())
        return version_at(ref.name, self._engine.commits(ref), when, can_return_last=allow_after_last)

    def read(
        self,
        name: str | os.PathLike[str],
        *,
        version: int | None = None,
        timestamp: TimestampLike | None = None,
        versionAsOf: int | None = None,
        timestampAsOf: TimestampLike | None = None,
    ) -> DataFrame:
        """The table as a Spark DataFrame: latest, at `version`, or as of `timestamp` (naive = session time zone).

        Raises:
            TableNotFoundError, VersionNotFoundError (with the available range), TimestampOutOfRangeError,
            DataFilesMissingError (the version's files were vacuumed).
        """
        version = _one_of("version", version, "versionAsOf", versionAsOf)
        timestamp = _one_of("timestamp", timestamp, "timestampAsOf", timestampAsOf)
        if version is not None and timestamp is not None:
            raise InvalidArgumentError("version/timestamp", "pass either version= or timestamp=, not both")
        ref = self._existing(name)
        if timestamp is not None:
            version = version_at(ref.name, self._engine.commits(ref), to_utc(timestamp, zone=self._zone()))
        elif version is not None:
            version = self._checked_version(ref, version)
        return self._engine.read(ref, version)

    def _checked_version(self, ref: TableRef, version: int) -> int:
        latest = self._engine.state(ref).version
        if isinstance(version, int) and not isinstance(version, bool) and 0 <= version <= latest:
            try:
                self._engine.state(ref, version)
                return version
            except (DeltaError, OSError):  # its log entry was cleaned up
                pass
        commits = self._engine.commits(ref)
        earliest = commits[0][0] if commits else latest
        check_version(ref.name, version, earliest, latest)
        raise VersionNotFoundError(ref.name, version, earliest, latest)

    def history(self, name: str | os.PathLike[str], *, limit: int | None = None) -> list[HistoryEntry]:
        """Commits, newest first: version, UTC timestamp, operation, its parameters and metrics."""
        if limit is not None and (not isinstance(limit, int) or limit < 1):
            raise InvalidArgumentError("limit", f"limit must be a positive int or None, got {limit!r}")
        return self._engine.history(self._existing(name), limit)

    # -- write ----------------------------------------------------------------------------------------------
    def append(self, name: str | os.PathLike[str], df: Any, *, schema_evolution: bool = False) -> WriteResult:
        """Append rows. Columns are matched by name; missing nullable columns become null; types must match
        (lossless widening such as int -> long is allowed). New columns need `schema_evolution=True`.

        Raises SchemaMismatchError (listing expected and received columns); nothing is written then.
        """
        return self._write(name, df, mode="append", schema_evolution=schema_evolution)

    def overwrite(self, name: str | os.PathLike[str], df: Any, *, overwrite_schema: bool = False) -> WriteResult:
        """Replace all rows in one commit (earlier versions stay readable). With `overwrite_schema=True` the
        table takes the DataFrame's schema (partitioning is kept); otherwise the schema rules of `append`."""
        return self._write(name, df, mode="overwrite", schema_evolution=False, overwrite_schema=overwrite_schema)

    def _write(
        self,
        name: str | os.PathLike[str],
        df: Any,
        *,
        mode: Literal["append", "overwrite"],
        schema_evolution: bool,
        overwrite_schema: bool = False,
    ) -> WriteResult:
        ref = self._existing(name)
        sdf = self._to_spark(df, "df")
        st = self._engine.state(ref)
        if overwrite_schema:
            new = _schema.as_nullable(sdf.schema)
            _schema.check_new_schema(ref.name, new)
            missing = [p for p in st.partition_columns if p not in new.names]
            if missing:
                raise SchemaMismatchError(
                    ref.name,
                    _schema.fields(st.schema),
                    _schema.fields(sdf.schema),
                    [f"partition column {p!r} is missing" for p in missing],
                    hint="keep the partition columns in the DataFrame",
                )
            return self._engine.write(
                ref, sdf.select([F.col(f"`{c}`") for c in new.names]), mode=mode, state=st, new_schema=new
            )
        plan = _schema.plan_write(
            ref.name, st.schema, sdf.schema, schema_evolution=schema_evolution, require_columns=st.partition_columns
        )
        target = plan.merged_schema
        aligned = plan.apply(sdf)
        self._check_not_null(ref, aligned, st.schema)
        present = set(plan.columns)
        aligned = aligned.select(
            [
                F.col(f"`{f.name}`") if f.name in present else F.lit(None).cast(f.dataType).alias(f.name)
                for f in target.fields
            ]
        )
        return self._engine.write(ref, aligned, mode=mode, state=st, new_schema=target if plan.new_fields else None)

    def merge(
        self,
        name: str | os.PathLike[str],
        df: Any,
        *,
        on: str | Sequence[str],
        when_matched: Literal["update", "delete", "ignore"] = "update",
        when_not_matched: Literal["insert", "ignore"] = "insert",
        when_not_matched_by_source: Literal["delete", "ignore"] = "ignore",
        not_matched_by_source_condition: str | None = None,
        update_columns: Sequence[str] | None = None,
        schema_evolution: bool = False,
    ) -> MergeResult:
        """Upsert `df` into the table by the key columns `on`, in one commit.

        Matched rows are updated (only `update_columns`, default: every non-key column the source carries;
        target columns the source lacks keep their values), deleted, or left alone; unmatched source rows are
        inserted (columns the source lacks are null) or ignored; target rows absent from the source can be
        deleted, all of them or only those `not_matched_by_source_condition` holds for (a SQL predicate over the
        target's columns, qualified `t.`, as Delta's `whenNotMatchedBySourceDelete(condition)`; e.g. replacing
        one day of a table in one commit: `"t.day = DATE '2026-01-02'"`). A key that occurs twice in the source
        is refused, never resolved by an arbitrary winner.

        Raises:
            DuplicateKeyError: the source repeats a key (the message names examples); nothing is written.
            SchemaMismatchError: unknown, mistyped or missing key columns.
            ConcurrentModificationError: lost the race against concurrent commits after retries.
        """
        keys = _names_list(on, "on")
        if not keys:
            raise InvalidArgumentError("on", "on= must name at least one key column")
        for arg, value, allowed in (
            ("when_matched", when_matched, _MATCHED),
            ("when_not_matched", when_not_matched, _NOT_MATCHED),
            ("when_not_matched_by_source", when_not_matched_by_source, _BY_SOURCE),
        ):
            if value not in allowed:
                raise InvalidArgumentError(arg, f"{arg}={value!r} is not one of {', '.join(allowed)}")
        if not_matched_by_source_condition is not None:
            if not isinstance(not_matched_by_source_condition, str) or not not_matched_by_source_condition.strip():
                raise InvalidArgumentError(
                    "not_matched_by_source_condition",
                    f"not_matched_by_source_condition={not_matched_by_source_condition!r}: give a SQL predicate over "
                    "the target's columns, e.g. \"t.day = DATE '2026-01-02'\"",
                )
            if when_not_matched_by_source != "delete":
                raise InvalidArgumentError(
                    "not_matched_by_source_condition",
                    "not_matched_by_source_condition limits when_not_matched_by_source='delete': set that too",
                )
        ref = self._existing(name)
        sdf = self._to_spark(df, "df")
        st = self._engine.state(ref)
        plan = _schema.plan_write(
            ref.name, st.schema, sdf.schema, schema_evolution=schema_evolution, require_columns=tuple(keys)
        )
        if not_matched_by_source_condition is not None:
            self._check_target_predicate(ref, st.schema, not_matched_by_source_condition)
        missing_keys = [k for k in keys if k not in st.schema.names]
        if missing_keys:
            raise InvalidArgumentError(
                "on", f"merge key(s) {missing_keys} are not columns of table {ref.name!r}: {st.schema.names}"
            )
        aligned = plan.apply(sdf)
        self._check_not_null(ref, aligned, st.schema)
        non_keys = [c for c in plan.columns if c not in keys]
        if update_columns is not None:
            update = _names_list(update_columns, "update_columns")
            bad = [c for c in update if c not in non_keys]
            if bad:
                raise InvalidArgumentError(
                    "update_columns", f"update_columns {bad} must be non-key columns of the source: {non_keys}"
                )
        else:
            update = non_keys
        spec = MergeSpec(
            keys=tuple(keys),
            update_columns=tuple(update),
            insert_columns=plan.columns,
            when_matched=when_matched,
            when_not_matched=when_not_matched,
            when_not_matched_by_source=when_not_matched_by_source,
            schema_evolution=bool(plan.new_fields),
            by_source_condition=not_matched_by_source_condition,
        )
        return self._engine.merge(ref, aligned, spec, st)

    def _check_target_predicate(self, ref: TableRef, schema: T.StructType, condition: str) -> None:
        """Refuse a predicate Spark cannot parse or resolve against the target's columns (alias `t`), before any
        engine runs it: analysis of an empty frame, no job."""
        try:
            self.spark.createDataFrame([], schema).alias("t").where(F.expr(condition)).schema  # noqa: B018
        except PySparkException as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise InvalidArgumentError(
                "not_matched_by_source_condition",
                f"not_matched_by_source_condition={condition!r} is not a SQL predicate over the columns of "
                f"{ref.name!r} ({', '.join('t.' + n for n in schema.names)}): {first}",
            ) from None

    def _check_not_null(self, ref: TableRef, df: DataFrame, schema: T.StructType) -> None:
        required = [f.name for f in schema.fields if not f.nullable and f.name in df.columns]
        if not required:
            return
        row = df.select([F.sum(F.col(f"`{c}`").isNull().cast("int")).alias(c) for c in required]).first()
        bad = [c for c in required if row is not None and row[c]]
        if bad:
            raise NullConstraintError(ref.name, bad)

    # -- maintenance ----------------------------------------------------------------------------------------
    def restore(
        self, name: str | os.PathLike[str], *, version: int | None = None, timestamp: TimestampLike | None = None
    ) -> RestoreResult:
        """Make the table's current state that of an earlier version (a new commit; history is kept).

        A timestamp after the last commit restores the latest version, as in Delta; restoring the latest version
        changes nothing and makes no commit (`version` is then the latest)."""
        if (version is None) == (timestamp is None):
            raise InvalidArgumentError("version/timestamp", "restore needs exactly one of version= or timestamp=")
        ref = self._existing(name)
        if timestamp is not None:
            when = to_utc(timestamp, zone=self._zone())
            version = version_at(ref.name, self._engine.commits(ref), when, can_return_last=True)
        else:
            version = self._checked_version(ref, version)  # type: ignore[arg-type]
        latest = self._engine.state(ref).version
        if version == latest:  # Delta's RESTORE to the current version changes nothing and commits nothing
            return RestoreResult(version=latest, restored_version=version, num_restored_files=0, num_removed_files=0)
        return self._engine.restore(ref, version)

    def optimize(
        self,
        name: str | os.PathLike[str],
        *,
        target_size: int | None = None,
        z_order_by: Sequence[str] | str | None = None,
    ) -> OptimizeResult:
        """Compact small files into files of about `target_size` bytes (default: the table's
        `delta.targetFileSize`, else the engine's), optionally Z-ordering by columns. Idempotent: a compact
        table is left as it is (`version` None). Safe from several processes at once, on a local disk or an object
        store: a run whose files another commit removed first re-plans (Delta's delete-delete rule), never
        committing a second copy of the rows."""
        zcols = tuple(_names_list(z_order_by, "z_order_by"))
        if target_size is not None and (
            not isinstance(target_size, int) or isinstance(target_size, bool) or target_size <= 0
        ):
            raise InvalidArgumentError(
                "target_size", f"target_size must be a positive number of bytes, got {target_size!r}"
            )
        ref = self._existing(name)
        if zcols:
            st = self._engine.state(ref)
            unknown = [c for c in zcols if c not in st.schema.names]
            parts = [c for c in zcols if c in st.partition_columns]
            if unknown:
                raise InvalidArgumentError(
                    "z_order_by", f"z_order_by column(s) {unknown} are not in table {ref.name!r}: {st.schema.names}"
                )
            if parts:
                raise InvalidArgumentError(
                    "z_order_by", f"z_order_by column(s) {parts} are partition columns; Z-order by data columns only"
                )
        result = self._engine.optimize(ref, target_size=target_size, z_order_by=zcols)
        _log.info(
            "OPTIMIZE %s%s: %d file(s) removed, %d added, version %s",
            ref.name,
            f" ZORDER BY {', '.join(zcols)}" if zcols else "",
            result.num_files_removed,
            result.num_files_added,
            result.version,
        )
        return result

    def vacuum(
        self,
        name: str | os.PathLike[str],
        *,
        retention_hours: float | None = None,
        dry_run: bool = True,
        enforce_retention_duration: bool = True,
    ) -> VacuumResult:
        """Remove files no version within the retention period needs. A dry run by default: it lists
        the files and deletes nothing; pass `dry_run=False` to delete. `retention_hours` defaults to the
        table's `delta.deletedFileRetentionDuration` (one week); less than that is refused unless
        `enforce_retention_duration=False`. Versions older than the retention may become unreadable.

        Beyond Delta's VACUUM, the temporary files a killed writer of any engine left in a local table's
        `_delta_log` (a commit staged but never put in place) are listed and removed too, once older than the
        retention and at least an hour (`_delta_log/<name>` in `files`); so are the files of the table's covering
        index (`lakehouse._log_covering`, rebuilt when next needed) that hold rows of the data files removed, so a row
        erased from the table is erased there too (`_lakehouse_covering/<name>`)."""
        ref = self._existing(name)
        minimum = retention_hours_of(self._engine.state(ref).properties)
        hours = minimum if retention_hours is None else retention_hours
        if not isinstance(hours, (int, float)) or isinstance(hours, bool) or not math.isfinite(hours) or hours < 0:
            raise InvalidArgumentError(
                "retention_hours",
                f"retention_hours must be a finite, non-negative number of hours, got {retention_hours!r}",
            )
        if enforce_retention_duration and hours < minimum:
            raise RetentionPeriodTooShortError(ref.name, hours, minimum)
        result = self._engine.vacuum(ref, retention_hours=float(hours), dry_run=dry_run)
        abandoned_before = time.time() - max(float(hours), LIVE_WRITE_HOURS) * 3600  # older: no live write's
        covering = holding(ref.path, result.files, abandoned_before)
        if not dry_run:
            for rel in covering:
                _storage.delete_quietly(_storage.join(ref.path, rel))
        staged = (*_abandoned_staging(ref.path, abandoned_before, dry_run=dry_run), *covering)
        if staged:
            result = VacuumResult(result.dry_run, result.retention_hours, tuple(sorted(result.files + staged)))
        _log.info("VACUUM %s%s: %d file(s)", ref.name, " (dry run)" if dry_run else "", len(result.files))
        return result

    # -- helpers --------------------------------------------------------------------------------------------
    def _to_spark(self, df: Any, argument: str) -> DataFrame:
        return to_spark_dataframe(self.spark, df, argument)


class _Diagnosed:
    """An engine whose failures on a damaged table become typed errors naming the file (`_log.diagnose`), not a
    Java or Rust error from deep inside; errors the engine raises for any other reason pass as they are."""

    def __init__(self, engine: Engine) -> None:
        self._inner = engine

    def __getattr__(self, attr: str) -> Any:
        value = getattr(self._inner, attr)
        if not callable(value):
            return value

        def call(*args: Any, **kwargs: Any) -> Any:
            try:
                return value(*args, **kwargs)
            except LakehouseError:
                raise
            except Exception:
                ref = next((a for a in args if isinstance(a, TableRef)), None)
                found = diagnose(ref.name, ref.path) if ref is not None and not is_uri(ref.path) else None
                if found is not None:
                    raise found from None
                raise

        return call


def _abandoned_staging(table_path: str, before: float, *, dry_run: bool) -> tuple[str, ...]:
    """The staged files of a local table's `_delta_log` older than `before` (`_delta_log/<name>`), removed unless
    `dry_run`."""
    local = local_table_path(table_path)
    if local is None:
        return ()
    log_dir = os.path.join(local, "_delta_log")
    names = abandoned_log_files(log_dir, before)
    if not dry_run:
        for n in names:
            with contextlib.suppress(FileNotFoundError):  # another VACUUM got there first
                os.unlink(os.path.join(log_dir, n))
    return tuple(f"_delta_log/{n}" for n in names)


def _names_list(value: str | Iterable[str] | None, argument: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    out = list(value) if isinstance(value, Iterable) else [value]
    if not all(isinstance(v, str) and v for v in out):
        raise ArgumentTypeError(argument, f"{argument} must be a column name or a list of column names, got {value!r}")
    return out


def _one_of(name: str, value: Any, alias: str, alias_value: Any) -> Any:
    if value is not None and alias_value is not None:
        raise InvalidArgumentError(f"{name}/{alias}", f"pass {name}= or {alias}=, not both")
    return value if value is not None else alias_value


__all__ = ["Lakehouse"]
