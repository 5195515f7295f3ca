"""Settings: read once, typed, and every error names the variable at fault."""

from __future__ import annotations

import pytest

from parser_run_deleter.shared.settings import (
    PUBLISHED_API_HOSTS,
    ConfigurationError,
    get_settings,
    load_settings,
    validate_base_url,
)

REQUIRED = {"EXTEND_API_KEY_SECRET_ID": "extend/api-key"}


def test_defaults_follow_the_documented_table() -> None:
    settings = load_settings(REQUIRED)
    assert settings.extend_api_base_url == "https://api.extend.ai"
    assert settings.extend_api_version == "2025-04-21"
    assert settings.extend_workspace_id is None
    assert settings.dead_letter_queue_url is None
    assert settings.max_attempts == 3
    assert settings.delete_path_prefix == "/parser_runs/"


def test_new_api_version_switches_the_path() -> None:
    settings = load_settings({**REQUIRED, "EXTEND_API_VERSION": "2026-02-09"})
    assert settings.delete_path_prefix == "/parse_runs/"


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
    ],
)
def test_bad_values_are_rejected_naming_the_variable(variable: str, value: str) -> None:
    with pytest.raises(ConfigurationError, match=variable):
        load_settings({**REQUIRED, variable: value})


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
    settings = load_settings({**REQUIRED, "MAX_RECEIVE_COUNT": "5", "EXTEND_MAX_REQUESTS_PER_SECOND": "7.5"})
    assert settings.max_receive_count == 5
    assert settings.max_requests_per_second == 7.5


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


def test_an_unlisted_host_is_logged_at_start_up(
    monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("EXTEND_API_KEY_SECRET_ID", "extend/api-key")
    monkeypatch.setenv("EXTEND_API_BASE_URL", "https://extend-proxy.example.com")
    monkeypatch.setenv("EXTEND_API_ALLOW_UNLISTED_HOST", "true")
    get_settings.cache_clear()
    try:
        get_settings()
    finally:
        get_settings.cache_clear()
    [warning] = [line for line in capfd.readouterr().out.splitlines() if "EXTEND_API_ALLOW_UNLISTED_HOST" in line]
    assert '"level":"WARNING"' in warning and "extend-proxy.example.com" in warning
