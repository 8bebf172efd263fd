"""Benchmark: the tracking store (lakehouse:///) against MLflow's SQL store (sqlite:///) as the run history grows.

    .venv/bin/python benchmarks/tracking_scale.py                          # 20k runs
    .venv/bin/python benchmarks/tracking_scale.py --runs 20000,100000      # both sizes, with growth factors
    .venv/bin/python benchmarks/tracking_scale.py --runs 300,600 --cache-dir /tmp/bench-scale-cache  # quick check

For each size N in --runs:

1. Fill. One experiment "scale" (MlflowClient.create_experiment); N times: `create_run`, ONE `log_batch` of
   100 points of metric "loss" (steps 0-99) and 5 params p0..p4 (p0 = str(i % 100), so `params.p0 = '7'`
   matches 1% of the runs), `set_terminated`. Every value is a function of the run's index and step. Each
   fill runs in its own subprocess (the parent holds no store); progress every 10% on stderr.
   The sqlite fill (about an hour at 100k runs) is made once and kept in --cache-dir, named by N, the fill
   layout and the MLflow version, with a marker written only after the fill completed; later invocations
   copy the cached file to the scratch dir (measuring writes). The lake is filled fresh every invocation (its
   layout changes between commits) unless --reuse-lake: then it is cached too, named by the git commit
   (`-dirty` when the working tree has changes: such a cache is only as good as the tree it came from); the
   measured copy of a cached lake is made of hard links (`link_or_copy`).
2. Measure. Each store in a fresh Python subprocess (this file, hidden --measure mode, one JSON line out),
   in this order, each call timed with time.perf_counter:
     a) the first `search_runs([exp], "params.p0 = '7'", order_by=["metrics.loss DESC"], max_results=100)`,
        cold: MlflowClient construction and the store's start included (`import mlflow` is not: shown apart);
     b) `get_run`: the first call, then the median of 50 calls on other runs;
     c) `log_metric(run, "loss2", 1.0, step=1)` on existing runs: median of 20 (20 runs, one call each);
     d) `get_metric_history(run, "loss")` (100 points): the first call, then the median of 20 on other runs;
     e) the search of a) again, warm: median of 3;
     f) peak RSS: the parent samples the subprocess and its descendants every 20 ms with psutil and keeps the
        largest sum of RSS over the tree; the subprocess's own peak (`VmHWM`, read by it at the end: catches a
        peak shorter than 20 ms) is shown as a cross-check, and the RSS target is judged on the larger of the two.
        (Not `ru_maxrss`: Linux counts the spawning parent's RSS in it.)
   Run ids come from the fill (a JSON next to the store), so the measuring process does not search for them.
   The OS page cache is warm for both stores (the lake was just written, the sqlite file just copied).
3. Disk: bytes and files of the lake folder and of the sqlite file after the fill; then the lake again after
   VACUUM of every `mlflow.*` table (`tracking.TABLES`) with retention 0 hours
   (`Lakehouse.vacuum(..., retention_hours=0, enforce_retention_duration=False, dry_run=False)`, engine
   "deltalake"; Lakehouse wants a SparkSession, which the deltalake engine's vacuum never uses: it is handed a
   stand-in, so no JVM starts).
4. A table of lakehouse / sqlite / ratio (ours / sqlite) per size, the issue's targets next to each row, then
   PASS/FAIL per target: every call within 1x of sqlite's; peak RSS < 400 MB; peak RSS and get_run grow
   <= 1.2x from 20k to 100k runs (judged from the smallest to the largest --runs given); disk after
   maintenance <= 2x the sqlite file. MB = 10^6 bytes.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

# Only the standard library at module level: the --fill and --measure subprocesses import this file, and
# whatever it imports would count in their RSS. The parent imports psutil, lakehouse and tracking in main().

REPO = Path(__file__).resolve().parents[1]
FILL_LAYOUT = "fill1"  # bump when fill() writes other data: names the cached sqlite files (and lakes)
EXPERIMENT = "scale"
STEPS = 100  # points of metric "loss" per run
PARAMS = 5
SAMPLE = 72  # run ids kept for the measuring process: 1 + 50 get_run, 20 log_metric, 1 + 20 histories
FILTER = "params.p0 = '7'"
ORDER = ["metrics.loss DESC"]
BASE_MS = 1_700_000_000_000  # 2023-11-14 UTC, in milliseconds
RSS_TARGET_MB = 400.0
GROWTH_TARGET = 1.2
DISK_TARGET = 2.0
CALL_TARGET = 1.0
MB = 1e6
MARKER = "COMPLETE"
META = "runs.json"
RESULT_PREFIX = "TRACKING-SCALE-RESULT "


# -- data ---------------------------------------------------------------------------------------------------
def loss(i: int, step: int) -> float:
    return round(1.0 / (1 + step) + ((i * 7919) % 1000) / 10_000, 6)


def params_of(i: int) -> list[tuple[str, str]]:
    values = [str(i % 100), str(i), f"{(i % 7) * 0.5}", f"opt-{i % 13}", str(i % 2 == 0)]
    return [(f"p{j}", values[j]) for j in range(PARAMS)]


def expected_matches(n: int) -> int:
    """Runs whose p0 is '7' (i % 100 == 7), capped by max_results=100."""
    return min(100, n // 100 + (1 if n % 100 > 7 else 0))


def sample_indices(n: int) -> list[int]:
    return sorted({k * n // SAMPLE for k in range(min(SAMPLE, n))})


def quiet_logs() -> None:
    import logging

    for name in ("alembic", "mlflow.store.db.utils", "mlflow.store.db", "sqlalchemy"):
        logging.getLogger(name).setLevel(logging.WARNING)


# -- the subprocesses: fill and measure ----------------------------------------------------------------------
def fill(uri: str, n: int, meta_path: Path, label: str) -> None:
    """--fill mode: the experiment and its n runs; writes `meta_path` (the experiment id, sampled run ids)."""
    quiet_logs()
    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param

    t0 = time.perf_counter()
    client = MlflowClient(uri)
    client.search_experiments()  # the store's start (sqlite: creating the schema) is reported apart
    init_s = time.perf_counter() - t0
    keep = set(sample_indices(n))
    run_ids: list[str] = []
    every = max(1, n // 10)
    t0 = time.perf_counter()
    exp_id, first, run_ids, done_s = resume_point(client, n, keep, meta_path)
    for i in range(first, n):
        start = BASE_MS + 1000 * i
        run_id = client.create_run(exp_id, start_time=start).info.run_id
        client.log_batch(
            run_id,
            metrics=[Metric("loss", loss(i, s), start + s, s) for s in range(STEPS)],
            params=[Param(k, v) for k, v in params_of(i)],
        )
        client.set_terminated(run_id, end_time=start + 500)
        if i in keep:
            run_ids.append(run_id)
        if (i + 1) % every == 0 or i + 1 == n:
            dt = time.perf_counter() - t0
            print(
                f"  [{label}] fill {i + 1:,}/{n:,} runs ({100 * (i + 1) // n}%), {dt:.1f} s, "
                f"{(i + 1 - first) / dt:.0f} runs/s",
                file=sys.stderr,
                flush=True,
            )
            Path(f"{meta_path}.progress").write_text(str(done_s + dt))  # what a resumed fill adds to its own time
    fill_s = done_s + time.perf_counter() - t0
    meta = {"n": n, "experiment_id": exp_id, "run_ids": run_ids, "fill_s": fill_s, "store_init_s": init_s}
    if first:
        meta["resumed_at_run"] = first
    meta_path.write_text(json.dumps(meta))


def resume_point(client: Any, n: int, keep: set[int], meta_path: Path) -> tuple[str, int, list[str], float]:
    """Where a fill starts: (experiment id, first run index to write, sampled run ids so far, seconds spent so far).

    A fresh store starts at 0. A store an interrupted fill left behind (the parent keeps its partial folder) goes on
    after its last complete run: run i starts at BASE_MS + 1000 i, and runs are written in order, so the FINISHED
    runs are exactly 0..k-1; a half-written run k (RUNNING) is deleted and written again. The time spent before is
    read from the progress file `<meta>.progress` and added, so fill_s stays the fill's whole time.
    """
    exp = client.get_experiment_by_name(EXPERIMENT)
    if exp is None:
        return client.create_experiment(EXPERIMENT), 0, [], 0.0
    finished = client.search_runs([exp.experiment_id], "attributes.status = 'FINISHED'", max_results=1)
    first = 0 if not finished else (finished[0].info.start_time - BASE_MS) // 1000 + 1
    for run in client.search_runs([exp.experiment_id], "attributes.status = 'RUNNING'", max_results=1000):
        client.delete_run(run.info.run_id)
    run_ids: list[str] = []
    for i in sorted(k for k in keep if k < first):
        (run,) = client.search_runs([exp.experiment_id], f"attributes.start_time = {BASE_MS + 1000 * i}")
        run_ids.append(run.info.run_id)
    progress = Path(f"{meta_path}.progress")
    done_s = float(progress.read_text()) if progress.exists() else 0.0
    print(f"  resuming an interrupted fill at run {first:,} ({done_s:.0f} s spent before)", file=sys.stderr)
    return exp.experiment_id, first, run_ids, done_s


def measure(uri: str, meta_path: Path) -> dict[str, Any]:
    """--measure mode: the calls a) to e), in that order, in this fresh process. Seconds."""
    meta = json.loads(meta_path.read_text())
    exp_id, ids, n = meta["experiment_id"], meta["run_ids"], meta["n"]

    def rid(k: int) -> str:
        return ids[k % len(ids)]

    quiet_logs()
    t0 = time.perf_counter()
    from mlflow import MlflowClient

    out: dict[str, Any] = {"import_s": time.perf_counter() - t0}
    want = expected_matches(n)

    def search(client: Any) -> None:
        runs = client.search_runs([exp_id], filter_string=FILTER, order_by=ORDER, max_results=100)
        losses = [r.data.metrics["loss"] for r in runs]
        if len(runs) != want or losses != sorted(losses, reverse=True) or any(r.data.params["p0"] != "7" for r in runs):
            raise AssertionError(f"search_runs returned {len(runs)} runs (expected {want}), losses {losses[:5]}...")

    t0 = time.perf_counter()
    client = MlflowClient(uri)
    search(client)
    out["search_cold_s"] = time.perf_counter() - t0

    def timed(fn: Any, *args: Any) -> float:
        t = time.perf_counter()
        fn(*args)
        return time.perf_counter() - t

    out["get_run_first_s"] = timed(client.get_run, rid(0))
    out["get_run_s"] = statistics.median(timed(client.get_run, rid(k)) for k in range(1, 51))
    out["log_metric_s"] = statistics.median(
        timed(client.log_metric, rid(k), "loss2", 1.0, None, 1)
        for k in range(20)  # (key, value, timestamp, step)
    )

    def history(run_id: str) -> None:
        points = client.get_metric_history(run_id, "loss")
        if len(points) != STEPS:
            raise AssertionError(f"get_metric_history returned {len(points)} points, expected {STEPS}")

    out["history_first_s"] = timed(history, rid(51))
    out["history_s"] = statistics.median(timed(history, rid(k)) for k in range(52, 72))
    out["search_warm_s"] = statistics.median(timed(search, client) for _ in range(3))
    out["vmhwm_mb"] = peak_rss_since_exec() / MB
    return out


def peak_rss_since_exec() -> int:
    """This process's peak RSS in bytes (`VmHWM`: the high-water mark of the address space exec made). Not
    `ru_maxrss`: Linux carries the pre-exec address space's peak into it, i.e. the parent's RSS when it spawned
    this process (a 100k-run parent of ~700 MB made every child report 688.8 MB)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


# -- the parent: subprocesses, caches, disk, maintenance -----------------------------------------------------
def run_fill(uri: str, n: int, meta_path: Path, cwd: Path, label: str) -> float:
    """Fill in a subprocess; the wall seconds it took."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--fill", uri, "--meta", str(meta_path), "--n", str(n)]
    cmd += ["--label", label]
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, check=True)
    return time.perf_counter() - t0


def run_measure(uri: str, meta_path: Path, cwd: Path) -> dict[str, Any]:
    """Measure in a fresh subprocess, sampling the RSS of its process tree every 20 ms."""
    import psutil

    out_path = cwd / f"measure-{uuid.uuid4().hex[:8]}.out"
    cmd = [sys.executable, str(Path(__file__).resolve()), "--measure", uri, "--meta", str(meta_path)]
    with open(out_path, "w") as out:
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=out)
    peak = 0
    try:
        top = psutil.Process(proc.pid)
        while True:
            pid, status, _ = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            total = 0
            try:
                tree = [top, *top.children(recursive=True)]
            except psutil.NoSuchProcess:
                tree = []
            for p in tree:
                with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):  # it ended meanwhile
                    total += p.memory_info().rss
            peak = max(peak, total)
            time.sleep(0.02)
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped by wait4 above, not by Popen
    text = out_path.read_text()
    out_path.unlink()
    if proc.returncode != 0:
        raise RuntimeError(f"measuring {uri} failed (exit {proc.returncode}); its stdout:\n{text}")
    lines = [line for line in text.splitlines() if line.startswith(RESULT_PREFIX)]
    if not lines:
        raise RuntimeError(f"measuring {uri} printed no result; its stdout:\n{text}")
    result = json.loads(lines[-1].removeprefix(RESULT_PREFIX))
    result["rss_tree_mb"] = peak / MB
    result["rss_child_mb"] = result.pop("vmhwm_mb")  # not wait4's ru_maxrss: see peak_rss_since_exec
    return result


def link_or_copy(src: str, dst: str) -> None:
    """A hard link to the cached lake's file (a copy across file systems). Safe because no writer of the lake
    changes a file in place: data files, commits and checkpoints are new files, and `_last_checkpoint` is a
    temporary file renamed over the old one. At 100k runs (1.4M files) linking takes ~30 s, copying ~15 min."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def disk(path: Path) -> tuple[int, int]:
    """Bytes and files under `path` (a folder or one file)."""
    if path.is_file():
        return path.stat().st_size, 1
    size = files = 0
    for dirpath, _, names in os.walk(path):
        for name in names:
            st = os.lstat(os.path.join(dirpath, name))
            size += st.st_size
            files += 1
    return size, files


def sqlite_disk(db: Path) -> tuple[int, int]:
    parts = [p for p in (db, Path(f"{db}-wal"), Path(f"{db}-journal"), Path(f"{db}-shm")) if p.exists()]
    return sum(p.stat().st_size for p in parts), len(parts)


class NoSpark:
    """Stands in for the SparkSession `Lakehouse` takes: the deltalake engine's vacuum never uses it (any
    use raises, and is reported)."""

    def __getattr__(self, name: str) -> Any:
        raise RuntimeError(f"no Spark in this benchmark (spark.{name} was asked for)")


def vacuum_lake(root: Path) -> list[str]:
    """VACUUM every existing mlflow.* table with retention 0 hours; notes on what did not work."""
    from lakehouse import Lakehouse
    from tracking import TABLES

    lh = Lakehouse(str(root), spark=NoSpark(), engine="deltalake")  # type: ignore[arg-type]
    notes: list[str] = []
    removed = 0
    for name in TABLES:
        if not name.startswith("mlflow.") or not lh.exists(name):
            continue
        try:
            result = lh.vacuum(name, retention_hours=0, dry_run=False, enforce_retention_duration=False)
            removed += result.num_files
        except Exception as exc:  # noqa: BLE001 - reported in the output, the other tables go on
            notes.append(f"VACUUM {name} failed: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}")
    notes.insert(0, f"VACUUM removed {removed} file(s)")
    return notes


def git_commit() -> str:
    head = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    return f"{head}-dirty" if dirty else head


def cached(cache: Path, name: str, uri_of: Any, store: str, n: int, label: str) -> tuple[Path, dict[str, Any] | None]:
    """The cache entry `name`, filled now when missing or incomplete: its folder, and its marker when it was
    reused (None when filled now)."""
    entry = cache / name
    marker = entry / MARKER
    if marker.exists():
        info = json.loads(marker.read_text())
        print(f"  [{label}] reusing {entry} (filled {info['filled_at']}, {info['fill_s']:.1f} s)", file=sys.stderr)
        return entry, info
    shutil.rmtree(entry, ignore_errors=True)
    partial = cache / f"{name}.partial-{os.getpid()}"
    shutil.rmtree(partial, ignore_errors=True)
    left = sorted(cache.glob(f"{name}.partial-*"))  # an interrupted fill's store: the fill goes on from it
    if left:
        left[-1].rename(partial)
        for other in left[:-1]:
            shutil.rmtree(other, ignore_errors=True)
    partial.mkdir(parents=True, exist_ok=True)
    print(f"  [{label}] no complete cache entry {entry}: filling it", file=sys.stderr, flush=True)
    wall = run_fill(uri_of(partial / store), n, partial / META, partial, label)
    partial.rename(entry)
    meta = json.loads((entry / META).read_text())
    info = {
        "filled_at": time.strftime("%Y-%m-%d %H:%M:%S"),
        "fill_s": meta["fill_s"],
        "fill_wall_s": wall,
        "n": n,
        "layout": FILL_LAYOUT,
    }
    marker.write_text(json.dumps(info))  # last: an entry without it is refilled
    return entry, None


def sqlite_uri(path: Path) -> str:
    return f"sqlite:///{path}"


def lake_uri(path: Path) -> str:
    return f"lakehouse://{path}"


def bench_size(n: int, args: argparse.Namespace, work: Path, commit: str, notes: list[str]) -> dict[str, dict]:
    """The figures of one size: {"lakehouse": {...}, "sqlite": {...}}."""
    from importlib.metadata import version

    scratch = work / f"n{n}"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    cache = Path(args.cache_dir).expanduser().resolve()
    res: dict[str, dict[str, Any]] = {}
    sides = ["lakehouse", "sqlite"] if args.only == "both" else [args.only]

    if "sqlite" in sides:
        name = f"sqlite-n{n}-{FILL_LAYOUT}-mlflow{version('mlflow')}"
        entry, reused = cached(cache, name, sqlite_uri, "mlflow.db", n, f"sqlite {n}")
        (scratch / "sqlite").mkdir()
        db = scratch / "sqlite" / "mlflow.db"
        shutil.copyfile(entry / "mlflow.db", db)
        shutil.copyfile(entry / META, scratch / "sqlite" / META)
        size, files = sqlite_disk(db)
        fill_s = json.loads((entry / META).read_text())["fill_s"]
        fill_cached = reused["filled_at"] if reused else None
        res["sqlite"] = {"fill_s": fill_s, "fill_cached": fill_cached, "disk_b": size, "disk_n": files}
        res["sqlite"].update({"disk_vac_b": size, "disk_vac_n": files})  # the target compares with the file as is

    if "lakehouse" in sides:
        lake = scratch / "lake"
        if args.reuse_lake:
            entry, reused = cached(cache, f"lake-n{n}-{FILL_LAYOUT}-{commit}", lake_uri, "lake", n, f"lakehouse {n}")
            shutil.copytree(entry / "lake", lake, symlinks=True, copy_function=link_or_copy)
            shutil.copyfile(entry / META, scratch / "lake-runs.json")
            fill_s = json.loads((entry / META).read_text())["fill_s"]
            fill_cached = reused["filled_at"] if reused else None
        else:
            run_fill(lake_uri(lake), n, scratch / "lake-runs.json", scratch, f"lakehouse {n}")
            fill_s = json.loads((scratch / "lake-runs.json").read_text())["fill_s"]
            fill_cached = None
        size, files = disk(lake)
        res["lakehouse"] = {"fill_s": fill_s, "fill_cached": fill_cached, "disk_b": size, "disk_n": files}

    for side in sides:
        print(f"  [{side} {n}] measuring in a fresh process", file=sys.stderr, flush=True)
        if side == "lakehouse":
            res[side].update(run_measure(lake_uri(scratch / "lake"), scratch / "lake-runs.json", scratch))
        else:
            res[side].update(
                run_measure(sqlite_uri(scratch / "sqlite" / "mlflow.db"), scratch / "sqlite" / META, scratch)
            )

    if "lakehouse" in sides:
        for note in vacuum_lake(scratch / "lake"):
            notes.append(f"{n} runs: {note}")
        size, files = disk(scratch / "lake")
        res["lakehouse"].update({"disk_vac_b": size, "disk_vac_n": files})

    for figures in res.values():
        figures["fill_rate"] = n / figures["fill_s"]
        for key in [k for k in figures if k.endswith("_s") and k != "fill_s"]:
            figures[key.removesuffix("_s") + "_ms"] = 1000 * figures.pop(key)
        for key in ("disk_b", "disk_vac_b"):
            figures[key.removesuffix("_b") + "_mb"] = figures[key] / MB
        if "rss_tree_mb" in figures:
            figures["rss_mb"] = max(figures["rss_tree_mb"], figures["rss_child_mb"])
    if not args.workdir:
        shutil.rmtree(scratch, ignore_errors=True)
    return res


# -- the report ---------------------------------------------------------------------------------------------
CALL = f"<= {CALL_TARGET:g}x sqlite"
ROWS: list[tuple[str, str, str, str]] = [  # key, label, format, target
    ("fill_s", "fill: seconds", ",.1f", "info"),
    ("fill_rate", "fill: runs/s (higher is better)", ",.1f", "info"),
    ("search_cold_ms", "a) search_runs, cold (client+store) ms", ",.1f", CALL),
    ("get_run_first_ms", "b) get_run, first call ms", ",.3f", CALL),
    ("get_run_ms", "b) get_run, median of 50 ms", ",.3f", CALL),
    ("log_metric_ms", "c) log_metric, median of 20 ms", ",.2f", CALL),
    ("history_first_ms", "d) get_metric_history, first ms", ",.2f", CALL),
    ("history_ms", "d) get_metric_history, median 20 ms", ",.2f", CALL),
    ("search_warm_ms", "e) search_runs, warm, median of 3 ms", ",.1f", CALL),
    ("rss_tree_mb", "f) peak RSS, process tree MB", ",.1f", f"< {RSS_TARGET_MB:g} MB"),
    ("rss_child_mb", "f) VmHWM of the process MB", ",.1f", "cross-check"),
    ("import_ms", "   import mlflow (not in a) ms", ",.0f", "info"),
    ("disk_mb", "disk after fill MB", ",.1f", "info"),
    ("disk_n", "disk after fill: files", ",d", "info"),
    ("disk_vac_mb", "disk after VACUUM MB (sqlite: as is)", ",.1f", f"<= {DISK_TARGET:g}x sqlite"),
    ("disk_vac_n", "disk after VACUUM: files", ",d", "info"),
]


def cell(value: Any, fmt: str, width: int) -> str:
    return f"{'-':>{width}}" if value is None else f"{format(value, fmt):>{width}}"


def report(results: dict[int, dict[str, dict]], sizes: list[int]) -> tuple[list[str], list[str]]:
    """The table lines and the verdict lines."""
    w = 11
    head1 = f"{'':40}" + "".join(f" {f'-- {n:,} runs --':^{3 * w + 2}}" for n in sizes)
    head2 = f"{'measurement':40}" + "".join(f" {'lakehouse':>{w}} {'sqlite':>{w}} {'lake/sql':>{w}}" for _ in sizes)
    lines = [head1.rstrip(), head2 + "  target"]
    for key, label, fmt, target in ROWS:
        row = f"{label:40}"
        for n in sizes:
            lk = results[n].get("lakehouse", {}).get(key)
            sq = results[n].get("sqlite", {}).get(key)
            ratio = lk / sq if lk is not None and sq else None
            row += f" {cell(lk, fmt, w)} {cell(sq, fmt, w)} {cell(ratio, '.2f', w - 1)}{'x' if ratio else ' '}"
        lines.append(f"{row}  {target}")
    for n in sizes:
        for side in ("lakehouse", "sqlite"):
            when = results[n].get(side, {}).get("fill_cached")
            if when:
                lines.append(f"  {side} {n:,} runs: fill figures from the cache, filled {when}")

    verdicts: list[str] = []

    def verdict(ok: bool | None, text: str) -> None:
        verdicts.append(f"  {'n/a ' if ok is None else 'PASS' if ok else 'FAIL'}  {text}")

    for n in sizes:
        lk, sq = results[n].get("lakehouse"), results[n].get("sqlite")
        for key, label, _, target in ROWS:
            if target != CALL:
                continue
            if lk and sq:
                r = lk[key] / sq[key]
                verdict(r <= CALL_TARGET, f"{n:,} runs, {label}: {lk[key]:.2f} vs {sq[key]:.2f}, {r:.2f}x ({target})")
            else:
                verdict(None, f"{n:,} runs, {label}: needs both stores ({target})")
        if lk:
            verdict(
                lk["rss_mb"] < RSS_TARGET_MB,
                f"{n:,} runs, lakehouse peak RSS {lk['rss_mb']:.1f} MB (larger of tree {lk['rss_tree_mb']:.1f}, "
                f"VmHWM {lk['rss_child_mb']:.1f}; target < {RSS_TARGET_MB:g} MB; sqlite "
                f"{sq['rss_mb']:.1f} MB)"
                if sq
                else f"{n:,} runs, lakehouse peak RSS {lk['rss_mb']:.1f} MB (target < {RSS_TARGET_MB:g} MB)",
            )
        if lk and sq:
            r = lk["disk_vac_b"] / sq["disk_vac_b"]
            verdict(
                r <= DISK_TARGET,
                f"{n:,} runs, lake after VACUUM {lk['disk_vac_mb']:.1f} MB ({lk['disk_vac_n']:,} files) vs sqlite "
                f"file {sq['disk_vac_mb']:.1f} MB: {r:.2f}x (target <= {DISK_TARGET:g}x)",
            )
        else:
            verdict(None, f"{n:,} runs, disk after maintenance: needs both stores (target <= {DISK_TARGET:g}x)")

    lo, hi = sizes[0], sizes[-1]
    if len(sizes) > 1 and "lakehouse" in results[lo]:
        a, b = results[lo]["lakehouse"], results[hi]["lakehouse"]
        span = f"{lo:,} -> {hi:,} runs (the issue's target is for 20,000 -> 100,000)"
        for key, label in (("rss_mb", "peak RSS"), ("get_run_ms", "get_run median")):
            g = b[key] / a[key]
            extra = ""
            if "sqlite" in results[lo]:
                extra = f"; sqlite {results[hi]['sqlite'][key] / results[lo]['sqlite'][key]:.2f}x"
            verdict(
                g <= GROWTH_TARGET,
                f"lakehouse {label} growth {span}: {a[key]:.2f} -> {b[key]:.2f}, {g:.2f}x "
                f"(target <= {GROWTH_TARGET:g}x{extra})",
            )
    else:
        verdict(None, f"growth of peak RSS and get_run: needs two sizes and lakehouse (target <= {GROWTH_TARGET:g}x)")
    return lines, verdicts


# -- main ---------------------------------------------------------------------------------------------------
def load() -> str:
    with open("/proc/loadavg") as fh:
        return fh.read().strip()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", default="20000", help="comma-separated run counts (default 20000)")
    p.add_argument(
        "--cache-dir",
        default="~/.cache/lakehouse-ml/bench-scale/",
        help="where filled sqlite files (and, with --reuse-lake, lakes) are kept between invocations",
    )
    p.add_argument("--workdir", default=None, help="scratch folder, kept (default: a temp dir, removed at the end)")
    p.add_argument("--reuse-lake", action="store_true", help="cache the filled lake too, by git commit")
    p.add_argument("--only", choices=["lakehouse", "sqlite", "both"], default="both")
    # The subprocess modes (hidden).
    p.add_argument("--fill", default=None, help=argparse.SUPPRESS)
    p.add_argument("--measure", default=None, help=argparse.SUPPRESS)
    p.add_argument("--meta", default=None, help=argparse.SUPPRESS)
    p.add_argument("--n", type=int, default=None, help=argparse.SUPPRESS)
    p.add_argument("--label", default="", help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args.fill:
        fill(args.fill, args.n, Path(args.meta), args.label)
        return 0
    if args.measure:
        out = measure(args.measure, Path(args.meta))
        print(RESULT_PREFIX + json.dumps(out), flush=True)
        return 0

    try:
        sizes = sorted({int(x) for x in args.runs.split(",") if x.strip()})
    except ValueError:
        p.error(f"--runs takes comma-separated integers, got {args.runs!r}")
    if not sizes or sizes[0] < 1:
        p.error("--runs needs at least one positive run count")

    import sqlite3
    from importlib.metadata import version

    from lakehouse_vs_deltalake import host_facts  # the sibling benchmark's machine lines (this folder is on sys.path)

    work = Path(args.workdir or tempfile.mkdtemp(prefix="tracking-scale-")).resolve()
    work.mkdir(parents=True, exist_ok=True)
    commit = git_commit()
    t_start = time.perf_counter()
    print("== machine ==")
    print(f"command     {shlex.join([sys.executable, *sys.argv])}")
    for line in host_facts():
        print(line)
    print(
        f"libraries   mlflow {version('mlflow')}, deltalake {version('deltalake')}, pyarrow {version('pyarrow')}, "
        f"sqlite {sqlite3.sqlite_version}, psutil {version('psutil')}"
    )
    print(f"commit      {commit}")
    print(f"cache dir   {Path(args.cache_dir).expanduser().resolve()}  (fill layout {FILL_LAYOUT})")
    print(f"work dir    {work}{'' if args.workdir else ' (removed at the end)'}")
    print(
        f"workload    N runs x (1 log_batch of {STEPS} 'loss' points + {PARAMS} params); "
        f"search {FILTER!r} order by {ORDER[0]!r}, max_results=100",
        flush=True,
    )
    if args.reuse_lake and commit.endswith("-dirty"):
        print("note        --reuse-lake with a dirty working tree: a cached lake may come from other changes")
    print()
    results: dict[int, dict[str, dict]] = {}
    notes: list[str] = []
    try:
        for n in sizes:
            print(f"== {n:,} runs ==", file=sys.stderr, flush=True)
            results[n] = bench_size(n, args, work, commit, notes)
    finally:
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)
    lines, verdicts = report(results, sizes)
    print("== figures: lakehouse, sqlite, ratio lakehouse / sqlite (lower is better unless said) ==")
    for line in lines:
        print(line)
    if notes:
        print()
        print("== maintenance ==")
        for note in notes:
            print(f"  {note}")
    print()
    print("== targets ==")
    for line in verdicts:
        print(line)
    print()
    print(f"/proc/loadavg {load()}  (at end); wall {time.perf_counter() - t_start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
