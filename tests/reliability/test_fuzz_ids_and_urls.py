"""Properties of the one gate every id passes: validation, URL building, and what Extend finally receives.

Hypothesis draws ids from everything an attacker could send (any Unicode text, path tricks, encodings) and from
the valid alphabet. An id either is refused before any URL exists, or it becomes exactly one path segment that
decodes back to itself, on the client's side and on the emulator's.
"""

from __future__ import annotations

import ipaddress
import re
import string
from urllib.parse import unquote, urlsplit

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from devstack.extend_emulator import ExtendEmulator
from parser_run_deleter.adapters.extend_client import DeleteOutcome, ExtendClient
from parser_run_deleter.adapters.extend_credentials import ExtendCredentials
from parser_run_deleter.shared.parser_run_ids import InvalidParserRunId, validate_parser_run_id
from parser_run_deleter.shared.rate_limiter import AdaptiveRateLimiter
from parser_run_deleter.shared.settings import ConfigurationError, Settings, validate_base_url
from parser_run_deleter.shared.time_budget import Deadline
from tests.conftest import new_api_key

VALID_ALPHABET = string.ascii_letters + string.digits + "_-"
# What must never reach a request path from an id: separators, traversal, escapes, query, fragment.
FORBIDDEN_SUBSTRINGS = ("/", "..", "%", "?", "#", "\\", ";")
WORKSPACE = "ws_fuzz"

valid_ids = st.text(alphabet=VALID_ALPHABET, min_size=1, max_size=255)
# Hostile ids: valid-looking ids with something dangerous spliced in, plus any text at all.
dangerous_fragments = st.sampled_from(
    ["/", "..", "../", "%2F", "%2e%2e", "%", "?", "#", " ", "\t", "\n", "\r\n", "\x00", "\x7f", "é", "\u202e",
     "\uff0f", "\ufeff", "%00", "..%2f", "\\", ";", "&", "=", "+", "@", ":"]
)  # fmt: skip
spliced_ids = st.builds(lambda a, bad, b: a + bad + b, st.text(VALID_ALPHABET, max_size=20), dangerous_fragments,
                        st.text(VALID_ALPHABET, max_size=20))  # fmt: skip
any_ids = st.one_of(valid_ids, spliced_ids, st.text(max_size=300), st.text(VALID_ALPHABET, min_size=256, max_size=400))


class StaticCredentials:
    def __init__(self, key: str) -> None:
        self.key = key

    def current(self, deadline: object = None) -> ExtendCredentials:
        return ExtendCredentials(self.key, WORKSPACE)

    def refresh(self, stale: ExtendCredentials, deadline: object = None) -> ExtendCredentials:
        return stale


def client_for(base_url: str, version: str = "2025-04-21", key: str = "unused") -> ExtendClient:
    settings_ = Settings(
        extend_api_key_secret_id="unused",
        extend_api_base_url=base_url,
        extend_api_version=version,
        max_attempts=1,
        read_timeout_s=2.0,
    )
    return ExtendClient(settings_, StaticCredentials(key), AdaptiveRateLimiter(10_000))


def is_valid(value: str) -> bool:
    return 1 <= len(value) <= 255 and all(character in VALID_ALPHABET for character in value)


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


@pytest.fixture(scope="module")
def live_emulator() -> ExtendEmulator:
    with ExtendEmulator() as emulator:
        yield emulator  # type: ignore[misc]


@pytest.mark.parametrize("version", ["2025-04-21", "2026-02-09"])
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(parser_run_id=any_ids)
def test_what_the_emulator_receives_is_the_id_itself_or_nothing(
    live_emulator: ExtendEmulator, version: str, parser_run_id: str
) -> None:
    # Given a live Extend emulator where the id (if valid) exists
    key = new_api_key()
    live_emulator.add_key(key, workspace_id=WORKSPACE)
    client = client_for(live_emulator.base_url, version, key)
    live_emulator.reset_stats()
    if is_valid(parser_run_id):
        live_emulator.seed([parser_run_id], workspace_id=WORKSPACE)

    # When the client is asked to delete it
    try:
        result = client.delete_parser_run(parser_run_id, Deadline.after(5))
    except InvalidParserRunId:
        # Then an invalid id never produced a single byte on the wire
        assert not is_valid(parser_run_id)
        assert live_emulator.requests == []
        return

    # Then a valid id arrived as exactly itself, in one request, on the version's path, and was deleted
    assert is_valid(parser_run_id)
    [request] = live_emulator.requests
    prefix = "/parse_runs/" if version == "2026-02-09" else "/parser_runs/"
    assert request.path == prefix + parser_run_id
    assert request.parser_run_id == parser_run_id
    assert result.outcome is DeleteOutcome.DELETED
    assert not live_emulator.exists(parser_run_id, workspace_id=WORKSPACE)


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
        lowered = scheme.lower()
        assert not (lowered == "https" or (lowered == "http" and name_is_loopback(parts.hostname or "")))
        return
    accepted_parts = urlsplit(accepted)
    # Then whatever is accepted speaks TLS, or stays on this machine
    assert accepted_parts.scheme == "https" or (
        accepted_parts.scheme == "http" and name_is_loopback(accepted_parts.hostname or "")
    )
    assert accepted_parts.hostname == parts.hostname


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
