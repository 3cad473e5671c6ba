"""Per-grid-point aggregation of scored results (see rs_dagster.stats.intervals for definitions)."""

from __future__ import annotations

import polars as pl

from rs_dagster.stats.intervals import ANSWERED, excess_over_chance, truncation_ratio, wilson_interval


def aggregate_points(scored: pl.DataFrame, cases: pl.DataFrame) -> pl.DataFrame:
    """One row per grid point of `scored`; `cases` supplies each point's params and memberships."""
    counts = scored.group_by("model", "task", "point_id").agg(
        n=pl.len(),
        items=pl.col("test_case_id").n_unique(),
        correct=(pl.col("outcome") == "correct").sum(),
        incorrect=(pl.col("outcome") == "incorrect").sum(),
        unparsed=(pl.col("outcome") == "unparsed").sum(),
        truncated=(pl.col("outcome") == "truncated").sum(),
        errors=(pl.col("outcome") == "error").sum(),
        budget_forced=(pl.col("answer_phase") == "budget_forced").sum(),
        flexible_correct=(pl.col("flexible_outcome") == "correct").sum(),
        guess_chance=pl.col("guess_chance").mean(),
        mean_completion_tokens=pl.col("completion_tokens").cast(pl.Float64).mean(),
        mean_reasoning_tokens=pl.col("reasoning_tokens").cast(pl.Float64).mean(),
    )
    rows = []
    for row in counts.iter_rows(named=True):
        answered = sum(row[outcome] for outcome in ANSWERED)
        measured: dict[str, float | None] = dict.fromkeys(
            ("accuracy", "ci_low", "ci_high", "half_width", "excess_accuracy", "excess_ci_low", "excess_ci_high",
             "flexible_accuracy", "flexible_ci_low", "flexible_ci_high", "format_compliance")
        )
        if answered:
            g = row["guess_chance"]
            accuracy, (ci_low, ci_high) = row["correct"] / answered, wilson_interval(row["correct"], answered)
            flexible_low, flexible_high = wilson_interval(row["flexible_correct"], answered)
            measured.update(
                accuracy=accuracy,
                ci_low=ci_low,
                ci_high=ci_high,
                half_width=(ci_high - ci_low) / 2,
                excess_accuracy=excess_over_chance(accuracy, g),
                excess_ci_low=excess_over_chance(ci_low, g),
                excess_ci_high=excess_over_chance(ci_high, g),
                flexible_accuracy=row["flexible_correct"] / answered,
                flexible_ci_low=flexible_low,
                flexible_ci_high=flexible_high,
                format_compliance=(row["correct"] + row["incorrect"]) / answered,
            )
        rows.append({
            **row, "answered": answered, **measured, "truncation_rate": row["truncated"] / row["n"],
            "truncation_ratio": truncation_ratio(row["truncated"], answered),
        })
    points = pl.DataFrame(rows, infer_schema_length=None)
    memberships = cases.select("point_id", "params_json", "tiers", "surfaces", "projections").unique("point_id")
    return points.join(memberships, on="point_id", how="left").sort("point_id")
