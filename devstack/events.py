"""Every Lambda event the project builds: SQS records, and API Gateway REST (payload 1.0) and HTTP API (payload
2.0) events, as Lambda's SQS event source and API Gateway deliver them.

The local SQS event source and API Gateway front build their events here.
"""

from __future__ import annotations

import base64
import hashlib
import time
import uuid
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl

from devstack.moto_stack import REGION

ACCOUNT_ID = "123456789012"


def _md5(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


def sqs_record(
    body: str,
    *,
    queue_arn: str = f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:deletions",
    message_id: str | None = None,
    receive_count: int = 1,
    receipt_handle: str | None = None,
    message_attributes: Mapping[str, Any] | None = None,
    sender_id: str = "AIDAIENQZJOLO23YVJ4VO",
    sent_timestamp_ms: int | None = None,
    first_receive_timestamp_ms: int | None = None,
) -> dict[str, Any]:
    """One record of an SQS event; ids, receipt handle and timestamps are fresh unless given."""
    now_ms = int(time.time() * 1000)
    sent_ms = now_ms if sent_timestamp_ms is None else sent_timestamp_ms
    return {
        "messageId": message_id or str(uuid.uuid4()),
        "receiptHandle": receipt_handle or base64.b64encode(uuid.uuid4().bytes).decode(),
        "body": body,
        "attributes": {
            "ApproximateReceiveCount": str(receive_count),
            "SentTimestamp": str(sent_ms),
            "SenderId": sender_id,
            "ApproximateFirstReceiveTimestamp": str(
                now_ms if first_receive_timestamp_ms is None else first_receive_timestamp_ms
            ),
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


# ---------------------------------------------------------------------------------------------------- API Gateway


def _request_time(epoch_ms: int) -> str:
    return time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(epoch_ms / 1000))


def _body_fields(body: str | bytes | None, base64_body: bool | None) -> tuple[str | None, bool]:
    """``body`` and ``isBase64Encoded``. ``base64_body`` None decides as the local front does: no body is null,
    a body that decodes as UTF-8 is text, any other is base64."""
    if body is None:
        return None, False
    raw = body.encode() if isinstance(body, str) else body
    if base64_body is None:
        if not raw:
            return None, False
        try:
            return raw.decode("utf-8"), False
        except UnicodeDecodeError:
            base64_body = True
    if base64_body:
        return base64.b64encode(raw).decode("ascii"), True
    return raw.decode(), False


def _header(headers: Iterable[tuple[str, str]], name: str) -> str | None:
    return next((value for key, value in headers if key.lower() == name), None)


def apigw_rest_event(
    *,
    method: str,
    path: str,
    resource: str,
    stage: str,
    source_ip: str,
    query: str = "",
    headers: Iterable[tuple[str, str]] = (),
    body: str | bytes | None = None,
    base64_body: bool | None = None,
    path_parameters: Mapping[str, str] | None = None,
    api_key: str | None = None,
    api_key_id: str | None = None,
    api_id: str = "local",
    account_id: str = ACCOUNT_ID,
    resource_id: str | None = None,
    request_id: str | None = None,
    request_time_ms: int | None = None,
    extended_request_id: str | None = None,
) -> dict[str, Any]:
    """An API Gateway REST (payload 1.0) proxy event, as ``sam local generate-event apigateway aws-proxy``
    shows it: ``path`` without the stage, ``requestContext.path`` with it, last-value ``headers`` next to
    ``multiValueHeaders``, ``null`` for absent query strings and path parameters, base64 for binary bodies.

    Request id, time and extended request id are fresh unless given."""
    header_list = list(headers)
    header_map: dict[str, str] = {}
    multi_headers: dict[str, list[str]] = {}
    for name, value in header_list:
        header_map[name] = value
        multi_headers.setdefault(name, []).append(value)
    host = _header(header_list, "host") or "127.0.0.1"
    pairs = parse_qsl(query, keep_blank_values=True)
    multi_query: dict[str, list[str]] = {}
    for name, value in pairs:
        multi_query.setdefault(name, []).append(value)
    text, encoded = _body_fields(body, base64_body)
    epoch_ms = int(time.time() * 1000) if request_time_ms is None else request_time_ms
    return {
        "body": text,
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "isBase64Encoded": encoded,
        "queryStringParameters": dict(pairs) or None,
        "multiValueQueryStringParameters": multi_query or None,
        "pathParameters": dict(path_parameters) if path_parameters else None,
        "stageVariables": None,
        "headers": header_map,
        "multiValueHeaders": multi_headers,
        "requestContext": {
            "accountId": account_id,
            "resourceId": resource_id or resource.strip("/").replace("/", "-")[:10] or "root",
            "stage": stage,
            "requestId": request_id or str(uuid.uuid4()),
            "requestTime": _request_time(epoch_ms),
            "requestTimeEpoch": epoch_ms,
            "identity": {
                "cognitoIdentityPoolId": None,
                "accountId": None,
                "cognitoIdentityId": None,
                "caller": None,
                "accessKey": None,
                "sourceIp": source_ip,
                "cognitoAuthenticationType": None,
                "cognitoAuthenticationProvider": None,
                "userArn": None,
                "userAgent": _header(header_list, "user-agent"),
                "user": None,
                "apiKey": api_key,
                "apiKeyId": api_key_id,
            },
            "path": f"/{stage}{path}",
            "resourcePath": resource,
            "httpMethod": method,
            "apiId": api_id,
            "protocol": "HTTP/1.1",
            "domainName": host.split(":")[0],
            "domainPrefix": host.split(".")[0].split(":")[0],
            "extendedRequestId": extended_request_id or base64.b64encode(uuid.uuid4().bytes[:10]).decode("ascii"),
        },
    }


def apigw_http_event(
    *,
    method: str,
    path: str,
    route_key: str,
    source_ip: str,
    query: str = "",
    headers: Iterable[tuple[str, str]] = (),
    body: str | bytes | None = None,
    base64_body: bool | None = None,
    path_parameters: Mapping[str, str] | None = None,
    authorizer: Mapping[str, Any] | None = None,
    api_id: str = "local",
    account_id: str = ACCOUNT_ID,
    stage: str = "$default",
    request_id: str | None = None,
    time_ms: int | None = None,
) -> dict[str, Any]:
    """An API Gateway HTTP API (payload 2.0) event: header names in lower case, repeated headers and query
    parameters joined with commas, ``pathParameters`` and ``body`` only when there are some.

    Request id and time are fresh unless given."""
    header_map: dict[str, str] = {}
    for name, value in headers:
        key = name.lower()
        header_map[key] = f"{header_map[key]},{value}" if key in header_map else value
    query_map: dict[str, str] = {}
    for name, value in parse_qsl(query, keep_blank_values=True):
        query_map[name] = f"{query_map[name]},{value}" if name in query_map else value
    host = header_map.get("host", "127.0.0.1")
    epoch_ms = int(time.time() * 1000) if time_ms is None else time_ms
    context: dict[str, Any] = {
        "accountId": account_id,
        "apiId": api_id,
        "domainName": host.split(":")[0],
        "domainPrefix": host.split(".")[0].split(":")[0],
        "http": {
            "method": method,
            "path": path,
            "protocol": "HTTP/1.1",
            "sourceIp": source_ip,
            "userAgent": header_map.get("user-agent", ""),
        },
        "requestId": request_id or base64.b64encode(uuid.uuid4().bytes[:11]).decode("ascii"),
        "routeKey": route_key,
        "stage": stage,
        "time": _request_time(epoch_ms),
        "timeEpoch": epoch_ms,
    }
    if authorizer is not None:
        context["authorizer"] = dict(authorizer)
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": path,
        "rawQueryString": query,
        "headers": header_map,
    }
    if query_map:
        event["queryStringParameters"] = query_map
    event["requestContext"] = context
    if path_parameters:
        event["pathParameters"] = dict(path_parameters)
    text, encoded = _body_fields(body, base64_body)
    event["isBase64Encoded"] = encoded
    if text is not None:
        event["body"] = text
    return event
