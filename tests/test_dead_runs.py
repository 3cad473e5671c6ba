"""A killed `rs eval` leaves no run holding an endpoint's slot (issue 23, item 7). `rs` executes its runs in
its own process, where no run monitoring watches them: SIGKILLed, it leaves its evaluation run STARTED, and
with one run per endpoint at a time a run launched for that endpoint from the UI or the schedule would stay
QUEUED forever. The next `rs` command (here `rs status`, which otherwise never opens the Dagster instance)
finds the process gone and marks the run failed; the answers it stored stay stored."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import dagster as dg
import pytest
from dagster._core.events import DagsterEvent, DagsterEventType
from dagster._core.storage.tags import PARENT_RUN_ID_TAG
from helpers import lab_env, make_lab, rs_process, scripted_model

from rs_dagster.dead_runs import PID_TAG, PROCESSES_DIR, STARTED_TAG, fail_dead_runs, owner_alive, owner_tags, process_started
from rs_dagster.execution.cache import ResponseCache
from rs_dagster.testing.scripted_server import Reply, ScriptedServer

SCOPE = ["eval", "--model", "scripted", "--tasks", "arithmetic", "--tier", "easy", "--samples", "30"]


def _evaluation_runs(settings) -> list[dg.DagsterRun]:
    with dg.DagsterInstance.from_config(str(settings.dagster_home)) as instance:
        return list(instance.get_runs(dg.RunsFilter(job_name="evaluation")))


def test_a_sigkilled_rs_eval_leaves_no_run_started(tmp_path):
    with ScriptedServer(lambda body: Reply(content="ANSWER: 0", delay_s=0.3)) as server:
        settings = make_lab(tmp_path / "lab", {"scripted": scripted_model(server.base_url, concurrency=2)}, tasks=("arithmetic",))
        rs = rs_process(SCOPE, lab_env(settings), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
        try:
            deadline = time.monotonic() + 120
            while server.completion_requests < 6:  # the evaluation run is under way: four answers or so have arrived
                assert rs.poll() is None, f"rs eval ended ({rs.returncode}):\n{rs.communicate()[1]}"
                assert time.monotonic() < deadline, "fewer than 6 requests within 120 s"
                time.sleep(0.02)
        finally:
            os.killpg(rs.pid, signal.SIGKILL)
            rs.wait()
        [run] = _evaluation_runs(settings)
        assert run.status == dg.DagsterRunStatus.STARTED  # left so: nothing watches an in-process run
        assert run.tags[PID_TAG] == str(rs.pid) and run.tags["rs/endpoint"]
        answers = sum(1 for _ in ResponseCache(settings.cache_dir).entries())
        assert answers > 0
        assert (settings.dagster_home / PROCESSES_DIR).is_dir() and any((settings.dagster_home / PROCESSES_DIR).iterdir())

        done = rs_process(["status"], lab_env(settings), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        _, err = done.communicate(timeout=120)
        assert done.returncode == 0, err
        text = " ".join(err.split())
        assert f"run {run.run_id[:8]} (evaluation, scripted|arithmetic) was left STARTED by process {rs.pid}, which died; marked failed" in text, err

        with dg.DagsterInstance.from_config(str(settings.dagster_home)) as instance:
            failed = instance.get_run_by_id(run.run_id)
            assert failed is not None and failed.status == dg.DagsterRunStatus.FAILURE
            [event] = instance.all_logs(run.run_id, of_type=DagsterEventType.RUN_FAILURE)
        message = event.dagster_event.message if event.dagster_event else ""
        assert f"pid {rs.pid}" in message and f"its slot on endpoint {run.tags['rs/endpoint']}" in message, message
        assert sum(1 for _ in ResponseCache(settings.cache_dir).entries()) == answers  # what arrived is kept
        assert not any((settings.dagster_home / PROCESSES_DIR).iterdir())  # the dead process's marker is gone, and so is `rs status`'s

        again = rs_process(["status"], lab_env(settings), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        _, err = again.communicate(timeout=120)
        assert again.returncode == 0 and "marked failed" not in err, err  # marked once


def _started_run(instance: dg.DagsterInstance, tags: dict[str, str], pid: int, status=DagsterEventType.RUN_START) -> dg.DagsterRun:
    """A run in the instance as an in-process run of `pid` leaves it: tagged, and its RUN_START written by that pid."""
    run = instance.create_run_for_job(_job, tags=tags)
    instance.report_dagster_event(DagsterEvent(DagsterEventType.RUN_START.value, job_name=run.job_name, pid=pid), run_id=run.run_id)
    if status != DagsterEventType.RUN_START:
        instance.report_dagster_event(DagsterEvent(status.value, job_name=run.job_name, pid=pid), run_id=run.run_id)
    return run


@dg.op
def _noop() -> None:
    pass


@dg.job
def _job() -> None:
    _noop()


@pytest.fixture
def dead_pid() -> int:
    child = subprocess.Popen(["sleep", "30"])
    child.kill()
    child.wait()
    return child.pid


def test_only_runs_whose_process_is_gone_are_failed(instance, dead_pid):
    me = os.getpid()
    recycled = {**owner_tags(), STARTED_TAG: "1@another-boot"}  # this pid, but a process started at another time
    assert owner_alive(owner_tags()) and not owner_alive(recycled) and process_started(dead_pid) is None
    dead = {**owner_tags(), PID_TAG: str(dead_pid)}
    runs = {
        "recycled": _started_run(instance, recycled, me),
        "dead": _started_run(instance, dead, dead_pid),
        "canceling": _started_run(instance, dead, dead_pid, DagsterEventType.RUN_CANCELING),
        "alive": _started_run(instance, owner_tags(), me),  # a run of this live process
        "untagged": _started_run(instance, {}, dead_pid),  # launched by a run launcher: left to run monitoring
        "re-execution": _started_run(instance, {**dead, PARENT_RUN_ID_TAG: "parent"}, me),  # tags copied from its parent
        "copied": _started_run(instance, dead, me),  # started by another process than the tags name
    }
    lines: list[str] = []
    marked = fail_dead_runs(instance, report=lines.append)
    statuses = {name: instance.get_run_by_id(run.run_id).status for name, run in runs.items()}  # type: ignore[union-attr]
    assert sorted(marked) == sorted(runs[name].run_id for name in ("recycled", "dead", "canceling"))
    assert statuses == {
        "recycled": dg.DagsterRunStatus.FAILURE, "dead": dg.DagsterRunStatus.FAILURE, "canceling": dg.DagsterRunStatus.CANCELED,
        "alive": dg.DagsterRunStatus.STARTED, "untagged": dg.DagsterRunStatus.STARTED,
        "re-execution": dg.DagsterRunStatus.STARTED, "copied": dg.DagsterRunStatus.STARTED,
    }
    assert len(lines) == 3 and f"run {runs['canceling'].run_id[:8]} (_job) was left CANCELING by process {dead_pid}" in "\n".join(lines)
    assert fail_dead_runs(instance) == []  # once
