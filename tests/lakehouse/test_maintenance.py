import os
import time

import pytest

from lakehouse.errors import RetentionPeriodTooShortError


@pytest.fixture
def fragmented(lake, spark):
    lake.create_table("f", spark.range(0, 50).selectExpr("id", "id % 7 as k", "cast(id as string) as s"))
    for i in range(1, 6):
        lake.append("f", spark.range(i * 50, i * 50 + 50).selectExpr("id", "id % 7 as k", "cast(id as string) as s"))
    return "f"


def data_files(lake, name):
    return sorted(r.f for r in lake.read(name).selectExpr("input_file_name() as f").distinct().collect())


def test_optimize_compacts_and_keeps_the_data(lake, fragmented):
    before_rows = sorted(tuple(r) for r in lake.read(fragmented).collect())
    before_files = len(data_files(lake, fragmented))
    res = lake.optimize(fragmented)
    assert res.version == lake.latest_version(fragmented)
    assert res.num_files_removed == before_files and res.num_files_added == 1
    assert len(data_files(lake, fragmented)) == 1
    assert sorted(tuple(r) for r in lake.read(fragmented).collect()) == before_rows
    assert lake.history(fragmented, limit=1)[0].operation == "OPTIMIZE"


def test_optimize_is_idempotent(lake, fragmented):
    lake.optimize(fragmented)
    version = lake.latest_version(fragmented)
    again = lake.optimize(fragmented)
    assert again.version is None and again.num_files_added == 0
    assert lake.latest_version(fragmented) == version


def test_z_order(lake, fragmented):
    res = lake.optimize(fragmented, z_order_by=["k", "id"])
    assert res.z_order_by == ("k", "id") and res.num_files_added >= 1
    assert lake.read(fragmented).count() == 300
    with pytest.raises(ValueError, match="not in table"):
        lake.optimize(fragmented, z_order_by="nope")


def test_z_order_on_partition_column_is_refused(lake, spark):
    lake.create_table("p", spark.range(4).selectExpr("id", "cast(id % 2 as string) as p"), partition_by="p")
    with pytest.raises(ValueError, match="partition columns"):
        lake.optimize("p", z_order_by="p")


def test_optimize_target_size(lake, fragmented):
    for bad in (0, True, 1.5):
        with pytest.raises(ValueError, match="target_size"):
            lake.optimize(fragmented, target_size=bad)
    assert [h.operation for h in lake.history(fragmented, limit=1)] == ["WRITE"]
    res = lake.optimize(fragmented, target_size=1024 * 1024)
    assert res.num_files_added >= 1


@pytest.mark.parametrize("hours", [float("nan"), float("inf"), -1, "168"])
def test_vacuum_retention_must_be_a_finite_number(lake, fragmented, hours):
    with pytest.raises(ValueError, match="retention_hours"):
        lake.vacuum(fragmented, retention_hours=hours, enforce_retention_duration=False)


def test_vacuum_is_a_dry_run_with_the_retention_check_by_default(lake, fragmented):
    lake.optimize(fragmented)
    res = lake.vacuum(fragmented)
    assert res.dry_run and res.retention_hours == 168 and res.num_files == 0  # files are younger than a week
    with pytest.raises(RetentionPeriodTooShortError) as info:
        lake.vacuum(fragmented, retention_hours=0)
    assert info.value.minimum_hours == 168 and "enforce_retention_duration=False" in str(info.value)


def test_vacuum_deletes_only_when_asked(lake, fragmented):
    replaced = lake.optimize(fragmented).num_files_removed
    stale = lake.vacuum(fragmented, retention_hours=0, enforce_retention_duration=False)
    assert stale.dry_run and stale.num_files == replaced
    assert all(os.path.exists(f) or os.path.exists(os.path.join(lake.table_path(fragmented), f)) for f in stale.files)
    done = lake.vacuum(fragmented, retention_hours=0, enforce_retention_duration=False, dry_run=False)
    assert not done.dry_run and done.num_files == replaced
    assert lake.vacuum(fragmented, retention_hours=0, enforce_retention_duration=False).num_files == 0
    assert lake.read(fragmented).count() == 300


def test_vacuum_respects_the_table_retention_property(lake, spark):
    lake.create_table("r", spark.range(3), properties={"delta.deletedFileRetentionDuration": "interval 2 hours"})
    assert lake.vacuum("r", retention_hours=2).retention_hours == 2
    with pytest.raises(RetentionPeriodTooShortError):
        lake.vacuum("r", retention_hours=1)


def test_reading_a_vacuumed_version_names_table_version_and_retention(rs_lake, spark):
    from lakehouse.errors import DataFilesMissingError

    rs_lake.create_table("v", spark.range(3))
    rs_lake.overwrite("v", spark.range(5))
    rs_lake.vacuum("v", retention_hours=0, enforce_retention_duration=False, dry_run=False)
    with pytest.raises(DataFilesMissingError) as info:
        rs_lake.read("v", version=0)
    assert info.value.version == 0 and "'v'" in str(info.value) and "deletedFileRetentionDuration" in str(info.value)
    with pytest.raises(DataFilesMissingError):
        rs_lake.restore("v", version=0)


def test_vacuum_removes_what_a_killed_writer_left_and_keeps_a_live_commits_staging(lake, spark, tmp_path):
    """A writer killed mid-commit leaves an unreferenced data file and a staged commit in `_delta_log` (each engine
    names it its own way); VACUUM removes both once they are older than the retention (a staged commit: and an
    hour), never a younger staged commit (a live writer's); a covering index holding rows of a removed file goes with
    it, one of live files stays; and the table is unchanged."""
    import json
    import uuid

    import pyarrow as pa
    import pyarrow.parquet as pq
    from deltalake import DeltaTable

    lake.create_table("k", spark.range(3))
    lake.append("k", spark.range(3, 5))
    path = lake.table_path("k")
    log = os.path.join(path, "_delta_log")
    untracked = lake.vacuum("k", retention_hours=0, enforce_retention_duration=False).files  # Spark's empty parts
    two_hours_ago = time.time() - 2 * 3600
    orphan = f"part-00000-{uuid.uuid4()}-c000.snappy.parquet"
    pq.write_table(pa.table({"id": [99]}), os.path.join(path, orphan))
    staged = [
        f".tmp-{uuid.uuid4().hex}-00000000000000000002.json",  # ours
        "00000000000000000002.json#1",  # delta-rs (object_store's local staging)
        f"_commit_{uuid.uuid4()}.json.tmp",  # delta-rs (a commit staged by name)
        f".00000000000000000002.json.{uuid.uuid4()}.tmp",  # delta-spark (Hadoop)
        f"..00000000000000000002.json.{uuid.uuid4()}.tmp.crc",
    ]
    for name in staged:
        with open(os.path.join(log, name), "w") as fh:
            fh.write('{"commitInfo": {}}\n')
    for rel in [orphan, *(f"_delta_log/{n}" for n in staged)]:
        os.utime(os.path.join(path, rel), (two_hours_ago, two_hours_ago))
    live = "00000000000000000003.json#1"  # just staged: a commit about to be linked
    with open(os.path.join(log, live), "w") as fh:
        fh.write('{"commitInfo": {}}\n')
    # covering indexes (a search's copy of the rows, `lakehouse._log_covering`): one holds rows of the orphan only
    covering = os.path.join(path, "_lakehouse_covering")
    os.makedirs(covering)
    live_file = os.path.relpath(DeltaTable(path).file_uris()[0], path)
    for name, named in (("kept.arrow", [live_file]), ("stale.tail.arrow", [live_file, orphan])):
        meta = {b"lakehouse.covering.files": json.dumps(named).encode(), b"lakehouse.covering.base": b"b"}
        table = pa.table({"id": [1]}).replace_schema_metadata(meta)
        with pa.ipc.new_file(os.path.join(covering, name), table.schema) as w:
            w.write_table(table)
    rows = sorted(r.id for r in lake.read("k").collect())
    expected = sorted(
        [*untracked, orphan, *(f"_delta_log/{n}" for n in staged), "_lakehouse_covering/stale.tail.arrow"]
    )

    listed = lake.vacuum("k", retention_hours=0, enforce_retention_duration=False)
    assert sorted(listed.files) == expected
    assert all(os.path.exists(os.path.join(path, f)) for f in expected)  # a dry run deletes nothing

    done = lake.vacuum("k", retention_hours=0, enforce_retention_duration=False, dry_run=False)
    assert sorted(done.files) == expected
    assert not any(os.path.exists(os.path.join(path, f)) for f in expected)
    assert os.path.exists(os.path.join(log, live))
    assert os.path.exists(os.path.join(covering, "kept.arrow")), "an index of live files only is kept"
    assert sorted(r.id for r in lake.read("k").collect()) == rows == [0, 1, 2, 3, 4]
    assert lake.vacuum("k", retention_hours=0, enforce_retention_duration=False).files == ()
