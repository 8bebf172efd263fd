"""The Delta operations a Spark Connect session must drive like a classic one (MERGE, OPTIMIZE with Z-order,
RESTORE, reads by version), as one workload both kinds of session run on their own lake; returns JSON-ready
results (operation figures and the table's rows after each step)."""

from __future__ import annotations

from typing import Any

from pyspark.sql import SparkSession

from lakehouse import Lakehouse

SCHEMA = "id long, name string, score double"


def _rows(lh: Lakehouse, version: int | None = None) -> list[list[Any]]:
    return sorted([list(r) for r in lh.read("ops.items", version=version).collect()])


def run(lh: Lakehouse, spark: SparkSession) -> dict[str, Any]:
    lh.create_table("ops.items", spark.createDataFrame([(i, f"v{i}", float(i % 7)) for i in range(40)], SCHEMA))
    source = spark.createDataFrame([(3, "changed", 30.0), (41, "new", 2.5), (7, "also", 0.5)], SCHEMA)
    merged = lh.merge("ops.items", source, on="id")
    deleted = lh.merge(
        "ops.items",
        spark.createDataFrame([(5, "x", 0.0)], SCHEMA),
        on="id",
        when_matched="delete",
        when_not_matched="ignore",
    )
    lh.append("ops.items", spark.createDataFrame([(100 + i, "a", float(i)) for i in range(5)], SCHEMA))
    optimized = lh.optimize("ops.items", z_order_by=["score"])
    after_optimize = _rows(lh)
    restored = lh.restore("ops.items", version=1)
    return {
        "merge": [merged.num_target_rows_inserted, merged.num_target_rows_updated, merged.version],
        "delete": [deleted.num_target_rows_deleted, deleted.version],
        "optimize": [optimized.version is not None, optimized.num_files_removed > 1, optimized.num_files_added],
        "after_optimize": after_optimize,
        "restore": [restored.restored_version, restored.version],
        "after_restore": _rows(lh),
        "version_1": _rows(lh, version=1),
        "operations": [h.operation for h in lh.history("ops.items")],
    }
