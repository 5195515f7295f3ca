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


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (f"{KEY}\n{KEY}", "printable ASCII without spaces or line breaks"),
        (f"{KEY}\r\nsk_second_line", "printable ASCII without spaces or line breaks"),
        (f'{{"apiKey": "{KEY}\\r\\nx"}}', "printable ASCII without spaces or line breaks"),
        (f"{KEY} {KEY}", "printable ASCII without spaces or line breaks"),
        (f"{KEY}\u00e9", "printable ASCII without spaces or line breaks"),
        ("sk_" + "a" * 300, "longer than 256 characters"),
        (f'{{"apiKey": "{KEY}", "workspaceId": "ws 1/.."}}', "'workspaceId' may contain only letters"),
    ],
)
def test_a_key_that_could_not_travel_in_a_header_is_refused_without_quoting_it(raw: str, reason: str) -> None:
    # A pasted two-line value would reach http.client, whose error quotes the header: refuse it when parsed.
    with pytest.raises(CredentialsError, match=reason) as raised:
        parse_secret_value(raw)
    assert KEY not in str(raised.value) and "aaaa" not in str(raised.value)


def test_surrounding_whitespace_is_still_forgiven() -> None:
    assert parse_secret_value(f"\n  {KEY}\r\n") == ExtendCredentials(KEY)
