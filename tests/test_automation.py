"""The nightly schedule requests every registered model on its own suite, tagged for run retries and
for the instance's one-run-per-endpoint queue limit, which the lab's dagster.yaml configures."""

import logging
from datetime import UTC, datetime

import dagster as dg
import yaml
from helpers import make_lab, partition_tags, scripted_model

from rs_dagster.definitions import build_definitions
from rs_dagster.run_queue import BACKOFF_RUNS, ENDPOINT_FAILED_TAG, ENDPOINT_TAG


def test_nightly_evaluation_requests_each_model_on_its_suite(tmp_path):
    lab = make_lab(
        tmp_path,
        {
            "alpha": scripted_model("http://user:secret@10.0.0.5:8000/v1", suite={"tasks": ["arithmetic"]}),
            "beta": scripted_model("https://inference.example.com/v1"),  # no task list: every task
        },
    )
    defs = build_definitions(lab)
    schedule = defs.get_schedule_def("nightly_evaluation")
    when = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)
    with dg.instance_for_test() as instance:
        context = dg.build_schedule_context(instance=instance, scheduled_execution_time=when, repository_def=defs.get_repository_def())
        requests = list(schedule.evaluate_tick(context).run_requests)
    assert schedule.cron_schedule == "0 2 * * *" and schedule.execution_timezone == "UTC"
    assert sorted(r.partition_key for r in requests) == ["alpha|arithmetic", "beta|arithmetic", "beta|boolean"]
    assert len({r.run_key for r in requests}) == 3 and all(r.run_key.startswith("2026-11-24:") for r in requests)
    endpoints = {r.partition_key: r.tags["rs/endpoint"] for r in requests}
    assert endpoints == {"alpha|arithmetic": "10.0.0.5:8000", "beta|arithmetic": "inference.example.com", "beta|boolean": "inference.example.com"}
    assert all(r.tags["dagster/max_retries"] == "2" for r in requests)


def test_the_nightly_schedule_skips_a_backed_off_model_and_says_so(tmp_path):
    lab = make_lab(tmp_path, {"alpha": scripted_model("http://127.0.0.1:9/v1"), "beta": scripted_model("http://127.0.0.1:8/v1")}, ["arithmetic"])
    defs = build_definitions(lab)
    schedule = defs.get_schedule_def("nightly_evaluation")
    with dg.instance_for_test() as instance:
        for _ in range(BACKOFF_RUNS):  # alpha's last runs each failed because every request to its endpoint failed
            tags = {**partition_tags("alpha"), ENDPOINT_TAG: "127.0.0.1:9", ENDPOINT_FAILED_TAG: "4 of 4 requests: connection refused (127.0.0.1:9)"}
            instance.report_run_failed(instance.create_run_for_job(defs.get_job_def("evaluation"), tags=tags))
        warnings: list[str] = []
        with dg.build_schedule_context(instance=instance, scheduled_execution_time=datetime.now(UTC), repository_def=defs.get_repository_def()) as context:
            context.log.addHandler(Recorder(warnings))  # the tick's log, as the UI shows it
            requests = list(schedule.evaluate_tick(context).run_requests)
    assert [r.partition_key for r in requests] == ["beta|arithmetic"]
    assert len(warnings) == 1 and "model alpha is backed off until" in warnings[0] and "connection refused (127.0.0.1:9)" in warnings[0], warnings


class Recorder(logging.Handler):
    def __init__(self, messages: list[str]) -> None:
        super().__init__(logging.WARNING)
        self.messages = messages

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_the_code_location_loads_as_the_ui_loads_it(tmp_path):
    """Every job resolves (a job whose assets mix partitionings fails only when the UI loads it)."""
    lab = make_lab(tmp_path, {"alpha": scripted_model("http://127.0.0.1:8000/v1")})
    defs = build_definitions(lab)
    dg.Definitions.validate_loadable(defs)
    jobs = {job.name for job in defs.get_repository_def().get_all_jobs()}
    assert {"evaluation", "refresh_tasks", "refresh_models"} <= jobs


def test_the_lab_instance_retries_runs_and_queues_one_run_per_endpoint_and_per_partition(tmp_path):
    lab = make_lab(tmp_path, {})
    with dg.DagsterInstance.from_config(str(lab.dagster_home)) as instance:
        assert instance.run_retries_enabled
        limits = instance.get_concurrency_config().run_queue_config.tag_concurrency_limits
    assert limits == [{"key": key, "value": {"applyLimitPerUniqueValue": True}, "limit": 1} for key in ("rs/endpoint", "dagster/partition")]


def test_edited_inputs_refreshes_only_what_the_warehouse_does_not_hold(tmp_path):
    """Turned on over an existing lab, the sensor's first tick requests nothing (issue 23: it refreshed every
    task and model, 104,960 test cases); an edit requests only its own partition, once. A model added to
    models.yaml becomes a partition at the next tick (before: DagsterUnknownPartitionError on every tick until a
    reload), and a task file that does not read is reported in the tick without hiding the other edits."""
    lab = make_lab(tmp_path, {"alpha": scripted_model("http://127.0.0.1:9/v1")})
    defs = build_definitions(lab)
    sensor = defs.get_sensor_def("edited_inputs")

    def tick(instance, cursor=None):
        # with the instance's ref, as the daemon's tick has it: run requests may name partitions the tick adds
        context = dg.SensorEvaluationContext(instance.get_ref(), instance=instance, cursor=cursor, repository_def=defs.get_repository_def())
        result = sensor.evaluate_tick(context)
        for added in result.dynamic_partitions_requests or []:  # as the daemon applies them
            instance.add_dynamic_partitions(added.partitions_def_name, added.partition_keys)
        return sorted(r.partition_key for r in result.run_requests or []), result.cursor

    with dg.instance_for_test() as instance:
        requested, cursor = tick(instance)
        assert requested == ["alpha", "arithmetic", "boolean"]  # a new lab: every definition
        assert instance.get_dynamic_partitions("models") == ["alpha"]
        assert sorted(instance.get_dynamic_partitions("tasks")) == ["arithmetic", "boolean"]
        assert tick(instance, cursor)[0] == []  # requested once, not again while the refresh is in flight
        for job, partition in (("refresh_tasks", "arithmetic"), ("refresh_tasks", "boolean"), ("refresh_models", "alpha")):
            assert defs.resolve_job_def(job).execute_in_process(instance=instance, partition_key=partition).success
        assert tick(instance) == ([], "{}")  # an existing lab, first tick: nothing

        path = lab.tasks_dir / "boolean.yaml"
        doc = yaml.safe_load(path.read_text())
        doc["fixed"]["negation_rate"] = 0.4
        path.write_text(yaml.safe_dump(doc))
        requested, cursor = tick(instance)
        assert requested == ["boolean"]
        assert tick(instance, cursor)[0] == []

    with dg.instance_for_test() as instance:  # a model and a task added while the deployment runs, beside a bad file
        requested, cursor = tick(instance)
        for job, partition in (("refresh_tasks", "arithmetic"), ("refresh_tasks", "boolean"), ("refresh_models", "alpha")):
            assert defs.resolve_job_def(job).execute_in_process(instance=instance, partition_key=partition).success
        (lab.tasks_dir / "broken.yaml").write_text("task: arithmetic\nfixed: [unclosed\n")
        models = yaml.safe_load(lab.models_file.read_text())
        models["models"]["m3"] = scripted_model("http://127.0.0.1:9/v1")
        lab.models_file.write_text(yaml.safe_dump(models))
        doc["fixed"]["negation_rate"] = 0.3
        path.write_text(yaml.safe_dump(doc))
        requested, cursor = tick(instance, cursor)
        assert requested == ["boolean", "m3"]  # the bad file stops only itself; no reload of the code location
        assert sorted(instance.get_dynamic_partitions("models")) == ["alpha", "m3"]
        assert "broken" not in instance.get_dynamic_partitions("tasks")
        context = dg.SensorEvaluationContext(instance.get_ref(), instance=instance, cursor=cursor, repository_def=defs.get_repository_def())
        skipped = sensor.evaluate_tick(context)
        assert not skipped.run_requests and "broken" in skipped.skip_message and "tasks/broken.yaml" in skipped.skip_message
        assert defs.resolve_job_def("refresh_models").execute_in_process(instance=instance, partition_key="m3").success
