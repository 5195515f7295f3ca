"""The container's long-lived adapters, built from the settings once on first use and reused while warm."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from parser_run_deleter.adapters.extend_client import ExtendClient
from parser_run_deleter.adapters.extend_credentials import SecretCredentialsProvider
from parser_run_deleter.shared.rate_limiter import AdaptiveRateLimiter
from parser_run_deleter.shared.settings import Settings, get_settings


@dataclass(frozen=True, slots=True)
class Dependencies:
    settings: Settings
    credentials: SecretCredentialsProvider
    rate_limiter: AdaptiveRateLimiter
    read_rate_limiter: AdaptiveRateLimiter
    extend_client: ExtendClient


@cache
def get_dependencies() -> Dependencies:
    settings = get_settings()
    credentials = SecretCredentialsProvider(settings.extend_api_key_secret_id, max_age_s=settings.secret_max_age_s)
    rate_limiter = AdaptiveRateLimiter(settings.max_requests_per_second)
    # Extend limits reads apart from writes: the ownership check's reads are paced on their own budget.
    read_rate_limiter = AdaptiveRateLimiter(settings.max_requests_per_second)
    return Dependencies(
        settings=settings,
        credentials=credentials,
        rate_limiter=rate_limiter,
        read_rate_limiter=read_rate_limiter,
        extend_client=ExtendClient(settings, credentials, rate_limiter, read_rate_limiter=read_rate_limiter),
    )


def reset() -> None:
    """Forget everything built from the environment (tests, and SnapStart restores). The old rate limiter's
    schedule is cleared too, for whatever still holds it: it refers to a clock from before the restore."""
    if get_dependencies.cache_info().currsize:
        get_dependencies().rate_limiter.reset()
        get_dependencies().read_rate_limiter.reset()
    get_dependencies.cache_clear()
    get_settings.cache_clear()
