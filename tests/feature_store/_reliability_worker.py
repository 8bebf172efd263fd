"""Worker processes of the feature store's crash and concurrency tests, and the plan both sides share.

    python _reliability_worker.py writer URL ROOT WRITER N SEED PAUSE   # N write_table calls, ACK after each
    python _reliability_worker.py reader URL ROOT STOP OUT              # training sets until STOP exists

Each worker is a Spark Connect client of the test's own Spark session (`start_connect`): a Python process that
starts in ~3 s instead of a JVM's ~20 s. With `LAKEHOUSE_ENGINE=deltalake` the merge itself (Parquet files and
the Delta commit) runs in the worker, through delta-rs, so a kill -9 of the worker lands inside the write; with
`delta-spark` it is sent as `MERGE INTO` and committed by Delta's JVM code in the test's session.

A writer prints `BEGIN w i` before write i, `COMMITTED w i v` when `write_table` returned version v and then,
when PAUSE is "pause", waits for a line on stdin before `ACK w i v` (the acknowledgement a caller relies on):
the window after the commit and before the acknowledgement, where the test kills it. A reader prints one JSON
line per training set: the version it pinned and the rows `load_df()` returned.
"""

from __future__ import annotations

import json
import os
import random
import socket
import sys
import time
from dataclasses import dataclass
from typing import Any

TABLE = "rel.feats"
KEYS = 40
SCHEMA = "k long, f double, tag string"
Row = tuple[int, float, str]


@dataclass(frozen=True)
class Write:
    """One planned write_table call: its mode and rows (k, f, tag), the tag naming the write."""

    writer: int
    index: int
    mode: str
    rows: tuple[Row, ...]


def plan(writer: int, index: int, seed: int, modes: tuple[str, ...] = ("merge",)) -> Write:
    """The write `index` of `writer`: 3 to 12 distinct keys of KEYS, so writers overlap; the same on both sides."""
    rnd = random.Random(f"{seed}/{writer}/{index}")
    mode = modes[rnd.randrange(len(modes))]
    keys = sorted(rnd.sample(range(KEYS), rnd.randint(3, 12)))
    tag = f"w{writer}i{index}"
    return Write(writer, index, mode, tuple((k, float(writer * 1000 + index) + k / 100, tag) for k in keys))


def apply(state: dict[int, tuple[float, str]], write: Write) -> dict[int, tuple[float, str]]:
    """The oracle: the table's rows after `write` (merge: upsert by key; overwrite: exactly its rows)."""
    out = {} if write.mode == "overwrite" else dict(state)
    out.update({k: (f, tag) for k, f, tag in write.rows})
    return out


def start_connect(spark: Any) -> str:
    """Serve the running `spark` session over Spark Connect on a free loopback port; return its URL.

    The service is Spark's own (`SparkConnectService`, what the Connect plugin starts), started in this
    session rather than a new JVM: the test's JVM is already warm."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sc = spark._jsc.sc()
    sc.conf().set("spark.connect.grpc.binding.address", "127.0.0.1")
    sc.conf().set("spark.connect.grpc.binding.port", str(port))
    spark._jvm.org.apache.spark.sql.connect.service.SparkConnectService.start(sc)
    deadline = time.monotonic() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return f"sc://127.0.0.1:{port}"
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


_SERVED: dict[int, str] = {}


def connect_url(spark: Any) -> str:
    """The Connect URL of `spark`, started on first use and kept for the session (the service is cheap)."""
    key = id(spark)
    if key not in _SERVED:
        _SERVED[key] = start_connect(spark)
    return _SERVED[key]


def _client(url: str, root: str) -> tuple[Any, Any]:
    from pyspark.sql import SparkSession

    from feature_store import FeatureStoreClient

    spark = SparkSession.builder.remote(url).getOrCreate()
    return spark, FeatureStoreClient(root, spark=spark)


def _say(*parts: object) -> None:
    print(*parts, flush=True)


def writer(url: str, root: str, who: str, n: str, seed: str, pause: str, modes: str = "merge") -> None:
    spark, fs = _client(url, root)
    _say("READY", fs.lakehouse.engine)
    for i in range(int(n)):
        w = plan(int(who), i, int(seed), tuple(modes.split(",")))
        df = spark.createDataFrame(list(w.rows), SCHEMA)
        _say("BEGIN", who, i)
        version = fs.write_table(TABLE, df, mode=w.mode)
        _say("COMMITTED", who, i, version)
        if pause == "pause":
            sys.stdin.readline()
        _say("ACK", who, i, version)


def reader(url: str, root: str, stop: str, out: str) -> None:
    from feature_store import FeatureLookup

    spark, fs = _client(url, root)
    labels = spark.createDataFrame([(k,) for k in range(KEYS)], "k long")
    lookup = FeatureLookup(table_name=TABLE, lookup_key="k", feature_names=["f", "tag"])
    _say("READY", fs.lakehouse.engine)
    with open(out, "a") as sink:
        while not os.path.exists(stop):
            ts = fs.create_training_set(df=labels, feature_lookups=[lookup], label=None)
            rows = ts.load_df().collect()
            got = {r["k"]: None if r["tag"] is None else [r["f"], r["tag"]] for r in rows}
            sink.write(json.dumps({"version": ts.versions[TABLE], "rows": got, "n": len(rows)}) + "\n")
            sink.flush()


if __name__ == "__main__":
    role, *args = sys.argv[1:]
    {"writer": writer, "reader": reader}[role](*args)
