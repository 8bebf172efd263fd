"""Feature tables as a catalog: creating and registering them (their keys checked unique and non-null),
looking them up by name, describing (with their lineage), searching, tagging and dropping them.

A feature table is a lakehouse Delta table plus a record in the metadata store (`_metadata`) naming its keys;
a table is a feature table only while both exist. Rows are written by `_writes`; what uses a table is
gathered by `_lineage`. Dropping a table that registered model versions use is refused unless forced.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from lakehouse import Lakehouse
from lakehouse import errors as lh_errors

from . import _lineage as lineage
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
        """The table with its full lineage: saved training sets, logged models, and their registered versions
        as the MLflow registry holds them now (one registry search when models were logged on the table, none
        otherwise). A registry that cannot be read leaves `model_versions` None and says why in
        `registry_error`; it does not fail the call."""
        rec = self.record(name)
        uses = lineage.uses_of(self._meta, rec.name)
        found = lineage.registered(uses.runs) if uses.runs else None
        return self._describe(rec, self._meta.tags(rec.name), uses, found)

    def search(self, text: Any, tags: Any) -> list[FeatureTable]:
        """Tables whose name, description or a feature name contains `text` (case-insensitive) and that carry
        every tag in `tags` (value None: any value), sorted by name. Each has its training sets and logged
        models (one read of the metadata for all tables) but not its registered versions (`model_versions`
        None): that would cost a registry search per table; `describe` asks."""
        if text is not None and not isinstance(text, str):
            raise errors.ArgumentTypeError("text", text, "a str or None")
        wanted = check.mapping(tags, "tags")
        bad = {k: v for k, v in wanted.items() if not isinstance(k, str) or not (v is None or isinstance(v, str))}
        if bad:
            raise errors.ArgumentTypeError("tags", tags, "a mapping of str keys to str values or None (any value)")
        all_tags = self._meta.all_tags()
        uses = lineage.uses_by_table(self._meta)
        out = []
        for name, rec in sorted(self._meta.tables().items()):
            if not self._lake.exists(name):
                continue  # dropped outside the feature store
            t = all_tags.get(name, {})
            if any(k not in t or (v is not None and t[k] != v) for k, v in wanted.items()):
                continue
            ft = self._describe(rec, t, uses.get(name, lineage.Uses((), ())), None)
            if text:
                hay = " ".join([ft.name, ft.description or "", *ft.feature_names]).lower()
                if text.lower() not in hay:
                    continue
            out.append(ft)
        return out

    def drop(self, name: Any, force: bool = False) -> None:
        """Delete the table and its record. Unless `force`, first ask the MLflow registry for versions of the
        models logged on it and refuse (deleting nothing) while any exists; a table that only saved training
        sets or unregistered runs read is dropped. A registry that cannot be read is not taken for "no
        versions": its error is raised, with a note saying why it was asked and how to go on.

        Raises:
            FeatureTableInUseError: registered model versions ('name/version') use the table.
            MlflowException / OSError: the registry cannot be read (and `force` is False).
        """
        force = check.flag(force, "force")
        rec = self.record(name)
        if not force:
            self._refuse_in_use(rec.name)
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
    def _refuse_in_use(self, name: str) -> None:
        runs = lineage.uses_of(self._meta, name).runs
        if not runs:
            return  # no model logged on it: nothing a registry could hold, no registry call
        try:
            versions = lineage.registered_versions(runs)
        except lineage.UNREADABLE as exc:
            exc.add_note(lineage.unreadable_note(name, runs))
            raise
        if versions:
            raise errors.FeatureTableInUseError(name, [v.ref for v in versions])

    def _describe(
        self, rec: TableRecord, tags: dict[str, str], uses: lineage.Uses, found: lineage.Registered | None
    ) -> FeatureTable:
        """`found`: the registry's answer for the table's runs; None when not asked (no runs: nothing to find,
        so the versions are known to be none; runs but not asked: unknown)."""
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
            used_by=tuple(sorted(t.training_set_id for t in uses.training_sets)),
            training_sets=uses.training_sets,
            runs=uses.runs,
            model_versions=found.versions if found else (() if not uses.runs else None),
            registry_uri=found.registry_uri if found else None,
            registry_error=found.error if found else None,
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
