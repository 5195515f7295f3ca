"""Adapter for the stack's four SQS queues (the deletion queue, the callback queue and their dead-letter queues):
one ``SqsQueue`` per queue URL, as a producer (``logic.ports.MessageQueue``), a dead-letter queue
(``DeadLetterQueue``) or the function's own source (``SourceQueue``).

Errors carry the error's type only: botocore's messages can quote the request, and bodies hold audit fields.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Final

from parser_run_deleter.adapters.aws_clients import SQS_CALL_WORST_CASE_S
from parser_run_deleter.logic.ports import QueueSendError, ReceiptsUnconfirmed
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
# SQS refuses a visibility timeout past 12 hours.
MAX_VISIBILITY_S: Final = 43_200


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


class SqsQueue:
    """One queue. ``client`` makes (or returns) the container's SQS client; ``visibility_timeout_s`` matters only
    for the queue a function consumes: a confirmed record's message is received again with it."""

    def __init__(
        self, url: str, client: Callable[[], SQSClient], *, visibility_timeout_s: int = 30, attempts: int = 3
    ) -> None:
        self._url = url
        self._client = client
        self._visibility_timeout_s = visibility_timeout_s
        self._attempts = attempts

    @property
    def url(self) -> str:
        return self._url

    @property
    def worst_case_call_s(self) -> float:
        return SQS_CALL_WORST_CASE_S

    # ---- as a producer

    def enqueue(
        self,
        bodies: Mapping[str, str],
        *,
        deadline: Deadline | None = None,
        message_group_id: str | None = None,
        delay_s: int = 0,
    ) -> tuple[str, ...]:
        """Send ``{key: body}`` with ``SendMessageBatch`` in chunks of 10, retrying the entries SQS rejects. A key
        is returned only when SQS acknowledged its entry. No call starts that could outlast ``deadline``."""
        pending = dict(bodies)
        queued: list[str] = []
        for _ in range(self._attempts):
            if not pending:
                break
            keys = list(pending)
            for start in range(0, len(keys), SQS_BATCH_LIMIT):
                if deadline is not None and deadline.remaining() < SQS_CALL_WORST_CASE_S:
                    break
                chunk = keys[start : start + SQS_BATCH_LIMIT]
                queued.extend(self._send_chunk(chunk, pending, message_group_id, delay_s))
            for key in queued:
                pending.pop(key, None)
        return tuple(queued)

    def _send_chunk(
        self, keys: Sequence[str], bodies: Mapping[str, str], message_group_id: str | None, delay_s: int
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
            response = self._client().send_message_batch(QueueUrl=self._url, Entries=entries)
        except Exception:  # the whole chunk stays pending and is retried
            return []
        return [keys[int(entry["Id"])] for entry in response.get("Successful", [])]

    # ---- as a dead-letter queue

    def dead_letter(self, body: str, attributes: Mapping[str, str | int | None]) -> str:
        """Park a message with its reason as message attributes; returns the new message id."""
        try:
            response = self._client().send_message(
                QueueUrl=self._url, MessageBody=body, MessageAttributes=_string_attributes(attributes)
            )
        except Exception as error:  # any failure means the caller must keep the original message
            raise QueueSendError(f"could not dead-letter the message: {type(error).__name__}") from None
        return response["MessageId"]

    # ---- as the function's source

    def delay_redelivery(self, receipt_handle: str, seconds: int) -> bool:
        """Have SQS deliver a returned message again only after ``seconds`` (its backoff); False if SQS refused, as it
        does a visibility reaching past 12 hours from the receive (the caller's backoff stays inside that)."""
        try:
            self._client().change_message_visibility(
                QueueUrl=self._url,
                ReceiptHandle=receipt_handle,
                VisibilityTimeout=max(0, min(seconds, MAX_VISIBILITY_S)),
            )
        except Exception:  # the message comes back after the queue's visibility timeout instead: sooner, not lost
            return False
        return True

    def confirm_receipts(self, receipt_handles: Mapping[str, str]) -> set[str]:
        """The keys of ``receipt_handles`` whose handle SQS confirms as a message now in flight on this queue.

        Each handle is confirmed by setting its message's visibility timeout again (``ChangeMessageVisibilityBatch``,
        ten at a time): SQS refuses a handle it did not issue for this queue. The timeout given is the queue's own,
        so a confirmed message that is returned comes back as it would have. Raises ``ReceiptsUnconfirmed`` when SQS
        cannot answer, so that the caller returns the records rather than act on, or refuse, what it could not
        check.
        """
        keys = list(receipt_handles)
        confirmed: set[str] = set()
        for start in range(0, len(keys), SQS_BATCH_LIMIT):
            chunk = keys[start : start + SQS_BATCH_LIMIT]
            entries: list[ChangeMessageVisibilityBatchRequestEntryTypeDef] = [
                {
                    "Id": str(index),
                    "ReceiptHandle": receipt_handles[key],
                    "VisibilityTimeout": self._visibility_timeout_s,
                }
                for index, key in enumerate(chunk)
            ]
            try:
                response = self._client().change_message_visibility_batch(QueueUrl=self._url, Entries=entries)
            except Exception as error:  # only the type: a message can quote the request
                raise ReceiptsUnconfirmed(f"cannot confirm the records with SQS: {type(error).__name__}") from None
            unanswered = [entry for entry in response.get("Failed", []) if not entry.get("SenderFault", False)]
            if unanswered:
                raise ReceiptsUnconfirmed(f"SQS could not confirm {len(unanswered)} record(s) now")
            confirmed.update(chunk[int(entry["Id"])] for entry in response.get("Successful", []))
        return confirmed
