"""A feature table written by one Delta engine is read and merged by the other, both ways round.

Each merge is checked against a dict oracle of the expected rows (keyed by the table's keys), read through
each engine; each commit's `commitInfo` must name the engine that made it (delta-spark: `engineInfo`
'Apache-Spark/... Delta-Lake/...'; delta-rs: 'delta-rs' in `engineInfo` or `clientVersion`), so a silent
fallback from one engine to the other cannot pass.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from interop_helpers import commit_info, is_delta_spark_commit, latest_version

from feature_store import FeatureStoreClient

NAME = "features.customers"
DDL = "id long, ts timestamp, x double, name string"
T0 = datetime(2024, 3, 10, 6, 30, tzinfo=UTC)  # the night US clocks change: local time is no help
T1 = datetime(2024, 3, 10, 7, 30, tzinfo=UTC)
OTHER = {"deltalake": "delta-spark", "delta-spark": "deltalake"}


def us(t: datetime) -> int:
    return int(t.timestamp()) * 1_000_000


def engine_of(info: dict) -> str:
    if is_delta_spark_commit(info):
        return "delta-spark"
    if "delta-rs" in (info.get("engineInfo") or "") + (info.get("clientVersion") or ""):
        return "deltalake"
    return f"unknown ({info.get('engineInfo')!r}, {info.get('clientVersion')!r})"


def client(root, spark, monkeypatch, engine: str) -> FeatureStoreClient:
    """A feature store client whose lakehouse picks `engine` from $LAKEHOUSE_ENGINE, as a user would set it."""
    monkeypatch.setenv("LAKEHOUSE_ENGINE", engine)
    fs = FeatureStoreClient(root, spark=spark)
    assert fs.lakehouse.engine == engine
    return fs


def rows(fs: FeatureStoreClient) -> dict[tuple[int, int], tuple[float | None, str | None]]:
    """The table's rows as {(id, ts in UTC microseconds): (x, name)} (no time zone conversion on the way)."""
    got = fs.read_table(NAME).selectExpr("id", "unix_micros(ts) AS ts", "x", "name").collect()
    out = {(r.id, r.ts): (r.x, r.name) for r in got}
    assert len(out) == len(got), f"duplicate keys in {got}"
    return out


def frame(spark, data: list[tuple], ddl: str = DDL):
    """A DataFrame from rows whose timestamps are UTC-aware datetimes, converted by Spark without local time."""
    df = spark.createDataFrame(
        [tuple(us(v) if isinstance(v, datetime) else v for v in r) for r in data],
        ddl.replace("ts timestamp", "ts long"),
    )
    return df.selectExpr(*["timestamp_micros(ts) AS ts" if c == "ts" else c for c in df.columns])


@pytest.mark.slow
@pytest.mark.parametrize("first", ["deltalake", "delta-spark"])
def test_create_and_merge_with_one_engine_then_the_other(tmp_path, delta_spark, monkeypatch, first):
    spark, second = delta_spark, OTHER[first]
    root = str(tmp_path / "lake")
    made: dict[int, str] = {}  # version -> engine expected in its commitInfo

    fs = {first: client(root, spark, monkeypatch, first)}
    initial = [(1, T0, 1.0, "a"), (2, T0, 2.0, "b"), (2, T1, 2.5, "b")]
    fs[first].create_table(NAME, primary_keys="id", timestamp_keys="ts", df=frame(spark, initial))
    path = fs[first].lakehouse.table_path(NAME)
    made[0] = first
    oracle = {(i, us(t)): (x, n) for i, t, x, n in initial}
    assert rows(fs[first]) == oracle

    # first engine: update (2, T1), insert (3, T0)
    made[fs[first].write_table(NAME, frame(spark, [(2, T1, 20.5, "B"), (3, T0, 3.0, "c")]), mode="merge")] = first
    oracle |= {(2, us(T1)): (20.5, "B"), (3, us(T0)): (3.0, "c")}
    assert rows(fs[first]) == oracle

    # second engine reads it, merges a partial update (x only: name is kept) and an insert
    fs[second] = client(root, spark, monkeypatch, second)
    assert rows(fs[second]) == oracle
    made[
        fs[second].write_table(
            NAME, frame(spark, [(1, T0, 10.0), (4, T1, 4.0)], "id long, ts timestamp, x double"), mode="merge"
        )
    ] = second
    oracle |= {(1, us(T0)): (10.0, "a"), (4, us(T1)): (4.0, None)}
    assert rows(fs[second]) == oracle

    # and back: the first engine reads what the second wrote, and merges again
    assert rows(fs[first]) == oracle
    made[fs[first].write_table(NAME, frame(spark, [(4, T1, 40.0, "d"), (5, T1, 5.0, "e")]), mode="merge")] = first
    oracle |= {(4, us(T1)): (40.0, "d"), (5, us(T1)): (5.0, "e")}
    assert rows(fs[first]) == oracle
    assert rows(fs[second]) == oracle

    assert sorted(made) == list(range(latest_version(path) + 1)), (
        f"commits {sorted(made)} vs log {latest_version(path)}"
    )
    engines = {v: engine_of(commit_info(path, v)) for v in made}
    assert engines == made
