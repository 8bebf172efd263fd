"""Registered models: create, read, update, rename and delete them, and set or delete their tags.

The operations of `LakehouseRegistryStore` on the `mlflow.registered_models` row of a model and on the
rows that carry its name (versions, tags, aliases: a rename moves them, a delete removes them). Validation,
error codes and messages follow MLflow's SQL store; creation and tag changes publish registry events.
"""

from __future__ import annotations

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

from lakehouse import Row

from . import _events
from ._journal import delete, put
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
                events = [_events.new_event(event, payload, name=name)]
                # The model and its tags: one journal commit (`_write_journaled`), so it never exists without them.
                trows = [put(RM_TAGS, {"name": name, "key": k, "value": v}) for k, v in tag_values.items()]
                return Planned(None, events=events, journal=[*trows, put(RM, row)])

            self._write_journaled(plan)
            return to_model(self._t, row)

    def update_registered_model(self, name, description, deployment_job_id=None):
        with self._lock:
            self._sync()

            def plan() -> Planned:
                row = self._model_row(name)
                new = {**row, "description": description, "last_updated_time": get_current_time_millis()}
                return Planned(None, result=new, journal=[put(RM, new)])

            return to_model(self._t, self._write_journaled(plan))

    def rename_registered_model(self, name, new_name):
        _validate_model_renaming(new_name)
        with self._lock:
            self._sync()

            def plan() -> Planned:
                row = self._model_row(name)
                # Renaming a model to its own name succeeds, as in MLflow's SQL store: it only touches the model
                # and its versions.
                moving = new_name != name
                if moving and self._t.models.get(new_name, 0) is not None:
                    raise MlflowException(
                        f"Registered Model (name={new_name}) already exists.", RESOURCE_ALREADY_EXISTS
                    )
                now = get_current_time_millis()
                versions = self._t.versions.rows(name)
                rows: list[Row] = [delete(MV, r) for r in versions] if moving else []
                rows += [put(MV, {**r, "name": new_name, "last_updated_time": now}) for r in versions]
                if moving:
                    for table, children in self._children(name, versions):
                        rows += [delete(table, c) for c in children]
                        rows += [put(table, {**c, "name": new_name}) for c in children]
                    rows.append(delete(RM, row))
                new = {**row, "name": new_name, "last_updated_time": now}
                return Planned(None, result=new, journal=[*rows, put(RM, new)])

            # One journal commit: readers see the old name whole or the new name whole (`_write_journaled`).
            return to_model(self._t, self._write_journaled(plan))

    def _children(self, name: str, versions: list[Row]) -> list[tuple[str, list[Row]]]:
        """The version tags, model tags and aliases of model `name` (whose version rows are `versions`)."""
        return [
            (MV_TAGS, [t for r in versions for t in self._t.version_tags.rows((name, r["version"]))]),
            (RM_TAGS, self._t.model_tags.rows(name)),
            (ALIASES, self._t.aliases.rows(name)),
        ]

    def delete_registered_model(self, name):
        with self._lock:
            self._sync()

            def plan() -> Planned:
                row = self._model_row(name)
                versions = self._t.versions.rows(name)
                rows = [delete(table, c) for table, children in self._children(name, versions) for c in children]
                rows += [delete(MV, r) for r in versions]
                return Planned(None, journal=[*rows, delete(RM, row)])

            # One journal commit: the model and everything under its name go together (`_write_journaled`).
            self._write_journaled(plan)

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
                row = {"name": name, "key": tag.key, "value": tag.value}
                event = "prompt_tag.set" if self._is_prompt(name) else _events.REGISTERED_MODEL_TAG_SET
                return Planned(None, events=[_events.new_event(event, payload, name=name)], journal=[put(RM_TAGS, row)])

            self._write_journaled(plan)

    def delete_registered_model_tag(self, name, key):
        _validate_model_name(name)
        _validate_tag_name(key)
        with self._lock:
            self._sync()
            self._model_row(name)

            def plan() -> Planned:
                self._model_row(name)
                hit = self._t.model_tags.get(name, key)
                return Planned(None, journal=[delete(RM_TAGS, hit.row)] if hit is not None else [])

            self._write_journaled(plan)
