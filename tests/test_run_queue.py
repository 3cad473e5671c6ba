"""The lab's run queue (rs_dagster.run_queue, issue 23): runs launched from the UI, re-executed, scheduled,
sensed or automated are tagged with their model's endpoint, what started them and the versions at launch
before they are QUEUED, so the instance's one-run-per-endpoint limit holds them all; a model whose endpoint
keeps failing is backed off for the automatic sources; `rs eval` waits for another process's run on its
endpoint. The lab's own instance (its dagster.yaml as `rs` writes it) and a code location loaded as the
webserver loads it; runs are launched through the UI's GraphQL mutations."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest
import yaml
from dagster._core.events import DagsterEvent, DagsterEventType
from dagster._core.test_utils import in_process_test_workspace
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
from dagster._daemon.run_coordinator.queued_run_coordinator_daemon import QueuedRunCoordinatorDaemon
from dagster_graphql.client.query import LAUNCH_PIPELINE_EXECUTION_MUTATION, LAUNCH_PIPELINE_REEXECUTION_MUTATION
from dagster_graphql.test.utils import execute_dagster_graphql, infer_job_selector
from helpers import lab_env, make_lab, scripted_model
from helpers import partition_tags as partition

from rs_dagster import interrupts, orchestrate
from rs_dagster.defs.resources import EvalScope
from rs_dagster.errors import RsError
from rs_dagster.freshness import code_fingerprint
from rs_dagster.models.registry import load_models
from rs_dagster.run_queue import (
    BACKED_OFF_TAG,
    BACKOFF,
    CODE_TAG,
    ENDPOINT_FAILED_TAG,
    ENDPOINT_TAG,
    SOURCE_TAG,
    VERSIONS_TAG,
    BackOff,
    LabRunCoordinator,
    backed_off,
    endpoint_turn,
    wait_for_endpoint,
)
from rs_dagster.settings import DAGSTER_YAML, EARLIER_DAGSTER_YAMLS, PACKAGE_ROOT, Settings
from rs_dagster.tasks.manifold import load_manifolds
from rs_dagster.testing.scripted_server import Reply, ScriptedServer

ENDPOINTS = {"alpha": "10.0.0.5:8000", "beta": "10.0.0.6:8000", "gamma": "10.0.0.7:8000", "delta": "10.0.0.8:8000",
             "epsilon": "10.0.0.8:8000"}
"""One model per test that looks at its runs (they share one instance); delta and epsilon share a server."""
AUTOMATION = {"dagster/sensor_name": "default_automation_condition_sensor", "dagster/from_automation_condition": "true",
              "dagster/auto_materialize": "true", "dagster/asset_evaluation_id": "7"}
"""The tags the declarative automation sensor gives its runs (dagster/_daemon/asset_daemon.py)."""


@dg.op
def _send() -> None: ...


@dg.job
def evaluation() -> None:
    """Stands for a run of the lab's `evaluation` job where only its tags and status matter."""
    _send()


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    root = tmp_path_factory.mktemp("queue")
    settings = make_lab(root, {name: scripted_model(f"http://{endpoint}/v1") for name, endpoint in ENDPOINTS.items()})
    with pytest.MonkeyPatch.context() as env:
        for name, value in lab_env(settings).items():
            env.setenv(name, value)  # the coordinator reads the lab from the environment, as the daemon does
        yield settings


@pytest.fixture(scope="module")
def instance(lab):
    with dg.DagsterInstance.from_config(str(lab.dagster_home)) as lab_instance:
        lab_instance.add_dynamic_partitions("models", [*ENDPOINTS, "ghost"])
        lab_instance.add_dynamic_partitions("tasks", ["arithmetic", "boolean"])
        yield lab_instance


@pytest.fixture(scope="module")
def workspace(lab, instance):
    """The code location as the webserver and the daemon load it (definitions built on the lab)."""
    code = lab.home.parent / "lab_definitions.py"
    code.write_text(
        "from pathlib import Path\n"
        "from rs_dagster.definitions import build_definitions\n"
        "from rs_dagster.settings import Settings\n"
        f"defs = build_definitions(Settings(home=Path({str(lab.home)!r}), inputs=Path({str(lab.inputs)!r}), "
        f"db_path=Path({str(lab.db_path)!r}), dagster_home=Path({str(lab.dagster_home)!r})))\n"
    )
    origin = LoadableTargetOrigin(python_file=str(code), attribute="defs", working_directory=str(code.parent))
    with in_process_test_workspace(instance, origin) as context:
        yield context


@pytest.fixture(autouse=True)
def settled_queue(request):
    """After each test, its queued and running runs are canceled: the next test's queue starts empty."""
    yield
    if "instance" in request.fixturenames:
        instance = request.getfixturevalue("instance")
        for run in instance.get_runs(dg.RunsFilter(statuses=[dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.STARTED])):
            instance.report_run_canceled(run, "test over")


def launch(workspace, job: str, tags: dict[str, str], assets: list[str] | None = None) -> dg.DagsterRun:
    """Launch a run as the UI's Launchpad (or Materialize, with `assets`) does."""
    selector = infer_job_selector(workspace, job, asset_selection=[{"path": [a]} for a in assets] if assets else None)
    params = {"selector": selector, "runConfigData": {}, "executionMetadata": {"tags": [{"key": k, "value": v} for k, v in tags.items()]}}
    result = execute_dagster_graphql(workspace, LAUNCH_PIPELINE_EXECUTION_MUTATION, {"executionParams": params})
    launched = result.data["launchPipelineExecution"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    run = workspace.instance.get_run_by_id(launched["run"]["runId"])
    assert run is not None
    return run


def versions(lab: Settings, model: str, task: str = "arithmetic") -> str:
    return f"{load_models(lab)[model].version}|{load_manifolds(lab.tasks_dir)[task].version}"


LIMITS = [{"key": "rs/endpoint", "value": {"applyLimitPerUniqueValue": True}, "limit": 1},
          {"key": "dagster/partition", "value": {"applyLimitPerUniqueValue": True}, "limit": 1}]
"""One run at a time per endpoint, and per partition."""
REFUSED = "12 of 12 requests: connection refused"


def fail(instance: dg.DagsterInstance, model: str, endpoint_failed: str | None = REFUSED, status=dg.DagsterRunStatus.FAILURE) -> str:
    """A finished evaluation run of `model` (as `rs eval` or the schedule leaves one); failed because every
    request to its endpoint failed (`endpoint_failed`: the reason it is tagged with), unless told otherwise."""
    tags = {**partition(model), ENDPOINT_TAG: ENDPOINTS[model], SOURCE_TAG: "cli"}
    if endpoint_failed is not None:
        tags[ENDPOINT_FAILED_TAG] = endpoint_failed
    run = instance.create_run_for_job(evaluation, tags=tags)
    if status == dg.DagsterRunStatus.FAILURE:
        instance.report_run_failed(run)
    else:
        instance.report_dagster_event(DagsterEvent(event_type_value=DagsterEventType.RUN_SUCCESS.value, job_name=run.job_name), run.run_id)
    return run.run_id


def test_the_lab_instance_queues_with_the_lab_coordinator_and_its_tag_limits_hold_it(lab, instance, workspace):
    """The tag limits stay in dagster.yaml's `concurrency: runs:` block: Dagster reads them for any
    QueuedRunCoordinator subclass, and its daemon dequeues one run per endpoint."""
    assert isinstance(instance.run_coordinator, LabRunCoordinator)
    queue = instance.get_concurrency_config().run_queue_config
    assert queue is not None and queue.tag_concurrency_limits == LIMITS
    assert "QUEUED_RUN_COORDINATOR" in instance.get_required_daemon_types()
    runs = [launch(workspace, "evaluation", partition(model, task)) for model, task in
            (("delta", "arithmetic"), ("epsilon", "boolean"), ("alpha", "arithmetic"))]  # delta and epsilon: one server
    assert [run.status for run in runs] == [dg.DagsterRunStatus.QUEUED] * 3

    def dequeued() -> set[str]:
        daemon = QueuedRunCoordinatorDaemon(interval_seconds=1)
        return {run.run_id for run in daemon._get_runs_to_dequeue(instance, instance.get_concurrency_config(), fixed_iteration_time=None)}

    assert dequeued() == {runs[0].run_id, runs[2].run_id}  # epsilon waits for delta: the same endpoint
    instance.report_dagster_event(DagsterEvent(event_type_value=DagsterEventType.RUN_START.value, job_name="evaluation"), runs[0].run_id)
    assert dequeued() == {runs[2].run_id}  # while delta's run is STARTED, epsilon's stays queued
    instance.report_dagster_event(DagsterEvent(event_type_value=DagsterEventType.RUN_SUCCESS.value, job_name="evaluation"), runs[0].run_id)
    assert dequeued() == {runs[1].run_id, runs[2].run_id}
    # A run that sends no request (automation re-scoring alpha|arithmetic) waits for the partition's run all the same.
    rescore = launch(workspace, "__ASSET_JOB", {**partition("alpha"), **AUTOMATION}, assets=["scored_results", "points"])
    assert ENDPOINT_TAG not in rescore.tags
    instance.report_dagster_event(DagsterEvent(event_type_value=DagsterEventType.RUN_START.value, job_name="evaluation"), runs[2].run_id)
    assert rescore.run_id not in dequeued()
    instance.report_dagster_event(DagsterEvent(event_type_value=DagsterEventType.RUN_SUCCESS.value, job_name="evaluation"), runs[2].run_id)
    assert rescore.run_id in dequeued()


def test_a_launch_from_the_ui_is_tagged_with_its_endpoint_source_and_versions(lab, instance, workspace):
    run = launch(workspace, "evaluation", partition("alpha", dimensions=False))  # the partition key alone
    assert run.status == dg.DagsterRunStatus.QUEUED
    assert run.tags[ENDPOINT_TAG] == ENDPOINTS["alpha"] and run.tags[SOURCE_TAG] == "ui"
    assert run.tags[VERSIONS_TAG] == versions(lab, "alpha") and run.tags[CODE_TAG] == code_fingerprint(lab.sql_dir)
    materialize = launch(workspace, "__ASSET_JOB", partition("beta", "boolean"), assets=["prompts", "completions"])  # the asset graph's Materialize
    assert (materialize.tags[ENDPOINT_TAG], materialize.tags[SOURCE_TAG]) == (ENDPOINTS["beta"], "ui")
    no_requests = launch(workspace, "__ASSET_JOB", partition("beta", "boolean"), assets=["prompts"])
    assert ENDPOINT_TAG not in no_requests.tags and no_requests.tags[SOURCE_TAG] == "ui"
    refresh = launch(workspace, "refresh_models", {"dagster/partition": "alpha"})
    assert ENDPOINT_TAG not in refresh.tags and refresh.tags[SOURCE_TAG] == "ui"


def test_a_re_execution_of_a_cli_run_is_described_anew(lab, instance, workspace):
    """The UI's Re-execute copies the parent's tags: rs/source cli, its endpoint and versions then, and
    (issue 23) none of them may stay."""
    parent_tags = {**partition("beta"), SOURCE_TAG: "cli", ENDPOINT_TAG: "old-server:1", VERSIONS_TAG: "0000|1111", CODE_TAG: "c0de",
                   ENDPOINT_FAILED_TAG: REFUSED}
    parent = launch(workspace, "evaluation", parent_tags)
    instance.report_run_failed(parent)
    reexecution = execute_dagster_graphql(workspace, LAUNCH_PIPELINE_REEXECUTION_MUTATION,
                                          {"reexecutionParams": {"parentRunId": parent.run_id, "strategy": "ALL_STEPS"}})
    launched = reexecution.data["launchPipelineReexecution"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    run = instance.get_run_by_id(launched["run"]["runId"])
    assert run is not None and run.tags["dagster/parent_run_id"] == parent.run_id and run.status == dg.DagsterRunStatus.QUEUED
    assert run.tags[SOURCE_TAG] == "re-execution" and run.tags[ENDPOINT_TAG] == ENDPOINTS["beta"]
    assert run.tags[VERSIONS_TAG] == versions(lab, "beta") and run.tags[CODE_TAG] == code_fingerprint(lab.sql_dir)
    assert run.tags[ENDPOINT_FAILED_TAG] == ""  # the parent's outcome, not this run's: emptied (a tag cannot be removed)


@pytest.mark.parametrize(
    ("dagster_tags", "source"),
    [
        ({"dagster/schedule_name": "nightly_evaluation", "dagster/max_retries": "2"}, "schedule"),
        (AUTOMATION, "automation"),
        ({"dagster/sensor_name": "my_sensor"}, "sensor"),
        ({"dagster/backfill": "abcdefgh"}, "backfill"),
        # an automatic retry copies its parent's tags (here a scheduled run's)
        ({"dagster/schedule_name": "nightly_evaluation", "dagster/parent_run_id": "p", "dagster/root_run_id": "p", "dagster/retry_number": "1"}, "retry"),
    ],
)
def test_automatic_runs_are_tagged_with_their_source(lab, instance, workspace, dagster_tags, source):
    run = launch(workspace, "evaluation", {**partition("alpha", "boolean"), **dagster_tags})
    assert run.status == dg.DagsterRunStatus.QUEUED
    assert (run.tags[SOURCE_TAG], run.tags[ENDPOINT_TAG], run.tags[VERSIONS_TAG]) == (source, ENDPOINTS["alpha"], versions(lab, "alpha", "boolean"))


def test_an_automation_run_of_the_asset_graph_is_queued_on_its_endpoint(lab, instance, workspace):
    run = launch(workspace, "__ASSET_JOB", {**partition("alpha"), **AUTOMATION}, assets=["prompts", "completions", "scored_results"])
    assert (run.tags[SOURCE_TAG], run.tags[ENDPOINT_TAG]) == ("automation", ENDPOINTS["alpha"])


def test_an_unknown_model_leaves_the_run_untagged_and_queued_with_a_warning(lab, instance, workspace):
    run = launch(workspace, "evaluation", partition("ghost"))
    assert run.status == dg.DagsterRunStatus.QUEUED and run.tags[SOURCE_TAG] == "ui"
    assert ENDPOINT_TAG not in run.tags and VERSIONS_TAG not in run.tags
    messages = [e.message for e in instance.all_logs(run.run_id, of_type=DagsterEventType.ENGINE_EVENT)]
    assert any("model 'ghost'" in m and "not in" in m for m in messages), messages


def test_a_model_whose_endpoint_keeps_failing_is_backed_off_for_the_automatic_sources(lab, instance, workspace):
    coordinator = instance.run_coordinator
    assert isinstance(coordinator, LabRunCoordinator)
    fail(instance, "gamma")
    fail(instance, "gamma", endpoint_failed=None)  # failed for another reason: the streak starts after it
    fail(instance, "gamma")
    fail(instance, "gamma", endpoint_failed="")  # a re-execution of an endpoint failure that failed otherwise (its copy emptied)
    failures = [fail(instance, "gamma") for _ in range(2)]
    assert backed_off(instance, "gamma") is None  # two in a row are not three
    failures.append(fail(instance, "gamma"))
    backoff = backed_off(instance, "gamma")
    assert isinstance(backoff, BackOff) and backoff.model == "gamma" and backoff.failures == tuple(reversed(failures))
    latest = instance.get_run_record_by_id(failures[-1])
    assert latest is not None and latest.end_time is not None
    assert backoff.until == datetime.fromtimestamp(latest.end_time, UTC) + BACKOFF == datetime.fromtimestamp(latest.end_time, UTC) + timedelta(hours=6)
    assert backoff.last_reason == REFUSED

    scheduled = launch(workspace, "evaluation", {**partition("gamma"), "dagster/schedule_name": "nightly_evaluation"})
    assert scheduled.status == dg.DagsterRunStatus.CANCELED and scheduled.tags[BACKED_OFF_TAG] == backoff.until.isoformat(timespec="seconds")
    canceled = [e.message for e in instance.all_logs(scheduled.run_id, of_type=DagsterEventType.RUN_CANCELED)]
    assert len(canceled) == 1 and "model gamma is backed off until" in canceled[0] and f"{backoff.until:%Y-%m-%d %H:%M}" in canceled[0]
    assert all(run_id[:8] in canceled[0] for run_id in failures) and "connection refused" in canceled[0]
    automated = launch(workspace, "__ASSET_JOB", {**partition("gamma"), **AUTOMATION}, assets=["prompts", "completions"])
    assert automated.status == dg.DagsterRunStatus.CANCELED
    assert backed_off(instance, "gamma") == backoff  # the canceled runs neither prolong nor end it

    by_hand = launch(workspace, "evaluation", partition("gamma"))
    assert by_hand.status == dg.DagsterRunStatus.QUEUED and by_hand.tags[SOURCE_TAG] == "ui"
    sensed = launch(workspace, "refresh_models", {"dagster/partition": "gamma", "dagster/sensor_name": "edited_inputs"})
    assert sensed.status == dg.DagsterRunStatus.QUEUED  # sends no request: never held back
    assert backed_off(instance, "alpha") is None

    later = backoff.until + timedelta(minutes=1)
    assert backed_off(instance, "gamma", now=later) is None and backed_off(instance, "gamma", now=backoff.until - timedelta(minutes=1)) == backoff
    clock, coordinator.clock = coordinator.clock, lambda: later
    try:
        tomorrow = launch(workspace, "evaluation", {**partition("gamma"), "dagster/schedule_name": "nightly_evaluation"})
    finally:
        coordinator.clock = clock
    assert tomorrow.status == dg.DagsterRunStatus.QUEUED and tomorrow.tags[SOURCE_TAG] == "schedule"

    fail(instance, "gamma", endpoint_failed=None, status=dg.DagsterRunStatus.SUCCESS)  # a run that got answers ends the backoff at once
    assert backed_off(instance, "gamma") is None


def test_a_run_whose_every_request_failed_is_tagged_endpoint_failed(tmp_path, instance):
    """`rs eval` against a server that refuses every request: the evaluation run fails, tagged with the
    reason and with its model partition, so backed_off counts it."""
    with ScriptedServer(lambda body: Reply(status=400, content="bad request")) as server:
        settings = make_lab(tmp_path, {"refused": scripted_model(server.base_url, max_retries=0)}, tasks=("arithmetic",))
        with pytest.raises(RsError, match="every request to"):
            orchestrate.evaluate(settings, instance, ["refused"], ["arithmetic"], EvalScope(tiers=["easy"], precision="2", repeats=1))
    [record] = instance.get_run_records(dg.RunsFilter(job_name="evaluation", tags={"dagster/partition/model": "refused"}))
    tags = record.dagster_run.tags
    assert record.dagster_run.status == dg.DagsterRunStatus.FAILURE and "400" in tags[ENDPOINT_FAILED_TAG] and tags[ENDPOINT_TAG].startswith("127.0.0.1:")


def _started(instance: dg.DagsterInstance, endpoint: str, run_id: str | None = None) -> dg.DagsterRun:
    return instance.create_run_for_job(evaluation, run_id=run_id, status=dg.DagsterRunStatus.STARTED, tags={ENDPOINT_TAG: endpoint, SOURCE_TAG: "ui"})


def _finish_later(instance: dg.DagsterInstance, run: dg.DagsterRun, after_s: float) -> threading.Thread:
    def finish() -> None:
        time.sleep(after_s)
        instance.report_dagster_event(DagsterEvent(event_type_value=DagsterEventType.RUN_SUCCESS.value, job_name=run.job_name), run.run_id)

    thread = threading.Thread(target=finish)
    thread.start()
    return thread


def test_rs_eval_waits_while_another_run_holds_its_endpoint(instance):
    assert wait_for_endpoint(instance, "10.1.1.1:80", "evaluation", poll_s=0.05) < 0.5  # nothing holds it: no wait
    holder = _started(instance, "10.1.1.1:80")
    told: list[str] = []
    finisher = _finish_later(instance, holder, 0.6)
    waited = wait_for_endpoint(instance, "10.1.1.1:80", "evaluation for partition alpha|arithmetic", on_wait=told.append, poll_s=0.05)
    finisher.join()
    assert 0.5 <= waited < 5
    assert len(told) == 1 and holder.run_id[:8] in told[0] and "10.1.1.1:80" in told[0]  # told once, naming the run


def test_ctrl_c_stops_the_wait(instance):
    _started(instance, "10.1.1.2:80")
    threading.Timer(0.3, interrupts.request_stop).start()
    try:
        with pytest.raises(interrupts.Interrupted, match="stopped before evaluation"):
            wait_for_endpoint(instance, "10.1.1.2:80", "evaluation", on_wait=lambda message: None, poll_s=0.05)
    finally:
        interrupts.reset()


def test_the_runs_of_one_rs_eval_side_by_side_do_not_wait_for_each_other(instance):
    with endpoint_turn(instance, "10.1.1.3:80", "first") as first:
        _started(instance, "10.1.1.3:80", run_id=first)  # what execute_in_process creates under that id
        started = time.monotonic()
        with endpoint_turn(instance, "10.1.1.3:80", "second", poll_s=0.05) as second:
            assert second != first and time.monotonic() - started < 0.5


def test_run_job_waits_for_the_endpoint_before_it_executes(lab, instance):
    """orchestrate._run_job, as `rs eval` calls it for a run tagged rs/endpoint."""
    holder = _started(instance, ENDPOINTS["beta"])
    defs = orchestrate.build_definitions(lab)
    finisher = _finish_later(instance, holder, 1.0)
    runs = orchestrate.EvalRuns()
    run_id = orchestrate._run_job(defs, "refresh_models", instance, "beta", runs, True, EvalScope(), tags={ENDPOINT_TAG: ENDPOINTS["beta"]})
    finisher.join()
    run, held = instance.get_run_record_by_id(run_id), instance.get_run_record_by_id(holder.run_id)
    assert run is not None and run.dagster_run.status == dg.DagsterRunStatus.SUCCESS and run_id == runs.run_ids[-1]
    assert held is not None and held.end_time is not None and run.start_time is not None
    assert run.start_time >= held.end_time  # started once the other run had ended


def test_the_cli_and_the_queue_name_the_same_tags():
    assert (CODE_TAG, VERSIONS_TAG) == (orchestrate.CODE_TAG, orchestrate.VERSIONS_TAG)


def test_an_older_default_dagster_yaml_gets_the_lab_coordinator_and_an_edited_one_is_kept(tmp_path):
    lab = make_lab(tmp_path / "a", {})
    config = lab.dagster_home / "dagster.yaml"
    event_log_dir = str(lab.dagster_home / "history" / "runs")
    for earlier in EARLIER_DAGSTER_YAMLS:
        config.write_text(earlier.replace("{event_log_dir}", f'"{event_log_dir}"'))
        lab.ensure_dirs()
        assert config.read_text() == DAGSTER_YAML.replace("{event_log_dir}", f'"{event_log_dir}"')
    with dg.DagsterInstance.from_config(str(lab.dagster_home)) as upgraded:
        assert isinstance(upgraded.run_coordinator, LabRunCoordinator)
    edited = EARLIER_DAGSTER_YAMLS[0].replace("{event_log_dir}", f'"{event_log_dir}"') + "run_monitoring:\n  enabled: true\n"
    config.write_text(edited)
    lab.ensure_dirs()
    assert config.read_text() == edited
    assert not [p for p in lab.dagster_home.iterdir() if p.name.startswith(".dagster.yaml")]  # no staged copy left


def test_the_cluster_instance_queues_with_the_lab_coordinator(tmp_path):
    """deploy/dagster.yaml, its PostgreSQL storage left out."""
    config = yaml.safe_load((PACKAGE_ROOT / "deploy" / "dagster.yaml").read_text())
    assert config["run_coordinator"]["module"] == "rs_dagster.run_queue" and config["run_coordinator"]["class"] == "LabRunCoordinator"
    del config["storage"]
    (tmp_path / "dagster.yaml").write_text(yaml.safe_dump(config))
    with dg.DagsterInstance.from_config(str(tmp_path)) as cluster:
        assert isinstance(cluster.run_coordinator, LabRunCoordinator) and cluster.run_coordinator.dequeue_interval_seconds == 2
        queue = cluster.get_concurrency_config().run_queue_config
        assert queue is not None and queue.tag_concurrency_limits == LIMITS
