"""Where the feature store keeps what Delta does not: keys, tags, saved training sets and online publishes.

Six small Delta tables under `<root>/_feature_store/` (hidden from `Lakehouse.list_tables`, which skips
`_` folders; Spark reads them by name, e.g. `_feature_store.tags`). They take lakehouse's lean commits
(`lakehouse.LeanTable`: one Parquet file and one put-if-absent commit, about a millisecond, no Spark job) and
are read from its in-process snapshot, which applies only the commits made since (one `open()` probe when
nothing changed). Each change is one commit, re-planned on the newest snapshot after a lost race, so
concurrent clients never lose one another's changes. The table's own description stays in its Delta metadata.
Like the tracking store, this needs the lake on a local file system.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from lakehouse import Change, Lakehouse, LeanTable, table_path

TABLES = "_feature_store.tables"
TAGS = "_feature_store.tags"
TRAINING_SETS = "_feature_store.training_sets"
ONLINE_PUBLISHES = "_feature_store.online_publishes"
MODEL_USES = "_feature_store.model_uses"
FUNCTIONS = "_feature_store.functions"
_UTC = pa.timestamp("us", tz="UTC")
_SCHEMAS = {
    TABLES: pa.schema(
        [("name", pa.string()), ("primary_keys", pa.string()), ("timestamp_keys", pa.string()), ("created_at", _UTC)]
    ),
    TAGS: pa.schema([("table_name", pa.string()), ("key", pa.string()), ("value", pa.string())]),
    TRAINING_SETS: pa.schema(
        [("id", pa.string()), ("created_at", _UTC), ("tables", pa.string()), ("spec", pa.string())]
    ),
    ONLINE_PUBLISHES: pa.schema(
        [
            ("id", pa.string()),
            ("table_name", pa.string()),
            ("store", pa.string()),
            ("mode", pa.string()),
            ("full", pa.bool_()),
            ("from_version", pa.int64()),
            ("to_version", pa.int64()),
            ("published_at", _UTC),
            ("keys_written", pa.int64()),
            ("keys_deleted", pa.int64()),
            ("features", pa.string()),
        ]
    ),
    MODEL_USES: pa.schema(
        [
            ("id", pa.string()),
            ("table_name", pa.string()),
            ("features", pa.string()),
            ("training_set_id", pa.string()),
            ("run_id", pa.string()),
            ("model_uri", pa.string()),
            ("logged_at", _UTC),
        ]
    ),
    FUNCTIONS: pa.schema(
        [
            ("name", pa.string()),
            ("source", pa.string()),
            ("entry", pa.string()),
            ("return_type", pa.string()),
            ("description", pa.string()),
            ("created_at", _UTC),
        ]
    ),
}
_KEYS = {
    TABLES: ("name",),
    TAGS: ("table_name", "key"),
    TRAINING_SETS: ("id",),
    ONLINE_PUBLISHES: ("id",),
    MODEL_USES: ("id",),
    FUNCTIONS: ("name",),
}
CLIENT_VERSION = "lakehouse-ml-feature-store"
"""The `clientVersion` of the metadata tables' commits (what `DESCRIBE HISTORY` shows for them)."""

Row = dict[str, Any]


@dataclass(frozen=True)
class PublishRecord:
    """One publish of a feature table to an online store (`store` is the store's description).

    `full`: the whole table was copied (else only the keys changed since `from_version`); `from_version` is
    the version the store held before (None: nothing of this table).
    """

    id: str
    table_name: str
    store: str
    mode: str
    full: bool
    from_version: int | None
    to_version: int
    published_at: datetime | None
    keys_written: int
    keys_deleted: int
    features: tuple[str, ...]


@dataclass(frozen=True)
class ModelUse:
    """One model logged with `log_model` that reads `table_name`: the features it takes from it (output names
    as the model sees them), the training set, and the run and model URI (`runs:/<run id>/<path>`) it was
    logged as. Registered versions of it are found through MLflow (by `run_id`), so a registration made later,
    or a version deleted, shows as it is now."""

    id: str
    table_name: str
    features: tuple[str, ...]
    training_set_id: str
    run_id: str
    model_uri: str
    logged_at: datetime | None


@dataclass(frozen=True)
class FunctionRecord:
    """A registered feature function: its Python source, the name of the function in it, its return type
    (a Spark DDL type name) and description."""

    name: str
    source: str
    entry: str
    return_type: str
    description: str | None
    created_at: datetime | None


@dataclass(frozen=True)
class TableRecord:
    name: str
    primary_keys: tuple[str, ...]
    timestamp_keys: tuple[str, ...]
    created_at: datetime | None


class MetadataStore:
    """The three metadata tables of one lake, each a `LeanTable` snapshot kept for the client's lifetime."""

    def __init__(self, lake: Lakehouse | str) -> None:
        """`lake`: the lakehouse, or only its root (a process that reads metadata without Spark, such as a
        served model)."""
        self.root = lake.root if isinstance(lake, Lakehouse) else lake
        self._tables: dict[str, LeanTable] = {}

    # -- generic --------------------------------------------------------------------------------------------
    def _table(self, name: str) -> LeanTable:
        table = self._tables.get(name)
        if table is None:
            table = LeanTable(
                path=table_path(self.root, name),
                name=name,
                schema=_SCHEMAS[name],
                description="feature store metadata",
                client_version=CLIENT_VERSION,
            )
            self._tables[name] = table
        return table

    def _rows(self, name: str) -> list[Row]:
        table = self._table(name)
        if not table.exists():
            return []
        table.refresh()
        return [row for f in table.files.values() for row in f.rows or ()]

    def _change(self, name: str, drop: Iterable[tuple], add: list[Row]) -> None:
        """One commit that removes the rows whose key is in `drop` and adds `add`; nothing when no-op."""
        table = self._table(name)
        table.create_if_missing()
        keys = _KEYS[name]
        dropped = set(drop)

        def plan() -> Change | None:
            files = [rel for rel, f in table.files.items() if any(_key(r, keys) in dropped for r in f.rows or ())]
            if not files and not add:
                return None
            kept = [r for rel in files for r in table.files[rel].rows or () if _key(r, keys) not in dropped]
            return Change([kept + add], files)

        table.write(plan, operation="MERGE")

    def _upsert(self, name: str, rows: list[Row]) -> None:
        self._change(name, [_key(r, _KEYS[name]) for r in rows], rows)

    def _delete(self, name: str, keys: list[tuple]) -> None:
        if keys and self._table(name).exists():
            self._change(name, keys, [])

    # -- tables ---------------------------------------------------------------------------------------------
    def tables(self) -> dict[str, TableRecord]:
        return {
            r["name"]: TableRecord(
                r["name"],
                tuple(json.loads(r["primary_keys"])),
                tuple(json.loads(r["timestamp_keys"])),
                _utc(r["created_at"]),
            )
            for r in self._rows(TABLES)
        }

    def add_table(self, name: str, primary_keys: list[str], timestamp_keys: list[str]) -> None:
        now = datetime.now(UTC)
        self._upsert(
            TABLES,
            [
                {
                    "name": name,
                    "primary_keys": json.dumps(primary_keys),
                    "timestamp_keys": json.dumps(timestamp_keys),
                    "created_at": now,
                }
            ],
        )

    def remove_table(self, name: str) -> None:
        self._delete(TAGS, [(name, k) for k in self.tags(name)])
        self._delete(ONLINE_PUBLISHES, [(p.id,) for p in self.publishes(name)])
        self._delete(TABLES, [(name,)])

    # -- tags -----------------------------------------------------------------------------------------------
    def tags(self, table: str) -> dict[str, str]:
        return {r["key"]: r["value"] for r in self._rows(TAGS) if r["table_name"] == table}

    def all_tags(self) -> dict[str, dict[str, str]]:
        out: dict[str, dict[str, str]] = {}
        for r in self._rows(TAGS):
            out.setdefault(r["table_name"], {})[r["key"]] = r["value"]
        return out

    def set_tags(self, table: str, tags: dict[str, str]) -> None:
        if tags:
            self._upsert(TAGS, [{"table_name": table, "key": k, "value": v} for k, v in tags.items()])

    def delete_tag(self, table: str, key: str) -> None:
        self._delete(TAGS, [(table, key)])

    # -- training sets --------------------------------------------------------------------------------------
    def new_labels_table(self) -> str:
        return f"_feature_store.labels_{uuid.uuid4().hex}"

    def save_training_set(self, training_set_id: str, tables: list[str], spec: dict) -> None:
        now = datetime.now(UTC)
        self._upsert(
            TRAINING_SETS,
            [
                {
                    "id": training_set_id,
                    "created_at": now,
                    "tables": json.dumps(sorted(set(tables))),
                    "spec": json.dumps(spec),
                }
            ],
        )

    def training_sets(self) -> dict[str, tuple[datetime | None, list[str], dict]]:
        return {
            r["id"]: (_utc(r["created_at"]), json.loads(r["tables"]), json.loads(r["spec"]))
            for r in self._rows(TRAINING_SETS)
        }

    def used_by(self, table: str) -> tuple[str, ...]:
        return tuple(sorted(i for i, (_, tables, _) in self.training_sets().items() if table in tables))

    # -- online publishes -----------------------------------------------------------------------------------
    def record_publish(self, record: PublishRecord) -> None:
        row = {**record.__dict__, "features": json.dumps(list(record.features))}
        self._upsert(ONLINE_PUBLISHES, [row])

    def publishes(self, table: str, store: str | None = None) -> list[PublishRecord]:
        """The publishes of `table` (to `store` only, when given), oldest first."""
        out = [
            PublishRecord(
                **{
                    **r,
                    "features": tuple(json.loads(r["features"])),
                    "published_at": _utc(r["published_at"]),
                }
            )
            for r in self._rows(ONLINE_PUBLISHES)
            if r["table_name"] == table and (store is None or r["store"] == store)
        ]
        return sorted(out, key=lambda p: (p.published_at or datetime.min.replace(tzinfo=UTC), p.to_version))

    def last_publish(self, table: str, store: str) -> PublishRecord | None:
        found = self.publishes(table, store)
        return found[-1] if found else None

    # -- model lineage --------------------------------------------------------------------------------------
    def record_model_uses(self, uses: list[ModelUse]) -> None:
        self._upsert(MODEL_USES, [{**u.__dict__, "features": json.dumps(list(u.features))} for u in uses])

    def model_uses(self, table: str | None = None) -> list[ModelUse]:
        """The models logged on `table` (every table's, when None), oldest first."""
        out = [
            ModelUse(**{**r, "features": tuple(json.loads(r["features"])), "logged_at": _utc(r["logged_at"])})
            for r in self._rows(MODEL_USES)
            if table is None or r["table_name"] == table
        ]
        return sorted(out, key=lambda u: (u.logged_at or datetime.min.replace(tzinfo=UTC), u.id))

    # -- feature functions ----------------------------------------------------------------------------------
    def save_function(self, record: FunctionRecord) -> None:
        self._upsert(FUNCTIONS, [dict(record.__dict__)])

    def functions(self) -> dict[str, FunctionRecord]:
        return {r["name"]: FunctionRecord(**{**r, "created_at": _utc(r["created_at"])}) for r in self._rows(FUNCTIONS)}

    def delete_function(self, name: str) -> None:
        self._delete(FUNCTIONS, [(name,)])


def _key(row: Row, keys: tuple[str, ...]) -> tuple:
    return tuple(row[k] for k in keys)


def _utc(value: datetime | None) -> datetime | None:
    """An aware UTC instant; a naive value (a table written by another engine, read by pyarrow) is UTC."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
