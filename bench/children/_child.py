"""What every benchmark child shares: a Lambda context, SQS records (made up for the peer, delivered for the queue
function), and reporting back to the harness.

Kept to the standard library so that importing it costs a child (nearly) nothing the handler would not pay.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import time
import uuid
from typing import Any


class Context:
    function_name = "ParserRunDeleter"
    memory_limit_in_mb = 128
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:ParserRunDeleter"
    log_group_name = "/aws/lambda/ParserRunDeleter"
    log_stream_name = "bench"

    def __init__(self, timeout_s: float = 60.0) -> None:
        self.aws_request_id = str(uuid.uuid4())
        self._deadline = time.monotonic() + timeout_s

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def record(parser_run_id: str) -> dict[str, Any]:
    body = json.dumps({"parserRunId": parser_run_id})
    now = str(int(time.time() * 1000))
    return {
        "messageId": str(uuid.uuid4()),
        "receiptHandle": uuid.uuid4().hex,
        "body": body,
        "attributes": {
            "ApproximateReceiveCount": "1",
            "SentTimestamp": now,
            "SenderId": "AIDAIENQZJOLO23YVJ4VO",
            "ApproximateFirstReceiveTimestamp": now,
        },
        "messageAttributes": {},
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:deletions",
        "awsRegion": "us-east-1",
    }


def event(*parser_run_ids: str) -> dict[str, Any]:
    return {"Records": [record(i) for i in parser_run_ids]}


def ids() -> list[str]:
    return os.environ["BENCH_IDS"].split(",")


def delivered() -> list[dict[str, Any]]:
    """The SQS events the harness made from messages it sent and received (``BenchServices.delivered``)."""
    with open(os.environ["BENCH_EVENTS"]) as file:
        events: list[dict[str, Any]] = json.load(file)
    return events


def report(**fields: Any) -> None:
    """One JSON line to the harness on the pipe it passed (``BENCH_FD``); stdout stays the function's log."""
    os.write(int(os.environ["BENCH_FD"]), (json.dumps(fields) + "\n").encode())


def rss_kb() -> int:
    """Peak RSS of this process image (``VmHWM``). Not ``ru_maxrss``: Linux carries that over from the parent
    across fork and exec, so it would report the harness's size."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def done() -> None:
    """Leave without interpreter teardown: the measurement is over."""
    os._exit(0)


def api_event(parser_run_id: str) -> dict[str, Any]:
    """A REST API (payload 1.0) DELETE of one run, signed as the tenant's client signs it (Standard Webhooks over
    ``"DELETE /parser_runs/<id>"``), from the tenant's API key id; the secret comes from BENCH_SIGNING_SECRET."""
    path = f"/parser_runs/{parser_run_id}"
    message_id, timestamp = f"msg_{uuid.uuid4().hex}", str(int(time.time()))
    key = base64.b64decode(os.environ["BENCH_SIGNING_SECRET"].removeprefix("whsec_"))
    signed = f"{message_id}.{timestamp}.DELETE {path}".encode()
    signature = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    headers = {"webhook-id": message_id, "webhook-timestamp": timestamp, "webhook-signature": f"v1,{signature}"}
    return {
        "resource": "/parser_runs/{id}",
        "path": path,
        "httpMethod": "DELETE",
        "headers": headers,
        "multiValueHeaders": {name: [value] for name, value in headers.items()},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": {"id": parser_run_id},
        "stageVariables": None,
        "requestContext": {
            "resourcePath": "/parser_runs/{id}",
            "httpMethod": "DELETE",
            "path": f"/v1{path}",
            "stage": "v1",
            "requestId": str(uuid.uuid4()),
            "identity": {"apiKeyId": os.environ["BENCH_API_KEY_ID"], "sourceIp": "203.0.113.10"},
        },
        "body": None,
        "isBase64Encoded": False,
    }
