"""Adapter for Secrets Manager: secret strings through Powertools' parameters cache, with short timeouts.

Every secret the function reads (the Extend key, the webhook signing secret) goes through here, so they share
one provider, one boto3 client and one cache, and one ``reset()`` forgets them all.
"""

from __future__ import annotations

from typing import Final, cast

import boto3
from aws_lambda_powertools.utilities import parameters
from aws_lambda_powertools.utilities.parameters.constants import DEFAULT_PROVIDERS
from botocore.config import Config

# Short timeouts, one retry: a secret read is waited for only until the invocation's deadline, and a read left
# hanging must not keep the reader busy for botocore's default minutes.
_SECRETS_CLIENT_CONFIG: Final = Config(
    connect_timeout=2, read_timeout=3, retries={"max_attempts": 2, "mode": "standard"}
)


class SecretUnavailable(RuntimeError):
    """The secret could not be read, or is not a string. Never carries the secret's value."""


def _secrets_provider() -> parameters.SecretsProvider:
    """Powertools' shared secrets provider (the one ``get_secret`` uses), created with the client config above.

    It lives in Powertools' registry, so ``parameters.clear_caches()`` drops it like any other.
    """
    provider = DEFAULT_PROVIDERS.get("secrets")
    if provider is None:
        # A client of boto3's default session, which every client of the function shares: its service models are
        # loaded once per container, where a provider's own session would load them again (tens of ms, cold).
        client = boto3.client("secretsmanager", config=_SECRETS_CLIENT_CONFIG)
        provider = DEFAULT_PROVIDERS.setdefault("secrets", parameters.SecretsProvider(boto3_client=client))
    return cast(parameters.SecretsProvider, provider)


def fetch_secret_string(secret_id: str, *, max_age_s: int, force_fetch: bool = False) -> str:
    """A secret's string through Powertools' cache. Errors are reduced to their type: no value leaks."""
    try:
        value = _secrets_provider().get(secret_id, max_age=max_age_s, force_fetch=force_fetch)
    except Exception as error:  # Powertools wraps boto3 errors; the message may quote the request
        raise SecretUnavailable(f"cannot read secret {secret_id!r}: {type(error).__name__}") from None
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError:  # its message quotes the bytes around the fault
            raise SecretUnavailable(f"secret {secret_id!r} is not UTF-8 text") from None
    if not isinstance(value, str):
        raise SecretUnavailable(f"secret {secret_id!r} is not a string")
    return value


def reset() -> None:
    """Drop every cached secret value and the providers' boto3 clients."""
    parameters.clear_caches()  # type: ignore[no-untyped-call]  # Powertools leaves it unannotated
