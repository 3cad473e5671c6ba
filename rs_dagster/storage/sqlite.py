"""Small SQLite files shared by concurrent processes (response cache, endpoint shares): WAL mode so
readers never wait for a writer, autocommit, and a generous wait for another process's write lock."""

from __future__ import annotations

import sqlite3
from pathlib import Path


def open_shared(path: Path, schema: str, check_same_thread: bool = True) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(path, timeout=60, isolation_level=None, check_same_thread=check_same_thread)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute(schema)
    return con
