"""Prompting stage: the exact chat messages each model receives for each selected item."""

import json

import dagster as dg
import polars as pl

from rs_dagster.defs.partitions import MODEL_OF_MODEL_TASK, ON_UPSTREAM_VERSION_CHANGE, TASK_OF_MODEL_TASK, keys_of
from rs_dagster.defs.resources import EvalScope, LabResource
from rs_dagster.errors import InputError
from rs_dagster.models.registry import Model
from rs_dagster.prompting.templates import prompt_hash
from rs_dagster.storage import schemas
from rs_dagster.tasks.base import Item
from rs_dagster.tasks.manifold import TaskSpec


def select_cases(cases: pl.DataFrame, spec: TaskSpec, tiers: list[str] | None, precision: str | int) -> pl.DataFrame:
    """The first n items (prefix-stable) of every point that belongs to one of `tiers` (None: every point)."""
    unknown = [t for t in tiers or [] if t not in spec.doc.tiers]
    if unknown:
        raise InputError(f"unknown tier(s) {unknown} for task {spec.name!r}; tiers: {sorted(spec.doc.tiers)}")
    n = spec.items_per_point(precision)
    if n > spec.max_items_per_point:
        raise InputError(f"task {spec.name!r}: {n} items per point requested, the manifold generates at most {spec.max_items_per_point}")
    selected = cases.filter(pl.col("item_index") < n)
    if tiers is not None:
        selected = selected.filter(pl.col("tiers").list.eval(pl.element().is_in(tiers)).list.any())
    return selected.sort("point_id", "item_index")


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
        suite = scope.resolve(model.entry.suite)
        cases = select_cases(lab.warehouse.read_partition("test_cases", {"task": spec.name}), spec, suite.tiers, suite.precision)
        if cases.is_empty():
            raise InputError(f"no test cases for task {spec.name!r} in tiers {suite.tiers}; materialize test_cases first")
        frame = prompt_frame(model, spec, cases)
        lab.warehouse.replace_partition("prompts", schemas.Prompts, frame, keys)
        return dg.MaterializeResult(
            metadata={
                "rows": frame.height,
                "points": frame["point_id"].n_unique(),
                "tiers": ", ".join(suite.tiers),
                "items_per_point": spec.items_per_point(suite.precision),
                "template": model.entry.template,
                "example": dg.MetadataValue.json(json.loads(frame["messages_json"][0])),
            }
        )

    return [prompts]
