"""What the throwaway servers the tests start (PostgreSQL, Redis, the Dagster processes) share: a free
loopback port, a stop that cannot hang, and the tail of a log for the error that says why one failed."""

from __future__ import annotations

import signal
import socket
import subprocess
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
