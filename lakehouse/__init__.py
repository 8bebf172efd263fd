"""lakehouse: Delta tables by name under a lakehouse root, with Spark as the compute engine.

>>> from lakehouse import Lakehouse
>>> lh = Lakehouse("/tmp/lake")                       # local Spark + embedded delta-rs engine
>>> lh.create_table("features.customers", df, partition_by="country")
>>> lh.read("features.customers", timestamp="2026-01-01")
"""

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _dist_version

from . import errors
from ._entities import (
    HistoryEntry,
    MergeResult,
    OptimizeResult,
    RestoreResult,
    TableInfo,
    VacuumResult,
    WriteResult,
)
from ._frames import to_spark_dataframe
from ._lakehouse import Lakehouse
from ._log import Change, LeanTable, Row
from ._log_covering import Covering
from ._names import find_tables, table_path
from ._retry import RetryPolicy, retry_on_conflict
from ._session import delta_classes_loaded, local_spark, prepare_python_workers
from ._settings import Settings, settings
from ._storage import is_object_store
from ._timetravel import to_utc

try:
    __version__ = _dist_version("lakehouse-ml")
except PackageNotFoundError:  # imported from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = [
    "Change",
    "Covering",
    "HistoryEntry",
    "Lakehouse",
    "LeanTable",
    "MergeResult",
    "OptimizeResult",
    "RestoreResult",
    "RetryPolicy",
    "Row",
    "Settings",
    "TableInfo",
    "VacuumResult",
    "WriteResult",
    "delta_classes_loaded",
    "errors",
    "find_tables",
    "is_object_store",
    "local_spark",
    "prepare_python_workers",
    "retry_on_conflict",
    "settings",
    "table_path",
    "to_spark_dataframe",
    "to_utc",
]
