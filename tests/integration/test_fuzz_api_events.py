"""Any API Gateway request: a documented 2xx or 4xx JSON answer, never a 5xx or an exception.

Hypothesis builds REST (1.0) and HTTP API (2.0) events with arbitrary methods, paths, ids, bodies, headers and
base64 flags, signed by the test's tenant or not signed at all. Every answer is checked against
openapi.yaml, and no id that fails validation ever reaches Extend or the deletion queue.
"""

from __future__ import annotations

import base64
import json
import string
from typing import Any

from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from parser_run_deleter.shared.parser_run_ids import InvalidParserRunId, validate_parser_run_id
from tests.support.api import http_event, invoke, queued_messages, rest_event
from tests.support.stacks import InProcessStack

WS = "ws_test"
VALID_ALPHABET = string.ascii_letters + string.digits + "_-"
EXISTING = ["pr_api_0", "pr_api_1", "pr_api_2"]

ids = st.one_of(
    st.sampled_from(EXISTING),
    st.text(VALID_ALPHABET, min_size=1, max_size=30),
    st.text(max_size=30),
    st.sampled_from(["..", ".", "%2F", "a%2Fb", "a b", "\u00e9", "x" * 256, "pr_1?x=1", "pr#1", "pr;1"]),
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=8,
)
bulk_bodies = st.fixed_dictionaries(
    {"parserRunIds": st.one_of(st.lists(st.one_of(ids, json_values), max_size=8), json_values)},
    optional={"extra": json_values},
).map(json.dumps)
bodies = st.one_of(st.none(), bulk_bodies, st.builds(json.dumps, json_values), st.text(max_size=100))
paths = st.one_of(
    ids.map(lambda parser_run_id: f"/parser_runs/{parser_run_id}"),
    st.sampled_from(["/deletions", "/deletions/", "/parser_runs", "/parser_runs/", "/", "/parser_runs/a/b", "/x"]),
    st.text(max_size=30).map(lambda text: "/" + text),
)
methods = st.sampled_from(["DELETE", "POST", "GET", "PUT", "PATCH", "OPTIONS", "HEAD", "delete", "FOO"])
header_names = st.sampled_from(["content-type", "webhook-id", "webhook-timestamp", "webhook-signature", "x-any"])
headers = st.dictionaries(st.one_of(header_names, st.text(string.ascii_letters + "-", min_size=1, max_size=10)),
                          st.text(max_size=40), max_size=4)  # fmt: skip


def is_valid(value: object) -> bool:
    try:
        validate_parser_run_id(value)
    except InvalidParserRunId:
        return False
    return True


def sqs_bodies_now(stack: InProcessStack) -> list[dict[str, Any]]:
    return queued_messages(stack)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    shape=st.sampled_from(["rest", "http"]),
    method=methods,
    path=paths,
    body=bodies,
    extra_headers=headers,
    base64_body=st.booleans(),
    signed=st.booleans(),
)
def test_any_api_request_gets_a_documented_2xx_or_4xx_and_never_an_invalid_id_downstream(
    stack: InProcessStack,
    shape: str,
    method: str,
    path: str,
    body: str | None,
    extra_headers: dict[str, str],
    base64_body: bool,
    signed: bool,
) -> None:
    # Given a stack where some runs exist, and a request its tenant signed, or one nobody did
    stack.extend.seed(EXISTING, workspace_id=WS)
    stack.extend.reset_stats()
    request_headers = dict(extra_headers)
    if signed:  # the tenant's client sets its own webhook-* headers
        request_headers = {k: v for k, v in request_headers.items() if not k.lower().startswith("webhook-")}
    make_event = rest_event if shape == "rest" else http_event
    event = make_event(method, path, body=body, headers=request_headers, base64_body=base64_body, sign=signed)

    note(f"{shape} {method} {path!r} body={body!r} headers={request_headers!r} b64={base64_body} signed={signed}")
    # When it reaches the function (invoke also checks the answer against openapi.yaml)
    answer = invoke(event)

    # Then the answer is a JSON 2xx or 4xx: client input never causes a 5xx
    assert 200 <= answer.status < 500, (answer.status, answer.body)
    assert isinstance(answer.body, dict)
    # and nothing invalid went downstream: every Extend call and every queued message names a valid id
    for request in stack.extend.requests:
        assert is_valid(request.parser_run_id) and request.path == f"/parser_runs/{request.parser_run_id}"
        assert path == f"/parser_runs/{request.parser_run_id}"
    for message in sqs_bodies_now(stack):
        assert is_valid(message["parserRunId"])
    # and an unsigned request went nowhere: refused for its signature, or before that, for a body where none belongs
    if not signed:
        bodyless = method.upper() in ("DELETE", "GET")
        assert answer.status == (400 if bodyless and body else 401) and stack.extend.requests == []


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.binary(max_size=200), shape=st.sampled_from(["rest", "http"]))
def test_any_bytes_as_a_base64_bulk_body_get_a_4xx_or_202(stack: InProcessStack, raw: bytes, shape: str) -> None:
    make_event = rest_event if shape == "rest" else http_event
    event = make_event("POST", "/deletions", body=base64.b64encode(raw).decode())
    event["isBase64Encoded"] = True
    answer = invoke(event)
    assert answer.status == 202 or 400 <= answer.status < 500
    for message in sqs_bodies_now(stack):
        assert is_valid(message["parserRunId"])


query_keys = st.one_of(st.sampled_from(["limit", "nextToken", "include", "x"]), st.text(max_size=12))
query_values = st.one_of(
    st.text(max_size=20),
    st.sampled_from(["\u00b2", "\u0661", "\uff11", "1" * 40, "0", "-1", "1e3", "1001", "", "%", "==", "dr_x"]),
)
queries = st.dictionaries(query_keys, query_values, max_size=4)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(route=st.sampled_from(["delete", "bulk", "status", "status-of-another"]), query=queries)
def test_no_query_string_on_any_route_yields_a_5xx(stack: InProcessStack, route: str, query: dict[str, str]) -> None:
    # Given a request of the tenant's own, and anything a client can put in the query string of any route
    stack.extend.seed(["pr_query"], workspace_id=WS)
    request_id = invoke(rest_event("POST", "/deletions", body='{"parserRunIds": ["pr_q1"]}')).body["deletionRequestId"]
    path, body = {
        "delete": ("/parser_runs/pr_query", None),
        "bulk": ("/deletions", '{"parserRunIds": ["pr_q2"]}'),
        "status": (f"/deletions/{request_id}", None),
        "status-of-another": ("/deletions/dr_0000000000000000000000000a", None),
    }[route]
    event = rest_event("POST" if route == "bulk" else "DELETE" if route == "delete" else "GET", path, body=body)
    event["queryStringParameters"] = dict(query) or None
    event["multiValueQueryStringParameters"] = {name: [value] for name, value in query.items()} or None
    note(f"{route} {query!r}")

    # When it is served (invoke also checks the answer against openapi.yaml), then it is never a 5xx
    answer = invoke(event)
    assert 200 <= answer.status < 500, (answer.status, answer.body)
