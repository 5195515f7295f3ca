"""Waiting on a condition in tests that watch background work (a local stack, a record let go at a deadline)."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_until(condition: Callable[[], object], timeout_s: float = 30.0, poll_s: float = 0.1) -> None:
    """Return once ``condition()`` is truthy; fail the test if it is not within ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(poll_s)
