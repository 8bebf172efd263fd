"""Webhook subscriptions: create, read, list, update, delete and test the registry's webhooks.

The operations of `LakehouseRegistryStore` on `mlflow.webhooks`, with MLflow's validation of names, URLs
and events (MLflow's own `_validate_webhook_url`: https only and no private, loopback or link-local address
unless `MLFLOW_WEBHOOK_ALLOWED_SCHEMES` / `MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS` allow them, with MLflow's
INVALID_PARAMETER_VALUE and message, the URL's credentials masked); deletion is soft. Secrets, and URLs
carrying credentials (`https://user:pass@host/...`, `?token=...`), are sealed at rest by default (`_secrets`:
one key per lake); `get_webhook` and `list_webhooks` return the URL as registered, as MLflow's SQL store does.
The first webhook call of a process seals any secret or URL an older version stored in clear and vacuums the
files that held it.
Delivery is not here: every registry change publishes events that the lake's dispatcher delivers from its
outbox (`_events`), which is why `list_webhooks_by_event` answers nothing.
"""

from __future__ import annotations

import json
import uuid

from mlflow.entities.webhook import Webhook, WebhookEvent, WebhookStatus, WebhookTestResult
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE, RESOURCE_DOES_NOT_EXIST, ErrorCode
from mlflow.store.entities.paged_list import PagedList
from mlflow.utils.search_utils import SearchUtils
from mlflow.utils.time import get_current_time_millis
from mlflow.utils.validation import _validate_webhook_events, _validate_webhook_name, _validate_webhook_url

from lakehouse import Change, Row

from . import _secrets, _webhooks
from ._registry_base import Planned, RegistryStoreBase
from ._registry_search import page_of
from ._registry_tables import WEBHOOKS


def _check_url(url: str) -> None:
    """MLflow's URL validation, its message naming the URL with its credentials masked."""
    try:
        _validate_webhook_url(url)
    except MlflowException as e:
        raise MlflowException(
            _secrets.redact_text(e.message, url if isinstance(url, str) else None), ErrorCode.Value(e.error_code)
        ) from None


class WebhooksMixin(RegistryStoreBase):
    """MLflow's webhook operations."""

    def _seal_old_secrets(self) -> None:
        _secrets.seal_stored_secrets(self._t, self._lock)  # once per lake and process

    def _webhook_row(self, webhook_id: str) -> Row:
        hit = self._t.webhooks.get(webhook_id, 0)
        if hit is None or hit.row["deleted_timestamp"] is not None:
            raise MlflowException(f"Webhook with ID {webhook_id} not found.", RESOURCE_DOES_NOT_EXIST)
        return hit.row

    def create_webhook(self, name, url, events, description=None, secret=None, status=None) -> Webhook:
        _validate_webhook_name(name)
        _check_url(url)
        _validate_webhook_events(events)
        self._seal_old_secrets()
        now = get_current_time_millis()
        row = {
            "webhook_id": str(uuid.uuid4()),
            "name": name,
            "description": description,
            "url": _webhooks.seal_url(url, self._lake.root),
            "events": json.dumps([str(e) for e in events]),
            "status": (status or WebhookStatus.ACTIVE).value,
            "secret": _webhooks.seal_secret(secret, self._lake.root),
            "creation_timestamp": now,
            "last_updated_timestamp": now,
            "deleted_timestamp": None,
        }
        with self._lock:
            self._t.write(WEBHOOKS, lambda: Change([[row]]))
        return _webhooks.to_webhook(row, self._lake.root)

    def get_webhook(self, webhook_id: str) -> Webhook:
        self._seal_old_secrets()
        with self._lock:
            self._t.refresh([WEBHOOKS])
            return _webhooks.to_webhook(self._webhook_row(webhook_id), self._lake.root)

    def _list_webhooks(self, keep, max_results, page_token) -> PagedList[Webhook]:
        self._seal_old_secrets()
        max_results = max_results or 100
        if max_results < 1 or max_results > 1000:
            raise MlflowException("max_results must be between 1 and 1000.", INVALID_PARAMETER_VALUE)
        offset = SearchUtils.parse_start_offset_from_page_token(page_token)
        with self._lock:
            self._t.refresh([WEBHOOKS])
            rows = [hits[0].row for hits in self._t.webhooks.groups.values()]
        rows = [r for r in rows if r["deleted_timestamp"] is None and keep(r)]
        rows.sort(key=lambda r: -r["creation_timestamp"])
        return page_of([_webhooks.to_webhook(r, self._lake.root) for r in rows], offset, max_results)

    def list_webhooks(self, max_results=None, page_token=None) -> PagedList[Webhook]:
        return self._list_webhooks(lambda r: True, max_results, page_token)

    def list_webhooks_by_event(self, event, max_results=None, page_token=None) -> PagedList[Webhook]:
        """Always empty: MLflow's server delivers to what this returns, and this store delivers by itself.

        Listing by event is what `mlflow.webhooks.delivery.deliver_webhook` does after every server request;
        answering nothing keeps a store served by `mlflow server` from delivering each event twice. Use
        `list_webhooks()` to see subscriptions.
        """
        return PagedList([], None)

    def update_webhook(
        self, webhook_id, name=None, description=None, url=None, events=None, secret=None, status=None
    ) -> Webhook:
        self._seal_old_secrets()
        with self._lock:
            self._t.refresh([WEBHOOKS])
            self._webhook_row(webhook_id)
            if name is not None:
                _validate_webhook_name(name)
            if url is not None:
                _check_url(url)
            if events is not None:
                _validate_webhook_events(events)
            stored_url = None if url is None else _webhooks.seal_url(url, self._lake.root)

            def plan() -> Planned:
                row = dict(self._webhook_row(webhook_id))
                for col, value in (("name", name), ("description", description)):
                    if value is not None:
                        row[col] = value
                if url is not None:
                    row["url"] = stored_url
                if events is not None:
                    row["events"] = json.dumps([str(e) for e in events])
                if secret is not None:
                    row["secret"] = _webhooks.seal_secret(secret, self._lake.root)
                if status is not None:
                    row["status"] = status.value
                row["last_updated_timestamp"] = get_current_time_millis()
                return Planned(self._t.replace(WEBHOOKS, self._t.webhooks, [(webhook_id, 0)], [row]), result=row)

            row = self._write(WEBHOOKS, plan)
        return _webhooks.to_webhook(row, self._lake.root)

    def delete_webhook(self, webhook_id: str) -> None:
        with self._lock:
            self._t.refresh([WEBHOOKS])

            def plan():
                row = self._webhook_row(webhook_id)
                now = get_current_time_millis()
                return self._t.replace(
                    WEBHOOKS,
                    self._t.webhooks,
                    [(webhook_id, 0)],
                    [{**row, "deleted_timestamp": now, "last_updated_timestamp": now}],
                )

            self._t.write(WEBHOOKS, plan)

    def test_webhook(self, webhook_id: str, event: WebhookEvent | None = None) -> WebhookTestResult:
        """Send MLflow's example payload for `event` (default: the webhook's first event), as its server does."""
        from mlflow.webhooks.types import get_example_payload_for_event

        webhook = self.get_webhook(webhook_id)
        test_event = event or webhook.events[0]
        return _webhooks.test_result(_webhooks.send(webhook, test_event, get_example_payload_for_event(test_event)))
