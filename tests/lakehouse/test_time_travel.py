"""Time travel with Delta's rules, under the suite's non-UTC local time zone (see conftest)."""

import time
from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from lakehouse.errors import TimestampOutOfRangeError, VersionNotFoundError


@pytest.fixture
def versions(lake, spark):
    """A table with versions 0, 1, 2 and the UTC commit time of each."""
    lake.create_table("tt", spark.range(1))
    for n in (2, 3):
        time.sleep(0.05)
        lake.append("tt", spark.range(n).selectExpr("id + 100 as id"))
    hist = sorted(lake.history("tt"), key=lambda h: h.version)
    assert [h.version for h in hist] == [0, 1, 2]
    return [h.timestamp for h in hist]


def counts(lake, **kw):
    return lake.read("tt", **kw).count()


def test_read_by_version(lake, versions):
    assert [counts(lake, version=v) for v in (0, 1, 2)] == [1, 3, 6]
    assert counts(lake, versionAsOf=1) == 3
    assert counts(lake) == 6


def test_version_out_of_range_names_available_versions(lake, versions):
    with pytest.raises(VersionNotFoundError) as info:
        lake.read("tt", version=7)
    assert (info.value.earliest, info.value.latest) == (0, 2)
    assert "available versions are [0, 2]" in str(info.value)
    with pytest.raises(VersionNotFoundError):
        lake.read("tt", version=-1)
    with pytest.raises(TypeError):
        lake.read("tt", version="1")


def test_timestamp_picks_latest_commit_at_or_before(lake, versions):
    t0, t1, t2 = versions
    assert counts(lake, timestamp=t0) == 1  # exactly at a commit: inclusive
    assert counts(lake, timestamp=t1 - timedelta(milliseconds=1)) == 1
    assert counts(lake, timestamp=t1) == 3
    assert counts(lake, timestampAsOf=t2) == 6
    assert lake.version_at("tt", t1 + (t2 - t1) / 2) == 1


def test_naive_datetimes_and_strings_are_utc_not_local_time(lake, versions):
    t1 = versions[1]
    naive_utc = t1.astimezone(UTC).replace(tzinfo=None)
    assert counts(lake, timestamp=naive_utc) == 3
    assert counts(lake, timestamp=naive_utc.isoformat(sep=" ")) == 3
    assert counts(lake, timestamp=naive_utc.isoformat() + "Z") == 3
    # the same instant in another zone
    assert counts(lake, timestamp=t1.astimezone(timezone(timedelta(hours=-5)))) == 3
    # the local wall-clock time (New York) read as UTC is five hours earlier: before the table existed
    local_naive = t1.astimezone().replace(tzinfo=None)
    with pytest.raises(TimestampOutOfRangeError):
        lake.read("tt", timestamp=local_naive)


def test_before_first_and_after_last_commit_are_errors(lake, versions):
    with pytest.raises(TimestampOutOfRangeError) as before:
        lake.read("tt", timestamp="2000-01-01")
    assert not before.value.after and "before the first available commit" in str(before.value)
    with pytest.raises(TimestampOutOfRangeError) as after:
        lake.read("tt", timestamp=versions[2] + timedelta(seconds=1))
    assert after.value.after and "after the latest commit" in str(after.value)
    with pytest.raises(TimestampOutOfRangeError):
        lake.read("tt", timestamp=date(2999, 1, 1))


def test_bad_time_travel_arguments(lake, versions):
    with pytest.raises(ValueError, match="not both"):
        lake.read("tt", version=0, timestamp=versions[0])
    with pytest.raises(ValueError, match="not an ISO 8601"):
        lake.read("tt", timestamp="last tuesday")
    with pytest.raises(TypeError):
        lake.read("tt", timestamp=12345)
    with pytest.raises(ValueError, match="version= or versionAsOf="):
        lake.read("tt", version=0, versionAsOf=0)


def test_reading_an_old_version_after_schema_evolution(lake, spark, versions):
    lake.append("tt", spark.range(1).selectExpr("id", "'x' as tag"), schema_evolution=True)
    assert lake.read("tt", version=1).columns == ["id"]
    assert lake.read("tt").columns == ["id", "tag"]


def test_timestamps_are_aware_utc(lake, versions):
    assert all(t.tzinfo is not None and t.utcoffset() == timedelta(0) for t in versions)
    assert abs(versions[0] - datetime.now(UTC)) < timedelta(minutes=5)


def test_version_at_after_the_last_commit_only_when_allowed(lake, versions):
    later = versions[2] + timedelta(days=1)
    with pytest.raises(TimestampOutOfRangeError):
        lake.version_at("tt", later)
    assert lake.version_at("tt", later, allow_after_last=True) == 2
    with pytest.raises(TimestampOutOfRangeError):
        lake.version_at("tt", "2000-01-01", allow_after_last=True)


def test_naive_timestamps_mean_the_session_time_zone_as_in_spark(lake, versions, spark):
    """A naive timestamp is a wall-clock time in spark.sql.session.timeZone, as Spark's timestampAsOf reads it."""
    from lakehouse._session import scoped_conf

    t1 = versions[1]
    with scoped_conf(spark, **{"spark.sql.session.timeZone": "Asia/Kolkata"}):
        wall = t1.astimezone(timezone(timedelta(hours=5, minutes=30))).replace(tzinfo=None)
        assert counts(lake, timestamp=wall) == 3
        assert counts(lake, timestamp=wall.isoformat(sep=" ")) == 3
        # the same wall clock read as UTC would be 5.5 hours later, after the last commit
        with pytest.raises(TimestampOutOfRangeError):
            lake.read("tt", timestamp=wall.replace(tzinfo=UTC) + timedelta(hours=6))
        if lake.engine == "delta-spark":  # the reference: Spark's own timestampAsOf with the same string
            ref = (
                spark.read.format("delta").option("timestampAsOf", wall.isoformat(sep=" ")).load(lake.table_path("tt"))
            )
            assert ref.count() == 3


def test_delta_spark_commit_times_are_deltas_own_even_with_a_skewed_clock(tmp_path, spark):
    """On delta-spark, commit times come from the log's files (no Spark job): Spark's own timestampAsOf is the
    oracle, at and around every commit, after a writer's clock ran ahead (version 1 dated after version 2)."""
    import os

    from lakehouse import Lakehouse

    lake = Lakehouse(tmp_path / "lake", spark=spark, engine="delta-spark")
    lake.create_table("tt", spark.range(1))
    for n in (2, 3):
        lake.append("tt", spark.range(n).selectExpr("id + 100 as id"))
    log = os.path.join(lake.table_path("tt"), "_delta_log")
    v2 = os.stat(os.path.join(log, f"{2:020d}.json")).st_mtime
    os.utime(os.path.join(log, f"{1:020d}.json"), (v2 + 5, v2 + 5))  # version 1's clock was 5 s ahead
    hist = {h.version: h.timestamp for h in lake.history("tt")}  # delta-spark's own (monotonic) commit times
    assert hist[2] == hist[1] + timedelta(milliseconds=1)
    probes = sorted({t + d for t in hist.values() for d in (timedelta(0), timedelta(milliseconds=-1))})
    for probe in probes:
        if probe < hist[0]:
            continue
        text = probe.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ")
        spark_count = spark.read.format("delta").option("timestampAsOf", text).load(lake.table_path("tt")).count()
        assert counts(lake, timestamp=probe) == spark_count, probe
