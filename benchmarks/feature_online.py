"""Online store benchmark: get_online_features and publish_table on SQLite and Redis, against raw store reads.

    python benchmarks/feature_online.py            # a 5M-key feature table, 10k changed keys
    python benchmarks/feature_online.py --quick    # 200k keys, fewer calls: the same shape in about a minute

Data: one feature table `bench.online` (primary key `customer_id` long, features f1..f4 double, no timestamp
key), written once from spark.range in --files Parquet files, each a contiguous range of keys. A real
redis-server (tests/_support/redis_server.py) on a free port, stopped at the end; everything lives in a temp
directory deleted at the end.

Timed (time.perf_counter around each call, in this process):
  publish, full        : the first fs.publish_table(mode="merge") to each store (every key; for information)
  lookup, 1 key        : --lookups calls of fs.get_online_features([lookup of f1..f4], [{"customer_id": k}])
                         with random existing keys, after --warmup calls; p50 / p99 per store.
                         Targets: p99 < 1 ms (SQLite), < 2 ms (Redis).
  anchor, 1 key        : the same keys read raw from the same store and the same rows: sqlite3
                         `SELECT value FROM fs_online_rows WHERE table_name=? AND key=?` on one open connection,
                         redis-py `HGET fs:bench.online <key>`. No decoding. ours / anchor is printed.
  lookup, 1000 keys    : --batches calls of get_online_features with 1,000 random keys each (after warm-up);
                         median / p99. Target < 20 ms. Anchor: the raw read of the same 1,000 keys (SQLite:
                         `SELECT key, value ... key IN (...)` in chunks of 500, as the store does; Redis: one HMGET).
  publish, incremental : fs.write_table(mode="merge") of --changed keys with new values (timed, for information),
                         then fs.publish_table(mode="merge") to SQLite, then to Redis, each timed. Target < 10 s.
                         Twice: "clustered" (consecutive keys: the merge rewrites one file) and "scattered"
                         (random keys over the whole key space: the merge rewrites every file).
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# redis_server (a real redis-server on a free port), by path: tests/ is no package
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests", "_support"))

import redis_server
from _machine import load, revision
from pyspark.sql import functions as F

from feature_store import FeatureLookup, FeatureStoreClient, RedisOnlineStore, SqliteOnlineStore
from lakehouse import local_spark

TABLE = "bench.online"
FEATS = ["f1", "f2", "f3", "f4"]


def pct(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) of `values`, nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def per_call(fn, args_list: list, warmup: int) -> list[float]:
    """Seconds of each `fn(a)` for a in `args_list`, after `warmup` untimed calls."""
    for a in args_list[:warmup]:
        fn(a)
    out = []
    for a in args_list:
        start = time.perf_counter()
        fn(a)
        out.append(time.perf_counter() - start)
    return out


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--keys", type=int, default=5_000_000, help="keys in the feature table (default 5,000,000)")
    ap.add_argument("--files", type=int, default=20, help="Parquet files the table is written in (default 20)")
    ap.add_argument("--changed", type=int, default=10_000, help="keys changed before the incremental publish")
    ap.add_argument("--lookups", type=int, default=2_000, help="timed single-key calls per store")
    ap.add_argument("--warmup", type=int, default=200, help="untimed calls before each timed series")
    ap.add_argument("--batches", type=int, default=50, help="timed 1,000-key calls per store")
    ap.add_argument("--no-redis", action="store_true", help="SQLite only")
    ap.add_argument("--quick", action="store_true", help="200k keys, 4 files, 500 lookups, 20 batches")
    args = ap.parse_args()
    if args.quick:
        args.keys, args.files, args.lookups, args.batches = 200_000, 4, 500, 20
        args.changed = min(args.changed, args.keys // 20)
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    work = tempfile.mkdtemp(prefix="onlinebench-")
    redis = None
    try:
        spark = local_spark(master="local[2]")
        fs = FeatureStoreClient(root=os.path.join(work, "lake"), spark=spark)
        sqlite_spec = SqliteOnlineStore(path=os.path.join(work, "online.sqlite"))
        stores: dict[str, object] = {"SQLite": sqlite_spec}
        if not args.no_redis:
            redis = redis_server.start(Path(work) / "redis")
            stores["Redis"] = RedisOnlineStore(host=redis.host, port=redis.port)
        targets_1 = {"SQLite": 1.0, "Redis": 2.0}
        print(
            f"keys={args.keys:,} files={args.files} features={len(FEATS)} double changed={args.changed:,} "
            f"lookups={args.lookups:,} batches={args.batches} spark=local[2] cores={os.cpu_count()} "
            f"load={' '.join(f'{x:.2f}' for x in os.getloadavg())} {revision()}",
            flush=True,
        )

        # -- data ------------------------------------------------------------------------------------------------
        start = time.perf_counter()
        df = spark.range(0, args.keys, 1, numPartitions=args.files).select(
            F.col("id").alias("customer_id"), *[F.rand(10 + i).alias(f) for i, f in enumerate(FEATS)]
        )
        fs.create_table(name=TABLE, primary_keys=["customer_id"], df=df)
        print(f"  create_table ({args.keys:,} rows)            {time.perf_counter() - start:7.2f} s", flush=True)

        for store, spec in stores.items():
            start = time.perf_counter()
            res = fs.publish_table(TABLE, online_store=spec, mode="merge")
            took = time.perf_counter() - start
            print(
                f"  publish, full, {store:6s}                 {took:7.2f} s   keys_written={res.keys_written:,} "
                f"full={res.full} (for information) {load()}",
                flush=True,
            )

        # -- lookups ---------------------------------------------------------------------------------------------
        rng = random.Random(0)
        single = [rng.randrange(args.keys) for _ in range(args.lookups)]
        batches = [[rng.randrange(args.keys) for _ in range(1000)] for _ in range(args.batches)]
        lookups = [FeatureLookup(table_name=TABLE, lookup_key="customer_id", feature_names=FEATS)]
        enc = [f"[{k}]" for k in single]  # the store's key encoding (`_online_codec.encode_key`): a JSON list
        db = sqlite3.connect(sqlite_spec.path)  # type: ignore[arg-type]
        rc = redis.client() if redis is not None else None
        hkey = f"fs:{TABLE}"

        def raw_sqlite_1(key: str) -> None:
            db.execute("SELECT value FROM fs_online_rows WHERE table_name = ? AND key = ?", (TABLE, key)).fetchone()

        def raw_redis_1(key: str) -> None:
            rc.hget(hkey, key)

        def raw_sqlite_n(keys: list[str]) -> None:
            for i in range(0, len(keys), 500):
                part = keys[i : i + 500]
                sql = f"SELECT key, value FROM fs_online_rows WHERE table_name = ? AND key IN ({','.join('?' * len(part))})"
                db.execute(sql, (TABLE, *part)).fetchall()

        def raw_redis_n(keys: list[str]) -> None:
            rc.hmget(hkey, keys)

        raw_1 = {"SQLite": raw_sqlite_1, "Redis": raw_redis_1}
        raw_n = {"SQLite": raw_sqlite_n, "Redis": raw_redis_n}
        # a sanity check that the lookups return the published rows, not nulls
        got = fs.get_online_features(lookups, [{"customer_id": single[0]}], online_store=sqlite_spec)
        assert got["f1"].notna().all(), got

        for store, spec in stores.items():

            def ours_1(k: int, spec=spec) -> None:
                fs.get_online_features(lookups, [{"customer_id": k}], online_store=spec)

            def ours_n(ks: list[int], spec=spec) -> None:
                fs.get_online_features(lookups, [{"customer_id": k} for k in ks], online_store=spec)

            o1 = per_call(ours_1, single, args.warmup)
            a1 = per_call(raw_1[store], enc, args.warmup)
            p50, p99, a50, a99 = (1e3 * pct(o1, 50), 1e3 * pct(o1, 99), 1e3 * pct(a1, 50), 1e3 * pct(a1, 99))
            t = targets_1[store]
            print(
                f"  lookup, 1 key, {store:6s}   ours p50 {p50:7.3f} ms  p99 {p99:7.3f} ms | raw p50 {a50:7.3f} ms  "
                f"p99 {a99:7.3f} ms | ours/raw p50 {p50 / a50:6.1f}x p99 {p99 / a99:6.1f}x | target p99 < {t:g} ms: "
                f"{verdict(p99 < t)} {load()}",
                flush=True,
            )
            warm = max(1, min(5, args.batches // 5))
            on = per_call(ours_n, batches, warm)
            an = per_call(raw_n[store], [[f"[{k}]" for k in b] for b in batches], warm)
            m, p99, am, a99 = (
                1e3 * statistics.median(on),
                1e3 * pct(on, 99),
                1e3 * statistics.median(an),
                1e3 * pct(an, 99),
            )
            print(
                f"  lookup, 1000 keys, {store:6s} ours median {m:7.2f} ms  p99 {p99:7.2f} ms | raw median {am:6.2f} ms  "
                f"p99 {a99:6.2f} ms | ours/raw median {m / am:5.1f}x | target < 20 ms (median): {verdict(m < 20)}, "
                f"(p99): {verdict(p99 < 20)} {load()}",
                flush=True,
            )
        db.close()
        if rc is not None:
            rc.close()

        # -- incremental publish ---------------------------------------------------------------------------------
        n = args.changed
        layouts = {
            "clustered": list(range(args.keys // 2, args.keys // 2 + n)),
            "scattered": rng.sample(range(args.keys), n),
        }
        for seed, (layout, keys) in enumerate(layouts.items()):
            upd = spark.createDataFrame([(k,) for k in keys], "customer_id long").select(
                "customer_id", *[F.rand(100 + 10 * seed + i).alias(f) for i, f in enumerate(FEATS)]
            )
            start = time.perf_counter()
            version = fs.write_table(TABLE, upd, mode="merge")
            print(
                f"  write_table merge, {n:,} {layout} keys     {time.perf_counter() - start:7.2f} s   "
                f"version {version} (for information) {load()}",
                flush=True,
            )
            for store, spec in stores.items():
                start = time.perf_counter()
                res = fs.publish_table(TABLE, online_store=spec, mode="merge")
                took = time.perf_counter() - start
                print(
                    f"  publish, incremental, {layout}, {store:6s} {took:7.2f} s   keys_written={res.keys_written:,} "
                    f"keys_deleted={res.keys_deleted} full={res.full} v{res.from_version}->v{res.to_version} | "
                    f"target < 10 s: {verdict(took < 10 and not res.full)} {load()}",
                    flush=True,
                )
            probe = fs.get_online_features(lookups, [{"customer_id": keys[0]}], online_store=sqlite_spec)
            fresh = fs.read_table(TABLE).where(F.col("customer_id") == keys[0]).select("f1").first()
            assert fresh is not None and probe["f1"].iloc[0] == fresh[0], (probe, fresh)
        sys.stdout.flush()
        spark.stop()
    finally:
        if redis is not None:
            redis.stop()
        shutil.rmtree(work, ignore_errors=True)
    os._exit(0)  # skip interpreter teardown: native thread pools can abort at exit (see delta-engines notes)


if __name__ == "__main__":
    main()
