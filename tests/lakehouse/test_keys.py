"""The key-uniqueness rule on Arrow input, checked against a set of Python values (hypothesis-generated)."""

from datetime import date, datetime, timedelta

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lakehouse._keys import check_unique_arrow
from lakehouse.errors import DuplicateKeyError

EPOCH = datetime(2026, 1, 1)
KINDS = {
    "int64": (st.integers(-5, 5), pa.int64()),
    "int32": (st.integers(-(2**31), 2**31 - 1), pa.int32()),
    "timestamp": (st.integers(0, 6).map(lambda s: EPOCH + timedelta(microseconds=s)), pa.timestamp("us")),
    "date": (st.integers(0, 6).map(lambda d: date(2026, 1, 1) + timedelta(days=d)), pa.date32()),
    "string": (st.sampled_from(["a", "b", "c", "A", ""]), pa.string()),
}


@pytest.mark.parametrize("kind", sorted(KINDS))
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_single_key_duplicates_match_a_python_set(kind, data):
    values_of, arrow_type = KINDS[kind]
    values = data.draw(st.lists(st.one_of(values_of, st.none()) if kind != "int32" else values_of, max_size=12))
    split = data.draw(st.integers(0, len(values)))
    column = pa.chunked_array([values[:split], values[split:]], type=arrow_type)
    table = pa.table({"k": column, "v": pa.array(range(len(values)), pa.int64())})
    repeated = {v for v in values if values.count(v) > 1}  # the oracle: None counts as a value, as in Spark
    if repeated:
        with pytest.raises(DuplicateKeyError) as info:
            check_unique_arrow("t", table, ["k"])
        assert info.value.count == len(repeated)
        assert {ex[0] for ex in info.value.examples} <= repeated
    else:
        check_unique_arrow("t", table, ["k"])
