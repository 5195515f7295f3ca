"""The Extend API key, read from Secrets Manager once per container and refreshed on rotation."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Final

from parser_run_deleter.logic.extend_results import CredentialsError
from parser_run_deleter.logic.ports import SecretSource, SecretUnavailable
from parser_run_deleter.shared.parser_run_ids import is_valid_workspace_id
from parser_run_deleter.shared.time_budget import Deadline

__all__ = ["CredentialsError", "ExtendCredentials", "SecretCredentialsProvider", "parse_secret_value"]


@dataclass(frozen=True, slots=True)
class ExtendCredentials:
    api_key: str
    workspace_id: str | None = None

    def __repr__(self) -> str:  # keeps the key out of any accidental log or traceback
        return f"ExtendCredentials(api_key=<redacted>, workspace_id={self.workspace_id!r})"

    __str__ = __repr__


# Extend keys are short printable tokens (``sk_...``). Anything else is a pasting accident, and sending it would put
# the value into an exception message: http.client quotes a header value it refuses.
MAX_API_KEY_LENGTH: Final = 256


def _checked_key(api_key: str) -> str:
    if not api_key:
        raise CredentialsError("the Extend API key is empty")
    if len(api_key) > MAX_API_KEY_LENGTH:
        raise CredentialsError(f"the Extend API key is longer than {MAX_API_KEY_LENGTH} characters")
    if not all("!" <= character <= "~" for character in api_key):
        raise CredentialsError(
            "the Extend API key must be printable ASCII without spaces or line breaks (is it pasted twice?)"
        )
    return api_key


def parse_secret_value(raw: str) -> ExtendCredentials:
    """Accept either the bare key or JSON ``{"apiKey": "...", "workspaceId": "..."}``.

    Errors say what is wrong with the value, never what it is.
    """
    text = raw.strip()
    if text.startswith("{"):
        try:
            document = json.loads(text)
        except json.JSONDecodeError:
            raise CredentialsError("the Extend API key secret looks like JSON but does not parse") from None
        api_key = document.get("apiKey") if isinstance(document, dict) else None
        workspace_id = document.get("workspaceId") if isinstance(document, dict) else None
        if not isinstance(api_key, str) or not api_key.strip():
            raise CredentialsError("the Extend API key secret's JSON has no string 'apiKey'")
        if workspace_id is not None and not isinstance(workspace_id, str):
            raise CredentialsError("the Extend API key secret's 'workspaceId' must be a string")
        if workspace_id and not is_valid_workspace_id(workspace_id):
            raise CredentialsError(
                "the Extend API key secret's 'workspaceId' may contain only letters, digits, '_' and '-'"
            )
        return ExtendCredentials(api_key=_checked_key(api_key.strip()), workspace_id=workspace_id or None)
    if not text:
        raise CredentialsError("the Extend API key secret is empty")
    return ExtendCredentials(api_key=_checked_key(text))


def load_extend_credentials(secrets: SecretSource, secret_id: str, *, force_fetch: bool = False) -> ExtendCredentials:
    """The credentials in ``secret_id``; a ``CredentialsError`` names the secret, never its value."""
    try:
        raw = secrets.secret_string(secret_id, force_fetch=force_fetch)
    except SecretUnavailable as error:
        raise CredentialsError(str(error)) from None
    try:
        return parse_secret_value(raw)
    except CredentialsError as error:
        raise CredentialsError(f"secret {secret_id!r} is unusable: {error}") from None


class SecretCredentialsProvider:
    """Credentials from one secret: read through Powertools for ``max_age_s``, re-read at once after a 401.

    Reads run on one background thread: concurrent callers (a batch's workers) share the read in flight instead
    of each fetching, and each waits only until its own deadline, so a hanging Secrets Manager cannot hold an
    invocation past it. Between reads, the parsed credentials are served from memory without a thread hop.
    """

    def __init__(self, secrets: SecretSource, secret_id: str, *, max_age_s: int) -> None:
        self._secrets = secrets
        self._secret_id = secret_id
        self._max_age_s = max_age_s
        self._lock = threading.Lock()
        self._reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="secret-read")
        self._in_flight: Future[ExtendCredentials] | None = None
        self._in_flight_forced = False
        self._cached: tuple[ExtendCredentials, float] | None = None  # and when it was read (monotonic)

    def current(self, deadline: Deadline) -> ExtendCredentials:
        cached = self._cached
        if cached is not None and time.monotonic() - cached[1] < self._max_age_s:
            return cached[0]
        return self._read(deadline, force_fetch=False)

    def refresh(self, stale: ExtendCredentials, deadline: Deadline) -> ExtendCredentials:
        """Force a re-read, unless another thread already replaced ``stale``: one fetch per rotation."""
        cached = self._cached
        if cached is not None and cached[0] != stale:
            return cached[0]
        return self._read(deadline, force_fetch=True)

    def _read(self, deadline: Deadline, *, force_fetch: bool) -> ExtendCredentials:
        with self._lock:
            in_flight = self._in_flight
            if in_flight is None or in_flight.done() or (force_fetch and not self._in_flight_forced):
                in_flight = self._reader.submit(self._load, force_fetch)
                self._in_flight, self._in_flight_forced = in_flight, force_fetch
        try:
            return in_flight.result(timeout=max(0.0, deadline.remaining()))
        except FutureTimeout:
            raise CredentialsError(f"secret {self._secret_id!r} was not read before the deadline") from None

    def _load(self, force_fetch: bool) -> ExtendCredentials:
        credentials = load_extend_credentials(self._secrets, self._secret_id, force_fetch=force_fetch)
        self._cached = (credentials, time.monotonic())
        return credentials
