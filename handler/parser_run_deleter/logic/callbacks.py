"""Completion callbacks: telling a tenant that one of its deletion requests has completed.

The callback is a ``POST`` of a ``deletion_request.completed`` event (the request's id, status, counts and a link to
its status resource), signed with Standard Webhooks using the tenant's callback-signing secret(s), so the tenant
checks it with any Standard Webhooks library. That key is the callbacks' alone, never the one the tenant signs its
requests with: a callback, whoever sees it, can never be replayed as a request. Deliveries are at least once: every
retry carries the same ``webhook-id`` (the tenant de-duplicates on it), and a failed one is retried with exponential
backoff over hours, then left to the callback queue's DLQ. Each attempt's state is recorded on the request, where
the status resource shows it.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from parser_run_deleter.logic.authentication import callback_signing_secret_id
from parser_run_deleter.logic.ledger import Ledger
from parser_run_deleter.logic.ledger_records import LedgerUnavailable, RequestRecord
from parser_run_deleter.logic.ports import (
    CallbackRefused,
    CallbackTransport,
    DeliveryAnswer,
    SecretSource,
    SecretUnavailable,
    SourceQueue,
)
from parser_run_deleter.logic.tenants import RegistryUnavailable, Tenant, TenantDirectory
from parser_run_deleter.logic.webhook_signature import (
    HEADER_ID,
    HEADER_SIGNATURE,
    HEADER_TIMESTAMP,
    SigningSecretUnavailable,
    parse_signing_secrets,
    sign,
)
from parser_run_deleter.shared.observability import MetricName, count, logger
from parser_run_deleter.shared.settings import CallbackSettings
from parser_run_deleter.shared.timestamps import now_iso

EVENT_TYPE: Final = "deletion_request.completed"
FIRST_BACKOFF_S: Final = 60
# SQS refuses a visibility that reaches past 12 hours from the receive: ChangeMessageVisibility does not restart that
# clock. When a backoff is set, the record has been in flight for up to the callback queue's visibility timeout (the
# poller may invoke late) plus the attempt (the function's timeout): 3.5 minutes in the template, which tests/infra
# keeps inside this allowance. The longest backoff is the rest of the 12 hours.
SQS_VISIBILITY_LIMIT_S: Final = 12 * 3600
IN_FLIGHT_ALLOWANCE_S: Final = 15 * 60
MAX_BACKOFF_S: Final = SQS_VISIBILITY_LIMIT_S - IN_FLIGHT_ALLOWANCE_S


class CallbackMessageInvalid(ValueError):
    """A callback queue message this function did not write; it is dropped (there is nobody to tell)."""


@dataclass(frozen=True, slots=True)
class CallbackMessage:
    deletion_request_id: str
    tenant_id: str
    sequence: int
    receive_count: int = 1


@dataclass(frozen=True, slots=True)
class Delivery:
    """What became of one delivery attempt: done (delivered, or nothing left to deliver), or retry after a while."""

    done: bool
    retry_after_s: int = 0
    state: str = ""


def parse_callback_message(body: str, receive_count: int) -> CallbackMessage:
    try:
        document = json.loads(body)
        return CallbackMessage(
            str(document["deletionRequestId"]), str(document["tenantId"]), int(document["sequence"]), receive_count
        )
    except (ValueError, KeyError, TypeError):
        raise CallbackMessageInvalid("not a completion callback message") from None


def webhook_id(message: CallbackMessage) -> str:
    """The same on every retry of one completion, so the tenant can tell a retry from a new event."""
    return f"msg_{message.deletion_request_id}_{message.sequence}"


def backoff_s(receive_count: int) -> int:
    """1, 2, 4 ... minutes after each failed attempt, at most 11 h 45 min (``MAX_BACKOFF_S``): with 12 attempts, the
    last comes about 28 h 48 min after the first (docs/ledger.md has the table)."""
    return int(min(FIRST_BACKOFF_S * 2 ** max(receive_count - 1, 0), MAX_BACKOFF_S))


def retry_after_s(receive_count: int, max_attempts: int | None) -> int:
    """How long a record that was not delivered stays hidden: its backoff, or nothing after the last attempt, so that
    SQS's redrive parks it in the callback DLQ at once rather than a backoff later."""
    if max_attempts is not None and receive_count >= max_attempts:
        return 0
    return backoff_s(receive_count)


def completion_event(request: RequestRecord, api_base_url: str | None) -> dict[str, Any]:
    status_path = f"/deletions/{request.request_id}"
    return {
        "type": EVENT_TYPE,
        "timestamp": now_iso(),
        "data": {
            "deletionRequestId": request.request_id,
            "status": request.status().value,
            "counts": request.shown_counts(),
            "completedAt": request.completed_at,
            "links": {"status": f"{api_base_url.rstrip('/')}{status_path}" if api_base_url else status_path},
        },
    }


def signed_headers(secrets_value: str, message_id: str, body: bytes, now: float | None = None) -> dict[str, str]:
    """Standard Webhooks headers, one signature per currently valid secret (so a rotation breaks no receiver)."""
    timestamp = int(time.time() if now is None else now)
    keys = parse_signing_secrets(secrets_value, now=timestamp)
    return {
        HEADER_ID: message_id,
        HEADER_TIMESTAMP: str(timestamp),
        HEADER_SIGNATURE: " ".join(sign(key, message_id, timestamp, body) for key in keys),
    }


class SecretVersions:
    """The callback-signing secret version each tenant had when this container last read its secret: a newer one in
    the registry (a rotation) is read afresh, not from the cache."""

    def __init__(self) -> None:
        self._read: dict[str, int] = {}
        self._lock = threading.Lock()

    def is_new(self, tenant_id: str, version: int) -> bool:
        with self._lock:
            known = self._read.get(tenant_id)
            self._read[tenant_id] = version
        return known is not None and known != version

    def clear(self) -> None:
        with self._lock:
            self._read.clear()


@dataclass(frozen=True, slots=True)
class CallbackServices:
    """What deliveries work with: the callback function's composition root builds them once per container."""

    settings: CallbackSettings
    ledger: Ledger
    tenants: TenantDirectory
    secrets: SecretSource
    transport: CallbackTransport
    source: SourceQueue
    versions: SecretVersions = field(default_factory=SecretVersions)


def deliver(message: CallbackMessage, services: CallbackServices) -> Delivery:
    """Make one delivery attempt, and record its state on the request."""
    records = services.ledger
    max_attempts = services.settings.max_receive_count
    try:
        tenant = services.tenants.by_tenant_id(message.tenant_id)
        request = records.request(message.deletion_request_id)
    except (RegistryUnavailable, LedgerUnavailable) as error:
        logger.warning("cannot read the callback's tenant or request", extra={"reason": str(error)})
        return Delivery(False, retry_after_s(message.receive_count, max_attempts), "retrying")
    if request is not None and request.tenant_id != message.tenant_id:
        # Only the functions write callback messages, and always with the request's own tenant: one that names
        # another tenant was forged or corrupted. Nothing is sent, and the request's record is not touched.
        count(MetricName.RECORD_REFUSED)
        logger.error(
            "callback message refused: the request is not this tenant's",
            extra={"deletion_request_id": message.deletion_request_id, "tenant_id": message.tenant_id},
        )
        return Delivery(True, state="refused")
    if request is None or tenant is None or not tenant.active or tenant.callback_url is None:
        # Nobody to tell any more (tenant removed or disabled, callback cleared, request expired): done, and said so.
        _record(records, message, {"state": "cancelled", "reason": "the tenant no longer takes callbacks"})
        return Delivery(True, state="cancelled")
    answer = _attempt(message, request, tenant, tenant.callback_url, services)
    attempt = {"attempts": message.receive_count, "lastAttemptAt": now_iso(), "lastStatus": answer.status}
    if answer.delivered:
        count(MetricName.CALLBACK_DELIVERED)
        _record(records, message, {"state": "delivered", "deliveredAt": attempt["lastAttemptAt"], **attempt})
        return Delivery(True, state="delivered")
    last = max_attempts is not None and message.receive_count >= max_attempts
    state = "failed" if last else "retrying"
    count(MetricName.CALLBACK_FAILED)
    logger.warning(
        "completion callback not delivered",
        extra={
            "reason": answer.error,
            "status_code": answer.status,
            "deletion_request_id": message.deletion_request_id,
        },
    )
    _record(records, message, {"state": state, "lastError": answer.error, **attempt})
    # On the last attempt the message is returned all the same: SQS's redrive moves it to the callback DLQ.
    return Delivery(False, retry_after_s(message.receive_count, max_attempts), state)


def _attempt(
    message: CallbackMessage, request: RequestRecord, tenant: Tenant, callback_url: str, services: CallbackServices
) -> DeliveryAnswer:
    settings = services.settings
    body = json.dumps(completion_event(request, settings.api_base_url), separators=(",", ":")).encode()
    try:
        secrets_value = services.secrets.secret_string(
            callback_signing_secret_id(settings.tenant_secret_prefix, tenant.tenant_id),
            force_fetch=services.versions.is_new(tenant.tenant_id, tenant.callback_secret_version),
        )
        headers = signed_headers(secrets_value, webhook_id(message), body)
    except (SecretUnavailable, SigningSecretUnavailable) as error:
        return DeliveryAnswer(None, f"cannot sign: {type(error).__name__}")
    try:
        return services.transport.post(callback_url, body, headers, timeout_s=settings.callback_timeout_s)
    except CallbackRefused as error:
        return DeliveryAnswer(None, f"refused: {error}")


def _record(records: Ledger, message: CallbackMessage, state: Mapping[str, Any]) -> None:
    try:
        records.set_callback(message.deletion_request_id, {**state, "webhookId": webhook_id(message)})
    except LedgerUnavailable as error:  # the delivery happened or not regardless; its record is a courtesy
        logger.warning("cannot record the callback's state", extra={"reason": str(error)})
