"""The DuckDB warehouse: one file, short-lived connections, validated partition replacement.

DuckDB allows one writing process per file, so a connection is opened only for the duration of a
read or a write (never across HTTP calls) and a lock held by another process is waited for with
backoff. A partition's rows are replaced in one transaction: readers see the old rows or the new ones.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import random
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import duckdb
import polars as pl

from rs_dagster.errors import SchemaError, StorageError

if TYPE_CHECKING:
    import pandera.polars as pa

    from rs_dagster.settings import Settings

T = TypeVar("T")

LOCK_WAIT_S = 120.0
CONFLICT_RETRIES = 20


def _is_lock_error(exc: Exception) -> bool:
    """Another process holds the file ("Could not set lock on file …: Conflicting lock is held"); not any
    message that merely contains "lock" ("… in block at location 0" of a corrupt file is not worth waiting for)."""
    message = str(exc).lower()
    return "could not set lock" in message or "conflicting lock" in message


def _cannot_open(path: Path, exc: Exception) -> str:
    """Why the DuckDB file does not open; for a file written by a newer DuckDB, how to convert it (it is
    left as it is: the results in it are never lost)."""
    if "newer version of DuckDB" in str(exc) or "created with an newer version" in str(exc):
        script = Path(__file__).with_name("downgrade.py")
        return (f"{path}: written by a newer DuckDB than this one ({duckdb.__version__}); nothing was changed. Convert it once, "
                f"with the DuckDB that wrote it (the lab pinned duckdb 2.0.0 before; the original is kept as a backup): "
                f"python3 -m venv /tmp/duckdb2 && /tmp/duckdb2/bin/pip install duckdb==2.0.0 && /tmp/duckdb2/bin/python {script} {path}")
    return f"{path}: cannot open the DuckDB file (RS_DB): {exc}"


def describe_schema_error(table: str, exc: Exception) -> str:
    """One line per failed column/rule, e.g. `points.accuracy: in_range(0, 1) failed for [1.5]`."""
    import pandera.errors  # here, not at the top: pandera costs ~0.7 s of a start-up that only reads

    if isinstance(exc, pandera.errors.SchemaErrors):
        report = exc.message if isinstance(exc.message, dict) else json.loads(str(exc))
        lines = [
            f"{table}.{item.get('column')}: {item.get('check')}: {item.get('error')}"
            for section in report.values()
            for items in section.values()
            for item in items
        ]
        return f"frame for table {table!r} failed its schema; nothing was written:\n  " + "\n  ".join(lines)
    return f"frame for table {table!r} failed its schema; nothing was written: {exc}"


def validate(table: str, schema: type[pa.DataFrameModel], frame: pl.DataFrame) -> pl.DataFrame:
    """The frame coerced to `schema`, or SchemaError naming each failing column and rule (pandera's verdict;
    a frame whose every rule certainly holds is confirmed in one pass, see one_pass)."""
    import pandera.errors

    from rs_dagster.storage.one_pass import valid_in_one_pass

    confirmed = valid_in_one_pass(schema, frame)
    if confirmed is not None:
        return confirmed
    try:
        return schema.validate(frame, lazy=True)
    except (pandera.errors.SchemaErrors, pandera.errors.SchemaError) as exc:
        raise SchemaError(describe_schema_error(table, exc)) from None



def sql_text(value: str) -> str:
    """`value` as a SQL string literal, for the key filters of reads and writes: binding a
    parameter makes DuckDB import pandas (0.3 s, an eighth of a no-op `rs eval`)."""
    return "'" + str(value).replace("'", "''") + "'"


def key_filter(keys: Mapping[str, str], alias: str = "") -> str:
    """WHERE text matching every column of `keys` (of the table `alias`, if given) to its value (TRUE without keys)."""
    prefix = f"{alias}." if alias else ""
    return " AND ".join(f'{prefix}"{column}" = {sql_text(value)}' for column, value in keys.items()) or "TRUE"


def arrow_frame(relation: duckdb.DuckDBPyRelation) -> pl.DataFrame:
    """A query result as a polars frame (an Arrow table always converts to a DataFrame, never a Series)."""
    frame = pl.from_arrow(relation.to_arrow_table())
    assert isinstance(frame, pl.DataFrame)
    return frame


def scalar(cursor: duckdb.DuckDBPyConnection) -> Any:
    """The first column of the one row of an aggregate query (count(*) and the like always return a row)."""
    row = cursor.fetchone()
    assert row is not None, "an aggregate query returned no row"
    return row[0]


def rollback(con: duckdb.DuckDBPyConnection) -> None:
    """Roll back the open transaction, if any: a COMMIT that failed (a conflict) has already ended it, and
    ROLLBACK's "no transaction is active" must not hide why it failed."""
    try:
        con.execute("ROLLBACK")
    except duckdb.TransactionException as exc:
        if "no transaction is active" not in str(exc):
            raise


def _unchanged(con: duckdb.DuckDBPyConnection, columns: list[str], delete_sql: str, incoming_rows: int) -> bool:
    """Whether the rows `delete_sql` would delete are exactly `incoming` (as a multiset). Then the write
    is skipped: DuckDB does not give back the blocks of deleted rows, so rewriting unchanged rows (test
    cases, prompts and scores of a repeated scope) would grow the file on every evaluation. Counting
    first settles most writes (a new partition, new samples) without comparing every column."""
    doomed_rows = delete_sql.removeprefix("DELETE ")
    if scalar(con.execute(f"SELECT count(*) {doomed_rows}")) != incoming_rows:
        return False
    listed = ", ".join(f'"{c}"' for c in columns)
    doomed = f"SELECT {listed} {doomed_rows}"
    mine = f"SELECT {listed} FROM incoming"
    differing = f"SELECT count(*) FROM (({mine} EXCEPT ALL {doomed}) UNION ALL ({doomed} EXCEPT ALL {mine}))"
    return not scalar(con.execute(differing))


def _sql_literal(value: str | int | float) -> str:
    return sql_text(value) if isinstance(value, str) else repr(value)


def add_columns(con: duckdb.DuckDBPyConnection, table: str, existing: set[str], source: str) -> None:
    """Give `table` (whose columns are `existing`) the columns of the registered relation `source` that it
    lacks, with their DuckDB types. The rows it holds read what rs_dagster.storage.schemas.ADDED_COLUMN_DEFAULTS
    says such a row meant before the column existed (scored_results.scoring_version "1"), as the column's
    DEFAULT; a column it does not name reads NULL there."""
    missing = [(column, column_type) for column, column_type, *_ in con.execute(f'DESCRIBE "{source}"').fetchall() if column not in existing]
    if not missing:
        return
    from rs_dagster.storage.schemas import ADDED_COLUMN_DEFAULTS  # here: pandera costs start-up time, and a column is rarely missing

    defaults = ADDED_COLUMN_DEFAULTS.get(table, {})
    for column, column_type in missing:
        default = f" DEFAULT {_sql_literal(defaults[column])}" if column in defaults else ""
        con.execute(f'ALTER TABLE "{table}" ADD COLUMN "{column}" {column_type}{default}')


def add_schema_columns(con: duckdb.DuckDBPyConnection, table: str, schema: type[pa.DataFrameModel]) -> None:
    """Give `table` the columns of `schema` it lacks (see add_columns; nothing if the table does not exist),
    so a read may name a column that a newer schema added before the next write of the table adds it."""
    try:
        existing = {column for column, *_ in con.execute(f'DESCRIBE "{table}"').fetchall()}
    except duckdb.CatalogException:
        return
    wanted = {column: spec.dtype.type for column, spec in schema.to_schema().columns.items()}
    if set(wanted) <= existing:
        return
    con.register("wanted_columns", pl.DataFrame(schema=wanted))
    try:
        add_columns(con, table, existing, "wanted_columns")
    finally:
        con.unregister("wanted_columns")


LINGER_S = 0.5
"""How long a writable connection stays open after its last use: a run reads and writes the file dozens
of times a second, and opening it costs about 20 ms each time; other processes wait at most this long."""


@dataclass
class _OpenFile:
    con: duckdb.DuckDBPyConnection
    read_only: bool = False
    users: int = 0
    identity: tuple[int, int] = (0, 0)  # (device, inode) of the file opened: a file replaced meanwhile is reopened
    idle_since: float = 0.0
    prepared: set[Callable[[duckdb.DuckDBPyConnection], None]] = field(default_factory=set)


_OPEN_FILES = threading.Condition()
_open: dict[str, _OpenFile] = {}  # the DuckDB files this process has open, by resolved path
_writers_waiting: dict[str, int] = {}


def _identity(path: Path) -> tuple[int, int]:
    try:
        stat = path.stat()
    except FileNotFoundError:
        return (0, 0)
    return (stat.st_dev, stat.st_ino)


def _close(key: str, opened: _OpenFile) -> None:
    """Close an unused open file (the caller holds _OPEN_FILES)."""
    del _open[key]
    opened.con.close()
    _OPEN_FILES.notify_all()


def _checkpoint(con: duckdb.DuckDBPyConnection) -> None:
    """Move the writes from the write-ahead log into the file, as closing the connection does: only then are
    the blocks of rows a write deleted or replaced free for the next write (without it, a partition rewritten
    while the connection stays open grows the file by its whole size every time). Skipped while another
    thread's transaction runs; a later checkpoint covers this one."""
    with contextlib.suppress(duckdb.TransactionException):
        con.execute("CHECKPOINT")


def _close_if_idle(key: str, opened: _OpenFile) -> None:
    with _OPEN_FILES:
        if _open.get(key) is opened and not opened.users and time.monotonic() - opened.idle_since >= LINGER_S * 0.99:
            _close(key, opened)


@atexit.register
def _close_all() -> None:
    with _OPEN_FILES:
        for key, opened in list(_open.items()):
            if not opened.users:
                _close(key, opened)


class Warehouse:
    def __init__(self, path: Path):
        self.path = Path(path)

    @staticmethod
    def from_settings(settings: Settings) -> Warehouse:
        """The lab's warehouse: the shared DuckLake when RS_WAREHOUSE selects one, else the DuckDB file RS_DB."""
        if settings.warehouse is not None:
            from rs_dagster.storage.ducklake import DuckLakeWarehouse

            return DuckLakeWarehouse(settings.warehouse, settings.home)
        return Warehouse(settings.db_path)

    @property
    def location(self) -> str:
        """Where the tables are, as shown to the user (never a password)."""
        return str(self.path)

    @property
    def local_dir(self) -> Path:
        """This host's state folder beside the warehouse (the explorer's cache lives in its cache/)."""
        return self.path.parent

    def exists(self) -> bool:
        """Whether there may be tables to read (a read never creates the DuckDB file)."""
        return self.path.exists()

    def retry_conflicts(self, work: Callable[[], T]) -> T:
        """`work()` (one whole transaction), run again while it conflicts with another's (runs side by side
        in one process both creating a table or adding a column)."""
        for attempt in range(CONFLICT_RETRIES + 1):
            try:
                return work()
            except duckdb.TransactionException:
                if attempt == CONFLICT_RETRIES:
                    raise
                time.sleep(0.01 * (attempt + 1) * (0.5 + random.random()))
        raise AssertionError("unreachable")

    @contextmanager
    def connect(
        self, read_only: bool = False, prepare: Callable[[duckdb.DuckDBPyConnection], None] | None = None
    ) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection for one read or write. Threads of one process (runs side by side) share the open
        file: each gets a cursor of it. A read-only opening is closed when its last user is done, a
        writable one LINGER_S later (so a run's many reads and writes open the file once). A write waits
        for the process's read-only opening of the file to close (readers arriving meanwhile wait with it).
        `prepare` (registering functions, say) runs once on each opening of the file that it is asked for."""
        key = str(self.path.resolve())
        with _OPEN_FILES:
            opened = _open.get(key)
            if opened and not opened.users and opened.identity != _identity(self.path):
                _close(key, opened)  # the file was deleted or replaced since it was opened
            opened = _open.get(key)
            if not read_only and opened and opened.read_only:
                _writers_waiting[key] = _writers_waiting.get(key, 0) + 1
                try:
                    _OPEN_FILES.wait_for(lambda: key not in _open)
                finally:
                    _writers_waiting[key] -= 1
            elif opened and opened.read_only and _writers_waiting.get(key):
                _OPEN_FILES.wait_for(lambda: key not in _open or not _open[key].read_only)
            opened = _open.get(key)
            if opened is None:
                read_only = read_only and self.path.exists()
                connection = self._open(read_only)
                opened = _open[key] = _OpenFile(connection, read_only, identity=_identity(self.path))
            if prepare and prepare not in opened.prepared:
                prepare(opened.con)
                opened.prepared.add(prepare)
            opened.users += 1
        cursor = opened.con.cursor()
        try:
            yield cursor
        finally:
            cursor.close()
            with _OPEN_FILES:
                opened.users -= 1
                if not opened.users:
                    if opened.read_only:
                        _close(key, opened)
                    else:
                        opened.idle_since = time.monotonic()
                        timer = threading.Timer(LINGER_S, _close_if_idle, (key, opened))
                        timer.daemon = True
                        timer.start()

    def reclaim(self, con: duckdb.DuckDBPyConnection) -> None:
        """After a write that deleted or replaced rows: checkpoint, so their blocks are reused (see
        _checkpoint; a checkpoint costs ~10 ms, so writes that only add rows leave theirs to the close)."""
        _checkpoint(con)

    @contextmanager
    def reading(self) -> Iterator[None]:
        """Keep one read-only opening for the reads inside the block, which would each open and close the file
        (~20 ms each); the block may not write. Reads nothing into existence: no file, no opening."""
        if not self.exists():
            yield
            return
        with self.connect(read_only=True):
            yield

    def release(self) -> None:
        """Close this process's opening of the file now if nothing uses it (instead of LINGER_S later):
        at the end of a command, so its last writes are checkpointed into the file and other processes
        need not wait."""
        with _OPEN_FILES:
            key = str(self.path.resolve())
            opened = _open.get(key)
            if opened and not opened.users:
                _close(key, opened)

    def _open(self, read_only: bool) -> duckdb.DuckDBPyConnection:
        """Open the file, waiting with backoff while another process holds its lock."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + LOCK_WAIT_S
        delay = 0.02
        while True:
            try:
                return duckdb.connect(str(self.path), read_only=read_only)
            except duckdb.IOException as exc:
                if not _is_lock_error(exc):
                    raise StorageError(_cannot_open(self.path, exc)) from None
                if time.monotonic() > deadline:
                    raise
                time.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, 1.0)

    def query(self, sql: str, params: list[Any] | None = None) -> pl.DataFrame:
        with self.connect(read_only=True) as con:
            return arrow_frame(con.sql(sql, params=params) if params else con.sql(sql))

    def has_table(self, table: str) -> bool:
        if not self.exists():
            return False
        with self.connect(read_only=True) as con:
            return bool(scalar(con.execute(f"SELECT count(*) FROM information_schema.tables WHERE table_name = {sql_text(table)}")))

    def replace_partition(
        self, table: str, schema: type[pa.DataFrameModel], frame: pl.DataFrame, keys: Mapping[str, str]
    ) -> pl.DataFrame:
        """Validate `frame`, then atomically replace the rows of `table` matching `keys` with it."""
        frame = validate(table, schema, frame)
        for column, value in keys.items():
            wrong = frame.filter(pl.col(column) != value).height
            if wrong:
                raise SchemaError(f"{table}: {wrong} rows have {column} != {value!r}; refusing to write outside the partition")
        self._write(table, frame, f'DELETE FROM "{table}" WHERE {key_filter(keys)}')
        return frame

    def add_missing_columns(self, table: str, schema: type[pa.DataFrameModel]) -> None:
        """add_schema_columns in a transaction of its own: after it, reads of `table` may name every column
        of `schema` (scored_results' scoring_version before the partition's first write by this code)."""
        if not self.exists():
            return

        def add() -> None:
            with self.connect() as con:
                con.execute("BEGIN TRANSACTION")
                try:
                    add_schema_columns(con, table, schema)
                    con.execute("COMMIT")
                except Exception:
                    rollback(con)
                    raise

        self.retry_conflicts(add)

    def upsert_rows(
        self, table: str, schema: type[pa.DataFrameModel], frame: pl.DataFrame, keys: Mapping[str, str], key: str | Sequence[str]
    ) -> None:
        """Validate `frame`, then atomically replace the rows of partition `keys` of `table` that have
        the same identity (`key`, one column or several) by it; every other row stays. This is how
        measured rows accumulate: a narrower or repeated evaluation adds rows and never removes any."""
        if frame.is_empty():
            return
        frame = validate(table, schema, frame)
        columns = [key] if isinstance(key, str) else list(key)
        same = " AND ".join(f'i."{c}" = t."{c}"' for c in columns)
        self._write(table, frame, f'DELETE FROM "{table}" t WHERE {key_filter(keys, "t")} AND EXISTS (SELECT 1 FROM incoming i WHERE {same})')

    def _write(self, table: str, frame: pl.DataFrame, delete_sql: str) -> None:
        """In one transaction: create the table if new (adding columns a newer schema has), delete, insert.
        Runs side by side in one process write to the same tables: a transaction that conflicts with
        another one's (both creating the table or adding a column) is rolled back and tried again."""
        self.retry_conflicts(lambda: self._write_once(table, frame, delete_sql))

    def _write_once(self, table: str, frame: pl.DataFrame, delete_sql: str) -> None:
        with self.connect() as con:
            con.register("incoming", frame)
            con.execute("BEGIN TRANSACTION")
            try:
                con.execute(f'CREATE TABLE IF NOT EXISTS "{table}" AS SELECT * FROM incoming LIMIT 0')
                existing = {row[0] for row in con.execute(f'DESCRIBE "{table}"').fetchall()}
                incoming = [column for column, *_ in con.execute("DESCRIBE incoming").fetchall()]
                if existing == set(incoming) and _unchanged(con, incoming, delete_sql, frame.height):
                    con.execute("COMMIT")
                    return
                add_columns(con, table, existing, "incoming")
                deleted = scalar(con.execute(delete_sql))
                con.execute(f'INSERT INTO "{table}" BY NAME SELECT * FROM incoming')
                con.execute("COMMIT")
            except Exception:
                rollback(con)
                raise
            finally:
                con.unregister("incoming")
            if deleted:
                self.reclaim(con)

    def table(self, table: str, keys: Mapping[str, str] | None = None, order_by: str | None = None) -> pl.DataFrame:
        """The rows of `table` matching `keys` (every row without keys), in `order_by` (column names, as
        SQL's ORDER BY reads them) if given; an empty frame when the table does not exist yet."""
        order = f" ORDER BY {order_by}" if order_by else ""
        return self._unless_missing(table, pl.DataFrame(), lambda: self.query(f'SELECT * FROM "{table}" WHERE {key_filter(keys or {})}{order}'))

    def _unless_missing(self, table: str, missing: T, read: Callable[[], T]) -> T:
        """`read()`, or `missing` when `table` did not exist when it was read. The read is tried first:
        asking the catalog beforehand cost more than most of the reads (a few ms each, hundreds per
        evaluation). DuckDB's error says which table is missing; asking the catalog after the failure
        instead would race with a run side by side that creates the table meanwhile."""
        if not self.exists():
            return missing
        try:
            return read()
        except duckdb.CatalogException as exc:
            if re.search(rf'Table with name "?{re.escape(table)}"? does not exist', str(exc)):
                return missing
            raise

    def columns(self, table: str) -> list[tuple[str, str]]:
        """(name, DuckDB type) of each column of `table`, in table order."""
        with self.connect(read_only=True) as con:
            return [(column, column_type) for column, column_type, *_ in con.execute(f'DESCRIBE "{table}"').fetchall()]

    def count_rows(self, table: str, keys: Mapping[str, str] | None = None) -> int:
        """Rows of `table` matching `keys` (every row without keys); 0 when the table does not exist."""
        def count() -> int:
            with self.connect(read_only=True) as con:
                return int(scalar(con.execute(f'SELECT count(*) FROM "{table}" WHERE {key_filter(keys or {})}')))

        return self._unless_missing(table, 0, count)

    def replace_tables(self, tables: Mapping[str, tuple[type[pa.DataFrameModel], pl.DataFrame]]) -> None:
        """Validate every frame against its schema, then replace all the tables whole in one transaction:
        readers never see one new table beside an old one it was computed with (reasonscore and its tasks)."""
        checked = {name: validate(name, schema, frame) for name, (schema, frame) in tables.items()}
        self.retry_conflicts(lambda: self._replace_tables_once(checked))

    def _replace_tables_once(self, checked: Mapping[str, pl.DataFrame]) -> None:
        with self.connect() as con:
            con.execute("BEGIN TRANSACTION")
            try:
                for name, frame in checked.items():
                    con.register("incoming", frame)
                    con.execute(f'CREATE OR REPLACE TABLE "{name}" AS SELECT * FROM incoming')
                    con.unregister("incoming")
                con.execute("COMMIT")
            except Exception:
                rollback(con)
                raise
            self.reclaim(con)
