"""The fate of one queue message, decided from what happened to it. Pure: no I/O, no clock.

- deleted or not found: the work is done, and the message is consumed;
- malformed, or for a tenant the registry does not know or has disabled: it can never succeed, so it is
  dead-lettered with its reason at once, not retried;
- failed, before its last allowed receive: returned to SQS, which delivers it again after the visibility timeout;
- failed on its last allowed receive (``ApproximateReceiveCount`` >= ``maxReceiveCount``): dead-lettered with
  Extend's answer, so the DLQ says why, which SQS's own redrive cannot;
- never started, for want of time: returned, whatever the receive count. Nothing was learnt about the run, and
  SQS's redrive policy still moves the message once its receives are spent.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from parser_run_deleter.logic.extend_results import DeleteResult
from parser_run_deleter.logic.outcomes import Outcome


class Fate(StrEnum):
    CONSUME = "consume"
    RETRY = "retry"
    DEAD_LETTER = "dead_letter"


class FailureKind(StrEnum):
    """Why a message was dead-lettered; the ``FailureKind`` attribute of the DLQ message."""

    INVALID = "invalid"
    TENANT_REFUSED = "tenant_refused"
    PERMANENT = "permanent"
    RETRIES_EXHAUSTED = "retries_exhausted"


@dataclass(frozen=True, slots=True)
class Decision:
    fate: Fate
    failure_kind: FailureKind | None = None


def decide_fate(
    result: DeleteResult | None,
    *,
    receive_count: int,
    max_receive_count: int | None,
    started: bool = True,
    refused: FailureKind | None = None,
) -> Decision:
    """``result`` is None for a message no deletion could be attempted for: malformed, or ``refused`` (its tenant)."""
    if result is None:
        return Decision(Fate.DEAD_LETTER, refused or FailureKind.INVALID)
    if result.outcome is not Outcome.FAILED:
        return Decision(Fate.CONSUME)
    last_receive = max_receive_count is not None and receive_count >= max_receive_count
    if not started or not last_receive:
        return Decision(Fate.RETRY)
    return Decision(Fate.DEAD_LETTER, FailureKind.RETRIES_EXHAUSTED if result.retryable else FailureKind.PERMANENT)
