"""The one vocabulary of what became of an item (a run or a file): from Extend's answer, through the ledger, to the
log line and the metric. Pure."""

from __future__ import annotations

from enum import StrEnum
from typing import Final


class Outcome(StrEnum):
    # A run waiting on the queue (the order is the ledger's: queued first, as its counters are shown).
    QUEUED = "queued"
    # What one deletion attempt through Extend ends in.
    DELETED = "deleted"
    NOT_FOUND = "not_found"
    FAILED = "failed"
    # What else a run of a deletion request can be: parked in the dead-letter queue, refused at intake (never
    # queued), or not a parser run id at all (never recorded: there is no run to record).
    DEAD_LETTERED = "dead_lettered"
    REJECTED = "rejected"
    INVALID = "invalid"
    # Its request was cancelled before the item was attempted: never sent to Extend.
    CANCELLED = "cancelled"
    # A dry run's item that exists and is the caller's: a real request would delete it.
    WOULD_DELETE = "would_delete"


# What a run of the ledger may be in: every outcome but INVALID, which names no run.
RUN_OUTCOMES: Final = tuple(outcome for outcome in Outcome if outcome is not Outcome.INVALID)
# A run in one of these is done with, though a dead-lettered one may be redriven.
FINAL_OUTCOMES: Final = frozenset(RUN_OUTCOMES) - {Outcome.QUEUED}
FAILURES: Final = frozenset({Outcome.FAILED, Outcome.DEAD_LETTERED, Outcome.REJECTED})
