"""Model aliases: point a name such as `champion` at one version of a model, move or drop it, resolve it.

The operations of `LakehouseRegistryStore` on `mlflow.registered_model_aliases`. Alias rules follow MLflow's
SQL store: `latest` (any case) and `v<number>` are reserved; `latest` resolves to the highest live version;
deleting a version drops its aliases (`_registry_versions`). Setting and deleting publish registry events.
"""

from __future__ import annotations

from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE, RESOURCE_DOES_NOT_EXIST
from mlflow.utils.validation import (
    _REGISTERED_MODEL_ALIAS_LATEST,
    _validate_model_alias_name,
    _validate_model_alias_name_reserved,
    _validate_model_name,
)

from . import _events
from ._journal import delete, put
from ._registry_base import Planned, RegistryStoreBase, version_int
from ._registry_entities import to_version
from ._registry_tables import ALIASES


class AliasesMixin(RegistryStoreBase):
    """MLflow's registered-model alias operations."""

    def _alias_entity(self, name: str) -> str:
        """The entity of the model's alias events: prompts have `prompt_alias` events."""
        return "prompt_alias" if self._is_prompt(name) else "model_version_alias"

    def set_registered_model_alias(self, name, alias, version):
        _validate_model_name(name)
        _validate_model_alias_name(alias)
        _validate_model_alias_name_reserved(alias)
        v = version_int(version)
        with self._lock:
            self._sync()
            entity = self._alias_entity(name)
            payload = {"name": name, "alias": alias, "version": str(version)}

            def plan() -> Planned:
                self._version_row(name, v)
                row = {"name": name, "alias": alias, "version": v}
                event = _events.new_event(f"{entity}.created", payload, name=name, version=v)
                return Planned(None, events=[event], journal=[put(ALIASES, row)])

            self._write_journaled(plan)

    def delete_registered_model_alias(self, name, alias):
        _validate_model_name(name)
        _validate_model_alias_name(alias)
        with self._lock:
            self._sync()
            self._model_row(name)
            entity = self._alias_entity(name)

            def plan() -> Planned:
                self._model_row(name)
                hit = self._t.aliases.get(name, alias)
                if hit is None:
                    return Planned(None)
                event = _events.new_event(f"{entity}.deleted", {"name": name, "alias": alias}, name=name)
                return Planned(None, events=[event], journal=[delete(ALIASES, hit.row)])

            self._write_journaled(plan)

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
            return to_version(self._t, self._version_row(name, hit.row["version"]), aliases=True)
