"""The contract every Delta engine implements. Engines do the raw Delta operation on a path; validation,
name resolution, time-travel rules, retries and locking live once, in the Lakehouse facade."""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, cast

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import types as T

from .._entities import HistoryEntry, MergeResult, OptimizeResult, RestoreResult, VacuumResult, WriteResult
from .._names import TableRef

WhenMatched = Literal["update", "delete", "ignore"]
WhenNotMatched = Literal["insert", "ignore"]
WhenNotMatchedBySource = Literal["delete", "ignore"]


@dataclass(frozen=True)
class TableState:
    """A table's metadata at one version."""

    version: int
    schema: T.StructType
    partition_columns: tuple[str, ...]
    name: str | None
    description: str | None
    properties: dict[str, str] = field(hash=False)
    created_ms: int | None = None


@dataclass(frozen=True)
class MergeSpec:
    keys: tuple[str, ...]
    update_columns: tuple[str, ...]
    insert_columns: tuple[str, ...]
    when_matched: WhenMatched
    when_not_matched: WhenNotMatched
    when_not_matched_by_source: WhenNotMatchedBySource
    schema_evolution: bool
    # A SQL predicate over the target (alias `t`) limiting "delete when not matched by source"; None: every row.
    by_source_condition: str | None = None

    # The SQL both engines' merge builders take, with target alias `t` and source alias `s`.
    @property
    def predicate(self) -> str:
        return " AND ".join(f"t.{quote_ident(k)} = s.{quote_ident(k)}" for k in self.keys)

    @property
    def update_assignments(self) -> dict[str, str]:
        return {quote_ident(c): f"s.{quote_ident(c)}" for c in self.update_columns}

    @property
    def insert_assignments(self) -> dict[str, str]:
        return {quote_ident(c): f"s.{quote_ident(c)}" for c in self.insert_columns}


def is_session(value: object) -> bool:
    """Whether `value` is a Spark session, classic or Spark Connect (a different class), not a callable making one."""
    return hasattr(value, "createDataFrame") and hasattr(value, "conf")


def quote_ident(name: str) -> str:
    """A column name as a Spark / DataFusion SQL identifier."""
    return f"`{name}`"


class Engine(abc.ABC):
    """One Delta implementation (delta-rs or delta-spark) working on table paths."""

    name: str

    def __init__(self, spark: SparkSession | Callable[[], SparkSession]) -> None:
        self._spark = spark

    @property
    def spark(self) -> SparkSession:
        """The session; a callable given instead is called on first use (the JVM-less deltalake engine)."""
        if not is_session(self._spark):
            self._spark = cast(Callable[[], SparkSession], self._spark)()
        return cast(SparkSession, self._spark)

    @abc.abstractmethod
    def exists(self, ref: TableRef) -> bool: ...

    @abc.abstractmethod
    def state(self, ref: TableRef, version: int | None = None) -> TableState: ...

    @abc.abstractmethod
    def commits(self, ref: TableRef) -> list[tuple[int, int]]:
        """(version, commit time in ms since the epoch) for every version still in the log, ascending."""

    @abc.abstractmethod
    def read(self, ref: TableRef, version: int | None) -> DataFrame: ...

    @abc.abstractmethod
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
    ) -> WriteResult: ...

    @abc.abstractmethod
    def write(
        self,
        ref: TableRef,
        df: DataFrame,
        *,
        mode: Literal["append", "overwrite"],
        state: TableState,
        new_schema: T.StructType | None,
    ) -> WriteResult:
        """Append or overwrite. `new_schema` is the evolved (or, for overwrite, replaced) schema, if any."""

    @abc.abstractmethod
    def merge(self, ref: TableRef, df: DataFrame, spec: MergeSpec, state: TableState) -> MergeResult: ...

    @abc.abstractmethod
    def history(self, ref: TableRef, limit: int | None) -> list[HistoryEntry]: ...

    @abc.abstractmethod
    def restore(self, ref: TableRef, version: int) -> RestoreResult: ...

    @abc.abstractmethod
    def optimize(self, ref: TableRef, *, target_size: int | None, z_order_by: tuple[str, ...]) -> OptimizeResult: ...

    @abc.abstractmethod
    def vacuum(self, ref: TableRef, *, retention_hours: float, dry_run: bool) -> VacuumResult:
        """Delete (or list, in a dry run) unreferenced files older than `retention_hours`. The retention
        check has already been made by the caller."""

    @abc.abstractmethod
    def is_conflict(self, exc: BaseException) -> bool:
        """True when `exc` is a commit conflict with a concurrent writer (worth retrying)."""
