"""Progress of long work, reported to the Dagster log (rate and ETA every few seconds) and, when the
CLI has installed one, to a terminal progress bar."""

from __future__ import annotations

import threading
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
        return progress_line(self.label, self.done, self.total, time.monotonic() - self.started)

    def close(self) -> None:
        if _terminal_sink:
            _terminal_sink.stop()


def progress_line(label: str, done: int, total: int, elapsed_s: float) -> str:
    """`label: 12/48 (1.5/s, elapsed 8s, ETA 24s)`: the Dagster log's progress, and the CLI's when not on a terminal."""
    elapsed = max(elapsed_s, 1e-9)
    rate = done / elapsed
    eta = "0s" if done >= total else f"{(total - done) / rate:.0f}s" if rate > 0 else "unknown"
    return f"{label}: {done}/{total} ({rate:.1f}/s, elapsed {elapsed:.0f}s, ETA {eta})"


class LineSink:
    """Progress as plain lines, for output that is not a terminal (a log file, CI): the start, then a line
    every `every_s` seconds and at the end, per thread (runs side by side each report their own)."""

    def __init__(self, write: Callable[[str], None], every_s: float = 10.0):
        self.write, self.every_s = write, every_s
        self._mine = threading.local()

    def start(self, label: str, total: int) -> None:
        self._mine.state = [label, total, 0, time.monotonic(), time.monotonic()]
        self.write(progress_line(label, 0, total, 0.0))

    def advance(self, n: int = 1) -> None:
        state = self._mine.state
        state[2] += n
        now = time.monotonic()
        if now - state[4] >= self.every_s or state[2] >= state[1]:
            state[4] = now
            self.write(progress_line(state[0], state[2], state[1], now - state[3]))

    def resize(self, total: int) -> None:
        self._mine.state[1] = total

    def stop(self) -> None:
        pass
