"""Standard Webhooks signatures with the tenant's own secret, enforced on every request; signed by the
standardwebhooks library, an independent implementation of the scheme. A refusal is one generic 401: why is in
the log and the metric, never in the answer."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aws_lambda_powertools.utilities import parameters

from devstack.moto_stack import rotate_secret
from parser_run_deleter.intake.api_errors import UNAUTHENTICATED_MESSAGE
from tests.support.api import (
    Signing,
    accepted,
    http_event,
    invoke,
    new_webhook_secret,
    queued_messages,
    rest_event,
    sample_event,
    signature_headers,
)
from tests.support.stacks import Emitted, InProcessStack

WS = "ws_test"
BODY = json.dumps({"parserRunIds": ["pr_signed_1", "pr_signed_2"]})
EventFactory = Callable[..., dict[str, Any]]
BOTH_SHAPES = pytest.mark.parametrize("make_event", [rest_event, http_event], ids=["rest-v1", "http-v2"])


def signed_bulk(make_event: EventFactory, headers: dict[str, str], body: str = BODY) -> dict[str, Any]:
    """The bulk request with exactly the signature headers the test made (no automatic signing)."""
    return make_event("POST", "/deletions", body=body, headers=headers, sign=False)


def assert_rejected(answer: Any, stack: InProcessStack, emitted: Emitted, reason: str) -> None:
    """401 with the one generic message, the reason in the log, the metric, and nothing called or queued."""
    assert answer.status == 401
    assert answer.body == {"message": UNAUTHENTICATED_MESSAGE}
    assert stack.extend.requests == []
    assert queued_messages(stack) == []
    assert emitted.metric_totals()["WebhookSignatureRejected"] == 1
    assert emitted.outcome_logs == []
    [refusal] = [log for log in emitted.logs if log["message"] == "signature refused"]
    assert reason in refusal["reason"]
    [line] = [log for log in emitted.logs if log["message"] == "api request"]
    assert line["request_outcome"] == "signature_rejected" and line["status_code"] == 401


@BOTH_SHAPES
def test_a_correctly_signed_request_is_served(
    stack: InProcessStack, emitted: Emitted, signing: Signing, make_event: EventFactory
) -> None:
    headers = signing.headers(BODY, webhook_id="msg_ok_1")
    answer = invoke(signed_bulk(make_event, headers))
    assert answer.status == 202 and accepted(answer) == {"queued": 2, "rejected": []}
    assert {message["webhookId"] for message in queued_messages(stack)} == {"msg_ok_1"}
    assert emitted.metric_totals()["WebhookSignatureRejected"] == 0


def test_a_signed_sync_delete_reaches_extend(stack: InProcessStack, signing: Signing) -> None:
    stack.extend.seed(["pr_sig"], workspace_id=WS)
    headers = signing.headers(None, method="DELETE", path="/parser_runs/pr_sig")
    answer = invoke(rest_event("DELETE", "/parser_runs/pr_sig", headers=headers))
    assert answer.status == 200 and not stack.extend.exists("pr_sig", workspace_id=WS)


def test_the_sample_signed_event_is_refused_once_its_timestamp_is_old(
    stack: InProcessStack, emitted: Emitted, signing: Signing
) -> None:
    answer = invoke(sample_event("apigw_rest_signed_bulk.json", sign=False))
    assert_rejected(answer, stack, emitted, "too old")


@BOTH_SHAPES
@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_a_missing_header_is_rejected(
    stack: InProcessStack, emitted: Emitted, signing: Signing, make_event: EventFactory, missing: str
) -> None:
    headers = signing.headers(BODY)
    del headers[missing]
    answer = invoke(signed_bulk(make_event, headers))
    assert_rejected(answer, stack, emitted, f"missing signature header(s): {missing}")


def test_an_unsigned_request_is_rejected(stack: InProcessStack, emitted: Emitted, signing: Signing) -> None:
    answer = invoke(rest_event("POST", "/deletions", body=BODY, sign=False))
    assert_rejected(answer, stack, emitted, "webhook-id, webhook-timestamp, webhook-signature")


def test_a_signature_made_with_another_secret_is_rejected(
    stack: InProcessStack, emitted: Emitted, signing: Signing
) -> None:
    headers = signature_headers(new_webhook_secret(), BODY)
    answer = invoke(signed_bulk(rest_event, headers))
    assert_rejected(answer, stack, emitted, "no valid signature")


@BOTH_SHAPES
def test_a_tampered_body_is_rejected(
    stack: InProcessStack, emitted: Emitted, signing: Signing, make_event: EventFactory
) -> None:
    headers = signing.headers(BODY)
    tampered = BODY.replace("pr_signed_2", "pr_victim_99")
    answer = invoke(signed_bulk(make_event, headers, body=tampered))
    assert_rejected(answer, stack, emitted, "no valid signature")


def test_a_changed_webhook_id_is_rejected(stack: InProcessStack, emitted: Emitted, signing: Signing) -> None:
    headers = {**signing.headers(BODY, webhook_id="msg_a"), "webhook-id": "msg_b"}
    assert_rejected(invoke(signed_bulk(rest_event, headers)), stack, emitted, "no valid signature")


@pytest.mark.parametrize(
    ("offset", "reason"),
    [(timedelta(minutes=-5, seconds=-30), "too old"), (timedelta(minutes=5, seconds=30), "in the future")],
    ids=["expired", "future"],
)
def test_a_timestamp_outside_five_minutes_is_rejected(
    stack: InProcessStack, emitted: Emitted, signing: Signing, offset: timedelta, reason: str
) -> None:
    headers = signing.headers(BODY, at=datetime.now(tz=UTC) + offset)
    answer = invoke(signed_bulk(rest_event, headers))
    assert_rejected(answer, stack, emitted, reason)


@pytest.mark.parametrize("offset", [timedelta(minutes=-4), timedelta(minutes=4)], ids=["past", "future"])
def test_a_timestamp_within_five_minutes_is_accepted(
    stack: InProcessStack, signing: Signing, offset: timedelta
) -> None:
    headers = signing.headers(BODY, at=datetime.now(tz=UTC) + offset)
    assert invoke(signed_bulk(rest_event, headers)).status == 202


def test_a_non_numeric_timestamp_is_rejected(stack: InProcessStack, emitted: Emitted, signing: Signing) -> None:
    headers = {**signing.headers(BODY), "webhook-timestamp": "2026-01-01T00:00:00Z"}
    assert_rejected(invoke(signed_bulk(rest_event, headers)), stack, emitted, "whole Unix seconds")


def test_a_header_without_a_v1_signature_is_rejected(stack: InProcessStack, emitted: Emitted, signing: Signing) -> None:
    headers = signing.headers(BODY)
    headers["webhook-signature"] = headers["webhook-signature"].replace("v1,", "v1a,") + " v1,%%%notbase64"
    assert_rejected(invoke(signed_bulk(rest_event, headers)), stack, emitted, "no v1 signature")


def test_header_names_are_case_insensitive(stack: InProcessStack, signing: Signing) -> None:
    headers = {
        name.upper() if index % 2 else name.title(): value
        for index, (name, value) in enumerate(signing.headers(BODY).items())
    }
    assert set(headers) == {"Webhook-Id", "WEBHOOK-TIMESTAMP", "Webhook-Signature"}
    assert invoke(signed_bulk(rest_event, headers)).status == 202


def test_one_valid_signature_among_several_is_enough(stack: InProcessStack, signing: Signing) -> None:
    headers = signing.headers(BODY, webhook_id="msg_multi")
    at = datetime.fromtimestamp(int(headers["webhook-timestamp"]), tz=UTC)
    other = signature_headers(new_webhook_secret(), BODY, webhook_id="msg_multi", at=at)
    headers["webhook-signature"] = f"{other['webhook-signature']} v1a,ignored {headers['webhook-signature']}"
    assert invoke(signed_bulk(rest_event, headers)).status == 202


def test_a_rotated_secret_is_picked_up_by_a_warm_container_and_the_old_one_stops_working(
    stack: InProcessStack, emitted: Emitted, signing: Signing
) -> None:
    # Given a warm container that has cached the current secret
    assert invoke(signed_bulk(rest_event, signing.headers(BODY))).status == 202
    old_secret = signing.secret

    # When the secret is rotated in Secrets Manager and the customer signs with the new one
    new_secret = new_webhook_secret()
    rotate_secret(stack.endpoint, signing.secret_arn, new_secret)
    answer = invoke(signed_bulk(rest_event, signature_headers(new_secret, BODY)))

    # Then the new signature is accepted at once (the cache is refreshed on a mismatch)
    assert answer.status == 202
    # and a request signed with the old secret is now rejected
    emitted.read()
    stale = invoke(signed_bulk(rest_event, signature_headers(old_secret, BODY)))
    assert stale.status == 401 and stale.body["message"] == UNAUTHENTICATED_MESSAGE


def test_during_a_rotation_the_secret_may_hold_old_and_new(stack: InProcessStack, signing: Signing) -> None:
    new_secret = new_webhook_secret()
    rotate_secret(stack.endpoint, signing.secret_arn, f"{new_secret} {signing.secret}")
    for secret in (signing.secret, new_secret):
        assert invoke(signed_bulk(rest_event, signature_headers(secret, BODY))).status == 202


def test_a_base64_encoded_body_is_verified_over_its_raw_bytes(stack: InProcessStack, signing: Signing) -> None:
    event = http_event("POST", "/deletions", body=BODY.encode(), base64_body=True, headers=signing.headers(BODY))
    assert invoke(event).status == 202


def test_unknown_routes_are_not_revealed_to_unsigned_callers(
    stack: InProcessStack, emitted: Emitted, signing: Signing
) -> None:
    answer = invoke(rest_event("GET", "/admin", sign=False))
    assert_rejected(answer, stack, emitted, "missing signature header")


def test_a_bad_signature_on_a_sync_delete_never_reaches_extend(
    stack: InProcessStack, emitted: Emitted, signing: Signing
) -> None:
    stack.extend.seed(["pr_keep"], workspace_id=WS)
    headers = signature_headers(new_webhook_secret(), None, method="DELETE", path="/parser_runs/pr_keep")
    answer = invoke(http_event("DELETE", "/parser_runs/pr_keep", headers=headers))
    assert_rejected(answer, stack, emitted, "no valid signature")
    assert stack.extend.exists("pr_keep", workspace_id=WS)


def test_an_unreadable_signing_secret_fails_closed_with_503(
    stack: InProcessStack, emitted: Emitted, signing: Signing
) -> None:
    stack.tenant_admin().secrets.delete_secret(SecretId=signing.secret_arn, ForceDeleteWithoutRecovery=True)
    parameters.clear_caches()
    answer = invoke(signed_bulk(rest_event, signing.headers(BODY)))
    assert answer.status == 503 and answer.headers["retry-after"] == "30"
    assert queued_messages(stack) == []
    assert emitted.metric_totals()["WebhookSignatureRejected"] == 0


def test_a_malformed_signing_secret_fails_closed_with_503(stack: InProcessStack, signing: Signing) -> None:
    rotate_secret(stack.endpoint, signing.secret_arn, "whsec_***not base64***")
    parameters.clear_caches()
    answer = invoke(signed_bulk(rest_event, signing.headers(BODY)))
    assert answer.status == 503
    assert queued_messages(stack) == []
