"""The vocabulary of the lean Delta log: rows, the change a write plan returns, a lost commit race, the
index protocol a snapshot feeds, a live data file, and the Delta schema string of a lean table's columns."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

import pyarrow as pa

from .errors import ConcurrentModificationError

Row = dict[str, Any]


@dataclass(frozen=True)
class Change:
    """What a write's plan returns: the rows to add (one list per new file), the files to remove, commitInfo.

    A plan is a function of the refreshed snapshot only: it may run several times (once per lost commit race),
    so it must not have side effects (no I/O, no counters, no writes to variables outside it) and must build
    its `Change` from the state it reads, never from a previous attempt's result.
    """

    adds: Sequence[list[Row]] = ()
    removes: Sequence[str] = ()
    info: Mapping[str, Any] = field(default_factory=dict)
    txn: tuple[str, int] | None = None
    """(appId, version): a Delta `txn` action committed with the change (a watermark of what it folded in)."""


class CommitConflict(ConcurrentModificationError):
    """Another writer published the version this commit wanted (a lost race): refresh, re-plan and retry.

    Internal signal of `LeanTable.commit`; `retry_on_conflict` retries it and, past its deadline, raises a
    plain ConcurrentModificationError.
    """

    def __init__(self, table: str, version: int) -> None:
        super().__init__(table, "commit", 1, f"version {version} was committed by another writer")
        self.version = version


class RowIndex(Protocol):
    """What a snapshot feeds with the rows of the files it adds and removes (`file` = path in the table)."""

    def add(self, row: Row, file: str) -> None: ...

    def remove(self, row: Row, file: str) -> None: ...


class DataFile(NamedTuple):
    """A live data file of the snapshot: its rows (None in a cold table) and its `add` action (path, stats...)."""

    rows: list[Row] | None
    add: dict[str, Any]


_DELTA_TYPES = {
    pa.string(): "string",
    pa.int64(): "long",
    pa.int32(): "integer",
    pa.float64(): "double",
    pa.bool_(): "boolean",
    pa.timestamp("us", tz="UTC"): "timestamp",
}


def delta_schema_string(schema: pa.Schema) -> str:
    """The Delta `schemaString` of a flat Arrow schema of string/long/integer/double/boolean/UTC-timestamp
    (microseconds, Delta's `timestamp`) columns."""
    fields = [{"name": f.name, "type": _DELTA_TYPES[f.type], "nullable": True, "metadata": {}} for f in schema]
    return json.dumps({"type": "struct", "fields": fields})
