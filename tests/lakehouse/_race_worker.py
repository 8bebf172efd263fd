"""One writer of the commit race: `python _race_worker.py <spark|deltalake|lean> <table path> <n> <go file>`.

Waits for the go file (so all writers start together), appends `n` one-row commits, and prints `ACK <writer> <i>`
after each commit that returned (the acknowledgement a caller would rely on).
"""

from __future__ import annotations

import os
import sys
import time

kind, path, n, go = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]


def wait_for_go() -> None:
    deadline = time.monotonic() + 600
    while not os.path.exists(go):
        if time.monotonic() > deadline:
            sys.exit("no go signal")
        time.sleep(0.05)


if kind == "spark":
    from lakehouse import local_spark

    spark = local_spark(master="local[1]", shuffle_partitions=1)
    store = spark._jvm.org.apache.spark.sql.delta.DeltaLog.forTable(spark._jsparkSession, path).store()
    # Delta wraps the configured store per scheme; the delegate for file: paths is the one that commits.
    delegate = store.getDelegate(spark._jvm.org.apache.hadoop.fs.Path("file:" + path))
    impl = delegate.logStoreImpl()  # the Java LogStore behind Delta's Scala adaptor
    print("STORE", impl.getClass().getName(), flush=True)
    rows = [spark.createDataFrame([(kind, i)], "writer string, seq long") for i in range(n)]
    print("READY", flush=True)
    wait_for_go()
    for i, df in enumerate(rows):
        df.write.format("delta").mode("append").save(path)
        print("ACK", kind, i, flush=True)
elif kind == "deltalake":
    import pyarrow as pa
    from deltalake import write_deltalake

    schema = pa.schema([("writer", pa.string()), ("seq", pa.int64())])
    print("READY", flush=True)
    wait_for_go()
    for i in range(n):
        write_deltalake(path, pa.table({"writer": [kind], "seq": [i]}, schema=schema), mode="append")
        print("ACK", kind, i, flush=True)
elif kind == "lean":
    import pyarrow as pa

    from lakehouse._log import CommitConflict, LeanTable
    from lakehouse._retry import retry_on_conflict

    table = LeanTable(path=path, name="race", schema=pa.schema([("writer", pa.string()), ("seq", pa.int64())]))
    print("READY", flush=True)
    wait_for_go()
    for i in range(n):

        def attempt(i: int = i) -> int:
            table.refresh()
            return table.commit([[{"writer": kind, "seq": i}]])

        retry_on_conflict(
            attempt,
            table="race",
            operation="append",
            is_conflict=lambda e: isinstance(e, CommitConflict),
            policy=LeanTable.retry_policy,
        )
        print("ACK", kind, i, flush=True)
else:
    sys.exit(f"unknown writer {kind!r}")
