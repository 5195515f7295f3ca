"""Hypothesis strategies for Extend ids, from the valid alphabet and from everything an attacker could send, and a
client to feed them to."""

from __future__ import annotations

import string

from hypothesis import strategies as st

from parser_run_deleter.adapters.extend_client import ExtendClient
from parser_run_deleter.adapters.extend_credentials import ExtendCredentials
from parser_run_deleter.shared.rate_limiter import AdaptiveRateLimiter
from parser_run_deleter.shared.settings import ExtendSettings

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
    settings_ = ExtendSettings(
        extend_api_key_secret_id="unused",
        extend_api_base_url=base_url,
        extend_api_version=version,
        max_attempts=1,
        read_timeout_s=2.0,
    )
    return ExtendClient(settings_, StaticCredentials(key), AdaptiveRateLimiter(10_000))


def is_valid(value: str) -> bool:
    return 1 <= len(value) <= 255 and all(character in VALID_ALPHABET for character in value)
