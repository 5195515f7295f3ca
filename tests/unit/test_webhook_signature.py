"""webhook_signature on its own: secret parsing, header parsing bounds, and agreement with standardwebhooks."""

from __future__ import annotations

import base64
import time
from datetime import UTC, datetime

import pytest
import standardwebhooks

from parser_run_deleter.logic import signature_verifier
from parser_run_deleter.logic.webhook_signature import (
    SignatureRejected,
    SigningSecret,
    SigningSecretUnavailable,
    matches,
    parse_headers,
    parse_signing_secrets,
    rotated,
    sign,
    signature_headers,
    signing_secret_value,
    signing_secrets,
)

KEY = b"0123456789abcdef0123456789abcdef"
SECRET = "whsec_" + base64.b64encode(KEY).decode()


def test_our_signature_is_the_one_standardwebhooks_makes() -> None:
    # Given a message signed by the reference library
    at = datetime(2026, 1, 1, tzinfo=UTC)
    expected = standardwebhooks.Webhook(SECRET).sign("msg_1", at, '{"a": 1}')
    # Then our signer agrees, byte for byte
    assert sign(KEY, "msg_1", int(at.timestamp()), b'{"a": 1}') == expected


def test_the_headers_a_client_signs_with_are_what_standardwebhooks_verifies() -> None:
    # Given the three headers the operator CLI's smoke test signs a request with, a minute ago
    at = int(time.time()) - 60
    headers = signature_headers(SECRET, b'{"a": 1}', webhook_id="msg_smoke", timestamp=at)
    # Then they name the message and the time, and the reference library accepts them for that body
    assert (headers["webhook-id"], headers["webhook-timestamp"]) == ("msg_smoke", str(at))
    assert standardwebhooks.Webhook(SECRET).verify('{"a": 1}', headers) == {"a": 1}


OLD = "whsec_" + base64.b64encode(b"old-key-old-key-old-key-old-key!").decode()
NEW = "whsec_" + base64.b64encode(b"new-key-new-key-new-key-new-key!").decode()


def test_a_rotation_keeps_the_current_secret_for_exactly_the_overlap() -> None:
    after_one_second = signing_secrets(rotated(OLD, NEW, overlap_s=1, now=1_000))
    assert [(entry.secret, entry.not_after) for entry in after_one_second] == [(NEW, None), (OLD, 1_001)]
    assert [entry.secret for entry in signing_secrets(rotated(OLD, NEW, overlap_s=0, now=1_000))] == [NEW]


def test_a_secret_whose_time_is_up_is_never_extended_by_a_rotation() -> None:
    # Given a value whose only secret verifies until t=1,001, rotated at exactly t=1,001
    expiring = signing_secret_value((SigningSecret(OLD, 1_001),))
    # Then the old secret's time is over: it is dropped, not kept for another overlap
    assert [entry.secret for entry in signing_secrets(rotated(expiring, NEW, overlap_s=5, now=1_001))] == [NEW]


def test_unnamed_headers_get_a_fresh_message_id_and_the_current_time() -> None:
    before = int(time.time())
    first, second = signature_headers(SECRET, b"{}"), signature_headers(SECRET, b"{}")
    assert first["webhook-id"].startswith("msg_") and first["webhook-id"] != second["webhook-id"]
    assert before <= int(first["webhook-timestamp"]) <= int(time.time())
    assert standardwebhooks.Webhook(SECRET).verify("{}", first) == {}


def test_secrets_may_be_several_with_or_without_prefix_and_padding() -> None:
    unpadded = base64.b64encode(b"k2").decode().rstrip("=")
    assert parse_signing_secrets(f" {SECRET}\n{unpadded} ") == (KEY, b"k2")


@pytest.mark.parametrize("raw", ["", "   ", "whsec_", "whsec_not*base64", "whsec_abc def!"])
def test_an_unusable_secret_is_refused_without_echoing_it(raw: str) -> None:
    with pytest.raises(SigningSecretUnavailable) as caught:
        parse_signing_secrets(raw)
    assert "base64" in str(caught.value) or "empty" in str(caught.value)
    assert "*" not in str(caught.value)


def _headers(**overrides: str) -> dict[str, str]:
    headers = {"webhook-id": "msg_1", "webhook-timestamp": "1000", "webhook-signature": sign(KEY, "msg_1", 1000, b"x")}
    headers.update(overrides)
    return headers


def test_oversized_headers_are_refused_before_any_hmac() -> None:
    with pytest.raises(SignatureRejected, match="too long"):
        parse_headers(_headers(**{"webhook-id": "m" * 2000}), now=1000)


def test_signatures_beyond_the_first_eight_are_ignored() -> None:
    valid = sign(KEY, "msg_1", 1000, b"x")
    decoys = " ".join(sign(b"other", "msg_1", 1000, b"x") for _ in range(8))
    signed = parse_headers(_headers(**{"webhook-signature": f"{decoys} {valid}"}), now=1000)
    assert not matches(signed, b"x", [KEY])
    signed = parse_headers(_headers(**{"webhook-signature": f"{valid} {decoys}"}), now=1000)
    assert matches(signed, b"x", [KEY])


def test_the_tolerance_is_five_minutes_inclusive() -> None:
    assert parse_headers(_headers(), now=1300).timestamp == 1000
    assert parse_headers(_headers(), now=700).timestamp == 1000
    with pytest.raises(SignatureRejected, match="too old"):
        parse_headers(_headers(), now=1301)
    with pytest.raises(SignatureRejected, match="future"):
        parse_headers(_headers(), now=699)


class CountingSecrets:
    """A ``SecretSource`` that counts the reads that pass its cache (``force_fetch``)."""

    def __init__(self) -> None:
        self.reads: list[bool] = []

    def secret_string(self, secret_id: str, *, force_fetch: bool = False) -> str:
        self.reads.append(force_fetch)
        return SECRET


def test_a_mismatch_rereads_the_secret_at_most_once_per_interval() -> None:
    # Given a verifier whose secret store counts reads, and a clock we move by hand
    secrets = CountingSecrets()
    reads = secrets.reads
    now = [1000.0]
    verifier = signature_verifier.WebhookVerifier(
        "signing-secret", secrets, refresh_interval_s=30, monotonic=lambda: now[0]
    )
    forged = {"webhook-id": "msg_1", "webhook-timestamp": str(int(time.time())), "webhook-signature": "v1,AAAA"}

    # When bad signatures arrive in a burst, then only the first forces a re-read of the secret
    for _ in range(5):
        with pytest.raises(SignatureRejected):
            verifier.verify(forged, b"{}")
    assert reads.count(True) == 1
    # and once the interval has passed, the next mismatch may force one more
    now[0] += 30
    with pytest.raises(SignatureRejected):
        verifier.verify(forged, b"{}")
    assert reads.count(True) == 2
