"""Per-instance pacing of Extend calls: a token bucket that backs off on 429s and recovers slowly (AIMD).

The fleet-wide ceiling is this rate times the SQS event source's ``MaximumConcurrency`` (docs/operations.md has the
capacity table). Extend's limit is per organization and, under API 2025-04-21, shared with the customer's
own parsing traffic, so the bucket is small: it holds at most ``burst_s`` seconds of unused rate.

It is kept as a schedule (GCRA): ``_next_slot`` is when the next request is due at the current rate. Requests
are spaced ``1 / rate`` apart; an instance that sat idle (between two SQS batches, say) may run up to
``burst_s`` behind the clock and catch up, so the gaps between invocations do not cost it its share. Over any
window of T seconds an instance sends at most ``rate * (T + burst_s) + 1`` requests.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

DEFAULT_BURST_S = 1.0


class AdaptiveRateLimiter:
    """Paces requests at ``rate`` per second, halving on throttles and adding back on successes (AIMD)."""

    def __init__(
        self,
        max_rate: float,
        *,
        min_rate: float | None = None,
        burst_s: float = DEFAULT_BURST_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_rate = max_rate
        self.min_rate = min_rate if min_rate is not None else max(0.1, max_rate / 20)
        self.burst_s = burst_s
        self._rate = max_rate
        self._clock = clock
        self._lock = threading.Lock()
        # Starts with an empty bucket: credit builds up only while the instance is idle.
        self._next_slot = clock()

    @property
    def rate(self) -> float:
        return self._rate

    def reserve(self, max_wait_s: float) -> float | None:
        """Claim the next free slot. Returns how long to wait for it, or None if that exceeds ``max_wait_s``.

        A refused reservation takes nothing, so a request that cannot fit its deadline never delays others.
        """
        with self._lock:
            now = self._clock()
            slot = max(self._next_slot, now - self.burst_s)
            wait = max(0.0, slot - now)
            if wait > max_wait_s:
                return None
            self._next_slot = slot + 1.0 / self._rate
            return wait

    def on_throttled(self, retry_after_s: float | None) -> None:
        """Extend said 429: slow the whole instance down, drop its saved-up burst, and pause it for
        ``Retry-After`` when given."""
        with self._lock:
            self._rate = max(self.min_rate, self._rate / 2)
            now = self._clock()
            self._next_slot = max(self._next_slot, now + (retry_after_s or 0.0))

    def on_success(self) -> None:
        with self._lock:
            # Additive increase: about 20 successes to climb back from half rate to full.
            self._rate = min(self.max_rate, self._rate + self.max_rate / 40)

    def reset(self) -> None:
        """Full rate and an empty bucket, as if new (after a SnapStart restore: the old clock means nothing)."""
        with self._lock:
            self._rate = self.max_rate
            self._next_slot = self._clock()
