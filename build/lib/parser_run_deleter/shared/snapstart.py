"""Cold-start hooks: no garbage collection while an entry point initializes, and SnapStart's restore hook.

Importing this module pauses the garbage collector, and ``resume_gc_after_first_invocation`` turns it back on
once the first invocation has been served, after freezing everything built so far (``gc.freeze``). The cold start
allocates many long-lived objects (boto3's service models, Powertools, the modules); collecting while they are
built is pure cost, and once frozen they are never scanned again (docs/performance.md has the figures).

A restored snapshot may run minutes or days after it was taken, many times over. Nothing taken before it may be
trusted afterwards: keep-alive sockets are dead, a cached secret may have been rotated, and the rate limiter's
schedule refers to another machine's monotonic clock. Each entry point registers the ``reset()`` of every adapter
it uses that keeps such state, and ``after_restore`` calls them; the next invocation rebuilds what it needs.
``snapshot_restore_py`` exists only in Lambda's Python runtime, so ``register`` does nothing elsewhere.
"""

from __future__ import annotations

import functools
import gc
from collections.abc import Callable
from typing import Any, Final, TypeVar

_Handler = TypeVar("_Handler", bound=Callable[..., Any])
Reset = Callable[[], None]

# Paused from the moment the entry point imports this module (first) until the first invocation is served.
gc.disable()

_resets: Final[list[Reset]] = []


def resume_gc_after_first_invocation(handler: _Handler) -> _Handler:
    """Wrap the entry point: after its first call (even a failed one), freeze what exists and collect again."""
    resumed = False

    @functools.wraps(handler)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        nonlocal resumed
        try:
            return handler(*args, **kwargs)
        finally:
            if not resumed:
                resumed = True
                gc.freeze()
                gc.enable()

    return wrapper  # type: ignore[return-value]


def after_restore() -> None:
    """Forget every connection, cached secret and schedule made before the snapshot."""
    for reset in _resets:
        reset()


def register(*resets: Reset) -> bool:
    """Add the entry point's resets to those ``after_restore`` calls, and register it with Lambda's runtime; False
    outside it. Registrations compose: importing a second entry point (tests do) adds its resets, never replaces."""
    _resets.extend(reset for reset in resets if reset not in _resets)
    try:
        from snapshot_restore_py import (  # type: ignore[import-not-found]  # noqa: PLC0415 - Lambda only
            register_after_restore,
        )
    except ImportError:
        return False
    register_after_restore(after_restore)
    return True
