"""Time budgets: how long an invocation, or one synchronous API request, may still spend."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol


class RemainingTime(Protocol):
    def get_remaining_time_in_millis(self) -> int: ...


@dataclass(frozen=True, slots=True)
class Deadline:
    """A point on the monotonic clock past which no work may start or sleep."""

    expires_at: float

    @classmethod
    def after(cls, seconds: float) -> Deadline:
        return cls(time.monotonic() + seconds)

    @classmethod
    def from_context(cls, context: RemainingTime, safety_margin_s: float) -> Deadline:
        """Lambda's deadline less a margin that leaves room to answer (and to dead-letter)."""
        return cls.after(context.get_remaining_time_in_millis() / 1000 - safety_margin_s)

    def remaining(self) -> float:
        return self.expires_at - time.monotonic()

    def capped(self, seconds: float) -> Deadline:
        """This deadline or ``seconds`` from now, whichever comes first."""
        return Deadline(min(self.expires_at, time.monotonic() + seconds))
