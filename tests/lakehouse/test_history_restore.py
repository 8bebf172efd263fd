import pytest

from lakehouse.errors import VersionNotFoundError


@pytest.fixture
def table(lake, spark):
    lake.create_table("h", spark.range(2))
    lake.append("h", spark.range(2, 5))
    lake.merge("h", spark.range(4, 6), on="id")
    return "h"


def test_history_lists_commits_newest_first_with_metrics(lake, table):
    hist = lake.history(table)
    assert [h.version for h in hist] == [2, 1, 0]
    # Operation names are what the writing engine recorded: Delta calls a create with rows a CTAS.
    created = "CREATE TABLE AS SELECT" if lake.engine == "delta-spark" else "CREATE TABLE"
    assert [h.operation for h in hist] == ["MERGE", "WRITE", created]
    merge = hist[0]
    inserted = "numTargetRowsInserted" if lake.engine == "delta-spark" else "num_target_rows_inserted"
    assert int(merge.metrics[inserted]) == 1
    assert [h.version for h in lake.history(table, limit=1)] == [2]
    with pytest.raises(ValueError, match="limit"):
        lake.history(table, limit=0)


def test_restore_to_version_is_a_new_commit(lake, table):
    res = lake.restore(table, version=0)
    assert res.restored_version == 0 and res.version == 3
    assert sorted(r.id for r in lake.read(table).collect()) == [0, 1]
    assert lake.read(table, version=2).count() == 6  # history is kept
    assert lake.history(table, limit=1)[0].operation == "RESTORE"


def test_restore_to_timestamp(lake, table):
    t1 = next(h.timestamp for h in lake.history(table) if h.version == 1)
    assert lake.restore(table, timestamp=t1).restored_version == 1
    assert lake.read(table).count() == 5


def test_restoring_the_latest_version_changes_nothing_as_in_delta(lake, table):
    """delta-spark's RESTORE to the current version makes no commit; deltalake alone would raise."""
    for res in (lake.restore(table, version=2), lake.restore(table, timestamp="2999-01-01")):
        assert (res.version, res.restored_version, res.num_restored_files, res.num_removed_files) == (2, 2, 0, 0)
    assert [h.version for h in lake.history(table)] == [2, 1, 0]


def test_restore_errors(lake, table):
    with pytest.raises(VersionNotFoundError):
        lake.restore(table, version=9)
    with pytest.raises(ValueError, match="exactly one of"):
        lake.restore(table)
