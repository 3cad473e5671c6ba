"""The lab's event log (rs_dagster.defs.event_log) is Dagster's SQLite event log with open connections and
run files copied from a template: Dagster's own storage reads every run's events from the same files."""

import sqlite3

import dagster as dg
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
