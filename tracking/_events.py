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

Retries and giving up (the outbox is durable: what is not delivered stays due, across restarts, for any
process that drains the lake). After a failed attempt n the next one is due after `_webhooks.retry_delay`:
the receiver's `Retry-After` (429/503) or the back-off 1, 2, 4, ... s (x `LAKEHOUSE_WEBHOOK_BACKOFF_SECONDS`)
capped at 300 s, plus a jitter of up to min(10%, 1 s), and never after the delivery's deadline (the event's
time + `DELIVERY_WINDOW_SECONDS`, 24 h), where the last attempt is made. A delivery gives up when
- the receiver is unavailable (no connection, a timeout, or 429/502/503/504) and the deadline has passed;
- it answered an error (500) `MLFLOW_WEBHOOK_REQUEST_MAX_RETRIES` + 1 times (MLflow's limit);
- it answered anything else >= 400, or the URL is refused (SSRF rules): at once.
A receiver that comes back is noticed: once any delivery to a subscriber succeeds, its deliveries waiting
after a refused connection are due at once (the 300 s cap bounds the wait otherwise). Every attempt of one
delivery carries the same `X-MLflow-Delivery-Id` (`delivery_id`), so a receiver can drop repeats.

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
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any, Protocol

from mlflow.entities.webhook import WebhookEvent, WebhookStatus

from lakehouse import Change, Row, settings

from . import _secrets, _webhooks

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
DELIVERY_WINDOW_SECONDS = 24 * 3600.0
"""How long after its event a delivery to an unavailable receiver is still tried (its deadline)."""
_DELIVERY_NS = uuid.UUID("8f4d3a52-5d43-4c1e-9a57-3f1f3f6e2c11")


def delivery_id(event_id: str, subscriber: str) -> str:
    """The `X-MLflow-Delivery-Id` of every attempt to deliver `event_id` to `subscriber` (same in any process)."""
    return str(uuid.uuid5(_DELIVERY_NS, f"{event_id}/{subscriber}"))


def _counted_failure(row: Row) -> bool:
    """A failed attempt the receiver answered with an error (not unavailable): counts against max_attempts."""
    status = row["response_status"]
    return row["status"] == FAILED and status is not None and status not in _webhooks.UNAVAILABLE_STATUSES


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
    webhook_row: Row = field(repr=False)
    event: WebhookEvent
    max_attempts: int
    root: str

    def deliver(self, event: Row) -> _webhooks.Outcome:
        return _webhooks.send(
            _webhooks.to_webhook(self.webhook_row, self.root),
            self.event,
            json.loads(event["payload"]),
            delivery_id=delivery_id(event["event_id"], self.id),
        )


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


def _state(rows: list[Row], now: int, back_since: int | None = None) -> tuple[str, int, int]:
    """(kind, next attempt number, when) for one (event, subscriber): kind is done, busy or due.

    `back_since`: when a delivery to this subscriber last succeeded; a wait after a refused connection that
    began before it is over (the receiver is back).
    """
    if not rows:
        return "due", 1, now
    if any(r["status"] in (SUCCEEDED, GAVE_UP) for r in rows):
        return "done", 0, 0
    last = max(rows, key=lambda r: (r["attempt"], r["status"] != IN_PROGRESS))
    if last["status"] == IN_PROGRESS:
        if last["lease_until"] > now:
            return "busy", 0, last["lease_until"]
        return "due", last["attempt"] + 1, now  # its deliverer died: at least once means try again
    when = last["next_attempt_at"] or now
    if back_since is not None and last["response_status"] is None and last["timestamp"] < back_since:
        when = min(when, now)
    return "due", last["attempt"] + 1, when


class Dispatcher:
    """Delivers the outbox: `drain()` once, or a background thread woken by local events and polling.

    `subscribers(event_row)` lists who gets an event; table access happens under `lock`, network I/O and
    jobs never do. `clock` (epoch seconds) is the time every schedule decision reads, `window_seconds` a
    delivery's lifetime (`DELIVERY_WINDOW_SECONDS`): tests replace them to play an outage of hours.
    """

    def __init__(
        self,
        tables: Any,
        lock: threading.RLock,
        outbox: Outbox,
        subscribers: Callable[[Row], list[Subscriber]],
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.t = tables
        self.lock = lock
        self.outbox = outbox
        self.subscribers = subscribers
        self.clock = clock
        self.window_seconds = DELIVERY_WINDOW_SECONDS
        self._back: dict[str, int] = {}
        """Subscriber -> when (ms) a delivery to it last succeeded, as seen by this process."""
        self._waiting: set[str] = set()
        """Subscribers with deliveries waiting after a refused connection (a success there wakes the loop)."""
        self._receiver_back = threading.Event()
        self._sealed = False
        self.worker = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self._done: set[str] = set()
        self._quiet: dict[str, tuple[int, ...]] = {}
        """Recent events that had no subscriber, with the versions of the subscriber tables when they had none:
        skipped while those stay put (every drain used to ask each recent event's subscribers again, so a burst
        of registry calls cost the dispatcher thread, and through the GIL the callers, quadratic time)."""
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
        if not self._sealed:
            self._sealed = True  # once per dispatcher: a failure is logged once, the webhook calls retry it
            try:
                _secrets.seal_stored_secrets(self.t, self.lock)
            except Exception:
                _logger.exception("sealing the webhook secrets stored in clear failed")
        now = int(self.clock() * 1000)
        work: list[tuple[Row, Subscriber, int]] = []
        wake: int | None = None
        with self.lock:
            self.outbox.recover()
            self.t.refresh([DELIVERIES, *SUBSCRIBER_TABLES])
            signature = tuple(self.t.tables[name].version for name in SUBSCRIBER_TABLES)
            pending: list[tuple[Row, list[tuple[Subscriber, list[Row]]]]] = []
            back = dict(self._back)
            for hits in list(self.t.events.groups.values()):
                event = next(iter(hits.values()))[0]
                event_id = event["event_id"]
                if event_id in self._done:
                    continue
                if self._quiet.get(event_id) == signature:
                    if now - event["timestamp"] > 60_000:
                        self._done.add(event_id)
                        del self._quiet[event_id]
                    continue
                subs = [(sub, self.t.deliveries.rows((event_id, sub.id))) for sub in self.subscribers(event)]
                if not subs:
                    self._quiet[event_id] = signature
                for sub, rows in subs:
                    for r in rows:
                        if r["status"] == SUCCEEDED and r["timestamp"] > back.get(sub.id, -1):
                            back[sub.id] = r["timestamp"]
                pending.append((event, subs))
            waiting: set[str] = set()
            for event, subs in pending:
                finished = True
                for sub, rows in subs:
                    kind, attempt, when = _state(rows, now, back.get(sub.id))
                    if kind == "done":
                        continue
                    finished = False
                    if kind == "due" and when <= now:
                        work.append((event, sub, attempt))
                    else:
                        wake = when if wake is None else min(wake, when)
                        if kind == "due" and any(r["status"] == FAILED and r["response_status"] is None for r in rows):
                            waiting.add(sub.id)
                if finished and now - event["timestamp"] > 60_000:
                    self._done.add(event["event_id"])  # old and complete: skip from now on
            self._waiting = waiting
            self._back = back
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
                nxt = f.result()
                if nxt is not None:
                    wake = nxt if wake is None else min(wake, nxt)
            if self._receiver_back.is_set():  # deliveries that waited for that receiver are due now
                self._receiver_back.clear()
                return self.clock()
        return None if wake is None else wake / 1000

    def _attempt(self, event: Row, sub: Subscriber, attempt: int, key: tuple[str, str]) -> int | None:
        """Claim, make and record one attempt; return when (epoch ms) the next one is due, if any."""
        try:
            timeout_ms = 1000 * (
                getattr(sub, "timeout_seconds", None) or _webhooks.MLFLOW_WEBHOOK_REQUEST_TIMEOUT.get()
            )
            claim: dict[str, Any] = {}

            def plan():
                now = int(self.clock() * 1000)
                rows = self.t.deliveries.rows(key)
                kind, nxt, when = _state(rows, now, self._back.get(key[1]))
                if kind != "due" or when > now or nxt != attempt:
                    return None
                claim["counted"] = sum(_counted_failure(r) for r in rows)
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
                    return None  # another deliverer claimed it, or it is no longer due
            started = time.time()
            try:
                outcome = sub.deliver(event)
            except Exception as e:  # a subscriber bug must not kill the dispatcher
                _logger.exception("delivery of event %s to %s failed", key[0], key[1])
                outcome = _webhooks.Outcome(ok=False, error=f"{type(e).__name__}: {e}"[:2000])
            now = int(self.clock() * 1000)
            deadline = event["timestamp"] + int(1000 * self.window_seconds)
            counted = claim["counted"] + (not outcome.ok and not outcome.unavailable)
            retry = (
                not outcome.ok
                and outcome.retryable
                and now < deadline
                and (outcome.unavailable or counted < sub.max_attempts)
            )
            status = SUCCEEDED if outcome.ok else FAILED if retry else GAVE_UP
            next_at = None
            if retry:
                next_at = min(deadline, now + int(1000 * _webhooks.retry_delay(attempt, outcome.retry_after)))
            row = {
                **claim["row"],
                "status": status,
                "delivery_id": outcome.delivery_id,
                "timestamp": now,
                "lease_until": None,
                "response_status": outcome.response_status,
                "duration_ms": int((time.time() - started) * 1000),
                "error": outcome.error,
                "next_attempt_at": next_at,
            }
            with self.lock:
                self.t.write(DELIVERIES, lambda: Change([[row]]))
            self.outcomes.append({k: row[k] for k in ("event_id", "subscriber", "attempt", "status", "error")})
            if outcome.ok:
                self._back[key[1]] = now
            if outcome.ok and key[1] in self._waiting:
                self._receiver_back.set()
                self._wake.set()
            if retry:
                self._wake.set()
            return next_at
        except Exception:
            _logger.exception("dispatcher attempt for %s failed", key)
            return None
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
            delay = poll if wake is None else min(poll, max(0.02, wake - self.clock()))
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


SUBSCRIBER_TABLES = ("mlflow.webhooks", "mlflow.job_triggers", "mlflow.job_trigger_tags")
"""The tables whose rows decide an event's subscribers (webhooks, and the jobs package's triggers)."""

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
            subs.append(
                WebhookSubscriber(f"webhook:{row['webhook_id']}", row, wh_event, _webhooks.max_attempts(), tables.root)
            )
    return subs
