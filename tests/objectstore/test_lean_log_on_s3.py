"""The lean Delta log on an object store: commits are conditional PUTs, the losers of a race get 412 through
our commit path, and what is written is an ordinary Delta table to delta-rs (the independent reader here)."""

from __future__ import annotations

import pyarrow as pa
from deltalake import DeltaTable, QueryBuilder
from s3_race import commit_race, winners_per_round

from lakehouse import LeanTable

SCHEMA = pa.schema([("id", pa.int64()), ("name", pa.string())])


def _query(dt: DeltaTable, sql: str) -> list[dict]:
    """Rows through delta-rs's query engine (its pyarrow readers can abort a process at exit)."""
    return pa.table(QueryBuilder().register("t", dt).execute(sql).read_all()).to_pylist()


def _rows(table: LeanTable) -> list[tuple]:
    return sorted((r["id"], r["name"]) for f in table.files.values() for r in f.rows)


def test_commits_checkpoints_and_reads_on_s3(s3_root):
    path = f"{s3_root}/t"
    writer = LeanTable(path=path, name="t", schema=SCHEMA, configuration={"delta.checkpointInterval": "3"})
    writer.create_if_missing()
    writer.refresh()
    for i in range(7):
        writer.refresh()
        writer.commit([[{"id": i, "name": f"n{i}"}]])
    writer.refresh()
    writer.commit([[{"id": 0, "name": "n0"}, {"id": 1, "name": "n1"}]], [next(iter(writer.files))])

    reader = LeanTable(path=path, name="t", schema=SCHEMA)  # a cold snapshot: from the checkpoint at 6, then 7, 8
    reader.refresh()
    assert reader.version == 8
    assert _rows(reader) == _rows(writer)

    dt = DeltaTable(path)  # delta-rs over HTTP to the same server, through the environment's AWS variables
    assert dt.version() == 8
    assert sorted((r["id"], r["name"]) for r in _query(dt, "SELECT id, name FROM t")) == _rows(writer)
    dt.load_as_version(2)
    assert sorted(r["id"] for r in _query(dt, "SELECT id FROM t")) == [0, 1]
    assert {h["version"] for h in DeltaTable(path).history()} >= {0, 3, 6, 8}


def test_writers_racing_for_one_version_one_wins_and_the_rest_see_412(s3, s3_root, trials):
    procs, rounds = trials(3, 8), trials(6, 40)
    path = f"{s3_root}/race"
    LeanTable(
        path=path, name="race", schema=pa.schema([("round", pa.int64()), ("process", pa.int64())])
    ).create_if_missing()

    attempts = commit_race(s3.env(), path, procs, rounds)

    assert winners_per_round(attempts) == {r: 1 for r in range(rounds)}
    losses = [a.outcome for a in attempts if a.outcome != "won"]
    assert len(losses) == (procs - 1) * rounds
    assert all(o.startswith("CommitConflict: ") and "HTTP 412" in o for o in losses), losses[:3]
    table = DeltaTable(path)
    assert table.version() == rounds
    rows = _query(table, "SELECT round, process FROM t")
    winners = {(a.round, a.process) for a in attempts if a.outcome == "won"}
    assert {(r["round"], r["process"]) for r in rows} == winners and len(rows) == rounds
