"""One endpoint's concurrency, split between the processes that send to it at the same time.

Partitions of one model run in parallel (a UI backfill, Dagster's multiprocess executor, two `rs eval`
processes); each has its own in-process limit, so without coordination a server configured for 16
requests in flight would get 16 per process. Every Runner joins a small SQLite registry under the lab
(`.rs/endpoints.sqlite3`) for its endpoint and renews its membership every second; each live member
gets an equal share of the configured concurrency. A member that stops renewing (a killed process)
stops counting after a few seconds.
"""

from __future__ import annotations

import os
import sqlite3
import time
import uuid
from pathlib import Path

from rs_dagster.storage.sqlite import open_shared

STALE_AFTER_S = 5.0
RENEW_EVERY_S = 1.0
_SCHEMA = "CREATE TABLE IF NOT EXISTS members (member TEXT PRIMARY KEY, endpoint TEXT NOT NULL, pid INTEGER, renewed_at REAL NOT NULL)"


class EndpointShares:
    def __init__(self, path: Path):
        self.path = Path(path)
        self._con: sqlite3.Connection | None = None

    @property
    def _db(self) -> sqlite3.Connection:
        if self._con is None:
            self._con = open_shared(self.path, _SCHEMA, check_same_thread=False)
        return self._con

    def join(self, endpoint: str) -> str:
        member = uuid.uuid4().hex
        self._db.execute("INSERT INTO members VALUES (?, ?, ?, ?)", (member, endpoint, os.getpid(), time.time()))
        return member

    def renew(self, member: str) -> int:
        """Mark `member` alive; return how many live members its endpoint has (itself included)."""
        now = time.time()
        db = self._db
        db.execute("DELETE FROM members WHERE renewed_at < ?", (now - STALE_AFTER_S,))
        db.execute("UPDATE members SET renewed_at = ? WHERE member = ?", (now, member))
        (count,) = db.execute(
            "SELECT count(*) FROM members WHERE endpoint = (SELECT endpoint FROM members WHERE member = ?)", (member,)
        ).fetchone()
        return max(1, count)

    def leave(self, member: str) -> None:
        self._db.execute("DELETE FROM members WHERE member = ?", (member,))


def share(concurrency: int, members: int) -> int:
    """This member's part of the endpoint's concurrency: an equal split, at least one request."""
    return max(1, concurrency // members)
