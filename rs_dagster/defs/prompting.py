"""Prompting stage: the exact chat messages each model receives for each selected item. Prompts
accumulate like the results they produced: one row per item and (model version, task version)."""

import json
from dataclasses import dataclass

import dagster as dg
import polars as pl

from rs_dagster.defs.partitions import MODEL_OF_MODEL_TASK, ON_UPSTREAM_VERSION_CHANGE, TASK_OF_MODEL_TASK, keys_of
from rs_dagster.defs.generation import current_cases
from rs_dagster.defs.resources import EvalScope, LabResource
from rs_dagster.errors import InputError
from rs_dagster.models.registry import Model, Suite
from rs_dagster.prompting.templates import prompt_hash
from rs_dagster.storage import schemas
from rs_dagster.tasks.base import Item
from rs_dagster.tasks.manifold import Point, TaskSpec
from rs_dagster.tasks.selection import select_points


PROMPT_IDENTITY = ("test_case_id", "model_version", "spec_version")


@dataclass(frozen=True)
class Selected:
    """What one evaluation of a model × task covers: its points and items per point."""

    suite: Suite
    points: list[Point]
    count: int


def selected_scope(spec: TaskSpec, model: Model, scope: EvalScope) -> Selected:
    suite = scope.resolve(model.entry.suite)
    count = spec.items_per_point(suite.precision)
    if count < 1:
        raise InputError(f"task {spec.name!r}: {count} items per point requested; expected a positive number")
    return Selected(suite, select_points(spec, suite.selection), count)


def prompt_frame(model: Model, spec: TaskSpec, cases: pl.DataFrame) -> pl.DataFrame:
    rows = []
    for case in cases.iter_rows(named=True):
        item = Item(case["question"], case["answer"], case["guess_chance"], json.loads(case["metadata_json"]))
        params = json.loads(case["params_json"])
        messages = model.template.render(spec.task, item, spec.name, params, spec.doc.global_seed)
        rows.append(
            {
                "model": model.name,
                "task": spec.name,
                "test_case_id": case["test_case_id"],
                "point_id": case["point_id"],
                "prompt_hash": prompt_hash(messages),
                "messages_json": json.dumps(messages, ensure_ascii=False),
                "template": model.entry.template,
                "template_version": model.template_version,
                "model_version": model.version,
                "spec_version": spec.version,
            }
        )
    return pl.DataFrame(rows)


def build_prompting_assets(model_task_parts: dg.PartitionsDefinition) -> list:
    @dg.asset(
        partitions_def=model_task_parts,
        deps=[
            dg.AssetDep("test_cases", partition_mapping=TASK_OF_MODEL_TASK),
            dg.AssetDep("model_specs", partition_mapping=MODEL_OF_MODEL_TASK),
        ],
        group_name="prompting",
        kinds={"python", "duckdb"},
        description="Chat messages per selected item after the model's template; prompt_hash identifies them.",
        automation_condition=ON_UPSTREAM_VERSION_CHANGE,
        code_version="1",
    )
    def prompts(context: dg.AssetExecutionContext, lab: LabResource, scope: EvalScope) -> dg.MaterializeResult:
        keys = keys_of(context)
        model, spec = lab.models()[keys["model"]], lab.task_specs()[keys["task"]]
        selected = selected_scope(spec, model, scope)
        cases = current_cases(lab.warehouse, spec, selected.points, selected.count)
        frame = prompt_frame(model, spec, cases)
        lab.warehouse.upsert_rows("prompts", schemas.Prompts, frame, keys, PROMPT_IDENTITY)
        return dg.MaterializeResult(
            metadata={
                "rows": frame.height,
                "points": frame["point_id"].n_unique(),
                "selection": selected.suite.selection.describe(),
                "items_per_point": selected.count,
                "template": model.entry.template,
                "example": dg.MetadataValue.json(json.loads(frame["messages_json"][0])),
            }
        )

    return [prompts]
