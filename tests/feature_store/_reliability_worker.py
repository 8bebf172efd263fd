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

HOLD_SOURCE = r"""
/* Crash-window hold for the feature store's kill -9 tests (LD_PRELOAD into a writer process).
   FS_HOLD_AT=data: after a data file (*.parquet outside _delta_log) is renamed into place;
   FS_HOLD_AT=commit: before a commit file (_delta_log/<v>.json) is published by link or rename.
   Armed only while the file $FS_HOLD_ARM exists; when it holds, it writes the path to $FS_HOLD_FLAG and waits
   for the SIGKILL. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

static void hold(const char *what, const char *path) {
    const char *at = getenv("FS_HOLD_AT"), *arm = getenv("FS_HOLD_ARM"), *flag = getenv("FS_HOLD_FLAG");
    if (!at || !arm || !flag || strcmp(at, what) != 0 || access(arm, F_OK) != 0) return;
    int fd = open(flag, O_CREAT | O_WRONLY | O_TRUNC, 0644);
    if (fd >= 0) {
        (void)!write(fd, path, strlen(path));
        close(fd);
    }
    for (;;) pause();
}

static int is_data(const char *p) { return ends_with(p, ".parquet") && !strstr(p, "_delta_log"); }
static int is_commit(const char *p) { return ends_with(p, ".json") && strstr(p, "_delta_log/"); }

int rename(const char *a, const char *b) {
    static int (*real)(const char *, const char *);
    if (!real) real = dlsym(RTLD_NEXT, "rename");
    if (is_commit(b)) hold("commit", b);
    int rc = real(a, b);
    if (rc == 0 && is_data(b)) hold("data", b);
    return rc;
}

int renameat(int fa, const char *a, int fb, const char *b) {
    static int (*real)(int, const char *, int, const char *);
    if (!real) real = dlsym(RTLD_NEXT, "renameat");
    if (is_commit(b)) hold("commit", b);
    int rc = real(fa, a, fb, b);
    if (rc == 0 && is_data(b)) hold("data", b);
    return rc;
}

int renameat2(int fa, const char *a, int fb, const char *b, unsigned int flags) {
    static int (*real)(int, const char *, int, const char *, unsigned int);
    if (!real) real = dlsym(RTLD_NEXT, "renameat2");
    if (is_commit(b)) hold("commit", b);
    int rc = real(fa, a, fb, b, flags);
    if (rc == 0 && is_data(b)) hold("data", b);
    return rc;
}

int link(const char *a, const char *b) {
    static int (*real)(const char *, const char *);
    if (!real) real = dlsym(RTLD_NEXT, "link");
    if (is_commit(b)) hold("commit", b);
    int rc = real(a, b);
    if (rc == 0 && is_data(b)) hold("data", b);
    return rc;
}

int linkat(int fa, const char *a, int fb, const char *b, int flags) {
    static int (*real)(int, const char *, int, const char *, int);
    if (!real) real = dlsym(RTLD_NEXT, "linkat");
    if (is_commit(b)) hold("commit", b);
    int rc = real(fa, a, fb, b, flags);
    if (rc == 0 && is_data(b)) hold("data", b);
    return rc;
}
"""
"""A C shim preloaded (LD_PRELOAD) into a writer to hold it in a crash window until the test kills it: delta-rs
writes a data file by renaming it into place and publishes a commit by linking `_delta_log/<v>.json#n` to
`<v>.json`, both through libc, so the shim sees both moments exactly."""


def build_hold_library(folder: Any) -> str:
    """Compile HOLD_SOURCE into `folder`; return the library's path (needs a C compiler: `cc`)."""
    import shutil
    import subprocess

    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        raise RuntimeError("no C compiler (cc) for the crash-window shim: apt-get install gcc")
    src, lib = os.path.join(folder, "hold.c"), os.path.join(folder, "hold.so")
    with open(src, "w") as f:
        f.write(HOLD_SOURCE)
    subprocess.run([cc, "-shared", "-fPIC", "-O1", "-o", lib, src, "-ldl"], check=True)
    return lib


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
