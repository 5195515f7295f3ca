"""Logger, Metrics and the optional Tracer: created once per container and shared by every module."""

from __future__ import annotations

import threading
from typing import Final

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

logger: Final = Logger()
metrics: Final = Metrics()

# Powertools' metric set is a plain dict; concurrent deletes in one batch must not race on it.
_metrics_lock: Final = threading.Lock()


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


def count(name: str, value: int = 1) -> None:
    """Add ``value`` to a count metric; safe from worker threads."""
    if value:
        with _metrics_lock:
            metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
