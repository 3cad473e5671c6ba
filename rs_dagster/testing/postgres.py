"""A throwaway PostgreSQL server for tests: `with postgres_server() as dsn: ...`.

The cluster is made by `initdb` in a temporary folder, started on a free 127.0.0.1 port (its unix
socket in that folder too, so nothing is written to /var/run), trusted without a password, and stopped
and deleted on exit. PostgreSQL refuses to run as root: under root the server runs as the `postgres`
user (or `nobody`), which then owns the temporary folder.

    with postgres_server() as dsn:            # postgresql://rs@127.0.0.1:PORT/postgres
        lake = create_database(dsn, "lake")   # postgresql://rs@127.0.0.1:PORT/lake
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from rs_dagster.testing.servers import on_free_port

START_TIMEOUT_S = 60.0


def postgres_bin_dir() -> Path | None:
    """The folder of PostgreSQL's server programs (initdb, postgres, pg_ctl, psql), or None."""
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).resolve().parent
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parent.parent.name))
    return Path(found[-1]).parent if found else None


def postgres_available() -> bool:
    """Whether a PostgreSQL server can be started here (tests skip otherwise)."""
    return postgres_bin_dir() is not None


def _run_as() -> pwd.struct_passwd | None:
    """The unprivileged account to run the server as when this process is root; None when not root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise RuntimeError("running as root and no 'postgres' or 'nobody' account exists to run PostgreSQL as")


def _command(bin_dir: Path, program: str, *args: str) -> list[str]:
    return [str(bin_dir / program), *args]


@contextmanager
def postgres_server(user: str = "rs", start_timeout_s: float = START_TIMEOUT_S) -> Iterator[str]:
    """Start a fresh PostgreSQL cluster and yield its DSN, `postgresql://USER@127.0.0.1:PORT/postgres`
    (superuser USER, no password); stop it and delete its files on exit."""
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        raise RuntimeError("PostgreSQL is not installed: no initdb on PATH or in /usr/lib/postgresql/*/bin")
    account = _run_as()
    as_user: dict = {} if account is None else {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}
    env = {**os.environ, "LC_ALL": "C", "LANG": "C"}
    if account is not None:
        env["HOME"] = tempfile.gettempdir()
    root = Path(tempfile.mkdtemp(prefix="rs-pg-"))
    if account is not None:
        os.chown(root, account.pw_uid, account.pw_gid)
    data = root / "data"
    try:
        subprocess.run(
            _command(bin_dir, "initdb", "-D", str(data), "-U", user, "--auth=trust", "-E", "UTF8", "--no-sync", "--no-instructions"),
            check=True, capture_output=True, cwd=root, env=env, **as_user,
        )

        def start(port: int) -> subprocess.Popen:
            with open(root / "server.log", "ab") as log:
                return subprocess.Popen(
                    _command(
                        bin_dir, "postgres", "-D", str(data), "-p", str(port), "-k", str(root),
                        "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off",
                        "-c", "full_page_writes=off", "-c", "max_connections=200",
                    ),
                    stdout=log, stderr=subprocess.STDOUT, cwd=root, env=env, start_new_session=True, **as_user,
                )

        def ready(server: subprocess.Popen, port: int) -> bool:
            return _wait_ready(bin_dir, server, port, user, start_timeout_s, env)

        # SIGINT: PostgreSQL's fast shutdown (roll back open transactions, disconnect clients).
        with on_free_port(start, ready, "PostgreSQL", root / "server.log", signal.SIGINT, timeout_s=30) as port:
            yield f"postgresql://{user}@127.0.0.1:{port}/postgres"
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _wait_ready(bin_dir: Path, server: subprocess.Popen, port: int, user: str, timeout_s: float, env: dict) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            return False
        ready = subprocess.run(
            _command(bin_dir, "pg_isready", "-q", "-h", "127.0.0.1", "-p", str(port), "-U", user, "-d", "postgres"),
            capture_output=True, env=env,
        )
        if ready.returncode == 0:
            return True
        time.sleep(0.1)
    return False


def with_database(dsn: str, database: str) -> str:
    """`dsn` with its database name replaced by `database`."""
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path=f"/{database}"))


def create_database(dsn: str, database: str) -> str:
    """Create database `database` on the server of `dsn` (a no-op when it exists); its DSN."""
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        raise RuntimeError("PostgreSQL is not installed: no psql found")
    if not database.replace("_", "").isalnum():
        raise ValueError(f"database name {database!r}: letters, digits and _ only")
    exists = subprocess.run(
        _command(bin_dir, "psql", "-X", "-At", "-d", dsn, "-c", f"SELECT 1 FROM pg_database WHERE datname = '{database}'"),
        check=True, capture_output=True, text=True,
    )
    if exists.stdout.strip() != "1":
        subprocess.run(_command(bin_dir, "psql", "-X", "-q", "-d", dsn, "-c", f'CREATE DATABASE "{database}"'), check=True, capture_output=True)
    return with_database(dsn, database)
