"""A stand-in function for runtime tests: records events, keeps warm state, fails on request."""

import base64
import json
import os
import time
from typing import Any

STATE = {"invocations": 0}


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    STATE["invocations"] += 1
    log = os.environ.get("PROBE_LOG")
    if log:
        with open(log, "a", encoding="utf-8") as file:
            file.write(json.dumps(event) + "\n")
    print(json.dumps({"message": "probe invoked", "invocations": STATE["invocations"]}))
    if "Records" in event:
        bodies = [record["body"] for record in event["Records"]]
        if "crash" in bodies:
            raise RuntimeError("probe crashed on purpose")
        if "sleep" in bodies:
            time.sleep(30)
        return {
            "batchItemFailures": [
                {"itemIdentifier": record["messageId"]}
                for record in event["Records"]
                if record["body"].startswith("fail")
            ]
        }
    if event["path"] == "/boom":
        raise RuntimeError("probe API failure")
    if event["path"] == "/binary":
        return {
            "statusCode": 200,
            "headers": {"Content-Type": "application/octet-stream"},
            "body": base64.b64encode(bytes(range(256))).decode(),
            "isBase64Encoded": True,
        }
    document = {
        "event": event,
        "invocations": STATE["invocations"],
        "pid": os.getpid(),
        "remaining_ms": context.get_remaining_time_in_millis(),
        "function_name": context.function_name,
        "env": {
            name: os.environ.get(name) for name in ("STACK", "QUEUE_URL", "PARENT_ONLY", "AWS_LAMBDA_FUNCTION_NAME")
        },
        "cwd": os.getcwd(),
    }
    return {
        "statusCode": 201,
        "headers": {"Content-Type": "application/json", "X-Probe": "single"},
        "multiValueHeaders": {"Set-Cookie": ["a=1", "b=2"]},
        "body": json.dumps(document),
    }
