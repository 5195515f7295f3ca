"""The Extend API key, read from Secrets Manager once per container and refreshed on rotation."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Final, cast

from aws_lambda_powertools.utilities import parameters
from aws_lambda_powertools.utilities.parameters.constants import DEFAULT_PROVIDERS
from botocore.config import Config

from deadline import Deadline


class CredentialsError(RuntimeError):
    """The secret could not be read or holds no usable key. Never carries the secret's value."""


@dataclass(frozen=True, slots=True)
class ApiCredentials:
    api_key: str
    workspace_id: str | None = None

    def __repr__(self) -> str:  # keeps the key out of any accidental log or traceback
        return f"ApiCredentials(api_key=<redacted>, workspace_id={self.workspace_id!r})"

    __str__ = __repr__


def parse_secret_value(raw: str) -> ApiCredentials:
    """Accept either the bare key or JSON ``{"apiKey": "...", "workspaceId": "..."}``."""
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
        return ApiCredentials(api_key=api_key.strip(), workspace_id=workspace_id or None)
    if not text:
        raise CredentialsError("the Extend API key secret is empty")
    return ApiCredentials(api_key=text)


# Short timeouts, one retry: a secret read is waited for only until the invocation's deadline, and a read left
# hanging must not keep the reader busy for botocore's default minutes.
_SECRETS_CLIENT_CONFIG: Final = Config(
    connect_timeout=2, read_timeout=3, retries={"max_attempts": 2, "mode": "standard"}
)


def _secrets_provider() -> parameters.SecretsProvider:
    """Powertools' shared secrets provider (the one ``get_secret`` uses), created with the client config above.

    It lives in Powertools' registry, so ``parameters.clear_caches()`` drops it like any other.
    """
    provider = DEFAULT_PROVIDERS.get("secrets")
    if provider is None:
        provider = DEFAULT_PROVIDERS.setdefault(
            "secrets", parameters.SecretsProvider(boto_config=_SECRETS_CLIENT_CONFIG)
        )
    return cast(parameters.SecretsProvider, provider)


def fetch_secret_string(secret_id: str, *, max_age_s: int, force_fetch: bool = False) -> str:
    """A secret's string through Powertools' cache. Errors are reduced to their type: no value leaks."""
    try:
        value = _secrets_provider().get(secret_id, max_age=max_age_s, force_fetch=force_fetch)
    except Exception as error:  # Powertools wraps boto3 errors; the message may quote the request
        raise CredentialsError(f"cannot read secret {secret_id!r}: {type(error).__name__}") from None
    if isinstance(value, bytes):
        value = value.decode("utf-8")
    if not isinstance(value, str):
        raise CredentialsError(f"secret {secret_id!r} is not a string")
    return value


def load_api_credentials(secret_id: str, *, max_age_s: int, force_fetch: bool = False) -> ApiCredentials:
    return parse_secret_value(fetch_secret_string(secret_id, max_age_s=max_age_s, force_fetch=force_fetch))


class SecretCredentialsProvider:
    """Credentials from one secret: read through Powertools for ``max_age_s``, re-read at once after a 401.

    Reads run on one background thread: concurrent callers (a batch's workers) share the read in flight instead
    of each fetching, and each waits only until its own deadline, so a hanging Secrets Manager cannot hold an
    invocation past it. Between reads, the parsed credentials are served from memory without a thread hop.
    """

    def __init__(self, secret_id: str, *, max_age_s: int) -> None:
        self._secret_id = secret_id
        self._max_age_s = max_age_s
        self._lock = threading.Lock()
        self._reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="secret-read")
        self._in_flight: Future[ApiCredentials] | None = None
        self._in_flight_forced = False
        self._cached: tuple[ApiCredentials, float] | None = None  # and when it was read (monotonic)

    def current(self, deadline: Deadline) -> ApiCredentials:
        cached = self._cached
        if cached is not None and time.monotonic() - cached[1] < self._max_age_s:
            return cached[0]
        return self._read(deadline, force_fetch=False)

    def refresh(self, stale: ApiCredentials, deadline: Deadline) -> ApiCredentials:
        """Force a re-read, unless another thread already replaced ``stale``: one fetch per rotation."""
        cached = self._cached
        if cached is not None and cached[0] != stale:
            return cached[0]
        return self._read(deadline, force_fetch=True)

    def _read(self, deadline: Deadline, *, force_fetch: bool) -> ApiCredentials:
        with self._lock:
            in_flight = self._in_flight
            if in_flight is None or in_flight.done() or (force_fetch and not self._in_flight_forced):
                in_flight = self._reader.submit(self._load, force_fetch)
                self._in_flight, self._in_flight_forced = in_flight, force_fetch
        try:
            return in_flight.result(timeout=max(0.0, deadline.remaining()))
        except FutureTimeout:
            raise CredentialsError(f"secret {self._secret_id!r} was not read before the deadline") from None

    def _load(self, force_fetch: bool) -> ApiCredentials:
        credentials = load_api_credentials(self._secret_id, max_age_s=self._max_age_s, force_fetch=force_fetch)
        self._cached = (credentials, time.monotonic())
        return credentials
