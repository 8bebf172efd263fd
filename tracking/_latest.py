"""Latest metric values: the `mlflow.latest_metrics` table, folded from the cold `mlflow.metrics` history.

MLflow's SQL store keeps a `latest_metrics` table beside the history so that `get_run` and `search_runs` never
read a run's whole history; so does this store. The history stays the one record of what was logged: a
`log_batch` is one commit to `mlflow.metrics`, and `latest_metrics` is derived from it. Each commit to
`latest_metrics` carries a Delta `txn` action (`appId` WATERMARK) whose version is the `mlflow.metrics` version it
has folded in. Readers fold the history commits above the watermark (normally none, or the one a writer has just
made) into what they show, so a crash between the two commits loses nothing and hides nothing, and the next
writer folds them into the table. Both tables remain plain Delta tables, queryable by name with time travel.

Upgrading a lake written before this layout (no `latest_metrics` table, metric files without statistics): the
history is rewritten clustered by run like every cold table (`TrackingTables.create_missing`: `OPTIMIZE`,
`dataChange=false`, no row changes), then `migrate` builds the latest values from it; each step idempotent and
safe against other processes doing the same.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc

from lakehouse import Change, Row

from ._store_values import metric_sort_value

if TYPE_CHECKING:
    from ._tables import TrackingTables

HISTORY = "mlflow.metrics"
LATEST = "mlflow.latest_metrics"
WATERMARK = "lakehouse-ml:mlflow.metrics"
"""The `txn` appId of `latest_metrics` commits: its version is the `mlflow.metrics` version folded in."""
LATEST_COLUMNS = ("run_id", "key", "value", "timestamp", "step")
FOLD_EVERY = 16
"""A writer folds the history into `latest_metrics` once this many history commits are unfolded: one commit per
FOLD_EVERY metric writes instead of one per write, while every reader folds the (at most ~FOLD_EVERY) rest."""


def order(row: Row) -> tuple:
    """MLflow's SQL store's latest metric: the greatest (step, timestamp, value), NaN as 0."""
    return (row["step"], row["timestamp"], metric_sort_value(row["value"]))


def fold(rows: Iterable[Row], into: dict[tuple[str, str], Row] | None = None) -> dict[tuple[str, str], Row]:
    """The latest row per (run_id, key) of `rows` (added to `into`)."""
    best = {} if into is None else into
    for r in rows:
        k = (r["run_id"], r["key"])
        cur = best.get(k)
        if cur is None or order(r) > order(cur):
            best[k] = {c: r[c] for c in LATEST_COLUMNS}
    return best


class LatestMetrics:
    """The latest values of a lake's metrics: `latest_metrics` rows plus the history it has not folded yet."""

    def __init__(self, tables: TrackingTables, on_run_change: Callable[[str], None]) -> None:
        self.t = tables
        self.on_run_change = on_run_change
        self.pending: dict[str, dict[str, Row]] = {}
        self._pending_at: tuple[int, int] = (-2, -2)

    def watermark(self) -> int:
        return self.t.tables[LATEST].txn_version(WATERMARK)

    def rows(self, run_id: str) -> list[Row]:
        """The run's latest metric rows (one per key)."""
        return self.merged(run_id, self.t.latest.rows(run_id))

    def merged(self, run_id: str, table_rows: list[Row]) -> list[Row]:
        """The run's rows of the `latest_metrics` table with the unfolded history's latest values over them."""
        out = {r["key"]: r for r in table_rows}
        for key, row in self.pending.get(run_id, {}).items():
            cur = out.get(key)
            if cur is None or order(row) > order(cur):
                out[key] = row
        return list(out.values())

    def get(self, run_id: str, key: str) -> Row | None:
        hit = self.t.latest.get(run_id, key)
        row = self.pending.get(run_id, {}).get(key)
        if hit is None:
            return row
        return hit.row if row is None or order(hit.row) >= order(row) else row

    def sync(self) -> None:
        """Bring the unfolded history up to date (after both tables were refreshed): only the commits made since
        the last sync are read while the watermark stays; a new watermark starts over from it."""
        history = self.t.tables[HISTORY]
        at = (self.watermark(), history.version)
        if at == self._pending_at:
            return
        incremental = at[0] == self._pending_at[0] and at[1] > self._pending_at[1]
        since = self._pending_at[1] if incremental else at[0]
        rows = history.rows_added_since(since) if since < at[1] else []
        if rows is None:  # the unfolded commits were cleaned up: fold the whole history instead
            rows, incremental = self._all_latest_rows(), False
        pending: dict[str, dict[str, Row]] = {k: dict(v) for k, v in self.pending.items()} if incremental else {}
        changed = set() if incremental else set(self.pending)
        for (run_id, key), row in fold(rows).items():
            cur = pending.setdefault(run_id, {}).get(key)
            if cur is None or order(row) > order(cur):
                pending[run_id][key] = row
            changed.add(run_id)
        for run_id in changed:
            self.on_run_change(run_id)
        self.pending, self._pending_at = pending, at

    def lag(self) -> int:
        """History commits not yet folded into `latest_metrics`."""
        return self.t.tables[HISTORY].version - self.watermark()

    def fold_in(self) -> None:
        """Commit the unfolded history to `latest_metrics` with the new watermark (nothing when none)."""

        def plan() -> Change | None:
            history = self.t.tables[HISTORY]
            if self.watermark() >= history.version:
                return None
            drop: list[tuple[Hashable, Hashable]] = []
            new: list[Row] = []
            for run_id, rows in self.pending.items():
                for key, row in rows.items():
                    hit = self.t.latest.get(run_id, key)
                    if hit is not None and order(hit.row) >= order(row):
                        continue
                    if hit is not None:
                        drop.append((run_id, key))
                    new.append(row)
            change = self.t.replace(LATEST, self.t.latest, drop, new)
            return Change(
                change.adds if change else (), change.removes if change else (), txn=(WATERMARK, history.version)
            )

        self.t.write(LATEST, plan)  # TrackingTables.refresh refreshes the history with it

    def needs_migration(self) -> bool:
        """Whether the lake has history but `latest_metrics` was never built (a lake of the previous layout)."""
        return self.watermark() < 0 <= self.t.tables[HISTORY].version

    def migrate(self) -> None:
        """Build `latest_metrics` from the whole history (the history itself is reclustered by
        `TrackingTables.create_missing`, as every cold table); idempotent.

        Raises:
            ConcurrentModificationError: other writers kept winning the fold's commit past the deadline.
        """
        self.fold_in()

    def _all_latest_rows(self) -> list[Row]:
        """The latest row per (run, key) of the whole history (a migration, or a lake whose unfolded commits were
        cleaned up), one data file at a time in Arrow: memory follows the largest file and the (run, key) count."""
        best: dict[tuple[str, str], Row] = {}
        for table in self.t.tables[HISTORY].iter_arrow(list(LATEST_COLUMNS)):
            fold(_latest_of(table), best)
        return list(best.values())


def _latest_of(table: pa.Table) -> list[Row]:
    """The latest row per (run_id, key) of an Arrow table of metric rows, deduplicated in Arrow."""
    if table.num_rows == 0:
        return []
    value = table.column("value")
    table = table.append_column("_v", pc.if_else(pc.is_nan(value), pa.scalar(0.0), value))
    keys = [("run_id", "ascending"), ("key", "ascending")]
    table = table.sort_by([*keys, ("step", "descending"), ("timestamp", "descending"), ("_v", "descending")])
    table = table.drop_columns(["_v"]).combine_chunks()
    first = None
    for name, _ in keys:
        col = table.column(name).chunk(0) if table.column(name).num_chunks else pa.array([], pa.string())
        prev = pa.concat_arrays([pa.array([None], col.type), col.slice(0, len(col) - 1)])
        differs = pc.fill_null(pc.not_equal(col, prev), True)
        first = differs if first is None else pc.or_(first, differs)
    return table.filter(first).to_pylist()
