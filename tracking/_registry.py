"""`LakehouseRegistryStore`: MLflow's model registry contract on the Delta tables of a lake.

Rules (validation, error codes, version numbering, stages, aliases, search semantics, soft deletion of
versions) follow MLflow's SQL store, `mlflow.store.model_registry.sqlalchemy_store.SqlAlchemyStore`, with
MLflow's own validators and search grammar (`mlflow.utils.validation`, `mlflow.utils.search_utils`). LIKE is
case-sensitive (as on PostgreSQL and MySQL, and in MLflow's Python filters); SQLite's LIKE is not.

Every change that MLflow's server announces to webhooks also publishes a registry event (see `_events`):
in the change's own commit, then in the outbox; a background thread delivers it. `list_webhooks_by_event`
answers nothing on purpose: it is what MLflow's server uses to deliver in-process after each request, and
this store delivers from its outbox instead, so a store served by `mlflow server` never delivers twice.
"""

from __future__ import annotations

import dataclasses
import json
import os
import threading
import uuid
from typing import Any
from urllib.parse import urlparse

from mlflow.entities.model_registry import (
    ModelVersion,
    ModelVersionTag,
    RegisteredModel,
    RegisteredModelAlias,
    RegisteredModelTag,
)
from mlflow.entities.model_registry.model_version_stages import (
    ALL_STAGES,
    DEFAULT_STAGES_FOR_GET_LATEST_VERSIONS,
    STAGE_ARCHIVED,
    STAGE_DELETED_INTERNAL,
    STAGE_NONE,
    get_canonical_stage,
)
from mlflow.entities.model_registry.model_version_status import ModelVersionStatus
from mlflow.entities.model_registry.prompt_version import IS_PROMPT_TAG_KEY, PROMPT_TEXT_TAG_KEY
from mlflow.entities.webhook import Webhook, WebhookEvent, WebhookStatus, WebhookTestResult
from mlflow.exceptions import MlflowException
from mlflow.prompt.constants import PROMPT_TYPE_TAG_KEY
from mlflow.prompt.registry_utils import handle_resource_already_exist_error, has_prompt_tag
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE, RESOURCE_ALREADY_EXISTS, RESOURCE_DOES_NOT_EXIST
from mlflow.store.artifact.utils.models import _parse_model_uri
from mlflow.store.entities.paged_list import PagedList
from mlflow.store.model_registry import (
    SEARCH_MODEL_VERSION_MAX_RESULTS_DEFAULT,
    SEARCH_MODEL_VERSION_MAX_RESULTS_THRESHOLD,
    SEARCH_REGISTERED_MODEL_MAX_RESULTS_DEFAULT,
    SEARCH_REGISTERED_MODEL_MAX_RESULTS_THRESHOLD,
)
from mlflow.store.model_registry.abstract_store import AbstractStore
from mlflow.utils.search_utils import SearchModelUtils, SearchModelVersionUtils, SearchUtils
from mlflow.utils.time import get_current_time_millis
from mlflow.utils.validation import (
    _REGISTERED_MODEL_ALIAS_LATEST,
    _validate_model_alias_name,
    _validate_model_alias_name_reserved,
    _validate_model_name,
    _validate_model_renaming,
    _validate_model_version,
    _validate_model_version_tag,
    _validate_registered_model_tag,
    _validate_tag_name,
    _validate_webhook_events,
    _validate_webhook_name,
    _validate_webhook_url,
)

from lakehouse import Change, Row

from . import _events, _webhooks
from ._index import Index
from ._tables import DeltaTables
from ._uri import lake_root_from_uri

RM, MV, RM_TAGS, MV_TAGS, ALIASES = (
    "mlflow.registered_models",
    "mlflow.model_versions",
    "mlflow.registered_model_tags",
    "mlflow.model_version_tags",
    "mlflow.registered_model_aliases",
)
WEBHOOKS, TRIGGERS, JOB_RUNS = "mlflow.webhooks", "mlflow.job_triggers", "mlflow.job_runs"
_MODEL_TABLES = [RM, MV, RM_TAGS, MV_TAGS, ALIASES]
_EVENT_SOURCES = [RM, MV, MV_TAGS, ALIASES, RM_TAGS]


def _one(_row: Row) -> int:
    return 0


class RegistryTables(DeltaTables):
    """The registry, webhook, outbox and job tables of a lake, with the indexes the store reads through."""

    def __init__(self, root: str) -> None:
        by = lambda col: lambda r: r[col]  # noqa: E731
        self.models = Index(by("name"), _one)
        self.versions = Index(by("name"), by("version"))
        self.model_tags = Index(by("name"), by("key"))
        self.version_tags = Index(lambda r: (r["name"], r["version"]), by("key"))
        self.aliases = Index(by("name"), by("alias"))
        self.webhooks = Index(by("webhook_id"), _one)
        self.events = Index(by("event_id"), _one)
        self.deliveries = Index(lambda r: (r["event_id"], r["subscriber"]), lambda r: (r["attempt"], r["status"]))
        self.triggers = Index(by("trigger_id"), _one)
        self.job_runs = Index(by("run_id"), _one)
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
                JOB_RUNS: ([self.job_runs], None),
            },
        )


class Lake:
    """What one process shares for one lake root: the tables, their lock, the outbox and the dispatcher."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.lock = threading.RLock()
        self.t = RegistryTables(root)
        with self.lock:
            self.t.create_missing()
        self.outbox = _events.Outbox(self.t, _EVENT_SOURCES)
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
    root = os.path.normpath(root)
    with _LAKES_LOCK:
        lake = _LAKES.get(root)
        if lake is None:
            lake = _LAKES[root] = Lake(root)
        return lake


def _version_int(version: Any) -> int:
    return int(_validate_model_version(version))


class LakehouseRegistryStore(AbstractStore):
    """MLflow model registry store whose models, versions, tags, aliases and webhooks are Delta tables.

    Built by MLflow from a `lakehouse:///<lake root>` registry URI (the `mlflow.model_registry_store` entry
    point; the registry URI defaults to the tracking URI). Tables live at `<root>/mlflow/<table>`, e.g.
    `Lakehouse(root).read("mlflow.model_versions", version=12)`. Thread-safe and safe for many processes.

    Example:
        >>> import mlflow
        >>> mlflow.set_tracking_uri("lakehouse:///tmp/lake")
        >>> mlflow.MlflowClient().create_registered_model("churn")
    """

    def __init__(self, store_uri: str, tracking_uri: str | None = None) -> None:
        super().__init__(store_uri, tracking_uri)
        self.root = lake_root_from_uri(store_uri)
        self._lake = open_lake(self.root)
        self._t = self._lake.t
        self._lock = self._lake.lock

    @property
    def supports_workspaces(self) -> bool:
        return False

    def _sync(self, names: list[str] | None = None) -> None:
        self._t.refresh(names or _MODEL_TABLES)

    # ========================================================================================= events
    def _write_with_events(self, name: str, plan, events_of) -> bool:
        """`write` whose commit carries the events `events_of()` builds after planning; then outbox + kick."""
        published: dict[str, Any] = {}

        def planned():
            change = plan()
            if change is None:
                return None
            events = events_of()
            published["events"], published["version"] = events, self._t.tables[name].version + 1
            return dataclasses.replace(change, info={**change.info, _events.EVENTS_KEY: events}) if events else change

        wrote = self._t.write(name, planned)
        if wrote and published.get("events"):
            self._publish(published["events"], name, published["version"])
        return wrote

    def _publish(self, events: list[dict[str, Any]], table: str, version: int) -> None:
        """Copy committed events to the outbox and wake the dispatcher (a crash before this is recovered)."""
        self._lake.outbox.append(events, table, version)
        self._lake.dispatcher.kick()

    def _is_prompt(self, name: str) -> bool:
        hit = self._t.model_tags.get(name, IS_PROMPT_TAG_KEY)
        return hit is not None and hit[0]["value"].lower() == "true"

    # ============================================================================= registered models
    def _model_row(self, name: str) -> Row:
        _validate_model_name(name)
        hit = self._t.models.get(name, 0)
        if hit is None:
            raise MlflowException(f"Registered Model with name={name} not found", RESOURCE_DOES_NOT_EXIST)
        return hit[0]

    def _version_row(self, name: str, version: Any) -> Row:
        _validate_model_name(name)
        v = _version_int(version)
        hit = self._t.versions.get(name, v)
        if hit is None or hit[0]["current_stage"] == STAGE_DELETED_INTERNAL:
            raise MlflowException(f"Model Version (name={name}, version={v}) not found", RESOURCE_DOES_NOT_EXIST)
        return hit[0]

    def _to_version(self, row: Row, *, aliases: bool = False) -> ModelVersion:
        name, v = row["name"], row["version"]
        return ModelVersion(
            name=name,
            version=v,
            creation_timestamp=row["creation_time"],
            last_updated_timestamp=row["last_updated_time"],
            description=row["description"],
            user_id=row["user_id"],
            current_stage=row["current_stage"],
            source=row["source"],
            run_id=row["run_id"],
            status=row["status"],
            status_message=row["status_message"],
            tags=[ModelVersionTag(t["key"], t["value"]) for t in self._t.version_tags.rows((name, v))],
            run_link=row["run_link"],
            aliases=[a["alias"] for a in self._t.aliases.rows(name) if a["version"] == v] if aliases else [],
        )

    def _latest_rows(self, name: str) -> list[Row]:
        latest: dict[str, Row] = {}
        for mv in self._t.versions.rows(name):
            stage = mv["current_stage"]
            if stage != STAGE_DELETED_INTERNAL and (stage not in latest or latest[stage]["version"] < mv["version"]):
                latest[stage] = mv
        return list(latest.values())

    def _to_model(self, row: Row) -> RegisteredModel:
        name = row["name"]
        return RegisteredModel(
            name=name,
            creation_timestamp=row["creation_time"],
            last_updated_timestamp=row["last_updated_time"],
            description=row["description"],
            latest_versions=[self._to_version(r) for r in self._latest_rows(name)],
            tags=[RegisteredModelTag(t["key"], t["value"]) for t in self._t.model_tags.rows(name)],
            aliases=[RegisteredModelAlias(a["alias"], a["version"]) for a in self._t.aliases.rows(name)],
        )

    def create_registered_model(self, name, tags=None, description=None, deployment_job_id=None):
        _validate_model_name(name)
        for tag in tags or []:
            _validate_registered_model_tag(tag.key, tag.value)
        tag_values = {t.key: t.value for t in tags or []}
        now = get_current_time_millis()
        row = {"name": name, "creation_time": now, "last_updated_time": now, "description": description}
        with self._lock:
            self._sync()

            def plan():
                if self._t.models.get(name, 0) is not None:
                    existing = self._to_model(self._t.models.get(name, 0)[0])
                    handle_resource_already_exist_error(name, has_prompt_tag(existing._tags), has_prompt_tag(tags))
                return Change([[row]])

            def events():
                if has_prompt_tag(tags):
                    public = {k: v for k, v in tag_values.items() if k not in {IS_PROMPT_TAG_KEY, PROMPT_TYPE_TAG_KEY}}
                    return [
                        _events.new_event(
                            "prompt.created", {"name": name, "tags": public, "description": description}, name=name
                        )
                    ]
                return [
                    _events.new_event(
                        "registered_model.created",
                        {"name": name, "tags": tag_values, "description": description},
                        name=name,
                    )
                ]

            self._write_with_events(RM, plan, events)
            if tag_values:
                trows = [{"name": name, "key": k, "value": v} for k, v in tag_values.items()]
                self._t.write(
                    RM_TAGS,
                    lambda: self._t.replace(RM_TAGS, self._t.model_tags, [(name, k) for k in tag_values], trows),
                )
            return self._to_model(row)

    def _touch_model(self, name: str, now: int) -> None:
        def plan():
            hit = self._t.models.get(name, 0)
            if hit is None:
                return None
            return self._t.replace(RM, self._t.models, [(name, 0)], [{**hit[0], "last_updated_time": now}])

        self._t.write(RM, plan)

    def update_registered_model(self, name, description, deployment_job_id=None):
        with self._lock:
            self._sync()
            out: dict[str, Row] = {}

            def plan():
                row = self._model_row(name)
                out["row"] = new = {**row, "description": description, "last_updated_time": get_current_time_millis()}
                return self._t.replace(RM, self._t.models, [(name, 0)], [new])

            self._t.write(RM, plan)
            return self._to_model(out["row"])

    def rename_registered_model(self, name, new_name):
        _validate_model_renaming(new_name)
        with self._lock:
            self._sync()
            row = self._model_row(name)
            if self._t.models.get(new_name, 0) is not None:
                raise MlflowException(f"Registered Model (name={new_name}) already exists.", RESOURCE_ALREADY_EXISTS)
            now = get_current_time_millis()
            # Children first, the model row last: until then readers still see the old name complete.
            versions = self._t.versions.rows(name)
            self._t.write(
                MV,
                lambda: (
                    self._t.replace(
                        MV,
                        self._t.versions,
                        [(name, r["version"]) for r in versions],
                        [{**r, "name": new_name, "last_updated_time": now} for r in versions],
                    )
                    if versions
                    else None
                ),
            )
            for table, index, keyf in (
                (MV_TAGS, self._t.version_tags, None),
                (RM_TAGS, self._t.model_tags, "key"),
                (ALIASES, self._t.aliases, "alias"),
            ):
                if table == MV_TAGS:
                    rows = [t for r in versions for t in self._t.version_tags.rows((name, r["version"]))]
                    drop = [((name, t["version"]), t["key"]) for t in rows]
                else:
                    rows = index.rows(name)
                    drop = [(name, t[keyf]) for t in rows]
                if rows:
                    self._t.write(
                        table,
                        lambda t=table, i=index, d=drop, rs=rows: self._t.replace(
                            t, i, d, [{**x, "name": new_name} for x in rs]
                        ),
                    )

            def plan():
                if self._t.models.get(new_name, 0) is not None:
                    raise MlflowException(
                        f"Registered Model (name={new_name}) already exists.", RESOURCE_ALREADY_EXISTS
                    )
                old = self._t.models.get(name, 0)
                return self._t.replace(
                    RM,
                    self._t.models,
                    [(name, 0)],
                    [{**(old[0] if old else row), "name": new_name, "last_updated_time": now}],
                )

            self._t.write(RM, plan)
            self._sync()
            return self._to_model(self._t.models.get(new_name, 0)[0])

    def delete_registered_model(self, name):
        with self._lock:
            self._sync()
            self._model_row(name)
            # The model row goes first: once it is gone the model does not exist; children are then cleaned up.
            self._t.write(RM, lambda: self._t.replace(RM, self._t.models, [(name, 0)], []))
            versions = self._t.versions.rows(name)
            tag_drop = [
                ((name, r["version"]), t["key"])
                for r in versions
                for t in self._t.version_tags.rows((name, r["version"]))
            ]
            for table, index, drop in (
                (MV, self._t.versions, [(name, r["version"]) for r in versions]),
                (MV_TAGS, self._t.version_tags, tag_drop),
                (RM_TAGS, self._t.model_tags, [(name, t["key"]) for t in self._t.model_tags.rows(name)]),
                (ALIASES, self._t.aliases, [(name, a["alias"]) for a in self._t.aliases.rows(name)]),
            ):
                if drop:
                    self._t.write(table, lambda t=table, i=index, d=drop: self._t.replace(t, i, d, []))

    def search_registered_models(
        self,
        filter_string=None,
        max_results=SEARCH_REGISTERED_MODEL_MAX_RESULTS_DEFAULT,
        order_by=None,
        page_token=None,
    ):
        if max_results > SEARCH_REGISTERED_MODEL_MAX_RESULTS_THRESHOLD:
            raise MlflowException(
                "Invalid value for request parameter max_results. It must be at most "
                f"{SEARCH_REGISTERED_MODEL_MAX_RESULTS_THRESHOLD}, but got value {max_results}",
                INVALID_PARAMETER_VALUE,
            )
        parsed = SearchModelUtils.parse_search_filter(filter_string)
        for f in parsed:
            _check_model_filter(f)
        sort_key = _registered_model_sort(order_by)
        offset = SearchUtils.parse_start_offset_from_page_token(page_token)
        with self._lock:
            self._sync()
            # Filter and sort light views of the rows; build entities (latest versions, tags, aliases) only
            # for the page returned.
            models = [_ModelView(hits[0][0], self._t) for hits in self._t.models.groups.values()]
            if not _queries_prompts(parsed):
                models = [m for m in models if not has_prompt_tag(m._tags)]
            models = [m for m in models if _matches(SearchModelUtils._does_registered_model_match_clauses, m, parsed)]
            models.sort(key=sort_key)
            page = _page(models, offset, max_results)
            return PagedList([self._to_model(m.row) for m in page], page.token)

    def get_registered_model(self, name):
        with self._lock:
            self._sync()
            return self._to_model(self._model_row(name))

    def get_latest_versions(self, name, stages=None):
        with self._lock:
            self._sync()
            self._model_row(name)
            expected = {get_canonical_stage(s) for s in (stages or ALL_STAGES)}
            return [
                self._to_version(r, aliases=True) for r in self._latest_rows(name) if r["current_stage"] in expected
            ]

    def set_registered_model_tag(self, name, tag):
        _validate_model_name(name)
        _validate_registered_model_tag(tag.key, tag.value)
        with self._lock:
            self._sync()

            def plan():
                self._model_row(name)
                return self._t.replace(
                    RM_TAGS, self._t.model_tags, [(name, tag.key)], [{"name": name, "key": tag.key, "value": tag.value}]
                )

            def events():
                if self._is_prompt(name):
                    return [
                        _events.new_event(
                            "prompt_tag.set", {"name": name, "key": tag.key, "value": tag.value}, name=name
                        )
                    ]
                return [
                    _events.new_event(
                        _events.REGISTERED_MODEL_TAG_SET, {"name": name, "key": tag.key, "value": tag.value}, name=name
                    )
                ]

            self._write_with_events(RM_TAGS, plan, events)

    def delete_registered_model_tag(self, name, key):
        _validate_model_name(name)
        _validate_tag_name(key)
        with self._lock:
            self._sync()
            self._model_row(name)
            self._t.write(RM_TAGS, lambda: self._t.replace(RM_TAGS, self._t.model_tags, [(name, key)], []))

    # ================================================================================ model versions
    def create_model_version(
        self,
        name,
        source,
        run_id=None,
        tags=None,
        run_link=None,
        description=None,
        local_model_path=None,
        model_id: str | None = None,
    ):
        _validate_model_name(name)
        for tag in tags or []:
            _validate_model_version_tag(tag.key, tag.value)
        storage_location = source
        if urlparse(source).scheme == "models":
            parsed_uri = _parse_model_uri(source)
            try:
                if parsed_uri.model_id is not None:
                    from mlflow.tracking.client import MlflowClient

                    model = MlflowClient().get_logged_model(parsed_uri.model_id)
                    storage_location = model.artifact_location
                    run_id = run_id or model.source_run_id
                else:
                    storage_location = self.get_model_version_download_uri(parsed_uri.name, parsed_uri.version)
            except Exception as e:
                raise MlflowException(
                    f"Unable to fetch model from model URI source artifact location '{source}'.Error: {e}"
                ) from e
        if not run_id and model_id:
            from mlflow.tracking.client import MlflowClient

            run_id = MlflowClient().get_logged_model(model_id).source_run_id
        tag_values = {t.key: t.value for t in tags or []}
        out: dict[str, Row] = {}
        with self._lock:
            self._sync()

            def plan():
                self._model_row(name)
                now = get_current_time_millis()
                version = max((r["version"] for r in self._t.versions.rows(name)), default=0) + 1
                out["row"] = row = {
                    "name": name,
                    "version": version,
                    "creation_time": now,
                    "last_updated_time": now,
                    "description": description,
                    "user_id": None,
                    "current_stage": STAGE_NONE,
                    "source": source,
                    "storage_location": storage_location,
                    "run_id": run_id,
                    "run_link": run_link,
                    "status": ModelVersionStatus.to_string(ModelVersionStatus.READY),
                    "status_message": None,
                }
                return Change([[row]])

            def events():
                row = out["row"]
                if self._is_prompt(name):
                    public = dict(tag_values)
                    template = public.pop(PROMPT_TEXT_TAG_KEY, None)
                    public.pop(IS_PROMPT_TAG_KEY, None)
                    public.pop(PROMPT_TYPE_TAG_KEY, None)
                    return [
                        _events.new_event(
                            "prompt_version.created",
                            {
                                "name": name,
                                "version": str(row["version"]),
                                "template": template,
                                "tags": public,
                                "description": description or None,
                            },
                            name=name,
                            version=row["version"],
                        )
                    ]
                return [
                    _events.new_event(
                        "model_version.created",
                        {
                            "name": name,
                            "version": str(row["version"]),
                            "source": source,
                            "run_id": run_id or None,
                            "tags": tag_values,
                            "description": description or None,
                        },
                        name=name,
                        version=row["version"],
                    )
                ]

            # The version number is taken by the version commit itself (put-if-absent), so concurrent
            # writers get distinct numbers; its tags follow.
            self._write_with_events(MV, plan, events)
            row = out["row"]
            if tag_values:
                trows = [{"name": name, "version": row["version"], "key": k, "value": v} for k, v in tag_values.items()]
                self._t.write(MV_TAGS, lambda: Change([trows]))
            self._touch_model(name, row["creation_time"])
            return self._to_version(row, aliases=True)

    def _update_version(self, name, version, change) -> Row:
        out: dict[str, Row] = {}

        def plan():
            row = self._version_row(name, version)
            out["row"] = new = {**change(row), "last_updated_time": get_current_time_millis()}
            return self._t.replace(MV, self._t.versions, [(name, row["version"])], [new])

        self._t.write(MV, plan)
        return out["row"]

    def update_model_version(self, name, version, description=None):
        with self._lock:
            self._sync()
            row = self._update_version(name, version, lambda r: {**r, "description": description})
            return self._to_version(row, aliases=True)

    def transition_model_version_stage(self, name, version, stage, archive_existing_versions):
        is_active = get_canonical_stage(stage) in DEFAULT_STAGES_FOR_GET_LATEST_VERSIONS
        if archive_existing_versions and not is_active:
            raise MlflowException(
                "Model version transition cannot archive existing model versions because "
                f"'{stage}' is not an Active stage. Valid stages are {DEFAULT_STAGES_FOR_GET_LATEST_VERSIONS}"
            )
        with self._lock:
            self._sync()
            target = get_canonical_stage(stage)
            out: dict[str, Any] = {}

            def plan():
                now = get_current_time_millis()
                archived = []
                if archive_existing_versions:
                    archived = [
                        {**r, "current_stage": STAGE_ARCHIVED, "last_updated_time": now}
                        for r in self._t.versions.rows(name)
                        if r["version"] != _version_int(version) and r["current_stage"] == target
                    ]
                row = self._version_row(name, version)
                new = {**row, "current_stage": target, "last_updated_time": now}
                out.update(row=new, before=row["current_stage"], archived=[r["version"] for r in archived], now=now)
                return self._t.replace(
                    MV, self._t.versions, [(name, r["version"]) for r in [*archived, row]], [*archived, new]
                )

            def events():
                row = out["row"]
                evs = [
                    _events.new_event(
                        _events.STAGE_TRANSITIONED,
                        {
                            "name": name,
                            "version": str(row["version"]),
                            "from_stage": out["before"],
                            "to_stage": target,
                            "archived_versions": [str(v) for v in out["archived"]],
                        },
                        name=name,
                        version=row["version"],
                    )
                ]
                evs += [
                    _events.new_event(
                        _events.STAGE_TRANSITIONED,
                        {
                            "name": name,
                            "version": str(v),
                            "from_stage": target,
                            "to_stage": STAGE_ARCHIVED,
                            "archived_versions": [],
                        },
                        name=name,
                        version=v,
                    )
                    for v in out["archived"]
                ]
                return evs

            self._write_with_events(MV, plan, events)
            self._touch_model(name, out["now"])
            return self._to_version(out["row"], aliases=True)

    def delete_model_version(self, name, version):
        v = _version_int(version)
        with self._lock:
            self._sync()
            self._update_version(
                name,
                v,
                lambda r: {
                    **r,
                    "current_stage": STAGE_DELETED_INTERNAL,
                    "description": None,
                    "user_id": None,
                    "source": "REDACTED-SOURCE-PATH",
                    "run_id": "REDACTED-RUN-ID",
                    "run_link": "REDACTED-RUN-LINK",
                    "status_message": None,
                },
            )
            drop = [(name, a["alias"]) for a in self._t.aliases.rows(name) if a["version"] == v]
            if drop:
                self._t.write(ALIASES, lambda: self._t.replace(ALIASES, self._t.aliases, drop, []))
            self._touch_model(name, get_current_time_millis())

    def get_model_version(self, name, version):
        with self._lock:
            self._sync()
            return self._to_version(self._version_row(name, version), aliases=True)

    def get_model_version_download_uri(self, name, version):
        with self._lock:
            self._sync()
            row = self._version_row(name, version)
            return row["storage_location"] or row["source"]

    def search_model_versions(
        self, filter_string=None, max_results=SEARCH_MODEL_VERSION_MAX_RESULTS_DEFAULT, order_by=None, page_token=None
    ):
        if not isinstance(max_results, int) or max_results < 1:
            raise MlflowException(
                f"Invalid value for max_results. It must be a positive integer, but got {max_results}",
                INVALID_PARAMETER_VALUE,
            )
        if max_results > SEARCH_MODEL_VERSION_MAX_RESULTS_THRESHOLD:
            raise MlflowException(
                "Invalid value for request parameter max_results. It must be at most "
                f"{SEARCH_MODEL_VERSION_MAX_RESULTS_THRESHOLD}, but got value {max_results}",
                INVALID_PARAMETER_VALUE,
            )
        parsed = SearchModelVersionUtils.parse_search_filter(filter_string)
        for f in parsed:
            _check_version_filter(f)
        sort_key = _version_sort(order_by or ["last_updated_timestamp DESC", "name ASC", "version_number DESC"])
        offset = SearchUtils.parse_start_offset_from_page_token(page_token)
        with self._lock:
            self._sync()
            prompts = (
                set() if _queries_prompts(parsed) else {name for name in self._t.models.groups if self._is_prompt(name)}
            )
            # Filter and sort light views of the rows (MLflow's matcher reads attributes and `tags`, which a
            # view computes from the row on demand); build entities only for the page returned.
            versions = [
                _VersionView(r, self._t)
                for hits in self._t.versions.groups.values()
                for r, _ in hits.values()
                if r["current_stage"] != STAGE_DELETED_INTERNAL and r["name"] not in prompts
            ]
            if parsed:
                match = SearchModelVersionUtils._does_model_version_match_clauses
                versions = [v for v in versions if _matches(match, v, parsed)]
            versions.sort(key=sort_key)
            page = _page(versions, offset, max_results)
            return PagedList([self._to_version(v.row) for v in page], page.token)

    def set_model_version_tag(self, name, version, tag):
        _validate_model_name(name)
        v = _version_int(version)
        _validate_model_version_tag(tag.key, tag.value)
        with self._lock:
            self._sync()

            def plan():
                self._version_row(name, v)
                return self._t.replace(
                    MV_TAGS,
                    self._t.version_tags,
                    [((name, v), tag.key)],
                    [{"name": name, "version": v, "key": tag.key, "value": tag.value}],
                )

            entity = "prompt_version_tag" if self._is_prompt(name) else "model_version_tag"
            self._write_with_events(
                MV_TAGS,
                plan,
                lambda: [
                    _events.new_event(
                        f"{entity}.set",
                        {"name": name, "version": str(version), "key": tag.key, "value": tag.value},
                        name=name,
                        version=v,
                    )
                ],
            )

    def delete_model_version_tag(self, name, version, key):
        _validate_model_name(name)
        v = _version_int(version)
        _validate_tag_name(key)
        with self._lock:
            self._sync()
            self._version_row(name, v)
            entity = "prompt_version_tag" if self._is_prompt(name) else "model_version_tag"
            self._write_with_events(
                MV_TAGS,
                lambda: self._t.replace(MV_TAGS, self._t.version_tags, [((name, v), key)], []),
                lambda: [
                    _events.new_event(
                        f"{entity}.deleted", {"name": name, "version": str(version), "key": key}, name=name, version=v
                    )
                ],
            )

    def set_registered_model_alias(self, name, alias, version):
        _validate_model_name(name)
        _validate_model_alias_name(alias)
        _validate_model_alias_name_reserved(alias)
        v = _version_int(version)
        with self._lock:
            self._sync()

            def plan():
                self._version_row(name, v)
                return self._t.replace(
                    ALIASES, self._t.aliases, [(name, alias)], [{"name": name, "alias": alias, "version": v}]
                )

            entity = "prompt_alias" if self._is_prompt(name) else "model_version_alias"
            self._write_with_events(
                ALIASES,
                plan,
                lambda: [
                    _events.new_event(
                        f"{entity}.created",
                        {"name": name, "alias": alias, "version": str(version)},
                        name=name,
                        version=v,
                    )
                ],
            )

    def delete_registered_model_alias(self, name, alias):
        _validate_model_name(name)
        _validate_model_alias_name(alias)
        with self._lock:
            self._sync()
            self._model_row(name)
            entity = "prompt_alias" if self._is_prompt(name) else "model_version_alias"
            self._write_with_events(
                ALIASES,
                lambda: self._t.replace(ALIASES, self._t.aliases, [(name, alias)], []),
                lambda: [_events.new_event(f"{entity}.deleted", {"name": name, "alias": alias}, name=name)],
            )

    def get_model_version_by_alias(self, name, alias):
        _validate_model_name(name)
        _validate_model_alias_name(alias)
        if alias.lower() == _REGISTERED_MODEL_ALIAS_LATEST:
            if versions := self.get_latest_versions(name):
                return max(versions, key=lambda mv: int(mv.version))
            raise MlflowException(f"Latest version not found for model {name}.", RESOURCE_DOES_NOT_EXIST)
        with self._lock:
            self._sync()
            self._model_row(name)
            hit = self._t.aliases.get(name, alias)
            if hit is None:
                raise MlflowException(f"Registered model alias {alias} not found.", INVALID_PARAMETER_VALUE)
            return self._to_version(self._version_row(name, hit[0]["version"]), aliases=True)

    def _await_model_version_creation(self, mv, await_creation_for):
        """Versions are READY when created (as in the SQL store): nothing to wait for."""

    # ======================================================================================= webhooks
    def _webhook_row(self, webhook_id: str) -> Row:
        hit = self._t.webhooks.get(webhook_id, 0)
        if hit is None or hit[0]["deleted_timestamp"] is not None:
            raise MlflowException(f"Webhook with ID {webhook_id} not found.", RESOURCE_DOES_NOT_EXIST)
        return hit[0]

    def create_webhook(self, name, url, events, description=None, secret=None, status=None) -> Webhook:
        _validate_webhook_name(name)
        _validate_webhook_url(url)
        _validate_webhook_events(events)
        now = get_current_time_millis()
        row = {
            "webhook_id": str(uuid.uuid4()),
            "name": name,
            "description": description,
            "url": url,
            "events": json.dumps([str(e) for e in events]),
            "status": (status or WebhookStatus.ACTIVE).value,
            "secret": _webhooks.seal_secret(secret),
            "creation_timestamp": now,
            "last_updated_timestamp": now,
            "deleted_timestamp": None,
        }
        with self._lock:
            self._t.write(WEBHOOKS, lambda: Change([[row]]))
        return _webhooks.to_webhook(row)

    def get_webhook(self, webhook_id: str) -> Webhook:
        with self._lock:
            self._t.refresh([WEBHOOKS])
            return _webhooks.to_webhook(self._webhook_row(webhook_id))

    def _list_webhooks(self, keep, max_results, page_token) -> PagedList[Webhook]:
        max_results = max_results or 100
        if max_results < 1 or max_results > 1000:
            raise MlflowException("max_results must be between 1 and 1000.", INVALID_PARAMETER_VALUE)
        offset = SearchUtils.parse_start_offset_from_page_token(page_token)
        with self._lock:
            self._t.refresh([WEBHOOKS])
            rows = [h[0][0] for h in self._t.webhooks.groups.values()]
        rows = [r for r in rows if r["deleted_timestamp"] is None and keep(r)]
        rows.sort(key=lambda r: -r["creation_timestamp"])
        return _page([_webhooks.to_webhook(r) for r in rows], offset, max_results)

    def list_webhooks(self, max_results=None, page_token=None) -> PagedList[Webhook]:
        return self._list_webhooks(lambda r: True, max_results, page_token)

    def list_webhooks_by_event(self, event, max_results=None, page_token=None) -> PagedList[Webhook]:
        """Always empty: MLflow's server delivers to what this returns, and this store delivers by itself.

        Listing by event is what `mlflow.webhooks.delivery.deliver_webhook` does after every server request;
        answering nothing keeps a store served by `mlflow server` from delivering each event twice. Use
        `list_webhooks()` to see subscriptions.
        """
        return PagedList([], None)

    def update_webhook(
        self, webhook_id, name=None, description=None, url=None, events=None, secret=None, status=None
    ) -> Webhook:
        out: dict[str, Row] = {}
        with self._lock:
            self._t.refresh([WEBHOOKS])
            self._webhook_row(webhook_id)
            if name is not None:
                _validate_webhook_name(name)
            if url is not None:
                _validate_webhook_url(url)
            if events is not None:
                _validate_webhook_events(events)

            def plan():
                row = dict(self._webhook_row(webhook_id))
                for col, value in (("name", name), ("description", description), ("url", url)):
                    if value is not None:
                        row[col] = value
                if events is not None:
                    row["events"] = json.dumps([str(e) for e in events])
                if secret is not None:
                    row["secret"] = _webhooks.seal_secret(secret)
                if status is not None:
                    row["status"] = status.value
                row["last_updated_timestamp"] = get_current_time_millis()
                out["row"] = row
                return self._t.replace(WEBHOOKS, self._t.webhooks, [(webhook_id, 0)], [row])

            self._t.write(WEBHOOKS, plan)
        return _webhooks.to_webhook(out["row"])

    def delete_webhook(self, webhook_id: str) -> None:
        with self._lock:
            self._t.refresh([WEBHOOKS])

            def plan():
                row = self._webhook_row(webhook_id)
                now = get_current_time_millis()
                return self._t.replace(
                    WEBHOOKS,
                    self._t.webhooks,
                    [(webhook_id, 0)],
                    [{**row, "deleted_timestamp": now, "last_updated_timestamp": now}],
                )

            self._t.write(WEBHOOKS, plan)

    def test_webhook(self, webhook_id: str, event: WebhookEvent | None = None) -> WebhookTestResult:
        """Send MLflow's example payload for `event` (default: the webhook's first event), as its server does."""
        from mlflow.webhooks.types import get_example_payload_for_event

        webhook = self.get_webhook(webhook_id)
        test_event = event or webhook.events[0]
        return _webhooks.test_result(_webhooks.send(webhook, test_event, get_example_payload_for_event(test_event)))


# -- search helpers: the SQL store's rules ----------------------------------------------------------------
class _VersionView:
    """A model-version row seen as MLflow's version filter and `_version_sort` read a `ModelVersion`.

    Building a `ModelVersion` costs tens of microseconds (tags, and two environment lookups for its workspace),
    so a search over 1,000 versions builds only the page it returns. `tags` is read only by tag clauses.
    """

    __slots__ = ("_t", "row")

    def __init__(self, row: Row, tables: RegistryTables) -> None:
        self.row, self._t = row, tables

    name = property(lambda self: self.row["name"])
    version = property(lambda self: self.row["version"])
    source = property(lambda self: self.row["source"])
    run_id = property(lambda self: self.row["run_id"])
    current_stage = property(lambda self: self.row["current_stage"])
    creation_timestamp = property(lambda self: self.row["creation_time"])
    last_updated_timestamp = property(lambda self: self.row["last_updated_time"])

    @property
    def tags(self) -> dict[str, str]:
        return {t["key"]: t["value"] for t in self._t.version_tags.rows((self.row["name"], self.row["version"]))}


class _ModelView:
    """A registered-model row seen as MLflow's model filter and `_registered_model_sort` read a `RegisteredModel`
    (`_tags` holds every tag, the prompt marker included, as on the entity)."""

    __slots__ = ("_tags", "row")

    def __init__(self, row: Row, tables: RegistryTables) -> None:
        self.row = row
        self._tags = {t["key"]: t["value"] for t in tables.model_tags.rows(row["name"])}

    name = property(lambda self: self.row["name"])
    creation_timestamp = property(lambda self: self.row["creation_time"])
    last_updated_timestamp = property(lambda self: self.row["last_updated_time"])


def _matches(match_clause, item: Any, parsed: list[dict[str, Any]]) -> bool:
    """Whether `item` satisfies every parsed clause, by MLflow's own per-clause matcher (what its `filter` runs
    after parsing the string a second time; mlflow is pinned, so this private hook is stable here)."""
    return all(match_clause(item, clause) for clause in parsed)


def _page(items: list, offset: int, max_results: int) -> PagedList:
    page = items[offset : offset + max_results]
    token = SearchUtils.create_page_token(offset + max_results) if len(items) > offset + max_results else None
    return PagedList(page, token)


def _queries_prompts(parsed: list[dict[str, Any]]) -> bool:
    for f in parsed:
        if f["type"] == "tag" and f["key"] == IS_PROMPT_TAG_KEY:
            return (f["comparator"] == "=" and f["value"].lower() == "true") or (
                f["comparator"] == "!=" and f["value"].lower() == "false"
            )
    return False


def _check_model_filter(f: dict[str, Any]) -> None:
    if f["type"] == "attribute":
        if f["key"] != "name":
            raise MlflowException(f"Invalid attribute name: {f['key']}", error_code=INVALID_PARAMETER_VALUE)
        if f["comparator"] not in ("=", "!=", "LIKE", "ILIKE", "IN", "NOT IN"):
            raise MlflowException(
                f"Invalid comparator for attribute: {f['comparator']}", error_code=INVALID_PARAMETER_VALUE
            )
    elif f["type"] == "tag":
        if f["comparator"] not in ("=", "!=", "LIKE", "ILIKE"):
            raise MlflowException.invalid_parameter_value(f"Invalid comparator for tag: {f['comparator']}")
    else:
        raise MlflowException(f"Invalid token type: {f['type']}", error_code=INVALID_PARAMETER_VALUE)


def _check_version_filter(f: dict[str, Any]) -> None:
    key, comparator, value = f["key"], f["comparator"], f["value"]
    if f["type"] == "attribute":
        if key not in SearchModelVersionUtils.VALID_SEARCH_ATTRIBUTE_KEYS:
            raise MlflowException(f"Invalid attribute name: {key}", error_code=INVALID_PARAMETER_VALUE)
        if key in SearchModelVersionUtils.NUMERIC_ATTRIBUTES:
            if comparator not in SearchModelVersionUtils.VALID_NUMERIC_ATTRIBUTE_COMPARATORS:
                raise MlflowException(
                    f"Invalid comparator for attribute {key}: {comparator}", error_code=INVALID_PARAMETER_VALUE
                )
            try:
                if isinstance(value, float):
                    raise ValueError(value)
                int(value)
            except (TypeError, ValueError):
                raise MlflowException.invalid_parameter_value(
                    f"Invalid value for numeric attribute '{key}': {value!r}"
                ) from None
        elif comparator not in SearchModelVersionUtils.VALID_STRING_ATTRIBUTE_COMPARATORS or (
            comparator in ("IN", "NOT IN") and key not in ("run_id", "name")
        ):
            raise MlflowException(f"Invalid comparator for attribute: {comparator}", error_code=INVALID_PARAMETER_VALUE)
    elif f["type"] == "tag":
        if comparator not in ("=", "!=", "LIKE", "ILIKE"):
            raise MlflowException.invalid_parameter_value(f"Invalid comparator for tag: {comparator}")
    else:
        raise MlflowException(f"Invalid token type: {f['type']}", error_code=INVALID_PARAMETER_VALUE)


class _Desc:
    """Reverses the order of a value inside a sort key."""

    __slots__ = ("v",)

    def __init__(self, v: Any) -> None:
        self.v = v

    def __lt__(self, other: _Desc) -> bool:
        return other.v < self.v

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Desc) and other.v == self.v


def _sort_key(fields: list[tuple[Any, bool]]):
    return lambda x: tuple(f(x) if asc else _Desc(f(x)) for f, asc in fields)


def _registered_model_sort(order_by: list[str] | None):
    fields, seen = [], set()
    for clause in order_by or []:
        token, asc = SearchUtils.parse_order_by_for_search_registered_models(clause)
        if token == "name":
            col, getter = "name", (lambda m: m.name)
        elif token in SearchUtils.VALID_TIMESTAMP_ORDER_BY_KEYS:
            col, getter = "last_updated_time", (lambda m: m.last_updated_timestamp)
        else:
            raise MlflowException(
                f"Invalid order by key '{token}' specified.Valid keys are "
                f"'{SearchUtils.RECOMMENDED_ORDER_BY_KEYS_REGISTERED_MODELS}'",
                error_code=INVALID_PARAMETER_VALUE,
            )
        if col in seen:
            raise MlflowException(f"`order_by` contains duplicate fields: {order_by}")
        seen.add(col)
        fields.append((getter, asc))
    if "name" not in seen:
        fields.append((lambda m: m.name, True))
    return _sort_key(fields)


_VERSION_FIELDS = {
    "name": lambda v: v.name,
    "version_number": lambda v: int(v.version),
    "creation_timestamp": lambda v: v.creation_timestamp,
    "last_updated_timestamp": lambda v: v.last_updated_timestamp,
}


def _version_sort(order_by: list[str]):
    fields, seen = [], set()
    for clause in order_by:
        _, key, asc = SearchModelVersionUtils.parse_order_by_for_search_model_versions(clause)
        if key not in SearchModelVersionUtils.VALID_ORDER_BY_ATTRIBUTE_KEYS:
            raise MlflowException(
                f"Invalid order by key '{key}' specified. Valid keys are "
                f"{SearchModelVersionUtils.VALID_ORDER_BY_ATTRIBUTE_KEYS}",
                error_code=INVALID_PARAMETER_VALUE,
            )
        if key in seen:
            raise MlflowException(f"`order_by` contains duplicate fields: {order_by}")
        seen.add(key)
        fields.append((_VERSION_FIELDS[key], asc))
    if "name" not in seen:
        fields.append((_VERSION_FIELDS["name"], True))
    if "version_number" not in seen:
        fields.append((_VERSION_FIELDS["version_number"], False))
    return _sort_key(fields)
