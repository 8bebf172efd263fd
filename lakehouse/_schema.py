"""Schema enforcement shared by every engine: Delta's rules, with types checked, never silently cast.

Delta's schema JSON is Spark's StructType JSON, so Spark types are the lingua franca between the engines.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import overload

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from .errors import SchemaMismatchError

# Lossless widenings accepted on write (the value is cast up before it is written), plus decimals whose
# every value fits the table's precision and scale. Anything else that
# differs, e.g. double -> long or string -> int, is refused: deltalake would truncate 1.5 to 1 silently.
_WIDENING: dict[type, tuple[type, ...]] = {
    T.LongType: (T.ByteType, T.ShortType, T.IntegerType),
    T.IntegerType: (T.ByteType, T.ShortType),
    T.ShortType: (T.ByteType,),
    T.DoubleType: (T.FloatType,),
}


def from_json(schema_json: str) -> T.StructType:
    return T.StructType.fromJson(json.loads(schema_json))


@overload
def as_nullable(dt: T.StructType) -> T.StructType: ...
@overload
def as_nullable(dt: T.DataType) -> T.DataType: ...
def as_nullable(dt: T.DataType) -> T.DataType:
    """Delta makes every column of a table created from a DataFrame nullable; so do we (recursively)."""
    if isinstance(dt, T.StructType):
        return T.StructType([T.StructField(f.name, as_nullable(f.dataType), True, f.metadata) for f in dt.fields])
    if isinstance(dt, T.ArrayType):
        return T.ArrayType(as_nullable(dt.elementType), True)
    if isinstance(dt, T.MapType):
        return T.MapType(as_nullable(dt.keyType), as_nullable(dt.valueType), True)
    return dt


def type_name(dt: T.DataType) -> str:
    return dt.simpleString()


def fields(schema: T.StructType) -> list[tuple[str, str]]:
    return [(f.name, type_name(f.dataType)) for f in schema.fields]


def _same_type(a: T.DataType, b: T.DataType) -> bool:
    return as_nullable(a) == as_nullable(b)


def _widens(target: T.DataType, source: T.DataType) -> bool:
    if isinstance(target, T.DecimalType) and isinstance(source, T.DecimalType):
        # every value fits: no fewer integer digits and no fewer fraction digits
        return source.scale <= target.scale and source.precision - source.scale <= target.precision - target.scale
    return type(source) in _WIDENING.get(type(target), ())


def check_new_schema(table: str, schema: T.StructType) -> None:
    """A schema a table can be created with: named, typed, no duplicate names."""
    problems = []
    seen: set[str] = set()
    for f in schema.fields:
        if not f.name:
            problems.append("a column has an empty name")
        if f.name.lower() in seen:
            problems.append(f"column {f.name!r} appears twice (Delta column names are case-insensitive)")
        seen.add(f.name.lower())
        if isinstance(f.dataType, T.NullType):
            problems.append(f"column {f.name!r} has no type (void, e.g. all nulls): cast it to a concrete type")
        if "`" in f.name:
            problems.append(_BACKTICK.format(f.name))
    if problems:
        raise SchemaMismatchError(table, [], fields(schema), problems, hint="fix the columns named above")


_BACKTICK = "column {!r} contains a backtick, which no Delta engine's SQL quotes the same way: rename it"


def parse_ddl(table: str, ddl: str) -> T.StructType:
    """A DDL schema string ("id long, name string") parsed by Spark's own parser, or SchemaMismatchError."""
    try:
        parsed = T._parse_datatype_string(ddl)
    except Exception as exc:  # noqa: BLE001 - pyspark raises ParseException (or py4j errors) here
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        raise SchemaMismatchError(
            table,
            [],
            [],
            [f"schema {ddl!r} does not parse: {first}"],
            hint='write it as Spark DDL, e.g. "id long, name string, ts timestamp"',
        ) from None
    if not isinstance(parsed, T.StructType):
        raise SchemaMismatchError(
            table,
            [],
            [],
            [f"schema {ddl!r} is a {type_name(parsed)}, not a list of columns"],
            hint='write it as Spark DDL, e.g. "id long, name string, ts timestamp"',
        )
    return parsed


@dataclass(frozen=True)
class WritePlan:
    """How a DataFrame lines up with a table: the columns to write (cast where widened) and any new columns."""

    columns: tuple[str, ...]
    casts: dict[str, T.DataType]
    new_fields: tuple[T.StructField, ...]
    merged_schema: T.StructType

    def apply(self, df: DataFrame) -> DataFrame:
        if not self.casts and list(self.columns) == df.columns:
            return df  # already aligned: a select of every column costs ~50 ms of Py4J calls on a wide frame
        return df.select(
            [F.col(f"`{c}`").cast(self.casts[c]).alias(c) if c in self.casts else F.col(f"`{c}`") for c in self.columns]
        )


def plan_write(
    table: str,
    target: T.StructType,
    source: T.StructType,
    *,
    schema_evolution: bool,
    require_columns: tuple[str, ...] = (),
    allow_missing: bool = True,
) -> WritePlan:
    """Check `source` against `target` with Delta's rules; raise SchemaMismatchError listing every problem.

    Missing nullable columns are allowed (written as null), as in Delta, unless `allow_missing` is False;
    `require_columns` (merge keys, partition columns) must be present. New columns need `schema_evolution`.
    """
    problems: list[str] = []
    by_name = {f.name: f for f in target.fields}
    lower = {f.name.lower(): f.name for f in target.fields}
    casts: dict[str, T.DataType] = {}
    new_fields: list[T.StructField] = []
    seen: set[str] = set()
    for f in source.fields:
        if f.name in seen:
            problems.append(f"column {f.name!r} appears twice in the input")
            continue
        seen.add(f.name)
        if "`" in f.name:
            problems.append(_BACKTICK.format(f.name))
            continue
        if isinstance(f.dataType, T.NullType):
            problems.append(f"column {f.name!r} has no type (void, e.g. all nulls): cast it to a concrete type")
            continue
        t = by_name.get(f.name)
        if t is None:
            if f.name.lower() in lower:
                problems.append(f"column {f.name!r} differs only in case from the table's {lower[f.name.lower()]!r}")
            elif schema_evolution:
                new_fields.append(T.StructField(f.name, as_nullable(f.dataType), True))
            else:
                problems.append(f"column {f.name!r} ({type_name(f.dataType)}) is not in the table")
            continue
        if _same_type(t.dataType, f.dataType):
            continue
        if _widens(t.dataType, f.dataType):
            casts[f.name] = t.dataType
            continue
        problems.append(f"column {f.name!r} is {type_name(f.dataType)} but the table has {type_name(t.dataType)}")
    missing = [f.name for f in target.fields if f.name not in seen]
    for name in require_columns:
        if name not in seen:
            problems.append(f"required column {name!r} is missing")
    for name in missing:
        if name in require_columns:
            continue
        if not allow_missing:
            problems.append(f"column {name!r} is missing")
        elif not by_name[name].nullable:
            problems.append(f"column {name!r} is NOT NULL but missing")
    if problems:
        raise SchemaMismatchError(table, fields(target), fields(source), problems)
    merged = T.StructType([*target.fields, *new_fields])
    return WritePlan(
        columns=tuple(f.name for f in source.fields),
        casts=casts,
        new_fields=tuple(new_fields),
        merged_schema=merged,
    )
