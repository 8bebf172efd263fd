"""check_consistency: is what the online store serves a model what the model would get offline?

For each feature table a model reads, the online store holds the rows of one Delta version (the one its last
publish copied). For a sample of that version's keys, the check reads the latest row per key of that version
with Spark (a window over the table as of the version: independent of the publish code, which reads the files
with pyarrow) and the same keys from the store, and compares every feature the model takes, value by value, in
the features' own types. Any difference is training/serving skew: a publish that failed half-way, rows written
to the store by something else, a store restored from an old backup. A table published at an older version than
its latest is reported as stale (not a mismatch: the store is consistent with what it says it holds).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
from pyspark.sql import Window
from pyspark.sql import functions as F
from pyspark.sql import types as T
from pyspark.sql.pandas.types import to_arrow_schema

from lakehouse import Lakehouse

from . import errors
from ._feature_spec import FeatureSpec
from ._metadata import MetadataStore, TableRecord
from ._online import marker_codec
from ._online_codec import loads
from ._online_stores import OnlineStoreSpec
from ._serving import published_store


@dataclass(frozen=True)
class Mismatch:
    """One feature of one key whose online value differs from the offline one (`online_row` False: the store
    has no row for the key at all)."""

    table: str
    key: tuple[Any, ...]
    feature: str
    output: str
    offline: Any
    online: Any
    online_row: bool = True


@dataclass(frozen=True)
class TableCheck:
    """What was checked of one table: the store, the version it holds, the table's latest, the keys compared."""

    table: str
    store: str
    published_version: int
    latest_version: int
    keys_checked: int
    features: tuple[str, ...]

    @property
    def stale(self) -> bool:
        return self.published_version < self.latest_version


@dataclass(frozen=True)
class ConsistencyReport:
    """The result of `check_consistency`: `ok` when no sampled key differs (`mismatches` lists each one)."""

    model_uri: str
    tables: tuple[TableCheck, ...]
    mismatches: tuple[Mismatch, ...]

    @property
    def ok(self) -> bool:
        return not self.mismatches

    def __str__(self) -> str:
        lines = [f"consistency of {self.model_uri}: {'OK' if self.ok else f'{len(self.mismatches)} mismatch(es)'}"]
        for t in self.tables:
            stale = f", stale: latest is {t.latest_version}" if t.stale else ""
            lines.append(
                f"  {t.table}: {t.keys_checked} keys, {len(t.features)} features, version {t.published_version} "
                f"in {t.store}{stale}"
            )
        for m in self.mismatches[:20]:
            online = repr(m.online) if m.online_row else "no row"
            lines.append(f"  MISMATCH {m.table} key={m.key} {m.feature}: offline {m.offline!r}, online {online}")
        if len(self.mismatches) > 20:
            lines.append(f"  ... {len(self.mismatches) - 20} more")
        return "\n".join(lines)


def check_consistency(
    lake: Lakehouse,
    meta: MetadataStore,
    spec: FeatureSpec,
    model_uri: str,
    sample: int,
    online_store: OnlineStoreSpec | None,
    seed: int,
) -> ConsistencyReport:
    """Compare, for up to `sample` keys per table (drawn at random with `seed`), the online row with the offline
    latest row at the version the store holds. `online_store` None: each table's last-published store."""
    if not isinstance(sample, int) or isinstance(sample, bool) or sample < 1:
        raise errors.ArgumentTypeError("sample", sample, "a positive int (how many keys to check per table)")
    if online_store is not None and not isinstance(online_store, OnlineStoreSpec):
        raise errors.ArgumentTypeError("online_store", online_store, "a SqliteOnlineStore, a RedisOnlineStore or None")
    records = meta.tables()
    wanted: dict[str, dict[str, str]] = {}  # table -> {feature: output}
    inputs = set(spec.input_columns)
    for lk in spec.lookups:
        if lk.table_name not in records or not lake.exists(lk.table_name):
            raise errors.FeatureTableNotFoundError(lk.table_name, sorted(records))
        for f, o in zip(lk.features, lk.outputs, strict=True):
            if o in inputs:
                wanted.setdefault(lk.table_name, {})[f] = o
    checks: list[TableCheck] = []
    mismatches: list[Mismatch] = []
    for table, features in wanted.items():
        store = online_store or published_store(lake.root, table)
        check, found = _check_table(lake, records[table], store, features, sample, seed)
        checks.append(check)
        mismatches += found
    return ConsistencyReport(model_uri, tuple(checks), tuple(mismatches))


def _check_table(
    lake: Lakehouse, rec: TableRecord, store: OnlineStoreSpec, features: dict[str, str], sample: int, seed: int
) -> tuple[TableCheck, list[Mismatch]]:
    with store.connect(lake.root) as backend:
        marker = backend.marker(rec.name)
        if marker is None:
            raise errors.OnlineTableNotPublishedError(rec.name, backend.description)
        absent = [f for f in features if f not in marker.features]
        if absent:
            raise errors.FeatureNotPublishedError(rec.name, backend.description, absent, marker.features)
        codec = marker_codec(marker)
        keys = list(rec.primary_keys)
        names = list(features)
        offline = _offline_rows(lake, rec, marker.version, keys, names, sample, seed)
        encoded = [codec.encode_key(k) for k in offline]
        current, stored = backend.get(rec.name, encoded)
        if current != marker:
            raise errors.OnlinePublishConflictError(rec.name, backend.description)
        rows = [None if v is None else loads(v) for v in stored]
        online = {f: codec.decode_column(rows, f).to_pylist() for f in names}
        check = TableCheck(
            rec.name, backend.description, marker.version, lake.latest_version(rec.name), len(offline), tuple(names)
        )
    found = []
    for i, (key, values) in enumerate(offline.items()):
        for j, f in enumerate(names):
            if rows[i] is None or not _same(values[j], online[f][i]):
                found.append(Mismatch(rec.name, key, f, features[f], values[j], online[f][i], rows[i] is not None))
    return check, found


def _offline_rows(
    lake: Lakehouse, rec: TableRecord, version: int, keys: list[str], features: list[str], sample: int, seed: int
) -> dict[tuple[Any, ...], tuple[Any, ...]]:
    """{key values: feature values} of the latest row at `version` of up to `sample` random keys (Spark)."""
    df = lake.read(rec.name, version=version)
    picked = df.select(*keys).distinct().orderBy(F.rand(seed)).limit(sample)
    rows = df.join(picked, keys)
    if rec.timestamp_keys:
        order = Window.partitionBy(*keys).orderBy(F.col(f"`{rec.timestamp_keys[0]}`").desc())
        rows = rows.withColumn("__fs_rank", F.row_number().over(order)).where("__fs_rank = 1")
    columns = [*keys, *features]
    target = to_arrow_schema(
        T.StructType([df.schema[c] for c in columns]), timestamp_utc=True, prefers_large_types=False
    )
    table: pa.Table = rows.select(*[F.col(f"`{c}`") for c in columns]).toArrow().cast(target)
    values = [table.column(c).to_pylist() for c in columns]
    n = len(keys)
    return {tuple(r[:n]): tuple(r[n:]) for r in zip(*values, strict=True)}


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return bool(a == b) and type(a) is type(b)


__all__: Sequence[str] = ("ConsistencyReport", "Mismatch", "TableCheck", "check_consistency")
