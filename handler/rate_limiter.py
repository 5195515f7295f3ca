"""Per-instance pacing of Extend calls: a smooth token schedule that backs off on 429s and recovers slowly.

The fleet-wide ceiling is this rate times the SQS event source's ``MaximumConcurrency`` (see the README's
capacity table). Extend's limit is per organization and, under API 2025-04-21, shared with the customer's
own parsing traffic, so the bucket is deliberately smooth (one-request bursts) rather than bursty.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class AdaptiveRateLimiter:
    """Paces requests at ``rate`` per second, halving on throttles and adding back on successes (AIMD)."""

    def __init__(
        self,
        max_rate: float,
        *,
        min_rate: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_rate = max_rate
        self.min_rate = min_rate if min_rate is not None else max(0.1, max_rate / 20)
        self._rate = max_rate
        self._clock = clock
        self._next_slot = 0.0
        self._lock = threading.Lock()

    @property
    def rate(self) -> float:
        return self._rate

    def reserve(self, max_wait_s: float) -> float | None:
        """Claim the next free slot. Returns how long to wait for it, or None if that exceeds ``max_wait_s``.

        A refused reservation takes nothing, so a request that cannot fit its deadline never delays others.
        """
        with self._lock:
            now = self._clock()
            slot = max(now, self._next_slot)
            wait = slot - now
            if wait > max_wait_s:
                return None
            self._next_slot = slot + 1.0 / self._rate
            return wait

    def on_throttled(self, retry_after_s: float | None) -> None:
        """Extend said 429: slow the whole instance down, and pause it for ``Retry-After`` when given."""
        with self._lock:
            self._rate = max(self.min_rate, self._rate / 2)
            pause_until = self._clock() + (retry_after_s or 0.0)
            self._next_slot = max(self._next_slot, pause_until)

    def on_success(self) -> None:
        with self._lock:
            # Additive increase: about 20 successes to climb back from half rate to full.
            self._rate = min(self.max_rate, self._rate + self.max_rate / 40)
