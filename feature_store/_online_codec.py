"""The online store's typed encoding: Spark-typed values to JSON and back, exactly.

An online store holds text. A value goes in as a JSON value chosen by its Spark type, never `str(value)`, so
it comes back as the same value of the same type:

| Spark type                         | JSON                              |
|------------------------------------|-----------------------------------|
| boolean, byte/short/int/long       | true/false, integer               |
| float, double                      | number (NaN / Infinity as Python's json writes them; -0.0 kept) |
| string                             | string                            |
| decimal(p, s)                      | string (`str(Decimal)`: digits and scale kept) |
| date                               | "YYYY-MM-DD"                      |
| timestamp                          | integer microseconds since the epoch (UTC) |
| timestamp_ntz                      | integer microseconds of the wall clock since 1970-01-01 00:00 |
| binary                             | base64 string                     |
| array<T>                           | list of T's encodings             |
| map<K, V>                          | list of [K, V] pairs              |
| struct<...>                        | list of the fields' encodings, in order |

null is null at every level. A key is the JSON list of its primary-key values in the table's key order
(`encode_key`); a stored row is the JSON list of its features in the order the store recorded (`encode_row`).
Decoding needs the Spark type, which the store keeps beside the rows (its marker).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from json import encoder as _json_encoder
from typing import Any

import pyarrow as pa
from pyspark.sql import types as T
from pyspark.sql.pandas.types import to_arrow_type

Encoder = Callable[[Any], Any]
Decoder = Callable[[Any], Any]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_NTZ = datetime(1970, 1, 1)
_US = timedelta(microseconds=1)


def _same(v: Any) -> Any:
    return v


def _micros(delta: timedelta) -> int:
    return delta // _US


def encoder(dtype: T.DataType) -> Encoder:
    """A function from a value of `dtype` (as pyarrow's to_pylist gives it) to its JSON-able encoding."""
    inner: Encoder
    if isinstance(dtype, (T.BooleanType, T.StringType)):
        inner = _same
    elif isinstance(dtype, (T.ByteType, T.ShortType, T.IntegerType, T.LongType)):
        inner = int
    elif isinstance(dtype, (T.FloatType, T.DoubleType)):
        inner = float
    elif isinstance(dtype, T.DecimalType):
        inner = str
    elif isinstance(dtype, T.DateType):
        inner = date.isoformat
    elif isinstance(dtype, T.TimestampType):

        def inner(v: datetime) -> int:
            return _micros((v if v.tzinfo else v.replace(tzinfo=UTC)) - _EPOCH)

    elif isinstance(dtype, T.TimestampNTZType):

        def inner(v: datetime) -> int:
            return _micros(v.replace(tzinfo=None) - _EPOCH_NTZ)

    elif isinstance(dtype, T.BinaryType):

        def inner(v: bytes) -> str:
            return base64.b64encode(v).decode("ascii")

    elif isinstance(dtype, T.ArrayType):
        element = encoder(dtype.elementType)

        def inner(v: Sequence[Any]) -> list[Any]:
            return [element(x) for x in v]

    elif isinstance(dtype, T.MapType):
        k_enc, v_enc = encoder(dtype.keyType), encoder(dtype.valueType)

        def inner(v: Any) -> list[list[Any]]:
            pairs = v.items() if isinstance(v, dict) else v
            return [[k_enc(k), v_enc(x)] for k, x in pairs]

    elif isinstance(dtype, T.StructType):
        fields = [(f.name, encoder(f.dataType)) for f in dtype.fields]

        def inner(v: Any) -> list[Any]:
            if isinstance(v, dict):
                return [enc(v.get(name)) for name, enc in fields]
            return [enc(x) for (_, enc), x in zip(fields, v, strict=True)]

    else:
        raise TypeError(f"no online encoding for Spark type {dtype.simpleString()}")

    def encode(v: Any) -> Any:
        return None if v is None else inner(v)

    return encode


def decoder(dtype: T.DataType) -> Decoder:
    """The inverse of `encoder(dtype)`: a JSON-decoded value to the Python value pyarrow takes for `dtype`."""
    inner: Decoder
    if isinstance(dtype, (T.BooleanType, T.StringType, T.ByteType, T.ShortType, T.IntegerType, T.LongType)):
        inner = _same
    elif isinstance(dtype, (T.FloatType, T.DoubleType)):
        inner = float
    elif isinstance(dtype, T.DecimalType):
        inner = Decimal
    elif isinstance(dtype, T.DateType):
        inner = date.fromisoformat
    elif isinstance(dtype, T.TimestampType):

        def inner(v: int) -> datetime:
            return _EPOCH + timedelta(microseconds=v)

    elif isinstance(dtype, T.TimestampNTZType):

        def inner(v: int) -> datetime:
            return _EPOCH_NTZ + timedelta(microseconds=v)

    elif isinstance(dtype, T.BinaryType):

        def inner(v: str) -> bytes:
            return base64.b64decode(v)

    elif isinstance(dtype, T.ArrayType):
        element = decoder(dtype.elementType)

        def inner(v: list[Any]) -> list[Any]:
            return [element(x) for x in v]

    elif isinstance(dtype, T.MapType):
        k_dec, v_dec = decoder(dtype.keyType), decoder(dtype.valueType)

        def inner(v: list[list[Any]]) -> list[tuple[Any, Any]]:
            return [(k_dec(k), v_dec(x)) for k, x in v]

    elif isinstance(dtype, T.StructType):
        fields = [(f.name, decoder(f.dataType)) for f in dtype.fields]

        def inner(v: list[Any]) -> dict[str, Any]:
            return {name: dec(x) for (name, dec), x in zip(fields, v, strict=True)}

    else:
        raise TypeError(f"no online encoding for Spark type {dtype.simpleString()}")

    def decode(v: Any) -> Any:
        return None if v is None else inner(v)

    return decode


def supported(dtype: T.DataType) -> bool:
    try:
        encoder(dtype)
    except TypeError:
        return False
    return True


def arrow_type(dtype: T.DataType) -> pa.DataType:
    """The Arrow type a decoded column is built with: Spark's own mapping (timestamps in UTC)."""
    return to_arrow_type(dtype, timestamp_utc=True, prefers_large_types=False)


# Compact, and NaN/Infinity allowed (Python's json reads back what it writes). One encoder for every call:
# json.dumps with options builds a new one per call, which costs as much as encoding a short key.
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def dumps(values: Sequence[Any]) -> str:
    return _ENCODER.encode(values)


def loads(text: str | bytes) -> Any:
    return json.loads(text)


def loads_many(texts: Sequence[str]) -> list[Any]:
    """`[loads(t) for t in texts]` in one parse: one call per stored row costs twice as much for 1,000 rows.
    Each text is one JSON value written by `dumps`, so joining them with commas is a JSON list of them."""
    return json.loads("[" + ",".join(texts) + "]") if texts else []


def _scalar_text(dtype: T.DataType) -> Callable[[Any], str] | None:
    """The JSON text `dumps` writes for one non-null value of `dtype`, for the types where that is a plain
    function of the value (integers: their decimal digits; strings: json's own string escaper); else None."""
    if isinstance(dtype, (T.ByteType, T.ShortType, T.IntegerType, T.LongType)):
        return lambda v: str(int(v))
    if isinstance(dtype, T.StringType):
        return _json_encoder.encode_basestring  # what JSONEncoder(ensure_ascii=False) uses for str
    return None


class RowCodec:
    """Encodes key tuples and feature rows of one schema; decodes stored rows back by feature name."""

    def __init__(self, keys: Sequence[T.StructField], features: Sequence[T.StructField]) -> None:
        self.key_fields = tuple(keys)
        self.feature_fields = tuple(features)
        self._key_enc = [encoder(f.dataType) for f in self.key_fields]
        self._row_enc = [encoder(f.dataType) for f in self.feature_fields]
        self._row_dec = [decoder(f.dataType) for f in self.feature_fields]
        self.position = {f.name: i for i, f in enumerate(self.feature_fields)}
        self.key_arrow_types = tuple(arrow_type(f.dataType) for f in self.key_fields)
        self._one_key_text = _scalar_text(self.key_fields[0].dataType) if len(self.key_fields) == 1 else None

    def encode_key(self, values: Sequence[Any]) -> str:
        return dumps([enc(v) for enc, v in zip(self._key_enc, values, strict=True)])

    def encode_keys(self, columns: Sequence[Sequence[Any]]) -> list[str | None]:
        """`encode_key` of each row of `columns` (one list per key field, in key order); None where a value is
        null. A single integer or string key is written without the JSON encoder (same text, a third of the
        cost: a 1,000-key lookup spent most of its time here)."""
        if self._one_key_text is not None:
            text = self._one_key_text
            return [None if v is None else f"[{text(v)}]" for v in columns[0]]
        return [None if any(v is None for v in row) else self.encode_key(row) for row in zip(*columns, strict=True)]

    def encode_row(self, values: Sequence[Any]) -> str:
        return dumps([enc(v) for enc, v in zip(self._row_enc, values, strict=True)])

    def decode_column(self, rows: Sequence[list[Any] | None], feature: str) -> pa.Array:
        """One feature of decoded stored rows (None: no row for the key) as an Arrow array of its type."""
        i = self.position[feature]
        dec = self._row_dec[i]
        values = [None if r is None else dec(r[i]) for r in rows]
        return pa.array(values, type=arrow_type(self.feature_fields[i].dataType))
