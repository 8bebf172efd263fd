"""Point-in-time results against an independent pure-Python oracle (a loop over the rows)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pyarrow as pa
from chispa import assert_df_equality
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from feature_store import FeatureLookup
from feature_store._asof import asof_indices, key_codes, to_micros

BASE = datetime(2026, 1, 1, tzinfo=UTC)


def oracle(labels, features, lookback, default):
    """For each label (key, t): the feature row with the greatest ts <= t (and t - ts <= lookback)."""
    out = []
    for key, t, lid in labels:
        best = None
        if key is not None and t is not None:
            for fkey, fts, value in features:
                in_window = fkey == key and fts <= t and (lookback is None or t - fts <= lookback)
                if in_window and (best is None or fts > best[0]):
                    best = (fts, value)
        value = best[1] if best else None
        out.append((key, t, lid, default if value is None and default is not None else value))
    return out


minutes = st.integers(min_value=0, max_value=40)
keys = st.one_of(st.none(), st.integers(min_value=1, max_value=4))
feature_rows = st.lists(
    st.tuples(st.integers(1, 4), minutes, st.one_of(st.none(), st.floats(-5, 5, allow_nan=False))),
    max_size=25,
    unique_by=lambda r: (r[0], r[1]),
)
label_rows = st.lists(st.tuples(keys, st.one_of(st.none(), minutes)), min_size=1, max_size=25)


@settings(max_examples=300, deadline=None)
@given(feature_rows, label_rows, st.one_of(st.none(), st.integers(0, 15)))
def test_kernel_matches_oracle(frows, lrows, lookback):
    lk = pa.array([k for k, _ in lrows], pa.int64())
    fk = pa.array([k for k, _, _ in frows], pa.int64())
    lts = pa.array([None if m is None else BASE + timedelta(minutes=m) for _, m in lrows], pa.timestamp("us", "UTC"))
    fts = pa.array([BASE + timedelta(minutes=m) for _, m, _ in frows], pa.timestamp("us", "UTC"))
    lc, fc = key_codes([lk], [fk])
    lt, lv = to_micros(lts)
    ft, fv = to_micros(fts)
    idx = asof_indices(lc, lt, lv, fc, ft, fv, None if lookback is None else lookback * 60_000_000)
    expected = oracle(
        [(k, m, i) for i, (k, m) in enumerate(lrows)], [(k, m, j) for j, (k, m, _) in enumerate(frows)], lookback, None
    )
    assert [None if i < 0 else int(i) for i in idx] == [e[3] for e in expected]


@settings(max_examples=150, deadline=None)
@given(feature_rows, label_rows, st.one_of(st.none(), st.integers(0, 15)), st.sampled_from([1, 1 << 20, 1 << 45]))
def test_kernel_matches_oracle_on_wide_keys_and_times(frows, lrows, lookback, scale):
    """Keys spread over up to 2**47 (past the integer fast path) and times over ~2**61 us (past one packed
    int64): the kernel falls back to dictionary codes and time ranks, with the same answers."""
    lk = pa.array([None if k is None else k * scale - (1 << 46) for k, _ in lrows], pa.int64())
    fk = pa.array([k * scale - (1 << 46) for k, _, _ in frows], pa.int64())
    epoch = pa.timestamp("us", "UTC")
    far = 1 << 30  # one "minute" is ~2,000 years: 40 of them span ~2**61 us
    lts = pa.array([None if m is None else m * far * 60_000_000 - (1 << 62) for _, m in lrows], pa.int64()).cast(epoch)
    fts = pa.array([m * far * 60_000_000 - (1 << 62) for _, m, _ in frows], pa.int64()).cast(epoch)
    lc, fc = key_codes([lk], [fk])
    lt, lv = to_micros(lts)
    ft, fv = to_micros(fts)
    idx = asof_indices(lc, lt, lv, fc, ft, fv, None if lookback is None else lookback * far * 60_000_000)
    expected = oracle(
        [(k, m, i) for i, (k, m) in enumerate(lrows)], [(k, m, j) for j, (k, m, _) in enumerate(frows)], lookback, None
    )
    assert [None if i < 0 else int(i) for i in idx] == [e[3] for e in expected]


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(feature_rows, label_rows, st.one_of(st.none(), st.integers(0, 15)), st.one_of(st.none(), st.just(-1.0)))
def test_training_set_matches_oracle(fs, spark, join_path, frows, lrows, lookback, default):
    name = f"f_{abs(hash((tuple(frows), tuple(lrows), lookback, default))) % 10**9}"
    fdf = spark.createDataFrame(
        [(k, BASE + timedelta(minutes=m), v) for k, m, v in frows] or [], "k long, ts timestamp, v double"
    )
    fs.create_table(name=name, primary_keys="k", timestamp_keys="ts", df=fdf)
    labels = [(k, None if m is None else BASE + timedelta(minutes=m), i) for i, (k, m) in enumerate(lrows)]
    ldf = spark.createDataFrame(labels, "key long, t timestamp, lid int")
    lookup = FeatureLookup(
        table_name=name,
        lookup_key="key",
        timestamp_lookup_key="t",
        feature_names=["v"],
        lookback_window=None if lookback is None else timedelta(minutes=lookback),
        default_values=None if default is None else {"v": default},
    )
    got = fs.create_training_set(ldf, [lookup], label=None).load_df()
    exp_rows = oracle(
        labels,
        [(k, BASE + timedelta(minutes=m), v) for k, m, v in frows],
        None if lookback is None else timedelta(minutes=lookback),
        default,
    )
    expected = spark.createDataFrame(exp_rows, "key long, t timestamp, lid int, v double")
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)
