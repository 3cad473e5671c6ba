"""Running evaluations in-process, in dependency order, on a given instance, as the named jobs of the
definitions (rs_dagster.defs.automation), so runs started from the CLI are listed on their jobs' pages in
the Dagster UI, with their partitions and lineage, and can be re-executed from there."""

from __future__ import annotations

import contextlib
import os
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any

import dagster as dg
from dagster._core.definitions.data_version import CODE_VERSION_TAG
from dagster._core.remote_origin import RegisteredCodeLocationOrigin, RemoteJobOrigin, RemoteRepositoryOrigin
from dagster._core.storage.noop_compute_log_manager import NoOpComputeLogManager

from rs_dagster.dead_runs import owner_tags
from rs_dagster.definitions import CODE_LOCATION, build_definitions
from rs_dagster.defs.automation import endpoint_tag
from rs_dagster.defs.definition import DEFINITION_SHA, definition_sha, model_spec_frame, task_spec_frame
from rs_dagster.defs.partitions import model_task_key, register_partitions
from rs_dagster.defs.resources import EvalScope
from rs_dagster.defs.traces import TRACE_ASSETS
from rs_dagster.errors import InputError, RsError, UnknownNameError
from rs_dagster.fft.prompts import model_tokenizer_spec
from rs_dagster.freshness import EVALUATION, REPORT, TOKEN_FFT, Snapshot, code_fingerprint
from rs_dagster.interrupts import stop_if_requested
from rs_dagster.models.registry import Model, get_model, load_models
from rs_dagster.prompting.scope import evaluation_pairs, scope_record, selected_scope
from rs_dagster.report.drawing import drawing_process, warm_up_here
from rs_dagster.run_queue import ENDPOINT_TAG
from rs_dagster.settings import Settings
from rs_dagster.storage.warehouse import Warehouse
from rs_dagster.tasks.manifold import TaskSpec, load_manifolds
from rs_dagster.watch import EVAL_NIGHT

# The CLI reports a failed step itself, in one line; the full events stay in the instance (Dagster UI).
QUIET_LOGS = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
CODE_TAG = "rs/code"
VERSIONS_TAG = "rs/versions"
"""Run tags: the code fingerprint and the model and task versions a run ran with (shown in the UI)."""


ANALYSIS_STEPS = frozenset(TRACE_ASSETS)
"""Steps of the `evaluation` job that nothing measured depends on: when one fails, the answers, scores and
points are stored and the report is still refreshed; the failure is reported and retried by the next run."""


class StepsFailed(RsError):
    """A run that failed at `steps` (their asset names); its message names the first failure."""

    def __init__(self, message: str, steps: frozenset[str]):
        super().__init__(message)
        self.steps = steps


@dataclass
class EvalRuns:
    run_ids: list[str] = field(default_factory=list)
    failed_checks: list[str] = field(default_factory=list)  # ERROR-severity asset checks that failed, one line each


def _origin(defs: dg.Definitions, job_name: str) -> RemoteJobOrigin:
    """The job as the UI loads it: in the code location workspace.yaml names after rs_dagster.definitions."""
    return RemoteRepositoryOrigin(RegisteredCodeLocationOrigin(CODE_LOCATION), defs.get_repository_def().name).get_job_origin(job_name)


@contextmanager
def _runs_created_with_origins(instance: dg.DagsterInstance, defs: dg.Definitions, side_by_side: bool = False) -> Iterator[None]:
    """Give each run execute_in_process creates the origin of the UI's job of the same name (it has none
    of its own): the job's page lists the run and the UI's Re-execute launches it again from the code
    location. Installed once around all the runs, which may be created from several threads; so is one
    set of the instance's python_logs handlers: the instance builds them with logging.config.dictConfig
    at the start of every run, which deadlocks against a run in another thread that is logging. Runs side
    by side do not capture stdout/stderr (the compute logs): the capture redirects the process's file
    descriptors for the length of a run, and two runs' redirections would leave them pointing at a log file;
    their structured event logs are kept as always."""
    create = instance.create_run_for_job
    origins: dict[str, RemoteJobOrigin] = {}  # building one reads the whole repository definition

    def with_origin(job_def: dg.JobDefinition, **kwargs: Any) -> Any:
        origin = origins.get(job_def.name) or origins.setdefault(job_def.name, _origin(defs, job_def.name))
        return create(job_def, remote_job_origin=origin, **kwargs)

    handlers = instance.get_yaml_python_handlers()
    instance.create_run_for_job = with_origin  # type: ignore[method-assign,assignment]
    instance.get_yaml_python_handlers = lambda: handlers  # type: ignore[method-assign]
    capturing = instance.compute_log_manager
    if side_by_side:
        instance._compute_log_manager = NoOpComputeLogManager()
    try:
        yield
    finally:
        del instance.create_run_for_job, instance.get_yaml_python_handlers
        instance._compute_log_manager = capturing


@contextmanager
def _released(settings: Settings) -> Iterator[None]:
    """The warehouse closed as soon as the runs are done (not a moment later): checkpointed, and free
    for other processes, when the evaluation returns."""
    try:
        yield
    finally:
        Warehouse.from_settings(settings).release()


def _run_job(
    defs: dg.Definitions,
    job_name: str,
    instance: dg.DagsterInstance,
    partition_key: str | None,
    runs: EvalRuns,
    quiet: bool,
    scope: EvalScope,
    tags: Mapping[str, str] | None = None,
    ops: Mapping[str, Any] | None = None,
    assets: Sequence[str] | None = None,
) -> str:
    """Execute the job `job_name` of `defs` for one partition. The scope travels in the run config
    (only to jobs that use it), as does `ops` (config by asset), so the run is reproduced when re-executed
    from the UI."""
    stop_if_requested(f"{job_name} for partition {partition_key}")  # after Ctrl-C no further run starts
    job = defs.resolve_job_def(job_name)
    run_config = {**(QUIET_LOGS if quiet else {}), **(scope.run_config() if "scope" in job.required_resource_keys else {}),
                  **({"ops": ops} if ops else {})}
    from rs_dagster.run_queue import endpoint_turn

    # One run per endpoint, as the instance's queue allows: first wait while another process's run holds it.
    with endpoint_turn(instance, (tags or {}).get(ENDPOINT_TAG), f"{job_name} for partition {partition_key}") as run_id:
        result = job.execute_in_process(
            run_config=run_config, instance=instance, partition_key=partition_key, raise_on_error=False, tags={"rs/source": "cli", **owner_tags(), **(tags or {})},
            asset_selection=[dg.AssetKey(asset) for asset in assets] if assets else None, run_id=run_id,
        )
    runs.run_ids.append(result.run_id)
    if not result.success:
        failed = frozenset(event.step_key for event in result.all_events if event.is_step_failure and event.step_key)
        raise StepsFailed(_failure_message(result, job_name, partition_key), failed)
    runs.failed_checks += [
        f"{partition_key}: {check.asset_key.to_user_string()} check {check.check_name} failed: {check.description}"
        for check in result.get_asset_check_evaluations() if not check.passed and check.severity == dg.AssetCheckSeverity.ERROR
    ]
    return result.run_id


def _failure_message(result: dg.ExecuteInProcessResult, job_name: str, partition_key: str | None) -> str:
    for event in result.all_events:
        if event.is_step_failure and event.step_failure_data and event.step_failure_data.error:
            error = event.step_failure_data.error
            cause = error.cause or error
            message = cause.message.strip()
            if cause.cls_name and message.startswith(f"rs_dagster.errors.{cause.cls_name}: "):
                message = message.split(": ", 1)[1]  # an RsError's message says it all; drop the class
            return f"{event.step_key} failed for partition {partition_key}: {message}"
    return f"job {job_name} failed for partition {partition_key} (run {result.run_id})"


def _materialized_as(instance: dg.DagsterInstance, defs: dg.Definitions, asset: str, partition: str, **metadata: str) -> bool:
    """Whether the latest materialization of `asset`'s partition recorded `metadata`, under the asset's
    current code version, in a run that succeeded: then refreshing it again would write the same rows."""
    key = dg.AssetKey(asset)
    records = instance.fetch_materializations(dg.AssetRecordsFilter(asset_key=key, asset_partitions=[partition]), limit=1).records
    materialization = records[0].asset_materialization if records else None
    if materialization is None:
        return False
    if (materialization.tags or {}).get(CODE_VERSION_TAG) != defs.resolve_assets_def(key).code_versions_by_key.get(key):
        return False
    if any(getattr(materialization.metadata.get(name), "value", None) != value for name, value in metadata.items()):
        return False
    run = instance.get_run_by_id(records[0].run_id)
    return run is not None and run.status == dg.DagsterRunStatus.SUCCESS


def _refresh_task(run: Callable[..., str], instance: dg.DagsterInstance, defs: dg.Definitions, warehouse: Warehouse, spec: TaskSpec,
                  on_stage: Callable[[str], None], scopes: Sequence[str] = ()) -> None:
    """Run `refresh_tasks` for the task unless its definition and test cases are as the last one left them
    and the warehouse holds its row (the instance may have written them into another file), generating only
    the items of `scopes` (scope records) when given: the items of a scope a later run needs are generated
    by that run's `prompts`."""
    if _materialized_as(instance, defs, "task_specs", spec.name, **{DEFINITION_SHA: definition_sha(task_spec_frame(spec, ""))}) and (
        _materialized_as(instance, defs, "test_cases", spec.name, spec_version=spec.version)
    ) and warehouse.count_rows("task_specs", {"task": spec.name, "spec_version": spec.version}):
        on_stage(f"task {spec.name}: unchanged since its last refresh")
        return
    on_stage(f"task {spec.name}: specs and test cases")
    run("refresh_tasks", partition_key=spec.name, ops={"test_cases": {"config": {"scopes": list(scopes)}}} if scopes else None)


def _refresh_model(run: Callable[..., str], instance: dg.DagsterInstance, defs: dg.Definitions, warehouse: Warehouse, model: Model) -> None:
    """Run `refresh_models` for the model unless its entry is as the last one left it and the warehouse holds its row."""
    if not (_materialized_as(instance, defs, "model_specs", model.name, **{DEFINITION_SHA: definition_sha(model_spec_frame(model))})
            and warehouse.count_rows("model_specs", {"model": model.name, "model_version": model.version})):
        run("refresh_models", partition_key=model.name)


def spectra(
    settings: Settings, instance: dg.DagsterInstance, model_name: str, task_name: str, scope: EvalScope | None = None, quiet: bool = True
) -> EvalRuns:
    """Token-FFT for one model × task: definitions, test cases and spectra; no completions needed."""
    specs = load_manifolds(settings.tasks_dir)
    model = get_model(load_models(settings), model_name)
    if task_name not in specs:
        raise UnknownNameError("task", task_name, list(specs))
    model_tokenizer_spec(model)
    defs, runs, scope = build_definitions(settings), EvalRuns(), scope or EvalScope()
    run = partial(_run_job, defs, instance=instance, runs=runs, quiet=quiet, scope=scope)
    code = {CODE_TAG: code_fingerprint(settings.sql_dir)}
    warehouse = Warehouse.from_settings(settings)
    register_partitions(instance, [model.name], [task_name])
    with _runs_created_with_origins(instance, defs), _released(settings):
        _refresh_task(run, instance, defs, warehouse, specs[task_name], lambda message: None)
        _refresh_model(run, instance, defs, warehouse, model)
        run_id = run("token_fft", partition_key=str(model_task_key(model.name, task_name)), tags=code)
        _record(settings, TOKEN_FFT, run_id, model, specs[task_name])
    return runs


def watch_night(settings: Settings, instance: dg.DagsterInstance, model_name: str, night: str, quiet: bool = True) -> EvalRuns:
    """One watched night of a model now, as the `watched_nights` schedule runs it: the `watch` job per canary task."""
    from rs_dagster.watch import canary_scope, canary_tasks

    specs = load_manifolds(settings.tasks_dir)
    model = get_model(load_models(settings), model_name)
    if model.entry.watch is None:
        raise InputError(f"model {model_name!r} has no `watch:` entry in models.yaml (a canary scope: tasks, tiers, n, max_requests)")
    tasks = canary_tasks(canary_scope(model), list(specs))
    defs, runs = build_definitions(settings), EvalRuns()
    run = partial(_run_job, defs, instance=instance, runs=runs, quiet=quiet, scope=EvalScope())
    warehouse = Warehouse.from_settings(settings)
    register_partitions(instance, [model.name], tasks)
    with _runs_created_with_origins(instance, defs), _released(settings):
        for task in tasks:
            _refresh_task(run, instance, defs, warehouse, specs[task], lambda message: None)
        _refresh_model(run, instance, defs, warehouse, model)
        for task in tasks:
            run("watch", partition_key=str(model_task_key(model.name, task)), tags={**endpoint_tag(model), "rs/night": night},
                ops={"canary": {"config": {"night": night}}})
    return runs


def default_parallel(models: Sequence[Model], pairs: Sequence[tuple[str, str]]) -> int:
    """Runs side by side when `--parallel` is not given: one per core this process may use, and never more
    of one endpoint's runs than that endpoint's concurrency (a local server answering one request at a time
    gets one run at a time). Threads share one interpreter lock, so more runs than cores only add contention;
    what they overlap is waiting: requests, chart rendering (vl-convert's runtime), DuckDB and SQLite I/O."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    slots, by_name = endpoint_slots(models), {model.name: model for model in models}
    runs_per_endpoint = Counter(_endpoint(by_name[model]) for model, _ in pairs)
    return max(1, min(cores, sum(min(runs, slots[endpoint]) for endpoint, runs in runs_per_endpoint.items())))


def endpoint_slots(models: Sequence[Model]) -> dict[str, int]:
    """Per endpoint (host:port), how many runs that send to it may go side by side: the lowest concurrency
    of its models, so that together they never have more requests in flight than it allows (each run's
    Runner takes an equal share of it: rs_dagster.execution.shares)."""
    slots: dict[str, int] = {}
    for model in models:
        endpoint = _endpoint(model)
        slots[endpoint] = min(slots.get(endpoint, model.entry.concurrency), model.entry.concurrency)
    return slots


def _endpoint(model: Model) -> str:
    return endpoint_tag(model)[ENDPOINT_TAG]


class _Skipped(Exception):
    """A run that was not started because a run it needs failed (that failure is reported instead)."""


def evaluate(
    settings: Settings,
    instance: dg.DagsterInstance,
    model_names: Sequence[str],
    task_names: Sequence[str] | None = None,
    scope: EvalScope | None = None,
    quiet: bool = True,
    on_stage: Callable[[str], None] = lambda message: None,
    parallel: int | None = None,
    fresh_seeds: int | None = None,
    salt: str = "",
) -> EvalRuns:
    """Materialize definitions, the model × task chain and the report for the given models and tasks
    (default: each model's suite). Unknown names and impossible scopes fail before anything runs.
    With `fresh_seeds` (default: each model's suite.fresh_seeds) > 0, each pair's `watch` job then asks that
    many fresh item sets at the points of the model's watch (or suite) for the memorisation gap (rs_dagster.watch).

    Independent runs go side by side, at most `parallel` at once (default: default_parallel, from the cores
    and the endpoints' concurrency; 1 runs one after another), never more runs of one endpoint at once than
    its concurrency (endpoint_slots). Side by side, Dagster's capture of stdout/stderr per run is off; the
    structured event logs stay. Each task's `refresh_tasks`, each model's `refresh_models` (skipped where the
    last one left the same rows and succeeded), then each model × task `evaluation` as soon as its task and
    model are refreshed; `refresh_report` after all of them. A failed run fails only the
    partitions that need it; every failure is reported, one line each, and the report is not refreshed."""
    specs = load_manifolds(settings.tasks_dir)
    scope = scope or EvalScope()
    chosen_pairs = evaluation_pairs(specs, load_models(settings), model_names, task_names, scope)
    pairs = [(model.name, spec.name) for model, spec in chosen_pairs]
    task_scopes: dict[str, list[str]] = {}  # per task, the scopes its evaluations ask for: what its test_cases generate
    for model, spec in chosen_pairs:
        records = task_scopes.setdefault(spec.name, [])
        records.extend(r for r in map(scope_record, selected_scope(spec, model, scope).scopes) if r not in records)
    chosen = list({model.name: model for model, _ in chosen_pairs}.values())
    if parallel is not None and parallel < 1:
        raise InputError(f"--parallel must be at least 1, not {parallel}")
    defs = build_definitions(settings)
    register_partitions(instance, [model.name for model in chosen], task_scopes)
    runs = EvalRuns()
    by_name = {m.name: m for m in chosen}
    run = partial(_run_job, defs, instance=instance, runs=runs, quiet=quiet, scope=scope)
    code = {CODE_TAG: code_fingerprint(settings.sql_dir)}
    analyses_failed: list[str] = []

    workers = parallel or default_parallel(chosen, pairs)
    slots = {endpoint: threading.BoundedSemaphore(limit) for endpoint, limit in endpoint_slots(chosen).items()}
    # Two names for one served model on one endpoint ask the same requests: one pair at a time per task, so
    # the second is answered from the first's cache instead of sending them all again side by side.
    asked_alike = {(_endpoint(m), m.entry.served_model, task): threading.Lock() for m in chosen for task in task_scopes}

    def evaluate_pair(model: str, task: str, needs: Sequence[Future[None]]) -> None:
        if any(need.exception() for need in needs):
            raise _Skipped
        endpoint = _endpoint(by_name[model])
        with asked_alike[(endpoint, by_name[model].entry.served_model, task)], slots[endpoint]:  # always in this order
            evaluate_pair_now(model, task)

    def evaluate_pair_now(model: str, task: str) -> None:
        with_fft = by_name[model].entry.tokenizer is not None
        on_stage(f"{model} × {task}: prompts → completions → scores → points, compression, hazard{' + token-FFT' if with_fft else ''}")
        key = str(model_task_key(model, task))
        versions = {VERSIONS_TAG: f"{by_name[model].version}|{specs[task].version}"}
        try:
            _record(settings, EVALUATION, run("evaluation", partition_key=key, tags={**endpoint_tag(by_name[model]), **code, **versions}), by_name[model], specs[task])
        except StepsFailed as failed:
            if not failed.steps <= ANALYSIS_STEPS:
                raise
            analyses_failed.append(str(failed))  # left unrecorded: the pair stays stale, the next run retries it
        if with_fft:
            _record(settings, TOKEN_FFT, run("token_fft", partition_key=key, tags=code), by_name[model], specs[task])
        sets = by_name[model].entry.suite.fresh_seeds if fresh_seeds is None else fresh_seeds
        if sets:
            on_stage(f"{model} × {task}: {sets} fresh item set(s) → memorisation gap")
            night = f"{EVAL_NIGHT}{salt or f'{datetime.now(UTC):%Y-%m-%d}'}"
            run("watch", partition_key=key, tags={**endpoint_tag(by_name[model]), **code},
                ops={"canary": {"config": {"night": night, "fresh_seeds": sets, "salt": night.removeprefix(EVAL_NIGHT)}}})

    on_stage(f"runs side by side: at most {workers}" + ("" if parallel else " (one per core; --parallel N to choose)"))
    if workers == 1:
        warm_up_here()
    with (
        # Runs side by side draw their charts in a process of their own (drawing it holds the interpreter lock).
        # One run at a time draws in this process: its stdout/stderr capture's helper processes then end with
        # it on Ctrl-C without a traceback, as they did before (with the drawing process they printed one).
        drawing_process() if workers > 1 else contextlib.nullcontext(),
        _runs_created_with_origins(instance, defs, workers > 1),
        _released(settings),
        ThreadPoolExecutor(workers, thread_name_prefix="rs-run") as pool,
    ):
        # Submitted in this order, so a pair's worker only ever waits for refresh runs already started.
        warehouse = Warehouse.from_settings(settings)
        task_runs = {task: pool.submit(_refresh_task, run, instance, defs, warehouse, specs[task], on_stage, task_scopes[task]) for task in sorted(task_scopes)}
        model_runs = {m.name: pool.submit(_refresh_model, run, instance, defs, warehouse, m) for m in chosen}
        pair_runs = [pool.submit(evaluate_pair, model, task, (task_runs[task], model_runs[model])) for model, task in pairs]
        failures = [
            error for future in [*task_runs.values(), *model_runs.values(), *pair_runs]
            if (error := future.exception()) and not isinstance(error, _Skipped)
        ]
        for error in failures:
            if not isinstance(error, RsError):
                raise error
        if failures:
            raise RsError("\n".join(str(error) for error in failures) if len(failures) == 1 else
                          f"{len(failures)} runs failed:\n  " + "\n  ".join(str(error) for error in failures))
        on_stage("surfaces, projections, leaderboard and report")
        try:
            _record(settings, REPORT, run("refresh_report", partition_key=None, tags=code))
        except StepsFailed as failed:
            analyses_failed.append(str(failed))
            if "report" not in failed.steps:  # a table the report shows failed: the report is still written from the rest
                run("refresh_report", partition_key=None, tags=code, assets=["report"])
    if analyses_failed:
        raise RsError("\n".join(analyses_failed) + "\nThe answers, scores and points are stored and the report is refreshed; "
                      "the next `rs eval` runs what failed again (`rs status` shows it stale).")
    return runs


def _record(settings: Settings, stage: str, run_id: str, model: Model | None = None, spec: TaskSpec | None = None) -> None:
    """What the stage's run that just succeeded built from and left: `rs eval` and `rs status` compare it
    with what the warehouse holds later (rs_dagster.freshness)."""
    Snapshot(settings, Warehouse.from_settings(settings)).record(stage, run_id, model, spec)
