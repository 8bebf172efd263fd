"""Covering indexes: every live row of a lean table, kept beside it in mapped Arrow files, exact for any snapshot;
what a SQL store's index is to its table (Hyperspace's covering indexes over Delta, in one file and a tail).

A search over a large cold table (the trace tables' 100,000s of rows) would otherwise read every live data file on
its first call in a process: tens of Parquet files, ~100 ms, where a SQL store walks a B-tree. The covering index
lives in `<table>/_lakehouse_covering/`: a base `<digest>.arrow` and a tail `<digest>.tail.arrow`, uncompressed
Arrow IPC files that a process maps into memory (nothing decoded), each row with the code of the data file that
holds it (`_file`), the file names in the schema metadata. The base's rows are sorted by a 64-bit hash (`_h`) of
the table's clustering column, so the rows of a few values (a page of traces' tags) are found by binary search;
the tail holds the rows of files written since the base (a few percent of it), scanned. A base also keeps the
orders a table asks for (`LeanTable.covering_orders`): its row numbers sorted by those columns, so the first rows by
a timestamp are a slice (`Covering.first`) and the rows holding given values one run found by binary search
(`Covering.having`), the ties of a run in hash order. A table may have its base sorted by a column instead of by
hash (`LeanTable.covering_sorted_by`: the traces by time): its first rows by that column are then consecutive, a
slice, while a lookup by key scans it.

Exact for the snapshot asked at, however old the files: rows of data files no longer live (a delete, an update, a
compaction by us, Spark or delta-rs) are masked out, and the live files neither file covers are read (or taken from
the rows this process wrote), as Hyperspace's "hybrid scan" does. A data file never changes once written, so the
rows of a live file are the rows it had when the index was written. Upkeep, by whoever reads or writes: the tail
is rewritten when more than `STALE_FILES` live files are not covered (a writer of a `keep_covering` table: after
each compaction), the base when the tail and the dead rows pass `STALE_FRACTION` of the rows (amortised: a
constant cost per row written). A tail names its base; a tail of another base, or a file that cannot be read or
holds other columns, is ignored and rewritten. Readers see the old file or the new one (atomic replace); a failed
write costs the next process the reads it would have saved. Delta's VACUUM (Spark's and delta-rs's) skips folders
whose names start with `_`; `Lakehouse.vacuum` removes the index files holding rows of the data files it removes
(`holding`), so a row erased from the table is erased here too. Dropping the table's folder drops them.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc

from . import _storage
from ._log_cold import read_arrow

if TYPE_CHECKING:
    from ._log import LeanTable

log = logging.getLogger(__name__)

COVERING_FOLDER = "_lakehouse_covering"
FILE_COLUMN = "_file"
HASH_COLUMN = "_h"
FILES_KEY = b"lakehouse.covering.files"
BASE_KEY = b"lakehouse.covering.base"
COUNTS_KEY = b"lakehouse.covering.counts"
ORDER_PREFIX = "_by:"
"""A base's column `_by:<c1>,<c2>` holds its row numbers sorted by those columns (a table's `covering_orders`)."""
HASH_KEY = b"lakehouse.covering.hash"
SORTED_KEY = b"lakehouse.covering.sorted"
"""The column a base's rows are sorted by instead of the key's hash (`LeanTable.covering_sorted_by`), or empty."""
STALE_FILES = 4
"""The tail is rewritten when more live files than this are covered by neither file (each costs a Parquet read)."""
STALE_FRACTION = 0.05
"""The base is rewritten when the tail's rows and the dead rows pass this fraction of all (and `STALE_MIN_ROWS`)."""
STALE_MIN_ROWS = 1024
LOOKUP_FRACTION = 0.125
"""`where` of more values than this fraction of the base's rows scans instead of searching."""

_PRIME = 1099511628211
_TAIL, _HEAD = 16, 8
"""The hash reads a value's length, its last `_TAIL` and first `_HEAD` bytes (ids differ in their random tails);
two values with one hash are told apart by comparing them, so a collision costs time, never a wrong row."""
HASH_VERSION = b"1"
"""Stored with every base: a base hashed another way is not searched by this one (it is rewritten)."""
_POWERS = np.array([pow(_PRIME, _TAIL + _HEAD - 1 - j, 2**64) for j in range(_TAIL + _HEAD)], np.uint64)
_LENGTH_POWER = np.uint64(pow(_PRIME, _TAIL + _HEAD, 2**64))
_POSITIONS = np.array([-1 - j for j in range(_TAIL)] + list(range(_HEAD)), np.int64)


def hash_values(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """The 64-bit hash of each string of `values` (null: as the empty string), vectorised: the length times
    `_PRIME`^24 plus each read byte times its power of `_PRIME`, modulo 2^64 (a byte past the string reads 0)."""
    if isinstance(values, pa.ChunkedArray):
        parts = [hash_values(c) for c in values.chunks]
        return np.concatenate(parts) if parts else np.zeros(0, np.uint64)
    offsets_buffer, data_buffer = values.buffers()[1:3]
    if len(values) == 0 or offsets_buffer is None:
        return np.zeros(len(values), np.uint64)
    offsets = np.frombuffer(offsets_buffer, np.int32, count=len(values) + 1, offset=values.offset * 4)
    held = data_buffer is not None and data_buffer.size
    data = np.frombuffer(data_buffer, np.uint8) if held else np.zeros(1, np.uint8)
    starts, ends = offsets[:-1].astype(np.int64), offsets[1:].astype(np.int64)
    lengths = ends - starts
    if lengths.min() >= _TAIL + _HEAD:  # every read byte inside its string (ids): no masking
        at = np.empty((len(values), _TAIL + _HEAD), np.int64)
        at[:, :_TAIL] = ends[:, None] + _POSITIONS[:_TAIL]
        at[:, _TAIL:] = starts[:, None] + _POSITIONS[_TAIL:]
        with np.errstate(over="ignore"):
            hashed: np.ndarray = lengths.astype(np.uint64) * _LENGTH_POWER
            hashed += (data[at].astype(np.uint64) * _POWERS).sum(axis=1, dtype=np.uint64)
        return hashed
    at = np.where(_POSITIONS < 0, ends[:, None], starts[:, None]) + _POSITIONS  # (values, 24) byte positions
    inside = (at >= starts[:, None]) & (at < ends[:, None])
    read = np.where(inside, data[np.where(inside, at, 0)], 0).astype(np.uint64)
    with np.errstate(over="ignore"):
        out: np.ndarray = lengths.astype(np.uint64) * _LENGTH_POWER + (read * _POWERS).sum(axis=1, dtype=np.uint64)
    return out


@dataclass
class Segment:
    """Rows of the data files `files` (`_file` is the code: an index into it, `counts` the rows of each), as one
    file holds them (or as this process read them); `hashed`: sorted by `_h`, the hash of the key column."""

    files: list[str]
    rows: pa.Table
    counts: list[int]
    hashed: bool = False
    orders: dict[tuple[str, ...], np.ndarray] = field(default_factory=dict)
    """A base's kept orders: columns -> its row numbers sorted by them (ties in hash order)."""


@dataclass
class Covering:
    """A covering index brought up to one snapshot (`live`, its data files): its segments (base, tail, files read
    now) and, for the segments holding rows of files no longer live, which of their files are (`alive`)."""

    key: str | None
    schema: pa.Schema
    """Of the rows (without `_file` and `_h`)."""
    base: Segment | None = None
    base_id: str = ""
    tail: Segment | None = None
    extra: list[Segment] = field(default_factory=list)
    alive: dict[int, np.ndarray] = field(default_factory=dict)
    """id(segment) -> per file code, whether it is live (segments whose files all are: absent)."""
    live: frozenset[str] = frozenset()
    _masks: dict[int, np.ndarray] = field(default_factory=dict)

    def segments(self) -> list[Segment]:
        return [s for s in (self.base, self.tail, *self.extra) if s is not None]

    def mask(self, segment: Segment) -> np.ndarray | None:
        """Which rows of `segment` are live (None: all), computed once."""
        alive = self.alive.get(id(segment))
        if alive is None:
            return None
        found = self._masks.get(id(segment))
        if found is None:
            found = self._masks[id(segment)] = alive[segment.rows.column(FILE_COLUMN).to_numpy()]
        return found

    def table(self) -> pa.Table:
        """Every live row (in no particular order)."""
        parts = [self.schema.empty_table()]
        for s in self.segments():
            mask = self.mask(s)
            parts.append(_plain(s.rows) if mask is None else _plain(s.rows).filter(pa.array(mask)))
        return pa.concat_tables(parts)

    def rows(self) -> tuple[pa.Table, pa.Array | None]:
        """Every row the segments hold, and which are live (None: all): a search masks instead of copying."""
        segments = self.segments()
        table = pa.concat_tables([self.schema.empty_table(), *(_plain(s.rows) for s in segments)])
        if not any(id(s) in self.alive for s in segments):
            return table, None
        live = [m if (m := self.mask(s)) is not None else np.ones(s.rows.num_rows, bool) for s in segments]
        return table, pa.array(np.concatenate(live))

    def take(self, indices: np.ndarray, columns: list[str] | None = None) -> pa.Table:
        """Rows `indices` of `rows()` (in that order), `columns` of them: taken segment by segment (a take over the
        concatenated table would first copy every column whole)."""
        segments = self.segments()
        bounds = np.cumsum([0, *(s.rows.num_rows for s in segments)])
        which = np.searchsorted(bounds, indices, "right") - 1
        parts, order = [], []
        for i in np.unique(which):
            picked = np.flatnonzero(which == i)
            rows = _plain(segments[i].rows)
            rows = rows if columns is None else rows.select(columns)
            at = indices[picked] - bounds[i]
            if at[-1] - at[0] == len(at) - 1 and (len(at) == 1 or (np.diff(at) == 1).all()):
                parts.append(rows.slice(int(at[0]), len(at)))  # consecutive rows (a slice of a sorted base): no copy
            else:
                parts.append(rows.take(pa.array(at, pa.int64())))
            order.append(picked)
        if not parts:
            empty = self.schema.empty_table()
            return empty if columns is None else empty.select(columns)
        taken = pa.concat_tables(parts)
        return taken if len(parts) == 1 else taken.take(pa.array(np.argsort(np.concatenate(order)), pa.int64()))

    def first(self, column: str, k: int, *, descending: bool = False) -> np.ndarray:
        """The live rows (numbers in `rows()`) whose `column` (numbers, no nulls) is among the first `k` values of
        every row held, ties at the k-th included, so every row outside comes after every row inside (in ascending
        or `descending` order): through a base's kept order of `column` a slice of it, elsewhere a partition."""
        if k < 1:
            raise ValueError(f"Covering.first needs k >= 1 rows, got {k}")
        picks, values, cut = [], [], None
        start = 0
        for s in self.segments():
            held = _numpy(s.rows.column(column))
            kept = s.orders.get((column,))
            if len(held) <= k:
                at = np.arange(len(held))
            elif kept is not None:  # ascending: the last k (their ties before them) or the first k (and after)
                edge = held[kept[-k]] if descending else held[kept[k - 1]]
                if descending:
                    at = kept[bisect.bisect_left(kept, edge, hi=len(kept) - k, key=held.__getitem__) :]
                else:
                    at = kept[: bisect.bisect_right(kept, edge, lo=k, key=held.__getitem__)]
            else:
                edge = np.partition(held, len(held) - k)[-k] if descending else np.partition(held, k - 1)[k - 1]
                at = np.flatnonzero(held >= edge if descending else held <= edge)
            if len(held) > k:
                cut = edge if cut is None else (max(cut, edge) if descending else min(cut, edge))
            mask = self.mask(s)
            if mask is not None:
                at = at[mask[at]]
            picks.append(at + start)
            values.append(held[at])
            start += len(held)
        if not picks:
            return np.zeros(0, np.int64)
        rows, held = np.concatenate(picks), np.concatenate(values)
        return rows if cut is None else rows[held >= cut if descending else held <= cut]

    def where(self, values: Iterable[str] | pa.Array) -> pa.Table:
        """The live rows whose key column is one of `values`: a binary search of the base by hash, a scan of the
        rest."""
        assert self.key is not None
        wanted = values if isinstance(values, pa.Array) else pa.array(list(values), pa.string())
        wanted = wanted if wanted.type == pa.string() else wanted.cast(pa.string())
        parts = [self.schema.empty_table()]
        for s in self.segments():
            alive = self.alive.get(id(s))
            if s.hashed and len(wanted) <= LOOKUP_FRACTION * s.rows.num_rows:
                at = pa.array(_hash_rows(s.rows.column(HASH_COLUMN), hash_values(wanted)), pa.int64())
                if alive is not None:
                    at = at.filter(pa.array(alive[s.rows.column(FILE_COLUMN).take(at).to_numpy()]))
                parts.append(_plain(s.rows).take(at))
            else:
                mask = self.mask(s)
                parts.append(_plain(s.rows) if mask is None else _plain(s.rows).filter(pa.array(mask)))
        found = pa.concat_tables(parts)
        return found.filter(pc.is_in(found.column(self.key), value_set=wanted)) if found.num_rows else found

    def having(self, keys: pa.Array, equal: dict[str, object]) -> np.ndarray:
        """Which of `keys` (values of the key column) have a live row whose columns hold `equal`'s values (not
        null): in a base keeping the order of exactly those columns, the rows holding them are one run of it (a
        binary search), their hashes ascending, so each key is a binary search in them; elsewhere the rows are
        filtered. Exact: a key is matched by comparing it with the row's, not by its hash alone."""
        assert self.key is not None
        keys = keys if keys.type == pa.string() else keys.cast(pa.string())
        out = np.zeros(len(keys), bool)
        order = tuple(equal)
        for s in self.segments():
            kept = s.orders.get(order)
            if kept is None or not s.hashed:
                rows, mask = _plain(s.rows), self.mask(s)
                matched = pa.array(mask) if mask is not None else None
                for column, value in equal.items():
                    same = pc.fill_null(pc.equal(rows.column(column), value), False)
                    matched = same if matched is None else pc.and_(matched, same)
                found = rows.column(self.key).filter(matched) if matched is not None else rows.column(self.key)
                out |= pc.is_in(keys, value_set=found.combine_chunks()).to_numpy(zero_copy_only=False)
                continue
            lo, hi = _equal_run(kept, [s.rows.column(c) for c in order], [equal[c] for c in order])
            found = kept[lo:hi]
            mask = self.mask(s)
            if mask is not None:
                found = found[mask[found]]
            hashes = _numpy(s.rows.column(HASH_COLUMN))[found]
            wanted = hash_values(keys)
            first = np.searchsorted(hashes, wanted, "left")
            counts = np.searchsorted(hashes, wanted, "right") - first
            if not counts.any():
                continue
            which = np.repeat(np.arange(len(keys)), counts)
            at = np.repeat(first - np.cumsum(counts) + counts, counts) + np.arange(int(counts.sum()))
            theirs = s.rows.column(self.key).take(pa.array(found[at], pa.int64()))
            same = pc.fill_null(pc.equal(keys.take(pa.array(which, pa.int64())), theirs), False)
            same = same.to_numpy(zero_copy_only=False)
            out[which[same]] = True
        return out


def _numpy(column: pa.ChunkedArray) -> np.ndarray:
    """A mapped column as numbers, without a copy when it is one chunk."""
    out: np.ndarray = column.chunk(0).to_numpy() if column.num_chunks == 1 else column.to_numpy()
    return out


def _equal_run(kept: np.ndarray, columns: list[pa.ChunkedArray], values: list[object]) -> tuple[int, int]:
    """The run `[lo, hi)` of the kept order `kept` (row numbers sorted by `columns`, nulls last, as Arrow sorts)
    whose rows hold `values`: a binary search reading a few dozen rows."""
    chunks = [c.combine_chunks() if c.num_chunks != 1 else c.chunk(0) for c in columns]
    target = tuple((v is None, v) for v in values)

    def at(row: np.integer) -> tuple[tuple[bool, object], ...]:
        return tuple((v is None, v) for v in (c[int(row)].as_py() for c in chunks))

    lo = bisect.bisect_left(kept, target, key=at)
    return lo, bisect.bisect_right(kept, target, lo=lo, key=at)


def _plain(rows: pa.Table) -> pa.Table:
    """The rows' own columns (without the file codes, the hashes and the kept orders)."""
    return _without_base_columns(rows).drop_columns([c for c in rows.column_names if c == FILE_COLUMN])


def _without_base_columns(rows: pa.Table) -> pa.Table:
    """The rows without what only a base holds (the hashes and the kept orders)."""
    return rows.drop_columns([c for c in rows.column_names if c == HASH_COLUMN or c.startswith(ORDER_PREFIX)])


def _order_column(order: tuple[str, ...]) -> str:
    return ORDER_PREFIX + ",".join(order)


def _hash_rows(sorted_hashes: pa.ChunkedArray, hashes: np.ndarray) -> np.ndarray:
    """The row numbers whose hash is one of `hashes`, by binary search of `sorted_hashes`."""
    held = _numpy(sorted_hashes)
    hashes = np.unique(hashes)  # sorted, each once: values sharing a hash share its rows
    lo = np.searchsorted(held, hashes, "left")
    counts = np.searchsorted(held, hashes, "right") - lo
    starts = np.repeat(lo - np.cumsum(counts) + counts, counts)  # each run's start, less the rows before it
    return starts + np.arange(int(counts.sum()))


def covering_paths(table: LeanTable, columns: list[str]) -> tuple[str, str]:
    """(base, tail) of the covering index of `columns`: named by the columns and their types (and the orders its
    base keeps)."""
    named = [[c, str(table.schema.field(c).type)] for c in columns]
    orders, by = _orders(table, columns), _sorted_by(table, columns)
    layout: dict[str, object] = {"orders": orders} if orders else {}
    layout.update({"sorted": by} if by else {})
    spec = json.dumps({"columns": named, **layout}) if layout else json.dumps(named)
    digest = hashlib.sha1(spec.encode()).hexdigest()[:16]
    folder = _storage.join(table.path, COVERING_FOLDER)
    return _storage.join(folder, f"{digest}.arrow"), _storage.join(folder, f"{digest}.tail.arrow")


def _key(table: LeanTable, columns: list[str]) -> str | None:
    key = table.cluster_by
    return key if key in columns and table.schema.field(key).type == pa.string() else None


def _orders(table: LeanTable, columns: list[str]) -> list[tuple[str, ...]]:
    """The orders of `columns` the base keeps (`LeanTable.covering_orders`)."""
    return [tuple(o) for o in table.covering_orders if set(o) <= set(columns)]


def _sorted_by(table: LeanTable, columns: list[str]) -> str | None:
    """The column the base's rows are sorted by instead of the key's hash (`LeanTable.covering_sorted_by`)."""
    by = table.covering_sorted_by
    return by if by in columns else None


def _schema(table: LeanTable, columns: list[str]) -> pa.Schema:
    return pa.schema([*(table.schema.field(c) for c in columns), pa.field(FILE_COLUMN, pa.int32())])


def _open(path: str) -> pa.ipc.RecordBatchFileReader:
    """An index file: mapped into memory on a local disk (nothing read until used), read whole from an object store."""
    source = pa.BufferReader(_storage.read(path)) if _storage.is_object_store(path) else pa.memory_map(path)
    return pa.ipc.open_file(source)


def _load(
    path: str, schema: pa.Schema, orders: Iterable[tuple[str, ...]] = (), sorted_by: str | None = None
) -> tuple[Segment, str] | None:
    """The segment stored at `path` and the base it belongs to, or None when there is none, it cannot be read, or
    it holds other columns (or was hashed another way, or keeps other orders than `orders`, or is a base sorted
    otherwise than by `sorted_by`)."""
    try:
        rows = _open(path).read_all()
        metadata = rows.schema.metadata or {}
        files, counts = json.loads(metadata[FILES_KEY]), json.loads(metadata[COUNTS_KEY])
        base, version = metadata[BASE_KEY].decode(), metadata[HASH_KEY]
        by = metadata.get(SORTED_KEY, b"").decode() or None
    except (FileNotFoundError, KeyError):
        return None
    except (OSError, pa.ArrowException, ValueError) as exc:  # damaged, truncated: rewritten from the table
        log.warning("ignoring the unreadable covering index %s (%s); it will be rewritten", path, exc)
        return None
    names = [f.name for f in schema]
    extra = rows.schema.names[len(names) :]
    hashed = extra[:1] == [HASH_COLUMN]
    kept = extra[int(hashed) :]
    orders = [o for o in orders if o != (sorted_by,)]  # that order is the rows' own
    if kept and kept != [_order_column(o) for o in orders]:
        return None
    if by is not None and by != sorted_by:  # a base sorted another way
        return None
    if not rows.select(names).schema.remove_metadata().equals(schema) or version != HASH_VERSION:
        return None
    if not isinstance(files, list) or not isinstance(counts, list) or len(files) != len(counts):
        return None
    segment = Segment(files, rows.replace_schema_metadata(None), counts, hashed)
    if kept:
        segment.orders = {o: _numpy(rows.column(_order_column(o))) for o in orders}
    if by is not None:
        segment.orders[(by,)] = np.arange(rows.num_rows, dtype=np.int32)
    return segment, base


def _file_rows(table: LeanTable, rel: str, columns: list[str]) -> Segment:
    held = table.files[rel].rows if table.keep_rows else table._recent.get(rel)
    if held is not None:
        schema = pa.schema([table.schema.field(c) for c in columns])
        part = pa.Table.from_pylist([{c: r.get(c) for c in columns} for r in held], schema=schema)
    else:
        part = read_arrow(table.path, rel, table.schema).select(columns)
    codes = pa.array(np.zeros(part.num_rows, np.int32))
    return Segment([rel], part.append_column(FILE_COLUMN, codes), [part.num_rows])


def live_covering(
    table: LeanTable, columns: list[str], cache: dict[tuple[str, ...], Covering], *, writer: bool = False
) -> Covering:
    """The covering index of `columns` of `table`'s snapshot: the files beside the table (or this process's copy,
    `cache`), their dead rows masked, the live files they lack read; the tail or the base rewritten when they lack
    too much (`writer`: the tail whenever a file is lacking, as after a compaction)."""
    cover = cache.get(tuple(columns))
    live = table.files
    if cover is not None and len(cover.live) == len(live) and cover.live == live.keys():
        return cover  # the snapshot it was brought up to
    schema, orders, by = _schema(table, columns), _orders(table, columns), _sorted_by(table, columns)
    plain = pa.schema([table.schema.field(c) for c in columns])
    if not live and cover is None:
        return Covering(_key(table, columns), plain)  # an empty table: nothing to read or keep
    base_path, tail_path = covering_paths(table, columns)
    if cover is None:
        cover = Covering(_key(table, columns), plain)
        loaded = _load(base_path, schema, orders, by)
        if loaded is not None:
            cover.base, cover.base_id = loaded
            tail = _load(tail_path, schema)
            if tail is not None and tail[1] == cover.base_id:
                cover.tail = tail[0]
    covered = {rel for s in cover.segments() for rel in s.files}
    cover.extra = [s for s in cover.extra if s.files[0] in live]
    cover.extra += [_file_rows(table, rel, columns) for rel in live if rel not in covered]
    cover.alive, cover._masks = {}, {}
    dead = 0
    for s in cover.segments():
        alive = np.fromiter((rel in live for rel in s.files), bool, len(s.files))
        if not alive.all():
            cover.alive[id(s)] = alive
            dead += sum(n for n, a in zip(s.counts, alive, strict=True) if not a)
    size = sum(s.rows.num_rows for s in cover.segments())
    newer = (cover.tail.rows.num_rows if cover.tail else 0) + sum(s.rows.num_rows for s in cover.extra)
    if cover.base is None or newer + dead > max(STALE_MIN_ROWS, STALE_FRACTION * size):
        cover = _write_base(base_path, tail_path, cover, schema, live, orders, by)
    elif len(cover.extra) > (0 if writer else STALE_FILES):
        cover = _write_tail(tail_path, cover, schema, live)
    cover.live = frozenset(live)
    cache[tuple(columns)] = cover
    return cover


def _segment_of(cover: Covering, segments: list[Segment], live: Iterable[str]) -> Segment:
    """The live rows of `segments` as one, naming the live files among theirs (codes renumbered)."""
    live = set(live)
    files: list[str] = []
    parts = []
    for s in segments:
        rows = _without_base_columns(s.rows)
        mask = cover.mask(s)
        if mask is not None:
            rows = rows.filter(pa.array(mask))
        kept = np.full(max(len(s.files), 1), -1, np.int32)
        for code, rel in enumerate(s.files):
            if rel in live:
                kept[code] = len(files)
                files.append(rel)
        codes = kept[rows.column(FILE_COLUMN).to_numpy()] if rows.num_rows else np.zeros(0, np.int32)
        parts.append(rows.set_column(rows.schema.get_field_index(FILE_COLUMN), FILE_COLUMN, pa.array(codes)))
    rows = pa.concat_tables(parts).combine_chunks()
    counts = np.bincount(rows.column(FILE_COLUMN).to_numpy().astype(np.int64), minlength=len(files))
    return Segment(files, rows, [int(n) for n in counts])


def _write_base(
    base_path: str,
    tail_path: str,
    cover: Covering,
    schema: pa.Schema,
    live: Iterable[str],
    orders: list[tuple[str, ...]],
    sorted_by: str | None = None,
) -> Covering:
    """Every live row as a new base, sorted by hash (or by `sorted_by`, ties in hash order), with its `orders`, the
    tail emptied, written; the index then maps it."""
    segments = cover.segments()
    segment = _segment_of(cover, segments, live) if segments else Segment([], schema.empty_table(), [])
    rows = segment.rows
    order, hashes = None, None
    if cover.key:
        hashes = hash_values(rows.column(cover.key))
        order = np.argsort(hashes, kind="stable")
    if sorted_by is not None:  # a stable sort of the column alone: ties stay in hash order
        column = rows.column(sorted_by) if order is None else rows.column(sorted_by).take(pa.array(order))
        by = pc.sort_indices(column).to_numpy()
        order = by if order is None else order[by]
    if order is not None:  # the rows moved once
        rows = rows.take(pa.array(order))
    if hashes is not None and sorted_by is None:
        rows = rows.append_column(HASH_COLUMN, pa.array(hashes[order], pa.uint64()))
    kept = {}
    for o in orders:  # a stable sort: ties stay in hash order
        if o != (sorted_by,):
            kept[o] = pc.sort_indices(rows, sort_keys=[(c, "ascending") for c in o]).cast(pa.int32()).to_numpy()
            rows = rows.append_column(_order_column(o), pa.array(kept[o]))
    if sorted_by is not None:
        kept[(sorted_by,)] = np.arange(rows.num_rows, dtype=np.int32)
    hashed = cover.key is not None and sorted_by is None
    base = Segment(segment.files, rows, segment.counts, hashed=hashed, orders=kept)
    base_id = uuid.uuid4().hex
    if _write(base_path, base, base_id, sorted_by):
        _storage.delete_quietly(tail_path)
        # the file mapped, not the rows held (another writer's is as good)
        mapped = _load(base_path, schema, orders, sorted_by)
        if mapped is not None:
            base, base_id = mapped
    return Covering(cover.key, cover.schema, base, base_id)


def _write_tail(tail_path: str, cover: Covering, schema: pa.Schema, live: Iterable[str]) -> Covering:
    """The live rows of the tail and of the files read now as a new tail of the base, written."""
    tail = _segment_of(cover, [s for s in (cover.tail, *cover.extra) if s is not None], live)
    out = Covering(cover.key, cover.schema, cover.base, cover.base_id, tail)
    if cover.base is not None and id(cover.base) in cover.alive:
        out.alive[id(cover.base)] = cover.alive[id(cover.base)]
    if _write(tail_path, tail, cover.base_id):
        mapped = _load(tail_path, schema)
        if mapped is not None and mapped[1] == cover.base_id:
            out.tail = mapped[0]
    return out


def _write(path: str, segment: Segment, base_id: str, sorted_by: str | None = None) -> bool:
    stored = segment.rows.replace_schema_metadata(
        {
            FILES_KEY: json.dumps(segment.files).encode(),
            COUNTS_KEY: json.dumps(segment.counts).encode(),
            BASE_KEY: base_id.encode(),
            HASH_KEY: HASH_VERSION,
            SORTED_KEY: (sorted_by or "").encode(),
        }
    )
    sink = pa.BufferOutputStream()
    with pa.ipc.new_file(sink, stored.schema) as writer:
        writer.write_table(stored, max_chunksize=max(stored.num_rows, 1))
    try:
        _storage.makedirs(path.rsplit("/", 1)[0])
        _storage.replace(path, sink.getvalue().to_pybytes())
    except Exception as exc:  # noqa: BLE001 - a read-only lake or a failed upload: the index is a cache
        log.info("could not write the covering index %s (%s); the rows are read from the table until it is", path, exc)
        return False
    return True


def holding(table_path: str, files: Iterable[str], abandoned_before: float) -> list[str]:
    """The covering index files beside the table (`_lakehouse_covering/<name>`) that name one of the data `files`:
    they hold rows of them (VACUUM removes such files with the data files, so an erased row is erased here too);
    and a killed write's temporary files, once older than `abandoned_before` (seconds since the epoch)."""
    gone = set(files)
    folder = _storage.join(table_path, COVERING_FOLDER)
    out = []
    for name, mtime_ms in sorted(_storage.listing(folder).items()):
        path = _storage.join(folder, name)
        if not name.endswith(".arrow") or name.startswith(".tmp-"):
            if mtime_ms < abandoned_before * 1000:
                out.append(f"{COVERING_FOLDER}/{name}")
            continue
        try:
            named = set(json.loads((_open(path).schema.metadata or {})[FILES_KEY]))
        except FileNotFoundError:
            continue
        except (OSError, pa.ArrowException, ValueError, KeyError):
            named = gone  # unreadable: nothing reads it, so nothing is lost by removing it
        if named & gone:
            out.append(f"{COVERING_FOLDER}/{name}")
    return out
