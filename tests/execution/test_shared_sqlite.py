"""The small shared SQLite files (response cache, endpoint shares) open even while another process
holds the write lock: a new file's switch to WAL is retried instead of failing the run."""

import sqlite3
import threading
import time

import pytest

from rs_dagster.storage.sqlite import open_shared

SCHEMA = "CREATE TABLE IF NOT EXISTS t (a INTEGER)"


def test_opening_waits_for_a_writer_instead_of_failing(tmp_path):
    path = tmp_path / "shared.sqlite3"
    writer = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    writer.execute(SCHEMA)
    writer.execute("BEGIN IMMEDIATE")  # a reserved lock: SQLite refuses the WAL switch at once, without waiting
    writer.execute("INSERT INTO t VALUES (1)")
    release = threading.Timer(0.5, lambda: writer.execute("COMMIT"))
    release.start()
    started = time.monotonic()
    try:
        con = open_shared(path, SCHEMA)
    finally:
        release.join()
    assert time.monotonic() - started >= 0.4
    assert con.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert con.execute("SELECT a FROM t").fetchall() == [(1,)]


def test_other_errors_are_not_retried(tmp_path):
    started = time.monotonic()
    with pytest.raises(sqlite3.OperationalError, match="incomplete input"):
        open_shared(tmp_path / "shared.sqlite3", "CREATE TABLE broken (")
    assert time.monotonic() - started < 5
