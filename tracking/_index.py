"""In-memory indexes over the live rows of a `LeanTable` snapshot, looked up by (group, key)."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import NamedTuple

from lakehouse import Row


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

    def rows(self, group: Hashable) -> list[Row]:
        return [row for row, _ in self.groups.get(group, {}).values()]  # unpacking: cheaper than .row on hot paths
