"""Each function's configuration: read once, at cold start, from the environment into one typed, validated object
per function (``ApiSettings``, ``QueueSettings``, ``CallbackSettings``). Each reads only the variables its function
uses; what it requires is required there, with an error naming the variable. Logic never reads ``os.environ``.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final
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
class ExtendSettings:
    """How the API and queue functions call Extend (the callback function never does)."""

    extend_api_key_secret_id: str
    extend_api_base_url: str = DEFAULT_API_BASE_URL
    # True when the base URL names a host outside PUBLISHED_API_HOSTS, allowed by the override: logged at start-up.
    extend_api_host_unlisted: bool = False
    extend_api_version: str = "2025-04-21"
    extend_workspace_id: str | None = None
    connect_timeout_s: float = 2.0
    read_timeout_s: float = 5.0
    max_attempts: int = 3
    backoff_base_s: float = 0.2
    backoff_cap_s: float = 5.0
    max_requests_per_second: float = 5.0
    secret_max_age_s: int = 300


@dataclass(frozen=True, slots=True)
class ApiSettings:
    """The API function's: every request is a tenant's, recorded in the ledger, answered or queued."""

    extend: ExtendSettings
    tenants_table_name: str
    tenant_secret_prefix: str
    # The table that remembers signed requests (the replay guard).
    idempotency_table_name: str
    ledger_table_name: str
    deletion_queue_url: str
    callback_queue_url: str
    tenant_cache_s: float = 30.0
    # HTTP APIs: the JWT claim naming the tenant.
    tenant_claim: str | None = None
    ledger_retention_days: int = 400
    # The queue holds an intake's messages back this long, so that the intake records their runs before the queue
    # function can settle them (one that still comes first waits: ``ledger_records.NotYetRecorded``).
    intake_delay_s: int = 2
    # Stop this long before Lambda's deadline, so the response still fits.
    deadline_safety_margin_s: float = 1.0
    # Budget for in-request retries on the synchronous path: well inside API Gateway's 29 s.
    api_sync_budget_s: float = 8.0


@dataclass(frozen=True, slots=True)
class QueueSettings:
    """The queue function's: each message is deleted, recorded in the ledger, returned or dead-lettered."""

    extend: ExtendSettings
    tenants_table_name: str
    ledger_table_name: str
    # Its own queue (records are confirmed with SQS as this queue's), the DLQ, and where completions are told.
    deletion_queue_url: str
    dead_letter_queue_url: str
    callback_queue_url: str
    # The queue's redrive policy's: a failure on this receive is dead-lettered with its reason.
    max_receive_count: int
    tenant_cache_s: float = 30.0
    ledger_retention_days: int = 400
    # The visibility timeout the queue's messages are received with: a record's receipt handle is confirmed with SQS
    # (intake.record_source) by setting it again, so a returned record comes back as it would.
    source_queue_visibility_s: int = 30
    max_concurrency: int = 4
    # Stop this long before Lambda's deadline, so the response (and any DLQ send) still fits.
    deadline_safety_margin_s: float = 1.0


@dataclass(frozen=True, slots=True)
class SweeperSettings:
    """The sweeper's: on its schedule, it settles what the queue dropped, reports what is overdue, repairs caps."""

    tenants_table_name: str
    ledger_table_name: str
    callback_queue_url: str
    # The schedule rule that invokes it: any other event is refused.
    schedule_rule_name: str
    ledger_retention_days: int = 400


@dataclass(frozen=True, slots=True)
class CallbackSettings:
    """The callback function's: it tells tenants their requests completed, and never calls Extend."""

    tenants_table_name: str
    tenant_secret_prefix: str
    ledger_table_name: str
    callback_queue_url: str
    # The callback queue's redrive policy's: the last attempt is not held back.
    max_receive_count: int
    tenant_cache_s: float = 30.0
    ledger_retention_days: int = 400
    # The API's public base URL, for the status link; how long one delivery may take; and (local use only) whether
    # a loopback callback URL may be called.
    api_base_url: str | None = None
    callback_timeout_s: float = 5.0
    callback_allow_loopback: bool = False
    source_queue_visibility_s: int = 30
    secret_max_age_s: int = 300


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


def _required(env: Mapping[str, str], name: str, what: str) -> str:
    value = _optional(env, name)
    if value is None:
        raise ConfigurationError(f"{name} is required: {what}")
    return value


def load_extend_settings(env: Mapping[str, str]) -> ExtendSettings:
    secret_id = _required(env, "EXTEND_API_KEY_SECRET_ID", "the Secrets Manager secret holding the key")
    version = _optional(env, "EXTEND_API_VERSION") or "2025-04-21"
    if version not in SUPPORTED_API_VERSIONS:
        raise ConfigurationError(
            f"EXTEND_API_VERSION must be one of {', '.join(SUPPORTED_API_VERSIONS)}, got {version!r}"
        )
    base_url = validate_base_url(
        _optional(env, "EXTEND_API_BASE_URL") or DEFAULT_API_BASE_URL,
        allow_unlisted_host=_flag(env, UNLISTED_HOST_OVERRIDE),
    )
    return ExtendSettings(
        extend_api_key_secret_id=secret_id,
        extend_api_base_url=base_url,
        extend_api_host_unlisted=is_unlisted_host(base_url),
        extend_api_version=version,
        extend_workspace_id=_optional(env, "EXTEND_WORKSPACE_ID"),
        connect_timeout_s=_number(env, "EXTEND_CONNECT_TIMEOUT_SECONDS", 2.0, minimum=0.05, maximum=30),
        read_timeout_s=_number(env, "EXTEND_READ_TIMEOUT_SECONDS", 5.0, minimum=0.05, maximum=60),
        max_attempts=_integer(env, "EXTEND_MAX_ATTEMPTS", 3, minimum=1, maximum=10),
        backoff_base_s=_number(env, "EXTEND_BACKOFF_BASE_SECONDS", 0.2, minimum=0, maximum=10),
        backoff_cap_s=_number(env, "EXTEND_BACKOFF_CAP_SECONDS", 5.0, minimum=0, maximum=60),
        max_requests_per_second=_number(env, "EXTEND_MAX_REQUESTS_PER_SECOND", 5.0, minimum=0.1, maximum=10_000),
        secret_max_age_s=_secret_max_age(env),
    )


def _secret_max_age(env: Mapping[str, str]) -> int:
    return _integer(env, "SECRET_MAX_AGE_SECONDS", 300, minimum=0, maximum=86_400)


def _tenant_cache(env: Mapping[str, str]) -> float:
    return _number(env, "TENANT_CACHE_SECONDS", 30.0, minimum=0, maximum=60)


def _retention(env: Mapping[str, str]) -> int:
    return _integer(env, "LEDGER_RETENTION_DAYS", 400, minimum=1, maximum=3650)


def _margin(env: Mapping[str, str]) -> float:
    return _number(env, "DEADLINE_SAFETY_MARGIN_SECONDS", 1.0, minimum=0, maximum=30)


def _visibility(env: Mapping[str, str]) -> int:
    return _integer(env, "SOURCE_QUEUE_VISIBILITY_SECONDS", 30, minimum=0, maximum=43_200)


def _max_receive_count(env: Mapping[str, str]) -> int:
    _required(env, "MAX_RECEIVE_COUNT", "the queue's maxReceiveCount, so that the last receive is known")
    return _integer(env, "MAX_RECEIVE_COUNT", 0, minimum=1, maximum=1000)


def _secret_prefix(env: Mapping[str, str]) -> str:
    prefix = _required(env, "TENANT_SECRET_PREFIX", "the name prefix of the tenants' secrets")
    if not re.fullmatch(r"[A-Za-z0-9/_+=.@-]{1,200}", prefix):
        raise ConfigurationError(f"TENANT_SECRET_PREFIX must be a Secrets Manager name prefix, got {prefix!r}")
    return prefix.rstrip("/")


_REGISTRY: Final = "the tenant registry table"
_LEDGER: Final = "the ledger table: no deletion is acknowledged, nor consumed, without a record"


def load_api_settings(env: Mapping[str, str]) -> ApiSettings:
    return ApiSettings(
        extend=load_extend_settings(env),
        tenants_table_name=_required(env, "TENANTS_TABLE_NAME", _REGISTRY),
        tenant_secret_prefix=_secret_prefix(env),
        idempotency_table_name=_required(env, "IDEMPOTENCY_TABLE_NAME", "the table that refuses replayed requests"),
        ledger_table_name=_required(env, "LEDGER_TABLE_NAME", _LEDGER),
        deletion_queue_url=_required(env, "DELETION_QUEUE_URL", "the queue deletions wait on"),
        callback_queue_url=_required(env, "CALLBACK_QUEUE_URL", "the queue of completion callbacks"),
        tenant_cache_s=_tenant_cache(env),
        tenant_claim=_optional(env, "TENANT_CLAIM"),
        ledger_retention_days=_retention(env),
        intake_delay_s=_integer(env, "INTAKE_DELAY_SECONDS", 2, minimum=0, maximum=900),
        deadline_safety_margin_s=_margin(env),
        api_sync_budget_s=_number(env, "API_SYNC_BUDGET_SECONDS", 8.0, minimum=0.1, maximum=25),
    )


def load_queue_settings(env: Mapping[str, str]) -> QueueSettings:
    return QueueSettings(
        extend=load_extend_settings(env),
        tenants_table_name=_required(env, "TENANTS_TABLE_NAME", _REGISTRY),
        ledger_table_name=_required(env, "LEDGER_TABLE_NAME", _LEDGER),
        deletion_queue_url=_required(env, "DELETION_QUEUE_URL", "the queue this function consumes"),
        dead_letter_queue_url=_required(env, "DEAD_LETTER_QUEUE_URL", "where failed messages go with their reason"),
        callback_queue_url=_required(env, "CALLBACK_QUEUE_URL", "the queue of completion callbacks"),
        max_receive_count=_max_receive_count(env),
        tenant_cache_s=_tenant_cache(env),
        ledger_retention_days=_retention(env),
        source_queue_visibility_s=_visibility(env),
        max_concurrency=_integer(env, "EXTEND_MAX_CONCURRENCY", 4, minimum=1, maximum=64),
        deadline_safety_margin_s=_margin(env),
    )


def load_sweeper_settings(env: Mapping[str, str]) -> SweeperSettings:
    return SweeperSettings(
        tenants_table_name=_required(env, "TENANTS_TABLE_NAME", _REGISTRY),
        ledger_table_name=_required(env, "LEDGER_TABLE_NAME", _LEDGER),
        callback_queue_url=_required(env, "CALLBACK_QUEUE_URL", "the queue of completion callbacks"),
        schedule_rule_name=_required(env, "SCHEDULE_RULE_NAME", "the schedule rule that invokes the sweeper"),
        ledger_retention_days=_retention(env),
    )


def load_callback_settings(env: Mapping[str, str]) -> CallbackSettings:
    return CallbackSettings(
        tenants_table_name=_required(env, "TENANTS_TABLE_NAME", _REGISTRY),
        tenant_secret_prefix=_secret_prefix(env),
        ledger_table_name=_required(env, "LEDGER_TABLE_NAME", _LEDGER),
        callback_queue_url=_required(env, "CALLBACK_QUEUE_URL", "the queue this function consumes"),
        max_receive_count=_max_receive_count(env),
        tenant_cache_s=_tenant_cache(env),
        ledger_retention_days=_retention(env),
        api_base_url=_optional(env, "API_BASE_URL"),
        callback_timeout_s=_number(env, "CALLBACK_TIMEOUT_SECONDS", 5.0, minimum=0.5, maximum=30),
        callback_allow_loopback=_flag(env, "CALLBACK_ALLOW_LOOPBACK"),
        source_queue_visibility_s=_visibility(env),
        secret_max_age_s=_secret_max_age(env),
    )


def warn_if_unlisted(settings: ExtendSettings) -> None:
    if settings.extend_api_host_unlisted:
        logger.warning(
            f"{UNLISTED_HOST_OVERRIDE} is on: the Extend API key is sent to a host that is not one of Extend's "
            "published deployments",
            extra={"extend_api_base_url": settings.extend_api_base_url},
        )
