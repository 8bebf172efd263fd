"""Covering indexes (`lakehouse._log_covering`): a cold table's rows kept beside it in Arrow files, exact for every
snapshot whatever was written, deleted or compacted since the file was written.

Oracle: deltalake's own reading of the table (`file_uris()` of the snapshot + pyarrow.parquet), a reader that
shares nothing with ours, at the version our snapshot is at.
"""

from __future__ import annotations

import json
import random

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable

from lakehouse import _log, _log_cold, _log_covering
from lakehouse._log import LeanTable

SCHEMA = pa.schema([("run_id", pa.string()), ("step", pa.int64()), ("tag", pa.string())])
COLUMNS = ["run_id", "step", "tag"]


def _cold(
    path, orders: tuple[tuple[str, ...], ...] = (), sorted_by: str | None = None, *, keep_covering: bool = False
) -> LeanTable:
    t = LeanTable(
        path=str(path),
        name="h",
        schema=SCHEMA,
        keep_rows=False,
        cluster_by="run_id",
        stats_columns=("run_id",),
        keep_covering=keep_covering,
        covering_orders=orders,
        covering_sorted_by=sorted_by,
    )
    t.create_if_missing()
    t.refresh()
    return t


def _rows(table: pa.Table) -> list[tuple]:
    return sorted((r["run_id"], r["step"], r["tag"]) for r in table.select(COLUMNS).to_pylist())


def _deltalake_rows(path, version: int) -> list[tuple]:
    dt = DeltaTable(str(path), version=version)
    return _rows(pa.concat_tables([pq.read_table(f) for f in dt.file_uris()]))


def _stored(path, part: str = "base") -> pa.Table | None:
    """The base or tail on storage of the covering index without kept orders."""
    plain = LeanTable(path=str(path), name="h", schema=SCHEMA, keep_rows=False, cluster_by="run_id")
    found = _log_covering.covering_paths(plain, COLUMNS)[part == "tail"]
    try:
        return pa.ipc.open_file(pa.memory_map(found)).read_all()
    except FileNotFoundError:
        return None


def _covered(path) -> set[str]:
    """The data files the covering index on storage covers: its base's, and its tail's when the tail is of that base."""
    base, tail = _stored(path), _stored(path, "tail")
    assert base is not None
    files = set(json.loads(base.schema.metadata[_log_covering.FILES_KEY]))
    if (
        tail is not None
        and tail.schema.metadata[_log_covering.BASE_KEY] == base.schema.metadata[_log_covering.BASE_KEY]
    ):
        files |= set(json.loads(tail.schema.metadata[_log_covering.FILES_KEY]))
    return files


@pytest.fixture()
def small(monkeypatch):
    monkeypatch.setattr(_log, "COMPACT_AFTER_FILES", 6)
    monkeypatch.setattr(_log_cold, "FIRST_TIER_ROWS", 40)
    monkeypatch.setattr(_log_cold, "TIER_FANIN", 3)
    monkeypatch.setattr(_log_covering, "STALE_FILES", 3)
    monkeypatch.setattr(_log_covering, "STALE_MIN_ROWS", 10)


def test_a_covering_index_is_every_live_row_through_writes_deletes_and_compactions(tmp_path, small, monkeypatch):
    monkeypatch.setattr(_log_covering, "STALE_MIN_ROWS", 40)  # tails between base rewrites
    rng = random.Random(5)
    tails = 0
    writer = _cold(tmp_path)
    runs = [f"{rng.getrandbits(128):032x}" for _ in range(60)]
    deleted: list[str] = []

    def write(run: str, n: int) -> None:
        rows = [{"run_id": run, "step": s, "tag": None if s % 2 else "x"} for s in range(n)]
        writer.write(lambda: _log.Change([rows]))

    for run in runs[:30]:
        write(run, 3)
    reader = _cold(tmp_path)
    assert _rows(reader.covering().table()) == _deltalake_rows(tmp_path, reader.version)
    assert _covered(tmp_path) == set(reader.files), "the first call wrote the covering index of the whole table"
    assert _stored(tmp_path).num_rows == 90

    for step, run in enumerate(runs[30:]):
        write(run, 1 + step % 4)
        if step % 7 == 0:  # a delete: the file holding a run is rewritten without it
            gone = rng.choice(runs[: 30 + step])

            def delete(gone: str = gone) -> _log.Change:
                rels = list(dict.fromkeys(rel for _, rel in writer.hits_where("run_id", gone)))
                kept = [r for rel in rels for r in writer.file_rows(rel) if r["run_id"] != gone]
                return _log.Change([kept] if kept else [], rels)

            writer.write(delete)
            deleted.append(gone)
        fresh = _cold(tmp_path)  # a new process: the covering index on storage, brought up to its snapshot
        for table in (reader, fresh):
            table.refresh()
            assert _rows(table.covering().table()) == _deltalake_rows(tmp_path, table.version)
            rows, live = table.covering().rows()  # every row held, the dead masked
            assert _rows(rows if live is None else rows.filter(live)) == _deltalake_rows(tmp_path, table.version)
            wanted = rng.sample(runs[: 31 + step], 6)  # deleted runs among them, now and then
            expected = [r for r in _deltalake_rows(tmp_path, table.version) if r[0] in wanted]
            assert _rows(table.covering().where(wanted)) == expected
        assert len(set(reader.files) - _covered(tmp_path)) <= _log_covering.STALE_FILES, "kept up as it fell behind"
        tails += _stored(tmp_path, "tail") is not None
        # with kept orders, and sorted by step instead of by hash (other index files, all kept side by side)
        for ordered in (_cold(tmp_path, ORDERS), _cold(tmp_path, (("tag",),), sorted_by="step")):
            expected = _deltalake_rows(tmp_path, ordered.version)
            _check_first_and_having(ordered, expected, runs, deleted, rng)
            wanted = rng.sample(runs[: 31 + step], 6)
            assert _rows(ordered.covering().where(wanted)) == [r for r in expected if r[0] in wanted]
    history = [json.loads(line) for p in sorted((tmp_path / "_delta_log").glob("*.json")) for line in p.open()]
    assert sum(1 for a in history if a.get("commitInfo", {}).get("operation") == "OPTIMIZE") >= 2
    assert tails, "tails were written between bases"


ORDERS = (("step",), ("tag",))


def _check_first_and_having(
    t: LeanTable, expected: list[tuple], runs: list[str], deleted: list[str], rng: random.Random
) -> None:
    """`first` and `having` against the oracle's rows `expected`, through whichever segments the index has now."""
    covering = t.covering()
    assert covering.base is None or set(covering.base.orders) == set(ORDERS), "the base keeps its orders"
    rows = covering.rows()[0]
    for k in (1, 3, 17, len(expected) + 5):
        for descending in (False, True):
            first = covering.first("step", k, descending=descending)
            got = _rows(rows.take(first))
            assert _rows(covering.take(first)) == got, "taken segment by segment (a slice where consecutive)"
            assert len(got) == len(set(got)) and set(got) <= set(expected), "live rows, each once"
            if got:  # every row outside comes after every row inside: all rows up to the last step inside are in
                last = (min if descending else max)(r[1] for r in got)
                assert got == [r for r in expected if (r[1] >= last if descending else r[1] <= last)]
            if k > rows.num_rows:
                assert got == expected
    wanted = [*rng.sample(runs, 12), *deleted, "missing", runs[0]]  # the deleted: their rows dead, never found
    for tag in ("x", "y"):
        holding = {r[0] for r in expected if r[2] == tag}
        assert covering.having(pa.array(wanted), {"tag": tag}).tolist() == [w in holding for w in wanted]


def test_first_and_having_never_answer_with_the_dead_rows_a_base_still_holds(tmp_path, small, monkeypatch):
    monkeypatch.setattr(_log, "COMPACT_AFTER_FILES", 100)  # no compaction: one file per run
    t = _cold(tmp_path, ORDERS)
    runs = [f"r{i:02d}" for i in range(20)]
    by_step = _cold(tmp_path, (("tag",),), sorted_by="step")
    for i, run in enumerate(runs):
        rows = [{"run_id": run, "step": i % 5 + 5 * j, "tag": "x" if i % 3 else "y"} for j in range(2)]
        t.write(lambda rows=rows: _log.Change([rows]))
    by_step.refresh()
    assert t.covering().base is not None and by_step.covering().base is not None
    gone = ["r00", "r04"]  # steps 0 and 5, tag y; 4 and 9, tag x: first in either direction
    t.write(lambda: _log.Change([], [rel for run in gone for _, rel in t.hits_where("run_id", run)]))
    covering = t.covering()
    assert covering.base is not None and id(covering.base) in covering.alive, "the base holds them, masked"
    _check_first_and_having(t, _deltalake_rows(tmp_path, t.version), runs, gone, random.Random(1))
    by_step.refresh()
    sorted_base = by_step.covering().base
    assert sorted_base is not None and id(sorted_base) in by_step.covering().alive
    assert sorted_base.rows.column("step").to_pylist() == sorted(sorted_base.rows.column("step").to_pylist())
    _check_first_and_having(by_step, _deltalake_rows(tmp_path, t.version), runs, gone, random.Random(1))


def test_a_writer_keeps_the_covering_index_up_to_its_compactions(tmp_path, small):
    writer = _cold(tmp_path, keep_covering=True)
    for i in range(100):
        rows = [{"run_id": f"r{i:03d}", "step": s, "tag": None} for s in range(1 + i % 3)]
        writer.write(lambda rows=rows: _log.Change([rows]))
        if (tmp_path / _log_covering.COVERING_FOLDER).exists():
            # what the covering index lacks is at most the small files written since the last compaction
            assert len(set(writer.files) - _covered(tmp_path)) < _log.COMPACT_AFTER_FILES
    assert _covered(tmp_path), "the writer wrote the covering index without any search"
    reader = _cold(tmp_path)
    assert _rows(reader.covering().table()) == _deltalake_rows(tmp_path, reader.version)


def test_where_finds_the_rows_of_values_by_hash_colliding_ones_included(tmp_path, small):
    t = _cold(tmp_path)
    # the hash reads a value's length, head and tail: these two differ only in the middle, and collide
    twins = ["aaaaaaaa" + "X" + "b" * 16, "aaaaaaaa" + "Y" + "b" * 16]
    assert len(set(_log_covering.hash_values(pa.array(twins)).tolist())) == 1
    runs = [*twins, *(f"run-{i}" for i in range(40)), ""]
    for run in runs:
        t.write(
            lambda run=run: _log.Change(
                [[{"run_id": run, "step": 1, "tag": None}, {"run_id": run, "step": 2, "tag": "t"}]]
            )
        )
    t.covering()  # written whole
    t.write(lambda: _log.Change([[{"run_id": "late", "step": 9, "tag": None}]]))  # a file the covering index lacks
    for wanted in ([twins[0]], twins, ["run-3", "late", "missing"], [""], [], runs):
        got = t.covering().where(wanted)
        expected = sorted((r, s) for r in [*runs, "late"] for s in ((9,) if r == "late" else (1, 2)) if r in wanted)
        assert sorted(zip(got["run_id"].to_pylist(), got["step"].to_pylist(), strict=True)) == expected


def _reference_hash(value: str | None) -> int:
    """The documented hash, one byte at a time: length, then the last 16 and the first 8 bytes (0 past the end)."""
    raw = (value or "").encode()
    out = len(raw)
    for j in range(24):
        k = j if j < 16 else j - 16
        byte = (raw[len(raw) - 1 - k] if j < 16 else raw[k]) if len(raw) > k else 0
        out = (out * 1099511628211 + byte) % 2**64
    return out


def test_hash_values_of_a_slice_are_those_of_its_strings():
    values = pa.array(["", "a", "é" * 30, None, "tr-" + "f" * 32, "x" * 100])
    assert _log_covering.hash_values(values).tolist() == [_reference_hash(v) for v in values.to_pylist()]
    whole = _log_covering.hash_values(values).tolist()
    for i in range(len(values)):
        assert _log_covering.hash_values(values.slice(i, 1)).tolist() == [whole[i]]
    long = pa.array(["tr-" + "0123456789abcdef" * 2, "é" * 30, "a" * 24, "z" * 100])  # all 24 bytes or more
    assert _log_covering.hash_values(long).tolist() == [_reference_hash(v) for v in long.to_pylist()]
    assert whole[0] == whole[3], "null hashes as the empty string"
    assert len(set(whole)) == 5


def test_a_damaged_or_foreign_covering_index_is_ignored_and_rebuilt(tmp_path, small, monkeypatch):
    monkeypatch.setattr(_log, "COMPACT_AFTER_FILES", 100)  # no compaction: the tail below stays a tail
    t = _cold(tmp_path)
    for i in range(5):
        t.write(lambda i=i: _log.Change([[{"run_id": f"r{i}", "step": i, "tag": None}]]))
    expected = _deltalake_rows(tmp_path, t.version)
    assert _rows(t.covering().table()) == expected
    (stored,) = (tmp_path / _log_covering.COVERING_FOLDER).glob("*.arrow")  # a base, no tail yet
    whole = stored.read_bytes()
    for damaged in (whole[: len(whole) // 2], b"", b"not arrow at all"):
        stored.write_bytes(damaged)
        assert _rows(_cold(tmp_path).covering().table()) == expected
        assert stored.read_bytes() != damaged, "rebuilt"
    # a covering index of other columns under this name (say, an older schema) is not trusted either
    other = pa.table({"run_id": ["zzz"], "_file": pa.array([0], pa.int32())})
    meta = {_log_covering.FILES_KEY: json.dumps(sorted(t.files)[:1]).encode(), _log_covering.BASE_KEY: b"x"}
    with pa.ipc.new_file(str(stored), other.schema.with_metadata(meta)) as w:
        w.write_table(other.replace_schema_metadata(meta))
    assert _rows(_cold(tmp_path).covering().table()) == expected
    # nor one hashed another way (an older release's): its binary search would miss rows
    older = _stored(tmp_path)
    stale = older.replace_schema_metadata({**older.schema.metadata, _log_covering.HASH_KEY: b"0"})
    with pa.ipc.new_file(str(stored), stale.schema) as w:
        w.write_table(stale)
    assert sorted(_cold(tmp_path).covering().where(["r1", "r3"])["step"].to_pylist()) == [1, 3]
    assert _stored(tmp_path).schema.metadata[_log_covering.HASH_KEY] == _log_covering.HASH_VERSION, "rewritten"
    # a tail of another base (its base rewritten since by another process) is not read either
    for i in range(5, 5 + _log_covering.STALE_FILES + 1):
        t.write(lambda i=i: _log.Change([[{"run_id": f"r{i}", "step": i, "tag": None}]]))
    assert _rows(_cold(tmp_path).covering().table()) == _deltalake_rows(tmp_path, t.version)
    tail = _stored(tmp_path, "tail")
    assert tail is not None and tail.num_rows == _log_covering.STALE_FILES + 1
    foreign = tail.replace_schema_metadata({**tail.schema.metadata, _log_covering.BASE_KEY: b"another"})
    (tail_path,) = (tmp_path / _log_covering.COVERING_FOLDER).glob("*.tail.arrow")
    with pa.ipc.new_file(str(tail_path), foreign.schema) as w:
        w.write_table(foreign)
    assert _rows(_cold(tmp_path).covering().table()) == _deltalake_rows(tmp_path, t.version)


def test_a_lake_it_cannot_write_still_answers_exactly(tmp_path, small, monkeypatch):
    t = _cold(tmp_path)
    for i in range(5):
        t.write(lambda i=i: _log.Change([[{"run_id": f"r{i}", "step": i, "tag": None}]]))

    def refused(path, data):
        raise PermissionError(13, "Permission denied", path)

    monkeypatch.setattr(_log_covering._storage, "replace", refused)
    assert _rows(t.covering().table()) == _deltalake_rows(tmp_path, t.version)
    assert not list((tmp_path / _log_covering.COVERING_FOLDER).glob("*.arrow"))
    t.write(lambda: _log.Change([[{"run_id": "r9", "step": 9, "tag": None}]]))
    assert _rows(t.covering().table()) == _deltalake_rows(tmp_path, t.version)
    assert sorted(t.covering().where(["r9", "r1"])["run_id"].to_pylist()) == ["r1", "r9"]


def test_an_empty_table_answers_empty_without_a_file(tmp_path):
    t = _cold(tmp_path)
    covering = t.covering()
    assert covering.table().num_rows == 0 and covering.table().schema == SCHEMA
    assert covering.where(["r1"]).num_rows == 0
    assert covering.rows()[0].num_rows == 0
    assert not (tmp_path / _log_covering.COVERING_FOLDER).exists()
