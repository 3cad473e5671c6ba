"""The instance's event log on SQLite with its connections kept open.

Dagster's SqliteEventLogStorage creates an engine, opens a connection and closes it for every event it
stores (about 8 ms each here, a third of a cached `rs eval`: a run stores hundreds of events). This
storage keeps one engine per shard it uses (the index and the latest runs' files) and is otherwise
Dagster's: same files, same schema. Its connections commit with synchronous=NORMAL rather than SQLite's
default FULL: in write-ahead-log mode that still never corrupts a file and loses nothing when a process
dies, while a commit no longer waits for the disk (a fifth of a run's time in Dagster on this lab's
machines: 203 -> 160 ms a run, bench/dagster_floor.py); only an operating-system crash or a power cut may
lose the last events written, which are the run history (how a result got there, and `rs status` never
reads "current" from it), never a measured answer (DuckDB). After each
transaction the run's file is touched: the webserver's watcher follows a live run through changes to
that file, and with a connection left open the events go to the write-ahead log only (a checkpoint after
each transaction would also do, at 0.6 ms an event: a tenth of a run's time in Dagster). Whether a table
exists is asked once per table, not with a new engine for every asset check event.
A new run's file is a copy of a template file that Dagster's own initialization wrote (tables, write-ahead
log mode, migration stamp), one per Dagster version: initializing each run's file cost about 50 ms, a run.
Selected in the lab's dagster.yaml (rs_dagster.settings); an instance without it uses Dagster's own."""

from __future__ import annotations

import os
import shutil
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from dagster import __version__ as DAGSTER_VERSION
from dagster._core.storage.event_log import SqliteEventLogStorage
from dagster._core.storage.event_log.sqlite.sqlite_event_log import INDEX_SHARD_NAME
from dagster._core.storage.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS
from dagster._serdes import ConfigurableClassData

OPEN_RUN_SHARDS = 4
"""Run files whose engines stay open besides the index: runs side by side each write their own."""


def _commit_without_waiting_for_the_disk(connection: Any, _record: Any) -> None:
    connection.execute("PRAGMA synchronous=NORMAL")


class PooledSqliteEventLogStorage(SqliteEventLogStorage):
    def __init__(self, base_dir: str, inst_data: ConfigurableClassData | None = None):
        self._engines: OrderedDict[str, sa.engine.Engine] = OrderedDict()
        self._tables: set[str] = set()
        super().__init__(base_dir, inst_data)

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData | None, config_value: Any) -> PooledSqliteEventLogStorage:
        return cls(inst_data=inst_data, **config_value)

    def _engine(self, shard: str) -> sa.engine.Engine:
        """The shard's engine (the caller holds _db_lock); the least recently used run file's is closed."""
        engine = self._engines.pop(shard, None)
        if engine is None:
            engine = sa.create_engine(self.conn_string_for_shard(shard), connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS})
            sa.event.listen(engine, "connect", _commit_without_waiting_for_the_disk)
        self._engines[shard] = engine
        while len(self._engines) > OPEN_RUN_SHARDS + 1:
            oldest = next(iter(self._engines))
            self._engines.pop(oldest).dispose()
        return engine

    def _template(self) -> str:
        """The file a new run's file is copied from (named so that Dagster never takes it for a run's)."""
        path = os.path.join(self._base_dir, f".run-template-dagster-{DAGSTER_VERSION}.sqlite")
        if not os.path.exists(path):
            building = f"{path}.{os.getpid()}.tmp"
            engine = sa.create_engine(f"sqlite:///{building}", connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS})
            self._initdb(engine)
            with engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            engine.dispose()
            os.replace(building, path)
        return path

    def _create_run_file(self, shard: str) -> bool:
        """Copy the template to the run's file unless it exists; whether it was created so."""
        target = self.path_for_shard(shard)
        if shard == INDEX_SHARD_NAME or os.path.exists(target):
            return False
        copying = f"{target}.{os.getpid()}.tmp"
        shutil.copyfile(self._template(), copying)
        try:
            os.link(copying, target)  # never over a file another process created meanwhile
        except FileExistsError:
            return False
        finally:
            os.unlink(copying)
        return True

    @contextmanager
    def _connect(self, shard: str) -> Iterator[sa.engine.Connection]:
        with self._db_lock:
            if shard not in self._initialized_dbs:
                if not self._create_run_file(shard):
                    self._initdb(self._engine(shard))
                self._initialized_dbs.add(shard)
            engine = self._engine(shard)
            with engine.connect() as conn, conn.begin():
                yield conn
            if shard != INDEX_SHARD_NAME:
                os.utime(self.path_for_shard(shard))  # what the webserver's watcher of a live run waits for

    def has_table(self, table_name: str) -> bool:
        """Dagster asks before storing every asset check event, with a new engine each time."""
        if table_name not in self._tables and super().has_table(table_name):
            self._tables.add(table_name)
        return table_name in self._tables

    def _dispose_engines(self) -> None:
        with self._db_lock:
            while self._engines:
                self._engines.popitem()[1].dispose()

    def wipe(self) -> None:
        self._dispose_engines()  # the run files are deleted: no engine may keep one open
        self._tables.clear()
        super().wipe()

    def dispose(self) -> None:
        self._dispose_engines()
        super().dispose()
