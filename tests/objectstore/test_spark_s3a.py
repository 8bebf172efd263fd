"""delta-spark on an `s3a://` lake (hadoop-aws + our put-if-absent log store), behind `LAKEHOUSE_HADOOP_AWS=1`.

`make test-s3a` obtains the JARs (`lakehouse-setup --s3a`) and runs this folder with the flag on. Each Spark here
runs in a child process: the test process may already hold the suite's shared local session, which was built
before the S3 server's variables were exported, and one process has one SparkContext. The same file is the
child's program (`python test_spark_s3a.py <role> <args>`): it does the Spark side and writes what it saw as
JSON; the assertions stay here, against hand-written rows and against delta-rs reading the same objects as
`s3://` (an engine that shares no code with delta-spark).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lakehouse._settings import settings

needs_flag = pytest.mark.skipif(
    not settings().hadoop_aws,
    reason="delta-spark over s3a needs LAKEHOUSE_HADOOP_AWS=1 and ~560 MB of JARs: run `make test-s3a`",
)

ROWS_V0 = [(1, "a", 1.0), (2, "b", 2.0)]
ROWS_V1 = [*ROWS_V0, (3, "c", 3.0)]
ROWS_V2 = [(1, "a", 1.0), (2, "B", 20.0), (3, "c", 3.0), (4, "d", 4.0)]  # merge: id 2 updated, id 4 inserted
SCHEMA = "id long, name string, score double"
CHILD_TIMEOUT = 300


def _run_child(role: str, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, __file__, role, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _wait(child: subprocess.Popen, result: Path) -> dict:
    try:
        out, _ = child.communicate(timeout=CHILD_TIMEOUT)
    except subprocess.TimeoutExpired:
        child.kill()  # its JVM exits with it (pyspark's gateway ends when its Python's pipe closes)
        out, _ = child.communicate()
    assert child.returncode == 0 and result.exists(), f"child failed (exit {child.returncode}):\n{out[-6000:]}"
    return json.loads(result.read_text())


def _delta_rs_rows(path: str, version: int | None = None) -> list[tuple]:
    import pyarrow as pa
    from deltalake import DeltaTable, QueryBuilder

    dt = DeltaTable(path, version=version)
    table = pa.table(QueryBuilder().register("t", dt).execute("SELECT * FROM t").read_all())
    return sorted(tuple(r.values()) for r in table.to_pylist())


# -- without the flag, or before any Spark: the refusal and the settings read from the environment ---------------
@pytest.mark.skipif(settings().hadoop_aws, reason="with LAKEHOUSE_HADOOP_AWS=1 this session reaches s3a://")
@pytest.mark.parametrize("scheme", ["s3", "s3a"])
def test_without_the_flag_delta_spark_on_s3_is_refused_naming_the_flag(spark, s3, scheme):
    from lakehouse import Lakehouse
    from lakehouse.errors import EngineUnavailableError

    root = f"{scheme}://{s3.bucket}/refused"
    with pytest.raises(EngineUnavailableError, match=r"LAKEHOUSE_HADOOP_AWS=1 .*lakehouse-setup --s3a.*s3a://") as err:
        Lakehouse(root, spark=spark, engine="delta-spark")
    assert f"no Hadoop file system for {scheme}://" in str(err.value)
    assert Lakehouse(root, spark=spark).engine == "deltalake"  # auto: the deltalake engine serves the lake


@pytest.mark.skipif(not settings().hadoop_aws, reason="checks a session started with LAKEHOUSE_HADOOP_AWS=1")
def test_with_the_flag_an_s3_root_stays_with_deltalake_and_names_its_s3a_uri(spark, s3):
    from lakehouse import Lakehouse
    from lakehouse.errors import EngineUnavailableError

    root = f"s3://{s3.bucket}/stays"
    assert Lakehouse(root, spark=spark).engine == "deltalake"
    with pytest.raises(EngineUnavailableError, match=f"open the same lake as s3a://{s3.bucket}/stays"):
        Lakehouse(root, spark=spark, engine="delta-spark")


def test_s3a_settings_come_from_the_variables_the_aws_sdks_read():
    from lakehouse._session import s3a_conf

    local = s3a_conf(
        {"AWS_ENDPOINT_URL": "http://127.0.0.1:9000", "AWS_REGION": "eu-west-3", "AWS_SECRET_ACCESS_KEY": "x"}
    )
    assert local == {
        "spark.hadoop.fs.s3a.endpoint": "http://127.0.0.1:9000",
        "spark.hadoop.fs.s3a.path.style.access": "true",
        "spark.hadoop.fs.s3a.connection.ssl.enabled": "false",
        "spark.hadoop.fs.s3a.endpoint.region": "eu-west-3",
    }  # no credentials in Spark's conf: S3A's provider chain reads them from the environment
    aws = s3a_conf(
        {
            "AWS_ENDPOINT_URL": "https://s3.eu-west-3.amazonaws.com",
            "AWS_ENDPOINT_URL_S3": "https://s3.example.net",
            "AWS_DEFAULT_REGION": "us-east-2",
        }
    )
    assert aws == {
        "spark.hadoop.fs.s3a.endpoint": "https://s3.example.net",  # the S3-specific variable wins
        "spark.hadoop.fs.s3a.path.style.access": "true",
        "spark.hadoop.fs.s3a.endpoint.region": "us-east-2",
    }
    assert s3a_conf({"AWS_ENDPOINT_URL": "https://s3.eu-west-3.amazonaws.com"}) == {
        "spark.hadoop.fs.s3a.endpoint": "https://s3.eu-west-3.amazonaws.com"
    }
    assert s3a_conf({}) == {}


# -- one Spark session on an s3a lake: the Lakehouse API, plain Spark, DeltaTable.forPath -------------------------
@pytest.fixture(scope="module")
def lake_run(s3, tmp_path_factory):
    """Run the lake scenario once in a child Spark process; its report, plus the lake's s3a and s3 roots."""
    out = tmp_path_factory.mktemp("s3a-lake") / "result.json"
    root = f"s3a://{s3.bucket}/spark-s3a-lake"
    started = time.monotonic()
    report = _wait(_run_child("lake", root, str(out)), out)
    report["child_seconds"] = round(time.monotonic() - started, 1)
    print(f"s3a lake child: {report['child_seconds']} s (session start {report['session_seconds']} s)")
    return report, root, f"s3://{s3.bucket}/spark-s3a-lake"


@pytest.mark.slow
@needs_flag
def test_delta_spark_serves_an_s3a_lake_with_the_put_if_absent_log_store(lake_run):
    report, _, _ = lake_run
    assert report["engine"] == "delta-spark"
    assert report["log_store_conf"] == "io.lakehouseml.delta.S3PutIfAbsentLogStore"


@pytest.mark.slow
@needs_flag
def test_create_append_merge_time_travel_history_optimize_on_s3a(lake_run):
    report, _, s3_root = lake_run
    assert report["table_path"] == "s3a://" + s3_root[len("s3://") :] + "/features/customers"
    s3_path = s3_root + "/features/customers"
    assert report["versions"] == {"create": 0, "append": 1, "merge": 2}
    assert report["merge_counts"] == [1, 1]  # updated, inserted
    assert sorted(map(tuple, report["rows_latest"])) == ROWS_V2
    assert sorted(map(tuple, report["rows_v1"])) == ROWS_V1
    assert sorted(map(tuple, report["rows_v0_by_timestamp"])) == ROWS_V0
    assert report["history"] == [[3, "OPTIMIZE"], [2, "MERGE"], [1, "WRITE"], [0, "CREATE TABLE AS SELECT"]]
    assert report["optimize"]["version"] == 3 and report["optimize"]["num_files_added"] == 1
    assert report["optimize"]["num_files_removed"] >= 2
    assert sorted(map(tuple, report["rows_after_optimize"])) == ROWS_V2

    # delta-rs reads the same objects as s3:// and sees every version alike
    for version, rows in [(0, ROWS_V0), (1, ROWS_V1), (2, ROWS_V2), (3, ROWS_V2)]:
        assert _delta_rs_rows(s3_path, version) == sorted(rows), f"version {version}"
    assert _delta_rs_rows(s3_path) == ROWS_V2


@pytest.mark.slow
@needs_flag
def test_plain_spark_reader_and_delta_table_for_path_on_s3a(lake_run):
    report, _, _ = lake_run
    assert sorted(map(tuple, report["spark_read"])) == ROWS_V2
    assert sorted(map(tuple, report["for_path_rows"])) == ROWS_V2
    assert report["for_path_versions"] == [3, 2, 1, 0]
    assert sorted(map(tuple, report["spark_read_version_1"])) == ROWS_V1


@pytest.mark.slow
@needs_flag
def test_a_table_delta_rs_wrote_is_appended_to_by_delta_spark(lake_run):
    report, _, _ = lake_run
    assert report["interop_rows"] == [[1, "from delta-rs"], [2, "from delta-spark"]]


@pytest.mark.slow
@needs_flag
def test_restore_vacuum_list_and_drop_tables_on_an_s3a_root(lake_run):
    report, _, _ = lake_run
    assert report["restore"] == [2, 0]
    assert sorted(map(tuple, report["rows_after_restore"])) == ROWS_V0
    files = report["files_by_version"]  # as delta-rs reads the log: version 2 (the restore) holds version 0's
    assert files["2"] == files["0"]
    vacuumed = set(report["vacuum_dry_run"])
    assert set(files["1"]) - set(files["0"]) <= vacuumed  # the file the restore removed is listed ...
    assert not vacuumed & set(files["2"])  # ... and no file of the current version
    assert sorted(map(tuple, report["deltalake_engine_rows"])) == sorted([*ROWS_V0, (5, "e", 5.0)])
    assert isinstance(report["list_tables"], list), report["list_tables"]
    assert {"features.customers", "scratch.dropped"} <= set(report["list_tables"])
    assert report["drop_table"] is None and report["exists_after_drop"] is False


def _lake(root: str, out: Path) -> None:
    """Child: the lake scenario on `root` (an s3a:// URI) through the Lakehouse facade and plain Spark."""
    from datetime import timedelta

    from delta.tables import DeltaTable

    from lakehouse import Lakehouse, local_spark

    started = time.monotonic()
    spark = local_spark(master="local[2]", shuffle_partitions=2)
    report: dict = {"session_seconds": round(time.monotonic() - started, 1)}
    report["log_store_conf"] = spark.conf.get("spark.delta.logStore.s3a.impl", None)

    lh = Lakehouse(root, spark=spark, engine="delta-spark")
    report["engine"] = lh.engine
    name = "features.customers"
    df = spark.createDataFrame(ROWS_V0, SCHEMA)
    create = lh.create_table(name, df, description="on s3a")
    append = lh.append(name, spark.createDataFrame([ROWS_V1[-1]], SCHEMA))
    merged = lh.merge(name, spark.createDataFrame([(2, "B", 20.0), (4, "d", 4.0)], SCHEMA), on="id")
    report["versions"] = {"create": create.version, "append": append.version, "merge": merged.version}
    report["merge_counts"] = [merged.num_target_rows_updated, merged.num_target_rows_inserted]

    def rows(frame) -> list:
        return [list(r) for r in frame.select("id", "name", "score").collect()]

    report["rows_latest"] = rows(lh.read(name))
    report["rows_v1"] = rows(lh.read(name, version=1))
    history = lh.history(name)
    v0_time = next(h.timestamp for h in history if h.version == 0)
    report["rows_v0_by_timestamp"] = rows(lh.read(name, timestamp=v0_time + timedelta(milliseconds=1)))
    optimized = lh.optimize(name)
    report["optimize"] = {
        "version": optimized.version,
        "num_files_added": optimized.num_files_added,
        "num_files_removed": optimized.num_files_removed,
    }
    report["rows_after_optimize"] = rows(lh.read(name))
    report["history"] = [[h.version, h.operation] for h in lh.history(name)]

    path = report["table_path"] = lh.table_path(name)
    report["spark_read"] = rows(spark.read.format("delta").load(path))
    report["spark_read_version_1"] = rows(spark.read.format("delta").option("versionAsOf", 1).load(path))
    table = DeltaTable.forPath(spark, path)
    report["for_path_rows"] = rows(table.toDF())
    report["for_path_versions"] = [r.version for r in table.history().select("version").collect()]

    # A table delta-rs created (through s3://), appended to by delta-spark (through s3a://).
    import pyarrow as pa
    from deltalake import write_deltalake

    interop = root.replace("s3a://", "s3://", 1) + "/interop"
    write_deltalake(interop, pa.table({"id": pa.array([1], pa.int64()), "src": ["from delta-rs"]}))
    spark.createDataFrame([(2, "from delta-spark")], "id long, src string").write.format("delta").mode("append").save(
        "s3a://" + interop[len("s3://") :]
    )
    report["interop_rows"] = [list(r) for r in _delta_rs_rows(interop)]

    lh.create_table("scratch.dropped", df)
    lh.append("scratch.dropped", spark.createDataFrame([(9, "z", 9.0)], SCHEMA))
    restored = lh.restore("scratch.dropped", version=0)
    report["restore"] = [restored.version, restored.restored_version]
    report["rows_after_restore"] = rows(lh.read("scratch.dropped"))
    vacuumed = lh.vacuum("scratch.dropped", retention_hours=0, dry_run=True, enforce_retention_duration=False)
    report["vacuum_dry_run"] = list(vacuumed.files)
    from deltalake import DeltaTable as RsTable

    scratch = lh.table_path("scratch.dropped").replace("s3a://", "s3://", 1)
    report["files_by_version"] = {
        v: sorted(u[len(scratch) + 1 :] for u in RsTable(scratch, version=v).file_uris()) for v in (0, 1, 2)
    }
    # The deltalake engine on the same s3a:// root (delta-rs and pyarrow are asked as s3://).
    rs = Lakehouse(root, spark=spark, engine="deltalake")
    rs.append("scratch.dropped", spark.createDataFrame([(5, "e", 5.0)], SCHEMA))
    report["deltalake_engine_rows"] = rows(rs.read("scratch.dropped"))
    for what, call in [
        ("list_tables", lambda: [t.name for t in lh.list_tables()]),
        ("drop_table", lambda: lh.drop_table("scratch.dropped")),
    ]:
        try:
            report[what] = call()
        except Exception as exc:  # noqa: BLE001 - reported to the parent, which asserts on it
            report[what] = f"{type(exc).__name__}: {exc}"
    report["exists_after_drop"] = lh.exists("scratch.dropped")
    out.write_text(json.dumps(report))


# -- two drivers race for the same versions ------------------------------------------------------------------------
WRITERS, APPENDS, RACED_VERSIONS = ("w1", "w2"), 6, 5


@pytest.fixture(scope="module")
def race_run(s3, tmp_path_factory):
    """Two child Spark processes race: first for log versions through the log store itself, then with appends
    to one table through delta-spark. The table's version 0 is written by delta-rs."""
    import pyarrow as pa
    from deltalake import write_deltalake

    work = tmp_path_factory.mktemp("s3a-race")
    table, scratch = f"s3://{s3.bucket}/spark-s3a-race/t", f"s3://{s3.bucket}/spark-s3a-race/log-store"
    write_deltalake(table, pa.table({"writer": ["seed"], "n": pa.array([0], pa.int64())}))
    s3a = [u.replace("s3://", "s3a://", 1) for u in (table, scratch)]
    children = {w: _run_child("race", *s3a, str(work), w) for w in WRITERS}
    try:
        reports = {w: _wait(child, work / f"result-{w}.json") for w, child in children.items()}
    finally:
        for child in children.values():
            if child.poll() is None:  # the other writer failed: this one would wait at a barrier until timeout
                child.kill()
                child.communicate()
    return reports, table, scratch


@pytest.mark.slow
@needs_flag
def test_a_raced_log_version_has_one_winner_and_the_loser_gets_http_412(s3, race_run):
    reports, _, scratch = race_run
    client = s3.client()
    for v in range(RACED_VERSIONS):
        outcomes = {w: reports[w]["log_store"][v] for w in WRITERS}
        winners = [w for w, o in outcomes.items() if o == "won"]
        assert len(winners) == 1, f"version {v}: {outcomes}"
        (loser,) = set(WRITERS) - set(winners)
        lost = outcomes[loser]
        assert lost["class"] == "java.nio.file.FileAlreadyExistsException"
        assert lost["cause"] == "software.amazon.awssdk.services.s3.model.S3Exception" and lost["status"] == 412
        assert "HTTP 412 Precondition Failed" in lost["message"]
        key = scratch.split("/", 3)[3] + f"/_delta_log/{v:020d}.json"
        body = client.get_object(Bucket=s3.bucket, Key=key)["Body"].read().decode()
        assert json.loads(body) == {"writer": winners[0], "v": v}, "the winner's commit is the one stored"
        assert v in reports[winners[0]]["rewrote_own"]  # writing its own bytes again raised nothing


@pytest.mark.slow
@needs_flag
def test_racing_delta_spark_appends_lose_no_acknowledged_commit(race_run):
    from deltalake import DeltaTable

    reports, table, _ = race_run
    acknowledged = sorted((w, n) for w in WRITERS for n in reports[w]["acknowledged"])
    assert acknowledged == sorted((w, n) for w in WRITERS for n in range(APPENDS))

    dt = DeltaTable(table)
    assert dt.version() == len(WRITERS) * APPENDS  # version 0 (delta-rs) + one version per append, none lost
    metadata = sorted(h["userMetadata"] for h in dt.history() if "userMetadata" in h)
    assert metadata == sorted(f"{w}:{n}" for w, n in acknowledged), "each version has exactly one commit"
    assert _delta_rs_rows(table) == sorted([("seed", 0), *acknowledged])

    lost = {w: reports[w]["lost_races"] for w in WRITERS}
    print(f"s3a race: 412s seen by each writer's log store during the appends: {lost}")
    assert sum(lost.values()) >= APPENDS, "every round of appends loses at least one race (see _race)"


def _barrier(folder: Path, name: str, me: str) -> None:
    """Wait until every writer has reached `name` (a file per writer), so both race from the same moment."""
    (folder / f"{name}-{me}").touch()
    deadline = time.monotonic() + CHILD_TIMEOUT
    while not all((folder / f"{name}-{w}").exists() for w in WRITERS):
        if time.monotonic() > deadline:
            raise TimeoutError(f"the other writer never reached {name}")
        time.sleep(0.005)


def _race(table: str, scratch: str, folder: Path, me: str) -> None:
    """Child: race the other writer for log versions (through the log store), then with appends (delta-spark)."""
    from py4j.protocol import Py4JJavaError

    from lakehouse import local_spark

    spark = local_spark(master="local[2]", shuffle_partitions=2)
    jvm = spark.sparkContext._jvm
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    store_class = jvm.io.lakehouseml.delta.S3PutIfAbsentLogStore
    store = store_class(conf)
    report: dict = {"log_store": []}

    _barrier(folder, "log-store", me)
    for v in range(RACED_VERSIONS):
        lines = jvm.java.util.ArrayList()
        lines.add(json.dumps({"writer": me, "v": v}))
        try:
            store.write(
                jvm.org.apache.hadoop.fs.Path(f"{scratch}/_delta_log/{v:020d}.json"), lines.iterator(), False, conf
            )
            report["log_store"].append("won")
        except Py4JJavaError as e:
            exc = e.java_exception
            cause = exc.getCause()
            report["log_store"].append(
                {
                    "class": exc.getClass().getName(),
                    "message": exc.getMessage(),
                    "cause": cause.getClass().getName() if cause is not None else None,
                    "status": cause.statusCode() if cause is not None else None,
                }
            )

    # A PUT the SDK retried after its first attempt landed meets its own object: that 412 is a success.
    report["rewrote_own"] = []
    for v, outcome in enumerate(report["log_store"]):
        if outcome == "won":
            lines = jvm.java.util.ArrayList()
            lines.add(json.dumps({"writer": me, "v": v}))
            store.write(
                jvm.org.apache.hadoop.fs.Path(f"{scratch}/_delta_log/{v:020d}.json"), lines.iterator(), False, conf
            )
            report["rewrote_own"].append(v)

    before = store_class.lostRaces()
    # Each append's row comes through a UDF that waits for the other writer's same append. Delta evaluates it in
    # writeFiles, after the transaction read its snapshot: both writers then hold a snapshot at least one
    # version old when they commit, so every round has at least one lost race (a 412) and a retry.
    from pyspark.sql import functions as F

    def gate(n: int) -> int:
        _barrier(folder, f"append-{n}", me)
        return n

    gated = F.udf(gate, "long").asNondeterministic()
    report["acknowledged"] = []
    for n in range(APPENDS):
        df = spark.range(1).select(F.lit(me).alias("writer"), gated(F.lit(n)).alias("n"))
        df.write.format("delta").mode("append").option("userMetadata", f"{me}:{n}").save(table)
        report["acknowledged"].append(n)  # save() returned: the commit is acknowledged
    report["lost_races"] = store_class.lostRaces() - before
    (folder / f"result-{me}.json").write_text(json.dumps(report))


if __name__ == "__main__":
    role, *rest = sys.argv[1:]
    if role == "lake":
        _lake(rest[0], Path(rest[1]))
    else:
        _race(rest[0], rest[1], Path(rest[2]), rest[3])
    sys.stdout.flush()
    os._exit(0)  # skip interpreter teardown: delta-rs' Arrow threads can abort a finishing process (rc 134)
