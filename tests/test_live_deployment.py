"""Automation on a live one-machine deployment (issue 23): `dagster-webserver` and `dagster-daemon` on the
lab's own instance (SQLite, the lab's run queue), the lab's sensors on (edited_inputs, automation,
dead_runs) with short intervals, models on real scripted OpenAI-compatible servers on 127.0.0.1. One
module walks the seven situations of the issue in order and counts the runs and the requests:

1. a model and a task edit arrive while it runs (with a task file that does not read): the model becomes a
   partition without a reload, the edit re-runs only the evaluated partitions of the edited task;
2. an evaluation whose endpoint is down records nothing that makes automation want it again;
3. every run that can send requests carries its endpoint's tag, and runs on one endpoint never overlap;
4. turning the sensors on over an existing lab requests nothing;
5. a re-execution of a CLI run is tagged as a re-execution with the versions at its launch;
6. a closed port is reported as a refused connection;
7. a SIGKILLed `rs eval` does not hold its endpoint's queue: a run queued behind it starts.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import time

import dagster as dg
import pytest
import yaml
from helpers import Oracle, lab_env, make_lab, partition_tags, rs_process, scripted_model

from rs_dagster.defs.automation import SUITE_SCOPE
from rs_dagster.run_queue import REQUESTING_ASSETS, REQUESTING_JOBS
from rs_dagster.testing.cluster import Cluster, local_deployment
from rs_dagster.testing.scripted_server import Reply, ScriptedServer
from rs_dagster.testing.servers import free_port

TASKS = ("arithmetic", "boolean")
SUITE = {"tiers": ["easy"], "precision": 2}
INTERVAL_S = 4
ENV = {"RS_SENSOR_INTERVAL_S": str(INTERVAL_S), "RS_AUTOMATION_INTERVAL_S": str(INTERVAL_S), "RS_EXECUTOR": "in_process"}
"""Short sensor intervals; each run's steps in its run worker's process (the automation under test is the
same; the module took 152 s instead of 430 s with a process per step, on 2 cores)."""
SETTLE_S = 3 * INTERVAL_S + 6
"""Long enough for every sensor to tick at least twice."""

SENSOR = """
query ($selector: SensorSelector!) {
  sensorOrError(sensorSelector: $selector) {
    ... on Sensor { sensorState { status ticks(limit: 50) { status timestamp skipReason runIds error { message } } } }
  }
}"""
START_SENSOR = """
mutation ($selector: SensorSelector!) {
  startSensor(sensorSelector: $selector) { __typename ... on Sensor { sensorState { status } } ... on PythonError { message } }
}"""
BACKFILLS = """
query { partitionBackfillsOrError(status: REQUESTED) { ... on PartitionBackfills { results { id } } } }"""
REEXECUTE = """
mutation ($parent: String!) {
  launchPipelineReexecution(reexecutionParams: {parentRunId: $parent, strategy: ALL_STEPS}) {
    __typename ... on LaunchRunSuccess { run { runId } } ... on PythonError { message }
  }
}"""


def _selector(cluster: Cluster, sensor: str) -> dict[str, str]:
    repository, location = cluster.repository
    return {"repositoryName": repository, "repositoryLocationName": location, "sensorName": sensor}


def _ticks(cluster: Cluster, sensor: str) -> list[dict]:
    return cluster.gql(SENSOR, selector=_selector(cluster, sensor))["sensorOrError"]["sensorState"]["ticks"]


def _quiet(cluster: Cluster, timeout_s: float = 300, since: float = 0) -> list[dict]:
    """Wait until no run is queued or in progress and each sensor has finished a tick that began after the
    last run ended and after `since` (so whatever they made automation want has been asked for); every run."""
    deadline = time.monotonic() + timeout_s
    while True:
        cluster.check_alive()
        runs = cluster.runs()
        busy = [r for r in runs if r["status"] not in ("SUCCESS", "FAILURE", "CANCELED")]
        if not busy and not cluster.gql(BACKFILLS)["partitionBackfillsOrError"]["results"]:  # automation's backfills make their runs later
            last_end = max([since] + [r["endTime"] or 0 for r in runs])
            if all(_ticked_since(cluster, sensor, last_end) for sensor in ("edited_inputs", "automation")) and len(cluster.runs()) == len(runs):
                return runs
        assert time.monotonic() < deadline, f"still busy after {timeout_s} s: {[(r['jobName'], r['status']) for r in busy]}\n{cluster.log_tails()}"
        time.sleep(1)


def _ticked_since(cluster: Cluster, sensor: str, since: float) -> bool:
    """The sensor is off, or a tick of it that began after `since` has finished."""
    state = cluster.gql(SENSOR, selector=_selector(cluster, sensor))["sensorOrError"]["sensorState"]
    return state["status"] != "RUNNING" or any(t["timestamp"] > since + 0.5 and t["status"] != "STARTED" for t in state["ticks"])


def _partition(run: dict) -> str:
    return run["tags"].get("dagster/partition", "")


VIEWS = {"surfaces", "projections", "leaderboard", "reasonscore", "comparisons", "report"}
"""The tables over every partition, which read what is stored and send no request."""


def _sends_requests(run: dict) -> bool:
    """A run that materializes completions: the evaluation job, or a run whose asset selection holds it."""
    return run["jobName"] in REQUESTING_JOBS or bool(REQUESTING_ASSETS & set(run["assets"]))


def _no_overlap(runs: list[dict]) -> bool:
    spans = sorted((r["startTime"], r["endTime"]) for r in runs if r["startTime"] and r["endTime"])
    return all(later[0] >= earlier[1] - 0.2 for earlier, later in itertools.pairwise(spans))


@pytest.fixture(scope="module")
def deployment(tmp_path_factory):
    root = tmp_path_factory.mktemp("live")
    oracle = Oracle(make_lab(root / "probe", {}, TASKS), items_per_point=4)
    closed_port = free_port()  # nothing listens there
    def answer(body: dict) -> Reply:  # the oracle knows the items of the tasks as shipped; an edited task's new items get a plain reply
        try:
            return oracle(body)
        except KeyError:
            return Reply(content="ANSWER: True")

    with ScriptedServer(answer) as shared, ScriptedServer(lambda body: Reply(content="ANSWER: 0", delay_s=0.3)) as slow:
        models = {
            "m1": {**scripted_model(shared.base_url), "suite": SUITE},
            "m2": {**scripted_model(shared.base_url), "suite": SUITE},
            "down": {**scripted_model(f"http://127.0.0.1:{closed_port}/v1", max_retries=0), "suite": SUITE},
            "slow": {**scripted_model(slow.base_url, concurrency=2), "suite": {"tasks": ["arithmetic"], "tiers": ["easy"], "precision": 8}},
        }
        settings = make_lab(root / "lab", models, TASKS)
        env = lab_env(settings)
        # An existing lab: m1 and m2 evaluated on both tasks by `rs eval`, before the deployment starts.
        evaluated = rs_process(["eval", "--model", "m1,m2", "--tasks", ",".join(TASKS), "--tier", "easy", "--samples", "2"], env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        _, err = evaluated.communicate(timeout=600)
        assert evaluated.returncode == 0, err[-3000:]
        with local_deployment(settings, root / "logs", {**env, **ENV}) as cluster:
            yield cluster, settings, shared, slow


def test_automation_holds_on_a_live_deployment(deployment):
    cluster, settings, shared, slow = deployment
    started = time.monotonic()
    figures: dict[str, float | int] = {}
    before = {r["runId"] for r in cluster.runs()}
    sent = shared.completion_requests

    # 4. The sensors turned on over an existing lab: no request is sent, and nothing is materialized but the
    # definitions of the two models `rs eval` never read (down, slow), which the warehouse does not hold yet.
    for sensor in ("edited_inputs", "automation"):
        state = cluster.gql(START_SENSOR, selector=_selector(cluster, sensor))["startSensor"]
        assert state["__typename"] == "Sensor" and state["sensorState"]["status"] == "RUNNING", state
    runs = _quiet(cluster, since=time.time() + SETTLE_S)
    first = [r for r in runs if r["runId"] not in before]
    assert sorted((r["jobName"], _partition(r), r["status"]) for r in first) == [
        ("__ASSET_JOB", "down", "SUCCESS"), ("__ASSET_JOB", "slow", "SUCCESS")], [(r["jobName"], r["tags"]) for r in first]
    assert shared.completion_requests == sent
    assert len(_quiet(cluster, since=time.time() + SETTLE_S)) == len(runs)  # and then nothing
    before = {r["runId"] for r in runs}
    assert all(t["status"] != "FAILURE" for sensor in ("edited_inputs", "automation", "dead_runs") for t in _ticks(cluster, sensor))

    # 1. A model added, a task edited and a task file that does not read, all while it runs.
    models = yaml.safe_load(settings.models_file.read_text())
    models["models"]["m3"] = {**scripted_model(shared.base_url), "suite": SUITE}
    settings.models_file.write_text(yaml.safe_dump(models))
    (settings.tasks_dir / "broken.yaml").write_text("task: arithmetic\nfixed: [unclosed\n")
    path = settings.tasks_dir / "boolean.yaml"
    doc = yaml.safe_load(path.read_text())
    doc["fixed"]["negation_rate"] = 0.4
    path.write_text(yaml.safe_dump(doc))
    edited = time.monotonic()
    runs = _quiet(cluster, timeout_s=420, since=time.time())
    new = [r for r in runs if r["runId"] not in before]
    assert all(r["status"] == "SUCCESS" for r in new), [(r["jobName"], _partition(r), r["status"]) for r in new]
    evaluated = sorted(_partition(r) for r in new if _sends_requests(r))
    assert evaluated == ["m1|boolean", "m2|boolean"], evaluated  # only the evaluated partitions of the edited task; m3 never
    report = [r for r in new if "report" in r["assets"] or r["jobName"] == "refresh_report"]
    assert report, "\n".join(f"{r['jobName']} {r['status']} {r['tags']}" for r in new)
    figures["edit_to_report_s"] = round(max(r["endTime"] for r in report) - (time.time() - (time.monotonic() - edited)), 1)
    with dg.DagsterInstance.from_config(str(settings.dagster_home)) as instance:
        assert "m3" in instance.get_dynamic_partitions("models") and "broken" not in instance.get_dynamic_partitions("tasks")
    ticks = _ticks(cluster, "edited_inputs")
    assert not [t for t in ticks if t["status"] == "FAILURE"], ticks[:3]
    assert any("broken" in (t["skipReason"] or "") for t in ticks), [t["skipReason"] for t in ticks[:5]]
    # 3. Every run that sends requests carries its endpoint's tag; the two on one endpoint did not overlap.
    senders = [r for r in new if _sends_requests(r)]
    assert all(r["tags"].get("rs/endpoint") == shared.base_url.split("//")[1].split("/")[0] for r in senders), [r["tags"] for r in senders]
    assert _no_overlap(senders), [(r["startTime"], r["endTime"]) for r in senders]
    figures["edit_runs"] = len(new)
    figures["edit_requests"] = shared.completion_requests - sent
    before, sent = {r["runId"] for r in runs}, shared.completion_requests

    # 2 and 6. A nightly-style run of a model whose server is down fails, says why, and leaves nothing that
    # makes automation want the partition again.
    nightly = {**partition_tags("down", "arithmetic"), "dagster/schedule_name": "nightly_evaluation"}
    [down] = cluster.wait_for_runs([cluster.launch("evaluation", nightly, yaml.safe_dump(SUITE_SCOPE))], timeout_s=240)
    assert down["status"] == "FAILURE"
    with dg.DagsterInstance.from_config(str(settings.dagster_home)) as instance:
        failure = " ".join(e.dagster_event.step_failure_data.error.to_string() for e in instance.all_logs(down["runId"])
                           if e.dagster_event and e.dagster_event.is_step_failure and e.dagster_event.step_failure_data.error)
        materialized = sorted({e.dagster_event.asset_key.to_user_string() for e in instance.all_logs(down["runId"])
                               if e.dagster_event and e.dagster_event.is_step_materialization})
    assert "connection refused" in failure.lower(), failure
    assert materialized == ["prompts"], materialized  # no completions: the partition is not evaluated
    runs = _quiet(cluster)
    more = [r for r in runs if r["runId"] not in before | {down["runId"]}]
    # Automation asks for nothing of that partition, sends no request; at most a refresh of the tables over every partition
    # that was still pending from the edit (seen 24 s after the edit's last run, 2 times in 5).
    assert all(set(r["assets"]) <= VIEWS and not _partition(r) for r in more), [(r["jobName"], sorted(r["assets"]), _partition(r)) for r in more]
    before = {r["runId"] for r in runs}

    # 5. A re-execution of a CLI run describes itself, and it waits for the same endpoint's queue.
    cli_run = next(r for r in runs if r["tags"].get("rs/source") == "cli" and r["jobName"] == "evaluation" and _partition(r) == "m1|boolean")
    launched = cluster.gql(REEXECUTE, parent=cli_run["runId"])["launchPipelineReexecution"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    twin = cluster.launch("evaluation", partition_tags("m1", "boolean"))
    again = cluster.wait_for_runs([launched["run"]["runId"], twin], timeout_s=240)
    assert [r["status"] for r in again] == ["SUCCESS", "SUCCESS"]
    assert again[0]["tags"]["rs/source"] == "re-execution" and again[1]["tags"]["rs/source"] == "ui"
    assert again[0]["tags"]["rs/versions"] == again[1]["tags"]["rs/versions"] != cli_run["tags"]["rs/versions"]  # boolean was edited since
    assert _no_overlap(again), [(r["startTime"], r["endTime"]) for r in again]
    assert shared.completion_requests == sent  # every answer was stored
    before = {r["runId"] for r in _quiet(cluster)}

    # 7. A SIGKILLed `rs eval` leaves its run STARTED; the dead_runs sensor frees the endpoint, and a run queued
    # behind it for the same endpoint starts. (`rs eval` refuses a lab with a task file that does not read: it goes.)
    (settings.tasks_dir / "broken.yaml").unlink()
    output = settings.home / "killed-rs.log"
    with output.open("wb") as sink:
        rs = rs_process(["eval", "--model", "slow", "--tasks", "arithmetic"], lab_env(settings), stdout=sink, stderr=sink, start_new_session=True)
    deadline = time.monotonic() + 180
    while slow.completion_requests < 4 and rs.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert rs.poll() is None, f"rs eval ended (exit {rs.returncode}) after {slow.completion_requests} requests:\n{output.read_text()[-3000:]}"
    os.killpg(rs.pid, signal.SIGKILL)
    rs.wait()
    assert slow.completion_requests >= 4, output.read_text()[-3000:]
    killed = next(r for r in cluster.runs(job="evaluation") if r["runId"] not in before)
    assert killed["status"] == "STARTED"
    queued = cluster.launch("evaluation", partition_tags("slow", "arithmetic"))
    [after] = cluster.wait_for_runs([queued], timeout_s=240)
    assert after["status"] == "SUCCESS"
    [dead] = cluster.runs([killed["runId"]])
    assert dead["status"] == "FAILURE" and dead["endTime"] <= after["startTime"] + 0.5

    # No two runs of one model × task ever overlapped, whoever launched them (the queue's per-partition limit).
    runs = cluster.runs()
    for key in {_partition(r) for r in runs if "|" in _partition(r)}:
        same = [r for r in runs if _partition(r) == key]
        assert _no_overlap(same), (key, [(r["jobName"], r["tags"].get("rs/source"), r["startTime"], r["endTime"]) for r in same])
    figures |= {"runs": len(runs), "requests_shared": shared.completion_requests, "requests_slow": slow.completion_requests,
                "module_s": round(time.monotonic() - started)}
    print(f"\nlive deployment: {figures}")
