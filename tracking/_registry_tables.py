"""The registry's Delta tables in one lake: their names, the indexes the store reads through, and `Lake`.

`RegistryTables` wires the registered-model, version, tag, alias, webhook, outbox, delivery and job tables
to in-memory `Index`es; `Lake` is what one process shares for one lake root (those tables, the lock that
serialises their use, the event outbox and the dispatcher that delivers it); `open_lake` returns that
process-wide `Lake`. The jobs package reaches the lake through `open_lake` and the job table names here.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable

from lakehouse import Row, is_object_store

from . import _events
from ._index import Index, one_row_per_group
from ._journal import RowJournal
from ._tables import DeltaTables

RM, MV, RM_TAGS, MV_TAGS, ALIASES = (
    "mlflow.registered_models",
    "mlflow.model_versions",
    "mlflow.registered_model_tags",
    "mlflow.model_version_tags",
    "mlflow.registered_model_aliases",
)
WEBHOOKS, TRIGGERS, JOB_RUNS = "mlflow.webhooks", "mlflow.job_triggers", "mlflow.job_runs"
TRIGGER_TAGS = "mlflow.job_trigger_tags"
"""A tag trigger's condition (tag key, value or null), one row per trigger of `TRIGGERS` whose stage and alias are null."""
JOB_HISTORY = "mlflow.job_history"
"""Runs of `lakehouse-jobs` jobs (jobs._runner), one row per run."""
MODEL_TABLES = [RM, MV, RM_TAGS, MV_TAGS, ALIASES]
"""The tables a registry call refreshes before it reads or plans."""
REGISTRY_JOURNAL = "mlflow.registry_journal"
"""The registry's journal (`_journal.RowJournal`): a call that writes several of MODEL_TABLES is one commit here."""
REGISTRY_WATERMARK = "lakehouse-ml:mlflow.registry_journal"
"""The `txn` appId of the registry journal's applies: its version is the journal version a table applied up to."""
EVENT_SOURCES = [RM, MV, MV_TAGS, ALIASES, RM_TAGS, REGISTRY_JOURNAL]
"""The tables whose commits carry registry events (what outbox recovery scans)."""


class RegistryTables(DeltaTables):
    """The registry, webhook, outbox and job tables of a lake, with the indexes the store reads through."""

    def __init__(self, root: str) -> None:
        by = lambda col: lambda r: r[col]  # noqa: E731
        self.models = Index(by("name"), one_row_per_group)
        self.versions = Index(by("name"), by("version"))
        self.model_tags = Index(by("name"), by("key"))
        self.version_tags = Index(lambda r: (r["name"], r["version"]), by("key"))
        self.aliases = Index(by("name"), by("alias"))
        self.webhooks = Index(by("webhook_id"), one_row_per_group)
        self.events = Index(by("event_id"), one_row_per_group)
        self.deliveries = Index(lambda r: (r["event_id"], r["subscriber"]), lambda r: (r["attempt"], r["status"]))
        self.triggers = Index(by("trigger_id"), one_row_per_group)
        self.trigger_tags = Index(by("trigger_id"), one_row_per_group)
        self.job_runs = Index(by("run_id"), one_row_per_group)
        self.job_history = Index(by("run_id"), one_row_per_group)
        super().__init__(
            root,
            {
                RM: ([self.models], None),
                MV: ([self.versions], None),
                RM_TAGS: ([self.model_tags], None),
                MV_TAGS: ([self.version_tags], None),
                ALIASES: ([self.aliases], None),
                WEBHOOKS: ([self.webhooks], None),
                _events.OUTBOX: ([self.events], None),
                _events.DELIVERIES: ([self.deliveries], None),
                TRIGGERS: ([self.triggers], None),
                TRIGGER_TAGS: ([self.trigger_tags], None),
                JOB_RUNS: ([self.job_runs], None),
                JOB_HISTORY: ([self.job_history], None),
                REGISTRY_JOURNAL: ([], None),  # a few recent calls' rows, held (`_journal`)
            },
        )
        # Applied children first, the model row last: a new model's or version's tags are in place before it.
        self.journal = RowJournal(
            self,
            REGISTRY_JOURNAL,
            REGISTRY_WATERMARK,
            {
                MV_TAGS: self.version_tags,
                RM_TAGS: self.model_tags,
                ALIASES: self.aliases,
                MV: self.versions,
                RM: self.models,
            },
        )

    def refresh(self, names: Iterable[str] | None = None) -> None:
        """Refresh `names` (default: all); a refresh of a model table also applies the registry journal rows the
        tables have not (a call whose writer died after its journal commit), so no reader sees part of a call
        (`RowJournal.sync`)."""
        self.journal.refresh(list(names) if names is not None else list(self.tables))


class Lake:
    """What one process shares for one lake root: the tables, their lock, the outbox and the dispatcher."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.lock = threading.RLock()
        self.t = RegistryTables(root)
        with self.lock:
            self.t.create_missing()
        self.outbox = _events.Outbox(self.t, EVENT_SOURCES)
        self.dispatcher = _events.Dispatcher(self.t, self.lock, self.outbox, self.subscribers)

    def subscribers(self, event: Row) -> list[_events.Subscriber]:
        subs: list[_events.Subscriber] = list(_events.webhook_subscribers(self.t, event))
        for source in _events.subscriber_sources():  # e.g. the jobs package's triggers, by entry point
            subs.extend(source(self, event))
        return subs


_LAKES: dict[str, Lake] = {}
_LAKES_LOCK = threading.Lock()


def open_lake(root: str) -> Lake:
    """The process-wide `Lake` of `root` (one snapshot and one dispatcher per lake and process)."""
    root = root if is_object_store(root) else os.path.normpath(root)
    with _LAKES_LOCK:
        lake = _LAKES.get(root)
        if lake is None:
            lake = _LAKES[root] = Lake(root)
        return lake
