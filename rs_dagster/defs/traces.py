"""Analyses that look inside the reasoning traces, per model × task over every sample stored for the
current model and task versions (as `points`): gzip compression of the traces with loops flagged
(rs_dagster.stats.compression) and survival over output tokens (rs_dagster.stats.hazard).

Each asset writes two tables, a detail table and its summary, rather than one table and a SQL view:
both are computed in Python (gzip, Kaplan-Meier), so a view could not derive the summary, and every table
gets its pandera schema checked before it lands, as every other table does."""

from concurrent.futures import Future
from typing import Any, cast

import dagster as dg
import polars as pl

from rs_dagster.defs.checks import schema_check_result, schema_check_spec
from rs_dagster.defs.metadata import OWNERS, asset_tags, definition_metadata, table_metadata
from rs_dagster.defs.partitions import keys_of
from rs_dagster.defs.resources import LabResource
from rs_dagster.report.charts import chart_markdown_soon
from rs_dagster.report.traces import compression_chart, hazard_chart, survival_chart
from rs_dagster.stats.compression import (
    SAMPLE_COLUMNS,
    point_compression,
    sample_compression,
)
from rs_dagster.stats.hazard import (
    ALL_TIERS,
    HAZARD_COLUMNS,
    SURVIVAL_COLUMNS,
    survival_frames,
)
from rs_dagster.storage import schemas
from rs_dagster.storage.reads import trace_samples

_COMPRESSION = {"compression": schemas.Compression, "compression_points": schemas.CompressionPoints}
_HAZARD = {"hazard": schemas.Hazard, "survival": schemas.Survival}
TRACE_ASSETS = ["compression", "hazard"]
"""Computed per partition by `rs eval` after `points`; eager automation keeps them current otherwise."""


def current_samples(lab: LabResource, keys: dict[str, str]) -> pl.DataFrame:
    """The partition's scored samples of the current model and task versions (see trace_samples)."""
    model, spec = lab.model_and_spec(keys)
    return trace_samples(lab.warehouse, keys["model"], keys["task"], model.version, spec.version)


def build_trace_assets(model_task_parts: dg.PartitionsDefinition) -> list:
    @dg.asset(
        partitions_def=model_task_parts,
        deps=["scored_results"],
        group_name="analysis",
        kinds={"polars", "duckdb"},
        description="How repetitive the reasoning traces are (partition: model × task), over the samples of the current "
        "model and task versions: per sample (table `compression`, key: test_case_id, request_hash) the gzip ratio of "
        "its reasoning trace and answer, with a loop flag (trace >= 1024 bytes compressing below 0.5 × its point's "
        "typical ratio, or below 0.1); per grid point and outcome the p10/p50/p90 of the ratio and the loop count "
        "(table `compression_points`). Replaced whole by each run of the `evaluation` job.",
        automation_condition=dg.AutomationCondition.eager(),
        code_version="1",
        owners=OWNERS,
        tags=asset_tags("analysis", "model_task"),
        metadata=definition_metadata(schemas.Compression, compression_points=schemas.CompressionPoints),
        check_specs=[schema_check_spec("compression", _COMPRESSION, model_task_parts)],
    )
    def compression(context: dg.AssetExecutionContext, lab: LabResource) -> dg.MaterializeResult:
        keys = keys_of(context)
        samples = current_samples(lab, keys)
        per_sample = sample_compression(samples) if not samples.is_empty() else pl.DataFrame(schema=SAMPLE_COLUMNS)
        per_point = point_compression(per_sample)
        traces = per_sample.filter(pl.col("reasoning_ratio").is_not_null())
        title = f"{keys['model']} / {keys['task']}: reasoning trace compression"
        chart = None if traces.is_empty() else chart_markdown_soon(compression_chart(per_sample, title), "compression by outcome")
        lab.warehouse.replace_partition("compression", schemas.Compression, per_sample, keys)
        lab.warehouse.replace_partition("compression_points", schemas.CompressionPoints, per_point, keys)
        medians = {
            outcome: round(cast(float, group["reasoning_ratio"].median()), 4)
            for (outcome,), group in traces.group_by("outcome", maintain_order=True)
        }
        metadata: dict[str, Any] = {
            **table_metadata(lab.warehouse, "compression", schemas.Compression, keys),
            "point_rows": per_point.height,
            "traces": traces.height,
            "loops": int(per_sample["loop"].sum()),
            "median_ratio_by_outcome": dg.MetadataValue.json(medians),
        }
        checks = [schema_check_result(lab.warehouse, _COMPRESSION, keys)]
        if chart is None:
            metadata["not_drawn"] = f"No reasoning traces in the {per_sample.height} samples: nothing to compress."
        else:
            metadata["chart"] = dg.MetadataValue.md(chart.result())
        return dg.MaterializeResult(metadata=metadata, check_results=checks)

    @dg.asset(
        partitions_def=model_task_parts,
        deps=["scored_results"],
        group_name="analysis",
        kinds={"python", "duckdb"},
        description="Survival over output tokens (event: an answer; censoring: truncation): per tier and token bucket (a round width "
        "giving 10–30 buckets up to the longest sample, shared by the tiers) "
        "the hazard (answers / at risk) by kind of answer, Kaplan-Meier survival and Aalen-Johansen incidence of "
        "correct / incorrect / unparsed / ambiguous answers, and the median tokens to answer with its 95% CI (table `hazard`); the "
        "step curves (table `survival`). Partition: model × task, over the samples of the current model and task "
        "versions; replaced whole by each run of the `evaluation` job.",
        automation_condition=dg.AutomationCondition.eager(),
        code_version="2",
        owners=OWNERS,
        tags=asset_tags("analysis", "model_task"),
        metadata=definition_metadata(schemas.Hazard, survival=schemas.Survival),
        check_specs=[schema_check_spec("hazard", _HAZARD, model_task_parts)],
    )
    def hazard(context: dg.AssetExecutionContext, lab: LabResource) -> dg.MaterializeResult:
        keys = keys_of(context)
        samples = current_samples(lab, keys)
        if samples.is_empty():
            buckets, curves = pl.DataFrame(schema=HAZARD_COLUMNS), pl.DataFrame(schema=SURVIVAL_COLUMNS)
        else:
            buckets, curves = survival_frames(samples)
        pooled = buckets.filter(pl.col("tier") == ALL_TIERS)
        first = pooled.row(0, named=True) if not pooled.is_empty() else None
        chart: Future[str] | None = None
        if first is not None:
            label = f"{keys['model']} / {keys['task']}"
            chart = chart_markdown_soon(
                survival_chart(curves.filter(pl.col("tier") == ALL_TIERS), f"{label}: tokens to answer", first["median_tokens"])
                & hazard_chart(pooled, f"{label}: hazard per bucket"),
                "survival and hazard over tokens",
            )
        lab.warehouse.replace_partition("hazard", schemas.Hazard, buckets, keys)
        lab.warehouse.replace_partition("survival", schemas.Survival, curves, keys)
        metadata: dict[str, Any] = {**table_metadata(lab.warehouse, "hazard", schemas.Hazard, keys), "survival_rows": curves.height}
        checks = [schema_check_result(lab.warehouse, _HAZARD, keys)]
        if first is None or chart is None:
            metadata["not_drawn"] = "No sample with a token count (all errors, or no completion_tokens reported)."
            return dg.MaterializeResult(metadata=metadata, check_results=checks)
        metadata |= {
            "samples": first["samples"],
            "truncated": int(pooled["truncated"].sum()),
            "median_tokens": first["median_tokens"] if first["median_tokens"] is not None else "not reached",
            "median_ci": dg.MetadataValue.json({"low": first["median_ci_low"], "high": first["median_ci_high"]}),
            "tiers": dg.MetadataValue.json(sorted(set(buckets["tier"].to_list()))),
            "chart": dg.MetadataValue.md(chart.result()),
        }
        return dg.MaterializeResult(metadata=metadata, check_results=checks)

    return [compression, hazard]

