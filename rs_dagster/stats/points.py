"""Per-grid-point aggregation of scored results (see rs_dagster.stats.intervals for definitions)."""

from __future__ import annotations

import polars as pl

from rs_dagster.stats.intervals import excess_over_chance, wilson_interval


def aggregate_points(scored: pl.DataFrame, cases: pl.DataFrame) -> pl.DataFrame:
    """One row per grid point of `scored`; `cases` supplies each point's params and memberships."""
    counts = scored.group_by("model", "task", "point_id").agg(
        n=pl.len(),
        correct=(pl.col("outcome") == "correct").sum(),
        incorrect=(pl.col("outcome") == "incorrect").sum(),
        unparsed=(pl.col("outcome") == "unparsed").sum(),
        truncated=(pl.col("outcome") == "truncated").sum(),
        errors=(pl.col("outcome") == "error").sum(),
        budget_forced=(pl.col("answer_phase") == "budget_forced").sum(),
        guess_chance=pl.col("guess_chance").mean(),
        mean_completion_tokens=pl.col("completion_tokens").cast(pl.Float64).mean(),
        mean_reasoning_tokens=pl.col("reasoning_tokens").cast(pl.Float64).mean(),
    )
    rows = []
    for row in counts.iter_rows(named=True):
        answered = row["correct"] + row["incorrect"] + row["unparsed"]
        accuracy = ci_low = ci_high = excess = excess_low = excess_high = None
        if answered:
            accuracy = row["correct"] / answered
            ci_low, ci_high = wilson_interval(row["correct"], answered)
            g = row["guess_chance"]
            excess, excess_low, excess_high = (excess_over_chance(v, g) for v in (accuracy, ci_low, ci_high))
        rows.append(
            {
                **row,
                "answered": answered,
                "accuracy": accuracy,
                "ci_low": ci_low,
                "ci_high": ci_high,
                "excess_accuracy": excess,
                "excess_ci_low": excess_low,
                "excess_ci_high": excess_high,
                "truncation_rate": row["truncated"] / row["n"],
            }
        )
    points = pl.DataFrame(rows, infer_schema_length=None)
    memberships = cases.select("point_id", "params_json", "tiers", "surfaces", "projections").unique("point_id")
    return points.join(memberships, on="point_id", how="left").sort("point_id")
