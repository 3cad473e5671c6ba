"""Jobs, the nightly schedule, the sensor that notices edited inputs and the one that frees the run queue of dead runs."""

import json
import os
from urllib.parse import urlsplit

import dagster as dg

from rs_dagster.dead_runs import fail_dead_runs
from rs_dagster.defs.partitions import model_task_key, register_partitions, unknown_partitions
from rs_dagster.defs.resources import EvalScope
from rs_dagster.defs.traces import TRACE_ASSETS
from rs_dagster.defs.watch import WATCH_ASSETS
from rs_dagster.models.registry import Model, load_each_model, load_models
from rs_dagster.run_queue import backed_off
from rs_dagster.settings import Settings
from rs_dagster.storage.reads import stored_definition_versions
from rs_dagster.storage.warehouse import Warehouse
from rs_dagster.tasks.manifold import load_each_manifold, load_manifolds
from rs_dagster.watch import canary_tasks, night_of

EVALUATION_ASSETS = ["prompts", "completions", "scored_results", "points"]
"""The chain from prompts to per-point statistics; the `evaluation` job adds the trace analyses."""
REPORT_ASSETS = ["surfaces", "projections", "leaderboard", "comparisons", "reasonscore", "report"]
"""The unpartitioned tables over every model × task and the HTML report (the `refresh_report` job)."""
RUN_RETRY_TAGS = {"dagster/max_retries": "2", "dagster/retry_strategy": "FROM_FAILURE"}
SENSOR_INTERVAL_S = int(os.environ.get("RS_SENSOR_INTERVAL_S", "60"))
AUTOMATION_INTERVAL_S = int(os.environ.get("RS_AUTOMATION_INTERVAL_S", "30"))
"""How often the daemon runs the lab's sensors (edited_inputs, dead_runs) and evaluates the assets' automation
conditions (the `automation` sensor); RS_SENSOR_INTERVAL_S, RS_AUTOMATION_INTERVAL_S (the tests use less)."""
SUITE_SCOPE = EvalScope(use_suite=True).run_config()
"""Run config of a nightly run: each model's `suite` from models.yaml (not the scopes stored before)."""


def endpoint_tag(model: Model) -> dict[str, str]:
    """The run tag that the instance's run queue limits to one run per endpoint (host:port only)."""
    return {"rs/endpoint": urlsplit(model.entry.base_url).netloc.rpartition("@")[2]}


def suite_tasks(model: Model, task_names: list[str]) -> list[str]:
    return [t for t in (model.entry.suite.tasks or task_names) if t in task_names]


def build_automation(settings: Settings):
    """The jobs `rs eval` and `rs fft` run (so their runs are listed, and re-executable, on these jobs'
    pages in the UI), the nightly schedule and the edited_inputs sensor. One job per partitioning: a
    job's assets must share their partitions definition. Retries are tagged on the schedule's runs only:
    a failed CLI run is reported by the CLI, not retried behind the user's back."""
    evaluation_job = dg.define_asset_job(
        "evaluation",
        selection=[*EVALUATION_ASSETS, *TRACE_ASSETS],
        description="Evaluates one model on one task (partition: model|task): prompts → completions (the only step "
        "that calls the endpoint) → scored results → points, compression and hazard, with their checks. The scope "
        "(tiers, surfaces, projections, points, precision, repeats) is the `scope` resource of the run config; "
        "without one the run replays every scope the partition was evaluated at. `rs eval` runs one per model × task.",
    )
    tasks_job = dg.define_asset_job(
        "refresh_tasks",
        selection=["task_specs", "test_cases"],
        description="Re-reads a task manifold (partition: task) and generates its test cases; first step of `rs eval`.",
    )
    models_job = dg.define_asset_job(
        "refresh_models", selection=["model_specs"], description="Re-reads a model entry (partition: model); a step of `rs eval`."
    )
    fft_job = dg.define_asset_job(
        "token_fft",
        selection=["fft_spectra"],
        description="Token-FFT of the prompts of one model × task (partition: model|task); needs a `tokenizer:` entry and no "
        "completions. `rs fft` runs it, and `rs eval` after `evaluation` for models with a tokenizer.",
    )
    watch_job = dg.define_asset_job(
        "watch",
        selection=WATCH_ASSETS,
        description="One night of a watched model on one task (partition: model|task; config: the night): its canary asked "
        "afresh (the only step that calls the endpoint), then drift against earlier nights and the memorisation gap. "
        "The `watched_nights` schedule runs it for every watched model at its `watch.hour`; `rs eval --fresh-seeds` for "
        "the memorisation gap of an evaluation.",
    )
    report_job = dg.define_asset_job(
        "refresh_report",
        selection=REPORT_ASSETS,
        description="Recomputes the tables over every model × task (surfaces, projections, leaderboard, comparisons, "
        "ReasonScore) and writes the HTML report; the last step of `rs eval`.",
    )

    @dg.schedule(job=evaluation_job, cron_schedule="0 2 * * *", execution_timezone="UTC", default_status=dg.DefaultScheduleStatus.STOPPED)
    def nightly_evaluation(context: dg.ScheduleEvaluationContext):
        """Every registered model on its configured suite (models.yaml `suite`), one run per partition; a
        model whose endpoint keeps failing is skipped while it is backed off (rs_dagster.run_queue)."""
        models = load_models(settings)
        task_names = list(load_manifolds(settings.tasks_dir))
        register_partitions(context.instance, models, task_names)
        for model in models.values():
            if backoff := backed_off(context.instance, model.name):
                context.log.warning(backoff.message())
                continue
            for task in suite_tasks(model, task_names):
                key = model_task_key(model.name, task)
                yield dg.RunRequest(
                    run_key=f"{context.scheduled_execution_time:%Y-%m-%d}:{key}",
                    partition_key=key,
                    run_config=SUITE_SCOPE,
                    tags={**RUN_RETRY_TAGS, **endpoint_tag(model)},
                )

    @dg.schedule(job=watch_job, cron_schedule="0 * * * *", execution_timezone="UTC", default_status=dg.DefaultScheduleStatus.STOPPED)
    def watched_nights(context: dg.ScheduleEvaluationContext):
        """Each hour, the watched models whose `watch.hour` (UTC) it is: one run per canary task, the night (the
        tick's date) in the run config and the run key, so a night is asked once. Unwatched models are never asked."""
        when = context.scheduled_execution_time
        models = {name: m for name, m in load_models(settings).items() if m.entry.watch is not None and m.entry.watch.hour == when.hour}
        task_names = list(load_manifolds(settings.tasks_dir))
        register_partitions(context.instance, models, task_names)
        night = night_of(when)
        for model in models.values():
            if backoff := backed_off(context.instance, model.name):
                context.log.warning(backoff.message())
                continue
            assert model.entry.watch is not None  # selected above
            for task in canary_tasks(model.entry.watch, task_names):
                key = model_task_key(model.name, task)
                yield dg.RunRequest(
                    run_key=f"watch:{night}:{key}",
                    partition_key=key,
                    run_config={"ops": {"canary": {"config": {"night": night}}}},
                    tags={**RUN_RETRY_TAGS, **endpoint_tag(model), "rs/night": night},
                )

    @dg.sensor(
        asset_selection=["task_specs", "test_cases", "model_specs"],
        minimum_interval_seconds=SENSOR_INTERVAL_S,
        default_status=dg.DefaultSensorStatus.STOPPED,
    )
    def edited_inputs(context: dg.SensorEvaluationContext):
        """Re-materializes task_specs/model_specs partitions whose YAML no longer matches what the warehouse
        holds (their stored version); their new data version then re-runs only the downstream partitions of
        what changed. What is already current is never refreshed, so turning the sensor on over an existing
        lab materializes nothing; the cursor holds what was requested, so a refresh in flight is not asked twice.
        A model or task new to the inputs becomes a partition here (no reload of the code location); a file
        that does not read is skipped, its error logged in the tick, and every other file is still read."""
        requested = json.loads(context.cursor) if context.cursor else {}
        specs, task_errors = load_each_manifold(settings.tasks_dir)
        models, model_errors = load_each_model(settings)
        now = {f"task:{n}": s.version for n, s in specs.items()} | {f"model:{n}": m.version for n, m in models.items()}
        stored = stored_definition_versions(Warehouse.from_settings(settings))
        run_requests = []
        for key, version in now.items():
            if stored.get(key) == version or requested.get(key) == version:
                continue
            kind, name = key.split(":", 1)
            selection = ["task_specs", "test_cases"] if kind == "task" else ["model_specs"]
            run_requests.append(dg.RunRequest(partition_key=name, asset_selection=[dg.AssetKey(a) for a in selection],
                                              tags={"rs/source": "edited_inputs"}))
            requested[key] = version
        problems = [f"task {name}: {error}" for name, error in task_errors.items()] + [f"model {name}: {error}" for name, error in model_errors.items()]
        for problem in problems:
            context.log.error(f"skipped (fix the file; every other input is still read): {problem}")
        context.update_cursor(json.dumps(requested))
        return dg.SensorResult(
            run_requests=run_requests,
            dynamic_partitions_requests=[
                partitions.build_add_request(new) for partitions, new in unknown_partitions(context.instance, models, specs)
            ],
            skip_reason=None if run_requests or not problems else dg.SkipReason("; ".join(problems)),
        )

    @dg.sensor(minimum_interval_seconds=SENSOR_INTERVAL_S, default_status=dg.DefaultSensorStatus.RUNNING)
    def dead_runs(context: dg.SensorEvaluationContext):
        """Marks failed the runs an `rs` process left STARTED when it died (SIGKILL, the OOM killer): they
        would otherwise hold their endpoint's place in the run queue for good. Sends no request, launches nothing."""
        failed = fail_dead_runs(context.instance, report=context.log.warning)
        return dg.SkipReason(f"marked failed: {', '.join(failed)}" if failed else "no run left behind by a dead process")

    automation = dg.AutomationConditionSensorDefinition(
        "automation",
        target=dg.AssetSelection.all(),
        minimum_interval_seconds=AUTOMATION_INTERVAL_S,
        default_status=dg.DefaultSensorStatus.STOPPED,
        description="Evaluates the assets' automation conditions: after an edit (edited_inputs), re-runs the evaluated "
        "partitions of what changed, then the report. Turn it on in the UI with edited_inputs.",
    )

    return ([evaluation_job, tasks_job, models_job, fft_job, report_job, watch_job], [nightly_evaluation, watched_nights],
            [edited_inputs, dead_runs, automation])
