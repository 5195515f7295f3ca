"""The container's long-lived collaborators, built once on first use and reused by warm invocations."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from api_credentials import SecretCredentialsProvider
from extend_client import ExtendClient
from rate_limiter import AdaptiveRateLimiter
from settings import Settings, get_settings


@dataclass(frozen=True, slots=True)
class Dependencies:
    settings: Settings
    credentials: SecretCredentialsProvider
    rate_limiter: AdaptiveRateLimiter
    extend_client: ExtendClient


@cache
def get_dependencies() -> Dependencies:
    settings = get_settings()
    credentials = SecretCredentialsProvider(settings.extend_api_key_secret_id, max_age_s=settings.secret_max_age_s)
    rate_limiter = AdaptiveRateLimiter(settings.max_requests_per_second)
    return Dependencies(
        settings=settings,
        credentials=credentials,
        rate_limiter=rate_limiter,
        extend_client=ExtendClient(settings, credentials, rate_limiter),
    )


def reset_dependencies() -> None:
    """Forget everything built from the environment (tests, and SnapStart restores)."""
    get_dependencies.cache_clear()
    get_settings.cache_clear()
