"""Assembles the Dagster definitions; `dagster dev -w workspace.yaml` loads `defs` from here."""

from __future__ import annotations

import os

import dagster as dg

import rs_dagster.defs  # noqa: F401  (warning filters)
from rs_dagster.defs.analysis import build_analysis_assets
from rs_dagster.defs.automation import build_automation
from rs_dagster.defs.comparisons import build_comparison_assets
from rs_dagster.defs.definition import build_definition_assets
from rs_dagster.defs.execution import build_execution_assets
from rs_dagster.defs.fft import build_fft_assets
from rs_dagster.defs.generation import build_generation_assets
from rs_dagster.defs.partitions import MODEL_TASK, MODELS, TASKS
from rs_dagster.defs.prompting import build_prompting_assets
from rs_dagster.defs.reasonscore import build_reasonscore_assets
from rs_dagster.defs.reporting import build_reporting_assets
from rs_dagster.defs.resources import EvalScope, LabResource
from rs_dagster.defs.scoring import build_scoring_assets
from rs_dagster.defs.sql_models import build_sql_assets
from rs_dagster.defs.traces import build_trace_assets
from rs_dagster.defs.watch import build_watch_assets
from rs_dagster.settings import Settings

CODE_LOCATION = __name__
"""The code location's name in the UI: workspace.yaml loads this module, and the location is named after it."""
EXECUTORS = ("default", "in_process", "celery")
"""Values of RS_EXECUTOR: `default` (Dagster's multiprocess executor: a run's steps in processes of its
run worker, on one machine), `in_process` (a run's steps one after another in its run worker's own
process: no process start per step, which costs seconds each on a small machine) or `celery` (each step
a task on a Celery queue, run by `dagster-celery worker` processes on any machine; broker
RS_CELERY_BROKER, result backend RS_CELERY_BACKEND, default the broker). See deploy/README.md."""


def executor_from_env() -> dg.ExecutorDefinition | None:
    """The executor of the jobs launched through the instance (UI, schedule, sensors, daemon), chosen by
    RS_EXECUTOR; None: Dagster's default. In-process runs (`rs eval`, execute_in_process) ignore it.
    The broker and backend URLs stay environment references in the run config, resolved in each run's
    process, so a password in them is never stored with a run."""
    kind = os.environ.get("RS_EXECUTOR", "default").strip().lower() or "default"
    if kind not in EXECUTORS:
        raise ValueError(f"RS_EXECUTOR={kind!r}: expected one of {', '.join(EXECUTORS)}")
    if kind == "default":
        return None
    if kind == "in_process":
        return dg.in_process_executor
    if not os.environ.get("RS_CELERY_BROKER"):
        raise ValueError("RS_EXECUTOR=celery needs RS_CELERY_BROKER, the broker's URL (e.g. redis://host:6379/0)")
    from dagster_celery import celery_executor  # an optional dependency: only a celery deployment installs it

    backend = "RS_CELERY_BACKEND" if os.environ.get("RS_CELERY_BACKEND") else "RS_CELERY_BROKER"
    return celery_executor.configured(
        {"broker": {"env": "RS_CELERY_BROKER"}, "backend": {"env": backend}}, name="celery"
    )


def build_definitions(settings: Settings, scope: EvalScope | None = None, executor: dg.ExecutorDefinition | None = None) -> dg.Definitions:
    assets = [
        *build_definition_assets(TASKS, MODELS),
        *build_generation_assets(TASKS),
        *build_prompting_assets(MODEL_TASK),
        *build_execution_assets(MODEL_TASK),
        *build_scoring_assets(MODEL_TASK),
        *build_analysis_assets(MODEL_TASK),
        *build_trace_assets(MODEL_TASK),
        *build_comparison_assets(),
        *build_fft_assets(MODEL_TASK),
        *build_watch_assets(MODEL_TASK),
        *build_sql_assets(settings.sql_dir),
        *build_reasonscore_assets(),
        *build_reporting_assets(),
    ]
    jobs, schedules, sensors = build_automation(settings)
    return dg.Definitions(
        assets=assets,
        jobs=jobs,
        schedules=schedules,
        sensors=sensors,
        resources={"lab": LabResource.from_settings(settings), "scope": scope or EvalScope()},
        executor=executor,
    )


defs = build_definitions(Settings.from_env(), executor=executor_from_env())
