"""Generation stage: the items of every named grid point of a task (the largest precision level;
smaller levels are prefixes thanks to prefix-stable seeds), or, in a run that says which scopes it
serves (`rs eval`), only the items those scopes need. Rows are kept per task version, so the lineage of
results measured under an earlier version still joins; readers take the current version. Items no run
of this asset generated (points outside every named part, larger levels) are generated and stored when
an evaluation first needs them."""

import dagster as dg
import polars as pl
from pydantic import Field

from rs_dagster.defs.checks import schema_check_result, schema_check_spec
from rs_dagster.defs.metadata import OWNERS, asset_tags, definition_metadata, table_metadata
from rs_dagster.defs.partitions import ON_UPSTREAM_VERSION_CHANGE
from rs_dagster.defs.resources import LabResource
from rs_dagster.prompting.scope import recorded_scopes, union_of_scopes
from rs_dagster.report.markdown import markdown_table
from rs_dagster.storage import schemas
from rs_dagster.tasks.cases import current_cases


class TestCasesConfig(dg.Config):
    scopes: list[str] = Field(
        default_factory=list,
        description="Generate only the items these scopes need (scope records as in evaluated_scopes.scope_json, e.g. "
        '{"points":null,"precision":"low","projections":[],"repeats":1,"surfaces":[],"tiers":["easy"]}). '
        "Empty (the default): every named grid point at the largest precision level.",
    )


def build_generation_assets(task_parts: dg.PartitionsDefinition) -> list:
    @dg.asset(
        partitions_def=task_parts,
        deps=["task_specs"],
        group_name="generation",
        kinds={"python", "duckdb"},
        description="The generated test items of a task (partition: the task), one row per item and task version "
        "(key: test_case_id, spec_version): grid point and its params, the tiers/surfaces/projections it belongs to, "
        "item index, seed, question, expected answer and guess chance. Every named grid point gets the largest "
        "precision level's count (smaller levels are prefixes), or, when the run config's `scopes` are set (as `rs eval` "
        "sets them), the points and counts of those scopes. Rows of earlier task versions stay. Re-run with "
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
    def test_cases(context: dg.AssetExecutionContext, config: TestCasesConfig, lab: LabResource):
        spec = lab.task(context.partition_key)
        keys = {"task": spec.name}
        if config.scopes:
            selected = union_of_scopes(spec, recorded_scopes(config.scopes, where="test_cases config `scopes`"))
            points, counts = selected.points, selected.max_items
        else:
            points, counts = spec.points(), dict.fromkeys((p.point_id for p in spec.points()), spec.max_items_per_point)
        stored_before = lab.warehouse.count_rows("test_cases", {**keys, "spec_version": spec.version})
        frame = current_cases(lab.warehouse, spec, points, counts)
        generated = lab.warehouse.count_rows("test_cases", {**keys, "spec_version": spec.version}) - stored_before
        duplicates = frame.group_by("point_id", "question").len().filter(pl.col("len") > 1).height
        yield dg.MaterializeResult(
            metadata={
                **table_metadata(lab.warehouse, "test_cases", schemas.TestCases, keys),
                "rows": frame.height,
                "generated": generated,
                "points": frame["point_id"].n_unique(),
                "items_per_point": max(counts.values(), default=0),
                "scopes": "\n".join(config.scopes) or "every named point at the largest level",
                "spec_version": spec.version,
                "preview": dg.MetadataValue.md(markdown_table(frame.select("point_id", "answer", "question"), max_rows=5)),
            }
        )
        yield dg.AssetCheckResult(
            check_name="unique_questions_per_point", passed=duplicates == 0, severity=dg.AssetCheckSeverity.ERROR, metadata={"duplicates": duplicates}
        )
        yield schema_check_result(lab.warehouse, {"test_cases": schemas.TestCases}, {**keys, "spec_version": spec.version})

    return [test_cases]

