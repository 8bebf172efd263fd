"""`LakehouseRegistryStore`: MLflow's model registry contract on the Delta tables of a lake.

Rules (validation, error codes, version numbering, stages, aliases, search semantics, soft deletion of
versions) follow MLflow's SQL store, `mlflow.store.model_registry.sqlalchemy_store.SqlAlchemyStore`, with
MLflow's own validators and search grammar (`mlflow.utils.validation`, `mlflow.utils.search_utils`).

Every change that MLflow's server announces to webhooks also publishes a registry event (see `_events`):
in the change's own commit, then in the outbox; a background thread delivers it.

The store is composed of one mixin per family of operations, as MLflow composes its stores:

    _registry_tables     table names, `RegistryTables`, `Lake` / `open_lake` (what `jobs` imports)
    _registry_base       the shared state, row lookups and the evented write (`Planned`)
    _registry_entities   rows as `RegisteredModel` / `ModelVersion`
    _registry_models     registered models and their tags
    _registry_versions   model versions, stages and version tags
    _registry_aliases    aliases
    _registry_search     searches: filters, sort keys, paging
    _registry_webhooks   webhook subscriptions
"""

from __future__ import annotations

from ._registry_aliases import AliasesMixin
from ._registry_models import RegisteredModelsMixin
from ._registry_search import SearchMixin
from ._registry_tables import JOB_HISTORY, JOB_RUNS, TRIGGER_TAGS, TRIGGERS, Lake, open_lake
from ._registry_versions import ModelVersionsMixin
from ._registry_webhooks import WebhooksMixin
from ._uri import lake_root_from_uri

__all__ = ["JOB_HISTORY", "JOB_RUNS", "TRIGGERS", "TRIGGER_TAGS", "Lake", "LakehouseRegistryStore", "open_lake"]


class LakehouseRegistryStore(RegisteredModelsMixin, ModelVersionsMixin, AliasesMixin, SearchMixin, WebhooksMixin):
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
