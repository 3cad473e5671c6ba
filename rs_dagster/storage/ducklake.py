"""The warehouse many hosts write at once: a DuckLake (catalog in PostgreSQL, Parquet data files in a
shared folder) read and written by the same SQL as the DuckDB file.

Each process opens one in-memory DuckDB, loads the DuckLake and PostgreSQL extensions from their PyPI
packages (duckdb-extension-ducklake, duckdb-extension-postgres: nothing is downloaded), attaches the lake
and uses it; every read or write gets a cursor of it. Everything else is the Warehouse's: validated
writes, a partition replaced in one transaction, accumulation by upsert, unchanged rows never rewritten,
tables created and columns added on first write. What differs is concurrency: DuckLake lets every
process write, and a commit that conflicts with another's (two hosts creating the same table, rewriting
rows of the same table at once) fails; it is then run again from the start, with backoff, until it
commits, so a conflict never reaches the user."""

from __future__ import annotations

import atexit
import importlib.util
import os
import random
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import duckdb

from rs_dagster.errors import StorageError
from rs_dagster.storage.shared import WAREHOUSE_DATA_ENV, WAREHOUSE_ENV, SharedWarehouse, scrub
from rs_dagster.storage.warehouse import Warehouse, rollback

T = TypeVar("T")

ALIAS = "rs_lake"
CONFLICT_WAIT_S = 300.0
"""How long a write keeps retrying conflicting commits (each try backs off up to a second)."""
CREATE_WAIT_S = 60.0
"""How long opening a new lake waits for another host that is creating its catalog at the same moment."""

BUILT_FOR = "1.5.5"
"""The DuckDB version the lab pins: the newest for which both extensions are published on PyPI."""
EXTENSIONS = {  # extension name (its entry point): the PyPI package that ships it, the file's name there
    "postgres_scanner": ("duckdb_extension_postgres", "postgres", "duckdb-extension-postgres"),
    "ducklake": ("duckdb_extension_ducklake", "ducklake", "duckdb-extension-ducklake"),
}


def extension_file(name: str) -> Path:
    """The extension file of the installed PyPI package for this DuckDB version; a StorageError saying what
    to install when it is missing or built for another DuckDB."""
    module, stem, package = EXTENSIONS[name]
    spec = importlib.util.find_spec(module)
    install = f"pip install duckdb=={BUILT_FOR} {' '.join(f'{p}=={BUILT_FOR}' for _, _, p in EXTENSIONS.values())}"
    if spec is None or not spec.submodule_search_locations:
        raise StorageError(f"{WAREHOUSE_ENV}=ducklake:… needs the {package} package for DuckDB {duckdb.__version__}: {install}")
    root = Path(next(iter(spec.submodule_search_locations))) / "extensions"
    wanted = root / f"v{duckdb.__version__}" / f"{stem}.duckdb_extension"
    if not wanted.is_file():
        built = sorted(p.parent.name for p in root.glob(f"v*/{stem}.duckdb_extension"))
        raise StorageError(f"{WAREHOUSE_ENV}=ducklake:… needs {package} built for DuckDB {duckdb.__version__} (installed: "
                           f"{', '.join(built) or 'none'}): {install}")
    return wanted


_LINKS: dict[str, Path] = {}
_LINKS_LOCK = threading.Lock()


def _loadable(name: str) -> Path:
    """A path DuckDB can LOAD the extension from: DuckDB derives the entry point from the file name, and the
    postgres package names its file postgres.duckdb_extension where the entry point is postgres_scanner's;
    so it is loaded through a link of the right name in a folder of this process's own."""
    source = extension_file(name)
    if source.stem == name:
        return source
    with _LINKS_LOCK:
        if name not in _LINKS or not _LINKS[name].exists():
            folder = Path(tempfile.mkdtemp(prefix="rs-duckdb-ext-"))
            atexit.register(shutil.rmtree, folder, True)
            link = folder / f"{name}.duckdb_extension"
            try:
                link.symlink_to(source)
            except OSError:
                shutil.copyfile(source, link)
            _LINKS[name] = link
        return _LINKS[name]


def is_conflict(exc: Exception) -> bool:
    """Whether `exc` is a commit that lost to another transaction (run it again) rather than a failure."""
    return isinstance(exc, duckdb.TransactionException)


@dataclass
class _Lake:
    con: duckdb.DuckDBPyConnection
    prepared: set[Callable[[duckdb.DuckDBPyConnection], None]] = field(default_factory=set)


_LAKES: dict[tuple[str, str | None], _Lake] = {}
_LAKES_LOCK = threading.Lock()
_LAKES_PID = os.getpid()


class DuckLakeWarehouse(Warehouse):
    """The Warehouse on a DuckLake; `local_dir` is this host's state folder (its caches), never shared."""

    def __init__(self, target: SharedWarehouse, local_dir: Path):
        self.target = target
        self._local_dir = Path(local_dir)

    @property
    def location(self) -> str:
        return str(self.target)

    @property
    def local_dir(self) -> Path:
        return self._local_dir

    def exists(self) -> bool:
        return True  # a lake is created on first connection; an empty one reads as no tables

    def _lake(self) -> _Lake:
        """This process's connection to the lake, opened on first use (a forked child opens its own)."""
        global _LAKES_PID
        key = (self.target.catalog, self.target.data_path)
        with _LAKES_LOCK:
            if os.getpid() != _LAKES_PID:  # inherited through fork: never used here, never closed here
                _LAKES.clear()
                _LAKES_PID = os.getpid()
            lake = _LAKES.get(key)
            if lake is None:
                lake = _LAKES[key] = _Lake(self._attach())
            return lake

    def _attach(self) -> duckdb.DuckDBPyConnection:
        """An in-memory DuckDB with the lake attached and in use. Hosts that open a new lake at the same
        moment race to create its catalog tables; the losers fail and attach again, to the lake the winner made."""
        deadline = time.monotonic() + CREATE_WAIT_S
        while True:
            spills = str(self.local_dir / "duckdb-tmp")  # never the current directory's .tmp
            con = duckdb.connect(":memory:", config={"autoinstall_known_extensions": False, "temp_directory": spills})
            try:
                for name in EXTENSIONS:
                    con.execute(f"LOAD '{_quote(str(_loadable(name)))}'")
                options = ""
                if self.target.data_path:
                    Path(self.target.data_path).mkdir(parents=True, exist_ok=True)
                    options = f" (DATA_PATH '{_quote(self.target.data_path)}')"
                con.execute(f"ATTACH '{_quote('ducklake:postgres:' + self.target.catalog)}' AS {ALIAS}{options}")
                con.execute(f"USE {ALIAS}")
                return con
            except duckdb.Error as exc:
                con.close()
                creating = "Failed to initialize DuckLake" in str(exc) and ("already exists" in str(exc) or "duplicate key" in str(exc))
                if not creating or time.monotonic() > deadline:
                    raise StorageError(self._explain(exc)) from None
            time.sleep(0.05 + 0.2 * random.random())

    def _explain(self, exc: Exception) -> str:
        message = scrub(str(exc), self.target.catalog)
        if "data_path is not set" in message:
            return (f"{WAREHOUSE_ENV}: the lake at {self.location} is new and needs a folder for its data files: "
                    f"set {WAREHOUSE_DATA_ENV} to an absolute path every host mounts")
        if "does not match existing data path" in message:
            first = message.split("\n", 1)[0].replace("DATA_PATH parameter", f"{WAREHOUSE_DATA_ENV}")
            return f"{first} of the lake at {self.location}: set {WAREHOUSE_DATA_ENV} to the lake's folder (or unset it)"
        return f"cannot open the shared warehouse {self.location} ({WAREHOUSE_ENV}): {message}"

    @contextmanager
    def connect(
        self, read_only: bool = False, prepare: Callable[[duckdb.DuckDBPyConnection], None] | None = None
    ) -> Iterator[duckdb.DuckDBPyConnection]:
        """A cursor of this process's lake connection, for one read or write. Readers never wait for writers;
        a read-only block reads in one transaction, so every query of it (a view's) sees the same snapshot.
        `prepare` runs once on the connection."""
        lake = self._lake()
        if prepare and prepare not in lake.prepared:
            with _LAKES_LOCK:
                if prepare not in lake.prepared:
                    prepare(lake.con)
                    lake.prepared.add(prepare)
        cursor = lake.con.cursor()
        try:
            cursor.execute(f"USE {ALIAS}")
            if read_only:
                cursor.execute("BEGIN TRANSACTION")
            yield cursor
        except duckdb.Error as exc:
            secrets = scrub(str(exc), self.target.catalog)
            if secrets != str(exc):  # never let a message carry the DSN's password
                raise type(exc)(secrets) from None
            raise
        finally:
            if read_only:
                rollback(cursor)
            cursor.close()

    def release(self) -> None:
        """Nothing to release: a lake holds no lock (its commits are durable when made); the connection stays
        open for the process's next read or write."""

    def reclaim(self, con: duckdb.DuckDBPyConnection) -> None:
        """Nothing to do per write: the lake's files are immutable (their upkeep is DuckLake's maintenance)."""

    def has_table(self, table: str) -> bool:
        with self.connect(read_only=True) as con:
            found = con.execute(
                "SELECT count(*) FROM information_schema.tables WHERE table_catalog = ? AND table_name = ?", [ALIAS, table]
            ).fetchone()
            return bool(found and found[0])

    def retry_conflicts(self, work: Callable[[], T]) -> T:
        """`work()` (one whole transaction), run again while its commit conflicts with another process's."""
        deadline = time.monotonic() + CONFLICT_WAIT_S
        delay = 0.02
        while True:
            try:
                return work()
            except duckdb.Error as exc:
                if not is_conflict(exc) or time.monotonic() > deadline:
                    raise
            time.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 1.5, 1.0)


def _quote(text: str) -> str:
    return text.replace("'", "''")


@atexit.register
def _close_lakes() -> None:
    with _LAKES_LOCK:
        if os.getpid() == _LAKES_PID:
            for lake in _LAKES.values():
                lake.con.close()
        _LAKES.clear()
