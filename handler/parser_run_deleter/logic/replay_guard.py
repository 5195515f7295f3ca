"""A signed request is served once: the same tenant and ``webhook-id`` get the first response back, and the work
is not done again. So is a request with an ``Idempotency-Key``, for 24 hours: a client that retries after a lost
answer (with a fresh signature, so a new ``webhook-id``) gets the first answer and the same deletion request.
Built on Powertools' idempotency utility with its DynamoDB persistence layer; both kinds share its table.

The key is the tenant and the ``webhook-id``; the request's method, route and the hash of what the signature covered
are validated against the first one's, so the same ``webhook-id`` with another method, route or body is a conflict
(422), never the first request's answer. A request still being
served when its twin arrives is 409. A 5xx or 429 answer (Extend, AWS or a limit failing it) is not remembered:
the client's retry with the same ``webhook-id`` runs again rather than getting the failure back.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Final

from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig, idempotent_function
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyValidationError,
)
from aws_lambda_powertools.utilities.idempotency.persistence.base import BasePersistenceLayer
from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import DataRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from parser_run_deleter.logic.authentication import AuthenticatedRequest
from parser_run_deleter.logic.webhook_signature import TOLERANCE_S
from parser_run_deleter.shared.observability import MetricName, count

# A signature verifies from TOLERANCE_S before its timestamp to TOLERANCE_S after: remember it that long, and more.
REPLAY_WINDOW_S: Final = 2 * TOLERANCE_S + 60
REPLAYED_HEADER: Final = "Idempotent-Replayed"
KEY_PREFIX: Final = "signed-request"
IDEMPOTENCY_KEY_PREFIX: Final = "idempotency-key"
IDEMPOTENCY_KEY_WINDOW_S: Final = 24 * 3600
# What a replay must repeat exactly: the method, the route and the signed payload.
VALIDATED_FIELDS: Final = "[method, route, payloadSha256]"

# What is remembered of a response: status, headers and the body as sent.
StoredResponse = dict[str, Any]


class ReplayConflict(Exception):
    """The ``webhook-id`` was used before with another signed payload (422)."""


class ReplayInProgress(Exception):
    """The first request with this ``webhook-id`` is still being served (409)."""


class _NotRemembered(Exception):
    def __init__(self, response: StoredResponse) -> None:
        super().__init__("a failure is answered but not remembered")
        self.response = response


def _mark_replayed(response: StoredResponse, idempotent_data: DataRecord) -> StoredResponse:
    count(MetricName.REPLAYED)
    return {**response, "headers": {**response.get("headers", {}), REPLAYED_HEADER: "true"}}


def _execute(*, request: dict[str, str], execute: Callable[[], StoredResponse]) -> StoredResponse:
    response = execute()
    if int(response["status"]) >= 500 or int(response["status"]) == 429:
        raise _NotRemembered(response)
    return response


def replay_config() -> IdempotencyConfig:
    """What identifies a signed request (its tenant and ``webhook-id``), what must match on a replay, and how long
    it is remembered."""
    return IdempotencyConfig(
        event_key_jmespath="[tenantId, webhookId]",
        payload_validation_jmespath=VALIDATED_FIELDS,
        raise_on_no_idempotency_key=True,
        expires_after_seconds=REPLAY_WINDOW_S,
        response_hook=_mark_replayed,
    )


def replay_record(authenticated: AuthenticatedRequest) -> dict[str, str]:
    """The data the replay guard keys and validates a request by."""
    return {
        "tenantId": authenticated.tenant.tenant_id,
        "webhookId": authenticated.webhook_id,
        **_request_fields(authenticated),
    }


def _request_fields(authenticated: AuthenticatedRequest) -> dict[str, str]:
    return {
        "method": authenticated.method,
        "route": authenticated.route_path,
        "payloadSha256": authenticated.payload_sha256,
    }


def idempotency_key_config() -> IdempotencyConfig:
    """A request with an ``Idempotency-Key``: keyed by its tenant and the key, the signed payload must match."""
    return IdempotencyConfig(
        event_key_jmespath="[tenantId, idempotencyKey]",
        payload_validation_jmespath=VALIDATED_FIELDS,
        raise_on_no_idempotency_key=True,
        expires_after_seconds=IDEMPOTENCY_KEY_WINDOW_S,
        response_hook=_mark_replayed,
    )


class ReplayGuard:
    """The two guards over one table. ``persistence(purpose)`` makes a persistence layer for one guard: a layer
    holds the configuration of the guard that last used it, so the two must not share one."""

    def __init__(self, persistence: Callable[[str], BasePersistenceLayer]) -> None:
        self._persistence = persistence
        self._lock = threading.Lock()
        self._guards: dict[str, tuple[Callable[..., StoredResponse], IdempotencyConfig]] = {}

    def _guard(self, key_prefix: str) -> tuple[Callable[..., StoredResponse], IdempotencyConfig]:
        with self._lock:
            guard = self._guards.get(key_prefix)
            if guard is None:
                config = replay_config() if key_prefix == KEY_PREFIX else idempotency_key_config()
                once: Callable[..., StoredResponse] = idempotent_function(
                    data_keyword_argument="request",
                    persistence_store=self._persistence(key_prefix),
                    config=config,
                    key_prefix=key_prefix,
                )(_execute)
                guard = self._guards[key_prefix] = (once, config)
            return guard

    def serve_once(
        self,
        authenticated: AuthenticatedRequest,
        execute: Callable[[], StoredResponse],
        *,
        lambda_context: LambdaContext,
    ) -> StoredResponse:
        """``execute()``'s response, or the one the first request with this tenant and ``webhook-id`` got.

        Raises ``ReplayConflict`` or ``ReplayInProgress``; an unreachable table surfaces as Powertools'
        ``IdempotencyPersistenceLayerError`` (503); ``execute``'s own errors pass through, and are not remembered.
        """
        return self._once(KEY_PREFIX, "webhook-id", replay_record(authenticated), execute, lambda_context)

    def serve_once_per_key(
        self,
        authenticated: AuthenticatedRequest,
        idempotency_key: str,
        execute: Callable[[], StoredResponse],
        *,
        lambda_context: LambdaContext,
    ) -> StoredResponse:
        """``execute()``'s response, or the one the tenant's first request with this ``Idempotency-Key`` got (within
        24 hours). The same key with another request is ``ReplayConflict``; while the first runs,
        ``ReplayInProgress``."""
        request = {
            "tenantId": authenticated.tenant.tenant_id,
            "idempotencyKey": idempotency_key,
            **_request_fields(authenticated),
        }
        return self._once(IDEMPOTENCY_KEY_PREFIX, "Idempotency-Key", request, execute, lambda_context)

    def _once(
        self,
        key_prefix: str,
        key_name: str,
        request: dict[str, str],
        execute: Callable[[], StoredResponse],
        lambda_context: LambdaContext,
    ) -> StoredResponse:
        run, config = self._guard(key_prefix)
        config.register_lambda_context(lambda_context)
        try:
            return run(request=request, execute=execute)
        except _NotRemembered as failure:
            return failure.response
        except IdempotencyValidationError:
            raise ReplayConflict(f"this {key_name} was used for another request") from None
        except IdempotencyAlreadyInProgressError:
            raise ReplayInProgress(f"the first request with this {key_name} is still being served") from None
