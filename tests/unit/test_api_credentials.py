"""Parsing the Extend key secret: a bare key or JSON, with errors that never quote the value."""

from __future__ import annotations

import pytest

from parser_run_deleter.adapters.extend_credentials import CredentialsError, ExtendCredentials, parse_secret_value

KEY = "sk_unit_0123456789abcdef"


def test_bare_key_is_trimmed() -> None:
    assert parse_secret_value(f"  {KEY}\n") == ExtendCredentials(KEY)


def test_json_with_workspace() -> None:
    assert parse_secret_value(f'{{"apiKey": "{KEY}", "workspaceId": "ws_1"}}') == ExtendCredentials(KEY, "ws_1")


def test_json_without_workspace() -> None:
    assert parse_secret_value(f'{{"apiKey": "{KEY}"}}') == ExtendCredentials(KEY, None)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("", "empty"),
        ("{not json", "does not parse"),
        ('{"key": "x"}', "no string 'apiKey'"),
        ('{"apiKey": "  "}', "no string 'apiKey'"),
        ('{"apiKey": 5}', "no string 'apiKey'"),
        (f'{{"apiKey": "{KEY}", "workspaceId": 7}}', "'workspaceId' must be a string"),
    ],
)
def test_unusable_secrets_are_refused_without_quoting_them(raw: str, reason: str) -> None:
    with pytest.raises(CredentialsError, match=reason) as raised:
        parse_secret_value(raw)
    assert KEY not in str(raised.value)


def test_credentials_never_render_the_key() -> None:
    credentials = ExtendCredentials(KEY, "ws_1")
    assert KEY not in repr(credentials)
    assert KEY not in str(credentials)
    assert KEY not in f"{credentials}"
