"""The Extend API key, read from Secrets Manager once per container and refreshed on rotation."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass

from aws_lambda_powertools.utilities import parameters


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


def fetch_secret_string(secret_id: str, *, max_age_s: int, force_fetch: bool = False) -> str:
    """A secret's string through Powertools' cache. Errors are reduced to their type: no value leaks."""
    try:
        value = parameters.get_secret(secret_id, max_age=max_age_s, force_fetch=force_fetch)
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
    """Credentials from one secret: cached by Powertools for ``max_age_s``, re-read at once after a 401."""

    def __init__(self, secret_id: str, *, max_age_s: int) -> None:
        self._secret_id = secret_id
        self._max_age_s = max_age_s
        self._refresh_lock = threading.Lock()

    def current(self) -> ApiCredentials:
        return load_api_credentials(self._secret_id, max_age_s=self._max_age_s)

    def refresh(self, stale: ApiCredentials) -> ApiCredentials:
        """Force a re-read, unless another thread already replaced ``stale``: one fetch per rotation."""
        with self._refresh_lock:
            current = self.current()
            if current != stale:
                return current
            return load_api_credentials(self._secret_id, max_age_s=self._max_age_s, force_fetch=True)
