"""The signature check: a signed request verifies, and no mutation of it does.

A request is signed with the ``standardwebhooks`` library (an independent signer). Hypothesis then changes one
thing the signature covers -- a body byte, the webhook id, the timestamp, a signature byte -- or swaps the
secret, and the check must refuse it. Through the API, a mutated request is a 401 that never reaches Extend.
"""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from standardwebhooks import Webhook

from devstack.lambda_context import LocalLambdaContext
from parser_run_deleter.entrypoints import api_function
from parser_run_deleter.logic.webhook_signature import SignatureRejected, matches, parse_headers, parse_signing_secrets
from tests.support.api import Signing, rest_event
from tests.support.stacks import InProcessStack

secrets_ = st.binary(min_size=16, max_size=48).map(lambda key: "whsec_" + base64.b64encode(key).decode())
webhook_ids = st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=40)
bodies = st.binary(max_size=300).map(lambda raw: raw.decode("latin-1"))  # any text the signer accepts


def signed(secret: str, webhook_id: str, body: str, at: int) -> dict[str, str]:
    signature = Webhook(secret).sign(webhook_id, datetime.fromtimestamp(at, tz=UTC), body)
    return {"webhook-id": webhook_id, "webhook-timestamp": str(at), "webhook-signature": signature}


def verifies(secret: str, headers: dict[str, str], body: bytes, now: float) -> bool:
    try:
        parsed = parse_headers(headers, now=now)
    except SignatureRejected:
        return False
    return matches(parsed, body, parse_signing_secrets(secret))


def flip_byte(data: bytes, index: int, xor: int) -> bytes:
    position = index % len(data)
    return data[:position] + bytes([data[position] ^ xor]) + data[position + 1 :]


@settings(max_examples=300, deadline=None)
@given(secret=secrets_, webhook_id=webhook_ids, body=bodies, data=st.data())
def test_a_signed_request_verifies_and_no_mutation_of_it_does(
    secret: str, webhook_id: str, body: str, data: st.DataObject
) -> None:
    now = int(time.time())
    headers = signed(secret, webhook_id, body, now)
    raw = body.encode()
    # Given a request signed by an independent implementation, which verifies as is
    assert verifies(secret, headers, raw, now)

    # When exactly one signed part is changed
    part = data.draw(st.sampled_from(["body", "id", "timestamp", "signature", "secret", "truncate"]), label="part")
    mutated_headers, mutated_body, mutated_secret = dict(headers), raw, secret
    if part == "body":
        mutated_body = data.draw(st.binary(max_size=300).filter(lambda candidate: candidate != raw), label="new body")
    elif part == "id":
        mutated_headers["webhook-id"] = data.draw(webhook_ids.filter(lambda new: new != webhook_id), label="new id")
    elif part == "timestamp":
        shift = data.draw(st.integers(min_value=-299, max_value=299).filter(bool), label="shift")
        mutated_headers["webhook-timestamp"] = str(now + shift)  # still fresh: only the signature can refuse it
    elif part == "signature":
        digest = base64.b64decode(headers["webhook-signature"].split(",", 1)[1])
        index, xor = data.draw(st.integers(0, 31), label="byte"), data.draw(st.integers(1, 255), label="xor")
        mutated_headers["webhook-signature"] = "v1," + base64.b64encode(flip_byte(digest, index, xor)).decode()
    elif part == "secret":
        mutated_secret = data.draw(secrets_.filter(lambda other: other != secret), label="other secret")
    else:
        digest = base64.b64decode(headers["webhook-signature"].split(",", 1)[1])
        cut = data.draw(st.integers(0, 31), label="kept bytes")
        mutated_headers["webhook-signature"] = "v1," + base64.b64encode(digest[:cut]).decode()

    # Then the mutated request does not verify
    assert not verifies(mutated_secret, mutated_headers, mutated_body, now)


@settings(max_examples=200, deadline=None)
@given(secret=secrets_, body=bodies, age=st.integers(min_value=301, max_value=10**9), future=st.booleans())
def test_a_correct_signature_outside_five_minutes_does_not_verify(
    secret: str, body: str, age: int, future: bool
) -> None:
    now = int(time.time())
    at = now + age if future else now - age
    assume(at > 0)
    assert not verifies(secret, signed(secret, "msg_1", body, at), body.encode(), now)


@settings(max_examples=300, deadline=None)
@given(
    webhook_id=st.text(max_size=60),
    timestamp=st.text(max_size=20),
    signature=st.text(max_size=200),
    body=st.binary(max_size=100),
)
def test_arbitrary_signature_headers_never_verify_and_never_crash(
    webhook_id: str, timestamp: str, signature: str, body: bytes
) -> None:
    secret = "whsec_" + base64.b64encode(b"k" * 32).decode()
    headers = {"webhook-id": webhook_id, "webhook-timestamp": timestamp, "webhook-signature": signature}
    assert not verifies(secret, headers, body, time.time())


MUTATIONS = ["body", "id", "timestamp", "signature"]


@settings(max_examples=24, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(part=st.sampled_from(MUTATIONS), parser_run_id=st.text("abcdef0123456789_", min_size=1, max_size=20))
def test_through_the_api_a_mutated_request_is_a_401_and_never_reaches_extend(
    stack: InProcessStack, signing: Signing, part: str, parser_run_id: str
) -> None:
    # Given a correctly signed bulk request, with one signed part changed afterwards
    body = json.dumps({"parserRunIds": [f"pr_{parser_run_id}"]})
    headers = signing.headers(body)
    if part == "body":
        body = json.dumps({"parserRunIds": [f"pr_{parser_run_id}x"]})
    elif part == "id":
        headers["webhook-id"] += "x"
    elif part == "timestamp":
        headers["webhook-timestamp"] = str(int(headers["webhook-timestamp"]) - 1)
    else:
        digest = base64.b64decode(headers["webhook-signature"].split(",", 1)[1])
        headers["webhook-signature"] = "v1," + base64.b64encode(flip_byte(digest, 0, 1)).decode()
    stack.extend.reset_stats()

    # When it reaches the API
    response = api_function.lambda_handler(
        rest_event("POST", "/deletions", body=body, headers=headers), LocalLambdaContext()
    )

    # Then it is refused as unauthenticated and nothing was queued or deleted
    assert response["statusCode"] == 401
    assert stack.extend.requests == []
    assert stack.sqs().receive_message(QueueUrl=stack.queues.queue_url, WaitTimeSeconds=0).get("Messages") is None
