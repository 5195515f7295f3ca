"""Records as Lambda's SQS event source hands them over: with receipt handles SQS issued for the function's queue.

The queue and callback functions act only on records whose receipt handle SQS confirms as their own queue's
(``intake.record_source``). A test that builds its records (``devstack.events.sqs_record``: its own message ids,
bodies, receive counts and attributes) passes them through ``delivered``, which gives each one a handle SQS really
issued: one message per record is sent to the queue and received, and stays in flight. The record keeps everything
else the test chose; the function never reads a body back from SQS.
"""

from __future__ import annotations

import copy
from typing import Any

from devstack.events import record_from_sqs_message
from tests.support.stacks import InProcessStack

# Long enough that a handle stays in flight (and valid) for the whole test.
IN_FLIGHT_S = 600


def delivered(stack: InProcessStack, event: dict[str, Any], *, queue_url: str | None = None) -> dict[str, Any]:
    """``event`` with each record's receipt handle and source queue made real (the deletion queue's by default)."""
    sqs = stack.sqs()
    url = queue_url or stack.queues.queue_url
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    event = copy.deepcopy(event)
    records = event["Records"]
    for start in range(0, len(records), 10):
        chunk = records[start : start + 10]
        sent = sqs.send_message_batch(
            QueueUrl=url, Entries=[{"Id": str(n), "MessageBody": "in flight for a test"} for n in range(len(chunk))]
        )
        ours = {entry["MessageId"]: int(entry["Id"]) for entry in sent["Successful"]}
        for _ in range(100):
            if not ours:
                break
            for message in sqs.receive_message(
                QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=IN_FLIGHT_S, WaitTimeSeconds=0
            ).get("Messages", []):
                index = ours.pop(message["MessageId"], None)
                if index is None:  # another test message: put it back as it was
                    sqs.change_message_visibility(
                        QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
                    )
                    continue
                chunk[index]["receiptHandle"] = message["ReceiptHandle"]
                chunk[index]["eventSourceARN"] = arn
        assert not ours, "the messages sent for the records' receipt handles never came back"
    return event


def received_records(
    messages: list[dict[str, Any]], queue_arn: str, *, receive_count: int | None = None
) -> list[dict[str, Any]]:
    """The records Lambda's event source makes of messages received from the queue (their handles are real), with
    ``receive_count`` standing in for SQS's count when given."""
    records = [record_from_sqs_message(message, queue_arn) for message in messages]
    if receive_count is not None:
        for record in records:
            record["attributes"]["ApproximateReceiveCount"] = str(receive_count)
    return records


def after_the_visibility_timeout(sqs: Any, queue_url: str, messages: list[dict[str, Any]], failed: set[str]) -> None:
    """What SQS does to the returned messages once their visibility timeout has passed: they are visible again."""
    for message in messages:
        if message["MessageId"] in failed:
            sqs.change_message_visibility(
                QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
            )
