"""The Spark Connect side of the Connect test: a process whose only Spark is a Connect session builds the
feature store's training sets on a lake the test prepared, and writes their rows as JSON.

    python connect_client.py sc://127.0.0.1:<port> <lake root> <output.json> [<lake root for table_ops>]

A Connect session and a classic one cannot share a process (creating a Connect session switches PySpark's
functions to their Connect forms process-wide), hence a separate process.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from pyspark.sql import SparkSession

from feature_store import FeatureStoreClient
from lakehouse import Lakehouse


def main(url: str, root: str, output: str, ops_root: str | None = None) -> None:
    import table_ops  # beside this file: the workloads both sides run
    import training_sets

    spark = SparkSession.builder.remote(url).getOrCreate()
    try:
        fs = FeatureStoreClient(root, spark=spark)
        report = {
            "session": type(spark).__module__,
            "engine": Lakehouse(root, spark=spark).engine,
            "results": training_sets.build(fs, spark),
        }
        if ops_root is not None:
            report["table_ops"] = table_ops.run(Lakehouse(ops_root, spark=spark), spark)
    finally:
        spark.stop()
    Path(output).write_text(json.dumps(report, sort_keys=True, indent=1))


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    main(*sys.argv[1:])
