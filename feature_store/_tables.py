"""Feature tables as a catalog: creating and registering them (their keys checked unique and non-null),
looking them up by name, describing, searching, tagging and dropping them.

A feature table is a lakehouse Delta table plus a record in the metadata store (`_metadata`) naming its keys;
a table is a feature table only while both exist. Rows are written by `_writes`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from lakehouse import Lakehouse
from lakehouse import errors as lh_errors

from . import _validation as check
from . import errors
from ._entities import FeatureTable
from ._metadata import MetadataStore, TableRecord
from ._writes import check_keys_unique


class FeatureTables:
    """The feature tables of one lake: the Delta tables and their records in the metadata store."""

    def __init__(self, lake: Lakehouse, meta: MetadataStore) -> None:
        self._lake = lake
        self._meta = meta

    def record(self, name: Any, argument: str = "name") -> TableRecord:
        """The record of the feature table `name`; FeatureTableNotFoundError unless it is one."""
        name = check.table_name(name, argument)
        records = self._meta.tables()
        if name not in records or not self._lake.exists(name):
            raise errors.FeatureTableNotFoundError(name, sorted(records))
        return records[name]

    def create(
        self,
        name: Any,
        primary_keys: Any,
        df: Any,
        *,
        timestamp_keys: Any,
        schema: Any,
        partition_columns: Any,
        description: Any,
        tags: Any,
    ) -> FeatureTable:
        name = check.new_feature_table_name(self._lake, name)
        pks = check.names(primary_keys, "primary_keys", allow_empty=False)
        tks = check.names(timestamp_keys, "timestamp_keys", allow_empty=True)
        pks = check.entity_keys(pks, tks)
        parts = check.names(partition_columns, "partition_columns", allow_empty=True)
        tags = check.tags(tags)
        description = check.optional_str(description, "description")
        if (df is None) == (schema is None):
            raise errors.InvalidArgumentError(
                "df", df, "create_table needs exactly one of df= (a DataFrame) or schema= (StructType or DDL)"
            )
        if df is not None:
            df = check.to_spark(self._lake, df)
            struct = df.schema
        else:
            struct = check.struct(schema)
        check.check_key_columns(name, struct, pks, tks)
        unknown = [p for p in parts if p not in struct.names]
        if unknown:
            raise errors.ColumnNotFoundError("partition_columns", unknown, struct.names, "the input")
        self._refuse_existing(name)
        if df is not None:
            check_keys_unique(name, df, pks + tks)
        self._lake.create_table(
            name, df, schema=None if df is not None else struct, partition_by=parts or None, description=description
        )
        with self._undo_on_error(name):
            self._meta.add_table(name, pks, tks)
            self._meta.set_tags(name, tags)
        return self.describe(name)

    def register(self, delta_table: Any, primary_keys: Any, timestamp_keys: Any, tags: Any) -> FeatureTable:
        name = check.new_feature_table_name(self._lake, delta_table, "delta_table")
        pks = check.names(primary_keys, "primary_keys", allow_empty=False)
        tks = check.names(timestamp_keys, "timestamp_keys", allow_empty=True)
        pks = check.entity_keys(pks, tks)
        tags = check.tags(tags)
        if name in self._meta.tables():
            raise errors.FeatureTableAlreadyExistsError(name, self._lake.table_path(name), registered=True)
        try:
            df = self._lake.read(name)
        except lh_errors.TableNotFoundError as exc:
            raise errors.DeltaTableNotFoundError(exc.table, exc.path, exc.available) from None
        check.check_key_columns(name, df.schema, pks, tks)
        check_keys_unique(name, df, pks + tks)
        self._meta.add_table(name, pks, tks)
        self._meta.set_tags(name, tags)
        return self.describe(name)

    def describe(self, name: Any) -> FeatureTable:
        rec = self.record(name)
        return self._describe(rec, self._meta.tags(rec.name), self._meta.used_by(rec.name))

    def search(self, text: Any, tags: Any) -> list[FeatureTable]:
        if text is not None and not isinstance(text, str):
            raise errors.ArgumentTypeError("text", text, "a str or None")
        wanted = check.mapping(tags, "tags")
        bad = {k: v for k, v in wanted.items() if not isinstance(k, str) or not (v is None or isinstance(v, str))}
        if bad:
            raise errors.ArgumentTypeError("tags", tags, "a mapping of str keys to str values or None (any value)")
        all_tags = self._meta.all_tags()
        uses = self._meta.training_sets()
        out = []
        for name, rec in sorted(self._meta.tables().items()):
            if not self._lake.exists(name):
                continue  # dropped outside the feature store
            t = all_tags.get(name, {})
            if any(k not in t or (v is not None and t[k] != v) for k, v in wanted.items()):
                continue
            used = tuple(sorted(i for i, (_, tables, _) in uses.items() if name in tables))
            ft = self._describe(rec, t, used)
            if text:
                hay = " ".join([ft.name, ft.description or "", *ft.feature_names]).lower()
                if text.lower() not in hay:
                    continue
            out.append(ft)
        return out

    def drop(self, name: Any, force: bool = False) -> None:
        rec = self.record(name)
        self._meta.remove_table(rec.name)
        if self._lake.exists(rec.name):
            self._lake.drop_table(rec.name)

    def set_tag(self, table_name: Any, key: Any, value: Any) -> None:
        rec = self.record(table_name, "table_name")
        check.non_empty_str(key, "key")
        if not isinstance(value, str):
            raise errors.ArgumentTypeError("value", value, "a str")
        self._meta.set_tags(rec.name, {key: value})

    def delete_tag(self, table_name: Any, key: Any) -> None:
        rec = self.record(table_name, "table_name")
        check.non_empty_str(key, "key")
        if key in self._meta.tags(rec.name):
            self._meta.delete_tag(rec.name, key)

    # -- helpers --------------------------------------------------------------------------------------------
    def _describe(self, rec: TableRecord, tags: dict[str, str], used_by: tuple[str, ...]) -> FeatureTable:
        info = self._lake.describe(rec.name)
        keys = set(rec.primary_keys + rec.timestamp_keys)
        return FeatureTable(
            name=rec.name,
            path=info.path,
            primary_keys=rec.primary_keys,
            timestamp_keys=rec.timestamp_keys,
            features=tuple((n, t) for n, t in info.columns if n not in keys),
            description=info.description,
            tags=dict(tags),
            partition_columns=info.partition_columns,
            latest_version=info.version,
            created_at=rec.created_at,
            used_by=used_by,
        )

    def _refuse_existing(self, name: str) -> None:
        if name in self._meta.tables() and self._lake.exists(name):
            raise errors.FeatureTableAlreadyExistsError(name, self._lake.table_path(name), registered=True)
        if self._lake.exists(name):
            raise errors.FeatureTableAlreadyExistsError(name, self._lake.table_path(name), registered=False)

    @contextmanager
    def _undo_on_error(self, name: str) -> Iterator[None]:
        try:
            yield
        except BaseException:
            self._lake.drop_table(name)  # the table without its keys would be no feature table
            raise
