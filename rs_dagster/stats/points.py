"""Per-grid-point aggregation of scored results (see rs_dagster.stats.intervals for definitions)."""

from __future__ import annotations

import polars as pl

from rs_dagster.scoring.outcomes import AnswerPhase, Outcome, accuracy, is_answered, is_correct
from rs_dagster.stats.intervals import excess_over_chance, truncation_ratio, wilson_interval

_COUNTED = {"correct": Outcome.CORRECT, "incorrect": Outcome.INCORRECT, "unparsed": Outcome.UNPARSED,
            "ambiguous": Outcome.AMBIGUOUS, "truncated": Outcome.TRUNCATED, "errors": Outcome.ERROR}
"""The points column counting each strict outcome."""


def aggregate_points(scored: pl.DataFrame, cases: pl.DataFrame) -> pl.DataFrame:
    """One row per grid point of `scored`; `cases` supplies each point's params and memberships."""
    counts = scored.group_by("model", "task", "point_id").agg(
        n=pl.len(),
        items=pl.col("test_case_id").n_unique(),
        **{column: (pl.col("outcome") == outcome.value).sum() for column, outcome in _COUNTED.items()},
        answered=is_answered().sum(),
        budget_forced=(pl.col("answer_phase") == AnswerPhase.BUDGET_FORCED.value).sum(),
        flexible_correct=is_correct("flexible_outcome").sum(),
        guess_chance=pl.col("guess_chance").mean(),
        mean_completion_tokens=pl.col("completion_tokens").cast(pl.Float64).mean(),
        mean_reasoning_tokens=pl.col("reasoning_tokens").cast(pl.Float64).mean(),
    )
    rows = []
    for row in counts.iter_rows(named=True):
        answered = row["answered"]
        measured: dict[str, float | None] = dict.fromkeys(
            ("accuracy", "ci_low", "ci_high", "half_width", "excess_accuracy", "excess_ci_low", "excess_ci_high",
             "flexible_accuracy", "flexible_ci_low", "flexible_ci_high", "format_compliance")
        )
        if answered:
            g = row["guess_chance"]
            strict = accuracy(row["correct"], answered)
            assert strict is not None  # something was answered
            ci_low, ci_high = wilson_interval(row["correct"], answered)
            flexible_low, flexible_high = wilson_interval(row["flexible_correct"], answered)
            measured.update(
                accuracy=strict,
                ci_low=ci_low,
                ci_high=ci_high,
                half_width=(ci_high - ci_low) / 2,
                excess_accuracy=excess_over_chance(strict, g),
                excess_ci_low=excess_over_chance(ci_low, g),
                excess_ci_high=excess_over_chance(ci_high, g),
                flexible_accuracy=accuracy(row["flexible_correct"], answered),
                flexible_ci_low=flexible_low,
                flexible_ci_high=flexible_high,
                format_compliance=(row["correct"] + row["incorrect"]) / answered,
            )
        rows.append({
            **row, **measured, "truncation_rate": row["truncated"] / row["n"],
            "truncation_ratio": truncation_ratio(row["truncated"], answered),
        })
    points = pl.DataFrame(rows, infer_schema_length=None)
    memberships = cases.select("point_id", "params_json", "tiers", "surfaces", "projections").unique("point_id")
    return points.join(memberships, on="point_id", how="left").sort("point_id")
