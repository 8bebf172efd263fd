"""Model versions: create, read, update and delete them, move them between stages, and tag them.

The operations of `LakehouseRegistryStore` on `mlflow.model_versions` and `mlflow.model_version_tags`.
Versions are numbered per model by the commit that creates them, are READY at once (as in MLflow's SQL
store), and are soft-deleted: a deleted version keeps its number (never reused) with its fields redacted
and its aliases dropped. Creation, stage transitions and tag changes publish registry events.

The promotion gate: a registered model carrying the tag `validation.required` = "true" (any case) opts into
validation, and a transition of one of its versions to Production is refused (INVALID_PARAMETER_VALUE, nothing
written) unless that version's tag `validation.status` is "passed" (what `lakehouse-jobs validate` sets). A
model without the opt-in tag transitions exactly as in MLflow. The gate is a convention between the registry
and the validate job, not access control: whoever may set a version tag may set the verdict.
"""

from __future__ import annotations

from urllib.parse import urlparse

from mlflow.entities.model_registry.model_version_stages import (
    DEFAULT_STAGES_FOR_GET_LATEST_VERSIONS,
    STAGE_ARCHIVED,
    STAGE_DELETED_INTERNAL,
    STAGE_NONE,
    STAGE_PRODUCTION,
    get_canonical_stage,
)
from mlflow.entities.model_registry.model_version_status import ModelVersionStatus
from mlflow.entities.model_registry.prompt_version import IS_PROMPT_TAG_KEY, PROMPT_TEXT_TAG_KEY
from mlflow.exceptions import MlflowException
from mlflow.prompt.constants import PROMPT_TYPE_TAG_KEY
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE
from mlflow.store.artifact.utils.models import _parse_model_uri
from mlflow.utils.time import get_current_time_millis
from mlflow.utils.validation import _validate_model_name, _validate_model_version_tag, _validate_tag_name

from lakehouse import Row

from . import _events
from ._journal import delete, put
from ._registry_base import Planned, RegistryStoreBase, version_int
from ._registry_entities import to_version
from ._registry_tables import ALIASES, MV, MV_TAGS, RM

_REDACTED = {
    "current_stage": STAGE_DELETED_INTERNAL,
    "description": None,
    "user_id": None,
    "source": "REDACTED-SOURCE-PATH",
    "run_id": "REDACTED-RUN-ID",
    "run_link": "REDACTED-RUN-LINK",
    "status_message": None,
}
"""What a deleted version's row keeps instead of its fields (MLflow's SQL store's values)."""

VALIDATION_REQUIRED_TAG = "validation.required"
"""Registered-model tag: "true" (any case) opts the model's Production transitions into the gate."""
VALIDATION_STATUS_TAG = "validation.status"
"""Model-version tag written by the validate job: "passed" or "failed" (the gate lets "passed" through)."""
VALIDATION_PASSED = "passed"


class ModelVersionsMixin(RegistryStoreBase):
    """MLflow's model-version, stage and version-tag operations (search is in `SearchMixin`)."""

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
        with self._lock:
            self._sync()

            def plan() -> Planned:
                self._model_row(name)
                now = get_current_time_millis()
                version = max((r["version"] for r in self._t.versions.rows(name)), default=0) + 1
                row = {
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
                if self._is_prompt(name):
                    public = dict(tag_values)
                    template = public.pop(PROMPT_TEXT_TAG_KEY, None)
                    public.pop(IS_PROMPT_TAG_KEY, None)
                    public.pop(PROMPT_TYPE_TAG_KEY, None)
                    event = "prompt_version.created"
                    payload = {"template": template, "tags": public, "description": description or None}
                else:
                    event = "model_version.created"
                    payload = {
                        "source": source,
                        "run_id": run_id or None,
                        "tags": tag_values,
                        "description": description or None,
                    }
                payload = {"name": name, "version": str(version), **payload}
                created = _events.new_event(event, payload, name=name, version=version)
                trows = [{"name": name, "version": version, "key": k, "value": v} for k, v in tag_values.items()]
                journal = [*(put(MV_TAGS, t) for t in trows), put(MV, row), self._touched(name, now)]
                return Planned(None, result=row, events=[created], journal=journal)

            # The version, its tags and the model's last_updated_time: one journal commit, whose version is taken
            # put-if-absent, so concurrent writers get distinct numbers (`_write_journaled`).
            row = self._write_journaled(plan)
            return to_version(self._t, row, aliases=True)

    def _touched(self, name: str, now: int) -> Row:
        """The journal row setting model `name`'s `last_updated_time` (as the SQL store does when one of its
        versions changes); the plan has checked that the model exists."""
        return put(RM, {**self._model_row(name), "last_updated_time": now})

    def _update_version(self, name, version, change) -> Row:
        """Replace a live version's row by `change(row)` with a new `last_updated_time`; return the new row."""

        def plan() -> Planned:
            row = self._version_row(name, version)
            new = {**change(row), "last_updated_time": get_current_time_millis()}
            return Planned(None, result=new, journal=[put(MV, new)])

        return self._write_journaled(plan)

    def update_model_version(self, name, version, description=None):
        with self._lock:
            self._sync()
            row = self._update_version(name, version, lambda r: {**r, "description": description})
            return to_version(self._t, row, aliases=True)

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

            def plan() -> Planned:
                now = get_current_time_millis()
                archived = []
                if archive_existing_versions:
                    archived = [
                        {**r, "current_stage": STAGE_ARCHIVED, "last_updated_time": now}
                        for r in self._t.versions.rows(name)
                        if r["version"] != version_int(version) and r["current_stage"] == target
                    ]
                row = self._version_row(name, version)
                if target == STAGE_PRODUCTION:
                    self._check_validated(name, row["version"])
                new = {**row, "current_stage": target, "last_updated_time": now}
                journal = [*(put(MV, r) for r in [*archived, new]), self._touched(name, now)]
                moves = [(new["version"], row["current_stage"], target, [str(r["version"]) for r in archived])]
                moves += [(r["version"], target, STAGE_ARCHIVED, []) for r in archived]
                events = [
                    _events.new_event(
                        _events.STAGE_TRANSITIONED,
                        {
                            "name": name,
                            "version": str(v),
                            "from_stage": before,
                            "to_stage": after,
                            "archived_versions": archived_versions,
                        },
                        name=name,
                        version=v,
                    )
                    for v, before, after, archived_versions in moves
                ]
                return Planned(None, result=new, events=events, journal=journal)

            # The versions' stages and the model's last_updated_time: one journal commit (`_write_journaled`).
            row = self._write_journaled(plan)
            return to_version(self._t, row, aliases=True)

    def _check_validated(self, name: str, version: int) -> None:
        """Refuse a Production transition of an opted-in model's version whose validation has not passed."""
        required = self._t.model_tags.get(name, VALIDATION_REQUIRED_TAG)
        if required is None or required.row["value"].strip().lower() != "true":
            return
        hit = self._t.version_tags.get((name, version), VALIDATION_STATUS_TAG)
        status = None if hit is None else hit.row["value"]
        if status == VALIDATION_PASSED:
            return
        verdict = "has no validation.status tag (never validated)" if status is None else f"has {status=}"
        raise MlflowException(
            f"Model version {name!r} version {version} cannot move to Production: registered model {name!r} "
            f"requires validation (tag {VALIDATION_REQUIRED_TAG}=true) and the version {verdict}; the gate lets "
            f"only {VALIDATION_STATUS_TAG}={VALIDATION_PASSED!r} through. Validate it against a holdout table: "
            f"`lakehouse-jobs validate <lake> --model {name} --version {version} --holdout-table <table> "
            "--label <column>` (or `jobs.validate(...)`), or delete the registered model's tag "
            f"{VALIDATION_REQUIRED_TAG} to leave the gate. Nothing was changed.",
            INVALID_PARAMETER_VALUE,
        )

    def delete_model_version(self, name, version):
        v = version_int(version)
        with self._lock:
            self._sync()

            def plan() -> Planned:
                row = self._version_row(name, v)
                now = get_current_time_millis()
                drop = [delete(ALIASES, a) for a in self._t.aliases.rows(name) if a["version"] == v]
                gone = {**row, **_REDACTED, "last_updated_time": now}
                return Planned(None, journal=[*drop, put(MV, gone), self._touched(name, now)])

            # The redacted version, its aliases dropped, the model touched: one journal commit (`_write_journaled`).
            self._write_journaled(plan)

    def get_model_version(self, name, version):
        with self._lock:
            self._sync()
            return to_version(self._t, self._version_row(name, version), aliases=True)

    def get_model_version_download_uri(self, name, version):
        with self._lock:
            self._sync()
            row = self._version_row(name, version)
            return row["storage_location"] or row["source"]

    def _await_model_version_creation(self, mv, await_creation_for):
        """Versions are READY when created (as in the SQL store): nothing to wait for."""

    def set_model_version_tag(self, name, version, tag):
        _validate_model_name(name)
        v = version_int(version)
        _validate_model_version_tag(tag.key, tag.value)
        with self._lock:
            self._sync()
            entity = "prompt_version_tag" if self._is_prompt(name) else "model_version_tag"
            payload = {"name": name, "version": str(version), "key": tag.key, "value": tag.value}

            def plan() -> Planned:
                self._version_row(name, v)
                row = {"name": name, "version": v, "key": tag.key, "value": tag.value}
                event = _events.new_event(f"{entity}.set", payload, name=name, version=v)
                return Planned(None, events=[event], journal=[put(MV_TAGS, row)])

            self._write_journaled(plan)

    def delete_model_version_tag(self, name, version, key):
        _validate_model_name(name)
        v = version_int(version)
        _validate_tag_name(key)
        with self._lock:
            self._sync()
            self._version_row(name, v)
            entity = "prompt_version_tag" if self._is_prompt(name) else "model_version_tag"
            payload = {"name": name, "version": str(version), "key": key}

            def plan() -> Planned:
                self._version_row(name, v)
                hit = self._t.version_tags.get((name, v), key)
                if hit is None:
                    return Planned(None)
                event = _events.new_event(f"{entity}.deleted", payload, name=name, version=v)
                return Planned(None, events=[event], journal=[delete(MV_TAGS, hit.row)])

            self._write_journaled(plan)
