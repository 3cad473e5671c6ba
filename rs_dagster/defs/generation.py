"""Generation stage: the items of every grid point of a task (the largest precision level; smaller
levels are prefixes thanks to prefix-stable seeds)."""

import json

import dagster as dg
import polars as pl

from rs_dagster.defs.partitions import ON_UPSTREAM_VERSION_CHANGE
from rs_dagster.defs.resources import LabResource
from rs_dagster.report.markdown import markdown_table
from rs_dagster.storage import schemas
from rs_dagster.tasks.base import canonical_json
from rs_dagster.tasks.generation import generate_point
from rs_dagster.tasks.manifold import TaskSpec


def test_case_frame(spec: TaskSpec) -> pl.DataFrame:
    rows = []
    for point in spec.points():
        params_json = canonical_json(point.params)
        for generated in generate_point(spec.task, spec.name, point.params, spec.doc.global_seed, spec.max_items_per_point):
            rows.append(
                {
                    "task": spec.name,
                    "test_case_id": generated.test_case_id,
                    "point_id": point.point_id,
                    "params_json": params_json,
                    "tiers": list(point.tiers),
                    "surfaces": list(point.surfaces),
                    "projections": list(point.projections),
                    "item_index": generated.index,
                    "seed": generated.seed,
                    "question": generated.item.question,
                    "answer": generated.item.answer,
                    "guess_chance": float(generated.item.guess_chance),
                    "metadata_json": json.dumps(generated.item.metadata, sort_keys=True, default=str),
                    "generator_version": spec.task.version,
                    "spec_version": spec.version,
                }
            )
    return pl.DataFrame(rows, schema_overrides={"tiers": pl.List(pl.String), "surfaces": pl.List(pl.String), "projections": pl.List(pl.String)})


def build_generation_assets(task_parts: dg.PartitionsDefinition) -> list:
    @dg.asset(
        partitions_def=task_parts,
        deps=["task_specs"],
        group_name="generation",
        kinds={"python", "duckdb"},
        description="Items per grid point: id, params, seed, index, question, answer, guess_chance.",
        automation_condition=ON_UPSTREAM_VERSION_CHANGE,
        code_version="1",
        check_specs=[dg.AssetCheckSpec("unique_questions_per_point", asset="test_cases", blocking=True)],
    )
    def test_cases(context: dg.AssetExecutionContext, lab: LabResource):
        spec = lab.task_specs()[context.partition_key]
        frame = test_case_frame(spec)
        lab.warehouse.replace_partition("test_cases", schemas.TestCases, frame, {"task": spec.name})
        duplicates = frame.group_by("point_id", "question").len().filter(pl.col("len") > 1).height
        yield dg.MaterializeResult(
            metadata={
                "rows": frame.height,
                "points": frame["point_id"].n_unique(),
                "items_per_point": spec.max_items_per_point,
                "spec_version": spec.version,
                "preview": dg.MetadataValue.md(markdown_table(frame.select("point_id", "answer", "question"), max_rows=5)),
            }
        )
        yield dg.AssetCheckResult(check_name="unique_questions_per_point", passed=duplicates == 0, metadata={"duplicates": duplicates})

    return [test_cases]

