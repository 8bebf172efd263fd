"""The tables of one lake as `DeltaLog`s with in-memory indexes, and the optimistic write loop over them.

`DeltaTables` is the shared machinery (the registry's tables use it too); `TrackingTables` wires the
tracking tables' indexes.
"""

from __future__ import annotations

import math
import os
import random
import time
from collections.abc import Callable, Hashable, Iterable

from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INTERNAL_ERROR

from ._delta import CommitConflict, DeltaLog, Index, Row
from ._schema import TABLES

MAX_COMMIT_ATTEMPTS = 500
"""Retries of one write when other processes keep winning the version (each retry re-plans on fresh state)."""

Plan = Callable[[], "tuple[list[list[Row]], list[str]] | tuple[list[list[Row]], list[str], dict] | None"]
Wiring = dict[str, "tuple[list[Index], Callable[[Row], None] | None]"]


def _one(_row: Row) -> int:
    return 0


def metric_point(row: Row) -> tuple:
    """A metric row's identity: MLflow's SQL store keeps one row per (key, timestamp, step, value)."""
    v = row["value"]
    return (row["key"], row["timestamp"], row["step"], "nan" if v is None or math.isnan(v) else v)


class DeltaTables:
    """Some of the lake's `TABLES`, each a `DeltaLog` feeding its indexes, and the write loop over them.

    Not thread-safe by itself: stores serialise calls with one lock. `create_missing` creates every table
    of `TABLES` (not only the wired ones), so a lake opened by any store has all its tables.
    """

    def __init__(self, root: str, wiring: Wiring) -> None:
        self.root = root
        self.logs: dict[str, DeltaLog] = {}
        for name, (indexes, hook) in wiring.items():
            schema, description = TABLES[name]
            self.logs[name] = DeltaLog(
                path=os.path.join(root, *name.split(".")), name=name, schema=schema,
                description=description, indexes=indexes, on_change=hook,
            )

    def create_missing(self) -> None:
        for name, (schema, description) in TABLES.items():
            log = self.logs.get(name) or DeltaLog(path=os.path.join(self.root, *name.split(".")), name=name,
                                                  schema=schema, description=description)
            log.create_if_missing()

    def refresh(self, names: Iterable[str] | None = None) -> None:
        for name in names if names is not None else self.logs:
            self.logs[name].refresh()

    def write(self, name: str, plan: Plan, *, also_refresh: Iterable[str] = ()) -> bool:
        """Commit what `plan()` returns on the freshest snapshot, re-planning after every lost race.

        `plan` sees refreshed state (table `name` and `also_refresh`), validates against it (raising
        MlflowException), and returns `(adds, removes)`, `(adds, removes, commit_info)` (merged into the
        commit's `commitInfo`) or None when there is nothing to write. Returns whether a commit was made.
        """
        log = self.logs[name]
        refresh = [name, *also_refresh]
        for attempt in range(MAX_COMMIT_ATTEMPTS):
            self.refresh(refresh)
            change = plan()
            if change is None:
                return False
            adds, removes, *info = change
            try:
                log.commit(adds, removes, info=info[0] if info else None)
            except CommitConflict:
                time.sleep(random.uniform(0, min(0.02, 0.0005 * 2 ** min(attempt, 6))))
                continue
            log.compact_if_needed()
            return True
        raise MlflowException(
            f"Could not commit to Delta table {name!r} at {log.path}: {MAX_COMMIT_ATTEMPTS} attempts lost the "
            "race to other writers. Retry the call; if it persists, fewer concurrent writers per lake help.",
            INTERNAL_ERROR,
        )

    def replace(self, name: str, index: Index, drop: Iterable[tuple[Hashable, Hashable]],
                new_rows: list[Row]) -> tuple[list[list[Row]], list[str]] | None:
        """The (adds, removes) that drop the rows at `drop` (group, key) and add `new_rows`.

        Files holding a dropped row are rewritten without it; their other rows move to the new file.
        """
        log = self.logs[name]
        dropped: set[int] = set()
        files: list[str] = []
        for group, key in drop:
            hit = index.get(group, key)
            if hit is not None:
                dropped.add(id(hit[0]))
                if hit[1] not in files:
                    files.append(hit[1])
        if not files and not new_rows:
            return None
        kept = [r for f in files for r in log.files[f].rows if id(r) not in dropped]
        return [kept + new_rows], files


class TrackingTables(DeltaTables):
    """Every tracking table of a lake as a `DeltaLog`, with the indexes the store reads through."""

    def __init__(self, root: str, on_run_change: Callable[[str], None]) -> None:
        by = lambda col: (lambda r: r[col])  # noqa: E731
        self.experiment_by_id = Index(by("experiment_id"), _one)
        self.experiment_by_name = Index(by("name"), by("experiment_id"))
        self.experiment_tags = Index(by("experiment_id"), by("key"))
        self.run_by_id = Index(by("run_id"), _one)
        self.runs_by_experiment = Index(by("experiment_id"), by("run_id"))
        self.params = Index(by("run_id"), by("key"))
        self.tags = Index(by("run_id"), by("key"))
        self.metrics = Index(by("run_id"), metric_point)
        self.model_metrics = Index(by("model_id"), lambda r: (r["run_id"], *metric_point(r)),
                                   when=lambda r: r["model_id"] is not None)
        self.inputs = Index(by("run_id"), lambda r: (r["kind"], r["dataset_name"], r["dataset_digest"],
                                                     r["model_id"], r["step"]))
        self.model_by_id = Index(by("model_id"), _one)
        self.models_by_experiment = Index(by("experiment_id"), by("model_id"))
        self.model_tags = Index(by("model_id"), by("key"))
        self.model_params = Index(by("model_id"), by("key"))

        run_change = lambda r: on_run_change(r["run_id"])  # noqa: E731
        wiring: Wiring = {
            "mlflow.experiments": ([self.experiment_by_id, self.experiment_by_name], None),
            "mlflow.experiment_tags": ([self.experiment_tags], None),
            "mlflow.runs": ([self.run_by_id, self.runs_by_experiment], run_change),
            "mlflow.params": ([self.params], run_change),
            "mlflow.tags": ([self.tags], run_change),
            "mlflow.metrics": ([self.metrics, self.model_metrics], run_change),
            "mlflow.inputs": ([self.inputs], run_change),
            "mlflow.logged_models": ([self.model_by_id, self.models_by_experiment], None),
            "mlflow.logged_model_tags": ([self.model_tags], None),
            "mlflow.logged_model_params": ([self.model_params], None),
        }
        super().__init__(root, wiring)
