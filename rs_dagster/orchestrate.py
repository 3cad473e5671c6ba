"""Running evaluations through Dagster in-process, in dependency order, on a given instance, so
runs started from the CLI appear in the Dagster UI with their lineage."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import dagster as dg

from rs_dagster.definitions import build_definitions
from rs_dagster.defs.automation import EVALUATION_ASSETS
from rs_dagster.defs.fft import model_tokenizer_spec
from rs_dagster.defs.partitions import model_task_key
from rs_dagster.defs.prompting import selected_scope
from rs_dagster.defs.resources import EvalScope
from rs_dagster.defs.traces import TRACE_ASSETS
from rs_dagster.errors import RsError, UnknownNameError
from rs_dagster.models.registry import get_model, load_models
from rs_dagster.settings import Settings
from rs_dagster.tasks.manifold import load_manifolds

# The CLI reports a failed step itself, in one line; the full events stay in the instance (Dagster UI).
QUIET_LOGS = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
REPORT_ASSETS = ["surfaces", "projections", "leaderboard", "comparisons", "reasonscore", "report"]


@dataclass
class EvalRuns:
    run_ids: list[str] = field(default_factory=list)


def _materialize(defs: dg.Definitions, selection: Sequence[str], instance: dg.DagsterInstance, partition_key: str | None, runs: EvalRuns, quiet: bool) -> None:
    # materialize() takes built assets only; this project defines no CacheableAssetsDefinition.
    assets = [a for a in defs.assets or [] if isinstance(a, dg.AssetsDefinition | dg.AssetSpec | dg.SourceAsset)]
    result = dg.materialize(
        assets,
        selection=list(selection),
        partition_key=partition_key,
        instance=instance,
        resources=defs.resources,
        run_config=QUIET_LOGS if quiet else None,
        raise_on_error=False,
        tags={"rs/source": "cli"},
    )
    runs.run_ids.append(result.run_id)
    if not result.success:
        raise RsError(_failure_message(result, selection, partition_key))


def _failure_message(result: dg.ExecuteInProcessResult, selection: Sequence[str], partition_key: str | None) -> str:
    for event in result.all_events:
        if event.is_step_failure and event.step_failure_data and event.step_failure_data.error:
            error = event.step_failure_data.error
            cause = error.cause or error
            message = cause.message.strip()
            if cause.cls_name and message.startswith(f"rs_dagster.errors.{cause.cls_name}: "):
                message = message.split(": ", 1)[1]  # an RsError's message says it all; drop the class
            return f"{event.step_key} failed for partition {partition_key}: {message}"
    return f"materializing {list(selection)} for partition {partition_key} failed (run {result.run_id})"


def spectra(
    settings: Settings, instance: dg.DagsterInstance, model_name: str, task_name: str, scope: EvalScope | None = None, quiet: bool = True
) -> EvalRuns:
    """Token-FFT for one model × task: definitions, test cases and spectra; no completions needed."""
    specs = load_manifolds(settings.tasks_dir)
    model = get_model(load_models(settings), model_name)
    if task_name not in specs:
        raise UnknownNameError("task", task_name, list(specs))
    model_tokenizer_spec(model)
    defs, runs = build_definitions(settings, scope), EvalRuns()
    _materialize(defs, ["task_specs", "test_cases"], instance, task_name, runs, quiet)
    _materialize(defs, ["model_specs"], instance, model.name, runs, quiet)
    _materialize(defs, ["fft_spectra"], instance, str(model_task_key(model.name, task_name)), runs, quiet)
    return runs


def evaluate(
    settings: Settings,
    instance: dg.DagsterInstance,
    model_names: Sequence[str],
    task_names: Sequence[str] | None = None,
    scope: EvalScope | None = None,
    quiet: bool = True,
    on_stage: Callable[[str], None] = lambda message: None,
) -> EvalRuns:
    """Materialize definitions, the model × task chain and the report for the given models and tasks
    (default: each model's suite). Unknown names and impossible scopes fail before anything runs."""
    specs = load_manifolds(settings.tasks_dir)
    models = load_models(settings)
    chosen = [get_model(models, name) for name in model_names]
    for task in task_names or []:
        if task not in specs:
            raise UnknownNameError("task", task, list(specs))
    scope = scope or EvalScope()
    pairs = [(m.name, t) for m in chosen for t in (task_names or m.entry.suite.tasks or list(specs))]
    for model, task in pairs:
        if task not in specs:
            raise UnknownNameError("task", task, list(specs))
        selected_scope(specs[task], models[model], scope)
    defs = build_definitions(settings, scope)
    runs = EvalRuns()
    for task in sorted({t for _, t in pairs}):
        on_stage(f"task {task}: specs and test cases")
        _materialize(defs, ["task_specs", "test_cases"], instance, task, runs, quiet)
    for entry in chosen:
        _materialize(defs, ["model_specs"], instance, entry.name, runs, quiet)
    by_name = {m.name: m for m in chosen}
    for model, task in pairs:
        with_fft = ["fft_spectra"] if by_name[model].entry.tokenizer else []
        on_stage(f"{model} × {task}: prompts → completions → scores → points, compression, hazard{' + token-FFT' if with_fft else ''}")
        _materialize(defs, [*EVALUATION_ASSETS, *TRACE_ASSETS, *with_fft], instance, str(model_task_key(model, task)), runs, quiet)
    on_stage("surfaces, projections, leaderboard and report")
    _materialize(defs, REPORT_ASSETS, instance, None, runs, quiet)
    return runs
