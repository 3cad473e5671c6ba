"""ReasonScore stage: per model × tier, ReasonScape's ReasonScore v1 and v2 (with a bootstrap interval)
over the tier's tasks, from the `points` table (rows of the current task and model versions only).
The formulas live in rs_dagster.stats.reasonscore; this asset reads, validates and writes."""

import dagster as dg

from rs_dagster.defs.checks import schema_check_result, schema_check_spec
from rs_dagster.defs.metadata import OWNERS, asset_tags, definition_metadata, table_metadata
from rs_dagster.defs.partitions import AFTER_ANY_PARTITION_UPDATES
from rs_dagster.defs.resources import LabResource
from rs_dagster.report.charts import chart_markdown
from rs_dagster.report.markdown import markdown_table
from rs_dagster.report.reasonscore import score_bars
from rs_dagster.stats.reasonscore import FLOOR, RESAMPLES, SEED, reasonscores
from rs_dagster.storage import schemas

_TABLES = {"reasonscore": schemas.ReasonScores, "reasonscore_tasks": schemas.ReasonScoreTasks}


def build_reasonscore_assets() -> list:
    @dg.asset(
        deps=["points"],
        group_name="analysis",
        kinds={"polars", "numpy", "duckdb"},
        description=f"ReasonScore per model × tier (table reasonscore) and its per-task components (table reasonscore_tasks): "
        f"v1 = 1000 · geomean over tasks of clamp(excess(Wilson upper bound) − truncation ratio, {FLOOR}, 1); "
        f"v2 = 1000 · geomean of clamp((1 − truncation ratio) · max(0, excess accuracy), {FLOOR}, 1) with a seeded "
        f"bootstrap ({RESAMPLES} replicates, samples redrawn within points) for its median and 95% interval; score per token. "
        "Unpartitioned, from the `points` rows of the current task and model versions; replaced whole by the `refresh_report` "
        "job (last step of every `rs eval`) and by automation after any points partition updates.",
        automation_condition=AFTER_ANY_PARTITION_UPDATES,
        code_version="1",
        owners=OWNERS,
        tags=asset_tags("analysis", "all"),
        metadata=definition_metadata(schemas.ReasonScores, reasonscore_tasks=schemas.ReasonScoreTasks),
        check_specs=[schema_check_spec("reasonscore", _TABLES)],
    )
    def reasonscore(lab: LabResource) -> dg.MaterializeResult:
        warehouse = lab.warehouse
        scores, tasks = reasonscores(warehouse.table("points", order_by="model, task, point_id"), RESAMPLES, SEED)
        warehouse.replace_tables({"reasonscore": (schemas.ReasonScores, scores), "reasonscore_tasks": (schemas.ReasonScoreTasks, tasks)})
        metadata = {
            **table_metadata(warehouse, "reasonscore", schemas.ReasonScores),
            "task_rows": dg.MetadataValue.int(tasks.height),
            "models": dg.MetadataValue.int(scores["model"].n_unique()),
            "preview": dg.MetadataValue.md(markdown_table(scores.select("model", "tier", "tasks", "v2", "v2_low", "v2_high", "v1", "tokens", "v1_per_token"))),
        }
        if not scores.is_empty():
            metadata["chart"] = dg.MetadataValue.md(chart_markdown(score_bars(scores), "ReasonScore"))
        return dg.MaterializeResult(metadata=metadata, check_results=[schema_check_result(warehouse, _TABLES, {})])

    return [reasonscore]
