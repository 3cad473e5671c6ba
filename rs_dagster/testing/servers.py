"""What the throwaway servers the tests start (PostgreSQL, Redis, the Dagster processes) share: a free
loopback port, a stop that cannot hang, and the tail of a log for the error that says why one failed."""

from __future__ import annotations

import signal
import socket
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stop(server: subprocess.Popen, sig: signal.Signals = signal.SIGTERM, timeout_s: float = 10) -> None:
    """Ask the server to stop with `sig`; kill it if it has not within `timeout_s`."""
    if server.poll() is None:
        server.send_signal(sig)
        try:
            server.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def log_tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@contextmanager
def on_free_port(
    start: Callable[[int], subprocess.Popen],
    ready: Callable[[subprocess.Popen, int], bool],
    name: str,
    log: Path,
    sig: signal.Signals = signal.SIGTERM,
    timeout_s: float = 10,
) -> Iterator[int]:
    """`start(port)` a server on a free loopback port and yield the port once `ready(server, port)`; stop it
    with `sig` on exit. Another process may take the port between choosing and binding it, so a server
    that does not become ready is stopped and tried again on another port (5 times), then the error
    names it and shows its log."""
    server: subprocess.Popen | None = None
    try:
        for _attempt in range(5):
            port = free_port()
            server = start(port)
            if ready(server, port):
                break
            stop(server, sig, timeout_s)
            server = None
        if server is None:
            raise RuntimeError(f"{name} did not start; its log:\n{log_tail(log)}")
        yield port
    finally:
        if server is not None:
            stop(server, sig, timeout_s)
