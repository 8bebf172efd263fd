"""Benchmark: the lakehouse layer (engine="deltalake") against raw deltalake on the same data, in one run.

    .venv/bin/python benchmarks/lakehouse_vs_deltalake.py                  # 5M-row table, 1M-row batches
    .venv/bin/python benchmarks/lakehouse_vs_deltalake.py --scale 0.02     # quick check (100k / 20k rows)

What is measured (each figure: one warm-up, then the median of --repeat runs; the two sides alternate):

1. merge of the update batch into the base table, on byte-identical copies of one base table restored
   before every run (the restore is not timed):
     ours  `lh.merge(name, spark_df, on="id")`
     raw   `DeltaTable(path).merge(spark_df.toArrow(), "t.id = s.id", ...).when_matched_update_all()
            .when_not_matched_insert_all().execute()` -- timed with the toArrow() (the reference) and without.
   For information, raw merge into the table raw deltalake wrote itself (write_deltalake: other file
   layout, min/max stats), which is what someone using deltalake alone would have.
2. full read of the table into Spark, materialised with `.write.format("noop")`, at the latest version and
   at version 0: `lh.read(name[, version=0])` vs `spark.read.parquet(*DeltaTable(path, version=v).file_uris())`
   (the reference); for information, deltalake QueryBuilder -> Arrow -> spark.createDataFrame.
3. append of the update-sized batch from a Spark DataFrame: `lh.append(name, df)` vs
   `write_deltalake(path, df.toArrow(), mode="append")`, each into its own side's base table, restored
   before every run. For information, the bare Spark Parquet write that lh.append delegates to.

Every run gets a new source DataFrame (built untimed), as each batch would be in real use: re-running an
action on one DataFrame object reuses its plans, which would favour the side that hands Spark the object
unwrapped. Targets: ours <= 1.2x the reference for each. The data is built with spark.range (deterministic).
deltalake's to_pyarrow_table / to_pyarrow_dataset / to_pandas are never used (they can abort the process
at exit); reads go through QueryBuilder or file_uris.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import pyarrow as pa
from deltalake import DeltaTable, QueryBuilder, write_deltalake
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from lakehouse import Lakehouse, local_spark

TARGET = 1.2
BASE_TS = 1_700_000_000  # 2023-11-14 UTC, in seconds


# -- data ---------------------------------------------------------------------------------------------------
def feature_frame(spark: SparkSession, ids: DataFrame, salt: int) -> DataFrame:
    """Feature-like columns derived deterministically from `id`; `salt` changes every value but the key."""
    h = F.xxhash64(F.col("id"), F.lit(salt))
    return ids.select(
        F.col("id").cast("long").alias("id"),
        (F.pmod(h, F.lit(1_000_003)) / F.lit(1000.0)).alias("amount"),
        (F.pmod(F.xxhash64(F.col("id"), F.lit(salt + 7)), F.lit(1_000_000)) / F.lit(1e6)).alias("score"),
        F.concat(F.lit("segment_"), F.pmod(h, F.lit(500)).cast("string")).alias("segment"),
        F.timestamp_seconds(F.lit(BASE_TS) + F.pmod(F.col("id"), F.lit(86_400 * 30)) + F.lit(salt)).alias("event_ts"),
        F.pmod(h, F.lit(1000)).cast("int").alias("clicks"),
    )


def base_frame(spark: SparkSession, rows: int) -> DataFrame:
    return feature_frame(spark, spark.range(rows), salt=0)


def update_frame(spark: SparkSession, rows: int, updates: int, new_fraction: float) -> DataFrame:
    """`updates` rows: keys spread evenly over the base table (every file is touched), plus new keys."""
    new = round(updates * new_fraction)
    matched = updates - new
    stride = max(1, rows // max(matched, 1))
    ids = spark.range(matched).select((F.col("id") * F.lit(stride)).alias("id"))
    if new:
        ids = ids.unionByName(spark.range(rows, rows + new))
    return feature_frame(spark, ids, salt=1)


def append_frame(spark: SparkSession, rows: int, updates: int) -> DataFrame:
    return feature_frame(spark, spark.range(rows, rows + updates), salt=2)


# -- timing -------------------------------------------------------------------------------------------------
@dataclass
class Timing:
    runs: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.runs)

    def spread(self) -> str:
        return f"{min(self.runs):.2f}-{max(self.runs):.2f}"


def measure(
    cases: dict[str, Callable[[], dict[str, float] | None]],
    repeat: int,
    setup: dict[str, Callable[[], None]] | None = None,
) -> dict[str, Timing]:
    """Warm up each case once, then run them `repeat` times, alternating. A case returns extra named
    figures (sub-timings) or None; its own wall time is recorded under its name. `setup` runs untimed first.

    The order rotates every round (with as many rounds as cases, each case takes each place once): a case run
    right after a heavy Spark job can share the 2 cores with the JVM's clean-up of that job, and a fixed order
    would charge that to the same side every time."""
    setup = setup or {}
    out: dict[str, Timing] = {}
    names = list(cases)
    for rep in range(repeat + 1):  # rep 0 is the warm-up
        shift = rep % len(names)
        for name in names[shift:] + names[:shift]:
            fn = cases[name]
            if name in setup:
                setup[name]()
            gc.collect()
            t0 = time.perf_counter()
            extra = fn()
            dt = time.perf_counter() - t0
            if rep == 0:
                continue
            out.setdefault(name, Timing()).runs.append(dt)
            for k, v in (extra or {}).items():
                out.setdefault(k, Timing()).runs.append(v)
        print(
            f"  {'warm-up' if rep == 0 else f'run {rep}/{repeat}'} done (load avg 1 min {os.getloadavg()[0]:.2f})",
            flush=True,
        )
    return out


def reset_copy(pristine: str, path: str) -> Callable[[], None]:
    def run() -> None:
        if os.path.exists(path):
            shutil.rmtree(path)
        shutil.copytree(pristine, path)

    return run


class Fresh:
    """A new DataFrame for every run, built untimed in the setup: an action on a DataFrame object that already
    ran one reuses its optimised and physical plans (~0.1 s saved), which a side handed the same object
    every time would get and a layer that wraps it in a select would not. Each batch is new in real use."""

    def __init__(self, build: Callable[[], DataFrame]) -> None:
        self.build = build
        self.df: DataFrame = build()

    def renew(self) -> None:
        self.df = self.build()


def then(*steps: Callable[[], None]) -> Callable[[], None]:
    def run() -> None:
        for step in steps:
            step()

    return run


# -- helpers ------------------------------------------------------------------------------------------------
def noop(df: DataFrame) -> None:
    df.write.format("noop").mode("overwrite").save()


def table_rows(path: str, version: int | None = None) -> int:
    dt = DeltaTable(path, version=version)
    adds = pa.table(dt.get_add_actions(flatten=True))
    return int(pa.compute.sum(adds.column("num_records")).as_py() or 0)


def file_count(path: str, version: int | None = None) -> int:
    return len(DeltaTable(path, version=version).file_uris())


def spark_types(tbl: pa.Table) -> pa.Table:
    """QueryBuilder returns string_view / large types; Spark's createDataFrame wants the plain ones."""
    fields = []
    for f in tbl.schema:
        t = f.type
        if pa.types.is_string_view(t) or pa.types.is_large_string(t):
            t = pa.string()
        fields.append(pa.field(f.name, t, f.nullable))
    return tbl.cast(pa.schema(fields))


def host_facts() -> list[str]:
    """The machine a benchmark ran on (host, cores, memory, load, Python, Java): the first lines of its output."""
    try:
        java = subprocess.run(["java", "-version"], capture_output=True, text=True, timeout=30).stderr.splitlines()[0]
    except Exception:  # noqa: BLE001 - informational only
        java = "?"
    try:
        with open("/proc/meminfo") as fh:
            mem = next(line.split()[1] for line in fh if line.startswith("MemTotal"))
        mem_s = f"{int(mem) / 1024 / 1024:.1f} GiB"
    except Exception:  # noqa: BLE001
        mem_s = "?"
    nproc = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
    return [
        f"host        {platform.node()}  {platform.platform()}",
        f"nproc       {nproc} (os.cpu_count {os.cpu_count()}), memory {mem_s}",
        f"load avg    {' '.join(f'{x:.2f}' for x in os.getloadavg())} (at start)",
        f"python      {sys.version.split()[0]}",
        f"java        {java}",
    ]


def machine_facts(spark: SparkSession) -> list[str]:
    import deltalake
    import pyspark

    conf = spark.sparkContext.getConf()
    return [
        *host_facts(),
        f"pyspark     {pyspark.__version__}  master={spark.sparkContext.master}  "
        f"driver.memory={conf.get('spark.driver.memory', '1g (default)')}",
        f"deltalake   {deltalake.__version__}",
        f"pyarrow     {pa.__version__}",
    ]


# -- the benchmark ------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=5_000_000, help="rows in the base table (default 5M)")
    p.add_argument("--updates", type=int, default=1_000_000, help="rows merged / appended (default 1M)")
    p.add_argument("--scale", type=float, default=1.0, help="multiply --rows and --updates (e.g. 0.02)")
    p.add_argument(
        "--new-fraction",
        type=float,
        default=0.0,
        help="share of the merge batch whose keys are new (inserts); default 0: all updates",
    )
    p.add_argument("--repeat", type=int, default=3, help="timed runs per figure after one warm-up (median)")
    p.add_argument("--dir", default=None, help="working folder (default: a fresh temp dir); removed at the end")
    p.add_argument("--keep", action="store_true", help="keep the working folder")
    p.add_argument("--master", default="local[2]")
    p.add_argument(
        "--skip", nargs="*", default=[], choices=["merge", "read", "append", "arrow-read"], help="parts to skip"
    )
    args = p.parse_args(argv)
    rows = max(10, int(args.rows * args.scale))
    updates = max(2, int(args.updates * args.scale))
    if args.repeat < 1:
        p.error("--repeat must be >= 1")

    work = args.dir or tempfile.mkdtemp(prefix="lh-bench-")
    os.makedirs(work, exist_ok=True)
    created_work = args.dir is None
    spark = local_spark(master=args.master, extra_conf={"spark.ui.showConsoleProgress": "false"})
    results: list[tuple[str, str, Timing, Timing | None]] = []  # (section, label, ours-or-figure, reference)
    verdicts: list[tuple[str, float]] = []
    t_start = time.perf_counter()
    try:
        print("== machine ==")
        for line in machine_facts(spark):
            print(line)
        print(
            f"workload    base {rows:,} rows, batch {updates:,} rows (new keys {args.new_fraction:.0%}), "
            f"repeat {args.repeat} + 1 warm-up, dir {work}"
        )
        print(flush=True)

        lh = Lakehouse(os.path.join(work, "lake"), spark=spark, engine="deltalake")
        raw_root = os.path.join(work, "raw")
        os.makedirs(raw_root)

        # -- base tables, written once per side (timed once, for information) ---------------------------
        print("== base tables ==", flush=True)
        base_df = base_frame(spark, rows)
        t0 = time.perf_counter()
        lh.create_table("bench.base", base_df)
        t_create_ours = time.perf_counter() - t0
        ours_base = lh.table_path("bench.base")
        raw_base = os.path.join(raw_root, "base")
        t0 = time.perf_counter()
        data = base_df.toArrow()
        t_to_arrow_base = time.perf_counter() - t0
        write_deltalake(raw_base, data, mode="error")
        t_create_raw = time.perf_counter() - t0
        del data
        print(
            f"ours  lh.create_table          {t_create_ours:7.2f} s   {file_count(ours_base)} files, "
            f"{table_rows(ours_base):,} rows"
        )
        print(
            f"raw   toArrow + write_deltalake {t_create_raw:6.2f} s   {file_count(raw_base)} files, "
            f"{table_rows(raw_base):,} rows (toArrow {t_to_arrow_base:.2f} s)"
        )
        print(flush=True)

        upd = Fresh(lambda: update_frame(spark, rows, updates, args.new_fraction))
        app = Fresh(lambda: append_frame(spark, rows, updates))

        # -- 1. merge ------------------------------------------------------------------------------------
        if "merge" not in args.skip:
            print("== 1. merge ==", flush=True)
            ours_name = "bench.merge_ours"
            ours_path = lh.table_path(ours_name)
            raw_same = os.path.join(raw_root, "merge_same")  # identical copy of ours' base
            raw_own = os.path.join(raw_root, "merge_own")  # copy of raw's own base

            def ours_merge() -> None:
                lh.merge(ours_name, upd.df, on="id")

            def raw_merge(path: str, tag: str) -> Callable[[], dict[str, float]]:
                def run() -> dict[str, float]:
                    t0 = time.perf_counter()
                    src = upd.df.toArrow()
                    t1 = time.perf_counter()
                    (
                        DeltaTable(path)
                        .merge(src, "t.id = s.id", source_alias="s", target_alias="t")
                        .when_matched_update_all()
                        .when_not_matched_insert_all()
                        .execute()
                    )
                    t2 = time.perf_counter()
                    return {f"{tag} toArrow": t1 - t0, f"{tag} merge only": t2 - t1}

                return run

            timings = measure(
                {
                    "ours": ours_merge,
                    "raw": raw_merge(raw_same, "raw"),
                    "raw-own": raw_merge(raw_own, "raw-own"),
                },
                args.repeat,
                setup={
                    "ours": then(reset_copy(ours_base, ours_path), upd.renew),
                    "raw": then(reset_copy(ours_base, raw_same), upd.renew),
                    "raw-own": then(reset_copy(raw_base, raw_own), upd.renew),
                },
            )
            expect = rows + round(updates * args.new_fraction)
            for path in (ours_path, raw_same, raw_own):
                got = table_rows(path)
                if got != expect:
                    raise AssertionError(f"{path}: {got} rows after merge, expected {expect}")
            sec = "1. merge"
            results += [
                (sec, "ours  lh.merge", timings["ours"], timings["raw"]),
                (sec, "raw   toArrow + DeltaTable.merge  (reference)", timings["raw"], None),
                (sec, "raw   DeltaTable.merge only (source already Arrow)", timings["raw merge only"], None),
                (sec, "raw   spark_df.toArrow() only", timings["raw toArrow"], None),
                (sec, "info: raw toArrow + merge into raw's own base", timings["raw-own"], None),
                (sec, "info:   of which merge only", timings["raw-own merge only"], None),
            ]
            verdicts.append(("merge: ours / (toArrow + raw merge)", timings["ours"].median / timings["raw"].median))
            print(flush=True)

        # -- 2. read -------------------------------------------------------------------------------------
        if "read" not in args.skip:
            print("== 2. read ==", flush=True)
            # A table with two versions: v0 the base (Spark-written files), v1 after a merge (delta-rs files).
            read_name = "bench.read"
            read_path = lh.table_path(read_name)
            reset_copy(ours_base, read_path)()
            lh.merge(read_name, upd.df, on="id")
            latest = DeltaTable(read_path).version()
            print(
                f"  table: v0 {table_rows(read_path, 0):,} rows in {file_count(read_path, 0)} files; "
                f"v{latest} {table_rows(read_path):,} rows in {file_count(read_path)} files",
                flush=True,
            )

            def ours_read(version: int | None) -> Callable[[], None]:
                return lambda: noop(lh.read(read_name, version=version))

            def parquet_read(version: int | None) -> Callable[[], None]:
                return lambda: noop(spark.read.parquet(*DeltaTable(read_path, version=version).file_uris()))

            def arrow_read(version: int | None) -> Callable[[], dict[str, float]]:
                def run() -> dict[str, float]:
                    t0 = time.perf_counter()
                    dt = DeltaTable(read_path, version=version)
                    tbl = spark_types(pa.table(QueryBuilder().register("t", dt).execute("SELECT * FROM t").read_all()))
                    t1 = time.perf_counter()
                    noop(spark.createDataFrame(tbl))
                    return {f"arrow {version} query": t1 - t0}

                return run

            for version, label in ((None, f"latest (v{latest})"), (0, "version 0")):
                cases: dict[str, Callable[[], dict[str, float] | None]] = {
                    "ours": ours_read(version),
                    "parquet": parquet_read(version),
                }
                if "arrow-read" not in args.skip:
                    cases["arrow"] = arrow_read(version)
                timings = measure(cases, args.repeat)
                sec = f"2. read {label}"
                results += [
                    (sec, "ours  lh.read -> noop", timings["ours"], timings["parquet"]),
                    (sec, "raw   spark.read.parquet(file_uris) -> noop (reference)", timings["parquet"], None),
                ]
                if "arrow" in timings:
                    results += [
                        (sec, "info: QueryBuilder -> Arrow -> createDataFrame -> noop", timings["arrow"], None),
                        (sec, "info:   of which QueryBuilder -> Arrow", timings[f"arrow {version} query"], None),
                    ]
                verdicts.append(
                    (f"read {label}: ours / spark.read.parquet", timings["ours"].median / timings["parquet"].median)
                )
                gc.collect()
            print(flush=True)

        # -- 3. append -----------------------------------------------------------------------------------
        if "append" not in args.skip:
            print("== 3. append ==", flush=True)
            ours_name = "bench.append_ours"
            ours_path = lh.table_path(ours_name)
            raw_path = os.path.join(raw_root, "append")

            def ours_append() -> None:
                lh.append(ours_name, app.df)

            def raw_append() -> dict[str, float]:
                t0 = time.perf_counter()
                data = app.df.toArrow()
                t1 = time.perf_counter()
                write_deltalake(raw_path, data, mode="append")
                t2 = time.perf_counter()
                return {"append toArrow": t1 - t0, "append write only": t2 - t1}

            spark_out = os.path.join(work, "spark-parquet")

            def spark_parquet() -> None:  # the Spark job lh.append delegates to, without any Delta around it
                app.df.write.mode("errorifexists").parquet(spark_out)

            def clear_spark_out() -> None:
                shutil.rmtree(spark_out, ignore_errors=True)

            timings = measure(
                {"ours": ours_append, "raw": raw_append, "spark": spark_parquet},
                args.repeat,
                setup={
                    "ours": then(reset_copy(ours_base, ours_path), app.renew),
                    "raw": then(reset_copy(raw_base, raw_path), app.renew),
                    "spark": then(clear_spark_out, app.renew),
                },
            )
            clear_spark_out()
            for path in (ours_path, raw_path):
                got = table_rows(path)
                if got != rows + updates:
                    raise AssertionError(f"{path}: {got} rows after append, expected {rows + updates}")
            sec = "3. append"
            results += [
                (sec, "ours  lh.append", timings["ours"], timings["raw"]),
                (sec, "raw   toArrow + write_deltalake (reference)", timings["raw"], None),
                (sec, "raw   write_deltalake only (data already Arrow)", timings["append write only"], None),
                (sec, "raw   spark_df.toArrow() only", timings["append toArrow"], None),
                (sec, "info: spark df.write.parquet alone (no Delta)", timings["spark"], None),
                (sec, "info: lh.append vs that Spark write", timings["ours"], timings["spark"]),
            ]
            verdicts.append(
                ("append: ours / (toArrow + write_deltalake)", timings["ours"].median / timings["raw"].median)
            )
            print(flush=True)

        # -- report --------------------------------------------------------------------------------------
        print(
            f"== results: seconds, median of {args.repeat} (min-max); ratio = ours / reference (medians; "
            f"best-run ratio = fastest ours / fastest reference, for information) =="
        )
        width = max(len(r[1]) for r in results) if results else 40
        section = None
        for sec, label, t, ref in results:
            if sec != section:
                print(f"-- {sec}")
                section = sec
            ratio = (
                f"  ratio {t.median / ref.median:5.2f}x (best-run ratio {min(t.runs) / min(ref.runs):4.2f}x)"
                if ref is not None
                else ""
            )
            print(f"  {label:<{width}} {t.median:8.2f}  ({t.spread()}){ratio}")
        print()
        print(f"== targets: ours <= {TARGET}x reference ==")
        for label, ratio in verdicts:
            print(f"  {'PASS' if ratio <= TARGET else 'MISS'}  {label:<50} {ratio:5.2f}x")
        print()
        print(
            f"load avg    {' '.join(f'{x:.2f}' for x in os.getloadavg())} (at end); "
            f"wall {time.perf_counter() - t_start:.0f} s"
        )
        sys.stdout.flush()
    finally:
        try:
            spark.stop()
        finally:
            if created_work and not args.keep:
                shutil.rmtree(work, ignore_errors=True)
            elif args.dir and not args.keep:
                for sub in ("lake", "raw"):
                    shutil.rmtree(os.path.join(work, sub), ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
