"""Normalising time-travel arguments and resolving a timestamp to a version with Delta's rules."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .errors import ArgumentTypeError, InvalidArgumentError, TimestampOutOfRangeError, VersionNotFoundError

TimestampLike = datetime | date | str


def session_zone(name: str | None) -> tzinfo:
    """A Spark session time zone (`spark.sql.session.timeZone`: a region id, `UTC`, `+02:00`, `GMT+2`) as tzinfo."""
    if not name or name.upper() in ("UTC", "Z", "GMT"):
        return UTC
    m = re.fullmatch(r"(?:UTC|GMT)?\s*([+-])(\d{1,2})(?::?(\d{2}))?", name.strip(), flags=re.IGNORECASE)
    if m:
        delta = timedelta(hours=int(m.group(2)), minutes=int(m.group(3) or 0))
        return timezone(delta if m.group(1) == "+" else -delta)
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidArgumentError(
            "spark.sql.session.timeZone", f"Spark session time zone {name!r} is not a zone id or offset Python knows"
        ) from None


def to_utc(value: TimestampLike, *, argument: str = "timestamp", zone: tzinfo | None = None) -> datetime:
    """Return `value` as an aware UTC datetime.

    Naive datetimes, dates and strings without an offset are wall-clock times in `zone` (default UTC), as
    Spark reads `timestampAsOf` in the session time zone; never the machine's local time. Strings are ISO 8601
    (`2026-01-01`, `2026-01-01 12:00:00`, `...T12:00:00+02:00`, `...Z`).
    """
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, date):
        dt = datetime(value.year, value.month, value.day)
    elif isinstance(value, str):
        text = value.strip()
        if re.search(r"[zZ]$", text):
            text = text[:-1] + "+00:00"
        try:
            dt = datetime.fromisoformat(text)
        except ValueError:
            raise InvalidArgumentError(
                argument,
                f"{argument}={value!r} is not an ISO 8601 timestamp; use e.g. '2026-01-31', "
                "'2026-01-31 12:00:00' or '2026-01-31T12:00:00+00:00'",
            ) from None
    else:
        raise ArgumentTypeError(
            argument, f"{argument} must be a datetime, date or ISO 8601 string, got {type(value).__name__}"
        )
    try:
        if dt.tzinfo is None:
            return dt.replace(tzinfo=zone or UTC).astimezone(UTC)
        return dt.astimezone(UTC)
    except (OverflowError, ValueError):  # e.g. 9999-12-31T23:00-05:00 is in year 10000 in UTC
        raise InvalidArgumentError(
            argument, f"{argument}={value!r} is outside the datetimes Python can hold in UTC (years 1 to 9999)"
        ) from None


def ms_to_utc(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def monotonic_commits(commits: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """Commit times made non-decreasing in version order, as Delta does for clock skew between writers."""
    out: list[tuple[int, int]] = []
    prev = None
    for version, ts in sorted(commits):
        if prev is not None and ts <= prev:
            ts = prev + 1
        out.append((version, ts))
        prev = ts
    return out


def version_at(table: str, commits: Sequence[tuple[int, int]], when: datetime, *, can_return_last: bool = False) -> int:
    """The latest version committed at or before `when` (Delta's rule).

    Raises TimestampOutOfRangeError before the first commit, and after the last one unless
    `can_return_last` (RESTORE's rule).
    """
    ordered = monotonic_commits(commits)
    target = int(when.timestamp() * 1000)
    first_v, first_ts = ordered[0]
    _, last_ts = ordered[-1]
    if target < first_ts:
        raise TimestampOutOfRangeError(table, when, ms_to_utc(first_ts), ms_to_utc(last_ts), after=False)
    if target > last_ts and not can_return_last:
        raise TimestampOutOfRangeError(table, when, ms_to_utc(first_ts), ms_to_utc(last_ts), after=True)
    chosen = first_v
    for version, ts in ordered:
        if ts <= target:
            chosen = version
        else:
            break
    return chosen


def check_version(table: str, version: object, earliest: int, latest: int) -> int:
    if isinstance(version, bool) or not isinstance(version, int):
        raise ArgumentTypeError("version", f"version must be an int, got {type(version).__name__} {version!r}")
    if version < earliest or version > latest:
        raise VersionNotFoundError(table, version, earliest, latest)
    return version
