"""End-to-end demo on the embedded default: local Spark, a local lake, the deltalake engine.

Run it with `make demo` (or `python notebooks/demo.py [LAKE_DIR]`). It walks through Delta time travel,
merge, OPTIMIZE and VACUUM and prints what each step did. The lake goes to ./demo-lake unless a folder or
$LAKEHOUSE_ROOT is given; the demo's own tables are recreated on every run.
"""

from __future__ import annotations

import os
import shutil
import sys
import time

from pyspark.sql import functions as F

from lakehouse import Lakehouse, errors, local_spark


def step(title: str) -> None:
    print(f"\n=== {title}")


def main() -> None:
    root = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("LAKEHOUSE_ROOT", "demo-lake")
    shutil.rmtree(os.path.join(root, "demo"), ignore_errors=True)
    spark = local_spark(master="local[2]", shuffle_partitions=4)
    lh = Lakehouse(root, spark=spark)
    print(f"{lh!r} on Spark {spark.version}")

    step("create a partitioned table (version 0)")
    customers = spark.createDataFrame(
        [(1, "Ada", "UK", 120.0), (2, "Linus", "FI", 80.0), (3, "Grace", "US", 200.0)],
        "customer_id long, name string, country string, balance double",
    )
    res = lh.create_table("demo.customers", customers, partition_by="country", description="demo customers")
    print(res)
    lh.read("demo.customers").orderBy("customer_id").show()

    step("append new customers (version 1)")
    time.sleep(0.01)
    print(lh.append("demo.customers", spark.createDataFrame([(4, "Barbara", "US", 10.0)], customers.schema)))

    step("schema enforcement: a balance of the wrong type is refused, nothing is written")
    try:
        lh.append("demo.customers", spark.createDataFrame([(5, "Ken", "US", "lots")], "customer_id long, "
                                                          "name string, country string, balance string"))
    except errors.SchemaMismatchError as exc:
        print(f"SchemaMismatchError: {exc}")

    step("merge (upsert) by key (version 2): update Ada, insert Edsger")
    updates = spark.createDataFrame([(1, "Ada", "UK", 150.0), (6, "Edsger", "NL", 60.0)], customers.schema)
    print(lh.merge("demo.customers", updates, on="customer_id"))
    lh.read("demo.customers").orderBy("customer_id").show()

    step("merge refuses duplicate keys instead of picking an arbitrary winner")
    dupes = spark.createDataFrame([(2, "Linus", "FI", 1.0), (2, "Linus", "FI", 2.0)], customers.schema)
    try:
        lh.merge("demo.customers", dupes, on="customer_id")
    except errors.DuplicateKeyError as exc:
        print(f"DuplicateKeyError: {exc}")

    step("history")
    for h in lh.history("demo.customers"):
        print(f"  v{h.version}  {h.timestamp:%Y-%m-%d %H:%M:%S.%f}  {h.operation}")

    step("time travel: by version and by timestamp")
    v0_time = lh.history("demo.customers")[-1].timestamp
    print(f"version 0 has {lh.read('demo.customers', version=0).count()} rows; "
          f"as of {v0_time:%H:%M:%S.%f} UTC: {lh.read('demo.customers', timestamp=v0_time).count()} rows; "
          f"latest: {lh.read('demo.customers').count()} rows")
    try:
        lh.read("demo.customers", version=99)
    except errors.VersionNotFoundError as exc:
        print(f"VersionNotFoundError: {exc}")
    try:
        lh.read("demo.customers", timestamp="2001-01-01")
    except errors.TimestampOutOfRangeError as exc:
        print(f"TimestampOutOfRangeError: {exc}")

    step("many small appends, then OPTIMIZE (compaction) and Z-order")
    lh.create_table("demo.events", spark.range(0, 1000).select(
        F.col("id").alias("event_id"), (F.col("id") % 50).alias("customer_id"), (F.rand(1) * 100).alias("amount")))
    for i in range(1, 6):
        lh.append("demo.events", spark.range(i * 1000, (i + 1) * 1000).select(
            F.col("id").alias("event_id"), (F.col("id") % 50).alias("customer_id"), (F.rand(i) * 100).alias("amount")))
    print(lh.optimize("demo.events"))
    print("again (idempotent):", lh.optimize("demo.events"))
    print(lh.optimize("demo.events", z_order_by=["customer_id"]))

    step("VACUUM: a dry run by default, with the 7-day retention check")
    print(lh.vacuum("demo.events"))
    try:
        lh.vacuum("demo.events", retention_hours=0)
    except errors.RetentionPeriodTooShortError as exc:
        print(f"RetentionPeriodTooShortError: {exc}")
    gone = lh.vacuum("demo.events", retention_hours=0, enforce_retention_duration=False, dry_run=False)
    print(f"deleted {gone.num_files} unreferenced files; the table still has "
          f"{lh.read('demo.events').count()} rows")

    step("restore the customers table to version 0")
    print(lh.restore("demo.customers", version=0))
    lh.read("demo.customers").orderBy("customer_id").show()

    step("tables under the root")
    for t in lh.list_tables():
        print(f"  {t.name:<20} v{t.version:<3} {t.description or ''}")
    spark.stop()


if __name__ == "__main__":
    main()
