"""The tables of one lake as `LeanTable`s with in-memory indexes, and the optimistic write loop over them.

`DeltaTables` is the shared machinery (the registry's tables use it too); `TrackingTables` wires the
tracking tables' indexes. The Delta log itself (commits, snapshots, checkpoints, protocol checks) is
`lakehouse._log`; the retry of lost races is `lakehouse._retry`. Here, the lakehouse errors become the MLflow
error codes the REST API and the client understand.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable

from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import NOT_IMPLEMENTED, TEMPORARILY_UNAVAILABLE

from lakehouse import Change, LeanTable, RetryPolicy, Row, table_path
from lakehouse.errors import ConcurrentModificationError, UnsupportedTableFeatureError

from ._index import ColdIndex, Index, one_row_per_group
from ._journal import JOURNAL, Journal
from ._latest import HISTORY, LATEST, LatestMetrics
from ._schema import COLD_TABLES, TABLE_CONFIGURATION, TABLES

CLIENT_VERSION = "lakehouse-ml-tracking"
"""The `clientVersion` of the tracking store's commits (what `DESCRIBE HISTORY` shows for them)."""

Plan = Callable[[], "Change | None"]
Wiring = dict[str, "tuple[list[Index], Callable[[Row], None] | None]"]
"""Per table: the in-memory indexes its rows feed and a hook called with every added or removed row."""
RangeHook = Callable[[Hashable, Hashable], None]
"""A cold table's change hook (`LeanTable.on_range_change`)."""
AnyIndex = Index | ColdIndex


def mlflow_error(exc: ConcurrentModificationError | UnsupportedTableFeatureError) -> MlflowException:
    """The MlflowException a store raises for a lakehouse error (503, retried by the client / 501, not)."""
    if isinstance(exc, ConcurrentModificationError):
        return MlflowException(
            f"{exc} Other writers kept winning the commit for {exc.attempts} attempt(s); the client may retry, "
            "and fewer concurrent writers per lake help.",
            error_code=TEMPORARILY_UNAVAILABLE,
        )
    return MlflowException(
        f"The lakehouse tracking store cannot {exc.operation} its Delta table {exc.table!r}: it uses the Delta "
        f"feature {exc.feature!r}{f' ({exc.detail})' if exc.detail else ''}. The store reads and writes plain "
        "Delta tables only; rewrite the table without the feature (e.g. with delta-spark) or point the store "
        "at another lake.",
        error_code=NOT_IMPLEMENTED,
    )


class DeltaTables:
    """Some of the lake's `TABLES`, each a `LeanTable` feeding its indexes, and the write loop over them.

    Not thread-safe by itself: stores serialise calls with one lock. `create_missing` creates every table
    of `TABLES` (not only the wired ones), so a lake opened by any store has all its tables. Every method
    raises MlflowException, never a lakehouse error (see `mlflow_error`).
    """

    retry_policy: RetryPolicy = LeanTable.retry_policy

    def __init__(self, root: str, wiring: Wiring, cold_hooks: dict[str, RangeHook] | None = None) -> None:
        self.root = root
        self.tables: dict[str, LeanTable] = {}
        for name, (indexes, hook) in wiring.items():
            schema, description = TABLES[name]
            self.tables[name] = LeanTable(
                path=table_path(root, name),
                name=name,
                schema=schema,
                description=description,
                indexes=indexes,
                on_change=hook,
                client_version=CLIENT_VERSION,
                on_range_change=(cold_hooks or {}).get(name),
                configuration=TABLE_CONFIGURATION.get(name, {}),
                **COLD_TABLES.get(name, {}),
            )

    def create_missing(self) -> None:
        try:
            for name, (schema, description) in TABLES.items():
                table = self.tables.get(name) or LeanTable(
                    path=table_path(self.root, name),
                    name=name,
                    schema=schema,
                    description=description,
                    client_version=CLIENT_VERSION,
                    configuration=TABLE_CONFIGURATION.get(name, {}),
                )
                table.create_if_missing()
        except UnsupportedTableFeatureError as exc:
            raise mlflow_error(exc) from exc

    def refresh(self, names: Iterable[str] | None = None) -> None:
        self.refresh_tables(names)

    def refresh_tables(self, names: Iterable[str] | None = None) -> None:
        """Bring tables `names` (default: all) to their latest version, and nothing else."""
        try:
            for name in names if names is not None else self.tables:
                self.tables[name].refresh()
        except UnsupportedTableFeatureError as exc:
            raise mlflow_error(exc) from exc

    def write(self, name: str, plan: Plan, *, also_refresh: Iterable[str] = ()) -> bool:
        """Commit what `plan()` returns on the freshest snapshot, re-planning after every lost race.

        `plan` sees refreshed state (table `name` and `also_refresh`), validates against it (raising
        MlflowException), and returns a `lakehouse.Change` (its `info` merged into the commit's `commitInfo`;
        no side effects: it may run once per lost race) or None when there is nothing to write. Returns whether
        a commit was made, and the commit is then applied to this snapshot (the indexes hold its rows).
        Lost races are retried until `retry_policy.deadline`; then MlflowException(TEMPORARILY_UNAVAILABLE).
        """
        refresh = [name, *also_refresh]
        return self.write_with(name, plan, lambda: self.refresh(refresh))

    def write_with(self, name: str, plan: Plan, refresh: Callable[[], None]) -> bool:
        """`write`, with `refresh` run before every plan instead of the refresh of the tables it names."""
        try:
            return self.tables[name].write(plan, refresh=refresh, policy=self.retry_policy)
        except (ConcurrentModificationError, UnsupportedTableFeatureError) as exc:
            raise mlflow_error(exc) from exc

    def delete(self, name: str, index: AnyIndex, group: Hashable, key: Hashable, missing: MlflowException) -> None:
        """Delete the row at (group, key) of table `name` in one commit; raise `missing` if it is not there."""

        def plan() -> Change | None:
            if index.get(group, key) is None:
                raise missing
            return self.replace(name, index, [(group, key)], [])

        self.write(name, plan)

    def replace(
        self, name: str, index: AnyIndex, drop: Iterable[tuple[Hashable, Hashable]], new_rows: list[Row]
    ) -> Change | None:
        """The change that drops the rows at `drop` (group, key) and add `new_rows`.

        Files holding a dropped row are rewritten without it (rows are matched by their (group, key) in
        `index`, which names their files); their other rows move to the new file.
        """
        table = self.tables[name]
        drop = list(drop)
        dropped = set(drop)
        files = index.files_of(drop)
        if not files and not new_rows:
            return None
        kept = [r for f in files for r in table.file_rows(f) if index.address(r) not in dropped]
        return Change([kept + new_rows], files)


class TrackingTables(DeltaTables):
    """Every tracking table of a lake as a `LeanTable`, with the indexes the store reads through.

    The run tables (runs, params, tags, latest metrics, inputs, metric history) are cold (`COLD_TABLES`): read by run on
    demand through `ColdIndex`es, so a process holds what it was asked for, never the history. `on_run_change`
    hears of one changed run, `on_runs_change` of a range of run ids (lo, hi; None, None: any run).
    """

    def __init__(
        self, root: str, on_run_change: Callable[[str], None], on_runs_change: RangeHook | None = None
    ) -> None:
        by = lambda col: lambda r: r[col]  # noqa: E731
        self.experiment_by_id = Index(by("experiment_id"), one_row_per_group)
        self.experiment_by_name = Index(by("name"), by("experiment_id"))
        self.experiment_tags = Index(by("experiment_id"), by("key"))
        table = lambda name: lambda: self.tables[name]  # noqa: E731
        self.run_by_id = ColdIndex(table("mlflow.runs"), "run_id", one_row_per_group)
        self.runs_by_experiment = ColdIndex(table("mlflow.runs"), "experiment_id", by("run_id"), cache_groups=0)
        self.params = ColdIndex(table("mlflow.params"), "run_id", by("key"))
        self.tags = ColdIndex(table("mlflow.tags"), "run_id", by("key"))
        self.latest = ColdIndex(table("mlflow.latest_metrics"), "run_id", by("key"))
        self.inputs = ColdIndex(
            table("mlflow.inputs"),
            "run_id",
            lambda r: (r["kind"], r["dataset_name"], r["dataset_digest"], r["model_id"], r["step"]),
        )
        self.model_by_id = Index(by("model_id"), one_row_per_group)
        self.models_by_experiment = Index(by("experiment_id"), by("model_id"))
        self.model_tags = Index(by("model_id"), by("key"))
        self.model_params = Index(by("model_id"), by("key"))
        # Traces (`_trace_*`): cold, read by trace id.
        self.trace_by_id = ColdIndex(table("mlflow.traces"), "trace_id", one_row_per_group)
        self.trace_tags = ColdIndex(table("mlflow.trace_tags"), "trace_id", by("key"))
        self.trace_metadata = ColdIndex(table("mlflow.trace_request_metadata"), "trace_id", by("key"))
        self.spans = ColdIndex(table("mlflow.spans"), "trace_id", by("span_id"))
        self.assessments = ColdIndex(table("mlflow.assessments"), "trace_id", by("assessment_id"))
        self.trace_runs = ColdIndex(table("mlflow.trace_run_links"), "trace_id", by("run_id"))
        trace_indexes = {
            "mlflow.traces": self.trace_by_id,
            "mlflow.trace_tags": self.trace_tags,
            "mlflow.trace_request_metadata": self.trace_metadata,
            "mlflow.spans": self.spans,
            "mlflow.assessments": self.assessments,
            "mlflow.trace_run_links": self.trace_runs,
        }

        def cold(index: ColdIndex) -> RangeHook:
            def changed(lo: Hashable, hi: Hashable) -> None:
                index.changed(lo, hi)
                if on_runs_change is not None:
                    on_runs_change(lo, hi)

            return changed

        wiring: Wiring = {
            "mlflow.experiments": ([self.experiment_by_id, self.experiment_by_name], None),
            "mlflow.experiment_tags": ([self.experiment_tags], None),
            "mlflow.runs": ([], None),  # the cold run tables: see `cold_hooks`
            "mlflow.params": ([], None),
            "mlflow.tags": ([], None),
            "mlflow.metrics": ([], None),  # the history: read by run or model on demand, never cached by run
            "mlflow.latest_metrics": ([], None),
            "mlflow.inputs": ([], None),
            JOURNAL: ([], None),  # a few recent calls' rows, held (`_journal`)
            "mlflow.logged_models": ([self.model_by_id, self.models_by_experiment], None),
            "mlflow.logged_model_tags": ([self.model_tags], None),
            "mlflow.logged_model_params": ([self.model_params], None),
            **{name: ([], None) for name in trace_indexes},  # cold: see `cold_hooks`
        }
        cold_hooks = {
            "mlflow.runs": cold(self.run_by_id),
            "mlflow.params": cold(self.params),
            "mlflow.tags": cold(self.tags),
            "mlflow.latest_metrics": cold(self.latest),
            "mlflow.inputs": cold(self.inputs),
            **{name: index.changed for name, index in trace_indexes.items()},
        }
        super().__init__(root, wiring, cold_hooks)
        self.latest_metrics = LatestMetrics(self, on_run_change)
        self.journal = Journal(self)

    def refresh(self, names: Iterable[str] | None = None) -> None:
        """Refresh `names` (default: all); a refresh of a run table also applies the journal rows it has not
        (a call whose writer died after its journal commit: `_journal`), so no reader sees part of a call."""
        names = list(names) if names is not None else list(self.tables)
        if HISTORY in names or LATEST in names:
            names = [*names, *(n for n in (HISTORY, LATEST) if n not in names)]
        # The run tables to one point of the journal (`JournalBase.sync`): a journal truncation between two
        # tables' reads could otherwise show part of another process's call.
        self.journal.refresh(names)
        if HISTORY in names:
            self.latest_metrics.sync()

    def create_missing(self) -> None:
        """Create the missing tables, then upgrade a lake of an older layout in place: cold tables written
        without clustering statistics are reclustered (`OPTIMIZE`, no row changes), `latest_metrics` is built."""
        super().create_missing()
        self.refresh(list(COLD_TABLES))
        try:
            for name in COLD_TABLES:
                if self.tables[name].unclustered_files():
                    self.tables[name].recluster()  # re-planned after each lost race (another writer or migration)
            self.refresh([HISTORY, LATEST])
            if self.latest_metrics.needs_migration():
                self.latest_metrics.migrate()
        except ConcurrentModificationError as exc:
            raise mlflow_error(exc) from exc
