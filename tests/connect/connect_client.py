"""The Spark Connect side of the Connect test: a process whose only Spark is a Connect session builds the
feature store's training sets on a lake the test prepared, and writes their rows as JSON.

    python connect_client.py sc://127.0.0.1:<port> <lake root> <output.json>

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


def main(url: str, root: str, output: str) -> None:
    import training_sets  # beside this file: the workload both sides run

    spark = SparkSession.builder.remote(url).getOrCreate()
    try:
        fs = FeatureStoreClient(root, spark=spark)
        report = {
            "session": type(spark).__module__,
            "engine": Lakehouse(root, spark=spark).engine,
            "results": training_sets.build(fs, spark),
        }
    finally:
        spark.stop()
    Path(output).write_text(json.dumps(report, sort_keys=True, indent=1))


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    main(*sys.argv[1:])
