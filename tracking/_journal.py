"""The journal: a tracking call that writes to several run tables is one commit, all or nothing.

MLflow's SQL store commits a `log_batch` (params, metrics, tags) and a `create_run` (the run and its tags) in one
database transaction. Delta commits one table at a time, so such a call is first one commit to `mlflow.journal`
holding every row it writes (`Journal.record`), then *applied* to the run tables, one commit each, every one
carrying a Delta `txn` action (`appId` WATERMARK) whose version is the journal version it has applied up to.

The journal commit is the call's atomic point. Before it, nothing of the call exists; after it, everything does:
any process that refreshes a run table first applies the journal rows above that table's watermark
(`roll_forward`), so a writer killed between the journal commit and its applies loses nothing, and no reader of
the MLflow API ever sees part of a call. Applies are idempotent (a param or run already there is skipped, a metric
point already logged is not repeated, a tag is replaced) and safe against other processes applying the same rows.
A call that writes one table only (`log_metric`, `log_param`, `set_tag`) needs no journal: its one commit is
already atomic, and it also rolls the journal forward first, so calls stay in order.

Journal rows carry the journal version they were committed at (`version`: the plan asks for the snapshot's next
version, and a lost race re-plans), so what is pending for a table is its kinds' rows above its watermark. Once
every table has applied a journal file, the file is removed (`truncate`, every TRUNCATE_AT files): the journal
holds the calls of the last moments, never the history, and its short tombstone and log retention (no one time
travels the journal) keep its checkpoints small.

The mechanism is `JournalBase`; `Journal` is the run tables' (`mlflow.journal`, rows by kind), `RowJournal` the
model registry's (`mlflow.registry_journal`: whole-row puts and deletes of the five model tables, so a rename, a
model's delete or a new version with its tags is one commit; `_registry_tables`). A reader brings its tables to
one point of a journal with `sync`.
"""

from __future__ import annotations

import abc
import json
import logging
from collections.abc import Callable, Hashable
from functools import partial
from typing import TYPE_CHECKING

from mlflow.exceptions import MlflowException
from mlflow.protos import databricks_pb2
from mlflow.protos.databricks_pb2 import TEMPORARILY_UNAVAILABLE

from lakehouse import Change, Row

from ._latest import FOLD_EVERY, HISTORY, order
from ._schema import TABLES

_log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from ._tables import AnyIndex, DeltaTables, TrackingTables

JOURNAL = "mlflow.journal"
WATERMARK = "lakehouse-ml:mlflow.journal"
"""The `txn` appId of the applies: its version is the journal version a run table has applied up to."""
KIND_TABLE = {
    "run": "mlflow.runs",
    "run_update": "mlflow.runs",
    "param": "mlflow.params",
    "tag": "mlflow.tags",
    "metric": HISTORY,
}
"""Each kind of journal row and the table it is applied to. A `run` row's `value` is the new run's row (JSON); a
`run_update`'s the fields it sets (JSON, e.g. {"name": ...})."""
APPLY_ORDER = ("mlflow.params", HISTORY, "mlflow.tags", "mlflow.runs")
"""Applied in this order, the run row last: a new run appears in `mlflow.runs` with its tags already there."""
JOURNALED = frozenset(KIND_TABLE.values())
TRUNCATE_AT = 16
"""The journal's applied files are removed once it holds this many."""
SYNC_ROUNDS = 20
"""`JournalBase.sync` reads the tables again while the journal moves under it, at most this many times."""


def metric_point(row: Row) -> tuple:
    """A metric row's identity: MLflow's SQL store keeps one row per (key, timestamp, step, value)."""
    v = row["value"]
    return (row["key"], row["timestamp"], row["step"], "nan" if v is None or v != v else v)


def param_row(run_id: str, key: str, value: str) -> Row:
    return {"kind": "param", "run_id": run_id, "key": key, "value": value}


def tag_row(run_id: str, key: str, value: str) -> Row:
    return {"kind": "tag", "run_id": run_id, "key": key, "value": value}


def run_row_entry(row: Row) -> Row:
    return {"kind": "run", "run_id": row["run_id"], "value": json.dumps(row)}


def run_update_entry(run_id: str, **fields: object) -> Row:
    return {"kind": "run_update", "run_id": run_id, "value": json.dumps(fields)}


def metric_entry(row: Row) -> Row:
    return {
        "kind": "metric",
        "run_id": row["run_id"],
        "key": row["key"],
        "metric_value": row["value"],
        "timestamp": row["timestamp"],
        "step": row["step"],
        "model_id": row["model_id"],
        "dataset_name": row["dataset_name"],
        "dataset_digest": row["dataset_digest"],
    }


def _metric_of(entry: Row) -> Row:
    return {
        "run_id": entry["run_id"],
        "key": entry["key"],
        "value": entry["metric_value"],
        "timestamp": entry["timestamp"],
        "step": entry["step"],
        "model_id": entry["model_id"],
        "dataset_name": entry["dataset_name"],
        "dataset_digest": entry["dataset_digest"],
    }


class JournalBase(abc.ABC):
    """The mechanism of a journal table: record a call as one commit, apply it to its tables, truncate it.

    A subclass names its journal table (`name`), the `txn` appId of its applies (`watermark_id`), the tables
    it applies to in the order it applies them (`apply_order`), the table a journal row goes to (`target`) and
    how a table applies its pending rows (`apply`). `Journal` is the run tables', `RowJournal` the registry's.
    """

    name: str
    watermark_id: str
    apply_order: tuple[str, ...]

    def __init__(self, tables: DeltaTables) -> None:
        self.t = tables
        self.rolling = False
        self._applied_at: tuple | None = None  # (journal version, watermarks) at which nothing was pending
        self._empty: Row = dict.fromkeys(TABLES[self.name][0].names)  # every column null: each kind fills its own

    @abc.abstractmethod
    def target(self, row: Row) -> str:
        """The table journal row `row` is applied to."""

    @abc.abstractmethod
    def apply(self, name: str, rows: list[Row]) -> Change | None:
        """The change that applies `rows` (pending for table `name`, in journal order) to its snapshot."""

    @property
    def table(self):
        return self.t.tables[self.name]

    def watermark(self, name: str) -> int:
        return self.t.tables[name].txn_version(self.watermark_id)

    def rows(self) -> list[Row]:
        return [r for f in self.table.files.values() for r in f.rows or ()]

    def pending(self, name: str) -> list[Row]:
        """The journal rows table `name` has not applied, in journal order."""
        mark = self.watermark(name)
        rows = [r for r in self.rows() if r["version"] > mark and self.target(r) == name]
        rows.sort(key=lambda r: r["version"])
        return rows

    def behind(self) -> bool:
        """Whether a table has journal rows to apply (after a refresh of the journal; a table not refreshed may
        look behind, and `roll_forward` then finds nothing to apply once it is)."""
        if self.rolling:
            return False
        marks = {name: self.watermark(name) for name in self.apply_order}
        at = (self.table.version, tuple(sorted(marks.items())))
        if at == self._applied_at:  # every read call asks: answered from the versions alone while nothing moved
            return False
        if any(r["version"] > marks[self.target(r)] for r in self.rows()):
            return True
        self._applied_at = at
        return False

    def refresh(self, names: list[str]) -> None:
        """Refresh tables `names`: those this journal applies to through `sync` (one point of the journal), the
        others as they are. What a store's `refresh` calls; during a roll forward, a plain refresh."""
        journaled = [n for n in names if n in self.apply_order]
        if not journaled or self.rolling:
            self.t.refresh_tables(names)
            return
        self.t.refresh_tables([n for n in names if n not in journaled and n != self.name])
        self.sync(journaled)

    def sync(self, names: list[str]) -> None:
        """Refresh tables `names` (of `apply_order`) and the journal, and apply what is pending, so that the
        tables stand at one point of the journal: no part of a call without the rest.

        The tables are read before the journal, and read again while the journal moved in between: every call a
        table shows was in the journal before that table was read, so once the journal stayed put over the reads,
        it holds every call the tables show part of (a call removed from it had been applied to every table
        before), and applying what is pending completes them. After SYNC_ROUNDS reads under a journal that never
        stopped moving, the last one stands (a torn read is then possible; no caller has come near it).
        """
        for _ in range(SYNC_ROUNDS):
            seen = self.table.version
            self.t.refresh_tables([*names, self.name])
            if self.behind():
                self.roll_forward()
            if self.table.version == seen:
                return

    def commit(self, plan: Callable[[], Change | None]) -> int | None:
        """Commit the journal rows of `plan()` (its `adds`, its `info` in the commit) as one commit, then apply
        them; the journal version committed, or None when the plan had nothing to write.

        `plan` runs on refreshed tables with nothing pending (the journal is rolled forward first), validates
        (raising MlflowException) and returns a `Change` of journal rows without their `version`, or None. A lost
        race for the journal's next version re-plans, as `DeltaTables.write` does.
        """
        names = [self.name, *self.apply_order]
        asked: list[int] = []

        def refresh() -> None:
            self.t.refresh(names)  # rolls the journal forward (the tables' `refresh`)

        def journal_plan() -> Change | None:
            change = plan()
            if change is None or not any(change.adds):
                return None
            version = self.table.version + 1  # the version this commit asks for; a lost race re-plans
            asked.append(version)
            rows = [{**self._empty, **r, "version": version} for batch in change.adds for r in batch]
            return Change([rows], info=change.info)

        if not self.t.write_with(self.name, journal_plan, refresh):
            return None
        try:
            self.roll_forward()
        except MlflowException as exc:
            # The call happened: its journal commit is its atomic point, and every later refresh (in any process)
            # applies it. Telling the caller to retry (503) would make a client repeat a create_run that exists.
            if exc.error_code != databricks_pb2.ErrorCode.Name(TEMPORARILY_UNAVAILABLE):
                raise
            _log.warning(
                "%s: journal version %s committed, its applies left to the next refresh: %s",
                self.name,
                asked[-1],
                exc.message,
            )
        return asked[-1]

    def roll_forward(self) -> None:
        """Apply every pending journal row to its table (each table one commit, with the new watermark), then
        remove the applied journal files once there are TRUNCATE_AT of them."""
        if self.rolling:  # a refresh made by an apply below
            return
        self.rolling = True
        try:
            for name in self.apply_order:
                if not self.pending(name):
                    continue
                self.t.write_with(name, partial(self._apply_plan, name), partial(self._refresh, name))
                self.applied(name)
            if len(self.table.files) >= TRUNCATE_AT:
                self.truncate()
        finally:
            self.rolling = False

    def applied(self, name: str) -> None:  # noqa: B027 (a hook: most journals have nothing to derive)
        """Called once table `name` has applied its pending rows (a hook for derived tables)."""

    def truncate(self) -> None:
        """Remove the journal files every table has applied (one commit; nothing when none)."""

        def plan() -> Change | None:
            marks = {name: self.watermark(name) for name in self.apply_order}
            done = [
                rel
                for rel, f in self.table.files.items()
                if all(r["version"] <= marks[self.target(r)] for r in f.rows or ())
            ]
            return Change((), done) if done else None

        self.t.write_with(self.name, plan, lambda: self._refresh(*self.apply_order))

    def _refresh(self, *names: str) -> None:
        self.t.refresh([self.name, *names])  # no nested roll forward: `rolling` is set

    def _apply_plan(self, name: str) -> Change | None:
        rows = self.pending(name)
        if not rows:
            return None
        upto = max(r["version"] for r in rows)
        change = self.apply(name, rows)
        adds, removes = (change.adds, change.removes) if change else ((), ())
        return Change(adds, removes, txn=(self.watermark_id, upto))


class Journal(JournalBase):
    """The lake's `mlflow.journal`: a tracking call that writes several run tables, recorded, applied, truncated."""

    name = JOURNAL
    watermark_id = WATERMARK
    apply_order = APPLY_ORDER
    t: TrackingTables

    def __init__(self, tables: TrackingTables) -> None:
        super().__init__(tables)

    def target(self, row: Row) -> str:
        return KIND_TABLE[row["kind"]]

    def apply(self, name: str, rows: list[Row]) -> Change | None:
        return _APPLIERS[name](self, rows)

    def record(self, plan: Callable[[], list[Row] | None]) -> bool:
        """Commit the rows `plan()` returns to the journal as one commit, then apply them; whether it wrote.

        `plan` runs on refreshed run tables with nothing pending, validates (raising MlflowException) and returns
        journal rows (`param_row`, `metric_entry`, ...) or None (see `JournalBase.commit`).
        """
        return self.commit(lambda: Change([rows]) if (rows := plan()) else None) is not None

    def applied(self, name: str) -> None:
        if name == HISTORY and self.t.latest_metrics.lag() >= FOLD_EVERY:
            self.t.latest_metrics.fold_in()

    # -- applying ---------------------------------------------------------------------------------------------
    def _apply_params(self, rows: list[Row]) -> Change | None:
        new: dict[tuple[str, str], Row] = {}
        for r in rows:
            key = (r["run_id"], r["key"])
            if key not in new and self.t.params.get(*key) is None:
                new[key] = {"run_id": r["run_id"], "key": r["key"], "value": r["value"]}
        return Change([list(new.values())]) if new else None

    def _apply_metrics(self, rows: list[Row]) -> Change | None:
        by_run: dict[str, list[Row]] = {}
        for r in rows:
            by_run.setdefault(r["run_id"], []).append(_metric_of(r))
        new = [row for run_id, metrics in by_run.items() for row in self.new_points(run_id, metrics)]
        return Change([new]) if new else None

    def new_points(self, run_id: str, metrics: list[Row]) -> list[Row]:
        """The metric rows of `metrics` (all of run `run_id`) not logged before, each point once.

        A point above the key's latest (step, timestamp, value) cannot repeat one logged before: only points at
        or below it (re-logged or out of order) need the run's history, read once."""
        history: set | None = None
        new, seen = [], set()
        for row in metrics:
            point = metric_point(row)
            if point in seen:
                continue
            seen.add(point)
            latest = self.t.latest_metrics.get(run_id, row["key"])
            if latest is not None and order(row) <= order(latest):
                if history is None:
                    history = {metric_point(r) for r in self.t.tables[HISTORY].rows_where("run_id", run_id)}
                if point in history:
                    continue
            new.append(row)
        return new

    def _apply_tags(self, rows: list[Row]) -> Change | None:
        latest: dict[tuple[str, str], Row] = {}
        for r in rows:  # journal order: the last value of a key wins
            latest[(r["run_id"], r["key"])] = {"run_id": r["run_id"], "key": r["key"], "value": r["value"]}
        changed = {
            k: row
            for k, row in latest.items()
            if (hit := self.t.tags.get(*k)) is None or hit.row["value"] != row["value"]
        }
        if not changed:
            return None
        drop: list[tuple[Hashable, Hashable]] = [k for k in changed if self.t.tags.get(*k) is not None]
        return self.t.replace("mlflow.tags", self.t.tags, drop, list(changed.values()))

    def _apply_runs(self, rows: list[Row]) -> Change | None:
        runs: dict[str, Row] = {}
        existing: set[str] = set()
        for r in rows:
            run_id = r["run_id"]
            if run_id not in runs:
                hit = self.t.run_by_id.get(run_id, 0)
                if hit is not None:
                    runs[run_id] = dict(hit.row)
                    existing.add(run_id)
            if r["kind"] == "run":
                runs.setdefault(run_id, json.loads(r["value"]))
            elif run_id in runs:  # an update of a run that exists
                runs[run_id].update(json.loads(r["value"]))
        changed = {
            run_id: row
            for run_id, row in runs.items()
            if run_id not in existing or row != self.t.run_by_id.get(run_id, 0).row  # type: ignore[union-attr]
        }
        if not changed:
            return None
        drop = [(run_id, 0) for run_id in changed if run_id in existing]
        return self.t.replace("mlflow.runs", self.t.run_by_id, drop, list(changed.values()))


class RowJournal(JournalBase):
    """A journal of whole-row puts and deletes on tables whose rows an `Index` addresses: the registry's.

    A journal row names its `table`, its `op` ("put": the row replaces the one at its address; "delete": the
    row at its address goes) and the `row` (JSON). Applying is idempotent: the last op on an address wins, and
    a table already in that state gets only its watermark.

    A put carries the row as the call planned it, so a write to these tables that bypassed the journal could be
    overwritten by a later apply of a call planned before it: every registry call on them goes through the journal
    (`RegistryStoreBase._write_journaled`), whose versions order them.
    """

    def __init__(self, tables: DeltaTables, name: str, watermark_id: str, indexes: dict[str, AnyIndex]) -> None:
        self.name, self.watermark_id = name, watermark_id
        self.apply_order = tuple(indexes)
        self.indexes = indexes
        super().__init__(tables)

    def target(self, row: Row) -> str:
        return row["table"]

    def apply(self, name: str, rows: list[Row]) -> Change | None:
        index = self.indexes[name]
        state: dict[tuple[Hashable, Hashable], Row | None] = {}
        for r in rows:
            row = json.loads(r["row"])
            address = index.address(row)
            if address is not None:
                state[address] = row if r["op"] == PUT else None
        changed = {
            a: row
            for a, row in state.items()
            if ((hit := index.get(*a)) is None and row is not None) or (hit is not None and hit.row != row)
        }
        if not changed:
            return None
        drop = [a for a in changed if index.get(*a) is not None]
        return self.t.replace(name, index, drop, [row for row in changed.values() if row is not None])


PUT, DELETE = "put", "delete"


def put(table: str, row: Row) -> Row:
    """The `RowJournal` row that puts `row` into `table` (replacing the row at its address)."""
    return {"table": table, "op": PUT, "row": json.dumps(row)}


def delete(table: str, row: Row) -> Row:
    """The `RowJournal` row that removes from `table` the row at `row`'s address."""
    return {"table": table, "op": DELETE, "row": json.dumps(row)}


_APPLIERS: dict[str, Callable[[Journal, list[Row]], Change | None]] = {
    "mlflow.params": Journal._apply_params,
    HISTORY: Journal._apply_metrics,
    "mlflow.tags": Journal._apply_tags,
    "mlflow.runs": Journal._apply_runs,
}

__all__ = ["FOLD_EVERY", "JOURNAL", "Journal", "JournalBase", "RowJournal", "delete", "put"]
