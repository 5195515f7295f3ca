"""Queue lookups and the read/move operations behind ``status``, ``dlq`` and ``redrive``."""

from __future__ import annotations

import contextlib
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

# Attributes the queue function puts on a message it dead-letters (handler/sqs_intake.py).
FAILURE_ATTRIBUTES = (
    "FailureKind",
    "FailureReason",
    "SourceMessageId",
    "ApproximateReceiveCount",
    "ParserRunId",
    "ExtendStatusCode",
    "ExtendRequestId",
)
# What a redriven copy keeps of them: the message its request is named after, checked against its DeletionRequestId.
KEPT_ON_REDRIVE = frozenset({"SourceMessageId"})
NO_REASON = "moved by SQS redrive: no reason recorded (the function errored, timed out or could not dead-letter)"


class QueueError(RuntimeError):
    """A queue is missing or unreachable; the message is one line for the operator."""


def error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", "ClientError"))


def _is_missing(error: ClientError) -> bool:
    code = error_code(error)
    return "NonExistentQueue" in code or "QueueDoesNotExist" in code


@dataclass
class QueueUrls:
    queue_url: str
    dead_letter_queue_url: str | None = None


def attributes(sqs: Any, queue_url: str, names: list[str]) -> dict[str, str]:
    try:
        found: dict[str, str] = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=names)["Attributes"]
    except ClientError as error:
        if _is_missing(error):
            raise QueueError(f"queue does not exist: {queue_url}") from None
        raise QueueError(f"cannot read queue {queue_url}: {error_code(error)}") from None
    except BotoCoreError as error:
        raise QueueError(f"cannot reach SQS for {queue_url}: {error}") from None
    return found


def dead_letter_queue_of(sqs: Any, queue_url: str) -> str | None:
    """The DLQ named by the queue's RedrivePolicy, or None."""
    import json  # noqa: PLC0415

    policy = attributes(sqs, queue_url, ["RedrivePolicy"]).get("RedrivePolicy")
    if not policy:
        return None
    arn = json.loads(policy)["deadLetterTargetArn"]
    _, _, _, _, account, name = arn.split(":", 5)
    try:
        url: str = sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"]
    except ClientError:
        raise QueueError(f"the dead-letter queue {arn} does not exist") from None
    return url


@dataclass(frozen=True)
class QueueStatus:
    waiting: int
    in_flight: int
    delayed: int
    dead_letters: int | None

    def eta_s(self, rate_per_s: float) -> float | None:
        backlog = self.waiting + self.in_flight + self.delayed
        return backlog / rate_per_s if rate_per_s > 0 else None


def status(sqs: Any, urls: QueueUrls) -> QueueStatus:
    names = [
        "ApproximateNumberOfMessages",
        "ApproximateNumberOfMessagesNotVisible",
        "ApproximateNumberOfMessagesDelayed",
    ]
    main = attributes(sqs, urls.queue_url, names)
    dead = None
    if urls.dead_letter_queue_url:
        dlq = attributes(sqs, urls.dead_letter_queue_url, names[:2])
        dead = int(dlq["ApproximateNumberOfMessages"]) + int(dlq["ApproximateNumberOfMessagesNotVisible"])
    return QueueStatus(
        waiting=int(main.get("ApproximateNumberOfMessages", 0)),
        in_flight=int(main.get("ApproximateNumberOfMessagesNotVisible", 0)),
        delayed=int(main.get("ApproximateNumberOfMessagesDelayed", 0)),
        dead_letters=dead,
    )


@dataclass(frozen=True)
class DeadLetter:
    message_id: str
    parser_run_id: str
    kind: str
    reason: str
    receive_count: str
    extend_status: str


def _string_attributes(message: dict[str, Any]) -> dict[str, str]:
    return {
        name: str(value.get("StringValue", ""))
        for name, value in message.get("MessageAttributes", {}).items()
        if "StringValue" in value
    }


def _parser_run_id(body: str, attributes: dict[str, str]) -> str:
    import json  # noqa: PLC0415

    if "ParserRunId" in attributes:
        return attributes["ParserRunId"]
    with contextlib.suppress(ValueError, TypeError, AttributeError):
        document = json.loads(body)
        if isinstance(document, dict) and isinstance(document.get("parserRunId"), str):
            return str(document["parserRunId"])
    text = body.strip().replace("\n", " ")
    return text if len(text) <= 40 else text[:37] + "..."


def peek_dead_letters(sqs: Any, dlq_url: str, *, limit: int = 100, hold_s: int = 20) -> list[DeadLetter]:
    """Read up to ``limit`` DLQ messages without consuming them: each is held ``hold_s`` (so one pass sees
    distinct messages), then made visible again at once."""
    attributes(sqs, dlq_url, ["QueueArn"])  # fails clearly when the queue is missing
    seen: dict[str, DeadLetter] = {}
    handles: list[str] = []
    empty_polls = 0
    while len(seen) < limit and empty_polls < 2:
        batch = sqs.receive_message(
            QueueUrl=dlq_url,
            MaxNumberOfMessages=min(10, limit - len(seen)),
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
            VisibilityTimeout=hold_s,
            WaitTimeSeconds=0 if seen else 1,
        ).get("Messages", [])
        if not batch:
            empty_polls += 1
            continue
        for message in batch:
            handles.append(message["ReceiptHandle"])
            attrs = _string_attributes(message)
            seen[message["MessageId"]] = DeadLetter(
                message_id=message["MessageId"],
                parser_run_id=_parser_run_id(message.get("Body", ""), attrs),
                kind=attrs.get("FailureKind", "redriven"),
                reason=attrs.get("FailureReason", NO_REASON),
                receive_count=attrs.get(
                    "ApproximateReceiveCount", str(message.get("Attributes", {}).get("ApproximateReceiveCount", "?"))
                ),
                extend_status=attrs.get("ExtendStatusCode", ""),
            )
    for start in range(0, len(handles), 10):
        entries = [
            {"Id": str(i), "ReceiptHandle": h, "VisibilityTimeout": 0}
            for i, h in enumerate(handles[start : start + 10])
        ]
        with contextlib.suppress(ClientError):
            sqs.change_message_visibility_batch(QueueUrl=dlq_url, Entries=entries)
    return list(seen.values())


def summarize(dead_letters: list[DeadLetter]) -> Counter[str]:
    return Counter(item.kind for item in dead_letters)


@dataclass
class RedriveReport:
    method: str
    moved: int = 0
    failed: int = 0
    task_handle: str | None = None
    notes: list[str] = field(default_factory=list)


def start_move_task(sqs: Any, dlq_url: str, queue_url: str, rate: int | None) -> RedriveReport:
    source = attributes(sqs, dlq_url, ["QueueArn"])["QueueArn"]
    destination = attributes(sqs, queue_url, ["QueueArn"])["QueueArn"]
    arguments: dict[str, Any] = {"SourceArn": source, "DestinationArn": destination}
    if rate:
        arguments["MaxNumberOfMessagesPerSecond"] = rate
    response = sqs.start_message_move_task(**arguments)
    return RedriveReport("move-task", task_handle=response.get("TaskHandle"))


def redrive_loop(sqs: Any, dlq_url: str, queue_url: str, *, limit: int | None = None) -> RedriveReport:
    """Receive from the DLQ, send to the queue, and delete from the DLQ only what the queue acknowledged.

    Loss-free: a message leaves the DLQ only after SQS took its copy. If the process dies in between, the
    copy may be sent twice; deleting a parser run twice is harmless (the second is ``not_found``).
    """
    attributes(sqs, queue_url, ["QueueArn"])
    attributes(sqs, dlq_url, ["QueueArn"])
    report = RedriveReport("receive-send-delete")
    empty_polls = 0
    while empty_polls < 2 and (limit is None or report.moved < limit):
        want = 10 if limit is None else min(10, limit - report.moved)
        batch = sqs.receive_message(
            QueueUrl=dlq_url,
            MaxNumberOfMessages=want,
            MessageAttributeNames=["All"],
            VisibilityTimeout=60,
            WaitTimeSeconds=1,
        ).get("Messages", [])
        if not batch:
            empty_polls += 1
            continue
        entries = []
        for index, message in enumerate(batch):
            entry: dict[str, Any] = {"Id": str(index), "MessageBody": message["Body"]}
            kept = {
                name: value
                for name, value in message.get("MessageAttributes", {}).items()
                if name not in FAILURE_ATTRIBUTES or name in KEPT_ON_REDRIVE
            }
            if kept:
                entry["MessageAttributes"] = kept
            entries.append(entry)
        response = sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)
        sent = [batch[int(item["Id"])] for item in response.get("Successful", [])]
        report.failed += len(response.get("Failed", []))
        if sent:
            sqs.delete_message_batch(
                QueueUrl=dlq_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(sent)],
            )
        report.moved += len(sent)
    return report
