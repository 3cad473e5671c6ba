"""Generation stage: the items of every named grid point of a task (the largest precision level;
smaller levels are prefixes thanks to prefix-stable seeds). Rows are kept per task version, so the
lineage of results measured under an earlier version still joins; readers take the current version.
Items of grid points that no tier, surface or projection names are generated when an evaluation of
the full grid first needs them."""

import dagster as dg
import polars as pl

from rs_dagster.defs.checks import schema_check_result, schema_check_spec
from rs_dagster.defs.metadata import OWNERS, asset_tags, definition_metadata, table_metadata
from rs_dagster.defs.partitions import ON_UPSTREAM_VERSION_CHANGE
from rs_dagster.defs.resources import LabResource
from rs_dagster.report.markdown import markdown_table
from rs_dagster.storage import schemas
from rs_dagster.tasks.cases import TEST_CASE_IDENTITY, named_test_cases


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
        spec = lab.task_specs[context.partition_key]
        frame, stored = named_test_cases(lab.warehouse, spec)
        if not stored:
            lab.warehouse.upsert_rows("test_cases", schemas.TestCases, frame, {"task": spec.name}, TEST_CASE_IDENTITY)
        duplicates = frame.group_by("point_id", "question").len().filter(pl.col("len") > 1).height
        keys = {"task": spec.name}
        yield dg.MaterializeResult(
            metadata={
                **table_metadata(lab.warehouse, "test_cases", schemas.TestCases, keys),
                "rows": frame.height,
                "generated": not stored,
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

