"""Adapter for Extend's deletable resources on urllib3: delete one, or read one (for its metadata and source file);
headers, versions, error parsing, classification, retries.

Every answer becomes one of done (``deleted``, or the run read), ``not_found`` or ``failed`` (retryable or
permanent). Retries are bounded by attempts and by the caller's deadline: nothing sleeps or starts past it.
Deletes and reads are paced by separate rate limiters: Extend limits reads apart from writes.
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from email.utils import parsedate_to_datetime
from typing import Any, Final, Protocol
from urllib.parse import quote

import urllib3

from parser_run_deleter.adapters.extend_credentials import ExtendCredentials
from parser_run_deleter.logic.extend_results import MIN_ATTEMPT_S, DeleteResult, ReadOutcome, ReadResult
from parser_run_deleter.logic.outcomes import Outcome
from parser_run_deleter.shared.extend_resources import Resource, has_cancel, parse_run_resource
from parser_run_deleter.shared.parser_run_ids import validate_parser_run_id
from parser_run_deleter.shared.rate_limiter import AdaptiveRateLimiter
from parser_run_deleter.shared.settings import ExtendSettings
from parser_run_deleter.shared.time_budget import Deadline

USER_AGENT: Final = "extend-parser-run-deleter/0.1.0 (aws-lambda; +urllib3)"
MAX_RETRY_AFTER_S: Final = 60.0

_jitter = random.SystemRandom()


def new_pool() -> urllib3.PoolManager:
    """One pool per container (the composition root's): keep-alive connections to Extend survive across warm
    invocations."""
    return urllib3.PoolManager(num_pools=2, maxsize=32, block=False, retries=False)


class CredentialsProvider(Protocol):
    def current(self, deadline: Deadline) -> ExtendCredentials: ...

    def refresh(self, stale: ExtendCredentials, deadline: Deadline) -> ExtendCredentials: ...


# urllib3's errors that mean the request never left: nothing can have been done.
_NOT_SENT_ERRORS: Final = frozenset({"NewConnectionError", "ConnectTimeoutError", "NameResolutionError", None})


@dataclass(frozen=True, slots=True)
class _Answer:
    """One HTTP exchange, reduced to what classification needs."""

    status: int | None
    body: dict[str, Any] | None = None
    request_id: str | None = None
    retry_after_s: float | None = None
    transport_error: str | None = None
    content_type: str | None = None
    body_bytes: int = 0

    @property
    def error_code(self) -> str | None:
        code = (self.body or {}).get("code")
        return code if isinstance(code, str) else None

    @property
    def error_message(self) -> str | None:
        message = (self.body or {}).get("message")
        return message[:300] if isinstance(message, str) else None

    @property
    def request_may_have_arrived(self) -> bool:
        """No answer, though the request may have been sent and acted on: the connection broke or timed out after
        it was made (not a refused or unreachable connection, and not a 5xx, whose answer says it was not done)."""
        return self.status is None and self.transport_error not in _NOT_SENT_ERRORS

    def outcome(self) -> Outcome:
        if self.status is not None and 200 <= self.status < 300:
            return Outcome.DELETED
        if self.is_extends_not_found():
            return Outcome.NOT_FOUND
        return Outcome.FAILED

    def is_extends_not_found(self) -> bool:
        """A 404 that demonstrably comes from Extend for this resource: Extend's request id, with its error code
        ``NOT_FOUND`` or the legacy 2025-04-21 error shape (``"success": false``, no code).

        Proxies, CDNs, WAFs and framework defaults answer 404 too, with ``{}``, ``{"message": "Not Found"}``, a
        copied ``NOT_FOUND`` or HTML. Taking one of those for "gone" would tell a customer their data is deleted
        while it may not be.
        """
        if self.status != 404 or self.body is None or not self.request_id:
            return False
        if self.error_code is not None:
            return self.error_code == "NOT_FOUND"
        return self.body.get("success") is False

    def body_kind(self) -> str:
        """What the body was, for a failure reason: Extend's error code, or what stood in its place."""
        if self.error_code is not None:
            return self.error_code
        if self.body is not None:
            return "JSON without Extend's error code"
        if self.body_bytes:
            return f"a non-JSON body ({self.content_type or 'no content type'})"
        return "an empty body"

    def is_retryable(self) -> bool:
        if self.status is None:
            return True  # connection errors and timeouts: DELETE is idempotent
        flag = (self.body or {}).get("retryable")
        if isinstance(flag, bool):
            return flag
        return self.status in (408, 429) or self.status >= 500


def parse_retry_after(value: str | None, now: Callable[[], float] = time.time) -> float | None:
    """``Retry-After`` as seconds, from either delta-seconds or an HTTP date; capped, never negative."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = parsedate_to_datetime(value).timestamp() - now()
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
    if math.isnan(seconds):
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_S)


def _redact(text: str | None, secret: str) -> str | None:
    return text.replace(secret, "<redacted>") if text and secret else text


def _parse_body(data: bytes) -> dict[str, Any] | None:
    if not data:
        return None
    try:
        document = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return None
    return document if isinstance(document, dict) else None


@dataclass(frozen=True, slots=True)
class _Exchange:
    """The last answer of a call and what it took to get it: attempts, throttles, and why it failed if it did."""

    answer: _Answer | None
    attempts: int
    throttled: int
    api_key: str
    reason: str | None = None
    answer_lost: bool = False  # an earlier attempt was sent, but its answer never came

    @property
    def succeeded(self) -> bool:
        return self.answer is not None and self.answer.status is not None and 200 <= self.answer.status < 300

    def outcome(self) -> Outcome:
        if self.reason is None and self.answer is not None:
            return self.answer.outcome()
        return Outcome.FAILED

    def fields(self) -> dict[str, Any]:
        """What a result reports of the exchange. What Extend (or a proxy) answered is logged and dead-lettered:
        if it quotes our key, it is redacted."""
        answer = self.answer
        failed = self.outcome() is Outcome.FAILED
        return {
            "attempts": self.attempts,
            "status_code": answer.status if answer else None,
            "retryable": failed and (answer is None or answer.is_retryable()),
            "extend_request_id": _redact(answer.request_id, self.api_key) if answer else None,
            "error_code": _redact(answer.error_code, self.api_key) if answer else None,
            "reason": _redact(self.reason, self.api_key),
            "throttled_responses": self.throttled,
            "answer_lost_before": self.answer_lost,
        }


def _still_processing(exchange: _Exchange) -> bool:
    """Extend refused the ``DELETE`` because the run is still processing: a 409 ``CONFLICT``."""
    answer = exchange.answer
    return answer is not None and answer.status == 409 and answer.error_code in (None, "CONFLICT")


def _object_of(body: dict[str, Any]) -> dict[str, Any]:
    """The resource object of a GET's answer: the body itself (2026-02-09), or the object 2025-04-21 wraps in an
    envelope (``{"success": true, "parserRun": {...}}``)."""
    if "id" in body or "object" in body:
        return body
    wrapped = next((value for value in body.values() if isinstance(value, dict) and "id" in value), None)
    return wrapped if wrapped is not None else body


_READ_OUTCOMES: Final = {
    Outcome.DELETED: ReadOutcome.FOUND,
    Outcome.NOT_FOUND: ReadOutcome.NOT_FOUND,
    Outcome.FAILED: ReadOutcome.FAILED,
}


class ExtendClient:
    """``logic.ports.ExtendItems`` over Extend's HTTP API."""

    def __init__(
        self,
        settings: ExtendSettings,
        credentials: CredentialsProvider,
        rate_limiter: AdaptiveRateLimiter,
        *,
        read_rate_limiter: AdaptiveRateLimiter | None = None,
        pool: urllib3.PoolManager | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._settings = settings
        self._credentials = credentials
        self._rate_limiter = rate_limiter
        self._read_rate_limiter = read_rate_limiter or AdaptiveRateLimiter(rate_limiter.max_rate)
        self._pool = pool or new_pool()
        self._sleep = sleep

    def close(self) -> None:
        """Close every keep-alive connection (after a SnapStart restore they are dead sockets), and clear the rate
        limiters' schedules: they refer to a clock from before the restore."""
        self._pool.clear()
        self._rate_limiter.reset()
        self._read_rate_limiter.reset()

    def url_for(self, item_id: str, resource: Resource | None = None) -> str:
        """The item's URL (a parse run's unless ``resource`` says otherwise). The id is validated and
        percent-encoded, so it is always exactly one path segment."""
        safe_id = quote(validate_parser_run_id(item_id), safe="")
        segment = (resource or parse_run_resource(self._settings.extend_api_version)).value
        return f"{self._settings.extend_api_base_url}/{segment}/{safe_id}"

    def delete(
        self, item_id: str, deadline: Deadline, *, resource: Resource | None = None, workspace_id: str | None = None
    ) -> DeleteResult:
        """``DELETE`` the item. A run Extend will not delete while it is processing (409) is cancelled first
        (``POST .../cancel``, a write), then deleted: the customer asked for it gone, not for its run to finish."""
        url = self.url_for(item_id, resource)
        exchange = self._call("DELETE", url, deadline, workspace_id, self._rate_limiter)
        kind = resource or parse_run_resource(self._settings.extend_api_version)
        if _still_processing(exchange) and has_cancel(kind):
            cancel = self._call("POST", f"{url}/cancel", deadline, workspace_id, self._rate_limiter)
            retry = self._call("DELETE", url, deadline, workspace_id, self._rate_limiter)
            attempts = exchange.attempts + cancel.attempts + retry.attempts
            throttled = exchange.throttled + cancel.throttled + retry.throttled
            exchange = replace(retry, attempts=attempts, throttled=throttled)
        return DeleteResult(parser_run_id=item_id, outcome=exchange.outcome(), **exchange.fields())

    def read(
        self, item_id: str, deadline: Deadline, *, resource: Resource | None = None, workspace_id: str | None = None
    ) -> ReadResult:
        """``GET`` the item, paced as a read: Extend limits reads apart from writes (2026-02-09). It is found only on
        a 2xx with a JSON object, whose ``metadata`` object (or None), ``status`` and source file id come back."""
        url = self.url_for(item_id, resource)
        exchange = self._call("GET", url, deadline, workspace_id, self._read_rate_limiter)
        body = exchange.answer.body if exchange.answer is not None else None
        if exchange.succeeded and body is None:
            exchange = replace(exchange, reason="Extend answered 2xx without a JSON object")
        outcome = _READ_OUTCOMES[exchange.outcome()]
        found = _object_of(body) if outcome is ReadOutcome.FOUND and body is not None else {}
        metadata, status, source = found.get("metadata"), found.get("status"), found.get("file")
        source_id = source.get("id") if isinstance(source, dict) else None
        return ReadResult(
            parser_run_id=item_id,
            outcome=outcome,
            metadata=metadata if isinstance(metadata, dict) else None,
            status=status if isinstance(status, str) else None,
            source_file_id=source_id if isinstance(source_id, str) else None,
            **exchange.fields(),
        )

    def _call(
        self,
        method: str,
        url: str,
        deadline: Deadline,
        workspace_id: str | None,
        rate_limiter: AdaptiveRateLimiter,
    ) -> _Exchange:
        credentials = self._credentials.current(deadline)
        max_attempts = self._settings.max_attempts
        attempts = throttled = 0
        refreshed_after_401 = False
        answer: _Answer | None = None
        answer_lost = False

        def finish(reason: str | None = None) -> _Exchange:
            return _Exchange(answer, attempts, throttled, credentials.api_key, reason, answer_lost=answer_lost)

        while True:
            wait = rate_limiter.reserve(max_wait_s=deadline.remaining() - MIN_ATTEMPT_S)
            if wait is None:
                return finish(self._deadline_reason(answer, attempts))
            if wait > 0:
                self._sleep(wait)
            attempts += 1
            answer_lost = answer_lost or (answer is not None and answer.request_may_have_arrived)
            answer = self._send(method, url, credentials, workspace_id, deadline)
            if answer.outcome() is not Outcome.FAILED:
                rate_limiter.on_success()
                return finish()
            if answer.status == 429:
                throttled += 1
                rate_limiter.on_throttled(answer.retry_after_s)
            if answer.status == 401 and not refreshed_after_401:
                # The key may have been rotated since this container cached it: re-read it once and retry.
                refreshed_after_401 = True
                fresh = self._credentials.refresh(credentials, deadline)
                if fresh != credentials:
                    credentials = fresh
                    max_attempts += 1  # the refresh retry is free: it is not the endpoint's fault
                    continue
            if not answer.is_retryable():
                return finish(self._failure_reason(answer))
            if attempts >= max_attempts:
                return finish(f"gave up after {attempts} attempts: {self._failure_reason(answer)}")
            delay = self._backoff(attempts, answer.retry_after_s)
            if deadline.remaining() < delay + MIN_ATTEMPT_S:
                return finish(self._deadline_reason(answer, attempts))
            self._sleep(delay)

    def _send(
        self, method: str, url: str, credentials: ExtendCredentials, workspace_id: str | None, deadline: Deadline
    ) -> _Answer:
        headers = {
            "Authorization": f"Bearer {credentials.api_key}",
            "x-extend-api-version": self._settings.extend_api_version,
            "User-Agent": USER_AGENT,
            "Accept": "application/json",
        }
        workspace = workspace_id or credentials.workspace_id or self._settings.extend_workspace_id
        if workspace:
            headers["x-extend-workspace-id"] = workspace
        budget = max(deadline.remaining(), 0.01)
        timeout = urllib3.Timeout(
            connect=min(self._settings.connect_timeout_s, budget),
            read=min(self._settings.read_timeout_s, budget),
            total=budget,
        )
        try:
            response = self._pool.request(method, url, headers=headers, timeout=timeout, retries=False)
        except Exception as error:
            # Only the type: a message can quote the URL or a header, and the Authorization header holds the key
            # (http.client's ValueError for an invalid header value quotes the value itself).
            return _Answer(status=None, transport_error=type(error).__name__)
        body = _parse_body(response.data)
        header_request_id = response.headers.get("x-extend-request-id")
        body_request_id = (body or {}).get("requestId")
        content_type = response.headers.get("Content-Type")
        return _Answer(
            status=response.status,
            body=body,
            request_id=header_request_id or (body_request_id if isinstance(body_request_id, str) else None),
            retry_after_s=parse_retry_after(response.headers.get("Retry-After")),
            content_type=content_type.split(";")[0].strip()[:100] if content_type else None,
            body_bytes=len(response.data),
        )

    def _backoff(self, attempts_made: int, retry_after_s: float | None) -> float:
        """Exponential with equal jitter; at least ``Retry-After`` when Extend gave one."""
        ceiling = min(self._settings.backoff_cap_s, self._settings.backoff_base_s * 2 ** (attempts_made - 1))
        delay: float = ceiling / 2 + _jitter.uniform(0, ceiling / 2)
        if retry_after_s is not None:
            delay = max(delay, retry_after_s + _jitter.uniform(0, 0.1))
        return delay

    @staticmethod
    def _failure_reason(answer: _Answer) -> str:
        if answer.status is None:
            return f"connection error: {answer.transport_error}"
        message = f": {answer.error_message}" if answer.error_message else ""
        return f"Extend answered {answer.status} {answer.body_kind()}{message}"

    def _deadline_reason(self, answer: _Answer | None, attempts: int) -> str:
        last = f" (last: {self._failure_reason(answer)})" if answer else ""
        return f"out of time after {attempts} attempt(s){last}"
