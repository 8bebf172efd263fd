"""Typed errors raised by the lakehouse layer.

Every error carries the facts it names as attributes, so callers can act on them without parsing messages::

    LakehouseError
    ├── InvalidTableNameError        (also ValueError)  a name that cannot address a table
    ├── InvalidSettingError          (also ValueError)  a LAKEHOUSE_* environment variable that cannot be parsed
    ├── InvalidArgumentError         (also ValueError)  an argument whose value cannot be used (named in `argument`)
    ├── ArgumentTypeError            (also TypeError)   an argument of the wrong type (named in `argument`)
    ├── TableNotFoundError           (also KeyError)    no Delta table at that name or path
    ├── TableAlreadyExistsError                         create_table on an existing table
    ├── VersionNotFoundError                            time travel to a version outside the history
    ├── TimestampOutOfRangeError                        time travel to a time before the first / after the last commit
    ├── DataFilesMissingError                           a version whose files VACUUM already removed
    ├── SchemaMismatchError                             a write whose columns or types differ from the table
    ├── DuplicateKeyError                               merge/write input with the same key more than once
    ├── NullConstraintError                             nulls written into a NOT NULL column
    ├── RetentionPeriodTooShortError                    VACUUM below the table's retention without opting out
    ├── ConcurrentModificationError  (retryable)        another writer committed a conflicting change
    ├── EngineUnavailableError                          the requested Delta engine cannot run in this session
    ├── UnsupportedTableFeatureError                    a table whose protocol or log uses a feature we cannot read/write
    └── CorruptTableError                               a log or data file that is truncated, unparsable or missing
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

__all__ = [
    "ArgumentTypeError",
    "ConcurrentModificationError",
    "CorruptTableError",
    "DataFilesMissingError",
    "DuplicateKeyError",
    "EngineUnavailableError",
    "InvalidArgumentError",
    "InvalidSettingError",
    "InvalidTableNameError",
    "LakehouseError",
    "NullConstraintError",
    "RetentionPeriodTooShortError",
    "SchemaMismatchError",
    "TableAlreadyExistsError",
    "TableNotFoundError",
    "TimestampOutOfRangeError",
    "UnsupportedTableFeatureError",
    "VersionNotFoundError",
]


class LakehouseError(Exception):
    """Base class of every error raised by `lakehouse`."""

    retryable: bool = False


class InvalidTableNameError(LakehouseError, ValueError):
    def __init__(self, name: object, reason: str) -> None:
        self.name = name
        self.reason = reason
        super().__init__(
            f"invalid table name {name!r}: {reason}. Use dot-separated identifiers such as "
            "'features.customers' (letters, digits, underscores), or an absolute path / URI."
        )


class InvalidArgumentError(LakehouseError, ValueError):
    """`argument`'s value cannot be used; the message names the value received and what is accepted."""

    def __init__(self, argument: str, message: str) -> None:
        self.argument = argument
        super().__init__(message)


class ArgumentTypeError(LakehouseError, TypeError):
    """`argument` has the wrong type; the message names the type received and the types accepted."""

    def __init__(self, argument: str, message: str) -> None:
        self.argument = argument
        super().__init__(message)


class InvalidSettingError(LakehouseError, ValueError):
    def __init__(self, variable: str, value: str, expected: str) -> None:
        self.variable = variable
        self.value = value
        self.expected = expected
        super().__init__(f"${variable}={value!r} is not valid: expected {expected}. Fix or unset the variable.")


class TableNotFoundError(LakehouseError, KeyError):
    def __init__(self, table: str, path: str, available: Sequence[str] = ()) -> None:
        self.table = table
        self.path = path
        self.available = list(available)
        shown = ", ".join(self.available[:20]) or "none"
        more = f" (+{len(self.available) - 20} more)" if len(self.available) > 20 else ""
        super().__init__(
            f"table {table!r} not found: no Delta table at {path}. Tables under the root: {shown}{more}. "
            "Create it with Lakehouse.create_table()."
        )

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0])


class TableAlreadyExistsError(LakehouseError):
    def __init__(self, table: str, path: str) -> None:
        self.table = table
        self.path = path
        super().__init__(
            f"table {table!r} already exists at {path}. Write to it with append/overwrite/merge, "
            "or pass exists_ok=True to create_table."
        )


class VersionNotFoundError(LakehouseError):
    def __init__(self, table: str, version: int, earliest: int, latest: int) -> None:
        self.table = table
        self.version = version
        self.earliest = earliest
        self.latest = latest
        super().__init__(
            f"table {table!r} has no version {version}: available versions are [{earliest}, {latest}] "
            f"(latest is {latest})."
        )


class TimestampOutOfRangeError(LakehouseError):
    def __init__(self, table: str, timestamp: datetime, earliest: datetime, latest: datetime, *, after: bool) -> None:
        self.table = table
        self.timestamp = timestamp
        self.earliest = earliest
        self.latest = latest
        self.after = after
        if after:
            detail = (
                f"is after the latest commit ({latest.isoformat()}); read without a timestamp for the latest "
                "version, or use a timestamp at or before it"
            )
        else:
            detail = f"is before the first available commit ({earliest.isoformat()}); use a timestamp at or after it"
        super().__init__(f"table {table!r}: timestamp {timestamp.isoformat()} {detail}.")


class DataFilesMissingError(LakehouseError):
    def __init__(self, table: str, version: int, retention: str, missing: str) -> None:
        self.table = table
        self.version = version
        self.retention = retention
        self.missing = missing
        super().__init__(
            f"table {table!r} version {version} can no longer be read: its data file {missing} was removed, "
            f"most likely by VACUUM (delta.deletedFileRetentionDuration = {retention}). Time travel only "
            "reaches versions whose files are younger than the retention period; raise the retention to "
            "keep older versions readable."
        )


def _fmt_fields(fields: Sequence[tuple[str, str]]) -> str:
    return ", ".join(f"{n}: {t}" for n, t in fields) or "(no columns)"


class SchemaMismatchError(LakehouseError):
    def __init__(
        self,
        table: str,
        expected: Sequence[tuple[str, str]],
        received: Sequence[tuple[str, str]],
        problems: Sequence[str],
        *,
        hint: str = "pass schema_evolution=True to add new columns, or cast the DataFrame to the table's types",
        subject: str = "table",
    ) -> None:
        self.table = table
        self.expected = list(expected)
        self.received = list(received)
        self.problems = list(problems)
        super().__init__(
            f"schema mismatch writing to {subject} {table!r}: {'; '.join(self.problems)}.\n"
            f"  expected: {_fmt_fields(self.expected)}\n"
            f"  received: {_fmt_fields(self.received)}\n"
            f"Nothing was written. To fix: {hint}."
        )


class DuplicateKeyError(LakehouseError):
    def __init__(self, table: str, keys: Sequence[str], examples: Sequence[tuple[Any, ...]], count: int) -> None:
        self.table = table
        self.keys = list(keys)
        self.examples = list(examples)
        self.count = count
        shown = "; ".join(", ".join(f"{k}={v!r}" for k, v in zip(self.keys, ex, strict=True)) for ex in self.examples)
        super().__init__(
            f"the input for table {table!r} has {count} key value(s) on ({', '.join(self.keys)}) that occur more "
            f"than once, e.g. {shown}. Nothing was written. Deduplicate the input (one row per key) first."
        )


class NullConstraintError(LakehouseError):
    def __init__(self, table: str, columns: Sequence[str]) -> None:
        self.table = table
        self.columns = list(columns)
        super().__init__(
            f"table {table!r}: column(s) {', '.join(self.columns)} are NOT NULL but the input has nulls there. "
            "Nothing was written. Fill or filter the nulls first."
        )


class RetentionPeriodTooShortError(LakehouseError):
    def __init__(self, table: str, requested_hours: float, minimum_hours: float) -> None:
        self.table = table
        self.requested_hours = requested_hours
        self.minimum_hours = minimum_hours
        super().__init__(
            f"VACUUM of table {table!r} with a retention of {requested_hours:g} hours is below the table's "
            f"retention of {minimum_hours:g} hours: versions that concurrent readers or time travel still "
            "need could lose their files. Nothing was deleted. If you are sure, pass "
            "enforce_retention_duration=False."
        )


class ConcurrentModificationError(LakehouseError):
    retryable = True

    def __init__(self, table: str, operation: str, attempts: int, cause: str) -> None:
        self.table = table
        self.operation = operation
        self.attempts = attempts
        self.cause = cause
        super().__init__(
            f"{operation} on table {table!r} conflicted with a concurrent commit {attempts} time(s) and was "
            f"not applied ({cause}). Nothing was committed; it is safe to retry."
        )


class EngineUnavailableError(LakehouseError):
    def __init__(self, engine: str, reason: str) -> None:
        self.engine = engine
        self.reason = reason
        super().__init__(f"Delta engine {engine!r} is not available: {reason}")


class UnsupportedTableFeatureError(LakehouseError):
    def __init__(self, table: str, feature: str, operation: str = "read", detail: str = "") -> None:
        self.table = table
        self.feature = feature
        self.operation = operation
        self.detail = detail
        extra = f" ({detail})" if detail else ""
        super().__init__(
            f"table {table!r} uses the Delta feature {feature!r}, which this lakehouse cannot {operation}{extra}. "
            "Nothing was read or written. Use the delta-spark engine for this table, or rewrite it without "
            "the feature (e.g. REORG TABLE ... APPLY (PURGE) for deletion vectors, a classic checkpoint policy)."
        )


class CorruptTableError(LakehouseError):
    """A file of the table (`file`: a commit, a checkpoint, `_last_checkpoint` or a data file) is truncated,
    unparsable or missing where the log needs it; `detail` says what is wrong with it."""

    def __init__(self, table: str, file: str, detail: str, hint: str = "") -> None:
        self.table = table
        self.file = file
        self.detail = detail
        fix = hint or (
            "restore the file from a backup or a replica; Delta does not repair a damaged log by itself "
            "(delta-spark refuses this table too)"
        )
        super().__init__(
            f"table {table!r} cannot be read: {file} {detail}. Nothing was read or written. To fix: {fix}."
        )
