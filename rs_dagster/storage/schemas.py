"""pandera (polars) schemas, one per DuckDB table. Every frame is validated before it is written;
a frame that fails never lands, and the error names the column and the rule."""

from __future__ import annotations

from typing import Optional

import pandera.polars as pa

OUTCOMES = ["correct", "incorrect", "unparsed", "truncated", "error"]


class _Table(pa.DataFrameModel):
    class Config:
        strict = True  # no unknown columns
        coerce = True


class TaskSpecs(_Table):
    task: str = pa.Field(str_length={"min_value": 1})
    spec_version: str = pa.Field(str_length={"min_value": 16, "max_value": 16})
    generator: str
    generator_version: str
    manifold_yaml: str
    surfaces_json: str  # [{"name", "x", "y"}]: axes of each 2-D surface, for the SQL models
    projections_json: str  # [{"name", "axis"}]
    n_points: int = pa.Field(ge=1)
    dagster_run_id: str


class TestCases(_Table):
    task: str
    test_case_id: str = pa.Field(unique=True)
    point_id: str
    params_json: str
    tiers: list[str]
    surfaces: list[str]
    projections: list[str]
    item_index: int = pa.Field(ge=0)
    seed: int = pa.Field(ge=0)
    question: str = pa.Field(str_length={"min_value": 1})
    answer: str = pa.Field(str_length={"min_value": 1})
    guess_chance: float = pa.Field(ge=0.0, lt=1.0)
    metadata_json: str
    generator_version: str
    spec_version: str


class ModelSpecs(_Table):
    model: str
    model_version: str
    base_url: str
    served_model: str
    api_key_env: Optional[str] = pa.Field(nullable=True)
    sampler: str
    sampler_json: str
    template: str
    template_version: str


class Prompts(_Table):
    model: str
    task: str
    test_case_id: str = pa.Field(unique=True)
    point_id: str
    prompt_hash: str
    messages_json: str
    template: str
    template_version: str
    model_version: str
    spec_version: str


class Completions(_Table):
    """One row per (item, sample). Two items of a task can ask the very same question (at two grid
    points), so a request_hash may appear once per item that sent it."""

    model: str
    task: str
    test_case_id: str
    sample_index: int = pa.Field(ge=0)
    request_hash: str
    prompt_hash: str
    served_model: str
    answer_text: Optional[str] = pa.Field(nullable=True)
    reasoning_text: Optional[str] = pa.Field(nullable=True)
    finish_reason: Optional[str] = pa.Field(nullable=True)
    prompt_tokens: Optional[int] = pa.Field(nullable=True, ge=0)
    completion_tokens: Optional[int] = pa.Field(nullable=True, ge=0)
    reasoning_tokens: Optional[int] = pa.Field(nullable=True, ge=0)
    answer_tokens: Optional[int] = pa.Field(nullable=True, ge=0)
    answer_phase: Optional[str] = pa.Field(nullable=True, isin=["single", "budget_forced"])
    latency_s: float = pa.Field(ge=0.0)
    attempts: int = pa.Field(ge=0)
    error: Optional[str] = pa.Field(nullable=True)
    from_cache: bool
    sampler_json: str
    dagster_run_id: str

    class Config:
        unique = ["test_case_id", "request_hash"]


class ScoredResults(_Table):
    model: str
    task: str
    test_case_id: str
    point_id: str
    sample_index: int = pa.Field(ge=0)
    request_hash: str
    prompt_hash: str
    answer: str
    parsed_answer: Optional[str] = pa.Field(nullable=True)
    parse_rule: Optional[str] = pa.Field(nullable=True)
    outcome: str = pa.Field(isin=OUTCOMES)  # strict: only an answer in the requested form counts
    flexible_outcome: str = pa.Field(isin=OUTCOMES)  # any rule of the parse cascade counts
    guess_chance: float = pa.Field(ge=0.0, lt=1.0)
    completion_tokens: Optional[int] = pa.Field(nullable=True, ge=0)
    reasoning_tokens: Optional[int] = pa.Field(nullable=True, ge=0)
    answer_phase: Optional[str] = pa.Field(nullable=True, isin=["single", "budget_forced"])
    generator_version: str
    spec_version: str
    template: str
    sampler: str
    model_version: str
    dagster_run_id: str

    class Config:
        unique = ["test_case_id", "request_hash"]


class Points(_Table):
    model: str
    task: str
    point_id: str = pa.Field(unique=True)
    params_json: str
    tiers: list[str]
    surfaces: list[str]
    projections: list[str]
    n: int = pa.Field(ge=1)
    answered: int = pa.Field(ge=0)
    correct: int = pa.Field(ge=0)
    incorrect: int = pa.Field(ge=0)
    unparsed: int = pa.Field(ge=0)
    truncated: int = pa.Field(ge=0)
    errors: int = pa.Field(ge=0)
    budget_forced: int = pa.Field(ge=0)  # answers given in phase 2 of a think_budget
    flexible_correct: int = pa.Field(ge=0)
    accuracy: Optional[float] = pa.Field(nullable=True, ge=0.0, le=1.0)  # strict, the headline
    ci_low: Optional[float] = pa.Field(nullable=True, ge=0.0, le=1.0)
    ci_high: Optional[float] = pa.Field(nullable=True, ge=0.0, le=1.0)
    flexible_accuracy: Optional[float] = pa.Field(nullable=True, ge=0.0, le=1.0)
    flexible_ci_low: Optional[float] = pa.Field(nullable=True, ge=0.0, le=1.0)
    flexible_ci_high: Optional[float] = pa.Field(nullable=True, ge=0.0, le=1.0)
    format_compliance: Optional[float] = pa.Field(nullable=True, ge=0.0, le=1.0)
    guess_chance: float = pa.Field(ge=0.0, lt=1.0)
    excess_accuracy: Optional[float] = pa.Field(nullable=True, le=1.0)
    excess_ci_low: Optional[float] = pa.Field(nullable=True, le=1.0)
    excess_ci_high: Optional[float] = pa.Field(nullable=True, le=1.0)
    truncation_rate: float = pa.Field(ge=0.0, le=1.0)
    mean_completion_tokens: Optional[float] = pa.Field(nullable=True, ge=0.0)
    mean_reasoning_tokens: Optional[float] = pa.Field(nullable=True, ge=0.0)
    items: int = pa.Field(ge=1)  # distinct items sampled (n counts samples: items × repeats)
    half_width: Optional[float] = pa.Field(nullable=True, ge=0.0, le=1.0)  # of the strict Wilson 95% interval


class EvaluatedScopes(_Table):
    """Every scope a model × task partition was evaluated at; a run without a scope of its own (an
    automation re-run after an edit, a re-materialization in the UI) replays them all."""

    model: str
    task: str
    scope_id: str = pa.Field(unique=True)
    scope_json: str  # tiers, surfaces, projections, points, precision, repeats
    dagster_run_id: str  # the run that first evaluated it


class FftSpectra(_Table):
    model: str
    task: str
    point_id: str = pa.Field(unique=True)
    params_json: str
    tiers: list[str]
    surfaces: list[str]
    projections: list[str]
    tokenizer: str
    n_items: int = pa.Field(ge=1)
    mean_tokens: float = pa.Field(gt=0.0)
    mean_magnitude: list[float]
    std_magnitude: list[float]
    dc: float = pa.Field(ge=0.0)
    low: float = pa.Field(ge=0.0)
    mid: float = pa.Field(ge=0.0)
    high: float = pa.Field(ge=0.0)


# --- SQL models (dbt_like_sql/NAME.sql): each result is validated before its table replaces the old one. ---

import polars as pl  # noqa: E402  (only the SQL models' dataframe checks need it)

_TOLERANCE = 1e-12


def _within(low: str, value: str, high: str, data: pa.PolarsData):
    """low <= value <= high on every row where all three are known (a point with nothing answered has none)."""
    return data.lazyframe.select(
        ((pl.col(low) <= pl.col(value) + _TOLERANCE) & (pl.col(value) <= pl.col(high) + _TOLERANCE)).fill_null(True)
    )


def _counts_nested(data: pa.PolarsData):
    """correct <= answered <= n."""
    return data.lazyframe.select((pl.col("correct") <= pl.col("answered")) & (pl.col("answered") <= pl.col("n")))


class Surfaces(_Table):
    """One row per model, task, 2-D surface and (x, y) cell (dbt_like_sql/surfaces.sql)."""

    model: str
    task: str
    surface: str = pa.Field(description="surface name in the task manifold")
    x_axis: str = pa.Field(description="grid axis along x")
    y_axis: str = pa.Field(description="grid axis along y")
    x: str = pa.Field(description="the point's x value, as text")
    y: str = pa.Field(description="the point's y value, as text")
    x_numeric: Optional[float] = pa.Field(nullable=True, description="x as a number; null for a categorical axis")
    y_numeric: Optional[float] = pa.Field(nullable=True, description="y as a number; null for a categorical axis")
    x_rank: int = pa.Field(ge=1, description="position of x along its axis (numeric order, else the manifold's order)")
    y_rank: int = pa.Field(ge=1, description="position of y along its axis (numeric order, else the manifold's order)")
    point_id: str
    n: int = pa.Field(ge=1, description="samples at the point")
    answered: int = pa.Field(ge=0, description="samples with a complete answer: accuracy's denominator")
    correct: int = pa.Field(ge=0, description="strictly correct answers")
    accuracy: Optional[float] = pa.Field(nullable=True, ge=0.0, le=1.0, description="strict accuracy, the headline")
    ci_low: Optional[float] = pa.Field(nullable=True, ge=0.0, le=1.0, description="Wilson 95% lower bound")
    ci_high: Optional[float] = pa.Field(nullable=True, ge=0.0, le=1.0, description="Wilson 95% upper bound")
    flexible_accuracy: Optional[float] = pa.Field(nullable=True, ge=0.0, le=1.0, description="accuracy under any parse rule")
    format_compliance: Optional[float] = pa.Field(nullable=True, ge=0.0, le=1.0, description="share of answers in the requested form")
    excess_accuracy: Optional[float] = pa.Field(nullable=True, le=1.0, description="(acc - chance) / (1 - chance)")
    truncation_rate: float = pa.Field(ge=0.0, le=1.0)
    mean_completion_tokens: Optional[float] = pa.Field(nullable=True, ge=0.0)
    guess_chance: float = pa.Field(ge=0.0, lt=1.0, description="mean guess chance of the point's items: chance level")
    errors: int = pa.Field(ge=0, description="samples the endpoint failed")

    class Config:
        unique = ["model", "task", "surface", "x", "y"]  # every cell exactly once

    @pa.dataframe_check(name="ci_low <= accuracy <= ci_high")
    @classmethod
    def _ci_brackets_accuracy(cls, data: pa.PolarsData):
        return _within("ci_low", "accuracy", "ci_high", data)

    @pa.dataframe_check(name="correct <= answered <= n")
    @classmethod
    def _counts(cls, data: pa.PolarsData):
        return _counts_nested(data)


class Projections(_Table):
    """One row per model, task, 1-D projection and value along its axis (dbt_like_sql/projections.sql)."""

    model: str
    task: str
    projection: str = pa.Field(description="projection name in the task manifold")
    axis: str = pa.Field(description="the grid axis the projection sweeps")
    axis_value: str = pa.Field(description="the point's value on the axis, as text")
    axis_numeric: Optional[float] = pa.Field(nullable=True, description="the value as a number; null for a categorical axis")
    axis_rank: int = pa.Field(ge=1, description="position along the axis (numeric order, else the manifold's order)")
    point_id: str
    n: int = pa.Field(ge=1, description="samples at the point")
    answered: int = pa.Field(ge=0, description="samples with a complete answer: accuracy's denominator")
    correct: int = pa.Field(ge=0, description="strictly correct answers")
    accuracy: Optional[float] = pa.Field(nullable=True, ge=0.0, le=1.0, description="strict accuracy, the headline")
    ci_low: Optional[float] = pa.Field(nullable=True, ge=0.0, le=1.0, description="Wilson 95% lower bound")
    ci_high: Optional[float] = pa.Field(nullable=True, ge=0.0, le=1.0, description="Wilson 95% upper bound")
    flexible_accuracy: Optional[float] = pa.Field(nullable=True, ge=0.0, le=1.0, description="accuracy under any parse rule")
    format_compliance: Optional[float] = pa.Field(nullable=True, ge=0.0, le=1.0, description="share of answers in the requested form")
    excess_accuracy: Optional[float] = pa.Field(nullable=True, le=1.0, description="(acc - chance) / (1 - chance)")
    truncation_rate: float = pa.Field(ge=0.0, le=1.0)
    mean_completion_tokens: Optional[float] = pa.Field(nullable=True, ge=0.0)
    guess_chance: float = pa.Field(ge=0.0, lt=1.0, description="mean guess chance of the point's items: chance level")
    errors: int = pa.Field(ge=0, description="samples the endpoint failed")

    class Config:
        unique = ["model", "task", "projection", "axis_value"]  # every point of a curve exactly once

    @pa.dataframe_check(name="ci_low <= accuracy <= ci_high")
    @classmethod
    def _ci_brackets_accuracy(cls, data: pa.PolarsData):
        return _within("ci_low", "accuracy", "ci_high", data)

    @pa.dataframe_check(name="correct <= answered <= n")
    @classmethod
    def _counts(cls, data: pa.PolarsData):
        return _counts_nested(data)


class Leaderboard(_Table):
    """One row per model, task and tier, pooled over the tier's points (dbt_like_sql/leaderboard.sql)."""

    model: str
    task: str
    tier: str
    points: int = pa.Field(ge=1, description="grid points pooled")
    samples: int = pa.Field(ge=1, description="all samples, errors and truncations included")
    answered: int = pa.Field(ge=0, description="samples with a complete answer: accuracy's denominator")
    correct: int = pa.Field(ge=0, description="strictly correct answers")
    accuracy: Optional[float] = pa.Field(nullable=True, ge=0.0, le=1.0, description="sum(correct) / sum(answered), strict")
    ci_low: Optional[float] = pa.Field(nullable=True, ge=0.0, le=1.0, description="Wilson 95% lower bound of the pooled proportion")
    ci_high: Optional[float] = pa.Field(nullable=True, ge=0.0, le=1.0, description="Wilson 95% upper bound of the pooled proportion")
    flexible_accuracy: Optional[float] = pa.Field(nullable=True, ge=0.0, le=1.0, description="sum(flexible_correct) / sum(answered)")
    flexible_ci_low: Optional[float] = pa.Field(nullable=True, ge=0.0, le=1.0)
    flexible_ci_high: Optional[float] = pa.Field(nullable=True, ge=0.0, le=1.0)
    format_compliance: Optional[float] = pa.Field(nullable=True, ge=0.0, le=1.0, description="sum(correct + incorrect) / sum(answered)")
    guess_chance: float = pa.Field(ge=0.0, lt=1.0, description="sample-weighted mean guess chance")
    truncation_rate: float = pa.Field(ge=0.0, le=1.0)
    errors: int = pa.Field(ge=0)
    mean_completion_tokens: Optional[float] = pa.Field(nullable=True, ge=0.0)
    tier_points: Optional[int] = pa.Field(nullable=True, ge=1, description="grid points the tier has (points < tier_points: evaluated in part)")
    excess_accuracy: Optional[float] = pa.Field(nullable=True, le=1.0, description="(acc - chance) / (1 - chance)")

    class Config:
        unique = ["model", "task", "tier"]

    @pa.dataframe_check(name="ci_low <= accuracy <= ci_high")
    @classmethod
    def _ci_brackets_accuracy(cls, data: pa.PolarsData):
        return _within("ci_low", "accuracy", "ci_high", data)

    @pa.dataframe_check(name="flexible_ci_low <= flexible_accuracy <= flexible_ci_high")
    @classmethod
    def _flexible_ci_brackets(cls, data: pa.PolarsData):
        return _within("flexible_ci_low", "flexible_accuracy", "flexible_ci_high", data)

    @pa.dataframe_check(name="correct <= answered <= samples")
    @classmethod
    def _counts(cls, data: pa.PolarsData):
        return data.lazyframe.select((pl.col("correct") <= pl.col("answered")) & (pl.col("answered") <= pl.col("samples")))
