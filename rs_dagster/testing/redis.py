"""A throwaway Redis server for tests and benchmarks: `with redis_server() as url: ...`.

`redis-server` (Debian package `redis-server`) on a free 127.0.0.1 port, with no persistence (no RDB
snapshots, no append-only file) and its working folder in a temporary directory; killed and deleted
on exit. It is the Celery broker and result backend of tests/test_cluster.py and bench/cluster.py.

    with redis_server() as url:     # redis://127.0.0.1:PORT/0
        ...
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rs_dagster.testing.servers import on_free_port

START_TIMEOUT_S = 30.0


def redis_available() -> bool:
    """Whether a Redis server can be started here (tests skip otherwise)."""
    return shutil.which("redis-server") is not None


def _pong(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


@contextmanager
def redis_server(start_timeout_s: float = START_TIMEOUT_S) -> Iterator[str]:
    """Start redis-server on a free loopback port and yield its URL, `redis://127.0.0.1:PORT/0`; stop it
    and delete its folder on exit. Raises RuntimeError (with the server's log) if it does not answer
    PING within `start_timeout_s`."""
    program = shutil.which("redis-server")
    if program is None:
        raise RuntimeError("redis-server is not installed (Debian: apt-get install -y redis-server)")
    root = Path(tempfile.mkdtemp(prefix="rs-redis-"))
    log = root / "redis.log"

    def start(port: int) -> subprocess.Popen:
        return subprocess.Popen(
            [
                program, "--bind", "127.0.0.1", "--port", str(port), "--dir", str(root), "--logfile", str(log),
                "--save", "", "--appendonly", "no", "--daemonize", "no", "--protected-mode", "yes",
            ],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )

    def ready(server: subprocess.Popen, port: int) -> bool:
        deadline = time.monotonic() + start_timeout_s
        while time.monotonic() < deadline and server.poll() is None and not _pong(port):
            time.sleep(0.05)
        return server.poll() is None and _pong(port)

    try:
        with on_free_port(start, ready, "redis-server", log) as port:
            yield f"redis://127.0.0.1:{port}/0"
    finally:
        shutil.rmtree(root, ignore_errors=True)
