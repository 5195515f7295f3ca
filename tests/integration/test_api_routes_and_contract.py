"""Routing (404 / 405 / JSON everywhere) and openapi.yaml kept in step with the resolvers."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, cast

import pytest
from aws_lambda_powertools.utilities.typing import LambdaContext

from devstack.extend_emulator import Fault
from parser_run_deleter.entrypoints import api_function
from parser_run_deleter.intake import api_gateway, api_routes
from tests.support.api import hold_in_progress, http_event, invoke, queued_messages, rest_event
from tests.support.openapi_contract import operations, spec
from tests.support.stacks import Emitted, InProcessStack, reset_functions

EventFactory = Callable[..., dict[str, Any]]
BOTH_SHAPES = pytest.mark.parametrize("make_event", [rest_event, http_event], ids=["rest-v1", "http-v2"])


def _resolver_operations(resolver: Any) -> set[tuple[str, str]]:
    routes = resolver._static_routes + resolver._dynamic_routes
    return {(route.method, re.sub(r"<\w+>", "{}", route.path)) for route in routes}


def _normalised(pairs: set[tuple[str, str]]) -> set[tuple[str, str]]:
    return {(method, re.sub(r"\{\w*\}", "{}", path)) for method, path in pairs}


def test_openapi_yaml_is_a_valid_openapi_3_document() -> None:
    assert spec()["openapi"].startswith("3.")  # spec() also runs openapi-spec-validator


@pytest.mark.parametrize("resolver", [api_gateway.rest_app, api_gateway.http_app], ids=["rest", "http"])
def test_every_route_is_in_openapi_yaml_and_nothing_else(resolver: Any) -> None:
    declared = _normalised(operations())
    assert _resolver_operations(resolver) == declared
    assert _normalised({(method, re.sub(r"<\w+>", "{}", rule)) for method, rule in api_routes.ROUTES}) == declared


def _break_extend_and_queue(stack: InProcessStack) -> None:
    stack.extend.inject("pr_a", Fault.status(500), Fault.status(500), Fault.status(500))
    stack.set_env(DELETION_QUEUE_URL=None)


BULK = '{"parserRunIds": ["pr_a"]}'
Arrangement = Callable[[InProcessStack], "dict[str, Any] | None"]  # may return arguments for rest_event


def _unknown_caller(stack: InProcessStack) -> dict[str, Any]:
    return {"api_key_id": "unknownkey1"}


def _used_webhook_id(stack: InProcessStack) -> dict[str, Any]:
    # the tenant used this webhook-id a moment ago, for another request
    assert invoke(rest_event("DELETE", "/parser_runs/pr_other", headers={"webhook-id": "msg_used"})).status == 404
    return {"headers": {"webhook-id": "msg_used"}}


def _twin_in_progress(method: str, path: str, body: str | None) -> Arrangement:
    def arrange(stack: InProcessStack) -> dict[str, Any]:
        hold_in_progress(stack, stack.tenant.tenant, "msg_twin", method=method, path=path, body=(body or "").encode())
        return {"headers": {"webhook-id": "msg_twin"}}

    return arrange


def _refused_for_good(stack: InProcessStack) -> None:
    stack.extend.inject("pr_a", Fault.error(400, "INVALID_REQUEST", "the request is not valid"))


def _at_the_cap(stack: InProcessStack) -> None:
    stack.tenant_admin().set_limits(stack.tenant.tenant.tenant_id, max_outstanding=1)
    reset_functions()
    assert invoke(rest_event("POST", "/deletions", body='{"parserRunIds": ["pr_first"]}')).status == 202


def _a_request(stack: InProcessStack) -> dict[str, Any]:
    body = invoke(rest_event("POST", "/deletions", body=BULK)).body
    return {"path": f"/deletions/{body['deletionRequestId']}"}


def _a_request_to_cancel(stack: InProcessStack) -> dict[str, Any]:
    body = invoke(rest_event("POST", "/deletions", body=BULK)).body
    return {"path": f"/deletions/{body['deletionRequestId']}/cancel"}


STATUS = "/deletions/dr_01jf3k8v9q2m7x4t6w5r8y3n2p"  # a well-formed id; arrangements that need a real one give it
CANCEL = STATUS + "/cancel"

# One way to get each documented response: (method, path, body, arrangement).
SCENARIOS: dict[tuple[str, str, int], tuple[str, str | None, Arrangement]] = {
    ("DELETE", "/{resource}/{id}", 200): (
        "/parser_runs/pr_a",
        None,
        lambda s: s.extend.seed(["pr_a"], workspace_id="ws_test"),
    ),
    ("DELETE", "/{resource}/{id}", 202): (
        "/parser_runs/pr_a",
        None,
        lambda s: s.extend.inject("pr_a", *[Fault.status(500)] * 3),
    ),
    ("DELETE", "/{resource}/{id}", 400): ("/parser_runs/pr.a", None, lambda s: None),
    ("DELETE", "/{resource}/{id}", 401): ("/parser_runs/pr_a", None, lambda s: None),
    ("DELETE", "/{resource}/{id}", 404): ("/parser_runs/pr_a", None, lambda s: None),
    ("DELETE", "/{resource}/{id}", 403): ("/parser_runs/pr_a", None, _unknown_caller),
    ("DELETE", "/{resource}/{id}", 409): (
        "/parser_runs/pr_a",
        None,
        _twin_in_progress("DELETE", "/parser_runs/pr_a", None),
    ),
    ("DELETE", "/{resource}/{id}", 422): ("/parser_runs/pr_a", None, _used_webhook_id),
    ("DELETE", "/{resource}/{id}", 502): ("/parser_runs/pr_a", None, _refused_for_good),
    ("DELETE", "/{resource}/{id}", 503): ("/parser_runs/pr_a", None, _break_extend_and_queue),
    ("POST", "/deletions", 202): ("/deletions", BULK, lambda s: None),
    ("POST", "/deletions", 400): ("/deletions", '{"parserRunIds": []}', lambda s: None),
    ("POST", "/deletions", 401): ("/deletions", BULK, lambda s: None),
    ("POST", "/deletions", 413): ("/deletions", "[" + " " * 600_000 + "]", lambda s: None),
    ("POST", "/deletions", 403): ("/deletions", BULK, _unknown_caller),
    ("POST", "/deletions", 409): ("/deletions", BULK, _twin_in_progress("POST", "/deletions", BULK)),
    ("POST", "/deletions", 415): ("/deletions", BULK, lambda s: None),
    ("POST", "/deletions", 429): ("/deletions", BULK, _at_the_cap),
    ("POST", "/deletions", 422): ("/deletions", BULK, _used_webhook_id),
    ("POST", "/deletions", 503): ("/deletions", BULK, lambda s: s.set_env(DELETION_QUEUE_URL=None)),
    ("GET", "/deletions/{id}", 200): (STATUS, None, _a_request),
    ("GET", "/deletions/{id}", 400): (STATUS + "?limit=0", None, lambda s: None),
    ("GET", "/deletions/{id}", 401): (STATUS, None, lambda s: None),
    ("GET", "/deletions/{id}", 403): (STATUS, None, _unknown_caller),
    ("GET", "/deletions/{id}", 404): (STATUS, None, lambda s: None),
    ("GET", "/deletions/{id}", 409): (STATUS, None, _twin_in_progress("GET", STATUS, None)),
    ("GET", "/deletions/{id}", 422): (STATUS, None, _used_webhook_id),
    ("GET", "/deletions/{id}", 503): (STATUS, None, lambda s: s.set_env(LEDGER_TABLE_NAME="no-such-table")),
    ("POST", "/deletions/{id}/cancel", 202): (CANCEL, None, _a_request_to_cancel),
    ("POST", "/deletions/{id}/cancel", 400): (CANCEL, '{"please": true}', lambda s: None),
    ("POST", "/deletions/{id}/cancel", 401): (CANCEL, None, lambda s: None),
    ("POST", "/deletions/{id}/cancel", 403): (CANCEL, None, _unknown_caller),
    ("POST", "/deletions/{id}/cancel", 404): (CANCEL, None, lambda s: None),
    ("POST", "/deletions/{id}/cancel", 409): (CANCEL, None, _twin_in_progress("POST", CANCEL, None)),
    ("POST", "/deletions/{id}/cancel", 422): (CANCEL, None, _used_webhook_id),
    ("POST", "/deletions/{id}/cancel", 503): (CANCEL, None, lambda s: s.set_env(LEDGER_TABLE_NAME="no-such-table")),
}


def test_the_scenarios_cover_every_documented_response() -> None:
    documented = {
        (method, path, int(status))
        for method, path in operations()
        for status, response in spec()["paths"][path][method.lower()]["responses"].items()
        if response.get("x-produced-by") != "api-gateway"  # answered before the function runs
    }
    assert set(SCENARIOS) == documented


@pytest.mark.parametrize("key", sorted(SCENARIOS), ids=lambda key: f"{key[0]}-{key[2]}")
def test_every_documented_response_is_produced_as_documented(stack: InProcessStack, key: tuple[str, str, int]) -> None:
    method, _, status = key
    path, body, arrange = SCENARIOS[key]
    arguments: dict[str, Any] = arrange(stack) or {}
    path = arguments.pop("path", path)
    # A form-encoded body (curl -d's default) is the one way to a 415; an unsigned request the one way to a 401.
    if status == 415:
        arguments["headers"] = {"content-type": "application/x-www-form-urlencoded"}
    event = rest_event(method, path, body=body, sign=status != 401, **arguments)
    answer = invoke(event)  # invoke() validates it against openapi.yaml
    assert answer.status == status


@BOTH_SHAPES
@pytest.mark.parametrize(
    ("method", "path", "status", "allow"),
    [
        ("GET", "/parser_runs/pr_a", 405, "DELETE"),
        ("POST", "/parser_runs/pr_a", 405, "DELETE"),
        ("GET", "/deletions", 405, "POST"),
        ("DELETE", "/deletions", 405, "POST"),
        ("GET", "/", 404, None),
        ("DELETE", "/parser_runs", 404, None),
        ("DELETE", "/parser_runs/pr_a/extra", 404, None),
        ("POST", "/deletions/extra", 405, "GET"),
        ("DELETE", "/deletions/dr_01jf3k8v9q2m7x4t6w5r8y3n2p", 405, "GET"),
        ("GET", "/deletions/a/b", 404, None),
    ],
)
def test_unknown_routes_and_methods_get_json_4xx(
    stack: InProcessStack,
    emitted: Emitted,
    make_event: EventFactory,
    method: str,
    path: str,
    status: int,
    allow: str | None,
) -> None:
    answer = invoke(make_event(method, path))
    assert answer.status == status
    assert answer.headers["content-type"] == "application/json"
    assert answer.headers.get("allow") == allow
    assert answer.body["message"]
    assert stack.extend.requests == [] and queued_messages(stack) == []
    [line] = [log for log in emitted.logs if log["message"] == "api request"]
    assert line["request_outcome"] == "no_route" and line["status_code"] == status


def test_a_misconfigured_function_answers_503_not_a_crash(stack: InProcessStack, emitted: Emitted) -> None:
    stack.set_env(EXTEND_API_VERSION="1999-01-01")
    answer = invoke(rest_event("DELETE", "/parser_runs/pr_a"))
    assert answer.status == 503 and answer.headers["retry-after"] == "30"
    assert any(log["message"] == "the function is misconfigured" for log in emitted.logs)


def test_an_unexpected_error_is_a_json_500_without_details(
    stack: InProcessStack, emitted: Emitted, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_: Any, **__: Any) -> Any:
        raise RuntimeError("boom: internal detail")

    monkeypatch.setattr(api_routes, "enqueue_bulk", broken)
    context = cast("LambdaContext", stack.context())  # the local stand-in has the same attributes
    response = api_gateway.handle_api_event(
        rest_event("POST", "/deletions", body='{"parserRunIds": ["pr_a"]}'), context, api_function.root.services
    )
    assert response["statusCode"] == 500
    assert "boom" not in response["body"]
    assert any(log["message"] == "unexpected error while handling an API request" for log in emitted.logs)
