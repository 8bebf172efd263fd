"""The online key encoding: the fast path for one integer or string key writes exactly what json writes."""

from __future__ import annotations

import json
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st
from pyspark.sql import types as T

from feature_store._online_codec import RowCodec

LONG = st.integers(min_value=-(2**63), max_value=2**63 - 1)


def oracle(values: list) -> str:
    """The text a key is stored under: the JSON list of its values, compact, non-ASCII kept."""
    return json.dumps(values, separators=(",", ":"), ensure_ascii=False)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.none(), LONG), max_size=20))
def test_one_long_key(values):
    codec = RowCodec([T.StructField("id", T.LongType())], [T.StructField("f", T.DoubleType())])
    assert codec.encode_keys([values]) == [None if v is None else oracle([v]) for v in values]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.none(), st.text()), max_size=20))
def test_one_string_key(values):
    """Quotes, backslashes, control characters, surrogates and non-ASCII text escape as json escapes them."""
    codec = RowCodec([T.StructField("id", T.StringType())], [T.StructField("f", T.DoubleType())])
    assert codec.encode_keys([values]) == [None if v is None else oracle([v]) for v in values]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.one_of(st.none(), LONG), st.one_of(st.none(), st.text())), max_size=20))
def test_composite_keys_go_through_the_encoder(rows):
    codec = RowCodec(
        [T.StructField("a", T.LongType()), T.StructField("b", T.StringType())], [T.StructField("f", T.DoubleType())]
    )
    columns = [[a for a, _ in rows], [b for _, b in rows]]
    assert codec.encode_keys(columns) == [None if None in row else oracle(list(row)) for row in rows]


def test_a_key_of_another_type_goes_through_the_encoder():
    codec = RowCodec([T.StructField("d", T.DecimalType(10, 2))], [T.StructField("f", T.DoubleType())])
    assert codec.encode_keys([[Decimal("1.50"), None]]) == ['["1.50"]', None]
