"""Who is calling: every API request is a tenant's, identified by its API key id (REST) or a JWT claim (HTTP API),
and proved by a Standard Webhooks signature made with that tenant's own secret. Or it is refused.

What is signed (signing contract v2) is ``"{METHOD} {route path}"``, followed for a request with a body by one line
feed and the body's exact bytes: ``DELETE /parser_runs/pr_123``, or ``POST /deletions\n{"parserRunIds": [...]}``.
So a signature binds the method, the route and the body together: it authorizes that one request and no other,
and any Standard Webhooks library can make one (with that string as the payload). The reasons for a refusal go to
the log and a metric, never to the caller.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

from parser_run_deleter.logic.signature_verifier import Verifiers
from parser_run_deleter.logic.tenants import RegistryUnavailable, Tenant, TenantDirectory
from parser_run_deleter.logic.webhook_signature import SignatureRejected, SigningSecretUnavailable


@dataclass(frozen=True, slots=True)
class CallerIdentity:
    """What the gateway says about the caller: its API key id (REST), or the tenant claim of its JWT (HTTP API)."""

    api_key_id: str | None = None
    tenant_claim: str | None = None


@dataclass(frozen=True, slots=True)
class AuthenticatedRequest:
    tenant: Tenant
    webhook_id: str
    # The request the signature authorizes: its method and route, and what was signed, hashed. The same webhook id
    # with another method, route or body is another request, never a replay.
    method: str
    route_path: str
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
    """The Secrets Manager name of a tenant's request-signing secrets: only the API function may read them."""
    return f"{prefix}/{tenant_id}/signing"


def callback_signing_secret_id(prefix: str, tenant_id: str) -> str:
    """The Secrets Manager name of the secrets that sign a tenant's completion callbacks: a key of their own, which
    only the callback function may read, so that no callback ever verifies as a request."""
    return f"{prefix}/{tenant_id}/callback-signing"


def signed_payload(method: str, route_path: str, body: bytes) -> bytes:
    """``"{METHOD} {route path}"``, and for a request with a body, a line feed and the body's bytes."""
    request_line = f"{method.upper()} {route_path}".encode()
    return request_line + b"\n" + body if body else request_line


class Authenticator:
    """Tenants from the registry (``tenants``), each request's signature checked against its tenant's secrets, read
    under ``secret_prefix`` (``verifiers``)."""

    def __init__(self, tenants: TenantDirectory, verifiers: Verifiers, secret_prefix: str) -> None:
        self.tenants = tenants
        self._verifiers = verifiers
        self._secret_prefix = secret_prefix

    def authenticate(
        self, identity: CallerIdentity, headers: Mapping[str, str], *, method: str, route_path: str, body: bytes
    ) -> AuthenticatedRequest:
        """The tenant behind the request, whose signature over the request (``signed_payload``) checks out; or one
        of the errors above."""
        try:
            if identity.api_key_id:
                tenant = self.tenants.by_api_key_id(identity.api_key_id)
            elif identity.tenant_claim:
                tenant = self.tenants.by_tenant_id(identity.tenant_claim)
            else:
                raise Forbidden("the request carries no API key id and no tenant claim")
        except RegistryUnavailable as error:
            raise AuthenticationUnavailable(str(error)) from None
        if tenant is None:
            raise Forbidden("no tenant has this API key id or tenant id")
        if not tenant.active:
            raise Forbidden(f"tenant {tenant.tenant_id!r} is disabled", tenant.tenant_id)
        verifier = self._verifiers.for_secret(signing_secret_id(self._secret_prefix, tenant.tenant_id))
        payload = signed_payload(method, route_path, body)
        try:
            webhook_id = verifier.verify(headers, payload, secret_version=tenant.secret_version)
        except SignatureRejected as error:
            raise NotAuthenticated(str(error), tenant.tenant_id) from None
        except SigningSecretUnavailable as error:
            raise AuthenticationUnavailable(str(error)) from None
        return AuthenticatedRequest(tenant, webhook_id, method.upper(), route_path, hashlib.sha256(payload).hexdigest())
