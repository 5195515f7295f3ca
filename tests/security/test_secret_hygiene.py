"""Secret hygiene: the Extend key and the signing secret never show in logs, metrics, errors, responses or DLQ.

Three layers: the session-wide hook in tests/support/secret_guard.py (checked here to really fail a leaking test), the
redaction in the code (repr, error messages), and end-to-end runs through every failure path that carries a
message, scanning everything a person or a system downstream could see.
"""

from __future__ import annotations

import json
from collections.abc import Generator
from typing import Any

import pytest

import tests.support.secret_guard as shared
from devstack.events import sqs_event, sqs_record
from devstack.extend_emulator import Fault
from devstack.moto_stack import rotate_secret
from parser_run_deleter.adapters.extend_credentials import CredentialsError, ExtendCredentials, parse_secret_value
from parser_run_deleter.entrypoints import queue_function
from parser_run_deleter.logic.webhook_signature import SigningSecretUnavailable, parse_signing_secrets
from parser_run_deleter.shared.settings import ConfigurationError
from tests.support.api import Signing, invoke, rest_event
from tests.support.queue_delivery import delivered
from tests.support.secret_guard import new_api_key, register_secret
from tests.support.stacks import Emitted, InProcessStack, reset_functions

WS = "ws_test"


# ---- the hook itself


class _Report:
    def __init__(self, sections: list[tuple[str, str]]) -> None:
        self.sections = sections
        self.outcome = "passed"
        self.longrepr: object = None


class _Outcome:
    def __init__(self, report: _Report) -> None:
        self._report = report

    def get_result(self) -> _Report:
        return self._report


class _Call:
    def __init__(self, when: str, error: BaseException | None = None) -> None:
        self.when = when
        self.excinfo: pytest.ExceptionInfo[BaseException] | None = None
        if error is not None:
            try:
                raise error
            except BaseException as raised:  # a real traceback, as pytest would have it
                self.excinfo = pytest.ExceptionInfo.from_exception(raised)


def run_hook(sections: list[tuple[str, str]], call: _Call) -> _Report:
    report = _Report(sections)
    # Stand-ins throughout: no item and a _Call for pytest's (hence the ignore); an _Outcome for pluggy's Result.
    generator: Generator[None, Any, None] = shared.pytest_runtest_makereport(None, call)  # type: ignore[arg-type]
    next(generator)
    with pytest.raises(StopIteration):
        generator.send(_Outcome(report))
    return report


@pytest.mark.parametrize("where", ["stdout", "log", "response", "exception"])
def test_the_session_hook_fails_a_test_whose_output_holds_a_secret(where: str) -> None:
    # Given a registered secret that shows up in one place a test can see
    secret = register_secret(f"sk_hook_{where}_0123456789")
    sections = [("Captured stdout call", f"... {secret} ...")] if where == "stdout" else []
    if where == "log":
        sections = [("Captured log call", f"WARNING x: key={secret}")]
    error = RuntimeError(f"boom {secret}") if where == "exception" else None
    saved = list(shared.SEEN_RESPONSES)
    try:
        shared.SEEN_RESPONSES.clear()
        if where == "response":
            shared.record_response(json.dumps({"message": f"bad key {secret}"}))

        # When the hook reviews the test's report
        report = run_hook(sections, _Call("call", error))
    finally:
        shared.SEEN_RESPONSES[:] = saved

    # Then the test is failed, and the failure names only a prefix of the secret
    assert report.outcome == "failed"
    assert "leaked" in str(report.longrepr) and secret not in str(report.longrepr)


def test_the_session_hook_leaves_a_clean_test_alone() -> None:
    register_secret("sk_hook_clean_0123456789")
    report = run_hook([("Captured stdout call", "nothing to see")], _Call("call", RuntimeError("plain")))
    assert report.outcome == "passed"


# ---- redaction in the code


def test_credentials_never_print_their_key() -> None:
    key = new_api_key()
    credentials = ExtendCredentials(key, "ws_1")
    for text in (repr(credentials), str(credentials), f"{credentials}", repr([credentials])):
        assert key not in text and "redacted" in text


@pytest.mark.parametrize(
    "raw",
    ['{"apiKey": "%s", ', '{"apiKey": 5, "note": "%s"}', '{"workspaceId": 7, "apiKey": "%s"}', '{"apiKey": ["%s"]}'],
)
def test_a_malformed_key_secret_is_reported_without_its_value(raw: str) -> None:
    key = new_api_key()
    with pytest.raises(CredentialsError) as caught:
        parse_secret_value(raw.replace("%s", key))
    assert key not in str(caught.value)


def test_a_malformed_signing_secret_is_reported_without_its_value() -> None:
    secret = register_secret("whsec_not*base64*at*all")
    with pytest.raises(SigningSecretUnavailable) as caught:
        parse_signing_secrets(secret)
    assert secret not in str(caught.value) and "not*base64" not in str(caught.value)


# ---- end to end: every path that carries a message


def everything_visible(stack: InProcessStack, emitted: Emitted, responses: list[Any]) -> str:
    """Logs, EMF, responses, DLQ bodies and attributes, and what the emulator saw outside the auth header."""
    dead = stack.dead_letters()
    requests = [
        {"path": request.path, **{k: v for k, v in request.headers.items() if k != "authorization"}}
        for request in stack.extend.requests
    ]
    return "\n".join([emitted.read().text, json.dumps(responses, default=str), json.dumps(dead), json.dumps(requests)])


def test_no_failure_path_of_the_queue_leaks_the_key(stack: InProcessStack, emitted: Emitted) -> None:
    # Given runs that meet each failure with a message: errors, throttles, resets, a rotation, a revoked key
    stack.extend.seed(["pr_ok", "pr_500", "pr_rotated"], workspace_id=WS)
    stack.extend.inject("pr_500", Fault.status(500), Fault.reset(), Fault.rate_limited(retry_after=None))
    stack.extend.inject("pr_403", Fault.status(403))
    old_key = stack.api_key
    responses: list[Any] = []

    def batch(*ids: str, receive_count: int = 1) -> None:
        records = [sqs_record(json.dumps({"parserRunId": i}), receive_count=receive_count) for i in ids]
        responses.append(queue_function.lambda_handler(delivered(stack, sqs_event(*records)), stack.context()))

    # When batches run through success, failures, dead-lettering, a key rotation and an unusable secret
    batch("pr_ok", "pr_500", "pr_403", "{bad", receive_count=stack.queues.max_receive_count)
    stack.rotate_key()
    batch("pr_rotated")
    stack.extend.revoke_key(stack.api_key)
    batch("pr_revoked", receive_count=stack.queues.max_receive_count)
    rotate_secret(stack.endpoint, stack.secret_arn, '{"apiKey": "' + stack.api_key + '", ')  # unparsable
    from aws_lambda_powertools.utilities import parameters

    parameters.clear_caches()
    batch("pr_unparsable")

    # Then neither key shows anywhere outside the Authorization header
    seen = everything_visible(stack, emitted, responses)
    assert {request.status for request in stack.extend.requests} >= {200, 401, 403, 500, 429}
    for key in (old_key, stack.api_key):
        assert key not in seen
    assert "CredentialsError" in seen  # the unparsable secret was reported, by type


def test_an_upstream_that_echoes_the_key_does_not_get_it_logged(stack: InProcessStack, emitted: Emitted) -> None:
    # Given an Extend (or a proxy in front of it) whose error message quotes the Authorization header
    echo = f"Invalid request, Authorization: Bearer {stack.api_key}"
    stack.extend.inject("pr_echo", Fault.error(400, "INVALID_REQUEST", echo), Fault.error(500, "INTERNAL", echo))
    responses = [
        queue_function.lambda_handler(
            delivered(stack, sqs_event(sqs_record(json.dumps({"parserRunId": "pr_echo"})))), stack.context()
        )
    ]
    responses.append(
        queue_function.lambda_handler(
            delivered(
                stack,
                sqs_event(
                    sqs_record(json.dumps({"parserRunId": "pr_echo"}), receive_count=stack.queues.max_receive_count)
                ),
            ),
            stack.context(),
        )
    )
    seen = everything_visible(stack, emitted, responses)
    assert "Invalid request" in seen  # the message itself is kept for the operator
    assert stack.api_key not in seen


def test_no_answer_of_the_api_leaks_the_key_or_the_signing_secret(
    stack: InProcessStack, emitted: Emitted, signing: Signing
) -> None:
    # Given Extend failing in ways that carry messages, and requests signed well and badly
    stack.extend.seed(["pr_api_ok"], workspace_id=WS)
    stack.extend.inject("pr_api_500", *[Fault.status(500)] * 3)
    responses: list[Any] = []
    body = json.dumps({"parserRunIds": ["pr_api_q", "../x"]})
    cases = [
        rest_event("DELETE", "/parser_runs/pr_api_ok"),
        rest_event("DELETE", "/parser_runs/pr_api_500"),
        rest_event(
            "DELETE", "/parser_runs/pr_api_ok", headers={"webhook-id": "x", "webhook-timestamp": "1"}, sign=False
        ),
        rest_event("POST", "/deletions", body=body),
        rest_event("POST", "/deletions", body=body, headers=signing.headers(body + " ")),
        rest_event("GET", "/parser_runs/pr_api_ok"),
    ]
    # When each is answered, and once more with the tenant's signing secret unreadable
    responses += [invoke(event).__dict__ for event in cases]
    stack.set_env(TENANT_SECRET_PREFIX="no-such-prefix")
    reset_functions()
    responses.append(invoke(rest_event("DELETE", "/parser_runs/pr_api_ok")).__dict__)

    # Then no answer, log line, metric or queued message holds either secret
    statuses = [response["status"] for response in responses]
    assert statuses == [200, 202, 401, 202, 401, 405, 503]
    seen = everything_visible(stack, emitted, responses)
    from tests.support.api import queued_messages

    seen += json.dumps(queued_messages(stack))
    for secret in (stack.api_key, signing.secret, signing.secret.removeprefix("whsec_")):
        assert secret not in seen


def test_a_plain_http_extend_url_off_loopback_is_refused_before_any_request(
    stack: InProcessStack, emitted: Emitted
) -> None:
    # Given a configuration that would send the key in clear text over a network
    stack.set_env(EXTEND_API_BASE_URL="http://api.extend.ai")

    # When either trigger runs
    with pytest.raises(ConfigurationError) as caught:
        queue_function.lambda_handler(
            delivered(stack, sqs_event(sqs_record('{"parserRunId": "pr_x"}'))), stack.context()
        )
    answer = invoke(rest_event("DELETE", "/parser_runs/pr_x"))

    # Then the function refuses to run (the SQS batch is retried; the API answers 503), naming the variable only
    assert "EXTEND_API_BASE_URL" in str(caught.value) and stack.api_key not in str(caught.value)
    assert answer.status == 503
    assert stack.extend.requests == []
