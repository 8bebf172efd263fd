"""Registry events: the outbox (`mlflow.registry_events`) and the dispatcher that delivers it.

Atomicity: a registry change's events are written into the `commitInfo` of the very Delta commit that
makes the change (`lakehouseEvents`), then copied into the outbox table by the same call. If the process
dies between the two, `Outbox.recover` finds the events in the registry tables' logs and copies them (event
ids make the copy idempotent), so an event exists exactly when its change does.

Delivery: at least once, and exactly once per (event, subscriber) unless a deliverer dies mid-attempt.
A deliverer claims an attempt by committing an `in_progress` row to `mlflow.webhook_deliveries` on a
fresh snapshot; commits are put-if-absent, so of several processes (this one's background thread, `python
-m jobs drain`, `mlflow server` workers) only one wins a claim. The outcome row follows the attempt. A
claim whose lease expired (its deliverer died) is attempted again. A failing receiver never fails the
registry call: delivery runs on a background thread, after the registry commit.

Subscribers: MLflow webhooks (`webhook:<id>`) subscribed to the event and created before it, and whatever
the packages registered in the `lakehouse.registry_subscribers` entry-point group return for it (the `jobs`
package's triggers, `trigger:<id>`). An entry point, not an import: every process that delivers (the
`mlflow server` included) finds the subscribers of every installed package, and `tracking` never imports
the packages built on it.
"""

from __future__ import annotations

import atexit
import functools
import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any, Protocol

from mlflow.entities.webhook import WebhookEvent, WebhookStatus

from lakehouse import Change, Row, settings

from . import _webhooks

_logger = logging.getLogger(__name__)

EVENTS_KEY = "lakehouseEvents"
"""Key of the event list in a registry commit's `commitInfo`."""
STAGE_TRANSITIONED = "model_version_stage.transitioned"
"""Beyond MLflow's webhook events: a version's stage changed (payload: name, version, from/to stage)."""
REGISTERED_MODEL_TAG_SET = "registered_model_tag.set"
"""Beyond MLflow's webhook events: a registered model tag was set (payload: name, key, value)."""

OUTBOX = "mlflow.registry_events"
DELIVERIES = "mlflow.webhook_deliveries"
RECOVERY_MARGIN = 200
"""Commits re-scanned below the newest one already in the outbox (writers copy their events in any order)."""

IN_PROGRESS, SUCCEEDED, FAILED, GAVE_UP = "in_progress", "succeeded", "failed", "gave_up"


def new_event(event: str, payload: dict[str, Any], *, name: str, version: Any = None) -> dict[str, Any]:
    """An event as carried in `commitInfo` and in the outbox (payload is MLflow's webhook payload)."""
    return {
        "event_id": uuid.uuid4().hex,
        "event": event,
        "name": name,
        "version": None if version is None else str(version),
        "payload": payload,
        "timestamp": int(time.time() * 1000),
    }


class Subscriber(Protocol):
    id: str
    max_attempts: int

    def deliver(self, event: Row) -> _webhooks.Outcome: ...


@dataclass
class WebhookSubscriber:
    id: str
    webhook_row: Row
    event: WebhookEvent
    max_attempts: int

    def deliver(self, event: Row) -> _webhooks.Outcome:
        return _webhooks.send(_webhooks.to_webhook(self.webhook_row), self.event, json.loads(event["payload"]))


class Outbox:
    """Copies events into `mlflow.registry_events` and rebuilds missing ones from the registry logs."""

    def __init__(self, tables: Any, source_tables: Iterable[str]) -> None:
        self.t = tables
        self.sources = list(source_tables)
        self._scanned: dict[str, int] = {}

    def append(self, events: list[dict[str, Any]], source_table: str, source_version: int) -> None:
        rows = [
            {
                **{k: e[k] for k in ("event_id", "event", "name", "version", "timestamp")},
                "payload": json.dumps(e["payload"]),
                "source_table": source_table,
                "source_version": source_version,
            }
            for e in events
        ]

        def plan():
            new = [r for r in rows if self.t.events.get(r["event_id"], 0) is None]
            return Change([new]) if new else None

        self.t.write(OUTBOX, plan)

    def recover(self) -> int:
        """Copy events found in registry commits but missing from the outbox; return how many."""
        self.t.refresh([OUTBOX, *self.sources])
        newest: dict[str, int] = {}
        for hits in self.t.events.groups.values():
            for row, _ in hits.values():
                newest[row["source_table"]] = max(newest.get(row["source_table"], -1), row["source_version"])
        found = 0
        for name in self.sources:
            log = self.t.tables[name]
            start = self._scanned.get(name)
            if start is None:
                start = max(1, newest.get(name, 0) - RECOVERY_MARGIN)
            for v in range(start, log.version + 1):
                info = log.commit_info(v) or {}
                missing = [e for e in info.get(EVENTS_KEY, []) if self.t.events.get(e["event_id"], 0) is None]
                if missing:
                    self.append(missing, name, v)
                    found += len(missing)
            self._scanned[name] = log.version + 1
        return found


def _state(rows: list[Row], now: int) -> tuple[str, int, int]:
    """(kind, next attempt number, when) for one (event, subscriber): kind is done, busy or due."""
    if not rows:
        return "due", 1, now
    if any(r["status"] in (SUCCEEDED, GAVE_UP) for r in rows):
        return "done", 0, 0
    last = max(rows, key=lambda r: (r["attempt"], r["status"] != IN_PROGRESS))
    if last["status"] == IN_PROGRESS:
        if last["lease_until"] > now:
            return "busy", 0, last["lease_until"]
        return "due", last["attempt"] + 1, now  # its deliverer died: at least once means try again
    return "due", last["attempt"] + 1, last["next_attempt_at"] or now


class Dispatcher:
    """Delivers the outbox: `drain()` once, or a background thread woken by local events and polling.

    `subscribers(event_row)` lists who gets an event; table access happens under `lock`, network I/O and
    jobs never do.
    """

    def __init__(
        self, tables: Any, lock: threading.RLock, outbox: Outbox, subscribers: Callable[[Row], list[Subscriber]]
    ) -> None:
        self.t = tables
        self.lock = lock
        self.outbox = outbox
        self.subscribers = subscribers
        self.worker = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self._done: set[str] = set()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="lakehouse-delivery")
        self._inflight: set[tuple[str, str]] = set()
        self._inflight_lock = threading.Lock()
        self.outcomes: list[dict[str, Any]] = []
        """Every finished attempt of this process, in order: event_id, subscriber, attempt, status, error."""

    # -- one pass ---------------------------------------------------------------------------------------
    def drain(self, *, wait: bool = True) -> float | None:
        """Claim and run every due (event, subscriber) attempt; return when the next retry is due (epoch s).

        With `wait`, returns after this pass's attempts finished; otherwise they run on the pool.
        """
        now = int(time.time() * 1000)
        work: list[tuple[Row, Subscriber, int]] = []
        wake: int | None = None
        with self.lock:
            self.outbox.recover()
            self.t.refresh([DELIVERIES, "mlflow.webhooks", "mlflow.job_triggers"])
            for hits in list(self.t.events.groups.values()):
                event = next(iter(hits.values()))[0]
                if event["event_id"] in self._done:
                    continue
                finished = True
                for sub in self.subscribers(event):
                    kind, attempt, when = _state(self.t.deliveries.rows((event["event_id"], sub.id)), now)
                    if kind == "done":
                        continue
                    finished = False
                    if kind == "due" and when <= now:
                        work.append((event, sub, attempt))
                    else:
                        wake = when if wake is None else min(wake, when)
                if finished and now - event["timestamp"] > 60_000:
                    self._done.add(event["event_id"])  # old and complete: skip from now on
        futures = []
        for event, sub, attempt in work:
            key = (event["event_id"], sub.id)
            with self._inflight_lock:
                if key in self._inflight:
                    continue
                self._inflight.add(key)
            futures.append(self._pool.submit(self._attempt, event, sub, attempt, key))
        if wait:
            for f in futures:
                f.result()
        return None if wake is None else wake / 1000

    def _attempt(self, event: Row, sub: Subscriber, attempt: int, key: tuple[str, str]) -> None:
        try:
            timeout_ms = 1000 * (
                getattr(sub, "timeout_seconds", None) or _webhooks.MLFLOW_WEBHOOK_REQUEST_TIMEOUT.get()
            )
            claim: dict[str, Row] = {}

            def plan():
                now = int(time.time() * 1000)
                kind, nxt, when = _state(self.t.deliveries.rows(key), now)
                if kind != "due" or when > now or nxt != attempt:
                    return None
                row = {
                    "event_id": key[0],
                    "subscriber": key[1],
                    "attempt": attempt,
                    "status": IN_PROGRESS,
                    "worker": self.worker,
                    "delivery_id": None,
                    "timestamp": now,
                    "lease_until": now + timeout_ms + 30_000,
                    "next_attempt_at": None,
                    "response_status": None,
                    "duration_ms": None,
                    "error": None,
                }
                claim["row"] = row
                return Change([[row]])

            with self.lock:
                if not self.t.write(DELIVERIES, plan):
                    return  # another deliverer claimed it, or it is no longer due
            started = time.time()
            try:
                outcome = sub.deliver(event)
            except Exception as e:  # a subscriber bug must not kill the dispatcher
                _logger.exception("delivery of event %s to %s failed", key[0], key[1])
                outcome = _webhooks.Outcome(ok=False, error=f"{type(e).__name__}: {e}"[:2000])
            now = int(time.time() * 1000)
            retry = not outcome.ok and outcome.retryable and attempt < sub.max_attempts
            status = SUCCEEDED if outcome.ok else FAILED if retry else GAVE_UP
            row = {
                **claim["row"],
                "status": status,
                "delivery_id": outcome.delivery_id,
                "timestamp": now,
                "lease_until": None,
                "response_status": outcome.response_status,
                "duration_ms": int((time.time() - started) * 1000),
                "error": outcome.error,
                "next_attempt_at": now + int(1000 * _webhooks.backoff_seconds(attempt)) if retry else None,
            }
            with self.lock:
                self.t.write(DELIVERIES, lambda: Change([[row]]))
            self.outcomes.append({k: row[k] for k in ("event_id", "subscriber", "attempt", "status", "error")})
            if retry:
                self._wake.set()
        except Exception:
            _logger.exception("dispatcher attempt for %s failed", key)
        finally:
            with self._inflight_lock:
                self._inflight.discard(key)

    # -- background thread ------------------------------------------------------------------------------
    def kick(self) -> None:
        """Wake the background thread (starting it on first use) because an event was just published."""
        if not settings().registry_dispatch:
            return
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._loop, name="lakehouse-dispatcher", daemon=True)
            self._thread.start()
            atexit.register(self.close)
        self._wake.set()

    def _loop(self) -> None:
        poll = settings().dispatch_poll_seconds
        while not self._stop.is_set():
            self._wake.clear()
            try:
                wake = self.drain(wait=False)
            except Exception:
                _logger.exception("registry event dispatch failed; retrying in %s s", poll)
                wake = None
            delay = poll if wake is None else min(poll, max(0.02, wake - time.time()))
            self._wake.wait(delay)

    def close(self, budget_seconds: float | None = None) -> None:
        """Stop the thread, then deliver what is due now within `budget_seconds` (default 5 s)."""
        if budget_seconds is None:
            budget_seconds = settings().dispatch_exit_seconds
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=budget_seconds)
        deadline = time.time() + budget_seconds
        try:
            while time.time() < deadline:
                with self._inflight_lock:
                    busy = bool(self._inflight)
                if not busy:
                    break
                time.sleep(0.02)
        except Exception:  # noqa: BLE001 - closing runs at interpreter exit, where any module may be torn down
            pass


SUBSCRIBER_GROUP = "lakehouse.registry_subscribers"
"""Entry-point group of subscriber sources: each entry is a callable `(lake, event row) -> [Subscriber]`."""


@functools.cache
def subscriber_sources() -> tuple[Callable[[Any, Row], list[Subscriber]], ...]:
    """The callables registered in SUBSCRIBER_GROUP by the installed packages (loaded once per process)."""
    sources = []
    for ep in sorted(entry_points(group=SUBSCRIBER_GROUP), key=lambda ep: ep.name):
        try:
            sources.append(ep.load())
        except Exception:
            _logger.exception("registry subscriber entry point %r (%s) could not be loaded", ep.name, ep.value)
    return tuple(sources)


def webhook_subscribers(tables: Any, event: Row) -> list[WebhookSubscriber]:
    """Active, undeleted webhooks subscribed to `event` and created no later than it."""
    try:
        wh_event = WebhookEvent.from_str(event["event"])
    except Exception:  # noqa: BLE001 - MLflow raises several kinds for an unknown event name
        return []  # an event kind MLflow webhooks cannot subscribe to (e.g. stage transitions)
    key = f"{wh_event.entity.value}.{wh_event.action.value}"
    subs = []
    for hits in tables.webhooks.groups.values():
        row = next(iter(hits.values()))[0]
        if (
            row["deleted_timestamp"] is None
            and row["status"] == WebhookStatus.ACTIVE.value
            and row["creation_timestamp"] <= event["timestamp"]
            and key in json.loads(row["events"])
        ):
            subs.append(WebhookSubscriber(f"webhook:{row['webhook_id']}", row, wh_event, _webhooks.max_attempts()))
    return subs
