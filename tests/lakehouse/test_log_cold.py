"""Cold lean tables (`lakehouse._log_cold`): history read on demand by statistics, clustered tiered compaction.

Oracles: the rows the test wrote (a plain list filtered in Python), deltalake's own reading of the table
(`file_uris()` + pyarrow.parquet), and pyarrow's own statistics of each data file.
"""

from __future__ import annotations

import base64
import json
import random

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable

from lakehouse import _log, _log_cold
from lakehouse._log import LeanTable
from lakehouse._log_cold import ColdReader, bloom_filter, bloom_may_hold, file_stats, may_hold, plan_merge, tier

SCHEMA = pa.schema([("run_id", pa.string()), ("step", pa.int64()), ("value", pa.float64()), ("tag", pa.string())])


def _cold(path) -> LeanTable:
    t = LeanTable(
        path=str(path), name="h", schema=SCHEMA, keep_rows=False, cluster_by="run_id", stats_columns=("run_id", "tag")
    )
    t.create_if_missing()
    t.refresh()
    return t


def _batch(rng: random.Random, run: str, n: int) -> list[dict]:
    return [{"run_id": run, "step": s, "value": rng.random(), "tag": None if s % 3 else "x"} for s in range(n)]


def _key(r: dict) -> tuple:
    return (r["run_id"], r["step"], r["value"], r["tag"])


@pytest.fixture()
def small_tiers(monkeypatch):
    """Tiers small enough to reach three levels of merges with a few thousand rows."""
    monkeypatch.setattr(_log, "COMPACT_AFTER_FILES", 6)
    monkeypatch.setattr(_log_cold, "FIRST_TIER_ROWS", 50)
    monkeypatch.setattr(_log_cold, "TIER_FANIN", 3)
    monkeypatch.setattr(_log_cold, "MAX_MERGE_ROWS", 2000)
    monkeypatch.setattr(_log, "ROW_GROUP_ROWS", 16)


def test_cold_table_reads_by_statistics_and_matches_every_other_reader(tmp_path, small_tiers):
    rng = random.Random(7)
    t = _cold(tmp_path)
    written: list[dict] = []
    runs = [f"{rng.getrandbits(128):032x}" for _ in range(120)]
    for i, run in enumerate(runs):
        rows = _batch(rng, run, 5 + i % 7)
        written.extend(rows)
        assert t.write(lambda rows=rows: _log.Change([rows]))
    assert all(f.rows is None for f in t.files.values()), "a cold snapshot holds no rows"

    # compaction ran, in tiers, and every merged file is sorted by run_id in small row groups
    history = [json.loads(line) for p in sorted((tmp_path / "_delta_log").glob("*.json")) for line in p.open()]
    assert sum(1 for a in history if a.get("commitInfo", {}).get("operation") == "OPTIMIZE") >= 3
    sizes = {rel: json.loads(f.add["stats"])["numRecords"] for rel, f in t.files.items()}
    assert max(sizes.values()) > 3 * 50, "a second-tier merge happened"
    assert len(t.files) < 40
    for rel in t.files:
        runs_in_file = pq.read_table(tmp_path / rel, columns=["run_id"]).column("run_id").to_pylist()
        assert runs_in_file == sorted(runs_in_file)

    # the table as deltalake reads it is exactly what was written
    dt = DeltaTable(str(tmp_path))
    seen = [r for f in dt.file_uris() for r in pq.read_table(f).to_pylist()]
    assert sorted(map(_key, seen)) == sorted(map(_key, written))

    # each file's Delta stats are pyarrow's own figures for that file
    for rel, f in t.files.items():
        stats = json.loads(f.add["stats"])
        data = pq.read_table(tmp_path / rel)
        assert stats["numRecords"] == data.num_rows
        assert stats["nullCount"] == {"run_id": 0, "tag": data.column("tag").null_count}
        assert stats["minValues"]["run_id"] == pc.min(data.column("run_id")).as_py()
        assert stats["maxValues"]["run_id"] == pc.max(data.column("run_id")).as_py()

    # lookups from a fresh process-like snapshot equal the Python filter of what was written
    fresh = _cold(tmp_path)
    for run in [*rng.sample(runs, 15), "f" * 32, "0" * 32]:
        got = fresh.rows_where("run_id", run)
        assert sorted(map(_key, got)) == sorted(_key(r) for r in written if r["run_id"] == run)
    assert sorted(map(_key, fresh.rows_where("tag", "x"))) == sorted(_key(r) for r in written if r["tag"] == "x")


def test_lookups_skip_files_whose_statistics_exclude_the_value(tmp_path, small_tiers, monkeypatch):
    rng = random.Random(3)
    t = _cold(tmp_path)
    for _ in range(30):
        run = f"{rng.getrandbits(128):032x}"
        t.write(lambda run=run: _log.Change([_batch(rng, run, 10)]))
    opened: list[str] = []
    real = ColdReader.rows_where

    def spy(self, path, *args):
        opened.append(path)
        return real(self, path, *args)

    monkeypatch.setattr(ColdReader, "rows_where", spy)
    fresh = _cold(tmp_path)
    fresh.rows_where("run_id", "g" * 32)  # above every hex run id: no file may hold it
    assert opened == []
    some = next(iter(fresh.files))
    lo = json.loads(fresh.files[some].add["stats"])["minValues"]["run_id"]
    fresh.rows_where("run_id", lo)
    assert 1 <= len(opened) < len(fresh.files)


def test_the_row_group_cache_stays_within_its_bound(tmp_path, small_tiers):
    rng = random.Random(5)
    t = _cold(tmp_path)
    runs = [f"{rng.getrandbits(128):032x}" for _ in range(60)]
    for run in runs:
        t.write(lambda run=run: _log.Change([_batch(rng, run, 12)]))
    reader = ColdReader(cache_rows=64, footer_bytes=3000, index_files=5)
    for run in runs:
        for rel in t.files:
            reader.rows_where(str(tmp_path / rel), SCHEMA.names, "run_id", run)
        groups = [g.num_rows for g in reader._groups.entries.values()]
        assert reader._groups.total == sum(groups) <= max(64, max(groups))  # the bound, or its one entry over it
        kept = [r.footer_bytes for r in reader._open.entries.values()]
        assert reader._open.total == sum(kept) <= max(3000, max(kept))
        assert len(reader._indexed.entries) <= 5
        assert {p for p, _ in reader._bounds} | {p for p, _ in reader._blooms} <= set(reader._indexed.entries)
    absent = ColdReader()  # a file whose Bloom filter (its add's tag) rules the value out is never opened
    for rel in t.files:
        assert absent.rows_where(str(tmp_path / rel), SCHEMA.names, "run_id", "g" * 32, t._blooms.get(rel)) == []
    ruled_out = {str(tmp_path / rel) for rel in t._blooms if not bloom_may_hold(t._blooms[rel], "g" * 32)}
    assert ruled_out and not ruled_out & (set(absent._open.entries) | {p for p, _ in absent._blooms})
    scanner = ColdReader(scan_bytes=2000)
    for _ in range(2):
        for rel in t.files:
            got = scanner.scan(str(tmp_path / rel), SCHEMA, ["value", "run_id"], "run_id", pa.array(runs[:2]))
            whole = pq.read_table(tmp_path / rel, columns=["value", "run_id"]).to_pylist()
            assert got.to_pylist() == [r for r in whole if r["run_id"] in runs[:2]]  # only the matching rows kept
            sizes = [x.nbytes for x in scanner._scans.entries.values()]
            assert scanner._scans.total == sum(sizes) <= max(2000, max(sizes))


def test_statistics_rules():
    table = pa.table({"run_id": ["b", "a", None], "n": [3, 1, 2], "long": ["x" * 40, "y", "z"], "f": [1.0, 2.0, 3.0]})
    stats = file_stats(table, ["run_id", "n", "long", "f"])
    assert stats == {
        "numRecords": 3,
        "minValues": {"run_id": "a", "n": 1},
        "maxValues": {"run_id": "b", "n": 3},
        "nullCount": {"run_id": 1, "n": 0, "long": 0},
    }, "no min/max for strings past Delta's 32-character prefix, none for doubles"
    assert may_hold(stats, "run_id", "a") and not may_hold(stats, "run_id", "c")
    assert may_hold(stats, "run_id", None) and not may_hold(stats, "n", None)
    assert may_hold(stats, "long", "q") and may_hold(None, "run_id", "zz")
    all_null = file_stats(pa.table({"m": pa.nulls(2, pa.string())}), ["m"])
    assert not may_hold(all_null, "m", "x") and may_hold(all_null, "m", None)


def test_tiers_and_merge_plans(monkeypatch):
    monkeypatch.setattr(_log_cold, "FIRST_TIER_ROWS", 100)
    monkeypatch.setattr(_log_cold, "TIER_FANIN", 4)
    monkeypatch.setattr(_log_cold, "MAX_MERGE_ROWS", 10_000)
    assert [tier(n) for n in (1, 99, 100, 399, 400, 1599, 1600)] == [0, 0, 1, 1, 2, 2, 3]
    assert plan_merge({"a": 10, "b": 10}, 3) is None
    assert sorted(plan_merge({"a": 10, "b": 10, "c": 10, "big": 500}, 3) or []) == ["a", "b", "c"]
    assert sorted(plan_merge({f"f{i}": 120 + i for i in range(4)}, 3) or []) == ["f0", "f1", "f2", "f3"]
    assert plan_merge({f"f{i}": 3000 for i in range(4)}, 3) is None, "a merge never exceeds MAX_MERGE_ROWS"


def test_scans_hits_and_change_ranges_of_a_cold_table(tmp_path, small_tiers):
    """`arrow_where` (a search's scan), `hits_where` + `file_rows` (an update's rewrite) and `on_range_change` (what
    a cache forgets), on a table with merged, remembered and read files, against the rows written."""
    rng = random.Random(11)
    ranges: list[tuple] = []
    t = _cold(tmp_path)
    t.on_range_change = lambda lo, hi: ranges.append((lo, hi))
    written: list[dict] = []
    runs = [f"{rng.getrandbits(128):032x}" for _ in range(80)]
    for run in runs:
        rows = _batch(rng, run, 4)
        written.extend(rows)
        t.write(lambda rows=rows: _log.Change([rows]))
    # one range per data change, never per compaction: each single-run commit names exactly its run
    assert ranges == [(run, run) for run in runs]

    fresh = _cold(tmp_path)  # nothing remembered: every file read from disk
    for table in (t, fresh):
        wanted = [*rng.sample(runs, 9), "g" * 32]
        got = table.arrow_where("run_id", wanted, ["step", "run_id"])
        assert got.column_names == ["step", "run_id"]
        assert sorted(zip(got["run_id"].to_pylist(), got["step"].to_pylist(), strict=True)) == sorted(
            (r["run_id"], r["step"]) for r in written if r["run_id"] in wanted
        )
        tagged = table.arrow_where("tag", ["x"], ["run_id"])
        assert sorted(tagged["run_id"].to_pylist()) == sorted(r["run_id"] for r in written if r["tag"] == "x")
        assert table.arrow_where("run_id", [], ["run_id"]).num_rows == 0

        run = rng.choice(runs)
        hits = table.hits_where("run_id", run)
        assert sorted(_key(r) for r, _ in hits) == sorted(_key(r) for r in written if r["run_id"] == run)
        for _, rel in hits:  # the file named holds the row, and file_rows reads that whole file
            assert run in [r["run_id"] for r in table.file_rows(rel)]
            on_disk = pq.read_table(tmp_path / rel).to_pylist()
            assert sorted(map(_key, table.file_rows(rel))) == sorted(map(_key, on_disk))

    # a snapshot that applies another writer's rewrite hears the removed and added files' ranges
    fresh.on_range_change = lambda lo, hi: ranges.append((lo, hi))
    ranges.clear()
    run = runs[0]
    (_, rel), *_ = t.hits_where("run_id", run)
    kept = [r for r in t.file_rows(rel) if r["run_id"] != run]
    t.write(lambda: _log.Change([kept], [rel]))
    fresh.refresh()
    lo = min([run, *(r["run_id"] for r in kept)])
    assert (lo, max([run, *(r["run_id"] for r in kept)])) in ranges
    assert fresh.rows_where("run_id", run) == []


def test_bloom_filters_hold_every_member_and_let_lookups_skip_large_files(tmp_path, small_tiers, monkeypatch):
    rng = random.Random(13)
    members = [f"{rng.getrandbits(128):032x}" for _ in range(3000)]
    bloom = bloom_filter(pa.array([*members, None, members[0]]))
    assert all(bloom_may_hold(bloom, m) for m in members)
    strangers = [f"{rng.getrandbits(128):032x}" for _ in range(3000)]
    assert sum(bloom_may_hold(bloom, s) for s in strangers) < 3000 * 0.03  # ~1% expected

    t = _cold(tmp_path)
    runs = [f"{rng.getrandbits(128):032x}" for _ in range(150)]
    for run in runs:
        t.write(lambda run=run: _log.Change([_batch(rng, run, 6)]))
    merged = [rel for rel in t.files if json.loads(t.files[rel].add["stats"])["numRecords"] > 16]
    assert merged, "some files hold several row groups"
    for rel in t.files:  # a file of several runs has the filter in its add action's tags, holding its runs
        tags = t.files[rel].add.get("tags") or {}
        in_file = set(pq.read_table(tmp_path / rel, columns=["run_id"]).column("run_id").to_pylist())
        assert _log_cold.BLOOM_KEY + b"run_id" not in (pq.ParquetFile(tmp_path / rel).metadata.metadata or {})
        if len(in_file) == 1:  # one of one run needs none
            assert "lakehouse.bloom.run_id" not in tags
            continue
        stored = base64.b64decode(tags["lakehouse.bloom.run_id"])
        assert all(bloom_may_hold(stored, r) for r in in_file)
    footers: list = []  # ruling tagged files out reads nothing of them
    real_footer = ColdReader._bloom
    monkeypatch.setattr(ColdReader, "_bloom", lambda self, p, c: footers.append(p) or real_footer(self, p, c))
    assert _cold(tmp_path).rows_where("run_id", f"{rng.getrandbits(128):032x}") == []
    assert not {str(tmp_path / rel) for rel in merged} & set(footers)
    read: list = []
    real = ColdReader._group
    monkeypatch.setattr(ColdReader, "_group", lambda self, path, i: read.append(path) or real(self, path, i))
    fresh = _cold(tmp_path)
    needless = 0
    for run in rng.sample(runs, 20):
        read.clear()
        assert len(fresh.rows_where("run_id", run)) == 6
        holding = {str(tmp_path / rel) for _, rel in fresh.hits_where("run_id", run)}
        needless += sum(1 for path in read if path not in holding)
    assert needless <= 2, "row groups are read only in the files holding the run (rarely a false positive more)"
    t.refresh()
    t._checkpoint_and_clean_up()  # the tags survive a checkpoint: a reader starting from it has every filter
    assert _cold(tmp_path)._blooms == t._blooms and len(t._blooms) == len(merged)


def test_a_file_written_before_blooms_were_tags_is_ruled_out_by_its_footer(tmp_path):
    rng = random.Random(17)
    runs = sorted(f"{rng.getrandbits(128):032x}" for _ in range(40))
    table = pa.Table.from_pylist([r for run in runs for r in _batch(rng, run, 3)], schema=SCHEMA)
    bloom = base64.b64encode(bloom_filter(table.column("run_id")))
    pq.write_table(table.replace_schema_metadata({_log_cold.BLOOM_KEY + b"run_id": bloom}), tmp_path / "old.parquet")
    reader = ColdReader()
    path = str(tmp_path / "old.parquet")
    strangers = (f"{rng.getrandbits(128):032x}" for _ in range(1000))
    stranger = next(v for v in strangers if runs[0] < v < runs[-1] and not bloom_may_hold(base64.b64decode(bloom), v))
    assert reader.rows_where(path, SCHEMA.names, "run_id", stranger) == []
    assert not reader._groups.entries and not reader._open.entries, "ruled out by the footer's filter, nothing read"
    assert len(reader.rows_where(path, SCHEMA.names, "run_id", runs[7])) == 3
    assert reader._blooms[(path, "run_id")] == base64.b64decode(bloom)
