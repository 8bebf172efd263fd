"""Online features for a served model: what lets `mlflow models serve` answer a request that carries only keys.

A model logged with `log_model`, called with some of its feature columns missing (`mlflow models serve`, or
`mlflow.pyfunc.load_model(uri).predict`), reads them from the online store by the lookup keys in the request,
with the renames and defaults of training; a feature given as a column is used as given. No Spark is started:
the store is read directly and the lake's metadata through its Delta log.

How the served model finds its store (resolved at the first request that needs it, then kept):
  - the lake: `$LAKEHOUSE_SERVING_ROOT` when set, else the root the model was trained in (`lakehouse_root` of
    its feature spec). Not `$LAKEHOUSE_ROOT`: that names a process's default lake, which need not be the one
    the model was trained in;
  - per feature table, the store it was last published to, as the lake's publish records say
    (`_feature_store.online_publishes`); `$LAKEHOUSE_ONLINE_STORE=sqlite|redis` picks one kind for every table
    instead (the default location of that kind, then the variables below);
  - the store's own variables win over what was recorded: `$LAKEHOUSE_ONLINE_SQLITE_PATH`,
    `$LAKEHOUSE_REDIS_HOST` / `_PORT` / `_DB`; a Redis password only ever comes from `$LAKEHOUSE_REDIS_PASSWORD`.
Connections are kept open between requests (one per serving thread and store).
"""

from __future__ import annotations

import os

import pandas as pd

from . import errors
from ._feature_spec import FeatureSpec, lookups_to_run
from ._functions import compute_pandas
from ._lookup import FeatureLookup
from ._metadata import MetadataStore
from ._online import read_online
from ._online_stores import OnlineBackend, OnlineStoreSpec, RedisOnlineStore, SqliteOnlineStore, reader, spec_of

STORE_ENV = "LAKEHOUSE_ONLINE_STORE"
ROOT_ENV = "LAKEHOUSE_SERVING_ROOT"
_KINDS: dict[str, type[OnlineStoreSpec]] = {"sqlite": SqliteOnlineStore, "redis": RedisOnlineStore}


class OnlineFeatures:
    """Reads the online features a model's request lacks; one per loaded model. The store of each table is
    resolved once; connections are the lookups' kept ones (`_online_stores.reader`: per thread and store)."""

    def __init__(self, spec: FeatureSpec, model: str) -> None:
        self._spec = spec
        self._model = model
        self._root = os.environ.get(ROOT_ENV) or spec.lakehouse_root
        self._stores: dict[str, OnlineStoreSpec] = {}  # by table

    def complete(self, frame: pd.DataFrame) -> pd.DataFrame:
        """`frame` with every model input it lacks read from the online store (by its lookup keys).

        Raises MissingScoringColumnsError (a lookup key or a non-feature input missing),
        OnlineTableNotPublishedError, FeatureNotPublishedError, OnlineStoreUnavailableError, ColumnTypeError.
        """
        lookups, _, functions = lookups_to_run(
            self._spec, [str(c) for c in frame.columns], self._model, "the request", True
        )
        if lookups:
            frame = read_online(self._backend, lookups, frame)
        return compute_pandas(functions, frame)

    def _backend(self, lookup: FeatureLookup) -> OnlineBackend:
        store = self._stores.get(lookup.table_name)
        if store is None:
            store = self._stores[lookup.table_name] = published_store(self._root, lookup.table_name)
        return reader(store, self._root)


def published_store(root: str, table: str) -> OnlineStoreSpec:
    """The store `table` of the lake at `root` is read from online: the kind `$LAKEHOUSE_ONLINE_STORE` names,
    else the store it was last published to (the lake's publish records).

    Raises InvalidArgumentError (an unknown kind), OnlineTableNotPublishedError (no publish recorded)."""
    kind = os.environ.get(STORE_ENV)
    if kind:
        if kind not in _KINDS:
            raise errors.InvalidArgumentError(STORE_ENV, kind, f"${STORE_ENV} must be one of {sorted(_KINDS)}")
        return _KINDS[kind]()
    published = MetadataStore(root).publishes(table)
    if not published:
        raise errors.OnlineTableNotPublishedError(
            table, f"of the lake {root} (it records no publish of the table; set ${STORE_ENV} to pick one)"
        )
    return spec_of(published[-1].store)
