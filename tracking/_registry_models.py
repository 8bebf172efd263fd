"""Registered models: create, read, update, rename and delete them, and set or delete their tags.

The operations of `LakehouseRegistryStore` on the `mlflow.registered_models` row of a model and on the
rows that carry its name (versions, tags, aliases: a rename moves them, a delete removes them). Validation,
error codes and messages follow MLflow's SQL store; creation and tag changes publish registry events.
"""

from __future__ import annotations

import functools
from collections.abc import Hashable

from mlflow.entities.model_registry.model_version_stages import ALL_STAGES, get_canonical_stage
from mlflow.entities.model_registry.prompt_version import IS_PROMPT_TAG_KEY
from mlflow.exceptions import MlflowException
from mlflow.prompt.constants import PROMPT_TYPE_TAG_KEY
from mlflow.prompt.registry_utils import handle_resource_already_exist_error, has_prompt_tag
from mlflow.protos.databricks_pb2 import RESOURCE_ALREADY_EXISTS
from mlflow.utils.time import get_current_time_millis
from mlflow.utils.validation import (
    _validate_model_name,
    _validate_model_renaming,
    _validate_registered_model_tag,
    _validate_tag_name,
)

from lakehouse import Change

from . import _events
from ._registry_base import Planned, RegistryStoreBase
from ._registry_entities import latest_version_rows, to_model, to_version
from ._registry_tables import ALIASES, MV, MV_TAGS, RM, RM_TAGS


class RegisteredModelsMixin(RegistryStoreBase):
    """MLflow's registered-model operations (search is in `SearchMixin`)."""

    def create_registered_model(self, name, tags=None, description=None, deployment_job_id=None):
        _validate_model_name(name)
        for tag in tags or []:
            _validate_registered_model_tag(tag.key, tag.value)
        tag_values = {t.key: t.value for t in tags or []}
        now = get_current_time_millis()
        row = {"name": name, "creation_time": now, "last_updated_time": now, "description": description}
        if has_prompt_tag(tags):
            public = {k: v for k, v in tag_values.items() if k not in {IS_PROMPT_TAG_KEY, PROMPT_TYPE_TAG_KEY}}
            event, payload = "prompt.created", {"name": name, "tags": public, "description": description}
        else:
            event, payload = "registered_model.created", {"name": name, "tags": tag_values, "description": description}
        with self._lock:
            self._sync()

            def plan() -> Planned:
                hit = self._t.models.get(name, 0)
                if hit is not None:
                    existing = to_model(self._t, hit.row)
                    handle_resource_already_exist_error(name, has_prompt_tag(existing._tags), has_prompt_tag(tags))
                return Planned(Change([[row]]), events=[_events.new_event(event, payload, name=name)])

            self._write(RM, plan)
            if tag_values:
                trows = [{"name": name, "key": k, "value": v} for k, v in tag_values.items()]
                self._t.write(
                    RM_TAGS,
                    lambda: self._t.replace(RM_TAGS, self._t.model_tags, [(name, k) for k in tag_values], trows),
                )
            return to_model(self._t, row)

    def update_registered_model(self, name, description, deployment_job_id=None):
        with self._lock:
            self._sync()

            def plan() -> Planned:
                row = self._model_row(name)
                new = {**row, "description": description, "last_updated_time": get_current_time_millis()}
                return Planned(self._t.replace(RM, self._t.models, [(name, 0)], [new]), result=new)

            return to_model(self._t, self._write(RM, plan))

    def rename_registered_model(self, name, new_name):
        _validate_model_renaming(new_name)
        with self._lock:
            self._sync()
            row = self._model_row(name)
            # Renaming a model to its own name succeeds, as in MLflow's SQL store: it only touches the model
            # and its versions.
            moving = new_name != name
            if moving and self._t.models.get(new_name, 0) is not None:
                raise MlflowException(f"Registered Model (name={new_name}) already exists.", RESOURCE_ALREADY_EXISTS)
            now = get_current_time_millis()
            # One commit per table, children first, the model row last. Not atomic: between the commits a reader
            # sees versions, tags and aliases under the new name while the model row still has the old one, and
            # a crash between them leaves it so.
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
            if moving:
                self._move_children(name, new_name, versions)

            def plan():
                if moving and self._t.models.get(new_name, 0) is not None:
                    raise MlflowException(
                        f"Registered Model (name={new_name}) already exists.", RESOURCE_ALREADY_EXISTS
                    )
                old = self._t.models.get(name, 0)
                return self._t.replace(
                    RM,
                    self._t.models,
                    [(name, 0)],
                    [{**(old.row if old else row), "name": new_name, "last_updated_time": now}],
                )

            self._t.write(RM, plan)
            self._sync()
            return to_model(self._t, self._model_row(new_name))

    def _move_children(self, name: str, new_name: str, versions: list) -> None:
        """Rename the version tags, model tags and aliases of model `name` (one commit per table)."""
        for table, index, keyf in (
            (MV_TAGS, self._t.version_tags, "key"),
            (RM_TAGS, self._t.model_tags, "key"),
            (ALIASES, self._t.aliases, "alias"),
        ):
            if table == MV_TAGS:
                rows = [t for r in versions for t in self._t.version_tags.rows((name, r["version"]))]
                drop: list[tuple[Hashable, Hashable]] = [((name, t["version"]), t["key"]) for t in rows]
            else:
                rows = index.rows(name)
                drop = [(name, t[keyf]) for t in rows]
            if rows:
                renamed = [{**x, "name": new_name} for x in rows]
                self._t.write(table, functools.partial(self._t.replace, table, index, drop, renamed))

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
                    self._t.write(table, functools.partial(self._t.replace, table, index, drop, []))

    def get_registered_model(self, name):
        with self._lock:
            self._sync()
            return to_model(self._t, self._model_row(name))

    def get_latest_versions(self, name, stages=None):
        with self._lock:
            self._sync()
            self._model_row(name)
            expected = {get_canonical_stage(s) for s in (stages or ALL_STAGES)}
            return [
                to_version(self._t, r, aliases=True)
                for r in latest_version_rows(self._t, name)
                if r["current_stage"] in expected
            ]

    def set_registered_model_tag(self, name, tag):
        _validate_model_name(name)
        _validate_registered_model_tag(tag.key, tag.value)
        payload = {"name": name, "key": tag.key, "value": tag.value}
        with self._lock:
            self._sync()

            def plan() -> Planned:
                self._model_row(name)
                change = self._t.replace(
                    RM_TAGS, self._t.model_tags, [(name, tag.key)], [{"name": name, "key": tag.key, "value": tag.value}]
                )
                event = "prompt_tag.set" if self._is_prompt(name) else _events.REGISTERED_MODEL_TAG_SET
                return Planned(change, events=[_events.new_event(event, payload, name=name)])

            self._write(RM_TAGS, plan)

    def delete_registered_model_tag(self, name, key):
        _validate_model_name(name)
        _validate_tag_name(key)
        with self._lock:
            self._sync()
            self._model_row(name)
            self._t.write(RM_TAGS, lambda: self._t.replace(RM_TAGS, self._t.model_tags, [(name, key)], []))
