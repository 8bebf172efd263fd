"""Hostile and malformed input to `lakehouse` (issue 16): each case is refused with a typed error of the
lakehouse family that names what was wrong, and nothing is written (every table's version and every file under
the lake unchanged); a damaged Delta log is answered by an error naming the damaged file, or read as delta-spark
reads it where Delta recovers (an unreadable checkpoint, a stale `_last_checkpoint`).

Cases already in test_bad_arguments.py are not repeated. Delta's reference behaviour for each damaged log (checked
with delta-spark 4.0 while writing this catalogue): a truncated or unparsable commit, a gap, a lost protocol or
metaData, an unknown reader feature and a deleted data file are errors naming the file; an empty commit is a
commit without actions; an unreadable checkpoint and a `_last_checkpoint` naming a missing, other or garbled
checkpoint are recovered from (an older checkpoint or the commits). The lean log does as delta-spark does;
deltalake 1.6 does not recover from a damaged checkpoint, so through the deltalake engine that case is an error
naming the checkpoint (its hint says how to let deltalake read the table again).
"""

from __future__ import annotations

import json
import math
import os
from datetime import UTC, date, datetime, timedelta, timezone

import pandas as pd
import pyarrow as pa
import pytest

from lakehouse import Lakehouse
from lakehouse._log import LeanTable
from lakehouse.errors import (
    ArgumentTypeError,
    CorruptTableError,
    DataFilesMissingError,
    DuplicateKeyError,
    InvalidArgumentError,
    InvalidTableNameError,
    LakehouseError,
    SchemaMismatchError,
    TableNotFoundError,
    TimestampOutOfRangeError,
    UnsupportedTableFeatureError,
    VersionNotFoundError,
)

ENGINES = ["deltalake", "delta-spark"]


def _df(lh, rows, ddl="id long, v string"):
    return lh.spark.createDataFrame(rows, ddl)


def _pdf(**cols):
    return pd.DataFrame(cols)


# -- (call, expected error, text the message must hold) --------------------------------------------------------
# `lh` is the engine's Lakehouse holding `t` (id long, v string: 2 rows) and `p` (id long, day string, partitioned
# by day); `out` is a folder outside the lake holding a Delta table `victim`, reachable through the symlink `evil`.
NAMES = [
    ("dotdot", lambda lh, out: lh.read(".."), InvalidTableNameError, "relative path"),
    ("dotdot-slash", lambda lh, out: lh.create_table("../x", schema="id long"), InvalidTableNameError, "relative"),
    ("nested-dotdot", lambda lh, out: lh.append("a/../../x", _df(lh, [(1, "a")])), InvalidTableNameError, "relative"),
    ("dot-prefix", lambda lh, out: lh.read(".t"), InvalidTableNameError, "relative"),
    ("url-encoded", lambda lh, out: lh.create_table("%2e%2e%2fx", schema="id long"), InvalidTableNameError, "%2e"),
    ("url-encoded-dots", lambda lh, out: lh.read("t.%2e%2e"), InvalidTableNameError, "each dot-separated"),
    ("backslash", lambda lh, out: lh.create_table("a\\..\\b", schema="id long"), InvalidTableNameError, "a\\\\"),
    ("nul-byte", lambda lh, out: lh.create_table("t\x00x", schema="id long"), InvalidTableNameError, "\\x00"),
    ("empty", lambda lh, out: lh.read(""), InvalidTableNameError, "empty"),
    ("blank", lambda lh, out: lh.drop_table("   "), InvalidTableNameError, "empty"),
    ("double-dot", lambda lh, out: lh.read("a..b"), InvalidTableNameError, "each dot-separated"),
    ("trailing-dot", lambda lh, out: lh.create_table("t.", schema="id long"), InvalidTableNameError, "t."),
    ("digit-first", lambda lh, out: lh.create_table("1t", schema="id long"), InvalidTableNameError, "letter"),
    ("space", lambda lh, out: lh.create_table("a b", schema="id long"), InvalidTableNameError, "a b"),
    ("sql-injection", lambda lh, out: lh.read("t; DROP TABLE t"), InvalidTableNameError, "DROP"),
    ("backtick", lambda lh, out: lh.create_table("t`x", schema="id long"), InvalidTableNameError, "t`x"),
    ("fullwidth-lookalike", lambda lh, out: lh.read("\uff54"), InvalidTableNameError, "\uff54"),
    (
        "cyrillic-lookalike",
        lambda lh, out: lh.create_table("t\u0430ble", schema="id long"),
        InvalidTableNameError,
        "t\u0430ble",
    ),
    ("very-long", lambda lh, out: lh.create_table("x" * 300, schema="id long"), InvalidTableNameError, "255 bytes"),
    ("very-long-utf8", lambda lh, out: lh.read("t." + "é" * 200), InvalidTableNameError, "each dot-separated"),
    ("int-name", lambda lh, out: lh.read(3), InvalidTableNameError, "expected a str"),
    ("none-name", lambda lh, out: lh.describe(None), InvalidTableNameError, "expected a str"),
    ("bytes-name", lambda lh, out: lh.read(b"t"), InvalidTableNameError, "expected a str"),
    ("list-name", lambda lh, out: lh.exists(["t"]), InvalidTableNameError, "expected a str"),
    ("symlink-read", lambda lh, out: lh.read("evil.victim"), InvalidTableNameError, "symbolic link"),
    ("symlink-drop", lambda lh, out: lh.drop_table("evil.victim"), InvalidTableNameError, "outside the lake"),
    ("symlink-create", lambda lh, out: lh.create_table("evil.new", schema="id long"), InvalidTableNameError, "evil"),
    ("absolute-missing", lambda lh, out: lh.read("/nonexistent/h5/t"), TableNotFoundError, "/nonexistent/h5/t"),
    ("file-uri-missing", lambda lh, out: lh.history("file:///nonexistent/h5/t"), TableNotFoundError, "nonexistent"),
    ("home-missing", lambda lh, out: lh.describe("~/nonexistent-h5-table"), TableNotFoundError, "nonexistent-h5"),
    ("unknown-table", lambda lh, out: lh.append("nope", _df(lh, [(1, "a")])), TableNotFoundError, "Tables under"),
]

TYPES = [
    ("read-version-float", lambda lh: lh.read("t", version=1.0), ArgumentTypeError, "float"),
    ("read-version-bool", lambda lh: lh.read("t", version=True), ArgumentTypeError, "bool"),
    ("read-versionAsOf-str", lambda lh: lh.read("t", versionAsOf="1"), ArgumentTypeError, "str"),
    ("read-timestamp-int", lambda lh: lh.read("t", timestamp=1700000000), ArgumentTypeError, "int"),
    ("read-timestampAsOf-list", lambda lh: lh.read("t", timestampAsOf=[2026]), ArgumentTypeError, "list"),
    ("history-limit-str", lambda lh: lh.history("t", limit="3"), InvalidArgumentError, "limit"),
    ("history-limit-float", lambda lh: lh.history("t", limit=2.5), InvalidArgumentError, "limit"),
    ("history-limit-negative", lambda lh: lh.history("t", limit=-1), InvalidArgumentError, "limit"),
    ("append-df-none", lambda lh: lh.append("t", None), ArgumentTypeError, "NoneType"),
    ("append-df-dict", lambda lh: lh.append("t", {"id": [1]}), ArgumentTypeError, "dict"),
    ("overwrite-df-rows", lambda lh: lh.overwrite("t", [(1, "a")]), ArgumentTypeError, "list"),
    ("merge-df-str", lambda lh: lh.merge("t", "select 1", on="id"), ArgumentTypeError, "str"),
    ("merge-on-int", lambda lh: lh.merge("t", _df(lh, [(1, "a")]), on=3), ArgumentTypeError, "on"),
    ("merge-on-list-of-int", lambda lh: lh.merge("t", _df(lh, [(1, "a")]), on=[1]), ArgumentTypeError, "on"),
    ("merge-on-empty-str", lambda lh: lh.merge("t", _df(lh, [(1, "a")]), on=[""]), ArgumentTypeError, "on"),
    (
        "merge-when-matched-none",
        lambda lh: lh.merge("t", _df(lh, [(1, "a")]), on="id", when_matched=None),
        InvalidArgumentError,
        "when_matched",
    ),
    (
        "merge-not-matched-bad",
        lambda lh: lh.merge("t", _df(lh, [(1, "a")]), on="id", when_not_matched="update"),
        InvalidArgumentError,
        "when_not_matched",
    ),
    (
        "merge-by-source-bad",
        lambda lh: lh.merge("t", _df(lh, [(1, "a")]), on="id", when_not_matched_by_source="update"),
        InvalidArgumentError,
        "when_not_matched_by_source",
    ),
    (
        "merge-condition-int",
        lambda lh: lh.merge(
            "t", _df(lh, [(1, "a")]), on="id", when_not_matched_by_source="delete", not_matched_by_source_condition=1
        ),
        InvalidArgumentError,
        "not_matched_by_source_condition",
    ),
    (
        "merge-condition-injection",
        lambda lh: lh.merge(
            "t",
            _df(lh, [(1, "a")]),
            on="id",
            when_not_matched_by_source="delete",
            not_matched_by_source_condition="1=1; DROP TABLE t",
        ),
        InvalidArgumentError,
        "not a SQL predicate",
    ),
    (
        "merge-condition-unknown-col",
        lambda lh: lh.merge(
            "t",
            _df(lh, [(1, "a")]),
            on="id",
            when_not_matched_by_source="delete",
            not_matched_by_source_condition="t.nope = 1",
        ),
        InvalidArgumentError,
        "nope",
    ),
    (
        "merge-update-columns-int",
        lambda lh: lh.merge("t", _df(lh, [(1, "a")]), on="id", update_columns=[3]),
        ArgumentTypeError,
        "update_columns",
    ),
    ("restore-version-str", lambda lh: lh.restore("t", version="0"), ArgumentTypeError, "str"),
    ("restore-version-bool", lambda lh: lh.restore("t", version=False), ArgumentTypeError, "bool"),
    ("restore-timestamp-float", lambda lh: lh.restore("t", timestamp=1.5), ArgumentTypeError, "float"),
    ("optimize-target-str", lambda lh: lh.optimize("t", target_size="1mb"), InvalidArgumentError, "target_size"),
    ("optimize-target-negative", lambda lh: lh.optimize("t", target_size=-5), InvalidArgumentError, "target_size"),
    ("optimize-zorder-int", lambda lh: lh.optimize("t", z_order_by=[1]), ArgumentTypeError, "z_order_by"),
    ("optimize-zorder-partition", lambda lh: lh.optimize("p", z_order_by="day"), InvalidArgumentError, "partition"),
    (
        "optimize-zorder-unknown-of-two",
        lambda lh: lh.optimize("t", z_order_by=["id", "nope"]),
        InvalidArgumentError,
        "nope",
    ),
    ("vacuum-retention-str", lambda lh: lh.vacuum("t", retention_hours="168"), InvalidArgumentError, "retention_hours"),
    (
        "vacuum-retention-inf",
        lambda lh: lh.vacuum("t", retention_hours=math.inf),
        InvalidArgumentError,
        "retention_hours",
    ),
    ("vacuum-retention-bool", lambda lh: lh.vacuum("t", retention_hours=True), InvalidArgumentError, "retention_hours"),
    (
        "vacuum-retention-short",
        lambda lh: lh.vacuum("t", retention_hours=1),
        LakehouseError,
        "enforce_retention_duration",
    ),
    ("data-files-version-str", lambda lh: lh.data_files("t", version="0"), LakehouseError, "version"),
    ("schema-version-beyond", lambda lh: lh.schema("t", version=99), LakehouseError, "99"),
    ("version-at-int", lambda lh: lh.version_at("t", 5), ArgumentTypeError, "int"),
    (
        "create-partition-int",
        lambda lh: lh.create_table("n", schema="id long", partition_by=[1]),
        ArgumentTypeError,
        "partition_by",
    ),
    ("create-ddl-garbage", lambda lh: lh.create_table("n", schema="id lonng,,"), LakehouseError, "lonng"),
    (
        "create-ddl-injection",
        lambda lh: lh.create_table("n", schema="id long) USING DELTA; DROP TABLE t; --"),
        LakehouseError,
        "DROP",
    ),
    (
        "create-df-and-schema",
        lambda lh: lh.create_table("n", _df(lh, [(1, "a")]), schema="id long"),
        InvalidArgumentError,
        "exactly one",
    ),
]

SCHEMAS = [
    (
        "append-wrong-type",
        lambda lh: lh.append("t", _df(lh, [("x", "a")], "id string, v string")),
        SchemaMismatchError,
        "id",
    ),
    (
        "append-narrowing",
        lambda lh: lh.append("t", _df(lh, [(1.5, "a")], "id double, v string")),
        SchemaMismatchError,
        "double",
    ),
    (
        "append-new-column",
        lambda lh: lh.append("t", _df(lh, [(1, "a", 2)], "id long, v string, w long")),
        SchemaMismatchError,
        "schema_evolution",
    ),
    (
        "append-case-duplicate",
        lambda lh: lh.append("t", _df(lh, [(1, "a", "b")], "id long, v string, V string")),
        SchemaMismatchError,
        "v",
    ),
    (
        "append-struct-for-string",
        lambda lh: lh.append("t", _df(lh, [(1, (1,))], "id long, v struct<a:int>")),
        SchemaMismatchError,
        "v",
    ),
    ("append-missing-partition", lambda lh: lh.append("p", _df(lh, [(1,)], "id long")), SchemaMismatchError, "day"),
    (
        "overwrite-schema-drops-partition",
        lambda lh: lh.overwrite("p", _df(lh, [(1,)], "id long"), overwrite_schema=True),
        SchemaMismatchError,
        "partition",
    ),
    (
        "create-void-column",
        lambda lh: lh.create_table("n", lh.spark.sql("select 1L as id, null as v")),
        SchemaMismatchError,
        "no type",
    ),
    (
        "create-duplicate-columns",
        lambda lh: lh.create_table("n", schema="id long, ID long"),
        SchemaMismatchError,
        "twice",
    ),
    (
        "merge-key-missing-in-source",
        lambda lh: lh.merge("t", _df(lh, [("a",)], "v string"), on="id"),
        SchemaMismatchError,
        "id",
    ),
    (
        "merge-key-not-in-table",
        lambda lh: lh.merge("t", _df(lh, [(1, "a", 2)], "id long, v string, k long"), on="k", schema_evolution=True),
        InvalidArgumentError,
        "k",
    ),
    (
        "merge-key-wrong-type",
        lambda lh: lh.merge("t", _df(lh, [("1", "a")], "id string, v string"), on="id"),
        SchemaMismatchError,
        "id",
    ),
    (
        "merge-duplicate-keys",
        lambda lh: lh.merge("t", _df(lh, [(5, "a"), (5, "b")]), on="id"),
        DuplicateKeyError,
        "id=5",
    ),
    (
        "merge-duplicate-keys-pandas",
        lambda lh: lh.merge("t", _pdf(id=[7, 7], v=["a", "b"]), on="id"),
        DuplicateKeyError,
        "id=7",
    ),
    (
        "merge-duplicate-composite",
        lambda lh: lh.merge("t", _df(lh, [(5, "a"), (5, "a")]), on=["id", "v"]),
        DuplicateKeyError,
        "v='a'",
    ),
    (
        "pandas-mixed-naive-aware",
        lambda lh: lh.append(
            "t",
            pd.DataFrame(
                {
                    "id": [1, 2],
                    "v": ["a", "b"],
                    "ts": pd.Series([datetime(2026, 1, 1), datetime(2026, 1, 1, tzinfo=UTC)], dtype=object),
                }
            ),
        ),
        InvalidArgumentError,
        "naive and timezone-aware",
    ),
]

TIME = [
    ("version-negative", lambda lh: lh.read("t", version=-1), VersionNotFoundError, "[0, 1]"),
    ("version-beyond-latest", lambda lh: lh.read("t", version=2), VersionNotFoundError, "latest is 1"),
    ("version-huge", lambda lh: lh.read("t", version=2**63), VersionNotFoundError, str(2**63)),
    ("restore-version-beyond", lambda lh: lh.restore("t", version=7), VersionNotFoundError, "7"),
    (
        "timestamp-before-first",
        lambda lh: lh.read("t", timestamp="2000-01-01"),
        TimestampOutOfRangeError,
        "before the first",
    ),
    (
        "timestamp-after-last",
        lambda lh: lh.read("t", timestamp=datetime.now(UTC) + timedelta(days=1)),
        TimestampOutOfRangeError,
        "after the latest",
    ),
    (
        "timestamp-year-9999-aware",
        lambda lh: lh.read("t", timestamp=datetime(9999, 12, 31, 23, tzinfo=timezone(timedelta(hours=-5)))),
        InvalidArgumentError,
        "years 1 to 9999",
    ),
    (
        "timestamp-year-1-aware",
        lambda lh: lh.read("t", timestamp=datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=5)))),
        InvalidArgumentError,
        "years 1 to 9999",
    ),
    ("timestamp-year-10000-str", lambda lh: lh.read("t", timestamp="10000-01-01"), InvalidArgumentError, "ISO 8601"),
    ("timestamp-date-before", lambda lh: lh.read("t", timestamp=date(1999, 1, 1)), TimestampOutOfRangeError, "1999"),
    (
        "timestamp-naive-and-aware-aliases",
        lambda lh: lh.read("t", timestamp=datetime(2026, 1, 1), timestampAsOf=datetime(2026, 1, 1, tzinfo=UTC)),
        InvalidArgumentError,
        "timestampAsOf",
    ),
    (
        "timestamp-garbage-offset",
        lambda lh: lh.read("t", timestamp="2026-01-01T00:00:00+25:00"),
        InvalidArgumentError,
        "ISO 8601",
    ),
    (
        "timestamp-injection",
        lambda lh: lh.read("t", timestamp="2026-01-01' OR '1'='1"),
        InvalidArgumentError,
        "ISO 8601",
    ),
    (
        "version-at-before-first",
        lambda lh: lh.version_at("t", "1990-01-01T00:00:00Z"),
        TimestampOutOfRangeError,
        "before",
    ),
]

CASES = [(c[0], (lambda f: lambda lh, out: f(lh))(c[1]), *c[2:]) for c in TYPES + SCHEMAS + TIME] + NAMES


@pytest.fixture(scope="module", params=ENGINES)
def hostile_lake(request, spark, tmp_path_factory):
    """One lake per engine: `t` at version 1, `p` partitioned by day; outside it, `victim`, linked in as `evil`.

    The default run tries the catalogue on delta-spark (the engine a Spark user gets), `--long` on both: the
    arguments are checked before either engine runs, and the damaged-log tests below read through both."""
    if request.param == "deltalake" and not request.config.getoption("--long"):
        pytest.skip("the catalogue on the deltalake engine runs under --long")
    base = tmp_path_factory.mktemp("hostile")
    lh = Lakehouse(base / "lake", spark=spark, engine=request.param)
    lh.create_table("t", _df(lh, [(1, "a")]))
    lh.append("t", _df(lh, [(2, "b")]))
    lh.create_table("p", _df(lh, [(1, "2026-01-01")], "id long, day string"), partition_by="day")
    out = base / "outside"
    Lakehouse(out, spark=spark, engine=request.param).create_table("victim", _df(lh, [(9, "z")]))
    os.symlink(out, base / "lake" / "evil")
    return lh, out


def _state(lh, out):
    """Every file under the lake and outside it, with its size: a new commit, data file or table shows here."""
    files = {}
    for top in (lh.root, str(out)):
        for folder, _, names in os.walk(top):
            for n in names:
                p = os.path.join(folder, n)
                files[p] = os.lstat(p).st_size
    return files


@pytest.mark.parametrize(("case", "call", "error", "text"), CASES, ids=[c[0] for c in CASES])
def test_hostile_call_is_refused_and_writes_nothing(hostile_lake, case, call, error, text):
    lh, out = hostile_lake
    before = _state(lh, out)
    with pytest.raises(error) as info:
        call(lh, out)
    assert isinstance(info.value, LakehouseError), f"{type(info.value).__name__} is not a lakehouse error"
    assert text in str(info.value), str(info.value)
    assert _state(lh, out) == before


def test_distinct_classes():
    assert len({c[0] for c in CASES}) == len(CASES) >= 100


def test_a_null_merge_key_follows_delta(hostile_lake):
    """Delta's MERGE never matches a null key (null = null is unknown): a null-keyed source row is inserted beside
    the null-keyed target row, never updating it. A rule, checked on both engines; NaN keys are refused nowhere
    either (Spark matches NaN with NaN), so neither is in the catalogue of refusals."""
    lh, _ = hostile_lake
    name = f"nullkeys_{lh.engine.replace('-', '_')}"
    lh.create_table(name, _df(lh, [(1, "a"), (None, "n")]))
    lh.merge(name, _df(lh, [(None, "m")]), on="id")
    rows = sorted((r.id is None, r.v) for r in lh.read(name).collect())
    assert rows == [(False, "a"), (True, "m"), (True, "n")]
    lh.drop_table(name)


# -- damaged Delta logs -----------------------------------------------------------------------------------------
SCHEMA = pa.schema([("id", pa.int64()), ("v", pa.string())])


def _lean_table(path):
    """A lean-log table: version 0 created, 1..3 one row each (ids 1, 2, 3), a checkpoint at 2."""
    t = LeanTable(path=str(path), name="d", schema=SCHEMA)
    t.create_if_missing()
    for i in (1, 2, 3):
        t.refresh()
        t.commit([[{"id": i, "v": f"x{i}"}]])
        if i == 2:
            t.write_checkpoint()
    return t


def _log(path, v):
    return os.path.join(path, "_delta_log", f"{v:020d}.json")


def _ckpt(path, v=2):
    return os.path.join(path, "_delta_log", f"{v:020d}.checkpoint.parquet")


def _read(f):
    with open(f) as fh:
        return fh.read()


def _write(f, text):
    with open(f, "w") as fh:
        fh.write(text)


def _truncate(f):
    with open(f, "rb") as fh:
        data = fh.read()
    with open(f, "wb") as fh:
        fh.write(data[: len(data) // 2])


def _no_checkpoint(path):
    os.remove(_ckpt(path))
    os.remove(os.path.join(path, "_delta_log", "_last_checkpoint"))


def _rewrite(path, v, keep):
    lines = [json.loads(x) for x in _read(_log(path, v)).splitlines() if x.strip()]
    with open(_log(path, v), "w") as fh:
        fh.write("".join(json.dumps(a) + "\n" for a in lines if keep(a)))


def _first_data_file(path):
    adds = [json.loads(x) for x in _read(_log(path, 3)).splitlines() if '"add"' in x]
    return adds[0]["add"]["path"]


# (case, damage, what each reader answers: an error type and the file it names, or the ids it reads)
ALL_FAIL = "all fail"
DAMAGES = [
    ("truncated-last-commit", lambda p: _truncate(_log(p, 3)), CorruptTableError, lambda p: _log(p, 3)),
    (
        "truncated-middle-commit",
        lambda p: (_no_checkpoint(p), _truncate(_log(p, 1))),
        CorruptTableError,
        lambda p: _log(p, 1),
    ),
    (
        "invalid-json-commit",
        lambda p: _write(_log(p, 3), "{not json\n"),
        CorruptTableError,
        lambda p: _log(p, 3),
    ),
    ("commit-not-objects", lambda p: _write(_log(p, 3), "[1, 2]\n"), CorruptTableError, lambda p: _log(p, 3)),
    (
        "add-without-path",
        lambda p: _write(_log(p, 3), '{"add": {"size": 1}}\n'),
        CorruptTableError,
        lambda p: _log(p, 3),
    ),
    (
        "missing-protocol",
        lambda p: (_no_checkpoint(p), _rewrite(p, 0, lambda a: "protocol" not in a)),
        CorruptTableError,
        lambda p: "protocol",
    ),
    (
        "missing-metadata",
        lambda p: (_no_checkpoint(p), _rewrite(p, 0, lambda a: "metaData" not in a)),
        CorruptTableError,
        lambda p: "metaData",
    ),
    ("gap-in-versions", lambda p: (_no_checkpoint(p), os.remove(_log(p, 1))), CorruptTableError, lambda p: _log(p, 1)),
    (
        "unknown-reader-feature",
        lambda p: _write(
            _log(p, 4),
            json.dumps(
                {
                    "protocol": {
                        "minReaderVersion": 3,
                        "minWriterVersion": 7,
                        "readerFeatures": ["madeUpFeature"],
                        "writerFeatures": ["madeUpFeature"],
                    }
                }
            )
            + "\n",
        ),
        UnsupportedTableFeatureError,
        lambda p: "madeUpFeature",
    ),
    ("empty-last-commit", lambda p: _write(_log(p, 3), ""), [1, 2], None),
    (
        "last-checkpoint-garbage",
        lambda p: _write(os.path.join(p, "_delta_log", "_last_checkpoint"), "garbage{"),
        [1, 2, 3],
        None,
    ),
    (
        "last-checkpoint-other-version",
        lambda p: _write(os.path.join(p, "_delta_log", "_last_checkpoint"), '{"version": 1, "size": 3}'),
        [1, 2, 3],
        None,
    ),
    ("truncated-checkpoint", lambda p: _truncate(_ckpt(p)), "recovers", lambda p: _ckpt(p)),
    ("last-checkpoint-missing-file", lambda p: os.remove(_ckpt(p)), "recovers", lambda p: "_last_checkpoint"),
]


@pytest.mark.parametrize(("case", "damage", "expect", "names"), DAMAGES, ids=[d[0] for d in DAMAGES])
@pytest.mark.parametrize("reader", ["lean", *ENGINES])
def test_a_damaged_log_is_named_or_read_as_delta_reads_it(spark, tmp_path, reader, case, damage, expect, names):
    path = str(tmp_path / "d")
    _lean_table(path)
    damage(path)
    before = sorted(os.listdir(os.path.join(path, "_delta_log")))
    if reader == "lean":

        def ids():
            t = LeanTable(path=path, name="d", schema=SCHEMA)
            t.refresh()
            return sorted(r["id"] for f in t.files.values() for r in f.rows)
    else:
        lh = Lakehouse(tmp_path / "lake", spark=spark, engine=reader)

        def ids():
            return sorted(r.id for r in lh.read(path).collect())

    if expect == "recovers" and reader != "deltalake":
        expect = [1, 2, 3]  # delta-spark and the lean log go back to the commits, as Delta does
    elif expect == "recovers":
        expect = CorruptTableError  # deltalake 1.6 cannot: named, with the way out in the hint
    if case == "add-without-path" and reader == "delta-spark":
        pytest.xfail(
            "delta-spark reads a commit whose add has no path without an error; Lakehouse diagnoses the log "
            "only when the engine fails"
        )
    if isinstance(expect, list):
        assert ids() == expect
    else:
        with pytest.raises(expect) as info:
            ids()
        assert names(path) in str(info.value)
        assert "Traceback" not in str(info.value) and len(str(info.value)) < 1200
    assert sorted(os.listdir(os.path.join(path, "_delta_log"))) == before  # a reader never rewrites the log


@pytest.mark.parametrize("reader", ["lean", *ENGINES])
def test_a_data_file_listed_but_deleted_is_named(spark, tmp_path, reader):
    path = str(tmp_path / "d")
    _lean_table(path)
    gone = _first_data_file(path)
    os.remove(os.path.join(path, gone))
    if reader == "lean":
        with pytest.raises(CorruptTableError, match="FSCK REPAIR TABLE") as info:
            LeanTable(path=path, name="d", schema=SCHEMA).refresh()
    else:
        lh = Lakehouse(tmp_path / "lake", spark=spark, engine=reader)
        expected = DataFilesMissingError if reader == "deltalake" else Exception  # Spark reads lazily: its own error
        with pytest.raises(expected) as info:
            lh.read(path).collect()
    assert gone in str(info.value)


def test_a_checkpoint_written_by_deltalake_is_read_by_the_lean_log(tmp_path):
    from deltalake import DeltaTable, write_deltalake

    for i in range(3):
        write_deltalake(str(tmp_path), pa.table({"id": [i], "v": [str(i)]}), mode="append")
    DeltaTable(str(tmp_path)).create_checkpoint()
    t = LeanTable(path=str(tmp_path), name="d", schema=SCHEMA)
    t.refresh()
    assert sorted(r["id"] for f in t.files.values() for r in f.rows) == [0, 1, 2]


def test_a_first_load_behind_log_cleanup_starts_from_the_newest_checkpoint(tmp_path):
    """Not damage: log cleanup removed the commits behind a newer checkpoint while `_last_checkpoint` still named an
    older one (a concurrent maintain). The gap check must not call that corrupt (a regression found by
    tests/jobs/test_maintain.py); the reader starts from the newest checkpoint listed."""
    path = str(tmp_path / "d")
    t = LeanTable(path=path, name="d", schema=SCHEMA)
    t.create_if_missing()
    for i in (1, 2, 3, 4):
        t.refresh()
        t.commit([[{"id": i, "v": "x"}]])
        if i in (1, 3):
            t.write_checkpoint()
    for v in range(4):
        os.remove(_log(path, v))
    _write(os.path.join(path, "_delta_log", "_last_checkpoint"), '{"version": 1, "size": 4}')
    r = LeanTable(path=path, name="d", schema=SCHEMA)
    r.refresh()
    assert r.version == 4
    assert sorted(row["id"] for f in r.files.values() for row in f.rows) == [1, 2, 3, 4]
