"""The online store (SQLite and a real redis-server): published values equal the latest offline values per key,
incremental publishes write only changed keys, lookups rename / default / batch like the offline path, types
round-trip exactly, and bad input is refused with nothing written.

The oracles are independent of the code under test: pandas' groupby/idxmax over `fs.read_table(...)`, Spark's
own `toArrow()` of the table, and the offline training set for renames and defaults. Spark writes are the slow
part of these tests, so the flows that change a table publish to both stores at each step (one table history,
two stores checked), and the read-only tests share one module-wide lake published to both.
"""

from __future__ import annotations

import dataclasses
import os
import random
import sqlite3
import uuid
from decimal import Decimal

import pandas as pd
import pyarrow as pa
import pytest
import redis_server
from feature_store_helpers import FEATURES_SCHEMA, ts

from feature_store import FeatureLookup, FeatureStoreClient, errors
from feature_store import _online_stores as stores_module
from feature_store._online import RedisOnlineStore, SqliteOnlineStore, get_online_features, publish_table

ENV = (
    "LAKEHOUSE_ONLINE_SQLITE_PATH",
    "LAKEHOUSE_REDIS_HOST",
    "LAKEHOUSE_REDIS_PORT",
    "LAKEHOUSE_REDIS_DB",
    "LAKEHOUSE_REDIS_PASSWORD",
)
ABSENT = [1000, 1001]


@pytest.fixture(autouse=True)
def no_store_env(monkeypatch):
    for var in ENV:
        monkeypatch.delenv(var, raising=False)


def _redis_store(redis) -> RedisOnlineStore:
    return RedisOnlineStore(port=redis.port, prefix=f"t{uuid.uuid4().hex[:8]}")


@pytest.fixture
def both(redis):
    """One store of each kind, fresh (the SQLite file under the test's lake, a Redis prefix of its own)."""
    return {"sqlite": SqliteOnlineStore(), "redis": _redis_store(redis)}


def _rows(seed: int, keys: range, days: tuple[int, ...]) -> list[tuple]:
    rnd = random.Random(seed)
    out = []
    for k in keys:
        for d in rnd.sample(days, rnd.randint(1, len(days))):
            out.append(
                (k, ts(d), round(rnd.uniform(-9, 9), 3), None if rnd.random() < 0.2 else float(rnd.randint(0, 9)))
            )
    return out


def _offline_latest(fs, name: str, key: str = "customer_id", time_col: str | None = "ts") -> dict:
    """{key: (f1, f2)} of the row with the greatest timestamp per key (or the one row): pandas over read_table."""
    pdf = fs.read_table(name).toPandas()
    if time_col is not None:
        pdf = pdf.loc[pdf.groupby(key)[time_col].idxmax()]
    return {int(r[key]): tuple(None if pd.isna(r[f]) else float(r[f]) for f in ("f1", "f2")) for _, r in pdf.iterrows()}


def _online(fs, store, name: str, keys: list[int], key: str = "customer_id") -> dict:
    got = get_online_features(fs.lakehouse, fs._meta, store, [FeatureLookup(name, key)], [{key: k} for k in keys])
    assert got[key].tolist() == keys
    return {
        k: tuple(None if pd.isna(v) else v for v in (f1, f2)) for k, f1, f2 in zip(keys, got.f1, got.f2, strict=True)
    }


def _assert_stores_match(fs, stores, name: str, expected: dict) -> None:
    """Every store returns `expected` (the oracle) for its keys, and nulls for keys never written."""
    keys = sorted(expected) + ABSENT
    for store in stores:
        assert _online(fs, store, name, keys) == {**expected, **dict.fromkeys(ABSENT, (None, None))}, store


def test_publishes_track_the_offline_table_full_incremental_and_deletes(fs, spark, both, redis):
    fs.create_table(
        name="cf",
        primary_keys="customer_id",
        timestamp_keys="ts",
        df=spark.createDataFrame(rows := _rows(1, range(40), (1, 2, 3, 4)), FEATURES_SCHEMA),
    )
    for store in both.values():  # the first merge publish has nothing to start from: a full one
        r = publish_table(fs.lakehouse, fs._meta, "cf", store)
        assert (r.full, r.from_version, r.to_version, r.keys_written, r.keys_deleted) == (True, None, 0, 40, 0)
    expected = _offline_latest(fs, "cf")
    _assert_stores_match(fs, both.values(), "cf", expected)

    # 3 keys get a newer row, 2 keys are new, key 7's latest row is corrected in place (MERGE rewrites its file,
    # copying the other rows unchanged): an incremental publish writes those 6 keys and nothing else
    change = [
        (1, ts(9), 1.5, 1.0),
        (2, ts(9), 2.5, None),
        (3, ts(9), 3.5, 3.0),
        (50, ts(1), 50.0, 5.0),
        (51, ts(2), 51.0, None),
        (7, max(t for k, t, *_ in rows if k == 7), 77.7, 7.0),
    ]
    fs.write_table("cf", spark.createDataFrame(change, FEATURES_SCHEMA), mode="merge")
    for store in both.values():
        r = publish_table(fs.lakehouse, fs._meta, "cf", store)
        assert (r.full, r.from_version, r.to_version, r.keys_written, r.keys_deleted) == (False, 0, 1, 6, 0)
    expected = _offline_latest(fs, "cf")
    _assert_stores_match(fs, both.values(), "cf", expected)

    # every row of keys 4 and 5 and the latest row of key 6 deleted offline (a Delta MERGE ... DELETE)
    six = sorted(t for k, t, *_ in rows if k == 6)
    doomed = [(k, t) for k, t, *_ in rows if k in (4, 5)] + [(6, six[-1])]
    fs.lakehouse.merge(
        "cf",
        spark.createDataFrame(doomed, "customer_id long, ts timestamp"),
        on=["customer_id", "ts"],
        when_matched="delete",
        when_not_matched="ignore",
    )
    six_left = len(six) > 1  # then key 6 is re-written with its older row; else deleted too
    for store in both.values():
        r = publish_table(fs.lakehouse, fs._meta, "cf", store)
        assert (r.full, r.keys_deleted, r.keys_written) == (False, 2 + (not six_left), int(six_left))
    expected = _offline_latest(fs, "cf")
    _assert_stores_match(fs, both.values(), "cf", expected)

    # an overwrite publish copies everything again and keeps the store equal to the table
    for store in both.values():
        r = publish_table(fs.lakehouse, fs._meta, "cf", store, mode="overwrite")
        assert (r.full, r.keys_deleted, r.keys_written) == (True, 0, len(expected))
    _assert_stores_match(fs, both.values(), "cf", expected)

    # a Redis that lost the table's rows (a restart without persistence) gets a full publish, not a partial one
    redis.client().delete(f"{both['redis'].prefix}:cf")
    r = publish_table(fs.lakehouse, fs._meta, "cf", both["redis"])
    assert (r.full, r.from_version) == (True, None)
    _assert_stores_match(fs, [both["redis"]], "cf", expected)  # the table is unchanged since the delete

    records = fs._meta.publishes("cf")
    assert [(p.full, p.to_version) for p in records] == [(True, 0)] * 2 + [(False, 1)] * 2 + [(False, 2)] * 2 + [
        (True, 2)
    ] * 3
    assert records[-1].id == r.publish_id


# -- read-only tests on one lake published to both stores ----------------------------------------------------
TYPED = (
    "id int, b boolean, i int, l long, fl float, d double, s string, dt date, t timestamp, tn timestamp_ntz, "
    "dec decimal(12,3), bin binary, arr array<long>, arr_s array<string>, m map<string,bigint>, st struct<a:int,b:string>"
)


@pytest.fixture(scope="module")
def published(tmp_path_factory, spark, redis):
    from datetime import date, datetime

    fs = FeatureStoreClient(root=str(tmp_path_factory.mktemp("online") / "lake"), spark=spark)
    fs.create_table(
        name="many",
        primary_keys="customer_id",
        df=spark.createDataFrame(
            [(k, k / 4, None if k % 3 else k * 2.0) for k in range(1000)], "customer_id long, f1 double, f2 double"
        ),
    )
    typed = [
        (
            1,
            True,
            -(2**31),
            2**62,
            1.100000023841858,
            -0.0,
            "é\u00a0x",
            date(1969, 12, 31),
            datetime(1960, 3, 1, 12, 30, 0, 123456),
            datetime(2026, 7, 1, 23, 59, 59, 999999),
            Decimal("-123456789.120"),
            b"\x00\xff",
            [1, None, 3],
            ["a", None],
            {"x": 1, "y": None},
            (5, "q"),
        ),
        (
            2,
            False,
            7,
            -1,
            float("inf"),
            float("nan"),
            "",
            date(2026, 1, 1),
            datetime(2026, 1, 1),
            datetime(1970, 1, 1),
            Decimal("0.001"),
            b"",
            [],
            [],
            {},
            (None, None),
        ),
        (3, *[None] * 15),
    ]
    fs.create_table(name="typed", primary_keys="id", df=spark.createDataFrame(typed, TYPED))
    stores = {"sqlite": SqliteOnlineStore(), "redis": _redis_store(redis)}
    for store in stores.values():
        for name in ("many", "typed"):
            publish_table(fs.lakehouse, fs._meta, name, store)
    return fs, stores


@pytest.fixture(params=["sqlite", "redis"])
def kind(request) -> str:
    return request.param


def test_renames_defaults_and_missing_keys_as_the_training_set_applies_them(published, kind, spark):
    fs, stores = published
    lookups = [
        FeatureLookup(
            "many", "cid", feature_names=["f2"], rename_outputs={"f2": "f2_or_minus_one"}, default_values={"f2": -1}
        ),
        FeatureLookup("many", "cid", feature_names=["f1"], rename_outputs={"f1": "spend"}),
    ]
    keys = pd.DataFrame({"cid": [0, 1, 3, 999, 5000, -1], "other": list("abcdef")})
    before = keys.copy()
    got = get_online_features(fs.lakehouse, fs._meta, stores[kind], lookups, keys)
    pd.testing.assert_frame_equal(keys, before)  # the caller's frame is left alone
    offline = (
        fs.create_training_set(df=spark.createDataFrame(keys), feature_lookups=lookups, label=None).load_df().toPandas()
    )
    offline = offline.set_index("cid").loc[keys.cid]
    assert list(got.columns) == ["cid", "other", "f2_or_minus_one", "spend"]
    assert got.f2_or_minus_one.tolist() == offline.f2_or_minus_one.tolist()  # defaults fill misses and stored nulls
    assert [None if pd.isna(v) else v for v in got.spend] == [None if pd.isna(v) else v for v in offline.spend]
    assert got.f2_or_minus_one.tolist() == [0.0, -1.0, 6.0, 1998.0, -1.0, -1.0]  # by eye, from the rows above


def test_a_thousand_keys_are_one_batched_read(published, kind, redis, monkeypatch):
    fs, stores = published
    statements: list[str] = []
    real_connect = sqlite3.connect

    def traced(*args, **kwargs):
        conn = real_connect(*args, **kwargs)
        conn.set_trace_callback(statements.append)
        return conn

    monkeypatch.setattr(stores_module.sqlite3, "connect", traced)
    stores_module.close_readers()  # lookups keep their connection: open a traced one
    info = redis.client()
    hmget_before = info.info("commandstats").get("cmdstat_hmget", {}).get("calls", 0)
    keys = list(range(500, 1500))  # 500 published, 500 not
    got = get_online_features(
        fs.lakehouse, fs._meta, stores[kind], [FeatureLookup("many", "customer_id")], [{"customer_id": k} for k in keys]
    )
    assert got.f1.tolist()[:500] == [k / 4 for k in range(500, 1000)]
    assert got.f1.isna().tolist() == [False] * 500 + [True] * 500
    if kind == "redis":
        assert info.info("commandstats")["cmdstat_hmget"]["calls"] - hmget_before == 1
    else:
        reads = [s for s in statements if s.startswith("SELECT key, value")]
        assert len(reads) == 2  # 500 keys per IN (...)


def test_values_round_trip_their_spark_types(published, kind):
    fs, stores = published
    got = get_online_features(
        fs.lakehouse, fs._meta, stores[kind], [FeatureLookup("typed", "id")], pd.DataFrame({"id": [1, 2, 3]})
    )
    offline = fs.read_table("typed").orderBy("id").toArrow()
    for name in offline.column_names[1:]:
        online = pa.array(got[name])
        assert online.type == offline.schema.field(name).type, name
        want, have = offline.column(name).to_pylist(), online.to_pylist()
        if name == "d":  # NaN != NaN, and -0.0 == 0.0: compare bit for bit
            assert [repr(v) for v in have] == [repr(v) for v in want]
        else:
            assert have == want, name


def test_environment_overrides_where_the_store_is(published, monkeypatch, redis, tmp_path):
    fs, stores = published
    monkeypatch.setenv("LAKEHOUSE_REDIS_PORT", str(redis.port))
    moved = RedisOnlineStore(port=1, prefix=stores["redis"].prefix)  # as logged elsewhere; served here
    got = get_online_features(
        fs.lakehouse, fs._meta, moved, [FeatureLookup("many", "customer_id")], [{"customer_id": 8}]
    )
    assert got.f1.tolist() == [2.0]
    monkeypatch.setenv("LAKEHOUSE_ONLINE_SQLITE_PATH", str(tmp_path / "elsewhere.sqlite"))
    with pytest.raises(errors.OnlineTableNotPublishedError, match=r"elsewhere\.sqlite"):
        get_online_features(
            fs.lakehouse, fs._meta, SqliteOnlineStore(), [FeatureLookup("many", "customer_id")], [{"customer_id": 8}]
        )


def test_bad_input_is_refused_and_writes_nothing(published, redis, tmp_path):
    fs, _ = published
    lake, meta = fs.lakehouse, fs._meta
    both = {
        "sqlite": SqliteOnlineStore(str(tmp_path / "fresh.sqlite")),
        "redis": _redis_store(redis),
    }  # "many" unpublished
    records = meta.publishes("many")
    for store in both.values():
        with pytest.raises(errors.FeatureTableNotFoundError, match="'nope' not found"):
            publish_table(lake, meta, "nope", store)
        with pytest.raises(errors.InvalidArgumentError, match="mode must be one of"):
            publish_table(lake, meta, "many", store, mode="append")
        with pytest.raises(errors.FeatureNotFoundError, match="f9"):
            publish_table(lake, meta, "many", store, features=["f1", "f9"])
        with pytest.raises(errors.OnlineTableNotPublishedError, match="publish_table"):
            get_online_features(lake, meta, store, [FeatureLookup("many", "customer_id")], [{"customer_id": 1}])
    with pytest.raises(errors.ArgumentTypeError, match="SqliteOnlineStore"):
        publish_table(lake, meta, "many", "sqlite")
    with pytest.raises(errors.ArgumentTypeError, match="online_store"):
        get_online_features(lake, meta, {"type": "redis"}, [FeatureLookup("many", "customer_id")], [{"customer_id": 1}])
    with pytest.raises(errors.OnlineStoreUnavailableError, match=r"127\.0\.0\.1:1/0"):
        publish_table(lake, meta, "many", RedisOnlineStore(port=1))
    # nothing reached either store, and no publish was recorded
    path = both["sqlite"].resolved_path(lake.root)
    assert not os.path.exists(path) or _sqlite_rows(path) == 0
    assert redis.client().keys(f"{both['redis'].prefix}:*") == []
    assert meta.publishes("many") == records

    for store in both.values():
        publish_table(lake, meta, "many", store, features=["f1"])
        for bad, err, text in [
            ([FeatureLookup("nope", "customer_id")], errors.FeatureTableNotFoundError, "'nope' not found"),
            (
                [FeatureLookup("many", "cid")],
                errors.ColumnNotFoundError,
                r"lookup_key column\(s\) \['cid'\] are not in keys",
            ),
            ([FeatureLookup("many", ["customer_id", "x"])], errors.LookupKeyError, "2 lookup column"),
            (
                [FeatureLookup("many", "customer_id", feature_names="f2")],
                errors.FeatureNotPublishedError,
                "f2.*holds f1",
            ),
            ([FeatureLookup("many", "customer_id", default_values={"f1": "x"})], errors.ColumnTypeError, "default"),
            (
                [FeatureLookup("many", "customer_id", rename_outputs={"f1": "customer_id"})],
                errors.OutputNameConflictError,
                "customer_id",
            ),
        ]:
            with pytest.raises(err, match=text):
                get_online_features(lake, meta, store, bad, [{"customer_id": 1}])
        with pytest.raises(errors.ColumnTypeError, match="bigint"):
            get_online_features(lake, meta, store, [FeatureLookup("many", "customer_id")], [{"customer_id": "1"}])
        with pytest.raises(errors.ArgumentTypeError, match="keys"):
            get_online_features(lake, meta, store, [FeatureLookup("many", "customer_id")], "customer_id=1")


def _sqlite_rows(path: str) -> int:
    with sqlite3.connect(path) as db:
        return db.execute("SELECT count(*) FROM fs_online_rows").fetchone()[0]


def test_redis_password_comes_from_the_environment_and_is_never_stored(published, tmp_path, monkeypatch):
    fs, _ = published
    secret = "s3cret-" + uuid.uuid4().hex
    server = redis_server.start(tmp_path / "redis-auth", password=secret)
    try:
        store = RedisOnlineStore(port=server.port, password_env="TEST_ONLINE_REDIS_PASSWORD")
        monkeypatch.delenv("TEST_ONLINE_REDIS_PASSWORD", raising=False)
        with pytest.raises(errors.OnlineStoreUnavailableError, match=r"set \$TEST_ONLINE_REDIS_PASSWORD"):
            publish_table(fs.lakehouse, fs._meta, "many", store)
        monkeypatch.setenv("TEST_ONLINE_REDIS_PASSWORD", secret)
        r = publish_table(fs.lakehouse, fs._meta, "many", store)
        lookup = [FeatureLookup("many", "customer_id")]
        got = get_online_features(fs.lakehouse, fs._meta, store, lookup, [{"customer_id": 8}])
        assert got.f1.tolist() == [2.0]
        stored = [server.client().hget("fs:many", "@meta"), repr(store), repr(r), repr(fs._meta.publishes("many"))]
        assert not any(secret in str(s) for s in stored)
    finally:
        server.stop()


def test_a_publish_that_lost_a_race_writes_nothing(published, kind):
    """An incremental write is conditional on the rows held being the ones it was computed from; a full one on the
    store not holding a newer version of the table."""
    fs, stores = published
    lookup, keys = [FeatureLookup("many", "customer_id")], [{"customer_id": 1}]
    before = get_online_features(fs.lakehouse, fs._meta, stores[kind], lookup, keys)
    with stores[kind].connect(fs.lakehouse.root) as backend:
        held = backend.marker("many")
        assert held is not None
        with pytest.raises(errors.OnlinePublishConflictError, match="Call publish_table again"):
            backend.apply("many", held, [("[1]", "[-1.0,-1.0]")], ["[2]"], expected="another-publish")
        older = dataclasses.replace(held, version=held.version - 1, publish_id="slow-full-publish")
        with pytest.raises(errors.OnlinePublishConflictError):  # a full publish of an older version than held
            backend.replace("many", older, [("[1]", "[-1.0,-1.0]")])
        assert backend.marker("many") == held
    after = get_online_features(fs.lakehouse, fs._meta, stores[kind], lookup, keys)
    pd.testing.assert_frame_equal(after, before)


def test_a_kept_lookup_connection_follows_a_replaced_store_file(fs, spark, customer_features):
    """Lookups keep their SQLite connection; a store file deleted and published anew is reopened, not read stale."""
    lookup = [FeatureLookup(customer_features, "customer_id")]
    fs.publish_table(customer_features)
    assert fs.get_online_features(lookup, [{"customer_id": 2}]).f1.tolist() == [2.0]
    os.remove(SqliteOnlineStore().resolved_path(fs.lakehouse.root))
    fs.write_table(customer_features, spark.createDataFrame([(2, ts(9), 9.0, 90.0)], FEATURES_SCHEMA), mode="merge")
    fs.publish_table(customer_features)
    assert fs.get_online_features(lookup, [{"customer_id": 2}]).f1.tolist() == [9.0]
