"""Webhook deliveries the way MLflow's server makes them: payload, HMAC signature, headers, SSRF checks.

Mirrors `mlflow.webhooks.delivery` (MLflow 3.17): the body is `{"entity", "action", "timestamp", "data"}`
serialised with `json.dumps`; `X-MLflow-Signature` is `v1,<base64 HMAC-SHA256 of
"<delivery id>.<unix timestamp>.<body>">` keyed by the webhook's secret; `X-MLflow-Delivery-Id` and
`X-MLflow-Timestamp` carry the signed values. URLs are checked with MLflow's `_validate_webhook_url` before
every send (https only and public addresses only, unless `MLFLOW_WEBHOOK_ALLOWED_SCHEMES` /
`MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS` say otherwise) and the connected peer again at connect time.

Unlike MLflow's fire-and-forget sender, one `send` is one HTTP attempt: retries are the dispatcher's
(`tracking._events`), so that every attempt lands in the `mlflow.webhook_deliveries` log. As urllib3 does for
MLflow (`respect_retry_after_header`), a 429 or 503 answer's `Retry-After` (seconds or an HTTP-date) sets the
delay before the next attempt; `retry_delay` is the whole schedule. One delivery (an event to one webhook)
keeps one `X-MLflow-Delivery-Id` over all its attempts, as MLflow's retries resend the same request, so a
receiver deduplicates by it. Secrets, and URLs carrying credentials, are sealed at rest (`_secrets`); an
error or log line naming the URL shows it redacted (`_secrets.redact_url`: `https://***@host/x?token=***`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import requests
from mlflow.entities.webhook import Webhook, WebhookEvent, WebhookStatus, WebhookTestResult
from mlflow.environment_variables import (
    MLFLOW_ENABLE_WORKSPACES,
    MLFLOW_WEBHOOK_REQUEST_MAX_RETRIES,
    MLFLOW_WEBHOOK_REQUEST_TIMEOUT,
)
from mlflow.exceptions import MlflowException
from mlflow.utils.validation import _validate_webhook_url
from mlflow.webhooks.constants import (
    WEBHOOK_DELIVERY_ID_HEADER,
    WEBHOOK_SIGNATURE_HEADER,
    WEBHOOK_SIGNATURE_VERSION,
    WEBHOOK_TIMESTAMP_HEADER,
)
from mlflow.webhooks.ssrf import SSRFProtectedHTTPAdapter

from lakehouse import Row, settings

from . import _secrets

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
"""Statuses MLflow's sender retries (its urllib3 `status_forcelist`); other 4xx/5xx fail at once."""
UNAVAILABLE_STATUSES = frozenset({429, 502, 503, 504})
"""Statuses saying the receiver is not there now (overloaded, restarting, behind a gateway): like a refused
connection, retried until the delivery's deadline, not counted against MLflow's retry limit."""
RETRY_AFTER_STATUSES = frozenset({429, 503})
"""Statuses whose `Retry-After` header is obeyed (urllib3's, minus 413 which is never retried)."""
MAX_BACKOFF_SECONDS = 300.0
"""Cap of the exponential back-off (a long outage is retried every 5 minutes; a success wakes the rest)."""
JITTER_FRACTION, MAX_JITTER_SECONDS = 0.1, 1.0
"""Every delay gets a random extra of up to min(10% of it, 1 s): never less than asked."""


def max_attempts() -> int:
    """MLflow's `MLFLOW_WEBHOOK_REQUEST_MAX_RETRIES` (default 3) retries after the first attempt."""
    return MLFLOW_WEBHOOK_REQUEST_MAX_RETRIES.get() + 1


def backoff_seconds(attempt: int) -> float:
    """Delay after failed attempt `attempt` (1-based): MLflow's back-off (1 s, 2 s, 4 s, ...) capped at 300 s.

    `LAKEHOUSE_WEBHOOK_BACKOFF_SECONDS` replaces the 1 s factor (tests use a small one).
    """
    factor = settings().webhook_backoff_seconds
    return min(MAX_BACKOFF_SECONDS, factor * 2.0 ** min(attempt - 1, 64))


def retry_delay(attempt: int, retry_after: float | None, rng: random.Random | None = None) -> float:
    """Seconds before the attempt after failed attempt `attempt`: the receiver's `Retry-After` when it sent one,
    else `backoff_seconds(attempt)`; plus a jitter drawn uniformly from [0, min(10% of that, 1 s)].

    The caller caps the result at the delivery's deadline.
    """
    base = backoff_seconds(attempt) if retry_after is None else retry_after
    return base + (rng or random).uniform(0.0, min(JITTER_FRACTION * base, MAX_JITTER_SECONDS))


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds a `Retry-After` header asks for (delta-seconds or an HTTP-date, RFC 9110 10.2.3); None if absent
    or unreadable. A date in the past asks for 0."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)  # RFC 9110: an HTTP-date is in GMT
    return max(0.0, when.timestamp() - now)


def sign(secret: str, delivery_id: str, timestamp: str, body: str) -> str:
    """MLflow's webhook signature: `v1,` + base64(HMAC-SHA256(secret, f"{delivery_id}.{timestamp}.{body}"))."""
    digest = hmac.new(secret.encode("utf-8"), f"{delivery_id}.{timestamp}.{body}".encode(), hashlib.sha256).digest()
    return f"{WEBHOOK_SIGNATURE_VERSION},{base64.b64encode(digest).decode('utf-8')}"


@dataclass(frozen=True)
class Outcome:
    """One delivery attempt's result. `retryable` failures are tried again after a backoff; `unavailable` ones
    (no answer, or 429/502/503/504) until the delivery's deadline; `retry_after` is the receiver's ask (s)."""

    ok: bool
    retryable: bool = False
    response_status: int | None = None
    response_body: str | None = None
    error: str | None = None
    delivery_id: str | None = None
    unavailable: bool = False
    retry_after: float | None = None


_session: requests.Session | None = None
_session_lock = threading.Lock()


def _http() -> requests.Session:
    global _session
    with _session_lock:
        if _session is None:
            s = requests.Session()
            s.trust_env = False  # a proxy would make the checked peer the proxy (as in MLflow)
            adapter = SSRFProtectedHTTPAdapter(max_retries=0)
            s.mount("http://", adapter)
            s.mount("https://", adapter)
            _session = s
        return _session


def send(webhook: Webhook, event: WebhookEvent, data: Mapping[str, Any], *, delivery_id: str | None = None) -> Outcome:
    """POST one signed delivery of `data` for `event` to `webhook.url`; never raises.

    `delivery_id` (default: a new one) is sent as `X-MLflow-Delivery-Id`; every attempt of one delivery sends
    the same. Error texts never hold the secret, nor the URL's credentials (the URL is shown redacted, with
    the exception's type and message); urllib3's log lines about the request mask them too.
    """
    delivery_id = delivery_id or str(uuid.uuid4())
    url = webhook.url
    try:
        _validate_webhook_url(url)
    except MlflowException as e:
        return Outcome(ok=False, error=_secrets.redact_text(f"URL refused: {e.message}", url), delivery_id=delivery_id)
    _secrets.mask_in_logs(url)
    body: dict[str, Any] = {
        "entity": event.entity.value,
        "action": event.action.value,
        "timestamp": datetime.now(UTC).isoformat(),
        "data": data,
    }
    if MLFLOW_ENABLE_WORKSPACES.get():
        body["workspace"] = webhook.workspace
    text = json.dumps(body)
    unix = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        WEBHOOK_DELIVERY_ID_HEADER: delivery_id,
        WEBHOOK_TIMESTAMP_HEADER: unix,
    }
    if webhook.secret:
        headers[WEBHOOK_SIGNATURE_HEADER] = sign(webhook.secret, delivery_id, unix, text)
    try:
        resp = _http().post(
            url, data=text.encode("utf-8"), headers=headers, timeout=MLFLOW_WEBHOOK_REQUEST_TIMEOUT.get()
        )
    except requests.RequestException as e:
        return Outcome(
            ok=False,
            retryable=True,
            unavailable=True,
            error=_secrets.redact_text(f"{type(e).__name__}: {e}", url)[:2000],
            delivery_id=delivery_id,
        )
    except Exception as e:  # noqa: BLE001 - SSRFProtectionError and friends: fail closed, no retry
        return Outcome(
            ok=False, error=_secrets.redact_text(f"{type(e).__name__}: {e}", url)[:2000], delivery_id=delivery_id
        )
    ok = resp.status_code < 400
    retry_after = None
    if resp.status_code in RETRY_AFTER_STATUSES:
        retry_after = parse_retry_after(resp.headers.get("Retry-After"), time.time())
    return Outcome(
        ok=ok,
        retryable=resp.status_code in RETRY_STATUSES,
        unavailable=resp.status_code in UNAVAILABLE_STATUSES,
        retry_after=retry_after,
        response_status=resp.status_code,
        response_body=resp.text[:2000],
        error=None if ok else f"HTTP {resp.status_code}",
        delivery_id=delivery_id,
    )


def test_result(outcome: Outcome) -> WebhookTestResult:
    """The `WebhookTestResult` MLflow's server answers `test_webhook` with."""
    if outcome.response_status is None:
        return WebhookTestResult(success=False, error_message=f"Failed to test webhook: {outcome.error}")
    return WebhookTestResult(
        success=outcome.ok, response_status=outcome.response_status, response_body=outcome.response_body
    )


# -- rows <-> entities ------------------------------------------------------------------------------------
def seal_secret(secret: str | None, root: str) -> str | None:
    """The secret as stored in `mlflow.webhooks` of the lake at `root`: sealed unless opted out (`_secrets`)."""
    return _secrets.seal(secret, root)


def open_secret(stored: str | None, root: str) -> str | None:
    return _secrets.open_(stored, root)


def seal_url(url: str, root: str) -> str:
    """The URL as stored in `mlflow.webhooks`: sealed whole when it carries credentials, unless opted out."""
    return _secrets.seal_url(url, root) or url


class _Webhook(Webhook):
    """MLflow's `Webhook` (its `url` as registered, as MLflow's SQL store returns it) whose repr, the form that
    lands in logs and tracebacks, shows the URL redacted."""

    def __repr__(self) -> str:
        return super().__repr__().replace(f"url='{self.url}'", f"url='{_secrets.redact_url(self.url)}'", 1)


def to_webhook(row: Row, root: str) -> Webhook:
    return _Webhook(
        webhook_id=row["webhook_id"],
        name=row["name"],
        url=_secrets.open_url(row["url"], root),
        events=[WebhookEvent.from_str(e) for e in json.loads(row["events"])],
        creation_timestamp=row["creation_timestamp"],
        last_updated_timestamp=row["last_updated_timestamp"],
        description=row["description"],
        status=WebhookStatus(row["status"]),
        secret=open_secret(row["secret"], root),
    )
