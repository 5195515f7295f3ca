"""Adapter for SQS: dead-lettering with a reason, durable enqueueing of deletion requests, and confirming that the
records an invocation was handed are the function's own queue's.

The boto3 client is created on first use, so invocations that never touch SQS never pay for it. boto3 honours
``AWS_ENDPOINT_URL``, which is how tests and the local stack reach moto's server.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Final

import boto3
from botocore.config import Config

from parser_run_deleter.shared.time_budget import Deadline

if TYPE_CHECKING:
    from mypy_boto3_sqs.client import SQSClient
    from mypy_boto3_sqs.type_defs import (
        ChangeMessageVisibilityBatchRequestEntryTypeDef,
        MessageAttributeValueTypeDef,
        SendMessageBatchRequestEntryTypeDef,
    )

SQS_BATCH_LIMIT: Final = 10
MAX_ATTRIBUTE_LENGTH: Final = 1024
# The longest one SendMessageBatch call can take with the client configuration below.
SQS_CALL_WORST_CASE_S: Final = 8.0
_client_lock: Final = threading.Lock()
# Short timeouts and one retry: a synchronous API request (8 s budget, then at most 2 x 4 s here) must answer inside
# the API function's 20 s timeout even when SQS hangs (botocore's defaults are 60 s per read, 3 attempts).
_SQS_CONFIG: Final = Config(connect_timeout=1, read_timeout=3, retries={"max_attempts": 2, "mode": "standard"})


@cache
def _cached_sqs_client() -> SQSClient:
    return boto3.client("sqs", config=_SQS_CONFIG)


def sqs_client() -> SQSClient:
    # boto3's session is not thread-safe while it builds a client; batch workers may race to the first call.
    with _client_lock:
        return _cached_sqs_client()


def reset() -> None:
    """Forget the SQS client and its connections (tests, and SnapStart restores)."""
    with _client_lock:
        _cached_sqs_client.cache_clear()


class QueueSendError(RuntimeError):
    """SQS did not take the message. Carries no message content."""


def _string_attributes(attributes: Mapping[str, str | int | None]) -> dict[str, MessageAttributeValueTypeDef]:
    encoded: dict[str, MessageAttributeValueTypeDef] = {}
    for name, value in attributes.items():
        if value is None or value == "":
            continue
        if isinstance(value, int):
            encoded[name] = {"DataType": "Number", "StringValue": str(value)}
        else:
            encoded[name] = {"DataType": "String", "StringValue": value[:MAX_ATTRIBUTE_LENGTH]}
    return encoded


def send_to_dead_letter_queue(queue_url: str, body: str, attributes: Mapping[str, str | int | None]) -> str:
    """Park a message in the DLQ with its reason as message attributes; returns the new message id."""
    try:
        response = sqs_client().send_message(
            QueueUrl=queue_url, MessageBody=body, MessageAttributes=_string_attributes(attributes)
        )
    except Exception as error:  # any failure means the caller must keep the original message
        raise QueueSendError(f"could not dead-letter the message: {type(error).__name__}") from None
    return response["MessageId"]


@dataclass(frozen=True, slots=True)
class EnqueueResult:
    queued: tuple[str, ...]
    failed: tuple[str, ...]


def enqueue_messages(
    queue_url: str,
    messages: Mapping[str, str],
    *,
    attempts: int = 3,
    deadline: Deadline | None = None,
    message_group_id: str | None = None,
    delay_s: int = 0,
) -> EnqueueResult:
    """Send ``{key: body}`` with ``SendMessageBatch`` in chunks of 10, retrying the entries SQS rejects.

    A key is reported queued only when SQS acknowledged its entry. No call starts that could outlast ``deadline``;
    what was not sent by then is reported failed.
    """
    pending = dict(messages)
    queued: list[str] = []
    for _ in range(attempts):
        if not pending:
            break
        keys = list(pending)
        for start in range(0, len(keys), SQS_BATCH_LIMIT):
            if deadline is not None and deadline.remaining() < SQS_CALL_WORST_CASE_S:
                break
            chunk = keys[start : start + SQS_BATCH_LIMIT]
            queued.extend(_send_chunk(queue_url, chunk, pending, message_group_id, delay_s))
        for key in queued:
            pending.pop(key, None)
    return EnqueueResult(queued=tuple(queued), failed=tuple(pending))


def _send_chunk(
    queue_url: str, keys: Sequence[str], bodies: Mapping[str, str], message_group_id: str | None, delay_s: int = 0
) -> list[str]:
    entries: list[SendMessageBatchRequestEntryTypeDef] = []
    for index, key in enumerate(keys):
        entry: SendMessageBatchRequestEntryTypeDef = {"Id": str(index), "MessageBody": bodies[key]}
        if message_group_id is not None:
            entry["MessageGroupId"] = message_group_id
        if delay_s:
            entry["DelaySeconds"] = delay_s
        entries.append(entry)
    try:
        response = sqs_client().send_message_batch(QueueUrl=queue_url, Entries=entries)
    except Exception:  # the whole chunk stays pending and is retried
        return []
    return [keys[int(entry["Id"])] for entry in response.get("Successful", [])]


def delay_redelivery(queue_url: str, receipt_handle: str, seconds: int) -> bool:
    """Have SQS deliver a returned message again only after ``seconds`` (its backoff); False if SQS refused, as it
    does a visibility reaching past 12 hours from the receive (the caller's backoff stays inside that)."""
    try:
        sqs_client().change_message_visibility(
            QueueUrl=queue_url, ReceiptHandle=receipt_handle, VisibilityTimeout=max(0, min(seconds, 43_200))
        )
    except Exception:  # the message comes back after the queue's visibility timeout instead: sooner, not lost
        return False
    return True


class ReceiptsUnconfirmed(RuntimeError):
    """SQS could not be asked about the records' receipt handles now. Carries the error's type only."""


def confirm_receipts(queue_url: str, receipt_handles: Mapping[str, str], visibility_timeout_s: int) -> set[str]:
    """The keys of ``receipt_handles`` whose handle SQS confirms as a message now in flight on ``queue_url``.

    Each handle is confirmed by setting its message's visibility timeout again (``ChangeMessageVisibilityBatch``,
    ten at a time): SQS refuses a handle it did not issue for this queue. The timeout given is the queue's own, so
    a confirmed message that is returned comes back as it would have. Raises ``ReceiptsUnconfirmed`` when SQS
    cannot answer, so that the caller returns the records rather than act on, or refuse, what it could not check.
    """
    keys = list(receipt_handles)
    confirmed: set[str] = set()
    for start in range(0, len(keys), SQS_BATCH_LIMIT):
        chunk = keys[start : start + SQS_BATCH_LIMIT]
        entries: list[ChangeMessageVisibilityBatchRequestEntryTypeDef] = [
            {"Id": str(index), "ReceiptHandle": receipt_handles[key], "VisibilityTimeout": visibility_timeout_s}
            for index, key in enumerate(chunk)
        ]
        try:
            response = sqs_client().change_message_visibility_batch(QueueUrl=queue_url, Entries=entries)
        except Exception as error:  # only the type: a message can quote the request
            raise ReceiptsUnconfirmed(f"cannot confirm the records with SQS: {type(error).__name__}") from None
        unanswered = [entry for entry in response.get("Failed", []) if not entry.get("SenderFault", False)]
        if unanswered:
            raise ReceiptsUnconfirmed(f"SQS could not confirm {len(unanswered)} record(s) now")
        confirmed.update(chunk[int(entry["Id"])] for entry in response.get("Successful", []))
    return confirmed
