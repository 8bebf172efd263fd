"""The `maintain` job (issue 15): OPTIMIZE and VACUUM every Delta table of a lake, or the ones named.

Two kinds of table, two ways to compact them:

- **The tracking tables** (`tracking.TABLES`, `mlflow.*`) are written by the lean writer (`lakehouse.LeanTable`),
  which the MLflow store reads through: its cold run tables are sorted by run id in 1024-row row groups, each
  merged file carrying a Bloom filter of its run ids in its `add` action's tags (ARCHITECTURE, "The tracking
  tables' layout"). A generic OPTIMIZE would drop those tags and unsort the rows (every `get_run` would then read
  every file), and delta-rs' compaction does not see the store's own compactions as conflicts (rows could be
  duplicated). So they are compacted here by the same writer the store uses: small files merged, sorted by the
  clustering column (the table's Z-order: run id, or trace id) into files of at most `COLD_MAX_ROWS` rows, with
  their Bloom filters, one `OPTIMIZE` commit (`dataChange=false`) per merged file, published by put-if-absent
  and re-planned after every lost race (concurrent MLflow writers, another `maintain`); then a checkpoint, so a
  cold store start replays no commit. `mlflow.journal` is left alone: the store removes its rows once applied.
- **Every other table** (feature tables, users' tables) goes through `lakehouse.Lakehouse.optimize` (compaction,
  Z-ordered by the columns the `zorder` argument or the table property `lakehouse.zorder.columns` names;
  serialised per table across processes) and is re-Z-ordered only after a data change.

VACUUM (`Lakehouse.vacuum`) is a dry run by default and keeps each table's `delta.deletedFileRetentionDuration`
(7 days when unset). A second run changes nothing: no table gets a new version.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs

import tracking
from lakehouse import Lakehouse, LeanTable, find_tables, is_object_store, retry_on_conflict, table_path
from lakehouse.errors import ConcurrentModificationError, RetentionPeriodTooShortError

from ._progress import track
from ._runner import lake_root
from .errors import InvalidJobArgumentError

__all__ = ["ZORDER_PROPERTY", "maintain"]

_log = logging.getLogger(__name__)

JOB = "maintain"
ZORDER_PROPERTY = "lakehouse.zorder.columns"
"""A table property naming the columns (comma-separated) OPTIMIZE Z-orders a non-tracking table by."""
CLIENT_VERSION = "lakehouse-ml-jobs-maintain"
"""The `clientVersion` of this job's commits to the tracking tables (what `DESCRIBE HISTORY` shows)."""
TRANSIENT_TABLES = frozenset({"mlflow.journal"})
"""Tracking tables whose rows the store removes once applied: nothing there is worth compacting."""
COLD_MAX_ROWS = 65_536
"""The largest file a merge here writes in a cold tracking table: the smallest bound the store itself uses
(runs, tags and latest values, whose updates rewrite the file holding the row)."""
HOT_MAX_ROWS = 2_000
"""The same for a tracking table the store holds in memory (the lean writer's small-file size)."""
BLOOM_TAG_PREFIX = "lakehouse.bloom."
"""An `add` action's tag holding a Bloom filter of the table's clustering column (named after the prefix)."""
DATA_CHANGES = frozenset(
    {"WRITE", "MERGE", "DELETE", "UPDATE", "CREATE TABLE", "CREATE OR REPLACE TABLE", "REPLACE TABLE", "RESTORE"}
)
"""Operations after which a Z-ordered table needs Z-ordering again (STREAMING UPDATE, TRUNCATE... count too)."""
MAX_LISTED_PATHS = 100
"""A table's result lists at most this many vacuumed paths (all are counted)."""


@dataclass
class _Plan:
    """A table chosen for maintenance, with what validation learnt about it."""

    name: str
    tracking: bool
    zorder: tuple[str, ...] = ()
    figures: dict[str, Any] = field(default_factory=dict)


def maintain(
    lake: str,
    *,
    tables: Sequence[str] | str | None = None,
    optimize: bool = True,
    vacuum: bool = True,
    dry_run: bool = True,
    retention_hours: float | None = None,
    zorder: Mapping[str, Sequence[str] | str] | Sequence[str] | None = None,
) -> dict[str, Any]:
    """OPTIMIZE, then VACUUM (a dry run unless `dry_run=False`) every Delta table under `lake`, or `tables`.

    `lake` is a lake root or a `lakehouse:///` URI. `tables` are names such as "mlflow.metrics" or
    "features.customers" (default: every table, leaving out `_`-prefixed folders such as the feature store's
    private metadata). `retention_hours` defaults to each table's own retention; less than a table's is refused.
    `zorder` maps non-tracking tables to the columns to Z-order them by (also accepted as "table=col1,col2"
    strings), overriding their `lakehouse.zorder.columns` property. Idempotent, and safe while MLflow writers,
    feature-table writers and another `maintain` run.

    Returns:
        {"lake", "optimize", "vacuum", "dry_run", "tables": {name: figures}, "totals"}; each table's figures hold
        its files and bytes before and after, what OPTIMIZE did and what VACUUM deleted (or would delete).

    Raises:
        InvalidJobArgumentError: an argument that cannot run the job (an unknown table, a retention below a
            table's, a Z-order column that does not exist); raised before anything is written.

    Example:
        >>> maintain("/data/lake", tables=["mlflow.metrics"], dry_run=False)["totals"]["files_after"]
    """
    root = lake_root(lake, JOB)
    for argument, value in (("optimize", optimize), ("vacuum", vacuum), ("dry_run", dry_run)):
        if not isinstance(value, bool):
            raise InvalidJobArgumentError(JOB, argument, value, "True or False")
    hours = _checked_hours(retention_hours)
    existing = find_tables(root)
    chosen = _chosen_tables(tables, existing, root)
    zcols = _zorder_argument(zorder, chosen)
    # delta-rs: VACUUM lists and deletes without a Spark job per table (delta-spark took seconds per table).
    lh = Lakehouse(root, engine="deltalake") if vacuum or any(not _is_tracking(n) for n in chosen) else None
    plans = [_Plan(n, _is_tracking(n)) for n in chosen]
    for plan in plans:  # every check before the first write
        if not plan.tracking and lh is not None:
            plan.zorder = _zorder_of(lh, plan.name, zcols.get(plan.name))
        elif plan.name in zcols:
            raise InvalidJobArgumentError(
                JOB,
                "zorder",
                {plan.name: list(zcols[plan.name])},
                f"{plan.name} is a tracking table, always clustered by its own key; Z-order feature or user tables",
            )
    if vacuum and hours is not None and lh is not None:
        _check_retention(lh, chosen, hours)

    _log.info(
        "maintain %s: %d table(s), optimize=%s, vacuum=%s, dry_run=%s", root, len(plans), optimize, vacuum, dry_run
    )
    started = time.monotonic()
    for plan in track(plans, total=len(plans), description="maintain"):
        plan.figures = _maintain_table(root, lh, plan, optimize=optimize, vacuum=vacuum, dry_run=dry_run, hours=hours)
        _log_figures(plan.name, plan.figures)
    figures = {p.name: p.figures for p in plans}
    return {
        "lake": root,
        "optimize": optimize,
        "vacuum": vacuum,
        "dry_run": dry_run,
        "tables": figures,
        "totals": _totals(figures.values()),
        "seconds": round(time.monotonic() - started, 3),
    }


def _log_figures(name: str, f: dict[str, Any]) -> None:
    vac = f.get("vacuum")
    _log.info(
        "%s: %d file(s) %d bytes -> %d file(s) %d bytes, %d OPTIMIZE commit(s)%s",
        name,
        f["files_before"],
        f["bytes_before"],
        f["files_after"],
        f["bytes_after"],
        f["commits"],
        ""
        if vac is None
        else f"; VACUUM{' (dry run)' if vac['dry_run'] else ''}: {vac['files']} file(s) {vac['bytes']} bytes",
    )


# -- arguments ---------------------------------------------------------------------------------------------------
def _checked_hours(value: float | None) -> float | None:
    if value is None:
        return None
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value) or value < 0:
        raise InvalidJobArgumentError(JOB, "retention_hours", value, "a finite number of hours >= 0, or None")
    return float(value)


def _chosen_tables(tables: Sequence[str] | str | None, existing: list[str], root: str) -> list[str]:
    if tables is None:
        return existing
    names = [tables] if isinstance(tables, str) else list(tables) if isinstance(tables, Iterable) else None
    if not names or not all(isinstance(n, str) and n for n in names):
        raise InvalidJobArgumentError(
            JOB, "tables", tables, "a non-empty list of table names such as ['mlflow.metrics']"
        )
    unknown = [n for n in names if n not in existing and not _private_table_exists(root, n)]
    if unknown:
        raise InvalidJobArgumentError(
            JOB, "tables", tables, f"no table(s) {unknown} under {root}; the tables there are {existing}"
        )
    return list(dict.fromkeys(names))


def _private_table_exists(root: str, name: str) -> bool:
    """A table of a `_`-prefixed namespace (left out of discovery) may still be named explicitly."""
    return name.split(".")[0].startswith("_") and name in find_tables(root, include_private=True)


def _zorder_argument(
    zorder: Mapping[str, Sequence[str] | str] | Sequence[str] | None, chosen: list[str]
) -> dict[str, tuple[str, ...]]:
    """{table: columns} from a mapping or from "table=col1,col2" strings (the command line's form)."""
    if zorder is None:
        return {}
    expected = "{table: [columns]} or ['table=col1,col2', ...]"
    pairs: list[tuple[Any, Any]]
    if isinstance(zorder, Mapping):
        pairs = list(zorder.items())
    elif isinstance(zorder, Sequence) and not isinstance(zorder, str):
        pairs = []
        for item in zorder:
            if not isinstance(item, str) or "=" not in item:
                raise InvalidJobArgumentError(JOB, "zorder", zorder, expected)
            table, _, cols = item.partition("=")
            pairs.append((table.strip(), [c.strip() for c in cols.split(",") if c.strip()]))
    else:
        raise InvalidJobArgumentError(JOB, "zorder", zorder, expected)
    out: dict[str, tuple[str, ...]] = {}
    for table, cols in pairs:
        columns = [cols] if isinstance(cols, str) else list(cols) if isinstance(cols, Iterable) else None
        if not isinstance(table, str) or not columns or not all(isinstance(c, str) and c for c in columns):
            raise InvalidJobArgumentError(JOB, "zorder", zorder, expected)
        if table not in chosen:
            raise InvalidJobArgumentError(
                JOB, "zorder", zorder, f"table {table!r} is not among the tables to maintain: {chosen}"
            )
        out[table] = tuple(columns)
    return out


def _zorder_of(lh: Lakehouse, name: str, given: tuple[str, ...] | None) -> tuple[str, ...]:
    info = lh.describe(name)
    declared = tuple(c.strip() for c in (info.properties.get(ZORDER_PROPERTY) or "").split(",") if c.strip())
    columns = given if given is not None else declared
    names = [c[0] for c in info.columns]  # (name, type) pairs
    unknown = [c for c in columns if c not in names]
    parts = [c for c in columns if c in info.partition_columns]
    source = "zorder" if given is not None else f"table property {ZORDER_PROPERTY}"
    if unknown or parts:
        raise InvalidJobArgumentError(
            JOB,
            "zorder",
            {name: list(columns)},
            f"{source} of {name}: column(s) {unknown or parts} are "
            f"{'not in the table' if unknown else 'partition columns'}; its data columns are "
            f"{[c for c in names if c not in info.partition_columns]}",
        )
    return columns


def _check_retention(lh: Lakehouse, names: list[str], hours: float) -> None:
    """Refuse a retention below any table's before anything is written. The table's minimum is what
    `Lakehouse.vacuum` enforces: probing with a dry run raises its RetentionPeriodTooShortError, which
    carries the minimum, before any listing."""
    short: dict[str, float] = {}
    for name in names:
        try:
            lh.vacuum(name, retention_hours=hours, dry_run=True)
        except RetentionPeriodTooShortError as exc:
            short[name] = exc.minimum_hours
    if short:
        raise InvalidJobArgumentError(
            JOB,
            "retention_hours",
            hours,
            f"at least each table's delta.deletedFileRetentionDuration (hours: {short}); leave it unset to use "
            "each table's own",
        )


def _is_tracking(name: str) -> bool:
    return name in tracking.TABLES


# -- one table ---------------------------------------------------------------------------------------------------
def _maintain_table(
    root: str, lh: Lakehouse | None, plan: _Plan, *, optimize: bool, vacuum: bool, dry_run: bool, hours: float | None
) -> dict[str, Any]:
    if plan.tracking:
        table = _lean_table(root, plan.name)
        figures: dict[str, Any] = {"kind": "tracking", "version_before": table.version}
        figures["files_before"], figures["bytes_before"] = _lean_files(table)
        if optimize:
            figures["optimize"] = _optimize_lean(table)
        figures["files_after"], figures["bytes_after"] = _lean_files(table)
        figures["version_after"] = table.version
        figures["commits"] = len((figures.get("optimize") or {}).get("versions") or ())
    else:
        if lh is None:
            raise RuntimeError("a non-tracking table needs a Lakehouse")  # maintain() builds one for them
        figures = {"kind": "delta", "version_before": lh.latest_version(plan.name)}
        figures["files_before"], figures["bytes_before"] = _delta_files(lh, plan.name)
        if optimize:
            figures["optimize"] = _optimize_delta(lh, plan.name, plan.zorder)
        figures["files_after"], figures["bytes_after"] = _delta_files(lh, plan.name)
        figures["version_after"] = lh.latest_version(plan.name)
        figures["commits"] = int((figures.get("optimize") or {}).get("version") is not None)
    if vacuum and lh is not None:  # maintain() builds one whenever vacuum is asked for
        figures["vacuum"] = _vacuum(lh, plan.name, dry_run=dry_run, hours=hours)
    return figures


def _vacuum(lh: Lakehouse, name: str, *, dry_run: bool, hours: float | None) -> dict[str, Any]:
    listed = lh.vacuum(name, retention_hours=hours, dry_run=True)
    sizes = _sizes(lh.table_path(name), listed.files)  # measured while the files still exist
    done = listed if dry_run or not listed.files else lh.vacuum(name, retention_hours=hours, dry_run=False)
    files = sorted(done.files)
    return {
        "dry_run": dry_run,
        "retention_hours": done.retention_hours,
        "files": len(files),
        "bytes": sum(sizes.get(f, 0) for f in files),
        "paths": files[:MAX_LISTED_PATHS],
    }


def _sizes(table: str, rels: Iterable[str]) -> dict[str, int]:
    rels = list(rels)
    if not rels:
        return {}
    fs, base = pafs.FileSystem.from_uri(table) if is_object_store(table) else (pafs.LocalFileSystem(), table)
    infos = fs.get_file_info([f"{base.rstrip('/')}/{r}" for r in rels])
    return {r: int(i.size or 0) for r, i in zip(rels, infos, strict=True) if i.type == pafs.FileType.File}


# -- tracking tables: the lean writer's own compaction -------------------------------------------------------------
def _lean_table(root: str, name: str) -> LeanTable:
    """Table `name` as the tracking store opens it. Its clustering options are read back from its own files (the
    column its Bloom filters name, the columns its statistics cover): `tracking` does not export them yet."""
    schema, description = tracking.TABLES[name]
    path = table_path(root, name)
    probe = LeanTable(path=path, name=name, schema=schema, keep_rows=False)
    probe.refresh()
    options = _cold_options(probe)
    if options is None:
        table = LeanTable(path=path, name=name, schema=schema, description=description, client_version=CLIENT_VERSION)
        table.refresh()
        return table
    return _with_options(probe, description, options)


def _with_options(probe: LeanTable, description: str, options: dict[str, Any]) -> LeanTable:
    table = LeanTable(
        path=probe.path,
        name=probe.name,
        schema=probe.schema,
        description=description,
        client_version=CLIENT_VERSION,
        **options,
    )
    table.refresh()
    return table


def _cold_options(table: LeanTable) -> dict[str, Any] | None:
    """The cold options (`keep_rows=False`, `cluster_by`, `stats_columns`) of a table whose files carry column
    statistics, or None for a table the store holds in memory (its files have none)."""
    stats_columns: list[str] = []
    cluster = None
    for rel, f in table.files.items():
        for tag in f.add.get("tags") or {}:
            if tag.startswith(BLOOM_TAG_PREFIX):
                cluster = tag[len(BLOOM_TAG_PREFIX) :]
        for column in (table.file_stats(rel) or {}).get("nullCount") or {}:
            if column not in stats_columns:
                stats_columns.append(column)
    if not stats_columns:
        return None
    return {
        "keep_rows": False,
        "cluster_by": cluster or stats_columns[0],
        "stats_columns": tuple(stats_columns),
        "max_merge_rows": COLD_MAX_ROWS,
    }


def _lean_files(table: LeanTable) -> tuple[int, int]:
    return len(table.files), sum(int(f.add.get("size") or 0) for f in table.files.values())


def _row_counts(table: LeanTable) -> dict[str, int]:
    if table.keep_rows:
        return {rel: len(f.rows or ()) for rel, f in table.files.items()}
    counts = {}
    for rel in table.files:
        n = (table.file_stats(rel) or {}).get("numRecords")
        if n is not None:
            counts[rel] = int(n)
    return counts


def _next_merge(table: LeanTable, eligible: set[str], max_rows: int) -> list[str] | None:
    """The first group of the greedy bin-packing of the eligible small files (fewer than half `max_rows` rows) in
    clustering order, groups of at most `max_rows` rows; None when no group holds two files.

    Why half: a group closes only when the next file does not fit, so every group but the last ends more than half
    full, i.e. not small. After a run at most one small file is left, and a second run finds nothing to merge.
    """
    counts = _row_counts(table)
    column = table.cluster_by or table.schema.names[0]

    def order(rel: str) -> tuple[bool, str, str]:
        low = ((table.file_stats(rel) or {}).get("minValues") or {}).get(column) if not table.keep_rows else None
        return (low is None, str(low), rel)

    small = sorted((r for r, n in counts.items() if r in eligible and n < max_rows // 2), key=order)
    group: list[str] = []
    total = 0
    for rel in small:
        if group and total + counts[rel] > max_rows:
            if len(group) > 1:
                return group
            group, total = [], 0
        group.append(rel)
        total += counts[rel]
    return group if len(group) > 1 else None


def _merged(table: LeanTable, files: list[str]) -> pa.Table:
    rows = [row for rel in files for row in table.file_rows(rel)]
    merged = pa.Table.from_pylist(rows, schema=table.schema)
    if table.keep_rows:
        return merged
    return merged.sort_by([(table.cluster_by or table.schema.names[0], "ascending")])


def _optimize_lean(table: LeanTable) -> dict[str, Any]:
    """Merge the table's small files as described in `_next_merge`, one OPTIMIZE commit per merged file, each
    re-planned on the newest snapshot after a lost race (the merged rows are kept while its files stay live, so a
    retry only rewrites and republishes). Files that appear meanwhile are left for the next run or the store."""
    out: dict[str, Any] = {"versions": [], "files_removed": 0, "files_added": 0, "rows_rewritten": 0}
    if table.name in TRANSIENT_TABLES:
        out["skipped"] = "transient: the store removes its files once applied"
        return out
    column = table.cluster_by or table.schema.names[0]
    out["z_order_by"] = [column] if not table.keep_rows else []
    max_rows = HOT_MAX_ROWS if table.keep_rows else COLD_MAX_ROWS
    eligible = set(table.files)
    cache: dict[tuple[str, ...], pa.Table] = {}

    def attempt() -> tuple[int, list[str], int] | None:
        table.refresh()
        group = _next_merge(table, eligible, max_rows)
        if group is None:
            return None
        key = tuple(group)
        if key not in cache:
            cache.clear()
            cache[key] = _merged(table, group)
        merged = cache[key]
        info = {
            "operationParameters": {"predicate": "[]", "zOrderBy": json.dumps(out["z_order_by"])},
            "operationMetrics": {"numRemovedFiles": str(len(group)), "numAddedFiles": "1"},
        }
        version = table.commit([merged], group, operation="OPTIMIZE", data_change=False, info=info)
        return version, group, merged.num_rows

    while True:
        done = retry_on_conflict(
            attempt,
            table=table.name,
            operation="optimize",
            is_conflict=lambda exc: isinstance(exc, ConcurrentModificationError),
            policy=LeanTable.retry_policy,
        )
        if done is None:
            break
        version, group, rows = done
        eligible.difference_update(group)
        out["versions"].append(version)
        out["files_removed"] += len(group)
        out["files_added"] += 1
        out["rows_rewritten"] += rows
    if out["versions"]:
        table.write_checkpoint()  # a cold start then reads one checkpoint instead of replaying the commits
        out["checkpoint"] = table.version
        out["log_files_removed"] = len(table.clean_up_expired_logs())
    return out


# -- other tables: Lakehouse.optimize ---------------------------------------------------------------------------
def _delta_files(lh: Lakehouse, name: str) -> tuple[int, int]:
    files = lh.data_files(name).files
    path = lh.table_path(name).rstrip("/")
    rels = [f[len(path) + 1 :] if f.startswith(path + "/") else f for f in files]
    return len(files), sum(_sizes(path, rels).values())


def _optimize_delta(lh: Lakehouse, name: str, zorder: tuple[str, ...]) -> dict[str, Any]:
    if zorder and _zordered_since_last_change(lh, name, zorder):
        return {
            "version": None,
            "files_removed": 0,
            "files_added": 0,
            "z_order_by": list(zorder),
            "skipped": "Z-ordered",
        }
    result = lh.optimize(name, z_order_by=list(zorder) or None)
    return {
        "version": result.version,
        "files_removed": result.num_files_removed,
        "files_added": result.num_files_added,
        "bytes_removed": _total_size(result.files_removed_size),
        "bytes_added": _total_size(result.files_added_size),
        "z_order_by": list(result.z_order_by),
    }


def _zordered_since_last_change(lh: Lakehouse, name: str, zorder: tuple[str, ...]) -> bool:
    """Whether the newest OPTIMIZE since the last data change Z-ordered by `zorder` (Z-ordering again would rewrite
    every file for nothing: Delta's Z-order is not idempotent)."""
    for entry in lh.history(name):
        if entry.operation == "OPTIMIZE":
            raw = entry.parameters.get("zOrderBy")
            try:
                columns = json.loads(raw) if isinstance(raw, str) else raw
            except ValueError:
                columns = None
            return list(columns or []) == list(zorder)
        if entry.operation in DATA_CHANGES or entry.operation.startswith(("STREAMING", "TRUNCATE")):
            return False
    return False


def _total_size(metrics: Mapping[str, Any]) -> int:
    value = metrics.get("totalSize")
    return int(value) if isinstance(value, int | float) else 0


# -- totals ------------------------------------------------------------------------------------------------------
def _totals(figures: Iterable[dict[str, Any]]) -> dict[str, int]:
    totals = dict.fromkeys(("tables", "files_before", "bytes_before", "files_after", "bytes_after", "commits"), 0) | {
        "vacuum_files": 0,
        "vacuum_bytes": 0,
    }
    for f in figures:
        totals["tables"] += 1
        for k in ("files_before", "bytes_before", "files_after", "bytes_after"):
            totals[k] += f[k]
        totals["commits"] += f["commits"]
        totals["vacuum_files"] += (f.get("vacuum") or {}).get("files", 0)
        totals["vacuum_bytes"] += (f.get("vacuum") or {}).get("bytes", 0)
    return totals
