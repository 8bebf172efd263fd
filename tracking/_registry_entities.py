"""Registry rows as MLflow entities: `RegisteredModel` and `ModelVersion` built from Delta rows.

A model's entity gathers its tags, aliases and latest version per stage from the indexes of
`RegistryTables`; a version's gathers its tags and, when asked, its aliases. Building one costs tens of
microseconds, so searches filter light views of the rows (`_registry_search`) and convert only the page
they return.
"""

from __future__ import annotations

from mlflow.entities.model_registry import (
    ModelVersion,
    ModelVersionTag,
    RegisteredModel,
    RegisteredModelAlias,
    RegisteredModelTag,
)
from mlflow.entities.model_registry.model_version_stages import STAGE_DELETED_INTERNAL

from lakehouse import Row

from ._registry_tables import RegistryTables


def to_version(tables: RegistryTables, row: Row, *, aliases: bool = False) -> ModelVersion:
    """The `ModelVersion` of a version row; its aliases only with `aliases=True` (else an empty list)."""
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
        tags=[ModelVersionTag(t["key"], t["value"]) for t in tables.version_tags.rows((name, v))],
        run_link=row["run_link"],
        aliases=[a["alias"] for a in tables.aliases.rows(name) if a["version"] == v] if aliases else [],
    )


def latest_version_rows(tables: RegistryTables, name: str) -> list[Row]:
    """The highest-numbered live version of model `name` in each stage (deleted versions left out), stages in the
    order of their lowest version, as the SQL store lists them (it walks the versions in number order)."""
    latest: dict[str, Row] = {}
    for mv in sorted(tables.versions.rows(name), key=lambda r: r["version"]):
        stage = mv["current_stage"]
        if stage != STAGE_DELETED_INTERNAL and (stage not in latest or latest[stage]["version"] < mv["version"]):
            latest[stage] = mv
    return list(latest.values())


def to_model(tables: RegistryTables, row: Row) -> RegisteredModel:
    """The `RegisteredModel` of a model row, with its latest versions, tags and aliases."""
    name = row["name"]
    return RegisteredModel(
        name=name,
        creation_timestamp=row["creation_time"],
        last_updated_timestamp=row["last_updated_time"],
        description=row["description"],
        latest_versions=[to_version(tables, r) for r in latest_version_rows(tables, name)],
        tags=[RegisteredModelTag(t["key"], t["value"]) for t in tables.model_tags.rows(name)],
        aliases=[RegisteredModelAlias(a["alias"], a["version"]) for a in tables.aliases.rows(name)],
    )
