"""Progress of long work, reported to the Dagster log (rate and ETA every few seconds) and, when the
CLI has installed one, to a terminal progress bar."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Protocol


class Sink(Protocol):
    def start(self, label: str, total: int) -> None: ...
    def advance(self, n: int = 1) -> None: ...
    def resize(self, total: int) -> None: ...
    def stop(self) -> None: ...


_terminal_sink: Sink | None = None


@contextmanager
def terminal_sink(sink: Sink) -> Iterator[None]:
    """Installed by the CLI around in-process materializations."""
    global _terminal_sink
    previous, _terminal_sink = _terminal_sink, sink
    try:
        yield
    finally:
        _terminal_sink = previous


class Progress:
    def __init__(self, label: str, total: int, log: Callable[[str], None], every_s: float = 5.0):
        self.label, self.total, self.log, self.every_s = label, total, log, every_s
        self.done = 0
        self.started = self._last = time.monotonic()
        if _terminal_sink:
            _terminal_sink.start(label, total)

    def grow(self, n: int) -> None:
        """More work than known at the start (a further round of adaptive sampling)."""
        self.total += n
        if _terminal_sink:
            _terminal_sink.resize(self.total)

    def advance(self, n: int = 1) -> None:
        self.done += n
        if _terminal_sink:
            _terminal_sink.advance(n)
        now = time.monotonic()
        if now - self._last >= self.every_s or self.done == self.total:
            self._last = now
            self.log(self.summary())

    def summary(self) -> str:
        elapsed = max(time.monotonic() - self.started, 1e-9)
        rate = self.done / elapsed
        eta = (self.total - self.done) / rate if rate > 0 else float("inf")
        return f"{self.label}: {self.done}/{self.total} ({rate:.1f}/s, elapsed {elapsed:.0f}s, ETA {eta:.0f}s)"

    def close(self) -> None:
        if _terminal_sink:
            _terminal_sink.stop()
