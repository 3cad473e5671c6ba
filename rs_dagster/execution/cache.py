"""Content-addressed response cache: every successful response is committed to a SQLite file as it
arrives, so a re-run makes zero requests and a killed run (even SIGKILL) resumes where it stopped.
Errors are never cached: a later run retries them.

SQLite in WAL mode, not a file per response: one commit costs tens of microseconds where creating a
file costs up to a millisecond on the event loop, a run of millions of requests leaves one file
instead of millions, and several processes can read and write it at once (each waits out the others'
short write locks)."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rs_dagster.storage.sqlite import open_shared
from rs_dagster.tasks.base import canonical_json, sha256_hex

CACHE_FILE = "responses.sqlite3"
_SCHEMA = "CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, record TEXT NOT NULL, stored_at REAL NOT NULL)"


def request_hash(
    base_url: str, served_model: str, messages: list[dict], sampler_params: dict, sample_index: int, night: str | None = None
) -> str:
    """The cache key: endpoint identity, served model, exact messages, sampler params and sample index
    (so repeated samples at temperature > 0 stay distinct); for a watched model's canary, the night too
    (rs_dagster.watch), so each night asks afresh while every other answer stays cached."""
    key = {"base_url": base_url.rstrip("/"), "model": served_model, "messages": messages, "sampler": sampler_params, "sample": sample_index}
    return sha256_hex(canonical_json({**key, "night": night} if night is not None else key))[:32]


@dataclass(frozen=True)
class CacheStats:
    entries: int
    bytes: int  # of the stored records
    referenced: int  # entries whose request_hash a completions row still uses
    oldest: float | None  # stored_at, seconds since the epoch
    newest: float | None


class ResponseCache:
    def __init__(self, directory: Path):
        self.directory = Path(directory)
        self.path = self.directory / CACHE_FILE
        self._local = threading.local()  # a sqlite3 connection belongs to the thread that opened it

    @property
    def _db(self) -> sqlite3.Connection:
        con = getattr(self._local, "con", None)
        if con is None:
            con = open_shared(self.path, _SCHEMA)
            con.execute("PRAGMA synchronous=NORMAL")  # a commit survives the process; fsync at checkpoints
            self._local.con = con
        return con

    def get(self, key: str) -> dict[str, Any] | None:
        row = self._db.execute("SELECT record FROM responses WHERE key = ?", (key,)).fetchone()
        return None if row is None else json.loads(row[0])

    def put(self, key: str, record: dict[str, Any]) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO responses (key, record, stored_at) VALUES (?, ?, ?)", (key, json.dumps(record), time.time())
        )

    def entries(self) -> Iterator[str]:
        """The keys of every stored response."""
        return (key for (key,) in self._db.execute("SELECT key FROM responses"))

    def stats(self, referenced: set[str]) -> CacheStats:
        """Size and age of the cache; `referenced` are the request hashes the warehouse still uses."""
        count, size, oldest, newest = self._db.execute(
            "SELECT count(*), coalesce(sum(length(record)), 0), min(stored_at), max(stored_at) FROM responses"
        ).fetchone()
        return CacheStats(count, size, sum(key in referenced for key in self.entries()), oldest, newest)

    def prune(self, keep: set[str] | None, older_than_s: float | None, dry_run: bool = False) -> tuple[int, int]:
        """Delete entries not in `keep` (when given) and older than `older_than_s` (when given);
        return (entries, bytes of records) removed. With neither condition nothing is removed."""
        if keep is None and older_than_s is None:
            return 0, 0
        cutoff = time.time() - older_than_s if older_than_s is not None else float("inf")
        doomed = [
            (key, size)
            for key, size, stored_at in self._db.execute("SELECT key, length(record), stored_at FROM responses")
            if (keep is None or key not in keep) and stored_at < cutoff
        ]
        if doomed and not dry_run:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            db.executemany("DELETE FROM responses WHERE key = ?", [(key,) for key, _ in doomed])
            db.execute("COMMIT")
            db.execute("VACUUM")  # give the space back to the file system
        return len(doomed), sum(size for _, size in doomed)
