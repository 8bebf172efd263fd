"""The online store: publishing a feature table's latest values per key to SQLite or Redis, and looking them up
for serving.

`publish_table` copies, per primary key, the latest row (for a table with a timestamp key: the row with the
greatest timestamp) of a table's latest Delta version to a store. A full publish copies every key and replaces
what the store held for the table. An incremental one (mode "merge", once the store holds a publish of the
same table, keys, features and types) reads only what changed between the version the store holds and the
latest: the rows of the Parquet files the Delta log added and removed in between, less the rows that are in
both (the ones a MERGE or OPTIMIZE copied unchanged into new files). Their primary keys are the changed keys;
each gets its latest row from the new version, and the ones with no row left are deleted online, so the
store ends up as a full publish would leave it. Cost: the changed files are read whole, and the new version's
key, timestamp and published columns once (in the driver, with pyarrow), so an incremental publish saves the
writes to the store, not the read of the table. Where the files alone are not the rows (deletion vectors,
column mapping) or the older version's files were vacuumed, a merge publish is a full one.

Every publish is recorded in `_feature_store.online_publishes` (`MetadataStore.publishes`); the store keeps a
marker naming the publish its rows come from, and an incremental publish starts from the version in it.

`get_online_features` reads, for each FeatureLookup, the stored rows of the keys asked in one batched request
and returns them as typed pandas columns (pyarrow-backed, the Spark types exactly: int stays int32, a decimal
keeps its scale, a timestamp is UTC), with the lookup's `rename_outputs` and `default_values` applied as a
training set applies them; a key without a row gives null (then the default). A lookup's
`timestamp_lookup_key` and `lookback_window` do not apply online: the store holds the latest row per key.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql import functions as F
from pyspark.sql import types as T
from pyspark.sql.pandas.types import to_arrow_schema

from lakehouse import Lakehouse
from lakehouse.errors import DataFilesMissingError

from . import _validation as check
from . import errors
from ._local import feature_source
from ._lookup import FeatureLookup
from ._metadata import MetadataStore, PublishRecord, TableRecord
from ._online_codec import RowCodec, loads_many, supported
from ._online_stores import (
    OnlineBackend,
    OnlineStoreSpec,
    RedisOnlineStore,
    SqliteOnlineStore,
    StoredTable,
    reader,
)

__all__ = [
    "OnlineStoreSpec",
    "PublishResult",
    "RedisOnlineStore",
    "SqliteOnlineStore",
    "get_online_features",
    "publish_table",
]

_MODES = ("merge", "overwrite")


@dataclass(frozen=True)
class PublishResult:
    """What one publish did.

    `from_version`: the version the store held for the table before (None: nothing); `to_version`: the version
    it holds now. `full`: every key was copied (an "overwrite", or a "merge" that could not be incremental);
    else only keys changed in between. `keys_written` / `keys_deleted`: keys written / removed online.
    `publish_id` names the publish in the store's marker and in `MetadataStore.publishes`.
    """

    table: str
    store: str
    from_version: int | None
    to_version: int
    keys_written: int
    keys_deleted: int
    mode: Literal["merge", "overwrite"]
    full: bool
    publish_id: str


# -- publish -------------------------------------------------------------------------------------------------
def publish_table(
    lake: Lakehouse,
    meta: MetadataStore,
    name: str,
    online_store: OnlineStoreSpec,
    *,
    mode: Literal["merge", "overwrite"] = "merge",
    features: str | Sequence[str] | None = None,
) -> PublishResult:
    """Copy the latest row per primary key of feature table `name` (its latest version) to `online_store`.

    "merge" writes only the keys changed since the version the store holds (the first time: every key) and
    deletes online the keys gone from the table; "overwrite" copies every key and replaces what the store held
    for the table. Both leave the store as the table's latest version says, atomically. `features` (default
    every non-key column) are the columns stored; changing them makes the next publish a full one.

    Raises:
        FeatureTableNotFoundError, FeatureNotFoundError (a feature the table lacks, or a key column),
        ColumnTypeError (a feature of a type with no online encoding), ArgumentTypeError / InvalidArgumentError
        (a malformed argument, an unknown store spec or mode), OnlineStoreUnavailableError,
        OnlinePublishConflictError (a concurrent publish won; nothing written, call again). Nothing is written
        when any of these is raised.

    Example:
        >>> publish_table(lake, meta, "customer_features", SqliteOnlineStore(), mode="merge")
        PublishResult(table='customer_features', ..., keys_written=12, keys_deleted=1, mode='merge', full=False)
    """
    name = check.table_name(name, "name")
    _check_spec(online_store)
    if mode not in _MODES:
        raise errors.InvalidArgumentError("mode", mode, f"mode must be one of {list(_MODES)}, got {mode!r}")
    rec = _record(lake, meta, name)
    version = lake.latest_version(name)
    schema = lake.schema(name, version=version)
    chosen = _features(rec, schema, features)
    keys = list(rec.primary_keys)
    ts = rec.timestamp_keys[0] if rec.timestamp_keys else None
    codec = RowCodec([schema[k] for k in keys], [schema[f] for f in chosen])
    marker = StoredTable(
        version=version,
        publish_id=uuid.uuid4().hex,
        keys=tuple(keys),
        features=tuple(chosen),
        schema=T.StructType([*codec.key_fields, *codec.feature_fields]).json(),
        table_created_at=rec.created_at.isoformat() if rec.created_at else None,
    )
    with online_store.connect(lake.root) as backend:
        held = backend.marker(name)
        base = _incremental_base(meta, name, backend.description, held, marker) if mode == "merge" else None
        changed = None if base is None else _changed_keys(lake, name, base, version, schema, keys, ts, chosen)
        if changed is None:
            rows = _latest_rows(lake, name, version, schema, keys, ts, chosen, codec, None)
            deleted = backend.replace(name, marker, list(rows.items()))
            written = len(rows)
        else:
            rows = _latest_rows(lake, name, version, schema, keys, ts, chosen, codec, changed)
            gone = [k for k in changed if k not in rows]
            backend.apply(name, marker, list(rows.items()), gone, expected=base.publish_id if base else "")
            written, deleted = len(rows), len(gone)
        result = PublishResult(
            table=name,
            store=backend.description,
            from_version=held.version if held is not None else None,
            to_version=version,
            keys_written=written,
            keys_deleted=deleted,
            mode=mode,
            full=changed is None,
            publish_id=marker.publish_id,
        )
    meta.record_publish(
        PublishRecord(
            id=result.publish_id,
            table_name=name,
            store=result.store,
            mode=mode,
            full=result.full,
            from_version=result.from_version,
            to_version=version,
            published_at=datetime.now(UTC),
            keys_written=written,
            keys_deleted=deleted,
            features=tuple(chosen),
        )
    )
    return result


def _check_spec(online_store: Any) -> None:
    if not isinstance(online_store, OnlineStoreSpec):
        raise errors.ArgumentTypeError(
            "online_store", online_store, "an online store spec: SqliteOnlineStore(...) or RedisOnlineStore(...)"
        )


def _record(lake: Lakehouse, meta: MetadataStore, name: str) -> TableRecord:
    records = meta.tables()
    if name not in records or not lake.exists(name):
        raise errors.FeatureTableNotFoundError(name, sorted(records))
    return records[name]


def _features(rec: TableRecord, schema: T.StructType, features: Any) -> list[str]:
    keys = [*rec.primary_keys, *rec.timestamp_keys]
    non_keys = [c for c in schema.names if c not in keys]
    if features is None:
        chosen = non_keys
    else:
        chosen = check.names(features, "features", allow_empty=False)
        missing = [f for f in chosen if f not in schema.names]
        if missing:
            raise errors.FeatureNotFoundError(rec.name, missing, schema.names)
        key_features = [f for f in chosen if f in keys]
        if key_features:
            raise errors.FeatureNotFoundError(rec.name, key_features, non_keys, what="non-key feature")
    for c in [*rec.primary_keys, *chosen]:
        if not supported(schema[c].dataType):
            raise errors.ColumnTypeError(
                f"{rec.name}.{c}",
                schema[c].dataType.simpleString(),
                "a type the online store encodes (numbers, bool, string, binary, date, timestamp, decimal, and "
                "arrays, maps and structs of them)",
                "Leave it out with publish_table(..., features=[...]).",
            )
    return chosen


def _incremental_base(
    meta: MetadataStore, name: str, store: str, held: StoredTable | None, new: StoredTable
) -> StoredTable | None:
    """The marker to publish incrementally from, or None when only a full publish is right: nothing held, the
    rows held are of other keys, features or types, of another table of that name (re-created), of a publish
    this lake has no record of, or of a version newer than the latest (a restored or re-created table)."""
    if held is None:
        return None
    same = (
        held.keys == new.keys
        and held.features == new.features
        and held.schema == new.schema
        and held.table_created_at == new.table_created_at
        and held.version <= new.version
    )
    if not same:
        return None
    if not any(p.id == held.publish_id for p in meta.publishes(name, store)):
        return None
    return held


def _changed_keys(
    lake: Lakehouse,
    name: str,
    base: StoredTable,
    version: int,
    schema: T.StructType,
    keys: list[str],
    ts: str | None,
    features: list[str],
) -> dict[str, tuple[Any, ...]] | None:
    """{encoded key: key values} of the primary keys whose rows differ between `base.version` and `version`,
    from the files the log added and removed in between; None when that cannot be read exactly."""
    old = feature_source(lake, name, base.version)
    new = feature_source(lake, name, version)
    if old is None or new is None:
        return None
    old = dataclasses.replace(old, schema=schema)  # read both sides in the new version's types
    new_files, old_files = set(new.files), set(old.files)
    removed = [i for i, f in enumerate(old.files) if f not in new_files]
    added = [i for i, f in enumerate(new.files) if f not in old_files]
    columns = [*keys, *([ts] if ts else []), *features]
    codec = RowCodec([schema[k] for k in keys], [schema[c] for c in columns[len(keys) :]])
    try:
        before = old.read(columns, only=removed) if removed else None
        after = new.read(columns, only=added) if added else None
    except DataFilesMissingError:
        return None  # the older version's files were vacuumed: no diff, copy everything
    # A row in both (copied unchanged into a rewritten file) is no change. Rows are unique: keys (+ timestamp)
    # are unique in a feature table, so sets of rows are enough.
    sides = [t for t in (before, after) if t is not None and t.num_rows]
    if not sides:
        return {}
    try:
        changed = _rows_in_one_side(pa.concat_tables(sides), columns)
    except (pa.ArrowNotImplementedError, pa.ArrowTypeError):  # a type Arrow cannot group by: compare in Python
        encoded_before, encoded_after = _encoded(before, keys, codec), _encoded(after, keys, codec)
        values = {**encoded_before, **encoded_after}
        return {key: values[(key, row)] for key, row in encoded_before.keys() ^ encoded_after.keys()}
    key_values = list(zip(*[changed.column(k).to_pylist() for k in keys], strict=True))
    return {codec.encode_key(k): k for k in key_values}


def _rows_in_one_side(rows: pa.Table, columns: list[str]) -> pa.Table:
    """The rows of `rows` (the removed files' rows then the added files', each side's rows unique) that occur
    once: the ones not copied unchanged from a removed file into an added one. Arrow's hash group-by, so no
    row is encoded in Python (10M rows: seconds, where encoding them took minutes)."""
    counted = rows.group_by(columns, use_threads=True).aggregate([([], "count_all")])
    return counted.filter(pc.equal(counted.column("count_all"), 1))


def _encoded(table: pa.Table | None, keys: list[str], codec: RowCodec) -> dict[tuple[str, str], tuple[Any, ...]]:
    """{(encoded key, encoded rest of the row): key values} of every row of `table`."""
    if table is None:
        return {}
    cols = [table.column(c).to_pylist() for c in table.column_names]
    n = len(keys)
    out: dict[tuple[str, str], tuple[Any, ...]] = {}
    for row in zip(*cols, strict=True):
        out[(codec.encode_key(row[:n]), codec.encode_row(row[n:]))] = row[:n]
    return out


def _latest_rows(
    lake: Lakehouse,
    name: str,
    version: int,
    schema: T.StructType,
    keys: list[str],
    ts: str | None,
    features: list[str],
    codec: RowCodec,
    only: Mapping[str, tuple[Any, ...]] | None,
) -> dict[str, str]:
    """{encoded key: encoded features} of the latest row per primary key at `version` (of the keys in `only`,
    when given)."""
    columns = [*keys, *([ts] if ts else []), *features]
    table = _read(lake, name, version, schema, columns)
    if only is not None:
        if not only:
            return {}
        mask = None
        for i, k in enumerate(keys):  # a cheap superset of the wanted rows; the exact test is below
            wanted = pa.array([v[i] for v in only.values()], type=table.schema.field(k).type)
            part = pc.is_in(table.column(k), value_set=wanted)
            mask = part if mask is None else pc.and_(mask, part)
        table = table.filter(mask)
    cols = [table.column(c).to_pylist() for c in columns]
    n = len(keys)
    best: dict[str, tuple[Any, ...]] = {}
    for row in zip(*cols, strict=True):
        key = codec.encode_key(row[:n])
        if only is not None and key not in only:
            continue
        if ts is None or key not in best or row[n] > best[key][n]:
            best[key] = row
    start = n + (1 if ts else 0)
    return {key: codec.encode_row(row[start:]) for key, row in best.items()}


def _read(lake: Lakehouse, name: str, version: int, schema: T.StructType, columns: list[str]) -> pa.Table:
    """These columns of `name` at `version` as Arrow, in Spark's types (UTC timestamps): the Parquet files read
    in the driver where they alone are the rows, else through Spark."""
    source = feature_source(lake, name, version)
    if source is not None:
        return source.read(columns)
    target = to_arrow_schema(T.StructType([schema[c] for c in columns]), timestamp_utc=True, prefers_large_types=False)
    df = lake.read(name, version=version).select([F.col(f"`{c}`") for c in columns])
    return df.toArrow().cast(target)


# -- lookup --------------------------------------------------------------------------------------------------
def get_online_features(
    lake: Lakehouse,
    meta: MetadataStore,
    online_store: OnlineStoreSpec,
    lookups: Sequence[FeatureLookup],
    keys: pd.DataFrame | Sequence[Mapping[str, Any]],
) -> pd.DataFrame:
    """The rows of `keys` with each lookup's features from `online_store` appended (renamed, defaulted).

    `keys` is a pandas DataFrame or a list of dicts holding every lookup's `lookup_key` columns (other columns
    are kept). Each lookup is one batched read of all its keys. Output columns are pyarrow-backed pandas
    columns of the features' Spark types; a key the store does not hold (or a null key) gives null, then the
    lookup's default value.

    Raises:
        ArgumentTypeError (lookups not FeatureLookups, keys not a DataFrame / list of dicts, an unknown store
        spec), FeatureTableNotFoundError, LookupKeyError (lookup_key not one column per primary key),
        ColumnNotFoundError (a lookup key column absent from `keys`), ColumnTypeError (a key column that cannot
        be the table's key type, a default of the wrong type), InvalidArgumentError (renames or defaults of
        features the lookup does not bring), OutputNameConflictError, OnlineTableNotPublishedError,
        FeatureNotPublishedError, OnlineStoreUnavailableError.

    Example:
        >>> get_online_features(lake, meta, SqliteOnlineStore(), [FeatureLookup("customer_features",
        ...     "customer_id", rename_outputs={"f1": "spend"}, default_values={"f2": 0.0})],
        ...     [{"customer_id": 1}, {"customer_id": 7}])
    """
    if isinstance(lookups, FeatureLookup) or not isinstance(lookups, Sequence) or isinstance(lookups, str):
        raise errors.ArgumentTypeError("lookups", lookups, "a list of FeatureLookup")
    if not lookups or not all(isinstance(lk, FeatureLookup) for lk in lookups):
        raise errors.ArgumentTypeError("lookups", lookups, "a non-empty list of FeatureLookup")
    frame = KeyColumns.of(keys)
    _check_spec(online_store)
    records = meta.tables()
    given = frame.columns
    for lk in lookups:
        name = check.table_name(lk.table_name, "table_name")
        if name not in records:  # the catalog's record; no Delta call on the lookup path
            raise errors.FeatureTableNotFoundError(name, sorted(records))
        pks = records[name].primary_keys
        if len(lk.lookup_key) != len(pks):
            raise errors.LookupKeyError(
                name, lk.lookup_key, pks, f"{len(lk.lookup_key)} lookup column(s) for {len(pks)} primary key(s)"
            )
        missing = [c for c in lk.lookup_key if c not in given]
        if missing:
            raise errors.ColumnNotFoundError("lookup_key", missing, list(frame.columns), "keys")
    backend = reader(online_store, lake.root)
    return read_online(lambda _: backend, lookups, frame)


def read_online(
    backend_of: Callable[[FeatureLookup], OnlineBackend],
    lookups: Sequence[FeatureLookup],
    frame: pd.DataFrame | KeyColumns,
) -> pd.DataFrame:
    """`frame` with each lookup's features read from `backend_of(lookup)`, renamed and defaulted: the part of
    `get_online_features` after its checks, which needs no Spark (a served model calls it)."""
    keys = frame if isinstance(frame, KeyColumns) else KeyColumns.of_frame(frame)
    fetched = [(_fetch(backend_of(lk), lk, keys), backend_of(lk).description) for lk in lookups]
    outputs: dict[str, str] = {c: "the keys" for c in keys.columns}
    columns: dict[str, pa.Array] = {}
    for lk, ((marker, codec, rows), store) in zip(lookups, fetched, strict=True):
        features = _lookup_features(lk, marker, store, codec)
        for f in features:
            out = lk.output_name(f)
            if out in outputs:
                raise errors.OutputNameConflictError(out, [outputs[out], f"{lk.table_name}.{f}"])
            outputs[out] = f"{lk.table_name}.{f}"
            column = codec.decode_column(rows, f)
            default = lk.default_values.get(f)
            if default is not None:
                column = pc.fill_null(column, pa.scalar(default).cast(column.type))
            columns[out] = column
    # one DataFrame built from the columns (assigning them one by one to a copy costs several times more)
    data: dict[str, Any] = dict(keys.columns)
    for out, column in columns.items():
        data[out] = pd.arrays.ArrowExtensionArray(column)
    return pd.DataFrame(data, index=keys.index, copy=False)


@dataclass(frozen=True)
class KeyColumns:
    """The request's columns by name (lists or pandas Series) and the index the result takes (None: 0..n-1).

    A list of dicts becomes lists, not a DataFrame: building a DataFrame for one key costs as much as the
    store read, and the result is built once from these columns anyway."""

    columns: dict[str, Any]
    index: pd.Index | None = None

    @staticmethod
    def of_frame(frame: pd.DataFrame) -> KeyColumns:
        # the caller's Series, not copies: the result is a new DataFrame, the caller's frame is never changed
        return KeyColumns({str(c): frame.iloc[:, i] for i, c in enumerate(frame.columns)}, frame.index)

    @staticmethod
    def of(keys: Any) -> KeyColumns:
        if isinstance(keys, pd.DataFrame):
            return KeyColumns.of_frame(keys)
        if (
            isinstance(keys, Sequence)
            and not isinstance(keys, (str, bytes))
            and all(isinstance(k, Mapping) for k in keys)
        ):
            names: dict[str, None] = {}  # every key of every dict, in first-seen order (as pandas does)
            for row in keys:
                names.update(dict.fromkeys(row))
            return KeyColumns({str(c): [row.get(c) for row in keys] for c in names})
        raise errors.ArgumentTypeError("keys", keys, "a pandas DataFrame or a list of dicts of lookup key values")


def _fetch(
    backend: OnlineBackend, lk: FeatureLookup, keys: KeyColumns
) -> tuple[StoredTable, RowCodec, list[list[Any] | None]]:
    """The marker, its codec and the decoded stored row (or None) of each row of `keys`, in one batched read.

    The keys are encoded in the key types of the marker read first; if a publish changed those types before
    the batched read (which returns the marker with the rows, atomically), it is done again."""
    marker = backend.last_marker(lk.table_name)
    for _ in range(3):
        if marker is None:
            raise errors.OnlineTableNotPublishedError(lk.table_name, backend.description)
        codec = marker_codec(marker)
        encoded = _encode_keys(lk, keys, codec)
        present = [k for k in encoded if k is not None]
        current, values = backend.get(lk.table_name, present)
        backend.saw(lk.table_name, current)
        if current == marker:
            stored = [v for v in values if v is not None]
            held = [k for k, v in zip(present, values, strict=True) if v is not None]
            found = dict(zip(held, loads_many(stored), strict=True))
            rows = [found.get(k) if k is not None else None for k in encoded]
            return marker, codec, rows
        marker = current
    raise errors.OnlinePublishConflictError(lk.table_name, backend.description)


@functools.lru_cache(maxsize=256)
def marker_codec(marker: StoredTable) -> RowCodec:
    schema = T.StructType.fromJson(json.loads(marker.schema))
    n = len(marker.keys)
    return RowCodec(schema.fields[:n], schema.fields[n:])


def _encode_keys(lk: FeatureLookup, keys: KeyColumns, codec: RowCodec) -> list[str | None]:
    """Each row's key as the store encodes it, None where a key value is null."""
    columns = []
    for col, field, target in zip(lk.lookup_key, codec.key_fields, codec.key_arrow_types, strict=True):
        try:
            given = pa.array(keys.columns[col], from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise _key_type_error(lk, col, field, str(exc)) from None
        if not _castable(given.type, target):
            raise _key_type_error(lk, col, field, str(given.type))
        try:
            columns.append(given.cast(target).to_pylist())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise _key_type_error(lk, col, field, f"{given.type} ({exc})") from None
    return codec.encode_keys(columns)


def _castable(given: pa.DataType, target: pa.DataType) -> bool:
    """Whether a key column of Arrow type `given` may be matched with keys of `target` (same kind of value)."""
    if pa.types.is_null(given) or given == target:
        return True
    kinds = (
        pa.types.is_integer,
        pa.types.is_floating,
        pa.types.is_decimal,
        lambda t: pa.types.is_string(t) or pa.types.is_large_string(t),
        lambda t: pa.types.is_binary(t) or pa.types.is_large_binary(t),
        pa.types.is_boolean,
        pa.types.is_date,
        pa.types.is_timestamp,
    )
    return any(kind(given) and kind(target) for kind in kinds)


def _key_type_error(lk: FeatureLookup, col: str, field: T.StructField, received: str) -> errors.ColumnTypeError:
    return errors.ColumnTypeError(
        col,
        received,
        f"{field.dataType.simpleString()} (the type of {lk.table_name}.{field.name})",
        f"Pass {col!r} values of that type.",
    )


def _lookup_features(lk: FeatureLookup, marker: StoredTable, store: str, codec: RowCodec) -> list[str]:
    """The lookup's features, checked against what the store holds, with its renames and defaults checked."""
    features = list(lk.feature_names) if lk.feature_names is not None else list(marker.features)
    missing = [f for f in features if f not in marker.features]
    if missing:
        raise errors.FeatureNotPublishedError(lk.table_name, store, missing, marker.features)
    for argument, given in (("default_values", lk.default_values), ("rename_outputs", lk.rename_outputs)):
        unknown = [k for k in given if k not in features]
        if unknown:
            raise errors.InvalidArgumentError(
                argument, given, f"{argument} for {unknown}, which this lookup does not bring: {features}"
            )
    types = {f.name: f.dataType for f in codec.feature_fields}
    for f, v in lk.default_values.items():
        check.check_default(lk.table_name, f, types[f], v)
    return features
