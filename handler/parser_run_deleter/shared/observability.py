"""Logger, Metrics and the optional Tracer: created once per container and shared by every module.

The Tracer exists only when tracing is on (``POWERTOOLS_TRACE_DISABLED`` not true) and the X-Ray SDK is
installed (it is not in the layer: add it to trace). Otherwise ``trace_handler`` returns the handler unchanged
and the X-Ray SDK is never imported, so a cold start pays nothing for it.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final, TypeVar, cast

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

if TYPE_CHECKING:
    from aws_lambda_powertools import Tracer

logger: Final = Logger()
metrics: Final = Metrics()

# Powertools' metric set is a plain dict; concurrent deletes in one batch must not race on it.
_metrics_lock: Final = threading.Lock()

_Handler = TypeVar("_Handler", bound=Callable[..., Any])


def tracing_enabled(env: dict[str, str] | os._Environ[str] = os.environ) -> bool:
    """On unless ``POWERTOOLS_TRACE_DISABLED`` is true, and only where the X-Ray SDK can be imported."""
    disabled = env.get("POWERTOOLS_TRACE_DISABLED", "").strip().lower() in ("true", "1", "yes", "on")
    return not disabled and importlib.util.find_spec("aws_xray_sdk") is not None


def _create_tracer() -> Tracer | None:
    if not tracing_enabled():
        return None
    from aws_lambda_powertools import Tracer  # noqa: PLC0415 - only when tracing is on

    # Patch only what this function calls: boto3 (Secrets Manager, SQS) and http.client (urllib3 to Extend).
    return Tracer(patch_modules=("botocore", "httplib"))


tracer: Final = _create_tracer()


def trace_handler(handler: _Handler) -> _Handler:
    """``tracer.capture_lambda_handler`` when tracing is on, else the handler itself."""
    if tracer is None:
        return handler
    # Responses and errors can quote customer data: keep them out of trace metadata.
    return cast("_Handler", tracer.capture_lambda_handler(handler, capture_response=False, capture_error=False))


class MetricName:
    DELETED: Final = "ParserRunDeleted"
    NOT_FOUND: Final = "ParserRunNotFound"
    FAILED: Final = "ParserRunDeletionFailed"
    INVALID: Final = "InvalidDeletionRequest"
    QUEUED: Final = "ParserRunDeletionQueued"
    THROTTLED: Final = "ExtendThrottled"
    RETRY: Final = "ExtendRetry"
    DEAD_LETTERED: Final = "ParserRunDeadLettered"
    SIGNATURE_REJECTED: Final = "WebhookSignatureRejected"
    UNSUPPORTED_EVENT: Final = "UnsupportedEvent"
    OWNERSHIP_REFUSED: Final = "OwnershipRefused"
    TENANT_REFUSED: Final = "TenantRefused"
    REPLAYED: Final = "SignedRequestReplayed"
    OVER_CAP: Final = "TenantOverCap"
    REQUEST_COMPLETED: Final = "DeletionRequestCompleted"
    CALLBACK_DELIVERED: Final = "CompletionCallbackDelivered"
    CALLBACK_FAILED: Final = "CompletionCallbackFailed"
    LEDGER_WRITE_FAILED: Final = "LedgerWriteFailed"
    # A record that SQS did not deliver from the function's own queue (a direct invoke with an SQS-shaped event),
    # or a callback message whose request is not its tenant's: refused, nothing done.
    RECORD_REFUSED: Final = "ForeignRecordRefused"
    CANCELLED: Final = "DeletionCancelled"
    WOULD_DELETE: Final = "DryRunWouldDelete"
    OVERDUE: Final = "DeletionRequestsOverdue"


def count(name: str, value: int = 1) -> None:
    """Add ``value`` to a count metric; safe from worker threads."""
    if value:
        with _metrics_lock:
            metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
