"""The adaptive rate limiter, on a clock the test controls."""

from __future__ import annotations

import pytest

from parser_run_deleter.shared.rate_limiter import AdaptiveRateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_requests_are_spaced_evenly_at_the_rate() -> None:
    clock = Clock()
    limiter = AdaptiveRateLimiter(10, clock=clock)
    waits = [limiter.reserve(max_wait_s=10) for _ in range(5)]
    assert waits == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4])


def test_a_reservation_that_cannot_fit_takes_nothing() -> None:
    clock = Clock()
    limiter = AdaptiveRateLimiter(1, clock=clock)
    assert limiter.reserve(max_wait_s=5) == 0
    assert limiter.reserve(max_wait_s=0.5) is None
    assert limiter.reserve(max_wait_s=5) == pytest.approx(1.0)


def test_throttling_halves_the_rate_and_honours_retry_after() -> None:
    clock = Clock()
    limiter = AdaptiveRateLimiter(8, clock=clock)
    limiter.on_throttled(retry_after_s=3)
    assert limiter.rate == 4
    assert limiter.reserve(max_wait_s=10) == pytest.approx(3.0)


def test_rate_never_drops_below_the_floor_and_recovers_additively() -> None:
    clock = Clock()
    limiter = AdaptiveRateLimiter(20, clock=clock)
    for _ in range(20):
        limiter.on_throttled(None)
    assert limiter.rate == limiter.min_rate == 1.0
    for _ in range(100):
        limiter.on_success()
    assert limiter.rate == 20
