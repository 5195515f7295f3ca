"""The secret-leak guard, a pytest plugin (``pytest_plugins`` in tests/conftest.py).

Every secret value a test creates is registered here, and every test fails whose captured output, whose handler
answers, or whose raised error holds one. A secret with line breaks is registered line by line too: a value that
leaks only in part (up to a line break, as an HTTP client quoting a header would cut it) is still a leak.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Generator
from typing import Any

import pluggy
import pytest

# Every secret value a test creates; no test's captured output may contain one.
SECRET_VALUES: set[str] = set()
# A fragment shorter than this is too common to mean anything (and would match innocent text).
MIN_FRAGMENT_LENGTH = 12

# What the code under test answered during the current test (handler responses, HTTP bodies), for the hook.
SEEN_RESPONSES: list[str] = []


def register_secret(value: str) -> str:
    SECRET_VALUES.add(value)
    for line in value.splitlines():
        if len(line.strip()) >= MIN_FRAGMENT_LENGTH:
            SECRET_VALUES.add(line.strip())
    return value


def new_api_key() -> str:
    return register_secret(f"sk_test_{secrets.token_hex(12)}")


def record_response(text: str) -> str:
    """Add an HTTP response body (or any answer a caller would see) to what the secret hook scans."""
    SEEN_RESPONSES.append(text)
    return text


@pytest.fixture(autouse=True)
def _record_handler_responses(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every answer of either entry point (API responses included) is scanned for secrets too."""
    from parser_run_deleter.entrypoints import api_function, queue_function

    for entry_point in (api_function, queue_function):
        handler = entry_point.lambda_handler

        def recording_handler(event: Any, context: Any, handler: Any = handler) -> Any:
            response = handler(event, context)
            record_response(json.dumps(response, default=str))
            return response

        monkeypatch.setattr(entry_point, "lambda_handler", recording_handler)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pluggy.Result[pytest.TestReport], None]:
    """Fail any test whose captured output, responses or raised error contains a secret value."""
    outcome = yield
    report = outcome.get_result()
    # Captured stdout, stderr and log records: everything the code under test printed. (Tracebacks are left
    # out: pytest shows fixture arguments there, and tests legitimately hold keys.) Also every response the
    # test saw, and the message of any error the code raised (a test's own assertion text is left out).
    texts = [content for _, content in report.sections] + SEEN_RESPONSES
    if call.excinfo is not None and not isinstance(call.excinfo.value, AssertionError):
        error: BaseException | None = call.excinfo.value
        while error is not None:
            texts.append(f"{type(error).__name__}: {error}")
            error = error.__cause__ or error.__context__
    if call.when == "teardown":
        SEEN_RESPONSES.clear()
    leaked = sorted({value[:12] + "…" for value in SECRET_VALUES for text in texts if value in text})
    if leaked:
        report.outcome = "failed"
        report.longrepr = f"secret value(s) leaked into captured output: {leaked}"
