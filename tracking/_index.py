"""Indexes over the live rows of a `LeanTable` snapshot, looked up by (group, key): in memory (`Index`), or read
on demand from a cold table through a bounded cache (`ColdIndex`)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, MutableMapping
from typing import Any, NamedTuple

from lakehouse import LeanTable, Row


def one_row_per_group(_row: Row) -> int:
    """The in-group key of a table with one row per group (a run, a model, ...): always 0."""
    return 0


class Hit(NamedTuple):
    """A live row and the data file (path in the table) that holds it."""

    row: Row
    file: str


class Index:
    """Live rows grouped as `groups[group(row)][key(row)] = Hit(row, file)`.

    Rule: one row per (group, key); the row added last wins. A removal names the row's file and drops the
    entry only while that file still holds it (an older file's removal never drops a newer row's entry).
    `when` filters the rows this index holds.
    """

    def __init__(
        self,
        group: Callable[[Row], Hashable],
        key: Callable[[Row], Hashable],
        when: Callable[[Row], bool] | None = None,
    ) -> None:
        self.group = group
        self.key = key
        self.when = when
        self.groups: dict[Hashable, dict[Hashable, Hit]] = {}

    def add(self, row: Row, file: str) -> None:
        if self.when is not None and not self.when(row):
            return
        self.groups.setdefault(self.group(row), {})[self.key(row)] = Hit(row, file)

    def remove(self, row: Row, file: str) -> None:
        g = self.group(row)
        items = self.groups.get(g)
        if items is None:
            return
        k = self.key(row)
        hit = items.get(k)
        if hit is not None and hit.file == file:
            del items[k]
            if not items:
                del self.groups[g]

    def address(self, row: Row) -> tuple[Hashable, Hashable] | None:
        """The (group, key) this index files `row` under, or None when `when` leaves it out."""
        if self.when is not None and not self.when(row):
            return None
        return self.group(row), self.key(row)

    def get(self, group: Hashable, key: Hashable) -> Hit | None:
        items = self.groups.get(group)
        return None if items is None else items.get(key)

    def files_of(self, addresses: Iterable[tuple[Hashable, Hashable]]) -> list[str]:
        """The data files holding the rows at `addresses` (group, key), each once, in order."""
        hits = (self.get(group, key) for group, key in addresses)
        return list(dict.fromkeys(hit.file for hit in hits if hit is not None))

    def rows(self, group: Hashable) -> list[Row]:
        return [row for row, _ in self.groups.get(group, {}).values()]  # unpacking: cheaper than .row on hot paths


CACHE_GROUPS = 4096
"""A `ColdIndex` keeps the rows of at most this many groups (runs), least recently used first out."""


class ColdIndex:
    """`Index`'s lookups over a cold `LeanTable` (rows read on demand, never all held): `get(group, key)` and
    `rows(group)` read the group's rows by the table's statistics and keep them in a bounded LRU cache, which
    `changed(lo, hi)` (the table's `on_range_change`) invalidates for the groups a data change may have touched.

    `Hit.file` is the file that held the row when it was read; `files_of` (what a rewrite drops) looks afresh.
    """

    def __init__(
        self,
        table: Callable[[], LeanTable],
        column: str,
        key: Callable[[Row], Hashable],
        cache_groups: int | None = None,
    ) -> None:
        self._table = table
        self.column = column
        self.key = key
        self.cache_groups = CACHE_GROUPS if cache_groups is None else cache_groups
        self._cache: OrderedDict[Hashable, dict[Hashable, Hit]] = OrderedDict()

    def address(self, row: Row) -> tuple[Hashable, Hashable]:
        return row[self.column], self.key(row)

    def group(self, group: Hashable) -> dict[Hashable, Hit]:
        hits = self._cache.get(group)
        if hits is not None:
            self._cache.move_to_end(group)
            return hits
        hits = {self.key(row): Hit(row, rel) for row, rel in self._table().hits_where(self.column, group)}
        self._cache[group] = hits
        while len(self._cache) > self.cache_groups:
            self._cache.popitem(last=False)
        return hits

    def get(self, group: Hashable, key: Hashable) -> Hit | None:
        return self.group(group).get(key)

    def rows(self, group: Hashable) -> list[Row]:
        return [row for row, _ in self.group(group).values()]

    def files_of(self, addresses: Iterable[tuple[Hashable, Hashable]]) -> list[str]:
        """The data files holding the rows at `addresses` (group, key), each once, found afresh by statistics: a
        cached `Hit.file` may name a file compacted away since."""
        wanted = set(addresses)
        groups = dict.fromkeys(group for group, _ in wanted)
        hits = (hit for group in groups for hit in self._table().hits_where(self.column, group))
        return list(dict.fromkeys(rel for row, rel in hits if self.address(row) in wanted))

    def changed(self, lo: Any, hi: Any) -> None:
        """Forget the cached groups in [lo, hi] (everything when either is None)."""
        forget_range(self._cache, lo, hi)


def forget_range(cache: MutableMapping[Any, Any], lo: Any, hi: Any) -> None:
    """Drop the entries of `cache` whose keys lie in [lo, hi] (every entry when either is None): what a cold table's
    `on_range_change` says may have changed."""
    if lo is None or hi is None:
        cache.clear()
    elif lo == hi:
        cache.pop(lo, None)
    else:
        for k in [k for k in cache if lo <= k <= hi]:
            del cache[k]
