"""The `features` job (issue 15): run a feature pipeline window by window and merge its rows into a feature table.

A pipeline is a user function named `"package.module:function"`, called once per window as

    fn(start: datetime, end: datetime) -> DataFrame

with `start` and `end` aware UTC datetimes bounding the half-open window [start, end); it returns a Spark
DataFrame (or a pandas DataFrame / pyarrow Table) of feature rows. A pipeline that needs Spark takes the active
session (`SparkSession.builder.getOrCreate()`: the job's own). Each window's rows are merged into the feature
table with `FeatureStoreClient.write_table(mode="merge")`, one commit per window, by the table's keys: running
a window again writes the same keys again, never a second copy of them.

Backfill state lives in the Delta table `jobs.feature_windows` of the lake, so any process sees it: one row per
attempt at a window (table, pipeline, window, status "succeeded" or "failed", rows written, feature-table version
committed, the error's traceback, attempt number, time), appended by the lean writer (`lakehouse.LeanTable`, no
Spark job); a window's state is its latest attempt. Windows run oldest first; a window whose latest attempt for
this table and pipeline succeeded is skipped (`rerun=True` runs it again); the first window that fails stops the
run, as Airflow and Databricks backfills stop, recorded as failed, and the job raises `FeatureWindowError` naming
it. The next run over the same range therefore starts at that window.
"""

from __future__ import annotations

import calendar
import importlib
import logging
import re
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa

from feature_store import FeatureStoreClient
from lakehouse import Change, LeanTable, table_path, to_spark_dataframe, to_utc
from lakehouse.errors import LakehouseError

from ._progress import track
from ._runner import lake_root
from .errors import FeatureWindowError, InvalidJobArgumentError

__all__ = ["WINDOWS_TABLE", "FeatureWindowError", "Window", "features", "plan_windows"]

_log = logging.getLogger(__name__)

JOB = "features"
WINDOWS_TABLE = "jobs.feature_windows"
"""The Delta table holding each window's state: which succeeded, which failed and why."""
_TS = pa.timestamp("us", tz="UTC")
WINDOWS_SCHEMA = pa.schema(
    [
        ("table_name", pa.string()),
        ("pipeline", pa.string()),
        ("window_start", _TS),
        ("window_end", _TS),
        ("status", pa.string()),
        ("rows", pa.int64()),
        ("table_version", pa.int64()),
        ("error", pa.string()),
        ("attempt", pa.int64()),
        ("at", _TS),
    ]
)
"""One row per attempt at a window (append-only); a window's state is its latest attempt."""
SUCCEEDED, FAILED = "succeeded", "failed"
MAX_WINDOWS = 10_000
"""The most windows one run plans (ten thousand days is 27 years): a larger plan is a mistyped window."""
CAUSE_CHARS = 500
"""Characters of a failed window's cause in FeatureWindowError's message (the first line of the error)."""
ERROR_CHARS = 2000
"""Characters of a failed window's error kept in the state table (its last ones: the traceback's end)."""

_NAMED = {"day": "1d", "daily": "1d", "week": "1w", "weekly": "1w", "month": "1mo", "monthly": "1mo", "hour": "1h"}
_STEP = re.compile(r"^\s*(\d+)\s*(h|d|w|mo)\s*$")


@dataclass(frozen=True)
class _Attempt:
    status: str
    error: str | None
    attempt: int
    at: datetime


@dataclass(frozen=True, order=True)
class Window:
    """A half-open interval [start, end) of aware UTC datetimes."""

    start: datetime
    end: datetime

    def __str__(self) -> str:
        return f"[{self.start.isoformat()}, {self.end.isoformat()})"


def features(
    lake: str,
    *,
    pipeline: str,
    table: str,
    start: datetime | str,
    end: datetime | str,
    window: str = "1d",
    primary_keys: Sequence[str] | str | None = None,
    timestamp_keys: Sequence[str] | str | None = None,
    rerun: bool = False,
    spark: Any = None,
) -> dict[str, Any]:
    """Run `pipeline` over [start, end) window by window, merging each window's rows into the feature `table`.

    Times are UTC (naive datetimes and offset-less strings mean UTC). Windows start at `start`, one `window`
    apart ("1h", "1d", "7d", "1w", "1mo", or "hour", "day", "week", "month"; months are calendar months, the day
    of `start` kept where the month has it); the last one ends at `end`. The table is created from the first
    window's rows when it does not exist, which needs `primary_keys` (and `timestamp_keys` for a time-series
    table); for an existing table, keys given must be the table's. Idempotent: a window run again merges the
    same keys. A window already recorded as succeeded for this table and pipeline is skipped unless `rerun`.

    Args:
        lake: the lake root or its `lakehouse:///` URI.
        pipeline: "package.module:function", called as `fn(start, end)` per window (see the module docstring).
        table: the feature table, by name ("features.customer_daily").
        spark: the SparkSession to use (default: the process's local session).

    Returns:
        table, pipeline, window, windows (planned), ran, skipped, rows_written, table_version (the last
        committed, None when nothing was), created (the table was made by this run), resumed_from (the first
        window run that had failed before, or None), and per window run: start, end, rows, table_version.

    Raises:
        InvalidJobArgumentError: a pipeline that does not import, a bad window or range, a missing table
            without primary keys, keys that are not the table's (nothing written).
        FeatureWindowError: a window failed (the ones before it are committed and recorded; it is recorded).

    Example:
        >>> features("/data/lake", pipeline="my_pipelines.daily:customer_features", table="features.customers",
        ...          start="2026-01-01", end="2026-02-01", window="day", primary_keys=["customer_id"],
        ...          timestamp_keys=["ts"])["ran"]
        31
    """
    fn = load_pipeline(pipeline)
    windows = plan_windows(start, end, window)
    if not isinstance(table, str) or not table.strip():
        raise InvalidJobArgumentError(JOB, "table", table, "a feature table name such as 'features.customers'")
    try:
        if "/" in table or "\\" in table or ":" in table:
            raise ValueError("a path or URI, not a name under the lake")
        table_path("/", table)
    except (LakehouseError, ValueError) as e:
        reason = getattr(e, "reason", None) or str(e)
        raise InvalidJobArgumentError(
            JOB, "table", table, f"a feature table name under the lake such as 'features.customers' ({reason})"
        ) from None
    if not isinstance(rerun, bool):
        raise InvalidJobArgumentError(JOB, "rerun", rerun, "True or False")
    keys = _names(primary_keys, "primary_keys")
    ts_keys = _names(timestamp_keys, "timestamp_keys")
    root = lake_root(lake, JOB)
    fs = FeatureStoreClient(root, spark=spark)
    exists = _check_table(fs, table, keys, ts_keys)

    state = _read_state(root, table, pipeline)
    todo = [w for w in windows if rerun or w not in state or state[w].status != SUCCEEDED]
    failed_before = [w for w in todo if w in state and state[w].status == FAILED]
    resumed_from = failed_before[0] if failed_before else None
    if resumed_from is not None:
        _log.info("%s: resuming at %s, which failed before: %s", table, resumed_from, state[resumed_from].error)
    _log.info(
        "%s: %s window(s) planned, %s to run, %s skipped", table, len(windows), len(todo), len(windows) - len(todo)
    )

    ran: list[dict[str, Any]] = []
    created = False
    last_version: int | None = None
    for w in track(todo, total=len(todo), description=f"features {table}"):
        attempt = state[w].attempt + 1 if w in state else 1
        try:
            rows, version, made = _run_window(fs, fn, w, table, keys, ts_keys, exists)
        except Exception as e:  # any failure of the window is the window's: recorded, reported
            cause = f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"[:CAUSE_CHARS]
            detail = "".join(traceback.format_exception(e))[-ERROR_CHARS:]
            _record(root, table, pipeline, w, FAILED, None, None, detail, attempt)
            _log.error("%s: window %s failed: %s", table, w, cause)
            raise FeatureWindowError(table, pipeline, w, len(ran), cause) from e
        exists = exists or made
        created = created or made
        if version is not None:
            last_version = version
        _record(root, table, pipeline, w, SUCCEEDED, rows, version, None, attempt)
        _log.info("%s: window %s: %s row(s) merged (version %s)", table, w, rows, version)
        ran.append({"start": w.start.isoformat(), "end": w.end.isoformat(), "rows": rows, "table_version": version})

    return {
        "table": table,
        "pipeline": pipeline,
        "window": window,
        "start": windows[0].start.isoformat(),
        "end": windows[-1].end.isoformat(),
        "windows": len(windows),
        "ran": len(ran),
        "skipped": len(windows) - len(todo),
        "rows_written": sum(r["rows"] for r in ran),
        "table_version": last_version,
        "created": created,
        "resumed_from": None if resumed_from is None else resumed_from.start.isoformat(),
        "windows_run": ran,
    }


# -- arguments ------------------------------------------------------------------------------------------------
def load_pipeline(pipeline: Any) -> Callable[[datetime, datetime], Any]:
    """The function `"package.module:function"` names; InvalidJobArgumentError saying why it cannot be had."""
    expected = "'package.module:function' naming an importable function fn(start, end) -> DataFrame"
    if not isinstance(pipeline, str) or pipeline.count(":") != 1 or not all(p.strip() for p in pipeline.split(":")):
        raise InvalidJobArgumentError(JOB, "pipeline", pipeline, expected)
    module_name, _, attr = pipeline.partition(":")
    try:
        module = importlib.import_module(module_name.strip())
    except Exception as e:  # noqa: BLE001 - an ImportError, or whatever the module raises on import
        raise InvalidJobArgumentError(
            JOB, "pipeline", pipeline, f"{expected}; importing {module_name!r} raised {type(e).__name__}: {e}"
        ) from None
    fn = getattr(module, attr.strip(), None)
    if not callable(fn):
        public = sorted(n for n, v in vars(module).items() if callable(v) and not n.startswith("_"))
        raise InvalidJobArgumentError(
            JOB, "pipeline", pipeline, f"{expected}; {module_name} has no function {attr!r} (it has {public})"
        )
    return fn


def parse_window(window: Any) -> tuple[int, str]:
    """(count, unit) of a window length: unit "h", "d", "w" or "mo"."""
    text = _NAMED.get(window.strip().lower(), window) if isinstance(window, str) else None
    match = _STEP.match(text.lower()) if isinstance(text, str) else None
    if match is None or int(match.group(1)) < 1:
        raise InvalidJobArgumentError(
            JOB, "window", window, "a length such as '1h', '1d', '7d', '1w', '1mo', or 'hour', 'day', 'week', 'month'"
        )
    return int(match.group(1)), match.group(2)


def plan_windows(start: Any, end: Any, window: Any) -> list[Window]:
    """The windows covering [start, end), oldest first, `window` apart from `start`; the last one ends at `end`."""
    count, unit = parse_window(window)
    first, last = _instant(start, "start"), _instant(end, "end")
    if first >= last:
        raise InvalidJobArgumentError(JOB, "end", end, f"a time after start ({first.isoformat()})")
    out: list[Window] = []
    lo = first
    k = 0
    while lo < last:
        k += 1
        try:
            if unit == "mo":
                hi = _add_months(first, count * k)
            else:
                hi = (
                    first + k * timedelta(hours=count)
                    if unit == "h"
                    else first + k * timedelta(days=count * (7 if unit == "w" else 1))
                )
        except (OverflowError, ValueError):  # a window longer than datetime reaches: one window to `end`
            hi = last
        out.append(Window(lo, min(hi, last)))
        lo = hi
        if len(out) > MAX_WINDOWS:
            raise InvalidJobArgumentError(
                JOB, "window", window, f"a length giving at most {MAX_WINDOWS} windows between {first} and {last}"
            )
    return out


def _add_months(t: datetime, months: int) -> datetime:
    y, m = divmod(t.month - 1 + months, 12)
    year, month = t.year + y, m + 1
    return t.replace(year=year, month=month, day=min(t.day, calendar.monthrange(year, month)[1]))


def _instant(value: Any, argument: str, job: str = JOB) -> datetime:
    try:
        return to_utc(value, argument=argument)
    except LakehouseError as e:
        raise InvalidJobArgumentError(
            job, argument, value, f"a UTC time: a datetime or an ISO 8601 string such as '2026-01-31' ({e})"
        ) from None


def _names(value: Any, argument: str, job: str = JOB) -> list[str] | None:
    if value is None:
        return None
    items = [value] if isinstance(value, str) else value
    if (
        isinstance(items, (str, bytes))
        or not isinstance(items, Sequence)
        or not items
        or not all(isinstance(v, str) and v.strip() for v in items)
    ):
        raise InvalidJobArgumentError(job, argument, value, "a column name or a non-empty list of column names")
    return [v.strip() for v in items]


def _check_table(fs: FeatureStoreClient, table: str, keys: list[str] | None, ts_keys: list[str] | None) -> bool:
    """Whether the feature table exists; refuses a missing one without keys, and keys that are not the table's."""
    found = next((t for t in fs.list_tables() if t.name == table), None)
    if found is None:
        if fs.lakehouse.exists(table):
            raise InvalidJobArgumentError(
                JOB,
                "table",
                table,
                "a feature table: this is a Delta table without feature-table keys; make it one with "
                "FeatureStoreClient.register_table(delta_table=..., primary_keys=...)",
            )
        if keys is None:
            names = [t.name for t in fs.list_tables()]
            raise InvalidJobArgumentError(
                JOB,
                "table",
                table,
                f"an existing feature table ({names}), or pass primary_keys (and timestamp_keys) to create it",
            )
        return False
    # The table's own keys may list the timestamp key among the primary keys (Unity Catalog's form).
    if keys is not None and [k for k in keys if k not in found.timestamp_keys] != [
        k for k in found.primary_keys if k not in found.timestamp_keys
    ]:
        raise InvalidJobArgumentError(
            JOB, "primary_keys", keys, f"the primary keys of {table}: {list(found.primary_keys)} (or leave it out)"
        )
    if ts_keys is not None and ts_keys != list(found.timestamp_keys):
        raise InvalidJobArgumentError(
            JOB,
            "timestamp_keys",
            ts_keys,
            f"the timestamp keys of {table}: {list(found.timestamp_keys)} (or leave it out)",
        )
    return True


# -- one window -----------------------------------------------------------------------------------------------
def _run_window(
    fs: FeatureStoreClient,
    fn: Callable[[datetime, datetime], Any],
    w: Window,
    table: str,
    keys: list[str] | None,
    ts_keys: list[str] | None,
    exists: bool,
) -> tuple[int, int | None, bool]:
    """Run the pipeline on `w` and merge its rows: (rows, version committed or None, table created)."""
    out = fn(w.start, w.end)
    df = to_spark_dataframe(fs.spark, out, argument=f"the DataFrame the pipeline returned for {w}")
    # Computed once: the row count and the merge then read the same rows, even from a non-deterministic pipeline.
    df = df.localCheckpoint(eager=True)
    rows = df.count()
    if not exists:  # _check_table refused a missing table without keys
        fs.create_table(table, keys or [], df, timestamp_keys=ts_keys)
        return rows, fs.lakehouse.latest_version(table), True
    if rows == 0:
        return 0, None, False
    return rows, fs.write_table(table, df, mode="merge"), False


# -- window state -----------------------------------------------------------------------------------------------
def _state_table(root: str) -> LeanTable:
    """`jobs.feature_windows`, written by the lean writer: one ~1 ms commit per attempt, no Spark job."""
    return LeanTable(
        path=table_path(root, WINDOWS_TABLE),
        name=WINDOWS_TABLE,
        schema=WINDOWS_SCHEMA,
        description="features job: one row per attempt at a window (the latest attempt is the window's state)",
        client_version="lakehouse-ml-jobs-features",
    )


def _read_state(root: str, table: str, pipeline: str) -> dict[Window, _Attempt]:
    """The latest attempt at every window recorded for this table and pipeline."""
    t = _state_table(root)
    if not t.exists():
        return {}
    t.refresh()
    out: dict[Window, _Attempt] = {}
    for r in t.rows_where("table_name", table):
        if r["pipeline"] != pipeline:
            continue
        a = _Attempt(r["status"], r["error"], r["attempt"], r["at"])
        w = Window(r["window_start"], r["window_end"])
        if w not in out or (a.at, a.attempt) > (out[w].at, out[w].attempt):
            out[w] = a
    return out


def _record(
    root: str,
    table: str,
    pipeline: str,
    w: Window,
    status: str,
    rows: int | None,
    version: int | None,
    error: str | None,
    attempt: int,
) -> None:
    t = _state_table(root)
    t.create_if_missing()
    row = {
        "table_name": table,
        "pipeline": pipeline,
        "window_start": w.start,
        "window_end": w.end,
        "status": status,
        "rows": rows,
        "table_version": version,
        "error": error,
        "attempt": attempt,
        "at": datetime.now(UTC),
    }
    t.write(lambda: Change([[row]]))


def window_state(lake: str, table: str, pipeline: str) -> dict[Window, tuple[str, str | None]]:
    """(status, error) of the latest attempt at each recorded window of `table` built by `pipeline`."""
    return {w: (a.status, a.error) for w, a in _read_state(lake_root(lake, JOB), table, pipeline).items()}
