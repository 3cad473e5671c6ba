"""Prompting stage: the exact chat messages each model receives for each selected item. Prompts
accumulate like the results they produced: one row per item and (model version, task version)."""

import json
from collections.abc import Sequence
from dataclasses import dataclass

import dagster as dg
import polars as pl

from rs_dagster.defs.checks import schema_check_result, schema_check_spec
from rs_dagster.defs.generation import current_cases
from rs_dagster.defs.metadata import OWNERS, asset_tags, definition_metadata, table_metadata
from rs_dagster.defs.partitions import MODEL_OF_MODEL_TASK, ONLY_WHAT_WAS_EVALUATED, TASK_OF_MODEL_TASK, keys_of
from rs_dagster.defs.resources import EvalScope, LabResource
from rs_dagster.models.registry import Model, Suite
from rs_dagster.prompting.templates import prompt_hash
from rs_dagster.stats.adaptive import PrecisionLevel
from rs_dagster.storage import schemas
from rs_dagster.tasks.base import Item, canonical_json, sha256_hex
from rs_dagster.tasks.manifold import Point, TaskSpec
from rs_dagster.tasks.selection import select_points

PROMPT_IDENTITY = ("test_case_id", "model_version", "spec_version")
_TABLES = {"prompts": schemas.Prompts, "evaluated_scopes": schemas.EvaluatedScopes}


@dataclass(frozen=True)
class Selected:
    """What one evaluation of a model × task covers: its points, the precision level of each (the
    stricter one where two scopes share a point) and samples per item."""

    scopes: list[Suite]
    points: list[Point]
    levels: dict[str, PrecisionLevel]  # by point_id
    repeats: int

    @property
    def max_items(self) -> dict[str, int]:
        return {pid: level.max_n for pid, level in self.levels.items()}

    def describe(self) -> str:
        return " + ".join(f"{s.selection.describe()} at {s.precision}" for s in self.scopes)


def scope_record(suite: Suite) -> str:
    return canonical_json(suite.model_dump(mode="json", exclude={"tasks"}))


def selected_scope(spec: TaskSpec, model: Model, scope: EvalScope, stored: Sequence[str] = ()) -> Selected:
    """The scope a run evaluates: the one it was given (or the model's suite), or, for a run given no
    scope of its own (automation, a re-materialization in the UI), every scope in `stored`."""
    scopes = [Suite(**json.loads(s)) for s in stored] if scope.replays and stored else [scope.resolve(model.entry.suite)]
    levels: dict[str, PrecisionLevel] = {}
    points: dict[str, Point] = {}
    for suite in scopes:
        level = spec.precision_level(suite.precision)
        for point in select_points(spec, suite.selection):
            points[point.point_id] = point
            levels[point.point_id] = max(levels.get(point.point_id, level), level, key=lambda lv: (lv.max_n, lv.min_n, -(lv.half_width or 0)))
    return Selected(scopes, list(points.values()), levels, max(s.repeats for s in scopes))


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
        description="The exact chat messages a model receives (partition: model × task), one row per item of the "
        "evaluated scope and (model version, task version) (key: test_case_id, model_version, spec_version): the "
        "rendered template and its prompt_hash. Also records each scope the partition was evaluated at (table "
        "`evaluated_scopes`), which runs without a scope of their own replay. First asset of the `evaluation` job; "
        "re-run by `rs eval`, the nightly schedule, and automation when the task or model definition changes.",
        automation_condition=ONLY_WHAT_WAS_EVALUATED,
        code_version="1",
        owners=OWNERS,
        tags=asset_tags("prompting", "model_task"),
        metadata=definition_metadata(schemas.Prompts, evaluated_scopes=schemas.EvaluatedScopes),
        check_specs=[schema_check_spec("prompts", _TABLES, model_task_parts)],
    )
    def prompts(context: dg.AssetExecutionContext, lab: LabResource, scope: EvalScope) -> dg.MaterializeResult:
        keys = keys_of(context)
        model, spec = lab.models()[keys["model"]], lab.task_specs()[keys["task"]]
        stored = lab.warehouse.read_partition("evaluated_scopes", keys)
        selected = selected_scope(spec, model, scope, [] if stored.is_empty() else stored["scope_json"].to_list())
        cases = current_cases(lab.warehouse, spec, selected.points, selected.max_items)
        frame = prompt_frame(model, spec, cases)
        lab.warehouse.upsert_rows("prompts", schemas.Prompts, frame, keys, PROMPT_IDENTITY)
        records = pl.DataFrame(
            [{**keys, "scope_id": sha256_hex(scope_record(s))[:16], "scope_json": scope_record(s), "dagster_run_id": context.run.run_id}
             for s in selected.scopes]
        )
        known = set() if stored.is_empty() else set(stored["scope_id"])
        lab.warehouse.upsert_rows("evaluated_scopes", schemas.EvaluatedScopes, records.filter(~pl.col("scope_id").is_in(known)), keys, "scope_id")
        return dg.MaterializeResult(
            metadata={
                **table_metadata(lab.warehouse, "prompts", schemas.Prompts, keys),
                "rows": frame.height,
                "points": frame["point_id"].n_unique(),
                "scope": selected.describe(),
                "template": model.entry.template,
                "example": dg.MetadataValue.json(json.loads(frame["messages_json"][0])),
            },
            check_results=[schema_check_result(lab.warehouse, _TABLES, {**keys, "model_version": model.version, "spec_version": spec.version})],
        )

    return [prompts]
