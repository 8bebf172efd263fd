"""Benchmark: the lakehouse layer over each Delta engine against that engine used directly, in one run.

    .venv/bin/python benchmarks/delta_engines.py            # 5M-row target table, 1M-row batches
    .venv/bin/python benchmarks/delta_engines.py --quick    # smoke run (100k / 20k rows, one repeat)

Needs a Delta-enabled session from `lakehouse.local_spark()` (Delta's JARs on the classpath); it stops
with a message otherwise. Every operation is run four ways, side by side:

    A  Lakehouse(root, spark=spark, engine="delta-spark")
    B  delta-spark used directly: df.write.format("delta"), DeltaTable.forPath(...).merge(...).execute(),
       spark.read.format("delta").option("versionAsOf" | "timestampAsOf"), .optimize().executeCompaction(),
       .history()
    C  Lakehouse(root, spark=spark, engine="deltalake")
    D  deltalake used directly on the same Spark DataFrame: write_deltalake(p, df.toArrow()),
       DeltaTable(p).merge(df.toArrow(), ...).execute(), spark.read.parquet(*DeltaTable(p, version=v)
       .file_uris()) (the timestamp through DeltaTable.load_as_version), .optimize.compact(), .history()

Operations: create a table from the base DataFrame; append the batch; merge the batch (half updates of keys
spread over the whole table, half inserts); read the whole table at an earlier version and as of a timestamp
between two commits (materialised with `.write.format("noop")`); OPTIMIZE a table of several small appends;
and, as fixed costs in ms, a 1-row append and a history call. Ratios: A/B and C/D (target <= 1.1x).

Fairness: the inputs are built once (spark.range, deterministic) and cached, so their computation is never
timed; every run gets a new DataFrame over that cache (built untimed, as in lakehouse_vs_deltalake.py: an
action on an object that already ran one reuses its plans). Targets are byte-identical copies of one table
written once by delta-spark (both engines read and write it: reader 1 / writer 2), restored untimed before
every run; read-only operations share one table. One warm-up, then the median of --repeats runs, the four
sides alternating. Ratios over the target are profiled once (cProfile, lakehouse functions by cumulative
time) to show where the layer spends its time. deltalake's to_pyarrow_table / to_pyarrow_dataset /
to_pandas are never used (they can abort the process at exit).
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import pyarrow as pa
from deltalake import DeltaTable, write_deltalake

# The data, timing and restore helpers of the sibling benchmark (this folder is on sys.path when the
# script runs): one definition of the feature-like frame, the warm-up + median loop and the machine facts.
from lakehouse_vs_deltalake import (
    Fresh,
    Timing,
    feature_frame,
    file_count,
    machine_facts,
    measure,
    noop,
    reset_copy,
    table_rows,
    then,
)
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

import lakehouse
from lakehouse import Lakehouse

TARGET = 1.1
SIDES = ("A", "B", "C", "D")
HEADERS = {"A": "Lakehouse(delta-spark)", "B": "delta-spark raw", "C": "Lakehouse(deltalake)", "D": "deltalake raw"}
SMALL_FILES = 10  # commits in the table OPTIMIZE compacts


# -- data ---------------------------------------------------------------------------------------------------
def cached(df: DataFrame) -> DataFrame:
    """Cache and materialise `df`, so no timed run computes it."""
    df = df.cache()
    df.count()
    return df


def merge_ids(spark: SparkSession, base: int, rows: int) -> DataFrame:
    """`rows` keys: half spread evenly over the base table's ids (every file is touched), half new."""
    new = rows // 2
    matched = rows - new
    stride = max(1, base // max(matched, 1))
    return (
        spark.range(matched)
        .select((F.col("id") * F.lit(stride)).alias("id"))
        .unionByName(spark.range(base, base + new))
    )


# -- the four sides of one operation ------------------------------------------------------------------------
@dataclass
class Op:
    """One operation, run four ways. `setup[side]` runs untimed before each run of `run[side]`."""

    label: str
    run: dict[str, Callable[[], object]]
    setup: dict[str, Callable[[], None]]
    fixed: bool = False  # a small operation: report absolute ms per side, not ratios
    table: str | None = None  # the table it writes, whose row count is checked at the end


@dataclass
class Row:
    label: str
    timings: dict[str, Timing]
    fixed: bool


def discarding(fn: Callable[[], object]) -> Callable[[], None]:
    """`fn` without its result (`measure` takes a returned dict for sub-timings)."""

    def run() -> None:
        fn()

    return run


def run_op(op: Op, repeats: int) -> Row:
    print(f"== {op.label} ==", flush=True)
    timings = measure({s: discarding(op.run[s]) for s in SIDES}, repeats, setup=op.setup)
    row = Row(op.label, {s: timings[s] for s in SIDES}, op.fixed)
    print("  " + table([row])[2], flush=True)  # the row now, in case a long run is cut short
    return row


def ratio(row: Row, ours: str, raw: str) -> float:
    return row.timings[ours].median / row.timings[raw].median


def profile_once(op: Op, side: str, top: int = 14) -> list[str]:
    """One untimed-setup, profiled run of `op` on `side`: the lakehouse functions by cumulative time."""
    if side in op.setup:
        op.setup[side]()
    prof = cProfile.Profile()
    t0 = time.perf_counter()
    prof.enable()
    op.run[side]()
    prof.disable()
    wall = time.perf_counter() - t0
    stats = pstats.Stats(prof)
    pkg = os.path.dirname(lakehouse.__file__)
    rows = []
    for (filename, line, func), (_cc, ncalls, _tt, cum, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        if filename.startswith(pkg):
            rows.append((cum, ncalls, f"{os.path.relpath(filename, os.path.dirname(pkg))}:{line} {func}"))
    rows.sort(reverse=True)
    out = [f"  profile {HEADERS[side]} {op.label}: wall {wall:.2f} s; lakehouse functions by cumulative time"]
    out += [f"    {cum:7.3f} s  {n:4d} call(s)  {where}" for cum, n, where in rows[:top]]
    return out


# -- process start-up ---------------------------------------------------------------------------------------
_SPARK_START = "import lakehouse\nspark = lakehouse.local_spark(master='local[2]')\nspark.range(1).count()\n"
_DELTALAKE_OPEN = "import sys\nfrom deltalake import DeltaTable\nDeltaTable(sys.argv[1]).version()\n"


def startup_costs(table: str, repeats: int) -> list[tuple[str, Timing]]:
    """Wall time of fresh processes (interpreter start and exit included), median of `repeats`."""
    cases = [
        ("python -c pass (interpreter alone)", ["-c", "pass"]),
        ("import deltalake + open a table", ["-c", _DELTALAKE_OPEN, table]),
        ("lakehouse.local_spark() + spark.range(1).count()", ["-c", _SPARK_START]),
    ]
    out = []
    for label, argv in cases:
        t = Timing()
        for _ in range(repeats):
            t0 = time.perf_counter()
            subprocess.run([sys.executable, *argv], check=True, capture_output=True)
            t.runs.append(time.perf_counter() - t0)
        out.append((label, t))
        print(f"  {label:<50} {t.median:6.2f} s  ({t.spread()})", flush=True)
    return out


# -- report -------------------------------------------------------------------------------------------------
def fmt(t: Timing, fixed: bool) -> str:
    if fixed:
        return f"{t.median * 1000:.0f} ms ({min(t.runs) * 1000:.0f}-{max(t.runs) * 1000:.0f})"
    return f"{t.median:.2f} s ({t.spread()})"


def table(rows: list[Row]) -> list[str]:
    cells = [["operation", HEADERS["A"], HEADERS["B"], "ratio", HEADERS["C"], HEADERS["D"], "ratio"]]
    for r in rows:
        t = r.timings
        if r.fixed:  # a fixed cost: the layer's extra time, not a ratio of two small numbers
            extra_s = f"{(t['A'].median - t['B'].median) * 1000:+.0f} ms"
            extra_r = f"{(t['C'].median - t['D'].median) * 1000:+.0f} ms"
        else:
            extra_s = f"{ratio(r, 'A', 'B'):.2f}x"
            extra_r = f"{ratio(r, 'C', 'D'):.2f}x"
        cells.append(
            [
                r.label,
                fmt(t["A"], r.fixed),
                fmt(t["B"], r.fixed),
                extra_s,
                fmt(t["C"], r.fixed),
                fmt(t["D"], r.fixed),
                extra_r,
            ]
        )
    widths = [max(len(c[i]) for c in cells) for i in range(len(cells[0]))]
    lines = []
    for n, c in enumerate(cells):
        lines.append(
            " | ".join(x.ljust(w) if i == 0 else x.rjust(w) for i, (x, w) in enumerate(zip(c, widths, strict=False)))
        )
        if n == 0:
            lines.append("-+-".join("-" * w for w in widths))
    return lines


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


# -- the benchmark ------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=1_000_000, help="rows appended / merged (default 1M)")
    p.add_argument("--base", type=int, default=5_000_000, help="rows in the target table (default 5M)")
    p.add_argument("--repeats", type=int, default=3, help="timed runs per figure after one warm-up (median)")
    p.add_argument("--small-repeats", type=int, default=7, help="timed runs of the fixed-cost operations")
    p.add_argument("--startup-repeats", type=int, default=3, help="fresh processes per start-up figure")
    p.add_argument("--quick", action="store_true", help="smoke run: 100k-row table, 20k-row batch, 1 repeat")
    p.add_argument("--no-profile", action="store_true", help="do not profile ratios over the target")
    p.add_argument("--dir", default=None, help="working folder (default: a fresh temp dir); removed at the end")
    p.add_argument("--keep", action="store_true", help="keep the working folder")
    p.add_argument(
        "--only",
        action="append",
        metavar="TEXT",
        help="run only the operations whose label contains TEXT (repeatable), e.g. --only merge --repeats 15",
    )
    p.add_argument("--no-startup", action="store_true", help="skip the fresh-process start-up figures")
    args = p.parse_args(argv)
    if args.quick:
        args.rows, args.base, args.repeats, args.small_repeats, args.startup_repeats = 20_000, 100_000, 1, 3, 1
    if args.repeats < 1 or args.small_repeats < 1 or args.startup_repeats < 1:
        p.error("--repeats, --small-repeats and --startup-repeats must be >= 1")
    if args.rows < 2 * SMALL_FILES or args.base < args.rows:
        p.error(f"need --rows >= {2 * SMALL_FILES} and --base >= --rows")
    base_n, rows_n = args.base, args.rows

    work = args.dir or tempfile.mkdtemp(prefix="lh-engines-")
    os.makedirs(work, exist_ok=True)
    t_start = time.perf_counter()
    load_start = load()

    # -- process start-up, before this process starts its own JVM (nothing else of ours running) ------------
    if not args.no_startup:
        print(f"== process start-up: fresh processes, median of {args.startup_repeats} ==", flush=True)
    tiny = os.path.join(work, "tiny")
    write_deltalake(tiny, pa.table({"id": pa.array(range(10), pa.int64())}))
    startup = [] if args.no_startup else startup_costs(tiny, args.startup_repeats)
    print(flush=True)

    spark = lakehouse.local_spark(master="local[2]", extra_conf={"spark.driver.memory": "4g"})
    if not lakehouse.delta_classes_loaded(spark):
        spark.stop()
        sys.exit(
            "delta_engines: lakehouse.local_spark() returned a session without Delta's classes "
            "(io.delta.tables.DeltaTable), so delta-spark cannot run. Put the delta-spark JARs on the "
            "classpath, e.g. LAKEHOUSE_DELTA_JARS=$(ls /path/to/jars/*.jar | paste -sd,)"
        )
    from delta.tables import DeltaTable as SparkDeltaTable

    rows: list[Row] = []
    profiles: list[str] = []
    try:
        print("== machine ==")
        for line in machine_facts(spark):
            print(line)
        print(
            f"workload    target {base_n:,} rows, batch {rows_n:,} rows (merge: half updates, half inserts), "
            f"repeats {args.repeats} (+1 warm-up), fixed costs {args.small_repeats}, dir {work}"
        )
        print(flush=True)

        lh_s = Lakehouse(os.path.join(work, "lake-spark"), spark=spark, engine="delta-spark")
        lh_r = Lakehouse(os.path.join(work, "lake-rs"), spark=spark, engine="deltalake")
        pristine = os.path.join(work, "pristine")
        raw = {s: os.path.join(work, f"raw-{s}") for s in ("B", "D")}

        def path(side: str, table: str) -> str:
            if side == "A":
                return lh_s.table_path(f"bench.{table}")
            if side == "C":
                return lh_r.table_path(f"bench.{table}")
            return os.path.join(raw[side], table)

        # -- inputs, cached once ---------------------------------------------------------------------------
        print("== inputs and shared tables (untimed) ==", flush=True)
        base_df = cached(feature_frame(spark, spark.range(base_n), salt=0))
        merge_df = cached(feature_frame(spark, merge_ids(spark, base_n, rows_n), salt=1))
        append_df = cached(feature_frame(spark, spark.range(2 * base_n, 2 * base_n + rows_n), salt=2))
        one_df = cached(feature_frame(spark, spark.range(3 * base_n, 3 * base_n + 1), salt=3))
        src = {
            name: Fresh(lambda d=d: d.select("*"))
            for name, d in (("base", base_df), ("merge", merge_df), ("append", append_df), ("one", one_df))
        }

        # The target of append and merge: the base table as delta-spark writes it.
        base_table = os.path.join(pristine, "base")
        base_df.write.format("delta").save(base_table)
        # The time-travel table: v0 base, v1 + append, v2 merge; commits >= 2 s apart.
        tt = os.path.join(pristine, "timetravel")
        base_df.write.format("delta").save(tt)
        time.sleep(2)
        append_df.write.format("delta").mode("append").save(tt)
        time.sleep(2)
        (
            SparkDeltaTable.forPath(spark, tt)
            .alias("t")
            .merge(merge_df.alias("s"), "t.id = s.id")
            .whenMatchedUpdateAll()
            .whenNotMatchedInsertAll()
            .execute()
        )
        commits = sorted(
            (r["version"], r["ms"])
            for r in SparkDeltaTable.forPath(spark, tt)
            .history()
            .select("version", F.unix_millis("timestamp").alias("ms"))
            .collect()
        )
        tt_when = datetime.fromtimestamp((commits[1][1] + commits[2][1]) / 2000, tz=UTC)
        tt_text = tt_when.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]  # session time zone is UTC
        # The OPTIMIZE table: SMALL_FILES appends of one small file each.
        small = os.path.join(pristine, "small")
        chunk = rows_n // SMALL_FILES
        for i in range(SMALL_FILES):
            lo = 2 * base_n + i * chunk
            (
                append_df.where((F.col("id") >= lo) & (F.col("id") < lo + chunk))
                .coalesce(1)
                .write.format("delta")
                .mode("append")
                .save(small)
            )
        print(f"  base       {table_rows(base_table):,} rows in {file_count(base_table)} files", flush=True)
        print(
            f"  timetravel v0 {table_rows(tt, 0):,} / v1 {table_rows(tt, 1):,} / v2 {table_rows(tt, 2):,} rows; "
            f"read at version 1 and at {tt_text} (between v1 and v2)",
            flush=True,
        )
        print(
            f"  small      {table_rows(small):,} rows in {file_count(small)} files, {SMALL_FILES} commits", flush=True
        )
        print(flush=True)

        def restore(table: str, pristine_path: str) -> dict[str, Callable[[], None]]:
            return {s: reset_copy(pristine_path, path(s, table)) for s in SIDES}

        def renew_with(name: str, steps: dict[str, Callable[[], None]]) -> dict[str, Callable[[], None]]:
            return {s: then(steps[s], src[name].renew) for s in SIDES}

        def removed(table: str) -> dict[str, Callable[[], None]]:
            return {s: (lambda q=path(s, table): shutil.rmtree(q, ignore_errors=True)) for s in SIDES}  # noqa: B008 - binds q per side

        def spark_merge(p_: str, df: DataFrame) -> None:
            (
                SparkDeltaTable.forPath(spark, p_)
                .alias("t")
                .merge(df.alias("s"), "t.id = s.id")
                .whenMatchedUpdateAll()
                .whenNotMatchedInsertAll()
                .execute()
            )

        def rs_merge(p_: str, df: DataFrame) -> None:
            (
                DeltaTable(p_)
                .merge(df.toArrow(), "t.id = s.id", source_alias="s", target_alias="t")
                .when_matched_update_all()
                .when_not_matched_insert_all()
                .execute()
            )

        def rs_read_at(when: datetime) -> DataFrame:
            dt = DeltaTable(tt)
            dt.load_as_version(when)
            return spark.read.parquet(*dt.file_uris())

        ops = [
            Op(
                f"create table ({base_n:,} rows)",
                {
                    "A": lambda: lh_s.create_table("bench.create", src["base"].df),
                    "B": lambda: src["base"].df.write.format("delta").save(path("B", "create")),
                    "C": lambda: lh_r.create_table("bench.create", src["base"].df),
                    "D": lambda: write_deltalake(path("D", "create"), src["base"].df.toArrow()),
                },
                renew_with("base", removed("create")),
                table="create",
            ),
            Op(
                f"append {rows_n:,} rows",
                {
                    "A": lambda: lh_s.append("bench.append", src["append"].df),
                    "B": lambda: src["append"].df.write.format("delta").mode("append").save(path("B", "append")),
                    "C": lambda: lh_r.append("bench.append", src["append"].df),
                    "D": lambda: write_deltalake(path("D", "append"), src["append"].df.toArrow(), mode="append"),
                },
                renew_with("append", restore("append", base_table)),
                table="append",
            ),
            Op(
                f"merge {rows_n:,} rows (1/2 upd.)",
                {
                    "A": lambda: lh_s.merge("bench.merge", src["merge"].df, on="id"),
                    "B": lambda: spark_merge(path("B", "merge"), src["merge"].df),
                    "C": lambda: lh_r.merge("bench.merge", src["merge"].df, on="id"),
                    "D": lambda: rs_merge(path("D", "merge"), src["merge"].df),
                },
                renew_with("merge", restore("merge", base_table)),
                table="merge",
            ),
            Op(
                "read versionAsOf=1 -> noop",
                {
                    "A": lambda: noop(lh_s.read(tt, version=1)),
                    "B": lambda: noop(spark.read.format("delta").option("versionAsOf", 1).load(tt)),
                    "C": lambda: noop(lh_r.read(tt, version=1)),
                    "D": lambda: noop(spark.read.parquet(*DeltaTable(tt, version=1).file_uris())),
                },
                {},
            ),
            Op(
                "read timestampAsOf -> noop",
                {
                    "A": lambda: noop(lh_s.read(tt, timestamp=tt_when)),
                    "B": lambda: noop(spark.read.format("delta").option("timestampAsOf", tt_text).load(tt)),
                    "C": lambda: noop(lh_r.read(tt, timestamp=tt_when)),
                    "D": lambda: noop(rs_read_at(tt_when)),
                },
                {},
            ),
            Op(
                f"optimize {SMALL_FILES} small files",
                {
                    "A": lambda: lh_s.optimize("bench.optimize"),
                    "B": lambda: SparkDeltaTable.forPath(spark, path("B", "optimize")).optimize().executeCompaction(),
                    "C": lambda: lh_r.optimize("bench.optimize"),
                    "D": lambda: DeltaTable(path("D", "optimize")).optimize.compact(),
                },
                restore("optimize", small),
                table="optimize",
            ),
        ]
        fixed_ops = [
            Op(
                "append 1 row (fixed cost)",
                {
                    "A": lambda: lh_s.append("bench.one", src["one"].df),
                    "B": lambda: src["one"].df.write.format("delta").mode("append").save(path("B", "one")),
                    "C": lambda: lh_r.append("bench.one", src["one"].df),
                    "D": lambda: write_deltalake(path("D", "one"), src["one"].df.toArrow(), mode="append"),
                },
                {s: src["one"].renew for s in SIDES},
                fixed=True,
                table="one",
            ),
            Op(
                f"history, {SMALL_FILES} commits (fixed cost)",
                {
                    "A": lambda: lh_s.history(small),
                    "B": lambda: SparkDeltaTable.forPath(spark, small).history().collect(),
                    "C": lambda: lh_r.history(small),
                    "D": lambda: DeltaTable(small).history(),
                },
                {},
                fixed=True,
            ),
        ]

        if args.only:
            ops = [op for op in ops if any(t in op.label for t in args.only)]
            fixed_ops = [op for op in fixed_ops if any(t in op.label for t in args.only)]
            if not ops and not fixed_ops:
                p.error(f"--only {args.only}: no operation's label contains that")
        ran = {op.table for op in ops + fixed_ops}
        for op in ops:
            rows.append(run_op(op, args.repeats))
            print(flush=True)
        for s in SIDES:  # each side appends its 1-row batches to its own copy of the small table
            reset_copy(small, path(s, "one"))()
        for op in fixed_ops:
            rows.append(run_op(op, args.small_repeats))
            print(flush=True)

        # -- the same work on every side ---------------------------------------------------------------------
        expect = {
            "create": base_n,
            "append": base_n + rows_n,
            "merge": base_n + rows_n // 2,
            "optimize": chunk * SMALL_FILES,
            "one": chunk * SMALL_FILES + args.small_repeats + 1,
        }
        for name, n in expect.items():
            if name not in ran:
                continue
            for s in SIDES:
                got = table_rows(path(s, name))
                if got != n:
                    raise AssertionError(f"{HEADERS[s]} {name}: {got:,} rows, expected {n:,}")
        for s in SIDES if "optimize" in ran else ():
            if file_count(path(s, "optimize")) != 1:
                raise AssertionError(f"{HEADERS[s]}: OPTIMIZE left {file_count(path(s, 'optimize'))} files, expected 1")
        v1 = table_rows(tt, 1)
        for label, df in (
            ("A", lh_s.read(tt, timestamp=tt_when)),
            ("C", lh_r.read(tt, timestamp=tt_when)),
            ("D", rs_read_at(tt_when)),
            ("B", spark.read.format("delta").option("timestampAsOf", tt_text).load(tt)),
        ):
            if df.count() != v1:
                raise AssertionError(f"{HEADERS[label]}: timestampAsOf read the wrong version")

        # -- where the layer's time goes ----------------------------------------------------------------------
        if not args.no_profile:
            for op, row in zip(ops, rows, strict=False):
                for ours, ref in (("A", "B"), ("C", "D")):
                    if ratio(row, ours, ref) > TARGET:
                        profiles += profile_once(op, ours)
    finally:
        try:
            spark.stop()
        finally:
            if args.dir is None and not args.keep:
                shutil.rmtree(work, ignore_errors=True)

    # -- report -------------------------------------------------------------------------------------------
    print(
        f"== results: median of {args.repeats} runs after a warm-up (min-max); fixed costs: median of "
        f"{args.small_repeats}; ratio = Lakehouse / the engine used directly =="
    )
    for line in table(rows):
        print(line)
    print()
    print(f"== targets: Lakehouse <= {TARGET}x the engine it wraps ==")
    for row in rows:
        if row.fixed:
            continue
        for ours, ref in (("A", "B"), ("C", "D")):
            r = ratio(row, ours, ref)
            print(f"  {'PASS' if r <= TARGET else 'MISS'}  {row.label:<32} {HEADERS[ours]:<24} {r:5.2f}x")
    print()
    if startup:
        print(f"== process start-up: fresh process wall time, median of {args.startup_repeats} (min-max) ==")
        for label, t in startup:
            print(f"  {label:<50} {t.median:6.2f} s  ({t.spread()})")
    if profiles:
        print()
        print("== profiles of ratios over the target (one run each) ==")
        for line in profiles:
            print(line)
    print()
    print(f"load avg    {load_start} (at start), {load()} (at end); wall {time.perf_counter() - t_start:.0f} s")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
