"""Properties of the one gate every id passes (validation and URL building), and of the base URL rule.

Hypothesis draws ids from everything an attacker could send (any Unicode text, path tricks, encodings) and from
the valid alphabet. An id either is refused before any URL exists, or it becomes exactly one path segment that
decodes back to itself. (What the emulator then receives: tests/integration/test_ids_reaching_extend.py.)
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import unquote, urlsplit

import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from parser_run_deleter.shared.parser_run_ids import InvalidParserRunId, validate_parser_run_id
from parser_run_deleter.shared.settings import ConfigurationError, validate_base_url
from tests.support.extend_ids import FORBIDDEN_SUBSTRINGS, VALID_ALPHABET, any_ids, client_for, is_valid


@pytest.mark.parametrize("version", ["2025-04-21", "2026-02-09"])
@settings(max_examples=400, deadline=None)
@given(parser_run_id=any_ids)
@example(parser_run_id="../../admin")
@example(parser_run_id="a/b")
@example(parser_run_id="%2e%2e")
@example(parser_run_id="pr_1?x=1")
@example(parser_run_id="pr_1#frag")
@example(parser_run_id="pr 1")
@example(parser_run_id="pr\u00e9")
@example(parser_run_id="")
@example(parser_run_id="a" * 256)
def test_an_id_is_refused_or_becomes_exactly_one_clean_path_segment(version: str, parser_run_id: str) -> None:
    # Given a client for either API version
    client = client_for("https://api.extend.ai", version)
    prefix = "/parse_runs/" if version == "2026-02-09" else "/parser_runs/"

    # When the id is turned into a URL
    try:
        url = client.url_for(parser_run_id)
    except InvalidParserRunId:
        # Then a refused id is exactly an id outside the documented alphabet and length
        assert not is_valid(parser_run_id)
        return

    # Then only valid ids get a URL, on the configured host, with the id as the one segment after the prefix
    assert is_valid(parser_run_id)
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.query, parts.fragment) == ("https", "api.extend.ai", "", "")
    assert parts.path.startswith(prefix)
    segment = parts.path[len(prefix) :]
    assert segment == parser_run_id  # nothing to encode in the valid alphabet: it round-trips byte for byte
    assert unquote(segment) == parser_run_id
    assert url.isascii() and url.isprintable() and not any(c.isspace() for c in url)
    assert not any(bad in segment for bad in FORBIDDEN_SUBSTRINGS)


@settings(max_examples=300, deadline=None)
@given(value=st.one_of(any_ids, st.integers(), st.none(), st.binary(), st.lists(st.text(VALID_ALPHABET, min_size=1))))
def test_validation_accepts_exactly_the_documented_alphabet(value: object) -> None:
    refusal: InvalidParserRunId | None = None
    try:
        accepted = validate_parser_run_id(value)
    except InvalidParserRunId as caught:
        refusal = caught
    if refusal is not None:
        assert not (isinstance(value, str) and is_valid(value))
        assert str(refusal)  # a reason the caller can read
        return
    assert isinstance(value, str) and is_valid(value)
    assert accepted is value


# ---- https except loopback: no configuration sends the key in clear text over a network

hosts = st.one_of(
    st.from_regex(r"[a-z][a-z0-9-]{0,20}(\.[a-z][a-z0-9-]{0,20}){0,3}", fullmatch=True),
    st.ip_addresses(v=4).map(str),
    st.ip_addresses(v=6).map(lambda ip: f"[{ip}]"),
    st.sampled_from(["localhost.evil.com", "127.0.0.1.nip.io", "localhost6", "0.0.0.0", "[::]", "127.1", "2130706433",
                     "0x7f000001", "[::ffff:127.0.0.1]", "LOCALHOST", "api.extend.ai", "169.254.169.254"]),
)  # fmt: skip
schemes = st.sampled_from(["http", "https", "HTTP", "Http", "ftp", "ws", "file", ""])
ports = st.one_of(st.none(), st.integers(min_value=1, max_value=65535))
paths = st.sampled_from(["", "/", "/v1", "/a/b/"])


@settings(max_examples=500, deadline=None)
@given(scheme=schemes, host=hosts, port=ports, path=paths)
@example(scheme="http", host="localhost.evil.com", port=None, path="")
@example(scheme="http", host="127.0.0.1.nip.io", port=None, path="")
@example(scheme="http", host="[::ffff:127.0.0.1]", port=None, path="")
@example(scheme="http", host="127.0.0.1", port=8080, path="")
@example(scheme="http", host="[::1]", port=None, path="")
def test_plain_http_is_refused_unless_the_host_is_loopback(scheme: str, host: str, port: int | None, path: str) -> None:
    url = f"{scheme}://{host}{'' if port is None else f':{port}'}{path}"
    parts = urlsplit(url)
    assume(parts.hostname)
    refusal: ConfigurationError | None = None
    try:
        accepted = validate_base_url(url, allow_unlisted_host=True)
    except ConfigurationError as caught:
        refusal = caught
    if refusal is not None:
        assert "EXTEND_API_BASE_URL" in str(refusal)
        if parts.path not in ("", "/"):
            return  # a base URL takes no path, whatever its scheme
        lowered = scheme.lower()
        assert not (lowered == "https" or (lowered == "http" and name_is_loopback(parts.hostname or "")))
        return
    accepted_parts = urlsplit(accepted)
    # Then whatever is accepted speaks TLS, or stays on this machine
    assert accepted_parts.scheme == "https" or (
        accepted_parts.scheme == "http" and name_is_loopback(accepted_parts.hostname or "")
    )
    assert accepted_parts.hostname == parts.hostname
    assert parts.path in ("", "/")  # and a base URL with a path is never accepted


def name_is_loopback(host: str) -> bool:
    """The oracle, written apart from the code under test: the name localhost or a loopback IP literal."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@settings(max_examples=300, deadline=None)
@given(url=st.text(max_size=80))
def test_any_text_as_base_url_is_https_loopback_or_refused(url: str) -> None:
    try:
        accepted = validate_base_url(url, allow_unlisted_host=True)
    except (ConfigurationError, ValueError):
        return
    parts = urlsplit(accepted)
    assert parts.scheme == "https" or (parts.scheme == "http" and name_is_loopback(parts.hostname or ""))
    assert not (parts.username or parts.password or parts.query or parts.fragment)


def test_the_loopback_exception_is_narrow() -> None:
    for url in ("http://localhost.evil.com", "http://127.0.0.1.nip.io", "http://10.0.0.1", "http://0.0.0.0"):
        with pytest.raises(ConfigurationError):
            validate_base_url(url)
    assert validate_base_url("http://127.0.0.5:9/") == "http://127.0.0.5:9"
    assert re.fullmatch(r"https://api\.extend\.ai", validate_base_url("https://api.extend.ai/"))
