"""Verifies API requests against the Standard Webhooks secret(s) kept in Secrets Manager.

The secret is cached like the Extend key. Its value may hold several secrets, so that a rotation can accept old
and new for a while. Two things make a warm container re-read it:

- the tenant's registry item names a newer secret version than the one cached (every rotation bumps it): so a
  rotation that revokes the old secret (``--overlap 0``) takes effect within the tenant cache's time;
- no signature matches: the secret is re-read once (at most every ``REFRESH_INTERVAL_S`` per container), so a new
  secret is picked up without letting unsigned traffic hammer Secrets Manager.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Final

from parser_run_deleter.logic.ports import SecretSource, SecretUnavailable
from parser_run_deleter.logic.webhook_signature import (
    SignatureRejected,
    SigningSecretUnavailable,
    matches,
    parse_headers,
    parse_signing_secrets,
)

REFRESH_INTERVAL_S: Final = 30.0


class WebhookVerifier:
    """Verifies requests against the secret(s) in one Secrets Manager secret, cached for ``max_age_s``."""

    def __init__(
        self,
        secret_id: str,
        secrets: SecretSource,
        *,
        refresh_interval_s: float = REFRESH_INTERVAL_S,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._secret_id = secret_id
        self._secrets = secrets
        self._refresh_interval_s = refresh_interval_s
        self._clock = clock
        self._monotonic = monotonic
        self._last_forced: float | None = None
        self._version_read: int | None = None
        self._lock = threading.Lock()

    def verify(self, headers: Mapping[str, str], body: bytes, *, secret_version: int = 0) -> str:
        """Return the verified ``webhook-id``, or raise ``SignatureRejected`` / ``SigningSecretUnavailable``.
        ``secret_version`` is the registry's: a version other than the one cached is read afresh first."""
        signed = parse_headers(headers, now=self._clock())
        if matches(signed, body, self._keys(force_fetch=self._is_new_version(secret_version))):
            return signed.webhook_id
        if self._may_force_fetch() and matches(signed, body, self._keys(force_fetch=True)):
            return signed.webhook_id
        raise SignatureRejected("no valid signature")

    def _is_new_version(self, secret_version: int) -> bool:
        """Whether the registry names a version newer than the one this container read (the first read is fresh
        anyway: nothing was cached before it)."""
        with self._lock:
            known, self._version_read = self._version_read, secret_version
        return known is not None and known != secret_version

    def _may_force_fetch(self) -> bool:
        with self._lock:
            now = self._monotonic()
            if self._last_forced is not None and now - self._last_forced < self._refresh_interval_s:
                return False
            self._last_forced = now
            return True

    def _keys(self, *, force_fetch: bool) -> tuple[bytes, ...]:
        try:
            raw = self._secrets.secret_string(self._secret_id, force_fetch=force_fetch)
        except SecretUnavailable as error:
            raise SigningSecretUnavailable(str(error)) from None
        return parse_signing_secrets(raw)


class Verifiers:
    """One verifier per secret per container, so its re-read throttle holds across warm invocations."""

    def __init__(self, secrets: SecretSource) -> None:
        self._secrets = secrets
        self._lock = threading.Lock()
        self._verifiers: dict[str, WebhookVerifier] = {}

    def for_secret(self, secret_id: str) -> WebhookVerifier:
        with self._lock:
            verifier = self._verifiers.get(secret_id)
            if verifier is None:
                verifier = self._verifiers[secret_id] = WebhookVerifier(secret_id, self._secrets)
            return verifier
