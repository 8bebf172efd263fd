"""Benchmark: a lake on an object store (a local S3 server) against the same lake on local disk, in one run.

    .venv/bin/python benchmarks/objectstore.py                                   # 200 commits; 1M-row merge x 3
    .venv/bin/python benchmarks/objectstore.py --rows 100000 --repeats 1 --calls 50   # quick check

The object store is S3Proxy on 127.0.0.1 (tests/_support/s3_server.py; filesystem backend on the same disk as
the local lake), so the S3 side pays the S3 protocol (HTTP, signing, conditional PUT) but no real network.

1. Tracking commits. `MlflowClient(tracking_uri=...).log_metric(run_id, "m", value, step=i)`, one call at a
   time: one lean commit of one row plus the snapshot refresh of the run's tables, on `lakehouse:s3://<bucket>/..`
   and on `lakehouse:///<tmp>/..`; and the bare `LeanTable.refresh(); LeanTable.commit([[row]])` on both. Each
   figure: --warmup calls, then --calls timed calls per side, the sides alternating in blocks of 10 calls (load
   drift is shared). Every call counts, including the occasional compaction (every 40 small files) and
   checkpoint (every 100 versions): median and p90 show the usual call, mean and max include those.
   A separate untimed pass counts the HTTP requests of 50 calls (lakehouse._storage's obstore calls).
   Target: S3 median under 20 ms.
2. Merge. `Lakehouse(root, spark=local_spark(...), engine="deltalake").merge(name, df, on="id")` of a --rows
   source (half updates of every other key, half new keys) into a --rows target, on S3 and on local disk. Both
   targets are byte-identical copies of one table written by `lh.create_table` on local disk (the S3 copy is
   uploaded), made fresh before every run, untimed; each run gets a new source DataFrame (built untimed). Only
   the merge call is timed (it includes the source's `toArrow()`, the same on both sides: measured apart for
   information). One warm-up, then the median of --repeats; the side that goes first alternates.
   Target: S3 within 1.5x of local disk.

With a missed tracking target (or --profile always), 50 S3 log_metric calls run under cProfile and the
hot functions are printed with the HTTP requests per call.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import pstats
import shlex
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "_support"))  # not a package
import s3_server
from lakehouse_vs_deltalake import host_facts  # the sibling benchmark's machine lines (this folder is on sys.path)

from lakehouse import LeanTable, _storage

TRACKING_TARGET_MS = 20.0
MERGE_TARGET = 1.5
BASE_TS = 1_700_000_000  # 2023-11-14 UTC, in seconds
LEAN_SCHEMA = pa.schema([("id", pa.int64()), ("value", pa.float64())])
BLOCK = 10  # timed calls per side before the other side takes over


# -- figures ------------------------------------------------------------------------------------------------
@dataclass
class Timing:
    runs: list[float] = field(default_factory=list)  # seconds

    @property
    def median(self) -> float:
        return statistics.median(self.runs)

    @property
    def p90(self) -> float:
        return statistics.quantiles(self.runs, n=10, method="inclusive")[8] if len(self.runs) > 1 else self.runs[0]

    @property
    def mean(self) -> float:
        return statistics.fmean(self.runs)


def load() -> str:
    with open("/proc/loadavg") as fh:
        return fh.read().strip()


def machine_facts(server: s3_server.S3Server) -> list[str]:
    import deltalake
    import mlflow
    import obstore
    import pyspark

    return [
        f"command     {shlex.join([sys.executable, *sys.argv])}",
        *host_facts(),
        f"S3 server   S3Proxy {s3_server.VERSION} at {server.endpoint} (filesystem backend, {server.state_dir})",
        f"libraries   mlflow {mlflow.__version__}, deltalake {deltalake.__version__}, "
        f"obstore {getattr(obstore, '__version__', '?')}, pyspark {pyspark.__version__}, pyarrow {pa.__version__}",
    ]


# -- HTTP request counting ----------------------------------------------------------------------------------
class _Body:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def bytes(self) -> bytes:
        return self.data


class CountingObstore:
    """Stands in for the `obstore` module inside `lakehouse._storage` (each of these calls is one HTTP request):
    records (operation, seconds) per request. A GET is timed with its body read."""

    REQUESTS = ("get", "put", "head", "delete", "list_with_delimiter", "list")

    def __init__(self, real: Any) -> None:
        self.real = real
        self.requests: list[tuple[str, float]] = []

    def __getattr__(self, name: str) -> Any:
        fn = getattr(self.real, name)
        if name not in self.REQUESTS:
            return fn

        def wrapped(*args: Any, **kwargs: Any) -> Any:
            label = f"PUT mode={kwargs.get('mode', 'overwrite')}" if name == "put" else name.upper()
            t0 = time.perf_counter()
            try:
                out = fn(*args, **kwargs)
                if name == "get":
                    out = _Body(bytes(out.bytes()))
            except Exception as exc:
                self.requests.append((f"{label} -> {type(exc).__name__}", time.perf_counter() - t0))
                raise
            self.requests.append((label, time.perf_counter() - t0))
            return out

        return wrapped


@contextmanager
def counting_requests() -> Iterator[CountingObstore]:
    real = _storage._obstore
    counter = CountingObstore(real())
    _storage._obstore = lambda: counter  # _storage looks it up on every call
    try:
        yield counter
    finally:
        _storage._obstore = real


def request_report(counter: CountingObstore, calls: int, wall: float) -> list[str]:
    by_op: dict[str, list[float]] = defaultdict(list)
    for op, dt in counter.requests:
        by_op[op].append(dt)
    http = sum(dt for _, dt in counter.requests)
    lines = [
        f"    {len(counter.requests) / calls:5.1f} requests a call; HTTP {1000 * http / calls:6.2f} ms of "
        f"{1000 * wall / calls:6.2f} ms wall a call ({http / wall:.0%})"
    ]
    for op, times in sorted(by_op.items(), key=lambda kv: -sum(kv[1])):
        lines.append(
            f"      {op:<42} {len(times) / calls:5.2f} a call   median {1000 * statistics.median(times):6.2f} ms"
            f"   max {1000 * max(times):7.2f} ms"
        )
    return lines


# -- 1. tracking commits ------------------------------------------------------------------------------------
class TrackingSide:
    """One lake's MLflow client, run and lean table, and a call counter (metric points never repeat)."""

    def __init__(self, uri: str, lean_path: str) -> None:
        from mlflow import MlflowClient

        self.uri = uri
        self.client = MlflowClient(tracking_uri=uri)
        exp = self.client.create_experiment(f"objectstore-bench-{uuid.uuid4().hex[:8]}")
        self.run_id = self.client.create_run(exp).info.run_id
        self.lean = LeanTable(path=lean_path, name="lean", schema=LEAN_SCHEMA)
        self.lean.create_if_missing()
        self.lean.refresh()
        self.i = 0
        self.j = 0

    def log_metric(self) -> None:
        self.i += 1
        self.client.log_metric(self.run_id, "m", float(self.i), step=self.i)

    def lean_commit(self) -> None:
        self.j += 1
        self.lean.refresh()
        self.lean.commit([[{"id": self.j, "value": float(self.j)}]])


def alternate(sides: dict[str, Callable[[], None]], warmup: int, calls: int) -> dict[str, Timing]:
    """`warmup` untimed calls per side, then `calls` timed calls per side in alternating blocks of BLOCK."""
    for fn in sides.values():
        for _ in range(warmup):
            fn()
    out = {name: Timing() for name in sides}
    names = list(sides)
    gc.collect()
    block = 0
    while any(len(t.runs) < calls for t in out.values()):
        shift = block % len(names)
        for name in names[shift:] + names[:shift]:
            fn, runs = sides[name], out[name].runs
            for _ in range(min(BLOCK, calls - len(runs))):
                t0 = time.perf_counter()
                fn()
                runs.append(time.perf_counter() - t0)
        block += 1
    return out


def count_requests(fn: Callable[[], None], calls: int) -> list[str]:
    with counting_requests() as counter:
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        wall = time.perf_counter() - t0
    return request_report(counter, calls, wall)


def profile(fn: Callable[[], None], calls: int) -> list[str]:
    prof = cProfile.Profile()
    t0 = time.perf_counter()
    prof.enable()
    for _ in range(calls):
        fn()
    prof.disable()
    wall = time.perf_counter() - t0
    lines = [f"    {calls} calls under cProfile: {1000 * wall / calls:.2f} ms a call (profiler overhead included)"]
    for sort, limit in (("tottime", 15), ("cumulative", 25)):
        buf = io.StringIO()
        pstats.Stats(prof, stream=buf).strip_dirs().sort_stats(sort).print_stats(limit)
        text = buf.getvalue()
        start = text.find("   ncalls")
        lines.append(f"    -- top {limit} by {sort}")
        lines += ["    " + line for line in text[start:].rstrip().splitlines()]
    return lines


def tracking_section(args: argparse.Namespace, work: Path, s3_prefix: str) -> tuple[list[str], list[str], bool]:
    """The report lines, the verdict lines, and whether the target was missed."""
    local = TrackingSide(f"lakehouse://{work}/tracking-lake", str(work / "lean" / "t"))
    s3 = TrackingSide(f"lakehouse:{s3_prefix}/tracking-lake", f"{s3_prefix}/lean/t")
    print(f"  local  {local.uri}\n  S3     {s3.uri}", flush=True)
    metric = alternate({"local": local.log_metric, "S3": s3.log_metric}, args.warmup, args.calls)
    print(f"  log_metric done (/proc/loadavg {load()})", flush=True)
    lean = alternate({"local": local.lean_commit, "S3": s3.lean_commit}, args.warmup, args.calls)
    print(f"  LeanTable commit done (/proc/loadavg {load()})", flush=True)

    lines = [
        f"== 1. tracking commits: ms a call, {args.calls} calls a side after {args.warmup} warm-up; "
        f"ratio = S3 / local ==",
        f"  {'':50} {'median':>8} {'p90':>8} {'mean':>8} {'max':>8}",
    ]
    for label, timings in (("MlflowClient.log_metric", metric), ("LeanTable refresh + commit of one row", lean)):
        lo, hi = timings["local"], timings["S3"]
        for side, t in (("local disk", lo), ("S3", hi)):
            lines.append(
                f"  {label + ', ' + side:50} {1000 * t.median:8.2f} {1000 * t.p90:8.2f} "
                f"{1000 * t.mean:8.2f} {1000 * max(t.runs):8.2f}"
            )
        lines.append(
            f"  {'  ratio S3 / local':50} {hi.median / lo.median:7.2f}x {hi.p90 / lo.p90:7.2f}x "
            f"{hi.mean / lo.mean:7.2f}x"
        )
    lines.append("  HTTP requests on S3 (a separate untimed pass of 50 calls each, counted in lakehouse._storage):")
    lines.append("    MlflowClient.log_metric")
    lines += count_requests(s3.log_metric, 50)
    lines.append("    LeanTable refresh + commit of one row")
    lines += count_requests(s3.lean_commit, 50)
    s3_median_ms = 1000 * metric["S3"].median
    verdicts = [
        f"  {'PASS' if s3_median_ms < TRACKING_TARGET_MS else 'MISS'}  one-row tracking commit (log_metric) on S3: "
        f"median {s3_median_ms:.2f} ms, p90 {1000 * metric['S3'].p90:.2f} ms (target < {TRACKING_TARGET_MS:.0f} ms; "
        f"local disk {1000 * metric['local'].median:.2f} ms)",
        f"  info  bare LeanTable commit on S3: median {1000 * lean['S3'].median:.2f} ms, "
        f"p90 {1000 * lean['S3'].p90:.2f} ms",
    ]
    missed = s3_median_ms >= TRACKING_TARGET_MS
    if args.profile == "always" or (args.profile == "auto" and missed):
        lines.append("  profile: S3 log_metric")
        lines += profile(s3.log_metric, 50)
    return [*lines, ""], verdicts, missed


# -- 2. merge -----------------------------------------------------------------------------------------------
def merge_section(
    args: argparse.Namespace, work: Path, s3_prefix: str, server: s3_server.S3Server
) -> tuple[list[str], list[str]]:
    """The report lines and the verdict lines."""
    from deltalake import DeltaTable
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql import functions as F

    from lakehouse import Lakehouse, local_spark

    def features(ids: DataFrame, salt: int) -> DataFrame:
        h = F.xxhash64(F.col("id"), F.lit(salt))
        return ids.select(
            F.col("id").cast("long").alias("id"),
            (F.pmod(h, F.lit(1_000_003)) / F.lit(1000.0)).alias("amount"),
            F.concat(F.lit("segment_"), F.pmod(h, F.lit(500)).cast("string")).alias("segment"),
            F.timestamp_seconds(F.lit(BASE_TS) + F.pmod(F.col("id"), F.lit(86_400 * 30)) + F.lit(salt)).alias(
                "event_ts"
            ),
            F.pmod(h, F.lit(1000)).cast("int").alias("clicks"),
        )

    rows = args.rows
    updates = rows // 2
    inserts = rows - updates

    def source(spark: SparkSession, salt: int) -> DataFrame:
        """`updates` existing keys (every other one: every target file is touched) and `inserts` new keys."""
        old = spark.range(updates).select((F.col("id") * F.lit(2)).alias("id"))
        return features(old.unionByName(spark.range(rows, rows + inserts)), salt)

    def row_count(path: str) -> int:
        adds = pa.table(DeltaTable(path).get_add_actions(flatten=True))
        return int(pa.compute.sum(adds.column("num_records")).as_py() or 0)

    spark = local_spark(master=args.master, extra_conf={"spark.ui.showConsoleProgress": "false"})
    conf = spark.sparkContext.getConf()
    print(
        f"  spark {spark.version} master={spark.sparkContext.master} "
        f"driver.memory={conf.get('spark.driver.memory', '1g (default)')}",
        flush=True,
    )
    local_lh = Lakehouse(str(work / "merge-lake"), spark=spark, engine="deltalake")
    s3_lh = Lakehouse(f"{s3_prefix}/merge-lake", spark=spark, engine="deltalake")
    t0 = time.perf_counter()
    local_lh.create_table("bench.pristine", features(spark.range(rows), salt=0))
    pristine = Path(local_lh.table_path("bench.pristine"))
    files = sorted(p for p in pristine.rglob("*") if p.is_file())
    data_files = [p for p in files if p.suffix == ".parquet"]
    size = sum(p.stat().st_size for p in data_files)
    print(
        f"  target: {rows:,} rows in {len(data_files)} Parquet files ({size / 2**20:.1f} MiB), written by "
        f"lh.create_table on local disk in {time.perf_counter() - t0:.1f} s; source {rows:,} rows "
        f"({updates:,} updates, {inserts:,} inserts)",
        flush=True,
    )
    client = server.client()
    bucket_prefix = s3_prefix.removeprefix(f"s3://{server.bucket}/")

    def fresh_target(side: str, name: str) -> None:
        """A byte-identical copy of the pristine table at `name` in that side's lake (untimed)."""
        if side == "local":
            shutil.copytree(pristine, local_lh.table_path(name))
            return
        key = f"{bucket_prefix}/merge-lake/{name.replace('.', '/')}"
        for p in files:
            client.upload_file(str(p), server.bucket, f"{key}/{p.relative_to(pristine).as_posix()}")

    lakes = {"local": local_lh, "S3": s3_lh}
    merges: dict[str, Timing] = {"local": Timing(), "S3": Timing()}
    to_arrow = Timing()
    expect = rows + inserts
    for rep in range(args.repeats + 1):  # rep 0 is the warm-up
        names = list(lakes) if rep % 2 == 0 else list(lakes)[::-1]
        took: dict[str, float] = {}
        for side in names:
            lh = lakes[side]
            name = f"bench.target_{rep}"
            fresh_target(side, name)
            src = source(spark, salt=rep + 1)
            gc.collect()
            t0 = time.perf_counter()
            result = lh.merge(name, src, on="id")
            dt = time.perf_counter() - t0
            got = row_count(lh.table_path(name))
            if got != expect or result.num_target_rows_updated != updates:
                raise AssertionError(
                    f"{side}: {got} rows and {result.num_target_rows_updated} updates after the merge, "
                    f"expected {expect} and {updates}"
                )
            took[side] = dt
            if rep:
                merges[side].runs.append(dt)
        if rep:
            src = source(spark, salt=100 + rep)
            t0 = time.perf_counter()
            src.toArrow()
            to_arrow.runs.append(time.perf_counter() - t0)
        shutil.rmtree(local_lh.table_path(f"bench.target_{rep}"), ignore_errors=True)
        print(
            f"  {'warm-up' if rep == 0 else f'run {rep}/{args.repeats}'} done: "
            + ", then ".join(f"{side} {took[side]:.2f} s" for side in names)
            + f" (/proc/loadavg {load()})",
            flush=True,
        )
    lo, hi = merges["local"], merges["S3"]
    ratio = hi.median / lo.median
    lines = [
        f"== 2. merge of {rows:,} source rows into {rows:,} target rows: seconds, median of {args.repeats} "
        f"after 1 warm-up (min-max) ==",
        f"  lh.merge, local disk                    {lo.median:8.2f}  ({min(lo.runs):.2f}-{max(lo.runs):.2f})",
        f"  lh.merge, S3                            {hi.median:8.2f}  ({min(hi.runs):.2f}-{max(hi.runs):.2f})"
        f"  ratio {ratio:.2f}x (best-run ratio {min(hi.runs) / min(lo.runs):.2f}x)",
        f"  info: the source's toArrow() alone      {to_arrow.median:8.2f}  (measured apart, same on both sides)",
        "",
    ]
    verdicts = [
        f"  {'PASS' if ratio <= MERGE_TARGET else 'MISS'}  {rows:,}-row merge on S3 / on local disk: {ratio:.2f}x "
        f"(target <= {MERGE_TARGET}x; {hi.median:.2f} s vs {lo.median:.2f} s)"
    ]
    return lines, verdicts


# -- the benchmark ------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--calls", type=int, default=200, help="timed tracking calls per side (default 200)")
    p.add_argument("--warmup", type=int, default=20, help="untimed tracking calls per side first (default 20)")
    p.add_argument("--rows", type=int, default=1_000_000, help="target rows, and source rows merged (default 1M)")
    p.add_argument("--repeats", type=int, default=3, help="timed merges per side after one warm-up (median)")
    p.add_argument("--master", default="local[2]")
    p.add_argument("--dir", default=None, help="working folder (default: a fresh temp dir); removed at the end")
    p.add_argument("--skip", nargs="*", default=[], choices=["tracking", "merge"], help="parts to skip")
    p.add_argument(
        "--profile",
        choices=["auto", "always", "never"],
        default="auto",
        help="cProfile 50 S3 log_metric calls: when the tracking target is missed (auto), always, or never",
    )
    args = p.parse_args(argv)
    if args.calls < 2 or args.warmup < 0:
        p.error("--calls must be >= 2 and --warmup >= 0")
    if args.rows < 4 or args.repeats < 1:
        p.error("--rows must be >= 4 and --repeats >= 1")

    work = Path(args.dir or tempfile.mkdtemp(prefix="objectstore-bench-")).resolve()
    work.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    server = s3_server.start(work / "s3proxy")
    try:
        with server.exported():
            print("== machine ==")
            for line in machine_facts(server):
                print(line)
            print(f"work dir    {work}", flush=True)
            print()
            s3_prefix = f"s3://{server.bucket}/bench-{uuid.uuid4().hex[:8]}"
            report: list[str] = []
            verdicts: list[str] = []
            if "tracking" not in args.skip:
                print("== 1. tracking commits ==", flush=True)
                lines, v, _ = tracking_section(args, work, s3_prefix)
                report += lines
                verdicts += v
                print(flush=True)
            if "merge" not in args.skip:
                print("== 2. merge ==", flush=True)
                lines, v = merge_section(args, work, s3_prefix, server)
                report += lines
                verdicts += v
                print(flush=True)
            for line in report:
                print(line)
            print("== targets ==")
            for line in verdicts:
                print(line)
            print()
            print(f"/proc/loadavg {load()}  (at end); wall {time.perf_counter() - t_start:.0f} s")
            sys.stdout.flush()
    finally:
        try:
            if "pyspark" in sys.modules:  # the session merge_section started, also when it failed half-way
                from pyspark.sql import SparkSession

                active = SparkSession.getActiveSession()
                if active is not None:
                    active.stop()
        finally:
            server.stop()
            if args.dir is None:
                shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
