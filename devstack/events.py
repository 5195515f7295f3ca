"""Lambda event shapes, built exactly as the SQS event source and API Gateway deliver them."""

from __future__ import annotations

import base64
import hashlib
import time
import uuid
from collections.abc import Mapping
from typing import Any

from devstack.moto_stack import REGION


def _md5(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


def sqs_record(
    body: str,
    *,
    queue_arn: str = f"arn:aws:sqs:{REGION}:123456789012:deletions",
    message_id: str | None = None,
    receive_count: int = 1,
    receipt_handle: str | None = None,
    message_attributes: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    now_ms = str(int(time.time() * 1000))
    return {
        "messageId": message_id or str(uuid.uuid4()),
        "receiptHandle": receipt_handle or base64.b64encode(uuid.uuid4().bytes).decode(),
        "body": body,
        "attributes": {
            "ApproximateReceiveCount": str(receive_count),
            "SentTimestamp": now_ms,
            "SenderId": "AIDAIENQZJOLO23YVJ4VO",
            "ApproximateFirstReceiveTimestamp": now_ms,
        },
        "messageAttributes": dict(message_attributes or {}),
        "md5OfBody": _md5(body),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": REGION,
    }


def record_from_sqs_message(message: Mapping[str, Any], queue_arn: str) -> dict[str, Any]:
    """Turn one ``ReceiveMessage`` result into the record Lambda's SQS event source would deliver."""
    attributes = {
        name: str(value)
        for name, value in message.get("Attributes", {}).items()
        if name
        in (
            "ApproximateReceiveCount",
            "SentTimestamp",
            "SenderId",
            "ApproximateFirstReceiveTimestamp",
            "MessageGroupId",
            "SequenceNumber",
            "MessageDeduplicationId",
            "AWSTraceHeader",
        )
    }
    message_attributes = {
        name: {
            "stringValue": value.get("StringValue"),
            "binaryValue": base64.b64encode(value["BinaryValue"]).decode() if "BinaryValue" in value else None,
            "stringListValues": value.get("StringListValues", []),
            "binaryListValues": value.get("BinaryListValues", []),
            "dataType": value["DataType"],
        }
        for name, value in message.get("MessageAttributes", {}).items()
    }
    record = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": attributes,
        "messageAttributes": message_attributes,
        "md5OfBody": message["MD5OfBody"],
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": queue_arn.split(":")[3],
    }
    if "MD5OfMessageAttributes" in message:
        record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
    return record


def sqs_event(*records: dict[str, Any]) -> dict[str, Any]:
    return {"Records": list(records)}
