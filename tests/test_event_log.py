"""The lab's event log (rs_dagster.defs.event_log) is Dagster's SQLite event log with open connections and
run files copied from a template: Dagster's own storage reads every run's events from the same files."""

import logging
import queue
import sqlite3
import time

import dagster as dg
from dagster._core.events.log import EventLogEntry
from dagster._core.storage.event_log import SqliteEventLogStorage
from helpers import make_lab

from rs_dagster.defs.event_log import PooledSqliteEventLogStorage


@dg.asset
def probe() -> int:
    return 1


def test_run_files_from_the_template_are_dagsters_own(tmp_path):
    settings = make_lab(tmp_path / "lab", {})
    with dg.DagsterInstance.from_config(str(settings.dagster_home)) as instance:
        assert isinstance(instance.event_log_storage, PooledSqliteEventLogStorage)
        run_ids = [dg.materialize([probe], instance=instance).run_id for _ in range(2)]
        ours = {run_id: [e.dagster_event_type for e in instance.all_logs(run_id)] for run_id in run_ids}
    runs_dir = settings.dagster_home / "history" / "runs"
    templates = list(runs_dir.glob(".run-template-dagster-*.sqlite"))
    assert len(templates) == 1 and not list(runs_dir.glob("*.tmp"))

    dagsters = SqliteEventLogStorage(str(runs_dir))
    assert sorted(dagsters.get_all_run_ids()) == sorted(run_ids)  # the template is never taken for a run
    for run_id in run_ids:
        events = [record.event_log_entry.dagster_event_type for record in dagsters.get_records_for_run(run_id).records]
        assert events == ours[run_id] and dg.DagsterEventType.ASSET_MATERIALIZATION in events
        with sqlite3.connect(runs_dir / f"{run_id}.db") as con:
            assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            stamped = con.execute("SELECT version_num FROM alembic_version").fetchall()
        with sqlite3.connect(templates[0]) as con:
            assert stamped == con.execute("SELECT version_num FROM alembic_version").fetchall() != []


def test_its_connections_commit_in_wal_mode_without_waiting_for_the_disk(tmp_path):
    """synchronous=NORMAL (1) on every connection it opens, the index's and each run's, in WAL mode: a
    crashed process loses nothing (only an OS crash may lose the last events), and no commit waits on fsync."""
    storage = PooledSqliteEventLogStorage(str(tmp_path / "runs"))
    try:
        storage.store_event(_log_entry("run1", "run started"))
        for shard in ("run1", "index"):
            with storage._connect(shard) as conn:
                assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1
                assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    finally:
        storage.dispose()


def test_a_live_run_is_followed_by_the_webservers_watcher(tmp_path):
    """The webserver follows a running run through Dagster's watcher on the run's file: each event stored
    while the run goes on must reach it, though the connection stays open and writes to the write-ahead log."""
    runs_dir = tmp_path / "runs"
    ours = PooledSqliteEventLogStorage(str(runs_dir))
    webservers = SqliteEventLogStorage(str(runs_dir))
    seen: queue.Queue[str] = queue.Queue()
    ours.store_event(_log_entry("run1", "run started"))
    webservers.watch("run1", None, lambda entry, cursor: seen.put(entry.user_message))
    try:
        for message in ("step started", "a progress line", "step succeeded"):
            ours.store_event(_log_entry("run1", message))
            _wait_for(seen, message)
    finally:
        webservers.end_watch("run1", None)
        webservers.dispose()
        ours.dispose()


def _wait_for(seen: queue.Queue[str], message: str) -> None:
    while (got := seen.get(timeout=10)) != message:  # queue.Empty: the watcher was not told of the event
        assert got in ("run started", "step started", "a progress line")


def _log_entry(run_id: str, message: str) -> EventLogEntry:
    return EventLogEntry(
        error_info=None, level=logging.INFO, user_message=message, run_id=run_id, timestamp=time.time(), step_key=None,
        job_name="probe_job", dagster_event=None,
    )
