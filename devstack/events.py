"""Every Lambda event the project builds: SQS records, and API Gateway REST (payload 1.0) and HTTP API (payload
2.0) events, as Lambda's SQS event source and API Gateway deliver them.

The local SQS event source and API Gateway front build their events here, the tests build theirs here, and the
samples in ``events/`` are generated here: ``sample_events()`` builds each from fixed ids, keys and times, and
``python -m devstack.events --write events/`` writes them (``--check events/`` only compares).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import sys
import time
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

# The same region and account as moto_stack's and template's: repeated so that building an event, in the local
# front and event source or in ``python -m devstack.events``, imports neither boto3 nor moto.
REGION = "us-east-1"
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


# ---------------------------------------------------------------------------------------------------- samples

# The made-up deployment the samples come from: ``sam local generate-event``'s request context and CloudFront
# headers, a documentation address (RFC 5737) as the caller, and an API key that is plainly not a real one.
SAMPLE_API_ID = "abc123defg"
SAMPLE_HOST = f"{SAMPLE_API_ID}.execute-api.{REGION}.amazonaws.com"
SAMPLE_SOURCE_IP = "203.0.113.10"
SAMPLE_API_KEY = "EXAMPLEapiKEYnotREAL0123456789abcdefghij"
SAMPLE_API_KEY_ID = "a1b2c3d4e5"
# HTTP APIs name the tenant in a JWT claim (the function's TENANT_CLAIM setting); "sub" is the caller.
SAMPLE_TENANT_ID = "acme"
_JWT_AUTHORIZER = {"jwt": {"claims": {"sub": "k9x8c7v6b5", "tenant_id": SAMPLE_TENANT_ID}, "scopes": None}}
SAMPLE_STAGE = "v1"
_SAMPLE_REST_TIME_MS = 1428582896000
_SAMPLE_HTTP_TIME_MS = 1767225600000
_SAMPLE_REST_HEADERS = {
    "Accept": "application/json",
    "Accept-Encoding": "gzip, deflate, sdch",
    "Accept-Language": "en-US,en;q=0.8",
    "Cache-Control": "max-age=0",
    "CloudFront-Forwarded-Proto": "https",
    "CloudFront-Is-Desktop-Viewer": "true",
    "CloudFront-Is-Mobile-Viewer": "false",
    "CloudFront-Is-SmartTV-Viewer": "false",
    "CloudFront-Is-Tablet-Viewer": "false",
    "CloudFront-Viewer-Country": "US",
    "Host": SAMPLE_HOST,
    "Upgrade-Insecure-Requests": "1",
    "User-Agent": "curl/8.5.0",
    "Via": "1.1 08f323deadbeefa7af34d5feb414ce27.cloudfront.net (CloudFront)",
    "X-Amz-Cf-Id": "cDehVQoZnx43VYQb9j2-nvCh-9z396Uhbp027Y2JvkCPNLmGJHqlaA==",
    "X-Forwarded-For": SAMPLE_SOURCE_IP,
    "X-Forwarded-Port": "443",
    "X-Forwarded-Proto": "https",
    "x-api-key": SAMPLE_API_KEY,
}
_SAMPLE_HTTP_HEADERS = {
    "accept": "application/json",
    "content-length": "0",
    "host": SAMPLE_HOST,
    "user-agent": "curl/8.5.0",
    "x-amzn-trace-id": "Root=1-65f1c0de-0123456789abcdef01234567",
    "x-forwarded-for": SAMPLE_SOURCE_IP,
    "x-forwarded-port": "443",
    "x-forwarded-proto": "https",
}


def sample_rest_event(
    method: str,
    path: str,
    *,
    resource: str,
    request_id: str,
    path_parameters: Mapping[str, str] | None = None,
    body: str | bytes | None = None,
    base64_body: bool = False,
    headers: Mapping[str, str] | None = None,
    api_key_id: str | None = SAMPLE_API_KEY_ID,
    query: str = "",
) -> dict[str, Any]:
    """A REST event from the sample deployment (stage v1, its API key): ``headers`` add to or replace its own."""
    return apigw_rest_event(
        method=method,
        path=path,
        query=query,
        resource=resource,
        stage=SAMPLE_STAGE,
        source_ip=SAMPLE_SOURCE_IP,
        headers={**_SAMPLE_REST_HEADERS, **(headers or {})}.items(),
        body=body,
        base64_body=base64_body,
        path_parameters=path_parameters,
        api_key=SAMPLE_API_KEY,
        api_key_id=api_key_id,
        api_id=SAMPLE_API_ID,
        resource_id="123456",
        request_id=request_id,
        request_time_ms=_SAMPLE_REST_TIME_MS,
        extended_request_id="Kx7sWFmNoAMEbwA=",
    )


def sample_http_event(
    method: str,
    path: str,
    *,
    route_key: str,
    request_id: str,
    path_parameters: Mapping[str, str] | None = None,
    body: str | bytes | None = None,
    base64_body: bool = False,
    headers: Mapping[str, str] | None = None,
    authorizer: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """An HTTP API event from the sample deployment: ``headers`` (any case) add to or replace its own."""
    raw = body.encode() if isinstance(body, str) else (body or b"")
    own = {**_SAMPLE_HTTP_HEADERS, "content-length": str(len(raw))}
    return apigw_http_event(
        method=method,
        path=path,
        route_key=route_key,
        source_ip=SAMPLE_SOURCE_IP,
        headers={**own, **{name.lower(): value for name, value in (headers or {}).items()}}.items(),
        body=body,
        base64_body=base64_body,
        path_parameters=path_parameters,
        authorizer=authorizer,
        api_id=SAMPLE_API_ID,
        request_id=request_id,
        time_ms=_SAMPLE_HTTP_TIME_MS,
    )


_RUN_A = "parser_run_xK9mLPqRtN3vS8wF5hB2cQ"
_RUN_B = "parser_run_aB3dE5fG7hJ9kL1mN2pQ4r"
_RUN_C = "parser_run_Zy8xW7vU6tS5rQ4pO3nM2l"
_SAMPLE_QUEUE_ARN = f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:extend-parser-run-deleter-DeletionQueue-EXAMPLE"


def _sample_record(message_id: str, body: str) -> dict[str, Any]:
    return sqs_record(
        body,
        queue_arn=_SAMPLE_QUEUE_ARN,
        message_id=message_id,
        receipt_handle=f"MessageReceiptHandle-{message_id[:8]}",
        sender_id=ACCOUNT_ID,
        sent_timestamp_ms=1523232000000,
        first_receive_timestamp_ms=1523232000001,
    )


def _bulk_body(*parser_run_ids: str) -> str:
    return json.dumps({"parserRunIds": list(parser_run_ids)})


def sample_events() -> dict[str, dict[str, Any]]:
    """The samples in ``events/`` by file name; the same every call (nothing is drawn from the clock or chance)."""
    json_type = {"Content-Type": "application/json"}
    # Fixed, not computed: the secret they were made with is not the project's, and the timestamp is long past.
    signature = {
        "webhook-id": "msg_2mQf7aV3kT9pXbR4sN8wY1cZ",
        "webhook-timestamp": "1767225600",
        "webhook-signature": "v1,MBifwEKZFm9mSTznTKl0iC3PJkKT71WcO1Y492jePlw=",
    }
    return {
        "apigw_http_bulk.json": sample_http_event(
            "POST",
            "/deletions",
            route_key="POST /deletions",
            request_id="Mr4wLiS3JANEcQx=",
            body=_bulk_body(_RUN_A, _RUN_B),
            headers=json_type,
            authorizer=_JWT_AUTHORIZER,
        ),
        "apigw_http_delete.json": sample_http_event(
            "DELETE",
            f"/parser_runs/{_RUN_A}",
            route_key="DELETE /{resource}/{id}",
            request_id="JKJaXmPLvHcESHA=",
            path_parameters={"resource": "parser_runs", "id": _RUN_A},
            authorizer=_JWT_AUTHORIZER,
        ),
        "apigw_rest_bulk.json": sample_rest_event(
            "POST",
            "/deletions",
            resource="/deletions",
            request_id="8e7d6c5b-4a39-4281-b0f1-e2d3c4b5a697",
            body=_bulk_body(_RUN_A, _RUN_B, _RUN_A, "not/a valid id"),
            headers=json_type,
        ),
        "apigw_rest_delete.json": sample_rest_event(
            "DELETE",
            f"/parser_runs/{_RUN_A}",
            resource="/{resource}/{id}",
            request_id="c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
            path_parameters={"resource": "parser_runs", "id": _RUN_A},
        ),
        "apigw_rest_status.json": sample_rest_event(
            "GET",
            "/deletions/dr_01jf3k8v9q2m7x4t6w5r8y3n2p",
            resource="/deletions/{id}",
            request_id="0b1c2d3e-4f50-4617-8293-a4b5c6d7e8f9",
            path_parameters={"id": "dr_01jf3k8v9q2m7x4t6w5r8y3n2p"},
        ),
        "apigw_rest_signed_bulk.json": sample_rest_event(
            "POST",
            "/deletions",
            resource="/deletions",
            request_id="e2f3a4b5-6c7d-4e8f-9a01-b2c3d4e5f6a7",
            body=_bulk_body(_RUN_A, _RUN_B, _RUN_C, "not/a valid id"),
            headers={**json_type, **signature},
        ),
        "sqs_malformed.json": sqs_event(
            # truncated JSON, no id at all, and an id that tries to leave its path segment
            _sample_record("4f6e8c1a-0b7d-4e52-9a3f-2c1d5e7b9a01", '{"parserRunId": "' + _RUN_B + '"'),
            _sample_record(
                "7a2b9d4e-3c1f-4a8b-b6e5-0d9c8f7a6b02",
                json.dumps({"requestedBy": "ops@example.com", "reason": "customer request"}),
            ),
            _sample_record(
                "c3d5e7f9-1a2b-4c6d-8e0f-9a8b7c6d5e03", json.dumps({"parserRunId": "parser_run_abc/../../workflows"})
            ),
        ),
        "sqs_receive_message.json": sqs_event(
            _sample_record("19dd0b57-b21e-4ac1-bd88-01bbb068cb78", json.dumps({"parserRunId": _RUN_A}))
        ),
        "schedule_sweeper.json": scheduled_event("extend-parser-run-deleter-sweeper"),
    }


def scheduled_event(rule_name: str, *, account: str = ACCOUNT_ID, region: str = REGION) -> dict[str, Any]:
    """EventBridge's scheduled event, as the sweeper's rule (``<stack>-sweeper``) sends it every hour."""
    return {
        "version": "0",
        "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": account,
        "time": "2026-01-01T00:00:00Z",
        "region": region,
        "resources": [f"arn:aws:events:{region}:{account}:rule/{rule_name}"],
        "detail": {},
    }


def render(event: Mapping[str, Any]) -> str:
    """A sample file's text: two-space JSON and a final newline."""
    return json.dumps(event, indent=2) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack.events", description="Write or check events/*.json.")
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--write", metavar="DIR", type=Path, help="write every sample into DIR")
    action.add_argument("--check", metavar="DIR", type=Path, help="exit 1 if a sample in DIR differs or is missing")
    args = parser.parse_args(argv)
    rendered = {name: render(event) for name, event in sample_events().items()}
    if args.write is not None:
        args.write.mkdir(parents=True, exist_ok=True)
        for name, text in rendered.items():
            (args.write / name).write_text(text, encoding="utf-8")
        print(f"wrote {len(rendered)} samples to {args.write}")
        return 0
    stale = [
        name
        for name, text in rendered.items()
        if not (args.check / name).is_file() or (args.check / name).read_text(encoding="utf-8") != text
    ]
    for name in stale:
        print(f"{args.check / name} differs from devstack.events (python -m devstack.events --write {args.check})")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
