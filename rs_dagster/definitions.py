"""Assembles the Dagster definitions; `dagster dev -w workspace.yaml` loads `defs` from here."""

from __future__ import annotations

import dagster as dg

import rs_dagster.defs  # noqa: F401  (warning filters)
from rs_dagster.defs.analysis import build_analysis_assets
from rs_dagster.defs.automation import build_automation
from rs_dagster.defs.comparisons import build_comparison_assets
from rs_dagster.defs.definition import build_definition_assets
from rs_dagster.defs.execution import build_execution_assets
from rs_dagster.defs.fft import build_fft_assets
from rs_dagster.defs.generation import build_generation_assets
from rs_dagster.defs.partitions import model_partitions, model_task_partitions, task_partitions
from rs_dagster.defs.prompting import build_prompting_assets
from rs_dagster.defs.reasonscore import build_reasonscore_assets
from rs_dagster.defs.reporting import build_reporting_assets
from rs_dagster.defs.resources import EvalScope, LabResource
from rs_dagster.defs.scoring import build_scoring_assets
from rs_dagster.defs.sql_models import build_sql_assets
from rs_dagster.defs.traces import build_trace_assets
from rs_dagster.models.registry import load_models
from rs_dagster.settings import Settings
from rs_dagster.tasks.manifold import load_manifolds

CODE_LOCATION = __name__
"""The code location's name in the UI: workspace.yaml loads this module, and the location is named after it."""


def build_definitions(settings: Settings, scope: EvalScope | None = None) -> dg.Definitions:
    tasks = sorted(load_manifolds(settings.tasks_dir))
    models = sorted(load_models(settings))
    model_task = model_task_partitions(models, tasks)
    assets = [
        *build_definition_assets(task_partitions(tasks), model_partitions(models)),
        *build_generation_assets(task_partitions(tasks)),
        *build_prompting_assets(model_task),
        *build_execution_assets(model_task),
        *build_scoring_assets(model_task),
        *build_analysis_assets(model_task),
        *build_trace_assets(model_task),
        *build_comparison_assets(),
        *build_fft_assets(model_task),
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
    )


defs = build_definitions(Settings.from_env())
