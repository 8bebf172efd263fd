"""The Lakehouse API with bad arguments: typed errors of one family naming the argument, and nothing written."""

from __future__ import annotations

import pytest

from lakehouse import Lakehouse
from lakehouse.errors import ArgumentTypeError, InvalidArgumentError, LakehouseError

CALLS = [
    # (call, error, argument)
    (lambda lh, df: lh.create_table("x", df, schema="id long"), InvalidArgumentError, "df/schema"),
    (lambda lh, df: lh.create_table("x"), InvalidArgumentError, "df/schema"),
    (lambda lh, df: lh.create_table("x", schema=3), ArgumentTypeError, "schema"),
    (lambda lh, df: lh.create_table("x", df, partition_by="nope"), InvalidArgumentError, "partition_by"),
    (lambda lh, df: lh.create_table("x", df, partition_by=3), ArgumentTypeError, "partition_by"),
    (lambda lh, df: lh.create_table("x", [1, 2]), ArgumentTypeError, "df"),
    (lambda lh, df: lh.read("t", version=0, timestamp="2026-01-01"), InvalidArgumentError, "version/timestamp"),
    (lambda lh, df: lh.read("t", version=0, versionAsOf=0), InvalidArgumentError, "version/versionAsOf"),
    (lambda lh, df: lh.read("t", version="0"), ArgumentTypeError, "version"),
    (lambda lh, df: lh.read("t", timestamp="yesterday"), InvalidArgumentError, "timestamp"),
    (lambda lh, df: lh.read("t", timestamp=3.5), ArgumentTypeError, "timestamp"),
    (lambda lh, df: lh.history("t", limit=0), InvalidArgumentError, "limit"),
    (lambda lh, df: lh.append("t", "not a frame"), ArgumentTypeError, "df"),
    (lambda lh, df: lh.merge("t", df, on=[]), InvalidArgumentError, "on"),
    (lambda lh, df: lh.merge("t", df, on="id", when_matched="upsert"), InvalidArgumentError, "when_matched"),
    (lambda lh, df: lh.merge("t", df, on="id", update_columns=["id"]), InvalidArgumentError, "update_columns"),
    (lambda lh, df: lh.restore("t"), InvalidArgumentError, "version/timestamp"),
    (lambda lh, df: lh.optimize("t", target_size=0), InvalidArgumentError, "target_size"),
    (lambda lh, df: lh.optimize("t", target_size=True), InvalidArgumentError, "target_size"),
    (lambda lh, df: lh.optimize("t", z_order_by="nope"), InvalidArgumentError, "z_order_by"),
    (lambda lh, df: lh.vacuum("t", retention_hours=float("nan")), InvalidArgumentError, "retention_hours"),
    (lambda lh, df: lh.vacuum("t", retention_hours=-1), InvalidArgumentError, "retention_hours"),
]


@pytest.fixture(scope="module", params=["deltalake", "delta-spark"])
def lake_with_t(request, spark, tmp_path_factory):
    """One lake per engine for the whole module, holding table `t`: every call below must leave it unchanged."""
    lake = Lakehouse(tmp_path_factory.mktemp("lake"), spark=spark, engine=request.param)
    df = spark.createDataFrame([(1, "a")], "id long, v string")
    lake.create_table("t", df)
    return lake, df


@pytest.mark.parametrize(("call", "error", "argument"), CALLS, ids=[f"{i}-{c[2]}" for i, c in enumerate(CALLS)])
def test_bad_argument_is_refused_by_name_and_writes_nothing(lake_with_t, call, error, argument):
    lake, df = lake_with_t
    before = lake.history("t")
    with pytest.raises(error) as info:
        call(lake, df)
    assert isinstance(info.value, LakehouseError)
    assert info.value.argument == argument
    assert lake.history("t") == before
    assert [t.name for t in lake.list_tables()] == ["t"]


def test_a_lakehouse_without_a_root_names_the_fix(monkeypatch):
    monkeypatch.delenv("LAKEHOUSE_ROOT", raising=False)
    with pytest.raises(InvalidArgumentError, match=r"LAKEHOUSE_ROOT") as info:
        Lakehouse()
    assert info.value.argument == "root"
