from datetime import UTC, datetime

import pandas as pd
import pytest
from chispa import assert_df_equality

from lakehouse.errors import DuplicateKeyError, InvalidArgumentError, SchemaMismatchError

SCHEMA = "id long, name string, score double, keep string"


@pytest.fixture
def table(lake, spark):
    lake.create_table(
        "m", spark.createDataFrame([(1, "a", 1.0, "k1"), (2, "b", 2.0, "k2"), (3, "c", 3.0, "k3")], SCHEMA)
    )
    return "m"


def oracle(target, source, keys, *, matched="update", not_matched="insert", by_source="ignore", update=None):
    """Merge semantics on plain dicts: the independent reference the engines are checked against."""
    key = lambda r: tuple(r[k] for k in keys)  # noqa: E731
    src = {key(r): r for r in source}
    out = []
    for r in target:
        s = src.get(key(r))
        if s is None:
            if by_source != "delete":
                out.append(dict(r))
        elif matched == "update":
            cols = update if update is not None else [c for c in s if c not in keys]
            out.append({**r, **{c: s[c] for c in cols}})
        elif matched == "ignore":
            out.append(dict(r))
    tkeys = {key(r) for r in target}
    if not_matched == "insert":
        cols = list(target[0].keys())
        out += [{c: s.get(c) for c in cols} for k, s in src.items() if k not in tkeys]
    return sorted(out, key=key)


def rows(df):
    return sorted((r.asDict() for r in df.collect()), key=lambda r: r["id"])


TARGET = [
    {"id": 1, "name": "a", "score": 1.0, "keep": "k1"},
    {"id": 2, "name": "b", "score": 2.0, "keep": "k2"},
    {"id": 3, "name": "c", "score": 3.0, "keep": "k3"},
]


@pytest.mark.parametrize("matched", ["update", "delete", "ignore"])
@pytest.mark.parametrize("not_matched", ["insert", "ignore"])
@pytest.mark.parametrize("by_source", ["ignore", "delete"])
def test_merge_clauses_match_the_oracle(lake, spark, table, matched, not_matched, by_source):
    source = [{"id": 2, "name": "B", "score": 20.0}, {"id": 4, "name": "D", "score": 40.0}]
    df = spark.createDataFrame([(r["id"], r["name"], r["score"]) for r in source], "id long, name string, score double")
    res = lake.merge(
        table, df, on="id", when_matched=matched, when_not_matched=not_matched, when_not_matched_by_source=by_source
    )
    expected = oracle(TARGET, source, ["id"], matched=matched, not_matched=not_matched, by_source=by_source)
    assert rows(lake.read(table)) == expected
    assert res.version == lake.latest_version(table)
    assert res.num_source_rows == 2


def test_update_keeps_columns_the_source_does_not_carry(lake, spark, table):
    lake.merge(table, spark.createDataFrame([(1, 9.0)], "id long, score double"), on="id")
    assert rows(lake.read(table))[0] == {"id": 1, "name": "a", "score": 9.0, "keep": "k1"}


def test_update_columns_limits_what_is_updated(lake, spark, table):
    df = spark.createDataFrame([(1, "X", 9.0)], "id long, name string, score double")
    lake.merge(table, df, on="id", update_columns=["score"])
    assert rows(lake.read(table))[0] == {"id": 1, "name": "a", "score": 9.0, "keep": "k1"}
    with pytest.raises(ValueError, match="update_columns"):
        lake.merge(table, df, on="id", update_columns=["id"])


@pytest.mark.parametrize("source", ["rows", "pandas"])  # pandas: rows on the driver, checked without a job
def test_duplicate_source_keys_are_refused_by_name(lake, spark, table, source):
    data = [(5, "x", 1.0), (5, "y", 2.0), (1, "z", 0.0), (1, "w", 0.0), (7, "u", 0.0)]
    if source == "pandas":
        data = pd.DataFrame(data, columns=["id", "name", "score"])
    df = spark.createDataFrame(data, "id long, name string, score double")
    assert df.isLocal() == (source == "pandas")
    before = lake.latest_version(table)
    with pytest.raises(DuplicateKeyError) as info:
        lake.merge(table, df, on="id", when_matched="ignore")  # even when matched rows are only inserted
    assert info.value.count == 2
    assert sorted(info.value.examples) == [(1,), (5,)]
    assert "id=5" in str(info.value) and "id=1" in str(info.value)
    assert lake.latest_version(table) == before


def test_unique_keys_from_pandas_merge(lake, spark, table):
    pdf = pd.DataFrame({"id": [2, 9], "name": ["B", "i"], "score": [20.0, 90.0]})
    lake.merge(table, spark.createDataFrame(pdf, "id long, name string, score double"), on="id")
    assert [(r["id"], r["name"], r["keep"]) for r in rows(lake.read(table))] == [
        (1, "a", "k1"),
        (2, "B", "k2"),
        (3, "c", "k3"),
        (9, "i", None),
    ]


def test_multi_column_keys(lake, spark):
    lake.create_table("mk", spark.createDataFrame([(1, "x", 1.0), (1, "y", 2.0)], "a long, b string, v double"))
    lake.merge(
        "mk", spark.createDataFrame([(1, "y", 20.0), (2, "y", 3.0)], "a long, b string, v double"), on=["a", "b"]
    )
    got = sorted((r.a, r.b, r.v) for r in lake.read("mk").collect())
    assert got == [(1, "x", 1.0), (1, "y", 20.0), (2, "y", 3.0)]


def test_merge_schema_errors(lake, spark, table):
    with pytest.raises(SchemaMismatchError, match="required column 'id' is missing"):
        lake.merge(table, spark.createDataFrame([("x",)], "name string"), on="id")
    with pytest.raises(SchemaMismatchError, match="'score' is string"):
        lake.merge(table, spark.createDataFrame([(1, "x")], "id long, score string"), on="id")
    with pytest.raises(ValueError, match="when_matched='upsert'"):
        lake.merge(table, spark.createDataFrame([(1,)], "id long"), on="id", when_matched="upsert")


def test_merge_with_schema_evolution(lake, spark, table):
    df = spark.createDataFrame([(1, 5.0, "new"), (9, 9.0, "nine")], "id long, score double, extra string")
    with pytest.raises(SchemaMismatchError, match="'extra'"):
        lake.merge(table, df, on="id")
    lake.merge(table, df, on="id", schema_evolution=True)
    got = {r.id: r.asDict() for r in lake.read(table).collect()}
    assert got[1] == {"id": 1, "name": "a", "score": 5.0, "keep": "k1", "extra": "new"}
    assert got[2]["extra"] is None and got[9]["extra"] == "nine"


def test_merge_into_partitioned_table(lake, spark):
    lake.create_table(
        "pm", spark.createDataFrame([(1, "x", 1.0), (2, "y", 2.0)], "id long, p string, v double"), partition_by="p"
    )
    lake.merge("pm", spark.createDataFrame([(2, "y", 20.0), (3, "x", 3.0)], "id long, p string, v double"), on="id")
    expected = spark.createDataFrame([(1, "x", 1.0), (2, "y", 20.0), (3, "x", 3.0)], "id long, p string, v double")
    assert_df_equality(lake.read("pm"), expected, ignore_row_order=True, ignore_nullable=True)


def test_a_conditional_delete_by_source_replaces_one_window_in_one_commit(lake, spark):
    days = [datetime(2026, 1, d, tzinfo=UTC) for d in (1, 2, 3, 4)]
    lake.create_table(
        "w",
        spark.createDataFrame(
            [(i + 1, d, float(i + 1)) for i, d in enumerate(days)], "id long, ts timestamp, v double"
        ),
    )
    before = lake.latest_version("w")
    # The window [Jan 2, Jan 4) is rescored: id 2 again, id 3 gone upstream; ids 1 and 4 lie outside it.
    window = "t.`ts` >= TIMESTAMP '2026-01-02T00:00:00Z' AND t.`ts` < TIMESTAMP '2026-01-04T00:00:00Z'"
    res = lake.merge(
        "w",
        spark.createDataFrame([(2, days[1], 20.0)], "id long, ts timestamp, v double"),
        on="id",
        when_not_matched_by_source="delete",
        not_matched_by_source_condition=window,
    )
    assert res.version == before + 1 == lake.latest_version("w")
    assert [(r["id"], r["v"]) for r in rows(lake.read("w"))] == [(1, 1.0), (2, 20.0), (4, 4.0)]
    assert (res.num_target_rows_updated, res.num_target_rows_deleted) == (1, 1)


def test_a_by_source_condition_needs_the_delete_clause_and_a_predicate(lake, spark, table):
    df = spark.createDataFrame([(1, "a", 1.0)], "id long, name string, score double")
    before = lake.latest_version(table)
    with pytest.raises(InvalidArgumentError, match="when_not_matched_by_source='delete'"):
        lake.merge(table, df, on="id", not_matched_by_source_condition="t.id > 1")
    with pytest.raises(InvalidArgumentError, match="SQL predicate"):
        lake.merge(table, df, on="id", when_not_matched_by_source="delete", not_matched_by_source_condition=" ")
    with pytest.raises(InvalidArgumentError, match="not_matched_by_source_condition"):
        lake.merge(
            table, df, on="id", when_not_matched_by_source="delete", not_matched_by_source_condition="t.nope >>> 1"
        )
    assert lake.latest_version(table) == before
