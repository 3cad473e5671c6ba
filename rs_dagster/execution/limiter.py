"""The adaptive concurrency limit on one endpoint's requests in flight (AIMD under 429s, pauses for
Retry-After); the Runner sets its ceiling to this process's share of the endpoint (execution.shares)."""

from __future__ import annotations

import asyncio
import math
from collections import deque


class AdaptiveLimit:
    """AIMD limit on one endpoint's requests in flight, between 1 and `ceiling` (where it starts).

    A 429 halves it, once per window: 429s to requests sent before the last cut report the congestion
    that cut already answered. Each success of the current window while the limit is full adds
    1/limit, so a clean window of successes adds about one slot; an endpoint that is not kept busy
    gives no evidence for more.
    5xx, timeouts and broken connections do not shrink it (they say little about load) but hold growth
    until a window of successes has passed. A Retry-After pauses every new request to the endpoint."""

    def __init__(self, ceiling: int):
        self.ceiling = ceiling
        self.limit = float(ceiling)
        self.lowest = float(ceiling)
        self.in_flight = 0
        self.rate_limited = 0
        self._window = 0
        self._hold = 0
        self._resume_at = 0.0
        self._waiters: deque[asyncio.Future] = deque()

    def _has_room(self) -> bool:
        return self.in_flight < max(1, int(self.limit))

    async def acquire(self) -> int:
        """Wait for a slot (first come, first served) and the end of any pause; return the window."""
        loop = asyncio.get_running_loop()
        if self._has_room() and not self._waiters:
            self.in_flight += 1
        else:
            waiter = loop.create_future()
            self._waiters.append(waiter)
            await waiter  # _admit counted this request in
        while (pause := self._resume_at - loop.time()) > 0:
            await asyncio.sleep(pause)
        return self._window

    def release(self) -> None:
        self.in_flight -= 1
        self._admit()

    def _admit(self) -> None:
        while self._waiters and self._has_room():
            waiter = self._waiters.popleft()
            if not waiter.done():  # its task was cancelled
                self.in_flight += 1
                waiter.set_result(None)

    def on_success(self, window: int) -> None:
        """Call before release(). Grows the limit only while it is what holds requests back, and only
        for requests sent under it (those sent before a cut say nothing about the new limit)."""
        if window != self._window or (self.in_flight < int(self.limit) and not self._waiters):
            return
        if self._hold:
            self._hold -= 1
        elif self.limit < self.ceiling:
            self.limit = min(self.ceiling, self.limit + 1 / self.limit)
            self._admit()

    def set_ceiling(self, ceiling: int) -> None:
        """A new most-in-flight (this process's share of the endpoint): a lower one applies at once,
        a higher one is grown into by successes."""
        self.ceiling = ceiling
        if self.limit > ceiling:
            self.limit = float(ceiling)
            self.lowest = min(self.lowest, self.limit)

    def on_rate_limited(self, window: int, retry_after: float | None) -> None:
        self.rate_limited += 1
        self._pause(retry_after)
        if window == self._window:
            self._window += 1
            self.limit = max(1.0, self.limit / 2)
            self.lowest = min(self.lowest, self.limit)

    def on_trouble(self, retry_after: float | None) -> None:
        self._pause(retry_after)
        self._hold = max(self._hold, math.ceil(self.limit))

    def _pause(self, seconds: float | None) -> None:
        if seconds:
            self._resume_at = max(self._resume_at, asyncio.get_running_loop().time() + seconds)
