"""Jobs, the nightly schedule and the sensor that notices edited inputs."""

import json
from urllib.parse import urlsplit

import dagster as dg

from rs_dagster.defs.partitions import model_task_key
from rs_dagster.models.registry import Model, load_models
from rs_dagster.settings import Settings
from rs_dagster.tasks.manifold import load_manifolds

EVALUATION_ASSETS = ["prompts", "completions", "scored_results", "points"]
RUN_RETRY_TAGS = {"dagster/max_retries": "2", "dagster/retry_strategy": "FROM_FAILURE"}
SUITE_SCOPE = {"resources": {"scope": {"config": {"use_suite": True}}}}
"""Run config of a nightly run: each model's `suite` from models.yaml (not the scopes stored before)."""


def endpoint_tag(model: Model) -> dict[str, str]:
    """The run tag that the instance's run queue limits to one run per endpoint (host:port only)."""
    return {"rs/endpoint": urlsplit(model.entry.base_url).netloc.rpartition("@")[2]}


def suite_tasks(model: Model, task_names: list[str]) -> list[str]:
    return [t for t in (model.entry.suite.tasks or task_names) if t in task_names]


def build_automation(settings: Settings):
    evaluation_job = dg.define_asset_job(
        "evaluation",
        selection=EVALUATION_ASSETS,
        description="Prompts → completions → scored results → points for one model × task partition.",
        tags=RUN_RETRY_TAGS,
    )
    # One job per partitioning: a job's assets must share their partitions definition.
    tasks_job = dg.define_asset_job(
        "refresh_tasks", selection=["task_specs", "test_cases"], description="Re-read a task manifold and regenerate its test cases."
    )
    models_job = dg.define_asset_job("refresh_models", selection=["model_specs"], description="Re-read a model entry.")

    @dg.schedule(job=evaluation_job, cron_schedule="0 2 * * *", execution_timezone="UTC", default_status=dg.DefaultScheduleStatus.STOPPED)
    def nightly_evaluation(context: dg.ScheduleEvaluationContext):
        """Every registered model on its configured suite (models.yaml `suite`), one run per partition."""
        models = load_models(settings)
        task_names = list(load_manifolds(settings.tasks_dir))
        for model in models.values():
            for task in suite_tasks(model, task_names):
                key = model_task_key(model.name, task)
                yield dg.RunRequest(
                    run_key=f"{context.scheduled_execution_time:%Y-%m-%d}:{key}",
                    partition_key=key,
                    run_config=SUITE_SCOPE,
                    tags={**RUN_RETRY_TAGS, **endpoint_tag(model)},
                )

    @dg.sensor(
        asset_selection=["task_specs", "test_cases", "model_specs"],
        minimum_interval_seconds=60,
        default_status=dg.DefaultSensorStatus.STOPPED,
    )
    def edited_inputs(context: dg.SensorEvaluationContext):
        """Re-materializes task_specs/model_specs partitions whose YAML changed; their new data version
        then re-runs only the downstream partitions of what changed."""
        seen = json.loads(context.cursor) if context.cursor else {}
        now = {f"task:{n}": s.version for n, s in load_manifolds(settings.tasks_dir).items()}
        now |= {f"model:{n}": m.version for n, m in load_models(settings).items()}
        for key, version in now.items():
            if seen.get(key) == version:
                continue
            kind, name = key.split(":", 1)
            selection = ["task_specs", "test_cases"] if kind == "task" else ["model_specs"]
            yield dg.RunRequest(run_key=f"{key}:{version}", partition_key=name, asset_selection=[dg.AssetKey(a) for a in selection])
        context.update_cursor(json.dumps(now))

    return [evaluation_job, tasks_job, models_job], [nightly_evaluation], [edited_inputs]
