"""Row builders shared by the feature-store tests (imported by name: test folders are not packages)."""

from __future__ import annotations

from datetime import UTC, datetime

UTC = UTC
FEATURES_SCHEMA = "customer_id long, ts timestamp, f1 double, f2 double"
LABELS_SCHEMA = "customer_id long, label_ts timestamp, churn int"


def ts(day: int, hour: int = 0, minute: int = 0) -> datetime:
    """An aware UTC instant in January 2026."""
    return datetime(2026, 1, day, hour, minute, tzinfo=UTC)
