"""Immutable results of lakehouse operations."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class TableInfo:
    """What a table is: where it lives, its shape and its latest version."""

    name: str
    path: str
    version: int
    description: str | None
    partition_columns: tuple[str, ...]
    columns: tuple[tuple[str, str], ...]
    properties: dict[str, str] = field(hash=False)
    created_at: datetime | None = None


@dataclass(frozen=True)
class HistoryEntry:
    """One commit of a table. `timestamp` is the commit time in UTC."""

    version: int
    timestamp: datetime
    operation: str
    parameters: dict[str, Any] = field(hash=False)
    metrics: dict[str, Any] = field(hash=False)
    engine: str | None = None


@dataclass(frozen=True)
class WriteResult:
    """An append, overwrite or create: the version it committed and the rows it wrote."""

    version: int
    num_rows: int
    num_files: int


@dataclass(frozen=True)
class MergeResult:
    version: int
    num_source_rows: int
    num_target_rows_inserted: int
    num_target_rows_updated: int
    num_target_rows_deleted: int
    num_target_rows_copied: int


@dataclass(frozen=True)
class RestoreResult:
    version: int
    restored_version: int
    num_restored_files: int
    num_removed_files: int


@dataclass(frozen=True)
class OptimizeResult:
    """OPTIMIZE metrics. `version` is None when there was nothing to compact (no commit was made)."""

    version: int | None
    num_files_added: int
    num_files_removed: int
    files_added_size: dict[str, Any] = field(hash=False)
    files_removed_size: dict[str, Any] = field(hash=False)
    z_order_by: tuple[str, ...] = ()


@dataclass(frozen=True)
class VacuumResult:
    """VACUUM outcome. In a dry run `files` lists what would be deleted and nothing is removed."""

    dry_run: bool
    retention_hours: float
    files: tuple[str, ...]

    @property
    def num_files(self) -> int:
        return len(self.files)
