"""Standard Webhooks signatures (standardwebhooks.com): the one implementation of the format in this repository.

A signed request carries ``webhook-id``, ``webhook-timestamp`` (Unix seconds) and ``webhook-signature``: one or
more space-separated ``v1,<base64 HMAC-SHA256>`` of ``{id}.{timestamp}.{raw body}``, keyed with the bytes of a
``whsec_``-prefixed base64 secret. Header names are matched case-insensitively, the timestamp must be within
five minutes of now either way, and every comparison is constant-time.

The function verifies with it (``signature_verifier``); the local stack and the tests sign with it
(``signature_headers``). Pure: no I/O.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

SECRET_PREFIX: Final = "whsec_"  # noqa: S105 - a prefix, not a secret
SIGNATURE_VERSION: Final = "v1"
TOLERANCE_S: Final = 300
HEADER_ID: Final = "webhook-id"
HEADER_TIMESTAMP: Final = "webhook-timestamp"
HEADER_SIGNATURE: Final = "webhook-signature"
# Bounds on what is parsed from headers: a signature header is at most a handful of signatures.
MAX_SIGNATURES: Final = 8
MAX_HEADER_LENGTH: Final = 1024


class SignatureRejected(Exception):
    """The request is not signed by a current secret. The message is safe to return to the caller."""


class SigningSecretUnavailable(RuntimeError):
    """The signing secret cannot be read or parsed. Carries no secret material."""


@dataclass(frozen=True, slots=True)
class SignedHeaders:
    webhook_id: str
    timestamp: int
    signatures: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class SigningSecret:
    """One ``whsec_`` secret and, during a rotation, the moment (Unix seconds) after which it no longer verifies."""

    secret: str
    not_after: int | None = None


def _key_of(token: str) -> bytes:
    encoded = token.removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise SigningSecretUnavailable("the webhook signing secret is not whsec_-prefixed base64") from None
    if not key:
        raise SigningSecretUnavailable("the webhook signing secret is empty")
    return key


def signing_secrets(raw: str) -> tuple[SigningSecret, ...]:
    """A secret's value: JSON ``{"secrets": [{"secret": "whsec_...", "notAfter": 1767225600}, ...]}``, or one or
    more space-separated ``whsec_<base64>`` (the prefix is optional), which never expire."""
    text = raw.strip()
    if not text.startswith("{"):
        return tuple(SigningSecret(token) for token in text.split())
    try:
        document = json.loads(text)
    except ValueError:
        raise SigningSecretUnavailable("the webhook signing secret looks like JSON but does not parse") from None
    entries = document.get("secrets") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise SigningSecretUnavailable("the webhook signing secret's JSON has no 'secrets' list")
    found: list[SigningSecret] = []
    for entry in entries:
        secret = entry.get("secret") if isinstance(entry, dict) else None
        not_after = entry.get("notAfter") if isinstance(entry, dict) else None
        if not isinstance(secret, str) or not (not_after is None or isinstance(not_after, int)):
            raise SigningSecretUnavailable("each of the webhook signing secret's entries needs a string 'secret'")
        found.append(SigningSecret(secret, not_after))
    return tuple(found)


def parse_signing_secrets(raw: str, *, now: float | None = None) -> tuple[bytes, ...]:
    """The keys of the secrets in ``raw`` that still verify at ``now`` (Unix seconds; default: the clock)."""
    moment = time.time() if now is None else now
    keys = [
        _key_of(entry.secret) for entry in signing_secrets(raw) if entry.not_after is None or moment < entry.not_after
    ]
    if not keys:
        raise SigningSecretUnavailable("the webhook signing secret is empty")
    return tuple(keys)


def signing_secret_value(secrets_: tuple[SigningSecret, ...]) -> str:
    """The JSON value ``signing_secrets`` reads, for the secret in Secrets Manager."""
    entries = [
        {"secret": entry.secret, **({"notAfter": entry.not_after} if entry.not_after is not None else {})}
        for entry in secrets_
    ]
    return json.dumps({"secrets": entries}, separators=(",", ":"))


def rotated(raw: str, new_secret: str, *, overlap_s: int, now: int) -> str:
    """The value after a rotation: the new secret first; the current one verifies for ``overlap_s`` more seconds;
    older ones, and any already expired, are dropped. At most two secrets are ever valid."""
    current = [entry for entry in signing_secrets(raw) if entry.not_after is None or now < entry.not_after]
    keep = [SigningSecret(current[0].secret, now + overlap_s)] if current and overlap_s > 0 else []
    return signing_secret_value((SigningSecret(new_secret), *keep))


def sign(key: bytes, webhook_id: str, timestamp: int, body: bytes) -> str:
    """The ``v1,<base64>`` signature of one message under one key."""
    digest = hmac.new(key, _signed_content(webhook_id, timestamp, body), hashlib.sha256).digest()
    return f"{SIGNATURE_VERSION},{base64.b64encode(digest).decode('ascii')}"


def _signed_content(webhook_id: str, timestamp: int, body: bytes) -> bytes:
    return f"{webhook_id}.{timestamp}.".encode() + body


def parse_headers(headers: Mapping[str, str], *, now: float, tolerance_s: int = TOLERANCE_S) -> SignedHeaders:
    """The three headers, looked up case-insensitively, with the timestamp checked against ``now``."""
    lowered = {name.lower(): value for name, value in headers.items() if isinstance(value, str)}
    webhook_id = lowered.get(HEADER_ID, "").strip()
    raw_timestamp = lowered.get(HEADER_TIMESTAMP, "").strip()
    raw_signatures = lowered.get(HEADER_SIGNATURE, "").strip()
    missing = [
        name
        for name, value in (
            (HEADER_ID, webhook_id),
            (HEADER_TIMESTAMP, raw_timestamp),
            (HEADER_SIGNATURE, raw_signatures),
        )
        if not value
    ]
    if missing:
        raise SignatureRejected(f"missing signature header(s): {', '.join(missing)}")
    if len(webhook_id) > MAX_HEADER_LENGTH or len(raw_signatures) > MAX_HEADER_LENGTH:
        raise SignatureRejected("signature headers are too long")
    if not (raw_timestamp.isascii() and raw_timestamp.isdigit() and len(raw_timestamp) <= 12):
        raise SignatureRejected("webhook-timestamp must be whole Unix seconds")
    timestamp = int(raw_timestamp)
    if timestamp < now - tolerance_s:
        raise SignatureRejected("webhook-timestamp is too old (more than 5 minutes)")
    if timestamp > now + tolerance_s:
        raise SignatureRejected("webhook-timestamp is too far in the future (more than 5 minutes)")
    signatures: list[bytes] = []
    for token in raw_signatures.split()[:MAX_SIGNATURES]:
        version, _, encoded = token.partition(",")
        if version != SIGNATURE_VERSION or not encoded:
            continue  # other schemes (e.g. v1a) are not ours to check
        try:
            signatures.append(base64.b64decode(encoded, validate=True))
        except (binascii.Error, ValueError):
            continue
    if not signatures:
        raise SignatureRejected("webhook-signature holds no v1 signature")
    return SignedHeaders(webhook_id, timestamp, tuple(signatures))


def matches(signed: SignedHeaders, body: bytes, keys: Sequence[bytes]) -> bool:
    """Whether any given signature is the HMAC of the message under any key; every comparison constant-time."""
    content = _signed_content(signed.webhook_id, signed.timestamp, body)
    found = False
    for key in keys:
        expected = hmac.new(key, content, hashlib.sha256).digest()
        for candidate in signed.signatures:
            # No early exit: the time taken does not depend on which signature matched.
            found |= hmac.compare_digest(expected, candidate)
    return found


def new_signing_secret() -> str:
    """A fresh ``whsec_`` secret: 24 random bytes, base64-encoded, as Standard Webhooks libraries make them."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(24)).decode("ascii")


def signature_headers(
    secret: str, body: bytes, *, webhook_id: str | None = None, timestamp: int | None = None
) -> dict[str, str]:
    """The three headers that sign ``body`` with ``secret`` (``whsec_...``), as any Standard Webhooks sender does."""
    webhook_id = webhook_id or f"msg_{secrets.token_hex(12)}"
    timestamp = int(time.time()) if timestamp is None else timestamp
    key = _key_of(secret)
    return {
        HEADER_ID: webhook_id,
        HEADER_TIMESTAMP: str(timestamp),
        HEADER_SIGNATURE: sign(key, webhook_id, timestamp, body),
    }
