"""Where the feature store keeps what Delta does not: keys, tags and saved training sets.

Three small Delta tables under `<root>/_feature_store/` (hidden from `Lakehouse.list_tables`, which skips
`_` folders), written through the Lakehouse like any table, so they are versioned and safe under concurrent
writers. The table's own description stays in the Delta metadata. Reads are cached per table version.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone

from lakehouse import Lakehouse
from lakehouse import errors as lh_errors
from pyspark.sql import Row
from pyspark.sql import types as T

TABLES = "_feature_store.tables"
TAGS = "_feature_store.tags"
TRAINING_SETS = "_feature_store.training_sets"
_SCHEMAS = {
    TABLES: "name string, primary_keys string, timestamp_keys string, created_at timestamp",
    TAGS: "table_name string, key string, value string",
    TRAINING_SETS: "id string, created_at timestamp, tables string, spec string",
}
_KEYS = {TABLES: ["name"], TAGS: ["table_name", "key"], TRAINING_SETS: ["id"]}


@dataclass(frozen=True)
class TableRecord:
    name: str
    primary_keys: tuple[str, ...]
    timestamp_keys: tuple[str, ...]
    created_at: datetime | None


class MetadataStore:
    def __init__(self, lake: Lakehouse) -> None:
        self.lake = lake
        self._cache: dict[str, tuple[int, list[Row]]] = {}

    # -- generic --------------------------------------------------------------------------------------------
    def _ensure(self, table: str) -> None:
        if self.lake.exists(table):
            return
        try:
            self.lake.create_table(table, schema=_SCHEMAS[table], description="feature store metadata")
        except lh_errors.TableAlreadyExistsError:
            pass  # another client created it first

    def _rows(self, table: str) -> list[Row]:
        if not self.lake.exists(table):
            return []
        version = self.lake.latest_version(table)
        hit = self._cache.get(table)
        if hit is not None and hit[0] == version:
            return hit[1]
        rows = self.lake.read(table, version=version).collect()
        self._cache[table] = (version, rows)
        return rows

    def _upsert(self, table: str, rows: list[tuple]) -> None:
        self._ensure(table)
        df = self.lake.spark.createDataFrame(rows, T._parse_datatype_string(_SCHEMAS[table]))
        self.lake.merge(table, df, on=_KEYS[table])

    def _delete(self, table: str, keys: list[tuple]) -> None:
        if not keys or not self.lake.exists(table):
            return
        schema = T._parse_datatype_string(_SCHEMAS[table])
        key_schema = T.StructType([schema[k] for k in _KEYS[table]])
        df = self.lake.spark.createDataFrame(keys, key_schema)
        self.lake.merge(table, df, on=_KEYS[table], when_matched="delete", when_not_matched="ignore")

    # -- tables ---------------------------------------------------------------------------------------------
    def tables(self) -> dict[str, TableRecord]:
        return {
            r["name"]: TableRecord(
                r["name"], tuple(json.loads(r["primary_keys"])), tuple(json.loads(r["timestamp_keys"])),
                _utc(r["created_at"]),
            )
            for r in self._rows(TABLES)
        }

    def add_table(self, name: str, primary_keys: list[str], timestamp_keys: list[str]) -> None:
        now = datetime.now(timezone.utc)
        self._upsert(TABLES, [(name, json.dumps(primary_keys), json.dumps(timestamp_keys), now)])

    def remove_table(self, name: str) -> None:
        self._delete(TAGS, [(name, k) for k in self.tags(name)])
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
            self._upsert(TAGS, [(table, k, v) for k, v in tags.items()])

    def delete_tag(self, table: str, key: str) -> None:
        self._delete(TAGS, [(table, key)])

    # -- training sets --------------------------------------------------------------------------------------
    def new_labels_table(self) -> str:
        return f"_feature_store.labels_{uuid.uuid4().hex}"

    def save_training_set(self, training_set_id: str, tables: list[str], spec: dict) -> None:
        now = datetime.now(timezone.utc)
        self._upsert(TRAINING_SETS, [(training_set_id, now, json.dumps(sorted(set(tables))), json.dumps(spec))])

    def training_sets(self) -> dict[str, tuple[datetime | None, list[str], dict]]:
        return {
            r["id"]: (_utc(r["created_at"]), json.loads(r["tables"]), json.loads(r["spec"]))
            for r in self._rows(TRAINING_SETS)
        }

    def used_by(self, table: str) -> tuple[str, ...]:
        return tuple(sorted(i for i, (_, tables, _) in self.training_sets().items() if table in tables))


def _utc(value: datetime | None) -> datetime | None:
    """Spark collects timestamps as naive local-time datetimes; make them aware UTC instants."""
    if value is None:
        return None
    return value.astimezone(timezone.utc)  # a naive value is taken as local time, which is what PySpark means

