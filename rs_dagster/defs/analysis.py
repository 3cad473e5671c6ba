"""Analysis stage: per grid point statistics (n, accuracy with Wilson 95% CI, excess accuracy over
chance, truncation rate, tokens) over every sample stored for the current model and task versions, as
scored by the current scoring version."""

import dagster as dg

from rs_dagster.defs.checks import schema_check_result, schema_check_spec
from rs_dagster.defs.metadata import OWNERS, asset_tags, definition_metadata, table_metadata
from rs_dagster.defs.partitions import keys_of
from rs_dagster.defs.resources import LabResource
from rs_dagster.report.charts import accuracy_by_point, chart_markdown_soon
from rs_dagster.scoring import outcomes
from rs_dagster.stats.points import aggregate_points
from rs_dagster.storage import schemas


def build_analysis_assets(model_task_parts: dg.PartitionsDefinition) -> list:
    @dg.asset(
        partitions_def=model_task_parts,
        deps=["scored_results"],
        group_name="analysis",
        kinds={"polars", "duckdb"},
        description="The headline statistics (partition: model × task), one row per grid point (key: point_id) over "
        "every sample scored for the current model and task versions by the current scoring version (scored_results."
        "scoring_version), whatever scope it came from: n, answered, correct, incorrect, unparsed, ambiguous, truncated, "
        "errors, accuracy with Wilson 95% CI (strict: answers in the requested form) and flexible "
        "accuracy with its CI, format compliance, excess accuracy over guess chance, truncation rate, mean tokens. "
        "Replaced whole on every run of the `evaluation` job (and by automation after scored_results changes).",
        automation_condition=dg.AutomationCondition.eager(),
        code_version="4",
        owners=OWNERS,
        tags=asset_tags("analysis", "model_task"),
        metadata=definition_metadata(schemas.Points),
        check_specs=[schema_check_spec("points", {"points": schemas.Points}, model_task_parts)],
    )
    def points(context: dg.AssetExecutionContext, lab: LabResource) -> dg.MaterializeResult:
        keys = keys_of(context)
        model, spec = lab.model_and_spec(keys)
        # Every sample ever scored for the current model and task versions, whatever scope it came from, as the
        # current scoring version reads it (a table last written before scoring_version existed gets the column).
        lab.warehouse.add_missing_columns("scored_results", schemas.ScoredResults)
        current = {"model_version": model.version, "spec_version": spec.version, "scoring_version": outcomes.SCORING_VERSION}
        scored = lab.warehouse.table("scored_results", {**keys, **current})
        cases = lab.warehouse.table("test_cases", {"task": keys["task"], "spec_version": spec.version})
        frame = aggregate_points(scored, cases)
        chart = chart_markdown_soon(accuracy_by_point(frame, f"{keys['model']} / {keys['task']}"))
        lab.warehouse.replace_partition("points", schemas.Points, frame, keys)
        answered = int(frame["answered"].sum())

        def share(count: str) -> float:
            return round(int(frame[count].sum()) / answered, 4) if answered else float("nan")

        checks = [schema_check_result(lab.warehouse, {"points": schemas.Points}, keys)]  # while the chart is drawn
        return dg.MaterializeResult(
            metadata={
                **table_metadata(lab.warehouse, "points", schemas.Points, keys),
                "points": frame.height,
                "samples": int(frame["n"].sum()),
                "accuracy": share("correct"),
                "flexible_accuracy": share("flexible_correct"),
                "ambiguous_share": share("ambiguous"),
                "scoring_version": outcomes.SCORING_VERSION,
                "truncated": int(frame["truncated"].sum()),
                "errors": int(frame["errors"].sum()),
                "chart": dg.MetadataValue.md(chart.result()),
            },
            check_results=checks,
        )

    return [points]
