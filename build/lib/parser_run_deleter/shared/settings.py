"""The function's configuration: read once from the environment into one typed, validated object.

Logic code never reads ``os.environ``; it receives a ``Settings``. Every error names the variable at fault.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import urlsplit

from parser_run_deleter.shared.observability import logger

SUPPORTED_API_VERSIONS = ("2025-04-21", "2026-02-09")
DEFAULT_API_BASE_URL = "https://api.extend.ai"
# Extend's published deployments. Any other host would receive the key, so it takes an explicit override.
PUBLISHED_API_HOSTS = frozenset({"api.extend.ai", "api.us2.extend.app", "api.eu1.extend.ai"})
UNLISTED_HOST_OVERRIDE = "EXTEND_API_ALLOW_UNLISTED_HOST"


class ConfigurationError(ValueError):
    """A variable is missing or malformed; the message names it."""


@dataclass(frozen=True, slots=True)
class Settings:
    extend_api_key_secret_id: str
    extend_api_base_url: str = DEFAULT_API_BASE_URL
    # True when the base URL names a host outside PUBLISHED_API_HOSTS, allowed by the override: logged at start-up.
    extend_api_host_unlisted: bool = False
    extend_api_version: str = "2025-04-21"
    extend_workspace_id: str | None = None
    dead_letter_queue_url: str | None = None
    deletion_queue_url: str | None = None
    # Tenants: the registry table, the name prefix of their signing secrets, how long a tenant is trusted from
    # cache, the table that remembers signed requests, and (HTTP APIs) the JWT claim naming the tenant.
    tenants_table_name: str | None = None
    tenant_secret_prefix: str | None = None
    tenant_cache_s: float = 30.0
    idempotency_table_name: str | None = None
    tenant_claim: str | None = None
    # The ledger: every deletion request and what became of each run, kept this many days.
    ledger_table_name: str | None = None
    ledger_retention_days: int = 400
    # Completion callbacks: the queue of deliveries to make, the API's public base URL (for the status link), how
    # long one delivery may take, and (local use only) whether a loopback callback URL may be called.
    callback_queue_url: str | None = None
    api_base_url: str | None = None
    callback_timeout_s: float = 5.0
    callback_allow_loopback: bool = False
    # The visibility timeout the function's own queue receives messages with: a record's receipt handle is
    # confirmed with SQS (intake.record_source) by setting it again, so a returned record comes back as it would.
    source_queue_visibility_s: int = 30
    # The queue holds an intake's messages back this long, so that the intake records their runs before the queue
    # function can settle them (one that still comes first waits: ``logic.ledger.NotYetRecorded``).
    intake_delay_s: int = 2
    # Extend calls
    connect_timeout_s: float = 2.0
    read_timeout_s: float = 5.0
    max_attempts: int = 3
    backoff_base_s: float = 0.2
    backoff_cap_s: float = 5.0
    # Stop this long before Lambda's deadline, so the response (and any DLQ send) still fits.
    deadline_safety_margin_s: float = 1.0
    # Budget for in-request retries on the synchronous API path: well inside API Gateway's 29 s.
    api_sync_budget_s: float = 8.0
    secret_max_age_s: int = 300
    max_receive_count: int | None = None
    max_concurrency: int = 4
    max_requests_per_second: float = 5.0

    @property
    def delete_path_prefix(self) -> str:
        return "/parse_runs/" if self.extend_api_version == "2026-02-09" else "/parser_runs/"


def _optional(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name, "").strip()
    return value or None


def _number(env: Mapping[str, str], name: str, default: float, *, minimum: float, maximum: float) -> float:
    raw = _optional(env, name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigurationError(f"{name} must be a number, got {raw!r}") from None
    if not minimum <= value <= maximum:
        raise ConfigurationError(f"{name} must be between {minimum:g} and {maximum:g}, got {raw!r}")
    return value


def _integer(env: Mapping[str, str], name: str, default: int, *, minimum: int, maximum: int) -> int:
    value = _number(env, name, default, minimum=minimum, maximum=maximum)
    if value != int(value):
        raise ConfigurationError(f"{name} must be a whole number, got {env[name]!r}")
    return int(value)


def is_loopback_host(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def validate_base_url(url: str, name: str = "EXTEND_API_BASE_URL", *, allow_unlisted_host: bool = False) -> str:
    """One of Extend's published deployments over https, or plain http to a loopback host for local use.

    ``allow_unlisted_host`` admits any other https host: the key goes wherever this URL points.
    """
    parts = urlsplit(url)
    host = parts.hostname or ""
    if not host or parts.query or parts.fragment or parts.username or parts.password or parts.path not in ("", "/"):
        # No path either: Extend's routes hang off the host; under a path, a proxy's or a router's 404 for an
        # unknown route could be taken for Extend's "not found" while nothing was deleted.
        raise ConfigurationError(
            f"{name} must be a plain base URL such as {DEFAULT_API_BASE_URL}, without a path, got {url!r}"
        )
    if parts.scheme == "http" and is_loopback_host(host):
        return url.rstrip("/")
    if parts.scheme != "https":
        raise ConfigurationError(f"{name} must use https (plain http is allowed only to a loopback host), got {url!r}")
    if host.lower() not in PUBLISHED_API_HOSTS and not allow_unlisted_host:
        raise ConfigurationError(
            f"{name} must be one of Extend's published deployments ({', '.join(sorted(PUBLISHED_API_HOSTS))}), "
            f"got {url!r}; set {UNLISTED_HOST_OVERRIDE}=true to send the key to another host"
        )
    return url.rstrip("/")


def is_unlisted_host(url: str) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    return host not in PUBLISHED_API_HOSTS and not is_loopback_host(host)


def _flag(env: Mapping[str, str], name: str) -> bool:
    raw = (_optional(env, name) or "false").lower()
    if raw not in ("true", "false"):
        raise ConfigurationError(f"{name} must be true or false, got {env[name]!r}")
    return raw == "true"


def _secret_prefix(env: Mapping[str, str]) -> str | None:
    prefix = _optional(env, "TENANT_SECRET_PREFIX")
    if prefix is not None and not re.fullmatch(r"[A-Za-z0-9/_+=.@-]{1,200}", prefix):
        raise ConfigurationError(f"TENANT_SECRET_PREFIX must be a Secrets Manager name prefix, got {prefix!r}")
    return prefix.rstrip("/") if prefix is not None else None


def load_settings(env: Mapping[str, str]) -> Settings:
    secret_id = _optional(env, "EXTEND_API_KEY_SECRET_ID")
    if secret_id is None:
        raise ConfigurationError("EXTEND_API_KEY_SECRET_ID is required: the Secrets Manager secret holding the key")
    version = _optional(env, "EXTEND_API_VERSION") or "2025-04-21"
    if version not in SUPPORTED_API_VERSIONS:
        raise ConfigurationError(
            f"EXTEND_API_VERSION must be one of {', '.join(SUPPORTED_API_VERSIONS)}, got {version!r}"
        )
    max_receive = _optional(env, "MAX_RECEIVE_COUNT")
    base_url = validate_base_url(
        _optional(env, "EXTEND_API_BASE_URL") or DEFAULT_API_BASE_URL,
        allow_unlisted_host=_flag(env, UNLISTED_HOST_OVERRIDE),
    )
    return Settings(
        extend_api_key_secret_id=secret_id,
        extend_api_base_url=base_url,
        extend_api_host_unlisted=is_unlisted_host(base_url),
        extend_api_version=version,
        extend_workspace_id=_optional(env, "EXTEND_WORKSPACE_ID"),
        dead_letter_queue_url=_optional(env, "DEAD_LETTER_QUEUE_URL"),
        deletion_queue_url=_optional(env, "DELETION_QUEUE_URL"),
        tenants_table_name=_optional(env, "TENANTS_TABLE_NAME"),
        tenant_secret_prefix=_secret_prefix(env),
        tenant_cache_s=_number(env, "TENANT_CACHE_SECONDS", 30.0, minimum=0, maximum=60),
        idempotency_table_name=_optional(env, "IDEMPOTENCY_TABLE_NAME"),
        tenant_claim=_optional(env, "TENANT_CLAIM"),
        ledger_table_name=_optional(env, "LEDGER_TABLE_NAME"),
        ledger_retention_days=_integer(env, "LEDGER_RETENTION_DAYS", 400, minimum=1, maximum=3650),
        callback_queue_url=_optional(env, "CALLBACK_QUEUE_URL"),
        api_base_url=_optional(env, "API_BASE_URL"),
        callback_timeout_s=_number(env, "CALLBACK_TIMEOUT_SECONDS", 5.0, minimum=0.5, maximum=30),
        callback_allow_loopback=_flag(env, "CALLBACK_ALLOW_LOOPBACK"),
        intake_delay_s=_integer(env, "INTAKE_DELAY_SECONDS", 2, minimum=0, maximum=900),
        source_queue_visibility_s=_integer(env, "SOURCE_QUEUE_VISIBILITY_SECONDS", 30, minimum=0, maximum=43_200),
        connect_timeout_s=_number(env, "EXTEND_CONNECT_TIMEOUT_SECONDS", 2.0, minimum=0.05, maximum=30),
        read_timeout_s=_number(env, "EXTEND_READ_TIMEOUT_SECONDS", 5.0, minimum=0.05, maximum=60),
        max_attempts=_integer(env, "EXTEND_MAX_ATTEMPTS", 3, minimum=1, maximum=10),
        backoff_base_s=_number(env, "EXTEND_BACKOFF_BASE_SECONDS", 0.2, minimum=0, maximum=10),
        backoff_cap_s=_number(env, "EXTEND_BACKOFF_CAP_SECONDS", 5.0, minimum=0, maximum=60),
        deadline_safety_margin_s=_number(env, "DEADLINE_SAFETY_MARGIN_SECONDS", 1.0, minimum=0, maximum=30),
        api_sync_budget_s=_number(env, "API_SYNC_BUDGET_SECONDS", 8.0, minimum=0.1, maximum=25),
        secret_max_age_s=_integer(env, "SECRET_MAX_AGE_SECONDS", 300, minimum=0, maximum=86_400),
        max_receive_count=None
        if max_receive is None
        else _integer(env, "MAX_RECEIVE_COUNT", 0, minimum=1, maximum=1000),
        max_concurrency=_integer(env, "EXTEND_MAX_CONCURRENCY", 4, minimum=1, maximum=64),
        max_requests_per_second=_number(env, "EXTEND_MAX_REQUESTS_PER_SECOND", 5.0, minimum=0.1, maximum=10_000),
    )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read on first use; tests call ``get_settings.cache_clear()``."""
    settings = load_settings(os.environ)
    if settings.extend_api_host_unlisted:
        logger.warning(
            f"{UNLISTED_HOST_OVERRIDE} is on: the Extend API key is sent to a host that is not one of Extend's "
            "published deployments",
            extra={"extend_api_base_url": settings.extend_api_base_url},
        )
    return settings
