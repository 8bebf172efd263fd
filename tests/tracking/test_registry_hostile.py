"""Hostile names and keys in the registry: the lakehouse store answers as MLflow's SQL store does.

Each case runs the same calls through `MlflowClient` against sqlite:/// (MLflow's `SqlAlchemyStore`, the
reference) and lakehouse:///, and must get the same values, or the same MlflowException error code and
message, call by call. Both stores validate with `mlflow.utils.validation`, so a tag key such as `a/b` is
accepted and `../x` or `..` refused (they would resolve to another path); renaming a model to its own name
succeeds and touches the model and its versions.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion, RegisteredModel
from mlflow.exceptions import MlflowException

pytestmark = pytest.mark.filterwarnings("ignore")

TAG_KEYS = ["../x", "a/b", "..", ".", "/a", "a/./b", "a//b", "a/", "./a", "...", "..a", "x:y", "a b", "ключ", ""]
MODEL_NAMES = ["..", ".", "...", "../x", "a/b", "a:b", " padded ", "100%_'", "ключ", "a\\b"]
ALIAS_NAMES = ["a/b", "../x", "..", "a-b.c", "v01", "Latest", "ключ"]
VERSIONS = ["01", " 1", "1.5", "abc", "-1", "0", ""]

Outcome = tuple


def outcome(fn: Callable[[], Any]) -> Outcome:
    """("ok", comparable value) or ("error", error code, message) of one call."""
    try:
        return ("ok", _norm(fn()))
    except MlflowException as e:
        return ("error", e.error_code, e.message)


def _norm(x: Any) -> Any:
    if isinstance(x, RegisteredModel):
        latest = sorted((v.current_stage, str(v.version)) for v in x.latest_versions)
        return ("model", x.name, x.description, x.tags, dict(sorted(x.aliases.items())), latest)
    if isinstance(x, ModelVersion):
        return ("version", x.name, str(x.version), x.current_stage, x.tags, sorted(x.aliases), x.source)
    if isinstance(x, list):  # PagedList included
        return [_norm(i) for i in x]
    return x


def _model(c: MlflowClient, name: str) -> None:
    """A model `name` with one version tagged `t=1`, the alias `champion` on it, and a model tag `k=v`."""
    c.create_registered_model(name, tags={"k": "v"})
    c.create_model_version(name, "s3://bucket/model", tags={"t": "1"})
    c.set_registered_model_alias(name, "champion", 1)


def model_tag_case(key: str) -> Callable[[MlflowClient, str], list[Outcome]]:
    def case(c: MlflowClient, name: str) -> list[Outcome]:
        _model(c, name)
        return [
            outcome(lambda: c.set_registered_model_tag(name, key, "v")),
            outcome(lambda: c.get_registered_model(name).tags),
            outcome(lambda: c.delete_registered_model_tag(name, key)),
            outcome(lambda: c.get_registered_model(name).tags),
            outcome(lambda: c.create_registered_model(f"{name}-created", tags={key: "v"})),
            outcome(lambda: c.search_registered_models(f"name = '{name}-created'")),
        ]

    return case


def version_tag_case(key: str) -> Callable[[MlflowClient, str], list[Outcome]]:
    def case(c: MlflowClient, name: str) -> list[Outcome]:
        _model(c, name)
        return [
            outcome(lambda: c.set_model_version_tag(name, "1", key, "v")),
            outcome(lambda: c.get_model_version(name, "1").tags),
            outcome(lambda: c.delete_model_version_tag(name, "1", key)),
            outcome(lambda: c.get_model_version(name, "1").tags),
            outcome(lambda: c.create_model_version(name, "s3://bucket/other", tags={key: "v"})),
            outcome(lambda: [v.version for v in c.search_model_versions(f"name = '{name}'")]),
        ]

    return case


def model_name_case(hostile: str) -> Callable[[MlflowClient, str], list[Outcome]]:
    def case(c: MlflowClient, name: str) -> list[Outcome]:
        _model(c, name)
        return [
            outcome(lambda: c.create_registered_model(hostile)),
            outcome(lambda: c.get_registered_model(hostile)),
            outcome(lambda: c.create_model_version(hostile, "s3://bucket/h")),
            outcome(lambda: c.set_registered_model_tag(hostile, "k", "v")),
            outcome(lambda: c.delete_registered_model(hostile)),
            outcome(lambda: c.rename_registered_model(name, hostile)),
            outcome(lambda: c.get_registered_model(hostile)),
            outcome(lambda: c.get_model_version(hostile, "1")),
            outcome(lambda: c.rename_registered_model(hostile, name)),
            outcome(lambda: c.get_registered_model(name)),
        ]

    return case


def alias_case(alias: str) -> Callable[[MlflowClient, str], list[Outcome]]:
    def case(c: MlflowClient, name: str) -> list[Outcome]:
        _model(c, name)
        return [
            outcome(lambda: c.set_registered_model_alias(name, alias, 1)),
            outcome(lambda: c.get_model_version_by_alias(name, alias)),
            outcome(lambda: c.get_registered_model(name)),
            outcome(lambda: c.delete_registered_model_alias(name, alias)),
            outcome(lambda: c.get_registered_model(name)),
        ]

    return case


def version_case(version: str) -> Callable[[MlflowClient, str], list[Outcome]]:
    def case(c: MlflowClient, name: str) -> list[Outcome]:
        _model(c, name)
        return [
            outcome(lambda: c.get_model_version(name, version)),
            outcome(lambda: c.set_model_version_tag(name, version, "k", "v")),
            outcome(lambda: c.delete_model_version_tag(name, version, "k")),
            outcome(lambda: c.set_registered_model_alias(name, "other", version)),
            outcome(lambda: c.get_model_version_download_uri(name, version)),
        ]

    return case


def rename_to_own_name(c: MlflowClient, name: str) -> list[Outcome]:
    _model(c, name)
    before = c.get_registered_model(name).last_updated_timestamp
    time.sleep(0.005)
    renamed = outcome(lambda: c.rename_registered_model(name, name))
    after, version = c.get_registered_model(name), c.get_model_version(name, "1")
    return [
        renamed,
        outcome(lambda: after),
        outcome(lambda: version),
        outcome(lambda: c.get_model_version_by_alias(name, "champion")),
        # The SQL store sets the model's and its versions' last_updated_time on every rename.
        ("model touched", after.last_updated_timestamp > before),
        ("version touched", version.last_updated_timestamp > before),
    ]


def rename_missing_to_own_name(c: MlflowClient, name: str) -> list[Outcome]:
    return [outcome(lambda: c.rename_registered_model(name, name))]


def rename_invalid_to_own_name(c: MlflowClient, name: str) -> list[Outcome]:
    return [outcome(lambda bad=bad: c.rename_registered_model(bad, bad)) for bad in ("a/b", "..", "")]


CASES: dict[str, Callable[[MlflowClient, str], list[Outcome]]] = {
    "rename to own name": rename_to_own_name,
    "rename missing model to own name": rename_missing_to_own_name,
    "rename invalid name to itself": rename_invalid_to_own_name,
    **{f"model tag key {k!r}": model_tag_case(k) for k in TAG_KEYS},
    **{f"version tag key {k!r}": version_tag_case(k) for k in TAG_KEYS},
    **{f"model name {n!r}": model_name_case(n) for n in MODEL_NAMES},
    **{f"alias {a!r}": alias_case(a) for a in ALIAS_NAMES},
    **{f"version {v!r}": version_case(v) for v in VERSIONS},
}


@pytest.fixture(scope="module")
def clients(tmp_path_factory) -> dict[str, MlflowClient]:
    """One registry per backend for the module (sqlite first: it is the reference); each case uses its own model."""
    root = tmp_path_factory.mktemp("hostile")
    uris = {"sqlite": f"sqlite:///{root}/mlflow.db", "lakehouse": f"lakehouse://{root}/lake"}
    return {backend: MlflowClient(tracking_uri=uri, registry_uri=uri) for backend, uri in uris.items()}


@pytest.mark.parametrize("label", list(CASES))
def test_hostile_input_answers_as_mlflow_sql_store(clients, label):
    name = f"case-{list(CASES).index(label)}"
    reference = CASES[label](clients["sqlite"], name)
    got = CASES[label](clients["lakehouse"], name)
    assert got == reference
