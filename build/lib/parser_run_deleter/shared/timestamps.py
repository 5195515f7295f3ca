"""Timestamps as the ledger and the API show them: ISO 8601 in UTC, to the millisecond, with a ``Z``; they sort as
text in time order."""

from __future__ import annotations

from datetime import UTC, datetime


def now_iso() -> str:
    return iso(datetime.now(tz=UTC).timestamp())


def iso(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_iso(value: str) -> float:
    """Unix seconds of an ISO 8601 timestamp (``Z`` or an offset)."""
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
