"""What every family of registry operations shares: the store's lake, row lookups, and the evented write.

`RegistryStoreBase` is the root of the store's operation mixins (`_registry_models`, `_registry_versions`,
`_registry_aliases`, `_registry_search`, `_registry_webhooks`). It holds the lake the store was opened on
(tables and lock), the reads of one model or version row that raise MLflow's not-found errors, and the two
write paths whose commit carries registry events, which they then copy to the outbox and hand to the dispatcher:
`_write_journaled` for every call on models, versions, their tags and aliases (one commit to the registry journal,
then applied to each table: `_journal.RowJournal`), so that all of them are serialised by the journal's versions
(a call on one table that went straight to it could be overwritten by the apply of a journal call planned before
it); `_write` for the webhooks table, which no journal call touches (one commit). A plan given to either returns a
`Planned`.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Sequence
from typing import Any

from mlflow.entities.model_registry.model_version_stages import STAGE_DELETED_INTERNAL
from mlflow.entities.model_registry.prompt_version import IS_PROMPT_TAG_KEY
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST
from mlflow.store.model_registry.abstract_store import AbstractStore
from mlflow.utils.validation import _validate_model_name, _validate_model_version

from lakehouse import Change, Row

from . import _events
from ._registry_tables import MODEL_TABLES, REGISTRY_JOURNAL, Lake, RegistryTables


def version_int(version: Any) -> int:
    """A model version number as MLflow's validator reads it (`"3"` -> 3; INVALID_PARAMETER_VALUE otherwise)."""
    return int(_validate_model_version(version))


@dataclasses.dataclass(frozen=True)
class Planned:
    """What one planning attempt of `RegistryStoreBase._write` produces.

    `change` is the `Change` to commit (None: nothing to write, and no event), `events` the registry events
    its commit carries (`_events.new_event`), `result` what the operation returns once this attempt's change
    is the one committed (e.g. the new row). Rule: like the `Change` it holds, a `Planned` is built from the
    refreshed snapshot alone, afresh on every attempt, never from an earlier attempt's.
    """

    change: Change | None
    result: Any = None
    events: Sequence[dict[str, Any]] = ()
    journal: Sequence[Row] = ()
    """For `_write_journaled`: the call's row changes over several tables (`_journal.put` / `_journal.delete`)."""


class RegistryStoreBase(AbstractStore):
    """The lake, lookups and evented write of `LakehouseRegistryStore`, which sets `_lake`, `_t` and `_lock`.

    Every method expects the caller to hold `_lock` and to have refreshed the tables it reads (`_sync`).
    """

    _lake: Lake
    _t: RegistryTables
    _lock: threading.RLock

    def _sync(self, names: list[str] | None = None) -> None:
        self._t.refresh(names or MODEL_TABLES)

    def _write(self, table: str, plan: Callable[[], Planned]) -> Any:
        """Commit `plan().change` to `table` (one no journal call writes: the webhooks), its events in the commit's
        `commitInfo`; then publish the events.

        The plan runs on the refreshed snapshot and again after every lost commit race. Returns the `result`
        of the attempt that was committed, or None when the plan had nothing to write. The events reach the
        outbox after the commit; a crash in between is recovered by the outbox's scan of the commits.
        """
        # `DeltaTables.write` answers only whether it committed, so each attempt is noted here (the version
        # it would take, its plan); the last one noted is the one committed.
        attempts: list[tuple[int, Planned]] = []

        def change() -> Change | None:
            planned = plan()
            attempts.append((self._t.tables[table].version + 1, planned))
            if planned.change is None or not planned.events:
                return planned.change
            info = {**planned.change.info, _events.EVENTS_KEY: list(planned.events)}
            return dataclasses.replace(planned.change, info=info)

        if not self._t.write(table, change):
            return None
        version, planned = attempts[-1]
        if planned.events:
            self._publish(list(planned.events), table, version)
        return planned.result

    def _write_journaled(self, plan: Callable[[], Planned]) -> Any:
        """Commit `plan().journal`, the row changes of a call over several model tables, as one commit to the
        registry journal (its events in that commit's `commitInfo`), apply it to the tables, publish the events.

        The journal commit is the call's atomic point (`_journal.RowJournal`): a crash before it leaves nothing,
        after it every process that refreshes a model table applies the rest. Like `_write`, the plan runs on a
        refreshed snapshot (the journal rolled forward) and again after every lost race, and the `result` of the
        attempt committed is returned (None when the plan had nothing to write).
        """
        attempts: list[Planned] = []

        def change() -> Change | None:
            planned = plan()
            attempts.append(planned)
            if not planned.journal:
                return None
            info = {_events.EVENTS_KEY: list(planned.events)} if planned.events else {}
            return Change([list(planned.journal)], info=info)

        version = self._t.journal.commit(change)
        if version is None:
            return None
        planned = attempts[-1]
        if planned.events:
            self._publish(list(planned.events), REGISTRY_JOURNAL, version)
        return planned.result

    def _publish(self, events: list[dict[str, Any]], table: str, version: int) -> None:
        """Copy committed events to the outbox and wake the dispatcher (a crash before this is recovered)."""
        self._lake.outbox.append(events, table, version)
        self._lake.dispatcher.kick()

    def _is_prompt(self, name: str) -> bool:
        hit = self._t.model_tags.get(name, IS_PROMPT_TAG_KEY)
        return hit is not None and hit.row["value"].lower() == "true"

    def _model_row(self, name: str) -> Row:
        _validate_model_name(name)
        hit = self._t.models.get(name, 0)
        if hit is None:
            raise MlflowException(f"Registered Model with name={name} not found", RESOURCE_DOES_NOT_EXIST)
        return hit.row

    def _version_row(self, name: str, version: Any) -> Row:
        _validate_model_name(name)
        v = version_int(version)
        hit = self._t.versions.get(name, v)
        if hit is None or hit.row["current_stage"] == STAGE_DELETED_INTERNAL:
            raise MlflowException(f"Model Version (name={name}, version={v}) not found", RESOURCE_DOES_NOT_EXIST)
        return hit.row
