"""The rate limiter's behaviour that the fleet's rate control relies on, on clocks the tests control.

The last two tests run a whole fleet in simulated time against a token-bucket server like Extend's (capacity
one second of rate, 429 with ``Retry-After`` = seconds until a token): they check the README's capacity rule
(no 429s when the shares add up to less than the limit) and AIMD's recovery when they do not.
"""

from __future__ import annotations

import heapq
import math

import pytest

from parser_run_deleter.shared.rate_limiter import AdaptiveRateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_new_limiter_has_no_saved_burst() -> None:
    clock = Clock()
    limiter = AdaptiveRateLimiter(4, clock=clock)
    assert [limiter.reserve(max_wait_s=10) for _ in range(3)] == pytest.approx([0.0, 0.25, 0.5])


def test_idle_time_is_credited_up_to_one_second_of_rate() -> None:
    # Given an instance at 10/s that sat idle for a minute (between two SQS batches, say)
    clock = Clock()
    limiter = AdaptiveRateLimiter(10, clock=clock)
    clock.now += 60
    # When it sends a burst, only burst_s worth of rate goes out at once, then it is paced again
    waits = [limiter.reserve(max_wait_s=10) for _ in range(14)]
    immediate = [w for w in waits if w == 0]
    assert len(immediate) == 11  # 1 s x 10/s, plus the request due now
    assert waits[11:] == pytest.approx([0.1, 0.2, 0.3])


@pytest.mark.parametrize("rate", [0.5, 2, 10, 75])
def test_no_window_carries_more_than_rate_times_window_plus_burst(rate: float) -> None:
    clock = Clock()
    limiter = AdaptiveRateLimiter(rate, clock=clock)
    sent: list[float] = []
    for step in range(4000):  # a greedy caller, with idle pauses now and then
        if step % 97 == 0:
            clock.now += 3
        wait = limiter.reserve(max_wait_s=100)
        assert wait is not None
        clock.now += wait
        sent.append(clock.now)
    for window in (0.5, 1, 5):
        most = max(sum(1 for t in sent[i:] if t < start + window) for i, start in enumerate(sent[:1500]))
        assert most <= rate * (window + limiter.burst_s) + 1


def test_a_throttle_drops_the_saved_burst_and_pauses_for_retry_after() -> None:
    clock = Clock()
    limiter = AdaptiveRateLimiter(10, clock=clock)
    clock.now += 30
    limiter.on_throttled(retry_after_s=2)
    assert limiter.rate == 5
    assert limiter.reserve(max_wait_s=10) == pytest.approx(2.0)
    assert limiter.reserve(max_wait_s=10) == pytest.approx(2.2)


def test_a_throttle_without_retry_after_still_drops_the_burst() -> None:
    clock = Clock()
    limiter = AdaptiveRateLimiter(10, clock=clock)
    clock.now += 30
    limiter.on_throttled(retry_after_s=None)
    assert [limiter.reserve(max_wait_s=10) for _ in range(3)] == pytest.approx([0.0, 0.2, 0.4])


def test_reset_restores_full_rate_and_forgets_the_schedule() -> None:
    clock = Clock()
    limiter = AdaptiveRateLimiter(8, clock=clock)
    limiter.on_throttled(retry_after_s=60)
    limiter.reset()
    assert limiter.rate == 8
    assert limiter.reserve(max_wait_s=0) == 0.0
    assert limiter.reserve(max_wait_s=1) == pytest.approx(0.125)


class TokenBucketServer:
    """Extend's limit as the emulator models it: capacity one second of ``rate``, refilled continuously."""

    def __init__(self, rate: float, now: float) -> None:
        self.rate = rate
        self.tokens = rate
        self.updated = now

    def request(self, now: float) -> float | None:
        """None if served, else the Retry-After it would send (whole seconds, at least 1)."""
        self.tokens = min(self.rate, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return None
        return float(max(1, math.ceil((1 - self.tokens) / self.rate)))


def simulate_fleet(limit: float, instances: int, per_instance: float, *, seconds: float = 120.0) -> tuple[float, float]:
    """Each instance keeps 4 requests in flight, as fast as its limiter lets it; 20 ms per request.

    Returns (successful requests per second, share of requests that got a 429).
    """
    clock = Clock()
    start = clock.now
    server = TokenBucketServer(limit, clock.now)
    limiters = [AdaptiveRateLimiter(per_instance, clock=clock) for _ in range(instances)]
    events = [(start, index) for index in range(instances) for _ in range(4)]
    heapq.heapify(events)
    ok = throttled = 0
    while events:
        clock.now, index = heapq.heappop(events)
        if clock.now - start > seconds:
            break
        limiter = limiters[index]
        wait = limiter.reserve(max_wait_s=120)
        assert wait is not None
        clock.now += wait
        retry_after = server.request(clock.now)
        if retry_after is None:
            ok += 1
            limiter.on_success()
        else:
            throttled += 1
            limiter.on_throttled(retry_after)
        heapq.heappush(events, (clock.now + 0.02, index))
    return ok / seconds, throttled / max(1, ok + throttled)


@pytest.mark.parametrize(("limit", "instances"), [(10, 2), (25, 4), (75, 10)])
def test_shares_that_add_up_below_the_limit_are_never_throttled(limit: float, instances: int) -> None:
    throughput, throttled = simulate_fleet(limit, instances, per_instance=0.95 * limit / instances)
    assert throttled == 0
    assert throughput >= 0.9 * limit


@pytest.mark.parametrize(("limit", "instances"), [(10, 2), (25, 4), (75, 10)])
def test_an_over_committed_fleet_converges_near_the_limit(limit: float, instances: int) -> None:
    # Given shares adding up to 1.5x Extend's limit, AIMD keeps the fleet near the limit without a storm of 429s
    throughput, throttled = simulate_fleet(limit, instances, per_instance=1.5 * limit / instances)
    assert throughput >= 0.75 * limit
    assert throttled <= 0.05
