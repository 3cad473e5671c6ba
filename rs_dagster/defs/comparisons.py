"""Paired comparisons (rs_dagster.stats.paired) as an unpartitioned asset over scored_results, with the
regression gate as its asset check: a model's current version significantly worse than its previous
version on the same items warns."""

from collections.abc import Iterable, Mapping

import dagster as dg
import polars as pl

from rs_dagster.defs.checks import schema_check_result, schema_check_spec
from rs_dagster.defs.metadata import OWNERS, asset_tags, definition_metadata, table_metadata
from rs_dagster.defs.partitions import AFTER_ANY_PARTITION_UPDATES
from rs_dagster.defs.resources import LabResource
from rs_dagster.models.registry import Model
from rs_dagster.report.charts import chart_markdown
from rs_dagster.report.comparisons import change_chart, labelled
from rs_dagster.report.markdown import markdown_table
from rs_dagster.stats.paired import ALPHA, all_comparisons, regressions
from rs_dagster.storage import schemas
from rs_dagster.storage.reads import point_params, scored_for_comparison
from rs_dagster.storage.warehouse import Warehouse
from rs_dagster.tasks.manifold import TaskSpec

GATE = "no_regression_vs_previous_version"


def run_times(instance: dg.DagsterInstance, run_ids: Iterable[str]) -> dict[str, float]:
    """When each Dagster run was created (POSIX seconds); runs the instance does not hold are left out."""
    ids = sorted(set(run_ids))
    if not ids:
        return {}
    records = instance.get_run_records(dg.RunsFilter(run_ids=ids))
    return {record.dagster_run.run_id: record.create_timestamp.timestamp() for record in records}


def comparison_frame(warehouse: Warehouse, models: Mapping[str, Model], specs: Mapping[str, TaskSpec], instance: dg.DagsterInstance) -> pl.DataFrame:
    """Every pair of registered models on shared items and every model's previous version vs its current one."""
    scored = scored_for_comparison(warehouse, specs, models)
    times = run_times(instance, scored["dagster_run_id"].unique().to_list()) if not scored.is_empty() else {}
    return all_comparisons(scored, {name: model.version for name, model in models.items()}, times, point_params(warehouse, specs))


def gate_result(frame: pl.DataFrame) -> dg.AssetCheckResult:
    """The regression gate: warns (never fails the run) when a model's current version is significantly
    worse than its previous version on the same items, at any task or grid point."""
    versions = frame.filter(pl.col("kind") == "versions")
    bad = regressions(frame)
    checked = sorted(set(versions["model_a"].to_list()))
    metadata: dict = {"models_compared_with_previous_version": ", ".join(checked) or "(none)", "regressions": bad.height}
    if bad.is_empty():
        description = (
            f"No model's current version is significantly worse than its previous version (McNemar, BH q <= {ALPHA})."
            if checked else "No model has results of a previous version on the current items: nothing to compare."
        )
    else:
        shown = labelled(bad).select(
            "comparison", "task", pl.col("params_json").fill_null("(task pooled)"), "pairs", "accuracy_a", "accuracy_b", "b", "c", "p_value", "q_value"
        )
        metadata["worse"] = dg.MetadataValue.md(markdown_table(shown, max_rows=40))
        models = sorted(set(bad["model_a"].to_list()))
        description = f"Current version significantly worse than the previous one (McNemar, BH q <= {ALPHA}): {', '.join(models)}."
    return dg.AssetCheckResult(
        check_name=GATE, passed=bad.is_empty(), severity=dg.AssetCheckSeverity.WARN, metadata=metadata, description=description
    )


def build_comparison_assets() -> list:
    @dg.asset(
        deps=["scored_results"],
        group_name="analysis",
        kinds={"polars", "duckdb"},
        description="Paired comparisons on shared items (unpartitioned: every model and task), one row per comparison, "
        "task and grid point (task rows pool the task): every pair of registered models (current versions) and every "
        "model's previous version vs its current one; accuracies over the pairs, discordant pairs b and c, exact "
        "McNemar p, Benjamini–Hochberg q. Truncated and error samples are not paired. Replaced whole by the "
        "`refresh_report` job (last step of every `rs eval`) and by automation after any scored_results partition updates.",
        automation_condition=AFTER_ANY_PARTITION_UPDATES,
        code_version="1",
        owners=OWNERS,
        tags=asset_tags("analysis", "all"),
        metadata=definition_metadata(schemas.Comparisons),
        check_specs=[
            schema_check_spec("comparisons", {"comparisons": schemas.Comparisons}),
            dg.AssetCheckSpec(
                GATE,
                asset="comparisons",
                description="Warns when a model's current version is significantly worse than its previous version on the "
                f"same items (exact McNemar, Benjamini–Hochberg q <= {ALPHA}, lower accuracy).",
            )
        ],
    )
    def comparisons(context: dg.AssetExecutionContext, lab: LabResource) -> dg.MaterializeResult:
        warehouse = lab.warehouse
        frame = comparison_frame(warehouse, lab.models, lab.task_specs, context.instance)
        warehouse.replace_partition("comparisons", schemas.Comparisons, frame, {})
        metadata: dict = {
            **table_metadata(warehouse, "comparisons", schemas.Comparisons),
            "comparisons": frame.select("kind", "model_a", "version_a", "model_b", "version_b").n_unique() if not frame.is_empty() else 0,
            "differing_rows": int(frame["differs"].sum()) if not frame.is_empty() else 0,
        }
        if not frame.is_empty():
            tasks = labelled(frame.filter(pl.col("level") == "task")).select(
                "comparison", "task", "pairs", "accuracy_a", "accuracy_b", "b", "c", "p_value", "q_value"
            )
            metadata["tasks"] = dg.MetadataValue.md(markdown_table(tasks, max_rows=40))
            metadata["chart"] = dg.MetadataValue.md(chart_markdown(change_chart(frame), "paired comparisons"))
        checks = [schema_check_result(warehouse, {"comparisons": schemas.Comparisons}, {}), gate_result(frame)]
        return dg.MaterializeResult(metadata=metadata, check_results=checks)

    return [comparisons]
