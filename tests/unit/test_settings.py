"""Settings: one typed object per function, read once, with what each function requires required; every error
names the variable at fault."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pytest

from parser_run_deleter.shared.extend_resources import parse_run_resource
from parser_run_deleter.shared.settings import (
    PUBLISHED_API_HOSTS,
    ConfigurationError,
    load_api_settings,
    load_callback_settings,
    load_extend_settings,
    load_queue_settings,
    validate_base_url,
    warn_if_unlisted,
)

REQUIRED = {"EXTEND_API_KEY_SECRET_ID": "extend/api-key"}
API = {
    **REQUIRED,
    "TENANTS_TABLE_NAME": "t",
    "TENANT_SECRET_PREFIX": "stack/tenants",
    "IDEMPOTENCY_TABLE_NAME": "i",
    "LEDGER_TABLE_NAME": "l",
    "DELETION_QUEUE_URL": "https://sqs/q",
    "CALLBACK_QUEUE_URL": "https://sqs/c",
}
QUEUE = {
    **REQUIRED,
    "TENANTS_TABLE_NAME": "t",
    "LEDGER_TABLE_NAME": "l",
    "DELETION_QUEUE_URL": "https://sqs/q",
    "DEAD_LETTER_QUEUE_URL": "https://sqs/dlq",
    "CALLBACK_QUEUE_URL": "https://sqs/c",
    "MAX_RECEIVE_COUNT": "5",
}
CALLBACK = {
    "TENANTS_TABLE_NAME": "t",
    "TENANT_SECRET_PREFIX": "stack/tenants",
    "LEDGER_TABLE_NAME": "l",
    "CALLBACK_QUEUE_URL": "https://sqs/c",
    "MAX_RECEIVE_COUNT": "12",
}
FUNCTIONS: list[tuple[Callable[[Mapping[str, str]], Any], dict[str, str]]] = [
    (load_api_settings, API),
    (load_queue_settings, QUEUE),
    (load_callback_settings, CALLBACK),
]
load_settings = load_extend_settings


def test_defaults_follow_the_documented_table() -> None:
    settings = load_settings(REQUIRED)
    assert settings.extend_api_base_url == "https://api.extend.ai"
    assert settings.extend_api_version == "2025-04-21"
    assert settings.extend_workspace_id is None
    assert settings.max_attempts == 3
    assert parse_run_resource(settings.extend_api_version).value == "parser_runs"
    queue = load_queue_settings(QUEUE)
    assert (queue.tenant_cache_s, queue.ledger_retention_days, queue.max_concurrency) == (30.0, 400, 4)
    assert load_callback_settings(CALLBACK).api_base_url is None


@pytest.mark.parametrize(("load", "environment"), FUNCTIONS)
def test_each_variable_a_function_requires_is_required_at_cold_start_by_name(
    load: Callable[[Mapping[str, str]], Any], environment: dict[str, str]
) -> None:
    # Given a function's full environment, each of its variables left out in turn
    for name in environment:
        partial = {key: value for key, value in environment.items() if key != name}
        # Then the function refuses to start, naming the variable
        with pytest.raises(ConfigurationError, match=name):
            load(partial)
    # and with all of them it starts
    load(environment)


def test_the_callback_function_never_reads_extends_settings() -> None:
    settings = load_callback_settings(CALLBACK)
    assert not hasattr(settings, "extend")


def test_new_api_version_switches_the_path() -> None:
    settings = load_settings({**REQUIRED, "EXTEND_API_VERSION": "2026-02-09"})
    assert parse_run_resource(settings.extend_api_version).value == "parse_runs"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("EXTEND_API_VERSION", "2024-12-23"),
        ("EXTEND_API_BASE_URL", "http://api.extend.ai"),
        ("EXTEND_API_BASE_URL", "ftp://127.0.0.1"),
        ("EXTEND_API_BASE_URL", "https://user:pw@api.extend.ai"),
        ("EXTEND_API_BASE_URL", "https://api.extend.ai/?x=1"),
        ("EXTEND_MAX_ATTEMPTS", "0"),
        ("EXTEND_MAX_ATTEMPTS", "2.5"),
        ("EXTEND_READ_TIMEOUT_SECONDS", "fast"),
        ("MAX_RECEIVE_COUNT", "-1"),
        ("EXTEND_MAX_CONCURRENCY", "1000"),
        ("TENANT_SECRET_PREFIX", "bad prefix"),
    ],
)
def test_bad_values_are_rejected_naming_the_variable(variable: str, value: str) -> None:
    with pytest.raises(ConfigurationError, match=variable):
        load_queue_settings({**QUEUE, variable: value}) if variable != "TENANT_SECRET_PREFIX" else load_api_settings(
            {**API, variable: value}
        )


def test_missing_secret_id_is_named() -> None:
    with pytest.raises(ConfigurationError, match="EXTEND_API_KEY_SECRET_ID"):
        load_settings({"EXTEND_API_KEY_SECRET_ID": "  "})


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8080", "http://localhost:9", "http://[::1]:80/", "https://api.eu1.extend.ai/"]
)
def test_https_or_loopback_http_is_allowed(url: str) -> None:
    assert validate_base_url(url) == url.rstrip("/")


def test_http_to_a_private_address_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="https"):
        validate_base_url("http://10.0.0.5")


def test_optional_numbers_parse() -> None:
    settings = load_queue_settings({**QUEUE, "EXTEND_MAX_REQUESTS_PER_SECOND": "7.5"})
    assert settings.max_receive_count == 5
    assert settings.extend.max_requests_per_second == 7.5


@pytest.mark.parametrize("host", sorted(PUBLISHED_API_HOSTS))
def test_extends_published_deployments_are_accepted_as_they_are(host: str) -> None:
    settings = load_settings({**REQUIRED, "EXTEND_API_BASE_URL": f"https://{host}"})
    assert settings.extend_api_base_url == f"https://{host}" and not settings.extend_api_host_unlisted


@pytest.mark.parametrize(
    "url", ["https://x.io", "https://api.extend.ai.evil.com", "https://evil-api.extend.ai.com", "https://extend.ai"]
)
def test_any_other_https_host_needs_the_loudly_named_override(url: str) -> None:
    # Given a base URL that would send the Extend key to a host that is not Extend's
    # When the settings are read without the override, then they are refused, naming the variable and the override
    with pytest.raises(ConfigurationError, match="EXTEND_API_BASE_URL") as refused:
        load_settings({**REQUIRED, "EXTEND_API_BASE_URL": url})
    assert "EXTEND_API_ALLOW_UNLISTED_HOST" in str(refused.value)
    # and with it they are accepted, marked as such
    settings = load_settings({**REQUIRED, "EXTEND_API_BASE_URL": url, "EXTEND_API_ALLOW_UNLISTED_HOST": "true"})
    assert settings.extend_api_base_url == url and settings.extend_api_host_unlisted


def test_the_override_takes_true_or_false_only() -> None:
    with pytest.raises(ConfigurationError, match="EXTEND_API_ALLOW_UNLISTED_HOST"):
        load_settings({**REQUIRED, "EXTEND_API_ALLOW_UNLISTED_HOST": "yes"})


def test_the_override_does_not_admit_plain_http_off_loopback() -> None:
    with pytest.raises(ConfigurationError, match="https"):
        validate_base_url("http://proxy.example.com", allow_unlisted_host=True)


def test_an_unlisted_host_is_logged_at_start_up(capfd: pytest.CaptureFixture[str]) -> None:
    environment = {
        **REQUIRED,
        "EXTEND_API_BASE_URL": "https://extend-proxy.example.com",
        "EXTEND_API_ALLOW_UNLISTED_HOST": "true",
    }
    warn_if_unlisted(load_settings(environment))
    [warning] = [line for line in capfd.readouterr().out.splitlines() if "EXTEND_API_ALLOW_UNLISTED_HOST" in line]
    assert '"level":"WARNING"' in warning and "extend-proxy.example.com" in warning
