"""What the tracking store's families of operations (`_store_*` modules) use of the store: its state.

A protocol, so that those modules name the store's type without importing `_store` (which imports them).
"""

from __future__ import annotations

import threading
from typing import Protocol

from mlflow.entities import Run

from ._tables import TrackingTables


class StoreState(Protocol):
    """The lake root, artifact root, lock, run cache and tables of a `LakehouseTrackingStore`."""

    root: str
    artifact_root_uri: str
    _lock: threading.RLock
    _run_cache: dict[str, Run]
    _t: TrackingTables

    def _sync(self, names: list[str] | None = None) -> None: ...
