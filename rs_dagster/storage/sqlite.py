"""Small SQLite files shared by concurrent processes (response cache, endpoint shares): WAL mode so
readers never wait for a writer, autocommit, and a generous wait for another process's write lock."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

WAIT_FOR_LOCK_S = 60.0


def open_shared(path: Path, schema: str, check_same_thread: bool = True) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(path, timeout=WAIT_FOR_LOCK_S, isolation_level=None, check_same_thread=check_same_thread)
    _set_up(con, schema)
    return con


def _set_up(con: sqlite3.Connection, schema: str) -> None:
    """Switch to WAL and create the schema, retrying "database is locked": while another process
    switches a new file's journal mode, SQLite answers SQLITE_BUSY at once instead of calling the
    busy handler that `timeout` sets, so that wait has to be done here."""
    deadline = time.monotonic() + WAIT_FOR_LOCK_S
    pause_s = 0.005
    while True:
        try:
            con.execute("PRAGMA journal_mode=WAL")
            con.execute(schema)
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() + pause_s > deadline:
                raise
            time.sleep(pause_s)
            pause_s = min(pause_s * 2, 0.2)
