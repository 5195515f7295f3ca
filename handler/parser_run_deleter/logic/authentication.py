"""Who is calling: every API request is a tenant's, identified by its API key id (REST) or a JWT claim (HTTP API),
and proved by a Standard Webhooks signature made with that tenant's own secret. Or it is refused.

What is signed is the body's exact bytes, or, for a request without a body, ``"{METHOD} {route path}"`` (for
example ``DELETE /parser_runs/pr_123``): so a signature binds the id it authorizes, and any Standard Webhooks
library can make one. The reasons for a refusal go to the log and a metric, never to the caller.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

from parser_run_deleter.logic.signature_verifier import verifier_for
from parser_run_deleter.logic.tenants import RegistryUnavailable, Tenant, tenant_directory
from parser_run_deleter.logic.webhook_signature import SignatureRejected, SigningSecretUnavailable
from parser_run_deleter.shared.settings import ConfigurationError, Settings


@dataclass(frozen=True, slots=True)
class CallerIdentity:
    """What the gateway says about the caller: its API key id (REST), or the tenant claim of its JWT (HTTP API)."""

    api_key_id: str | None = None
    tenant_claim: str | None = None


@dataclass(frozen=True, slots=True)
class AuthenticatedRequest:
    tenant: Tenant
    webhook_id: str
    # What was signed, hashed: the same webhook id with another payload is another request, never a replay.
    payload_sha256: str


class _Refused(Exception):
    def __init__(self, reason: str, tenant_id: str | None = None) -> None:
        super().__init__(reason)
        # The tenant the caller's key or claim names, when there is one: for the log, never for the caller.
        self.tenant_id = tenant_id


class Forbidden(_Refused):
    """No tenant for this caller, or a disabled one (403). The message is for the log."""


class NotAuthenticated(_Refused):
    """The signature is missing, malformed, stale or wrong (401). The message is for the log."""


class AuthenticationUnavailable(RuntimeError):
    """The registry or a signing secret cannot be read: the caller cannot be checked now (503)."""


def signing_secret_id(prefix: str, tenant_id: str) -> str:
    """The Secrets Manager name of a tenant's signing secrets, under the prefix the API function may read."""
    return f"{prefix}/{tenant_id}/signing"


def signed_payload(method: str, route_path: str, body: bytes) -> bytes:
    """The body's bytes; for a request without one, ``"{METHOD} {route path}"``."""
    return body if body else f"{method.upper()} {route_path}".encode()


def authenticate(
    identity: CallerIdentity, headers: Mapping[str, str], payload: bytes, settings: Settings
) -> AuthenticatedRequest:
    """The tenant behind the request, whose signature over ``payload`` checks out; or one of the errors above."""
    if settings.tenants_table_name is None or settings.tenant_secret_prefix is None:
        raise ConfigurationError("TENANTS_TABLE_NAME and TENANT_SECRET_PREFIX are required to authenticate callers")
    directory = tenant_directory(settings.tenants_table_name, settings.tenant_cache_s)
    try:
        if identity.api_key_id:
            tenant = directory.by_api_key_id(identity.api_key_id)
        elif identity.tenant_claim:
            tenant = directory.by_tenant_id(identity.tenant_claim)
        else:
            raise Forbidden("the request carries no API key id and no tenant claim")
    except RegistryUnavailable as error:
        raise AuthenticationUnavailable(str(error)) from None
    if tenant is None:
        raise Forbidden("no tenant has this API key id or tenant id")
    if not tenant.active:
        raise Forbidden(f"tenant {tenant.tenant_id!r} is disabled", tenant.tenant_id)
    secret_id = signing_secret_id(settings.tenant_secret_prefix, tenant.tenant_id)
    verifier = verifier_for(secret_id, settings.secret_max_age_s)
    try:
        webhook_id = verifier.verify(headers, payload)
    except SignatureRejected as error:
        raise NotAuthenticated(str(error), tenant.tenant_id) from None
    except SigningSecretUnavailable as error:
        raise AuthenticationUnavailable(str(error)) from None
    return AuthenticatedRequest(tenant, webhook_id, hashlib.sha256(payload).hexdigest())
