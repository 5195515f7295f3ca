"""Initialization hooks: no garbage collection during the cold start, and SnapStart's snapshot and restore hooks.

Importing this module pauses the garbage collector, and ``resume_gc_after_first_invocation`` turns it back on
once the first invocation has been served, after freezing everything built so far (``gc.freeze``): the cold
start allocates hundreds of thousands of long-lived objects (boto3's service models, Powertools, the
modules), and collecting while they are built cost about 50 ms of a 400 ms cold start (``make bench``, B1),
twice what it costs the hand-written floor. Frozen, they are never scanned again by later collections.

A restored snapshot may run minutes or days after it was taken, many times over. Nothing taken before it may be
trusted afterwards: keep-alive sockets are dead, the cached API key may have been rotated, and the rate limiter's
schedule refers to another machine's monotonic clock. ``after_restore`` drops all three; the next invocation
rebuilds them on first use. ``snapshot_restore_py`` exists only in Lambda's Python runtime, so ``register``
does nothing elsewhere.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import importlib
import sys
from collections.abc import Callable
from typing import Any, Final, TypeVar

_Handler = TypeVar("_Handler", bound=Callable[..., Any])

# Paused from the moment the entry point imports this module (first) until the first invocation is served.
gc.disable()

# What a restored instance would otherwise import on its first invocation (the API path's modules are
# optional: a build may leave them out).
PRELOADED_MODULES: Final = ("sqs_intake", "api_routes")


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


def before_snapshot() -> None:
    """Import both triggers' modules into the snapshot. Nothing here opens a connection or reads a secret."""
    for name in PRELOADED_MODULES:
        with contextlib.suppress(ImportError):
            importlib.import_module(name)


def after_restore() -> None:
    """Forget every connection, cached secret and schedule made before the snapshot."""
    extend_client = sys.modules.get("extend_client")
    if extend_client is not None:
        extend_client.HTTP_POOL.clear()
    dependencies = sys.modules.get("dependencies")
    if dependencies is not None:
        if dependencies.get_dependencies.cache_info().currsize:
            dependencies.get_dependencies().rate_limiter.reset()
        dependencies.reset_dependencies()
    deletion_queue = sys.modules.get("deletion_queue")
    if deletion_queue is not None:
        deletion_queue._cached_sqs_client.cache_clear()
    parameters = sys.modules.get("aws_lambda_powertools.utilities.parameters")
    if parameters is not None:
        parameters.clear_caches()  # drops cached secret values and the providers' boto3 clients


def register() -> bool:
    """Register both hooks with the Lambda runtime; False outside it."""
    try:
        from snapshot_restore_py import (  # type: ignore[import-not-found]  # noqa: PLC0415 - Lambda only
            register_after_restore,
            register_before_snapshot,
        )
    except ImportError:
        return False
    register_before_snapshot(before_snapshot)
    register_after_restore(after_restore)
    return True
