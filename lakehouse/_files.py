"""The data files of one table version, for readers that read Parquet themselves (no Spark, no scan).

Feature-store joins read small feature tables in the driver with pyarrow; they need the files of exactly one
Delta version, each file's partition values (typed) and the log's row counts. Only here is the Delta log read
for that (through delta-rs's log reader, never its pyarrow-dataset readers, which can abort a process at exit),
and only here is it decided that the files alone are not the table's data.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from urllib.parse import unquote

import pyarrow as pa
from deltalake import DeltaTable

from .errors import UnsupportedTableFeatureError

FILES_ARE_NOT_THE_DATA = ("deletionVectors", "columnMapping")
"""Reader features under which a version's Parquet files alone do not give its rows."""


@dataclass(frozen=True)
class DataFiles:
    """The Parquet files of one table version and what a reader needs to read them exactly.

    `num_rows` is None when some file's add action carries no row count (the size is then unknown).
    `partition_values` has one dict per file: {partition column: typed value or None}.
    """

    table: str
    version: int
    files: tuple[str, ...]
    partition_columns: tuple[str, ...]
    partition_values: tuple[dict[str, object], ...]
    num_rows: int | None
    retention: str


def data_files(table: str, path: str, version: int) -> DataFiles:
    """The files of `table` (at `path`) at `version`.

    Raises:
        UnsupportedTableFeatureError: the files alone are not the rows (deletion vectors, column mapping), or
            the log lists files in a layout this reader does not understand.
    """
    try:
        dt = DeltaTable(path, version=version)
        md = dt.metadata()
        features = set(dt.protocol().reader_features or [])
    except Exception as exc:  # noqa: BLE001 - delta-rs raises DeltaError, OSError or plain Exception here
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UnsupportedTableFeatureError(table, "delta log", f"open at version {version}", first) from None
    if md.configuration.get("delta.columnMapping.mode", "none") not in ("none", None):
        features.add("columnMapping")
    for feature in FILES_ARE_NOT_THE_DATA:
        if feature in features:
            raise UnsupportedTableFeatureError(
                table, feature, "read as plain Parquet files", "read it through Spark instead"
            )
    actions = pa.table(dt.get_add_actions(flatten=True))
    root = path.rstrip("/")
    files = []
    for p in actions.column("path").to_pylist():
        p = unquote(p)
        files.append(p if "://" in p or p.startswith("/") else posixpath.join(root, p))
    if sorted(files) != sorted(dt.file_uris()):
        raise UnsupportedTableFeatureError(
            table, "file layout", "read as plain Parquet files", "the log's paths and the resolved file URIs differ"
        )
    parts = tuple(md.partition_columns)
    counts = actions.column("num_records") if "num_records" in actions.column_names else None
    num_rows = None if counts is None or counts.null_count else int(sum(c for c in counts.to_pylist()))
    values = tuple({p: actions.column(f"partition.{p}")[i].as_py() for p in parts} for i in range(actions.num_rows))
    retention = md.configuration.get("delta.deletedFileRetentionDuration") or "interval 1 week (default)"
    return DataFiles(table, version, tuple(files), parts, values, num_rows, retention)
