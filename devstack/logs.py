"""What the local functions print, collected: JSON log lines, EMF metric documents, and plain lines."""

from __future__ import annotations

import contextlib
import json
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from typing import IO, Any


class LogSink:
    """Collects what the functions print: JSON log lines, EMF metric documents, and plain lines.

    Thread-safe; ``listeners`` are called with each parsed JSON document as it arrives.
    """

    def __init__(self, raw: IO[str] | None = None) -> None:
        self._lock = threading.Lock()
        self.raw = raw
        self.documents: list[dict[str, Any]] = []
        self.lines = 0
        self.listeners: list[Callable[[str, dict[str, Any]], None]] = []

    def feed(self, function: str, line: str) -> None:
        text = line.rstrip("\n")
        document: dict[str, Any] | None = None
        if text.startswith("{"):
            with contextlib.suppress(ValueError):
                parsed = json.loads(text)
                document = parsed if isinstance(parsed, dict) else None
        with self._lock:
            self.lines += 1
            if self.raw is not None:
                self.raw.write(f"[{function}] {text}\n")
            if document is not None:
                self.documents.append(document)
        if document is not None:
            for listener in list(self.listeners):
                listener(function, document)

    def snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.documents)

    def outcome_logs(self) -> list[dict[str, Any]]:
        return [doc for doc in self.snapshot() if "outcome" in doc and "_aws" not in doc]

    def metric_totals(self) -> Counter[str]:
        return metric_totals(self.snapshot())


def metric_totals(documents: Iterable[Mapping[str, Any]]) -> Counter[str]:
    """Sum every EMF metric in ``documents`` by name (a value may be a list, as Powertools emits it)."""
    totals: Counter[str] = Counter()
    for document in documents:
        for directive in document.get("_aws", {}).get("CloudWatchMetrics", []):
            for metric in directive.get("Metrics", []):
                value = document.get(metric["Name"], 0)
                totals[metric["Name"]] += sum(value) if isinstance(value, list) else value
    return totals
