"""Tenants: the downstream customers who call the API, each deleting only its own parser runs.

A tenant has a status (active or disabled), the API Gateway key ids that identify it, one explicit ownership
policy (which runs are its own), and limits. The registry holds them (``adapters.tenant_table``); the directory
below reads it through a short cache, so that a disabled tenant is locked out within ``TENANT_CACHE_SECONDS``.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Any, Final
from urllib.parse import urlsplit

from parser_run_deleter.logic.ports import TenantRecords
from parser_run_deleter.shared.parser_run_ids import is_valid_tenant_id, is_valid_workspace_id
from parser_run_deleter.shared.settings import is_loopback_host

# A metadata key names one field of a run's custom metadata.
_METADATA_KEY: Final = re.compile(r"[A-Za-z0-9_.:-]{1,128}")


class TenantStatus(StrEnum):
    ACTIVE = "active"
    DISABLED = "disabled"


class Ownership(StrEnum):
    """Which parser runs a tenant may delete.

    - ``workspace``: the runs of its Extend workspace. Every call for it names that workspace, with an
      organization-scoped key, so Extend itself refuses the runs of other workspaces.
    - ``metadata``: runs whose custom metadata (API 2026-02-09) names it under ``metadata_key``. The run is read
      first; one it does not own is answered exactly as a missing one, and never deleted.
    - ``unrestricted``: any run: the company's own back office. Logged as such on every outcome.
    """

    WORKSPACE = "workspace"
    METADATA = "metadata"
    UNRESTRICTED = "unrestricted"


class InvalidTenant(ValueError):
    """A tenant's definition breaks a rule; the message says which. Safe to show an operator."""


class RegistryUnavailable(RuntimeError):
    """The registry could not be read: the caller cannot be authenticated now (503, or the message retried)."""


# A year: the longest any privacy law this service is built for gives (most give 30 or 45 days).
MAX_DEADLINE_DAYS: Final = 365


@dataclass(frozen=True, slots=True)
class TenantLimits:
    """The tenant's share of capacity: its usage plan (rate, burst, daily quota)."""

    rate_limit: float = 1.0
    burst_limit: int = 2
    daily_quota: int = 10_000
    # Runs the tenant may have queued and not yet settled, across all its requests: kept in the ledger.
    max_outstanding: int = 10_000
    # Days within which each of the tenant's deletion requests is due (its ``dueBy``): the tenant's own deadline.
    deadline_days: int = 30


@dataclass(frozen=True, slots=True)
class Tenant:
    tenant_id: str
    ownership: Ownership
    status: TenantStatus = TenantStatus.ACTIVE
    api_key_ids: tuple[str, ...] = ()
    workspace_id: str | None = None
    metadata_key: str | None = None
    limits: TenantLimits = field(default_factory=TenantLimits)
    usage_plan_id: str | None = None
    # Where the tenant is told that a deletion request has completed (a signed POST), if anywhere.
    callback_url: str | None = None
    # Bumped by every rotation of the tenant's request-signing (or callback-signing) secret: a container whose
    # cached secret is older reads it again, so a revoked secret stops working within the tenant cache's time.
    secret_version: int = 0
    callback_secret_version: int = 0

    @property
    def active(self) -> bool:
        return self.status is TenantStatus.ACTIVE

    def to_values(self) -> dict[str, Any]:
        """The registry item's attributes (the table adapter adds the key)."""
        return {
            "status": self.status.value,
            "ownership": self.ownership.value,
            "apiKeyIds": list(self.api_key_ids),
            "workspaceId": self.workspace_id,
            "metadataKey": self.metadata_key,
            "rateLimit": Decimal(str(self.limits.rate_limit)),
            "burstLimit": self.limits.burst_limit,
            "dailyQuota": self.limits.daily_quota,
            "maxOutstanding": self.limits.max_outstanding,
            "deadlineDays": self.limits.deadline_days,
            "usagePlanId": self.usage_plan_id,
            "callbackUrl": self.callback_url,
            "signingSecretVersion": self.secret_version,
            "callbackSecretVersion": self.callback_secret_version,
        }


def validate_tenant_id(value: object) -> str:
    if not isinstance(value, str) or not is_valid_tenant_id(value):
        raise InvalidTenant("a tenant id is 1 to 64 letters, digits, '_' and '-', starting with a letter or digit")
    return value


def new_tenant(
    tenant_id: str,
    *,
    ownership: str,
    api_key_ids: tuple[str, ...] = (),
    workspace_id: str | None = None,
    metadata_key: str | None = None,
    limits: TenantLimits | None = None,
    status: str = TenantStatus.ACTIVE.value,
    usage_plan_id: str | None = None,
    callback_url: str | None = None,
    secret_version: int = 0,
    callback_secret_version: int = 0,
) -> Tenant:
    """A tenant whose definition holds together: every policy explicit, and what it needs present."""
    validate_tenant_id(tenant_id)
    try:
        policy = Ownership(ownership)
    except ValueError:
        raise InvalidTenant(f"ownership must be one of {', '.join(o.value for o in Ownership)}") from None
    try:
        tenant_status = TenantStatus(status)
    except ValueError:
        raise InvalidTenant(f"status must be one of {', '.join(s.value for s in TenantStatus)}") from None
    if policy is Ownership.WORKSPACE and not is_valid_workspace_id(workspace_id):
        raise InvalidTenant("the workspace policy needs the tenant's Extend workspace id (letters, digits, '_', '-')")
    if policy is Ownership.METADATA and not (isinstance(metadata_key, str) and _METADATA_KEY.fullmatch(metadata_key)):
        raise InvalidTenant("the metadata policy needs the metadata key that names the owner")
    if workspace_id is not None and not is_valid_workspace_id(workspace_id):
        raise InvalidTenant("a workspace id is made of letters, digits, '_' and '-'")
    for key_id in api_key_ids:
        if not re.fullmatch(r"[A-Za-z0-9]{1,64}", key_id):
            raise InvalidTenant(f"not an API Gateway key id: {key_id[:64]!r}")
    if callback_url is not None:
        validate_callback_url(callback_url)
    limits = limits or TenantLimits()
    if limits.rate_limit <= 0 or limits.burst_limit < 1 or limits.daily_quota < 1 or limits.max_outstanding < 1:
        raise InvalidTenant("limits must be positive: rate > 0, burst >= 1, daily quota >= 1, max outstanding >= 1")
    if not 1 <= limits.deadline_days <= MAX_DEADLINE_DAYS:
        raise InvalidTenant(f"the deadline is 1 to {MAX_DEADLINE_DAYS} days")
    return Tenant(
        tenant_id=tenant_id,
        ownership=policy,
        status=tenant_status,
        api_key_ids=tuple(api_key_ids),
        workspace_id=workspace_id if policy is Ownership.WORKSPACE else workspace_id or None,
        metadata_key=metadata_key if policy is Ownership.METADATA else None,
        limits=limits,
        usage_plan_id=usage_plan_id,
        callback_url=callback_url,
        secret_version=secret_version,
        callback_secret_version=callback_secret_version,
    )


def validate_callback_url(url: str) -> str:
    """An https URL with a host and no credentials, or plain http to a loopback host (for local use). Where it
    resolves is checked again at every delivery (``adapters.callback_sender``)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if len(url) > 2048 or not host or parts.username or parts.password or parts.fragment:
        raise InvalidTenant("a callback URL is an https URL with a host, and no credentials or fragment")
    if parts.scheme == "https" or (parts.scheme == "http" and is_loopback_host(host)):
        return url
    raise InvalidTenant("a callback URL must use https (plain http only to a loopback host, for local use)")


def tenant_from_item(item: Mapping[str, Any]) -> Tenant:
    """The tenant a registry item describes. A malformed item is ``InvalidTenant``: such a tenant is refused."""
    api_key_ids = item.get("apiKeyIds") or []
    return new_tenant(
        str(item.get("tenantId", "")),
        ownership=str(item.get("ownership", "")),
        status=str(item.get("status", "")),
        api_key_ids=tuple(str(key_id) for key_id in api_key_ids),
        workspace_id=item.get("workspaceId"),
        metadata_key=item.get("metadataKey"),
        limits=TenantLimits(
            rate_limit=float(item.get("rateLimit", 1)),
            burst_limit=int(item.get("burstLimit", 2)),
            daily_quota=int(item.get("dailyQuota", 10_000)),
            max_outstanding=int(item.get("maxOutstanding", 10_000)),
            deadline_days=int(item.get("deadlineDays", 30)),
        ),
        usage_plan_id=item.get("usagePlanId"),
        callback_url=item.get("callbackUrl"),
        secret_version=int(item.get("signingSecretVersion") or 0),
        callback_secret_version=int(item.get("callbackSecretVersion") or 0),
    )


class TenantDirectory:
    """Tenants by API key id or by tenant id, read from the registry and kept for ``max_age_s``.

    A tenant unknown to the registry is remembered as unknown for as long, so that requests with a stray key cannot
    make every request a registry read. Lookups are thread-safe.
    """

    def __init__(
        self, records: TenantRecords, *, max_age_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._table = records
        self._max_age_s = max_age_s
        # What "now" is for the cache's ages: a test sets its own, to age entries without waiting.
        self.clock = clock
        self._lock = threading.Lock()
        self._by_tenant: dict[str, tuple[Tenant | None, float]] = {}
        self._by_key: dict[str, tuple[str | None, float]] = {}
        self._reading: dict[str, threading.Lock] = {}

    def by_api_key_id(self, api_key_id: str) -> Tenant | None:
        now = self.clock()
        with self._lock:
            cached = self._by_key.get(api_key_id)
        if cached is not None and now - cached[1] < self._max_age_s:
            tenant_id = cached[0]
        else:
            tenant_id = self._read(lambda: self._table.tenant_id_for_api_key(api_key_id))
            with self._lock:
                self._by_key[api_key_id] = (tenant_id, now)
        if tenant_id is None:
            return None
        tenant = self.by_tenant_id(tenant_id)
        # The key must still be one of the tenant's: a removed key stops working even if its mapping lingers.
        return tenant if tenant is not None and api_key_id in tenant.api_key_ids else None

    def by_tenant_id(self, tenant_id: str) -> Tenant | None:
        cached = self._cached_tenant(tenant_id)
        if cached is not None:
            return cached[0]
        # One read per tenant at a time: a batch's workers that all miss the cache share the first one's read.
        with self._lock:
            reading = self._reading.setdefault(tenant_id, threading.Lock())
        with reading:
            cached = self._cached_tenant(tenant_id)
            if cached is not None:
                return cached[0]
            now = self.clock()
            item = self._read(lambda: self._table.tenant(tenant_id)) if is_valid_tenant_id(tenant_id) else None
            try:
                tenant = tenant_from_item(item) if item is not None else None
            except InvalidTenant:
                tenant = None  # a malformed registry entry authenticates no one
            with self._lock:
                self._by_tenant[tenant_id] = (tenant, now)
            return tenant

    def _cached_tenant(self, tenant_id: str) -> tuple[Tenant | None] | None:
        """The cached answer (in a 1-tuple, since None is an answer), or None when there is none still fresh."""
        now = self.clock()
        with self._lock:
            cached = self._by_tenant.get(tenant_id)
        if cached is not None and now - cached[1] < self._max_age_s:
            return (cached[0],)
        return None

    @staticmethod
    def _read(read: Callable[[], Any]) -> Any:
        """The registry's answer; ``RegistryUnavailable`` (the port's error) passes through as it is."""
        return read()

    def forget(self) -> None:
        """Forget every cached tenant (SnapStart restores)."""
        with self._lock:
            self._by_tenant.clear()
            self._by_key.clear()
