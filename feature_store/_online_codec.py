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


def dumps(values: Sequence[Any]) -> str:
    # Compact, and NaN/Infinity allowed (Python's json reads back what it writes).
    return json.dumps(values, separators=(",", ":"), ensure_ascii=False)


def loads(text: str | bytes) -> Any:
    return json.loads(text)


class RowCodec:
    """Encodes key tuples and feature rows of one schema; decodes stored rows back by feature name."""

    def __init__(self, keys: Sequence[T.StructField], features: Sequence[T.StructField]) -> None:
        self.key_fields = tuple(keys)
        self.feature_fields = tuple(features)
        self._key_enc = [encoder(f.dataType) for f in self.key_fields]
        self._row_enc = [encoder(f.dataType) for f in self.feature_fields]
        self._row_dec = [decoder(f.dataType) for f in self.feature_fields]
        self.position = {f.name: i for i, f in enumerate(self.feature_fields)}

    def encode_key(self, values: Sequence[Any]) -> str:
        return dumps([enc(v) for enc, v in zip(self._key_enc, values, strict=True)])

    def encode_row(self, values: Sequence[Any]) -> str:
        return dumps([enc(v) for enc, v in zip(self._row_enc, values, strict=True)])

    def decode_column(self, rows: Sequence[list[Any] | None], feature: str) -> pa.Array:
        """One feature of decoded stored rows (None: no row for the key) as an Arrow array of its type."""
        i = self.position[feature]
        dec = self._row_dec[i]
        values = [None if r is None else dec(r[i]) for r in rows]
        return pa.array(values, type=arrow_type(self.feature_fields[i].dataType))
