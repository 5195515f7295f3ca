"""Adapter for Secrets Manager (``logic.ports.SecretSource``): secret strings through Powertools' parameters cache.

Every secret a function reads (the Extend key, the tenants' signing secrets) goes through Powertools' shared
secrets provider, the one ``parameters.get_secret`` uses, built once with the container's client: so they share one
cache, and ``parameters.clear_caches()`` forgets them all.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, cast

from aws_lambda_powertools.utilities import parameters
from aws_lambda_powertools.utilities.parameters.constants import DEFAULT_PROVIDERS

from parser_run_deleter.logic.ports import SecretUnavailable

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager.client import SecretsManagerClient


class SecretsManagerSource:
    """Secret strings, cached for ``max_age_s``. ``client`` makes (or returns) the container's client."""

    def __init__(self, client: Callable[[], SecretsManagerClient], *, max_age_s: int) -> None:
        self._client = client
        self.max_age_s = max_age_s

    def _provider(self) -> parameters.SecretsProvider:
        provider = DEFAULT_PROVIDERS.get("secrets")
        if provider is None:
            provider = DEFAULT_PROVIDERS.setdefault("secrets", parameters.SecretsProvider(boto3_client=self._client()))
        return cast(parameters.SecretsProvider, provider)

    def secret_string(self, secret_id: str, *, force_fetch: bool = False) -> str:
        """A secret's string through Powertools' cache. Errors are reduced to their type: no value leaks."""
        try:
            value = self._provider().get(secret_id, max_age=self.max_age_s, force_fetch=force_fetch)
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

    @staticmethod
    def reset() -> None:
        """Drop every cached secret value and the providers' clients."""
        parameters.clear_caches()  # type: ignore[no-untyped-call]  # Powertools leaves it unannotated
