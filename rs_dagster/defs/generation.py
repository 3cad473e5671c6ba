"""Generation stage: the items of every named grid point of a task (the largest precision level;
smaller levels are prefixes thanks to prefix-stable seeds). Rows are kept per task version, so the
lineage of results measured under an earlier version still joins; readers take the current version.
Items of grid points that no tier, surface or projection names are generated when an evaluation of
the full grid first needs them."""

import json
from collections.abc import Mapping

import dagster as dg
import polars as pl

from rs_dagster.defs.checks import schema_check_result, schema_check_spec
from rs_dagster.defs.metadata import OWNERS, asset_tags, definition_metadata, table_metadata
from rs_dagster.defs.partitions import ON_UPSTREAM_VERSION_CHANGE
from rs_dagster.defs.resources import LabResource
from rs_dagster.report.markdown import markdown_table
from rs_dagster.storage import schemas
from rs_dagster.storage.warehouse import Warehouse
from rs_dagster.tasks.base import canonical_json
from rs_dagster.tasks.generation import generate_point
from rs_dagster.tasks.manifold import Point, TaskSpec

TEST_CASE_IDENTITY = ("test_case_id", "spec_version")


def test_case_frame(spec: TaskSpec, points: list[Point] | None = None, count: int | None = None) -> pl.DataFrame:
    """Items of `points` (default: every named point), `count` per point (default: the largest level)."""
    rows = []
    for point in spec.points() if points is None else points:
        params_json = canonical_json(point.params)
        for generated in generate_point(spec.task, spec.name, point.params, spec.doc.global_seed, count or spec.max_items_per_point):
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


def current_cases(warehouse: Warehouse, spec: TaskSpec, points: list[Point], counts: int | Mapping[str, int]) -> pl.DataFrame:
    """The current version's first `counts` items of each of `points` (one count, or one per point_id),
    sorted by point and index. Points with fewer stored items (outside every named part, or
    test_cases not yet materialized) have their items generated and stored first."""
    wanted = {p.point_id: counts if isinstance(counts, int) else counts[p.point_id] for p in points}
    stored = warehouse.read_partition("test_cases", {"task": spec.name, "spec_version": spec.version})
    held = dict(stored.group_by("point_id").len().iter_rows()) if not stored.is_empty() else {}
    missing = [p for p in points if held.get(p.point_id, 0) < wanted[p.point_id]]
    if missing:
        frame = pl.concat([test_case_frame(spec, [p], wanted[p.point_id]) for p in missing])
        warehouse.upsert_rows("test_cases", schemas.TestCases, frame, {"task": spec.name}, TEST_CASE_IDENTITY)
        stored = warehouse.read_partition("test_cases", {"task": spec.name, "spec_version": spec.version})
    limits = pl.DataFrame({"point_id": list(wanted), "count": list(wanted.values())}, schema={"point_id": pl.String, "count": pl.Int64})
    return stored.join(limits, on="point_id").filter(pl.col("item_index") < pl.col("count")).drop("count").sort("point_id", "item_index")


def build_generation_assets(task_parts: dg.PartitionsDefinition) -> list:
    @dg.asset(
        partitions_def=task_parts,
        deps=["task_specs"],
        group_name="generation",
        kinds={"python", "duckdb"},
        description="The generated test items of a task (partition: the task), one row per item and task version "
        "(key: test_case_id, spec_version): grid point and its params, the tiers/surfaces/projections it belongs to, "
        "item index, seed, question, expected answer and guess chance. Every named grid point gets the largest "
        "precision level's count; smaller levels are prefixes. Rows of earlier task versions stay. Re-run with "
        "task_specs (`refresh_tasks`, `rs eval`) and when the task's data version changes.",
        automation_condition=ON_UPSTREAM_VERSION_CHANGE,
        code_version="1",
        owners=OWNERS,
        tags=asset_tags("generation", "task"),
        metadata=definition_metadata(schemas.TestCases),
        check_specs=[
            dg.AssetCheckSpec(
                "unique_questions_per_point",
                asset="test_cases",
                blocking=True,
                partitions_def=task_parts,
                description="No grid point asks the same question twice (a repeat would be redrawn by the generator): "
                "duplicates would count one item several times. Fails with ERROR and blocks the downstream assets.",
            ),
            schema_check_spec("test_cases", {"test_cases": schemas.TestCases}, task_parts),
        ],
    )
    def test_cases(context: dg.AssetExecutionContext, lab: LabResource):
        spec = lab.task_specs()[context.partition_key]
        frame = test_case_frame(spec)
        lab.warehouse.upsert_rows("test_cases", schemas.TestCases, frame, {"task": spec.name}, TEST_CASE_IDENTITY)
        duplicates = frame.group_by("point_id", "question").len().filter(pl.col("len") > 1).height
        keys = {"task": spec.name}
        yield dg.MaterializeResult(
            metadata={
                **table_metadata(lab.warehouse, "test_cases", schemas.TestCases, keys),
                "rows": frame.height,
                "points": frame["point_id"].n_unique(),
                "items_per_point": spec.max_items_per_point,
                "spec_version": spec.version,
                "preview": dg.MetadataValue.md(markdown_table(frame.select("point_id", "answer", "question"), max_rows=5)),
            }
        )
        yield dg.AssetCheckResult(
            check_name="unique_questions_per_point", passed=duplicates == 0, severity=dg.AssetCheckSeverity.ERROR, metadata={"duplicates": duplicates}
        )
        yield schema_check_result(lab.warehouse, {"test_cases": schemas.TestCases}, {**keys, "spec_version": spec.version})

    return [test_cases]

