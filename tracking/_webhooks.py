"""Webhook deliveries the way MLflow's server makes them: payload, HMAC signature, headers, SSRF checks.

Mirrors `mlflow.webhooks.delivery` (MLflow 3.17): the body is `{"entity", "action", "timestamp", "data"}`
serialised with `json.dumps`; `X-MLflow-Signature` is `v1,<base64 HMAC-SHA256 of
"<delivery id>.<unix timestamp>.<body>">` keyed by the webhook's secret; `X-MLflow-Delivery-Id` and
`X-MLflow-Timestamp` carry the signed values. URLs are checked with MLflow's `_validate_webhook_url` before
every send (https only and public addresses only, unless `MLFLOW_WEBHOOK_ALLOWED_SCHEMES` /
`MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS` say otherwise) and the connected peer again at connect time.

Unlike MLflow's fire-and-forget sender, one `send` is one HTTP attempt: retries are the dispatcher's
(`tracking._events`), so that every attempt lands in the `mlflow.webhook_deliveries` log.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import requests
from mlflow.entities.webhook import Webhook, WebhookEvent, WebhookStatus, WebhookTestResult
from mlflow.environment_variables import (
    MLFLOW_ENABLE_WORKSPACES,
    MLFLOW_WEBHOOK_REQUEST_MAX_RETRIES,
    MLFLOW_WEBHOOK_REQUEST_TIMEOUT,
    MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY,
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

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
"""Statuses MLflow's sender retries (its urllib3 `status_forcelist`); other 4xx/5xx fail at once."""

_FERNET_PREFIX = "fernet:"


def max_attempts() -> int:
    """MLflow's `MLFLOW_WEBHOOK_REQUEST_MAX_RETRIES` (default 3) retries after the first attempt."""
    return MLFLOW_WEBHOOK_REQUEST_MAX_RETRIES.get() + 1


def backoff_seconds(attempt: int) -> float:
    """Delay after failed attempt `attempt` (1-based): MLflow's backoff (1 s, 2 s, 4 s, ... capped at 60 s).

    `LAKEHOUSE_WEBHOOK_BACKOFF_SECONDS` replaces the 1 s factor (tests use a small one).
    """
    factor = settings().webhook_backoff_seconds
    return min(60.0, factor * 2 ** (attempt - 1))


def sign(secret: str, delivery_id: str, timestamp: str, body: str) -> str:
    """MLflow's webhook signature: `v1,` + base64(HMAC-SHA256(secret, f"{delivery_id}.{timestamp}.{body}"))."""
    digest = hmac.new(secret.encode("utf-8"), f"{delivery_id}.{timestamp}.{body}".encode(), hashlib.sha256).digest()
    return f"{WEBHOOK_SIGNATURE_VERSION},{base64.b64encode(digest).decode('utf-8')}"


@dataclass(frozen=True)
class Outcome:
    """One delivery attempt's result. `retryable` failures are tried again after a backoff."""

    ok: bool
    retryable: bool = False
    response_status: int | None = None
    response_body: str | None = None
    error: str | None = None
    delivery_id: str | None = None


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


def send(webhook: Webhook, event: WebhookEvent, data: Mapping[str, Any]) -> Outcome:
    """POST one signed delivery of `data` for `event` to `webhook.url`; never raises."""
    delivery_id = str(uuid.uuid4())
    try:
        _validate_webhook_url(webhook.url)
    except MlflowException as e:
        return Outcome(ok=False, error=f"URL refused: {e.message}", delivery_id=delivery_id)
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
            webhook.url, data=text.encode("utf-8"), headers=headers, timeout=MLFLOW_WEBHOOK_REQUEST_TIMEOUT.get()
        )
    except requests.RequestException as e:
        return Outcome(ok=False, retryable=True, error=f"{type(e).__name__}: {e}"[:2000], delivery_id=delivery_id)
    except Exception as e:  # noqa: BLE001 - SSRFProtectionError and friends: fail closed, no retry
        return Outcome(ok=False, error=f"{type(e).__name__}: {e}"[:2000], delivery_id=delivery_id)
    ok = resp.status_code < 400
    return Outcome(
        ok=ok,
        retryable=resp.status_code in RETRY_STATUSES,
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
def _cipher():
    key = MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY.get()
    if not key:
        return None
    from cryptography.fernet import Fernet

    return Fernet(key)


def seal_secret(secret: str | None) -> str | None:
    """Encrypt with MLflow's `MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY` (Fernet) when set; else store as given."""
    if secret is None:
        return None
    cipher = _cipher()
    return secret if cipher is None else _FERNET_PREFIX + cipher.encrypt(secret.encode()).decode()


def open_secret(stored: str | None) -> str | None:
    if stored is None or not stored.startswith(_FERNET_PREFIX):
        return stored
    cipher = _cipher()
    if cipher is None:
        raise MlflowException(
            "A webhook secret in the lake is encrypted but MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY is not set in this "
            "process; set it to the key the webhook was created with.",
        )
    return cipher.decrypt(stored[len(_FERNET_PREFIX) :].encode()).decode()


def to_webhook(row: Row) -> Webhook:
    return Webhook(
        webhook_id=row["webhook_id"],
        name=row["name"],
        url=row["url"],
        events=[WebhookEvent.from_str(e) for e in json.loads(row["events"])],
        creation_timestamp=row["creation_timestamp"],
        last_updated_timestamp=row["last_updated_timestamp"],
        description=row["description"],
        status=WebhookStatus(row["status"]),
        secret=open_secret(row["secret"]),
    )
