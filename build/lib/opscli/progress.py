"""A dependency-free progress line on stderr: bar, count, rate and ETA."""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO


def format_duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class Progress:
    """Redraws one line (``\\r``) on a terminal; on a pipe or file, prints a line every ``interval_s * 25``."""

    def __init__(
        self, total: int, *, label: str = "queued", stream: TextIO | None = None, interval_s: float = 0.2
    ) -> None:
        self.total = total
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.interval_s = interval_s
        self.done = 0
        self.started = time.monotonic()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._tty = bool(getattr(self.stream, "isatty", lambda: False)())

    def advance(self, count: int = 1) -> None:
        with self._lock:
            self.done += count

    def render(self, now: float | None = None) -> str:
        elapsed = max(1e-6, (now if now is not None else time.monotonic()) - self.started)
        done, total = self.done, max(self.total, 1)
        width = 30
        filled = min(width, int(width * done / total))
        rate = done / elapsed
        eta = format_duration((self.total - done) / rate) if rate > 0 and done < self.total else "--:--"
        if done >= self.total:
            eta = "0:00"
        return (
            f"[{'#' * filled}{'.' * (width - filled)}] {done:,}/{self.total:,} {self.label} "
            f"{100 * done / total:5.1f}%  {rate:,.0f}/s  ETA {eta}"
        )

    def _draw(self, final: bool = False) -> None:
        line = self.render()
        if self._tty:
            self.stream.write("\r\033[K" + line + ("\n" if final else ""))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def _run(self) -> None:
        ticks = 0
        while not self._stop.wait(self.interval_s):
            ticks += 1
            if self._tty or ticks % 25 == 0:
                self._draw()

    def __enter__(self) -> Progress:
        self._thread = threading.Thread(target=self._run, name="progress", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._draw(final=True)
