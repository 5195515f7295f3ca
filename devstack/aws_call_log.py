"""A log of every AWS call that reaches moto's server: who signed it, which operation, and on what.

``AwsCallLog`` is WSGI middleware in front of moto. For each request it appends one JSON line to a file: the
access key id and service of the SigV4 credential (the local stack gives each principal its own key id, see
``devstack.local_deployment``), the operation (``X-Amz-Target`` for JSON protocols, ``Action`` for the query
protocol, the method and path for REST ones), the identifiers of the resources it names (table, index, queue,
secret, key, stack), the status, and the ARN a Secrets Manager answer gives. Nothing else of a request or an
answer is kept: bodies hold secrets. ``tests/iam`` turns these lines into IAM requests and has them evaluated
against the template's policies.

Set ``DEVSTACK_AWS_CALL_LOG`` to a file path and every moto server ``devstack.moto_stack`` starts logs to it,
e.g. ``DEVSTACK_AWS_CALL_LOG=calls.jsonl make run``.
"""

from __future__ import annotations

import io
import json
import re
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Final
from urllib.parse import parse_qs

ENVIRONMENT_VARIABLE: Final = "DEVSTACK_AWS_CALL_LOG"
# The request fields that name a resource; every other field (values, messages, secret strings) is left out.
IDENTIFIERS: Final = (
    "TableName",
    "IndexName",
    "QueueUrl",
    "QueueName",
    "SecretId",
    "Name",
    "KmsKeyId",
    "KeyId",
    "StackName",
    "SourceArn",
    "DestinationArn",
    "RoleArn",
)
_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/\d{8}/([^/]+)/([^/]+)/aws4_request")


def _identifiers(params: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = {name: params[name] for name in IDENTIFIERS if isinstance(params.get(name), str)}
    if isinstance(params.get("RequestItems"), dict):  # BatchWriteItem, BatchGetItem: tables only
        found["Tables"] = sorted(params["RequestItems"])
    items = params.get("TransactItems")
    if isinstance(items, list):  # TransactWriteItems, TransactGetItems: each item's operation and table
        found["TransactItems"] = [
            [operation, str(body.get("TableName", ""))]
            for item in items
            if isinstance(item, dict)
            for operation, body in item.items()
            if isinstance(body, dict)
        ]
    return found


def _request_params(content_type: str, body: bytes, query: str) -> dict[str, Any]:
    if "json" in content_type and body:
        try:
            document = json.loads(body)
        except ValueError:
            return {}
        return document if isinstance(document, dict) else {}
    text = body.decode("utf-8", "replace") if "x-www-form-urlencoded" in content_type else ""
    form = parse_qs(text or query)
    return {name: values[0] for name, values in form.items() if values}


def describe(environ: dict[str, Any], body: bytes) -> dict[str, Any]:
    """What one request says about itself, without its values."""
    authorization = str(environ.get("HTTP_AUTHORIZATION", ""))
    query = str(environ.get("QUERY_STRING", ""))
    credential = _CREDENTIAL.search(authorization) or _CREDENTIAL.search(query.replace("%2F", "/"))
    params = _request_params(str(environ.get("CONTENT_TYPE", "")), body, query)
    return {
        "key": credential.group(1) if credential else "",
        "region": credential.group(2) if credential else "",
        "service": credential.group(3) if credential else "",
        "method": str(environ.get("REQUEST_METHOD", "")),
        "path": str(environ.get("PATH_INFO", "")),
        "target": str(environ.get("HTTP_X_AMZ_TARGET", "")),
        "action": str(params.get("Action", "")),
        "params": _identifiers(params),
    }


def _answered_arn(body: bytes) -> str:
    """The ARN a Secrets Manager answer gives (a secret's full ARN, with the random suffix IAM evaluates calls
    against), or a KMS ``CreateKey`` answer (the key's)."""
    try:
        document = json.loads(body)
    except ValueError:
        return ""
    if not isinstance(document, dict):
        return ""
    metadata = document.get("KeyMetadata")
    return str(document.get("ARN") or (metadata.get("Arn") if isinstance(metadata, dict) else "") or "")


class AwsCallLog:
    """WSGI middleware: every request, as ``describe`` sees it, with its status, appended to ``path``."""

    def __init__(self, app: Callable[..., Iterable[bytes]], path: Path) -> None:
        self.app = app
        self.path = path
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        call = describe(environ, body)
        answered: list[str] = []

        def recording_start_response(status: str, headers: Any, *args: Any) -> Any:
            answered.append(status)
            return start_response(status, headers, *args)

        chunks: list[bytes] = []
        try:
            chunks = list(self.app(environ, recording_start_response))
        finally:
            # An operation moto has not implemented raises, but the caller made the call all the same.
            call["status"] = int(answered[0].split()[0]) if answered else 500
            if call["service"] in ("secretsmanager", "kms"):
                call["arn"] = _answered_arn(b"".join(chunks))
            line = json.dumps(call, sort_keys=True) + "\n"
            with self._lock, self.path.open("a", encoding="utf-8") as log:
                log.write(line)
        return chunks
