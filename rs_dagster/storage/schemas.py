"""pandera (polars) schemas, one per DuckDB table. Every frame is validated before it is written;
a frame that fails never lands, and the error names the column and the rule."""

from __future__ import annotations

import pandera.polars as pa

from rs_dagster.scoring.outcomes import ANSWERED, FIRST_SCORING_VERSION, WITH_TEXT, AnswerPhase, Outcome

OUTCOMES = [o.value for o in Outcome]
ANSWER_PHASES = [p.value for p in AnswerPhase]

ADDED_COLUMN_DEFAULTS: dict[str, dict[str, str | int | float]] = {
    "scored_results": {"scoring_version": FIRST_SCORING_VERSION},  # every row scored before the column existed
    "points": {"ambiguous": 0},  # no outcome was ambiguous before the column existed
    "hazard": {"ambiguous": 0, "incidence_ambiguous": 0.0},
    "model_specs": {"calibration": False},  # no model was a calibration model before the column existed
}
"""What a column added to a table that already holds rows reads in those rows (what they meant before the
column existed; rs_dagster.storage.warehouse.add_columns gives it as the column's DEFAULT, which also fills
a row that code from before the column inserts later). A column not named here reads NULL there."""


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
    tiers_json: str  # [{"name", "points"}]: each tier's grid point count (a tier evaluated in part is pooled over fewer)
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
    api_key_env: str | None = pa.Field(nullable=True)
    sampler: str
    sampler_json: str
    template: str
    template_version: str
    calibration: bool  # the known-truth endpoint (models.yaml `calibration: true`): the explorer draws its true curve


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
    answer_text: str | None = pa.Field(nullable=True)
    reasoning_text: str | None = pa.Field(nullable=True)
    finish_reason: str | None = pa.Field(nullable=True)
    prompt_tokens: int | None = pa.Field(nullable=True, ge=0)
    completion_tokens: int | None = pa.Field(nullable=True, ge=0)
    reasoning_tokens: int | None = pa.Field(nullable=True, ge=0)
    answer_tokens: int | None = pa.Field(nullable=True, ge=0)
    answer_phase: str | None = pa.Field(nullable=True, isin=ANSWER_PHASES)
    latency_s: float = pa.Field(ge=0.0)  # in flight: from the send (slot acquired) to the reply, over all attempts
    attempts: int = pa.Field(ge=0)
    error: str | None = pa.Field(nullable=True)
    from_cache: bool
    # waiting for a concurrency slot, Retry-After pauses and retry backoffs; NULL: a cache hit, or a row stored
    # before the column existed (whose latency_s still includes the wait)
    queue_wait_s: float | None = pa.Field(nullable=True, ge=0.0)
    # what the response said about the server: its `model` and `system_fingerprint` fields, and any other
    # top-level field a provider adds (OpenRouter's `provider`...) as JSON; NULL when it said nothing (or cached before)
    response_model: str | None = pa.Field(nullable=True)
    system_fingerprint: str | None = pa.Field(nullable=True)
    served_metadata_json: str | None = pa.Field(nullable=True)
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
    parsed_answer: str | None = pa.Field(nullable=True)
    parse_rule: str | None = pa.Field(nullable=True)
    outcome: str = pa.Field(isin=OUTCOMES)  # strict: only an answer in the requested form counts
    flexible_outcome: str = pa.Field(isin=OUTCOMES)  # any rule of the parse cascade counts
    guess_chance: float = pa.Field(ge=0.0, lt=1.0)
    completion_tokens: int | None = pa.Field(nullable=True, ge=0)
    reasoning_tokens: int | None = pa.Field(nullable=True, ge=0)
    answer_phase: str | None = pa.Field(nullable=True, isin=ANSWER_PHASES)
    generator_version: str
    spec_version: str
    template: str
    sampler: str
    model_version: str
    # rs_dagster.scoring.outcomes.SCORING_VERSION of the code that scored the row; "1": before the column existed
    scoring_version: str = pa.Field(str_length={"min_value": 1})
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
    ambiguous: int = pa.Field(ge=0)  # answers hedging between two or more candidates: answered, never correct
    truncated: int = pa.Field(ge=0)
    errors: int = pa.Field(ge=0)
    budget_forced: int = pa.Field(ge=0)  # answers given in phase 2 of a think_budget
    flexible_correct: int = pa.Field(ge=0)
    accuracy: float | None = pa.Field(nullable=True, ge=0.0, le=1.0)  # strict, the headline
    ci_low: float | None = pa.Field(nullable=True, ge=0.0, le=1.0)
    ci_high: float | None = pa.Field(nullable=True, ge=0.0, le=1.0)
    flexible_accuracy: float | None = pa.Field(nullable=True, ge=0.0, le=1.0)
    flexible_ci_low: float | None = pa.Field(nullable=True, ge=0.0, le=1.0)
    flexible_ci_high: float | None = pa.Field(nullable=True, ge=0.0, le=1.0)
    format_compliance: float | None = pa.Field(nullable=True, ge=0.0, le=1.0)
    guess_chance: float = pa.Field(ge=0.0, lt=1.0)
    excess_accuracy: float | None = pa.Field(nullable=True, le=1.0)
    excess_ci_low: float | None = pa.Field(nullable=True, le=1.0)
    excess_ci_high: float | None = pa.Field(nullable=True, le=1.0)
    truncation_rate: float = pa.Field(ge=0.0, le=1.0)
    truncation_ratio: float | None = pa.Field(nullable=True, ge=0.0, le=1.0)  # truncated / (answered + truncated); errors left out
    mean_completion_tokens: float | None = pa.Field(nullable=True, ge=0.0)
    mean_reasoning_tokens: float | None = pa.Field(nullable=True, ge=0.0)
    items: int = pa.Field(ge=1)  # distinct items sampled (n counts samples: items × repeats)
    half_width: float | None = pa.Field(nullable=True, ge=0.0, le=1.0)  # of the strict Wilson 95% interval


class EvaluatedScopes(_Table):
    """Every scope a model × task partition was evaluated at; a run without a scope of its own (an
    automation re-run after an edit, a re-materialization in the UI) replays them all."""

    model: str
    task: str
    scope_id: str = pa.Field(unique=True)
    scope_json: str  # tiers, surfaces, projections, points, precision, repeats
    dagster_run_id: str  # the run that first evaluated it


class ReasonScores(_Table):
    """One row per model and tier: ReasonScore v1 and v2 over the tier's tasks (rs_dagster.stats.reasonscore)."""

    model: str
    tier: str
    tasks: int = pa.Field(ge=1, description="tasks in the geometric mean (a task whose samples are all errors is left out)")
    points: int = pa.Field(ge=1, description="grid points of those tasks at the tier")
    samples: int = pa.Field(ge=1)
    v1: float = pa.Field(ge=10.0 - 1e-9, le=1000.0 + 1e-9, description="1000 · geomean of clamp(excess(Wilson upper) − truncation ratio, 0.01, 1)")
    v2: float = pa.Field(ge=10.0 - 1e-9, le=1000.0 + 1e-9, description="1000 · geomean of clamp((1 − truncation ratio) · max(0, excess accuracy), 0.01, 1)")
    v2_median: float = pa.Field(ge=10.0 - 1e-9, le=1000.0 + 1e-9, description="median of the bootstrap replicates of v2")
    v2_low: float = pa.Field(ge=10.0 - 1e-9, le=1000.0 + 1e-9, description="2.5th percentile of the bootstrap replicates")
    v2_high: float = pa.Field(ge=10.0 - 1e-9, le=1000.0 + 1e-9, description="97.5th percentile of the bootstrap replicates")
    tokens: float | None = pa.Field(nullable=True, ge=0.0, description="mean over the tasks of each task's mean completion tokens per sample")
    v1_per_token: float | None = pa.Field(nullable=True, ge=0.0, description="v1 / tokens (ReasonScape's score/token)")
    v2_per_token: float | None = pa.Field(nullable=True, ge=0.0, description="v2 / tokens")
    resamples: int = pa.Field(ge=1, description="bootstrap replicates")
    seed: int = pa.Field(ge=0, description="the bootstrap's seed for this model and tier")

    class Config:
        unique = ["model", "tier"]

    @pa.dataframe_check(name="v2_low <= v2_median <= v2_high")
    @classmethod
    def _interval_ordered(cls, data: pa.PolarsData):
        return data.lazyframe.select((pl.col("v2_low") <= pl.col("v2_median") + 1e-9) & (pl.col("v2_median") <= pl.col("v2_high") + 1e-9))


class ReasonScoreTasks(_Table):
    """One row per model, tier and task: the pooled counts and per-task scores behind ReasonScores."""

    model: str
    tier: str
    task: str
    points: int = pa.Field(ge=1)
    samples: int = pa.Field(ge=1)
    answered: int = pa.Field(ge=0)
    correct: int = pa.Field(ge=0)
    truncated: int = pa.Field(ge=0)
    errors: int = pa.Field(ge=0)
    accuracy: float | None = pa.Field(nullable=True, ge=0.0, le=1.0, description="sum(correct) / sum(answered), strict")
    ci_low: float | None = pa.Field(nullable=True, ge=0.0, le=1.0, description="Wilson 95% lower bound")
    ci_high: float | None = pa.Field(nullable=True, ge=0.0, le=1.0, description="Wilson 95% upper bound")
    guess_chance: float = pa.Field(ge=0.0, lt=1.0, description="sample-weighted mean guess chance")
    excess_accuracy: float | None = pa.Field(nullable=True, le=1.0)
    excess_ci_high: float | None = pa.Field(nullable=True, le=1.0, description="excess over chance of the Wilson upper bound")
    truncation_ratio: float | None = pa.Field(nullable=True, ge=0.0, le=1.0, description="truncated / (answered + truncated); null: all errors")
    v1_task: float | None = pa.Field(nullable=True, ge=0.01 - 1e-12, le=1.0, description="s_t, null when the task is all errors")
    v2_task: float | None = pa.Field(nullable=True, ge=0.01 - 1e-12, le=1.0, description="p_t, null when the task is all errors")
    mean_completion_tokens: float | None = pa.Field(nullable=True, ge=0.0)

    class Config:
        unique = ["model", "tier", "task"]


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


class Compression(_Table):
    """One row per sample of the current versions that produced text (errors left out): gzip ratios of its
    reasoning trace and answer, and the loop flag (rs_dagster.stats.compression)."""

    model: str
    task: str
    point_id: str
    test_case_id: str
    sample_index: int = pa.Field(ge=0)
    request_hash: str
    outcome: str = pa.Field(isin=[o.value for o in WITH_TEXT], description="strict outcome")
    finish_reason: str | None = pa.Field(nullable=True)
    completion_tokens: int | None = pa.Field(nullable=True, ge=0)
    reasoning_tokens: int | None = pa.Field(nullable=True, ge=0)
    reasoning_bytes: int = pa.Field(ge=0, description="UTF-8 bytes of the reasoning trace (0: none)")
    reasoning_gzip_bytes: int | None = pa.Field(nullable=True, ge=1, description="gzip -9 size; null without a trace")
    reasoning_ratio: float | None = pa.Field(nullable=True, gt=0.0, description="gzip bytes / raw bytes of the trace")
    answer_bytes: int = pa.Field(ge=0)
    answer_gzip_bytes: int | None = pa.Field(nullable=True, ge=1)
    answer_ratio: float | None = pa.Field(nullable=True, gt=0.0, description="gzip bytes / raw bytes of the answer")
    reference_ratio: float | None = pa.Field(nullable=True, gt=0.0, description="the point's typical trace ratio the loop flag compares with")
    loop: bool = pa.Field(description="trace >= 1024 bytes and ratio < 0.5 × reference_ratio or < 0.1")

    class Config:
        unique = ["model", "task", "test_case_id", "request_hash"]

    @pa.dataframe_check(name="a ratio exactly when there are bytes")
    @classmethod
    def _ratio_iff_bytes(cls, data: pa.PolarsData):
        return data.lazyframe.select(
            ((pl.col("reasoning_bytes") > 0) == pl.col("reasoning_ratio").is_not_null())
            & ((pl.col("answer_bytes") > 0) == pl.col("answer_ratio").is_not_null())
        )


class CompressionPoints(_Table):
    """Per grid point and outcome group (`all` or a strict outcome): the distribution of the trace's gzip
    ratio (p10/p50/p90) and how many traces are loops."""

    model: str
    task: str
    point_id: str
    outcome: str = pa.Field(isin=["all", *(o.value for o in WITH_TEXT)])
    samples: int = pa.Field(ge=1)
    traces: int = pa.Field(ge=0, description="samples with a reasoning trace")
    ratio_p10: float | None = pa.Field(nullable=True, gt=0.0)
    ratio_p50: float | None = pa.Field(nullable=True, gt=0.0)
    ratio_p90: float | None = pa.Field(nullable=True, gt=0.0)
    answer_ratio_p50: float | None = pa.Field(nullable=True, gt=0.0)
    reference_ratio: float | None = pa.Field(nullable=True, gt=0.0)
    mean_completion_tokens: float | None = pa.Field(nullable=True, ge=0.0)
    mean_reasoning_tokens: float | None = pa.Field(nullable=True, ge=0.0)
    loops: int = pa.Field(ge=0)
    loop_share: float | None = pa.Field(nullable=True, ge=0.0, le=1.0, description="loops / traces")

    class Config:
        unique = ["model", "task", "point_id", "outcome"]

    @pa.dataframe_check(name="p10 <= p50 <= p90, loops <= traces <= samples")
    @classmethod
    def _ordered(cls, data: pa.PolarsData):
        return data.lazyframe.select(
            ((pl.col("ratio_p10") <= pl.col("ratio_p50") + _TOLERANCE) & (pl.col("ratio_p50") <= pl.col("ratio_p90") + _TOLERANCE)).fill_null(True)
            & (pl.col("loops") <= pl.col("traces")) & (pl.col("traces") <= pl.col("samples"))
        )


class Hazard(_Table):
    """Per model, task, tier (`all`: every current-version sample) and token bucket (a round width chosen from the data, rs_dagster.stats.hazard.bucket_width): samples at risk,
    answers by kind, truncations, the bucket hazards, and the survival and incidence curves at the bucket's
    end (rs_dagster.stats.hazard); the median tokens to answer repeats on every row of its group."""

    model: str
    task: str
    tier: str
    bucket_start: int = pa.Field(ge=0)
    bucket_end: int = pa.Field(ge=1)
    samples: int = pa.Field(ge=1, description="samples in the group (errors and samples without a token count left out)")
    at_risk: int = pa.Field(ge=0, description="samples with completion_tokens >= bucket_start")
    answered: int = pa.Field(ge=0, description="answers (correct + incorrect + unparsed + ambiguous) inside the bucket")
    correct: int = pa.Field(ge=0)
    incorrect: int = pa.Field(ge=0)
    unparsed: int = pa.Field(ge=0)
    ambiguous: int = pa.Field(ge=0)
    truncated: int = pa.Field(ge=0, description="censored inside the bucket")
    hazard: float | None = pa.Field(nullable=True, ge=0.0, le=1.0, description="answered / at_risk")
    hazard_correct: float | None = pa.Field(nullable=True, ge=0.0, le=1.0)
    hazard_incorrect: float | None = pa.Field(nullable=True, ge=0.0, le=1.0)
    hazard_unparsed: float | None = pa.Field(nullable=True, ge=0.0, le=1.0)
    hazard_ambiguous: float | None = pa.Field(nullable=True, ge=0.0, le=1.0)
    survival: float = pa.Field(ge=0.0, le=1.0, description="Kaplan-Meier S(bucket_end - 1): no answer yet")
    survival_ci_low: float | None = pa.Field(nullable=True, ge=0.0, le=1.0)
    survival_ci_high: float | None = pa.Field(nullable=True, ge=0.0, le=1.0)
    incidence_correct: float = pa.Field(ge=0.0, le=1.0, description="Aalen-Johansen F_correct(bucket_end - 1)")
    incidence_incorrect: float = pa.Field(ge=0.0, le=1.0)
    incidence_unparsed: float = pa.Field(ge=0.0, le=1.0)
    incidence_ambiguous: float = pa.Field(ge=0.0, le=1.0)
    median_tokens: float | None = pa.Field(nullable=True, ge=0.0, description="least t with S(t) <= 0.5; null: not reached")
    median_ci_low: float | None = pa.Field(nullable=True, ge=0.0)
    median_ci_high: float | None = pa.Field(nullable=True, ge=0.0, description="null: the band never reaches 0.5")

    class Config:
        unique = ["model", "task", "tier", "bucket_start"]

    @pa.dataframe_check(name="answered = correct + incorrect + unparsed + ambiguous <= at_risk <= samples; S + sum F = 1")
    @classmethod
    def _consistent(cls, data: pa.PolarsData):
        causes = [o.value for o in ANSWERED]
        total = pl.sum_horizontal("survival", *(f"incidence_{c}" for c in causes))
        return data.lazyframe.select(
            (pl.col("answered") == pl.sum_horizontal(*causes))
            & (pl.col("answered") + pl.col("truncated") <= pl.col("at_risk"))
            & (pl.col("at_risk") <= pl.col("samples"))
            & ((total - 1.0).abs() < 1e-9)
        )


class Survival(_Table):
    """The step curves behind `hazard`, at every token count where a sample of the group ended: `answered`
    is the Kaplan-Meier S(t), a cause (correct, incorrect, unparsed, ambiguous) its Aalen-Johansen incidence F(t)."""

    model: str
    task: str
    tier: str
    curve: str = pa.Field(isin=["answered", *(o.value for o in ANSWERED)])
    tokens: int = pa.Field(ge=0)
    at_risk: int = pa.Field(ge=0)
    events: int = pa.Field(ge=0, description="answers at this token count (of the curve's kind)")
    censored: int = pa.Field(ge=0, description="truncations at this token count")
    estimate: float = pa.Field(ge=0.0, le=1.0)
    ci_low: float | None = pa.Field(nullable=True, ge=0.0, le=1.0)
    ci_high: float | None = pa.Field(nullable=True, ge=0.0, le=1.0)

    class Config:
        unique = ["model", "task", "tier", "curve", "tokens"]

    @pa.dataframe_check(name="ci_low <= estimate <= ci_high")
    @classmethod
    def _ci_brackets_estimate(cls, data: pa.PolarsData):
        return _within("ci_low", "estimate", "ci_high", data)


class Surfaces(_Table):
    """One row per model, task, 2-D surface and (x, y) cell (dbt_like_sql/surfaces.sql)."""

    model: str
    task: str
    surface: str = pa.Field(description="surface name in the task manifold")
    x_axis: str = pa.Field(description="grid axis along x")
    y_axis: str = pa.Field(description="grid axis along y")
    x: str = pa.Field(description="the point's x value, as text")
    y: str = pa.Field(description="the point's y value, as text")
    x_numeric: float | None = pa.Field(nullable=True, description="x as a number; null for a categorical axis")
    y_numeric: float | None = pa.Field(nullable=True, description="y as a number; null for a categorical axis")
    x_rank: int = pa.Field(ge=1, description="position of x along its axis (numeric order, else the manifold's order)")
    y_rank: int = pa.Field(ge=1, description="position of y along its axis (numeric order, else the manifold's order)")
    point_id: str
    n: int = pa.Field(ge=1, description="samples at the point")
    answered: int = pa.Field(ge=0, description="samples with a complete answer: accuracy's denominator")
    correct: int = pa.Field(ge=0, description="strictly correct answers")
    accuracy: float | None = pa.Field(nullable=True, ge=0.0, le=1.0, description="strict accuracy, the headline")
    ci_low: float | None = pa.Field(nullable=True, ge=0.0, le=1.0, description="Wilson 95% lower bound")
    ci_high: float | None = pa.Field(nullable=True, ge=0.0, le=1.0, description="Wilson 95% upper bound")
    flexible_accuracy: float | None = pa.Field(nullable=True, ge=0.0, le=1.0, description="accuracy under any parse rule")
    format_compliance: float | None = pa.Field(nullable=True, ge=0.0, le=1.0, description="share of answers in the requested form")
    excess_accuracy: float | None = pa.Field(nullable=True, le=1.0, description="(acc - chance) / (1 - chance)")
    truncation_rate: float = pa.Field(ge=0.0, le=1.0)
    mean_completion_tokens: float | None = pa.Field(nullable=True, ge=0.0)
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


class Comparisons(_Table):
    """Paired comparisons (rs_dagster.stats.paired): per pair of runs on shared items, one row per task
    (pooled) and per grid point; exact McNemar, Benjamini–Hochberg over the rows of one comparison."""

    kind: str = pa.Field(isin=["models", "versions"], description="models: A vs B at their current versions; versions: a model's previous version (A) vs its current one (B)")
    model_a: str
    version_a: str = pa.Field(description="model_version of run A")
    model_b: str
    version_b: str = pa.Field(description="model_version of run B")
    level: str = pa.Field(isin=["task", "point"], description="task: all paired samples of the task pooled; point: one grid point")
    task: str
    point_id: str | None = pa.Field(nullable=True, description="null on task rows")
    params_json: str | None = pa.Field(nullable=True, description="the point's parameters; null on task rows")
    pairs: int = pa.Field(ge=1, description="samples both runs answered (correct, incorrect, unparsed or ambiguous on both sides)")
    excluded: int = pa.Field(ge=0, description="samples of both runs left out: truncated or error on either side")
    correct_a: int = pa.Field(ge=0, description="strictly correct answers of A among the pairs")
    correct_b: int = pa.Field(ge=0, description="strictly correct answers of B among the pairs")
    accuracy_a: float = pa.Field(ge=0.0, le=1.0, description="correct_a / pairs")
    accuracy_b: float = pa.Field(ge=0.0, le=1.0, description="correct_b / pairs")
    b: int = pa.Field(ge=0, description="discordant pairs: A correct, B not")
    c: int = pa.Field(ge=0, description="discordant pairs: A not correct, B correct")
    p_value: float = pa.Field(ge=0.0, le=1.0, description="exact McNemar: two-sided binomial test of b in b + c at 1/2")
    q_value: float = pa.Field(ge=0.0, le=1.0, description="Benjamini–Hochberg over the rows of the comparison")
    differs: bool = pa.Field(description="q_value <= 0.05")
    worse: bool = pa.Field(description="differs and b > c: B significantly worse than A")

    class Config:
        unique = ["kind", "model_a", "version_a", "model_b", "version_b", "level", "task", "point_id"]

    @pa.dataframe_check(name="b + c <= pairs, correct_a and correct_b <= pairs")
    @classmethod
    def _discordant_within_pairs(cls, data: pa.PolarsData):
        return data.lazyframe.select(
            (pl.col("b") + pl.col("c") <= pl.col("pairs"))
            & (pl.col("correct_a") <= pl.col("pairs"))
            & (pl.col("correct_b") <= pl.col("pairs"))
            & (pl.col("correct_a") - pl.col("correct_b") == pl.col("b") - pl.col("c"))
        )


class Projections(_Table):
    """One row per model, task, 1-D projection and value along its axis (dbt_like_sql/projections.sql)."""

    model: str
    task: str
    projection: str = pa.Field(description="projection name in the task manifold")
    axis: str = pa.Field(description="the grid axis the projection sweeps")
    axis_value: str = pa.Field(description="the point's value on the axis, as text")
    axis_numeric: float | None = pa.Field(nullable=True, description="the value as a number; null for a categorical axis")
    axis_rank: int = pa.Field(ge=1, description="position along the axis (numeric order, else the manifold's order)")
    point_id: str
    n: int = pa.Field(ge=1, description="samples at the point")
    answered: int = pa.Field(ge=0, description="samples with a complete answer: accuracy's denominator")
    correct: int = pa.Field(ge=0, description="strictly correct answers")
    accuracy: float | None = pa.Field(nullable=True, ge=0.0, le=1.0, description="strict accuracy, the headline")
    ci_low: float | None = pa.Field(nullable=True, ge=0.0, le=1.0, description="Wilson 95% lower bound")
    ci_high: float | None = pa.Field(nullable=True, ge=0.0, le=1.0, description="Wilson 95% upper bound")
    flexible_accuracy: float | None = pa.Field(nullable=True, ge=0.0, le=1.0, description="accuracy under any parse rule")
    format_compliance: float | None = pa.Field(nullable=True, ge=0.0, le=1.0, description="share of answers in the requested form")
    excess_accuracy: float | None = pa.Field(nullable=True, le=1.0, description="(acc - chance) / (1 - chance)")
    truncation_rate: float = pa.Field(ge=0.0, le=1.0)
    mean_completion_tokens: float | None = pa.Field(nullable=True, ge=0.0)
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
    unparsed: int = pa.Field(ge=0, description="answers not read in the requested form (strict)")
    ambiguous: int = pa.Field(ge=0, description="answers hedging between two or more candidates (strict): answered, never correct")
    ambiguous_share: float | None = pa.Field(nullable=True, ge=0.0, le=1.0, description="sum(ambiguous) / sum(answered)")
    accuracy: float | None = pa.Field(nullable=True, ge=0.0, le=1.0, description="sum(correct) / sum(answered), strict")
    ci_low: float | None = pa.Field(nullable=True, ge=0.0, le=1.0, description="Wilson 95% lower bound of the pooled proportion")
    ci_high: float | None = pa.Field(nullable=True, ge=0.0, le=1.0, description="Wilson 95% upper bound of the pooled proportion")
    flexible_accuracy: float | None = pa.Field(nullable=True, ge=0.0, le=1.0, description="sum(flexible_correct) / sum(answered)")
    flexible_ci_low: float | None = pa.Field(nullable=True, ge=0.0, le=1.0)
    flexible_ci_high: float | None = pa.Field(nullable=True, ge=0.0, le=1.0)
    format_compliance: float | None = pa.Field(nullable=True, ge=0.0, le=1.0, description="sum(correct + incorrect) / sum(answered)")
    guess_chance: float = pa.Field(ge=0.0, lt=1.0, description="sample-weighted mean guess chance")
    truncation_rate: float = pa.Field(ge=0.0, le=1.0, description="sum(truncated) / sum(n), errors included")
    truncation_ratio: float | None = pa.Field(
        nullable=True, ge=0.0, le=1.0, description="sum(truncated) / (sum(answered) + sum(truncated)); errors left out; ReasonScore's penalty"
    )
    errors: int = pa.Field(ge=0)
    mean_completion_tokens: float | None = pa.Field(nullable=True, ge=0.0)
    tier_points: int | None = pa.Field(nullable=True, ge=1, description="grid points the tier has (points < tier_points: evaluated in part)")
    excess_accuracy: float | None = pa.Field(nullable=True, le=1.0, description="(acc - chance) / (1 - chance)")

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

    @pa.dataframe_check(name="correct + unparsed + ambiguous <= answered <= samples")
    @classmethod
    def _counts(cls, data: pa.PolarsData):
        return data.lazyframe.select(
            (pl.col("correct") + pl.col("unparsed") + pl.col("ambiguous") <= pl.col("answered")) & (pl.col("answered") <= pl.col("samples"))
        )


class ScopeCoverage(_Table):
    """Per model × task and completed selection (its scopes, repeats and the model, task and scoring
    versions, hashed as selection_id), every request its adaptive rounds needed: the selection is
    current while each of them is stored as an answer (rs_dagster.storage.fingerprints.coverage)."""

    model: str
    task: str
    selection_id: str
    test_case_id: str
    request_hash: str


class LabState(_Table):
    """What each derived stage was built from and what it left: the fingerprints of its input and output
    tables when its run succeeded (stage: evaluation or token_fft per model|task partition; report for the
    tables over every partition and the HTML report). A stage is current while both still match."""

    stage: str
    partition: str
    inputs: str
    outputs: str
    code: str  # the fingerprint of the package and SQL models that built it
    dagster_run_id: str


class CanaryAnswers(_Table):
    """A watched model's canary, asked afresh each night (the night is in the request key, rs_dagster.watch):
    one row per (night, item set, item) with its outcome under the task's scorer. `item_set` is `published`
    (the task's own items, from its published seed) or `fresh:<salt>:<k>` (the k-th extra set drawn at the same
    points from a seed derived from the salt, never the published one). `night` is the night's date
    (YYYY-MM-DD, the schedule's execution date) or `eval:<salt>` for `rs eval --fresh-seeds` (unwatched requests:
    the published answers are the evaluation's own)."""

    model: str
    task: str
    night: str
    item_set: str
    test_case_id: str
    point_id: str
    tiers: list[str]
    request_hash: str
    outcome: str = pa.Field(isin=OUTCOMES)
    guess_chance: float = pa.Field(ge=0.0, lt=1.0)
    answer_text: str | None = pa.Field(nullable=True)
    finish_reason: str | None = pa.Field(nullable=True)
    completion_tokens: int | None = pa.Field(nullable=True, ge=0)
    latency_s: float = pa.Field(ge=0.0)
    error: str | None = pa.Field(nullable=True)
    from_cache: bool
    response_model: str | None = pa.Field(nullable=True)
    system_fingerprint: str | None = pa.Field(nullable=True)
    served_metadata_json: str | None = pa.Field(nullable=True)
    model_version: str
    spec_version: str
    scoring_version: str
    dagster_run_id: str

    class Config:
        unique = ["night", "item_set", "test_case_id", "request_hash"]


class Nights(_Table):
    """One row per watched model × task × night: the canary's accuracy with its Wilson 95% interval, output
    tokens and latency, what the server reported, and whether the drift tests flagged the night."""

    model: str
    task: str
    night: str = pa.Field(unique=True)
    n: int = pa.Field(ge=0)  # published items answered (errors left out)
    correct: int = pa.Field(ge=0)
    accuracy: float | None = pa.Field(nullable=True, ge=0.0, le=1.0)
    ci_low: float | None = pa.Field(nullable=True, ge=0.0, le=1.0)
    ci_high: float | None = pa.Field(nullable=True, ge=0.0, le=1.0)
    errors: int = pa.Field(ge=0)
    mean_output_tokens: float | None = pa.Field(nullable=True, ge=0.0)
    median_latency_s: float | None = pa.Field(nullable=True, ge=0.0)
    response_models: str  # the distinct reported `model` values, comma-separated ('' when none)
    fingerprints: str  # the distinct `system_fingerprint` values, comma-separated ('' when none)
    server_changed: bool  # reported model or fingerprint differs from the previous night's
    drifted: bool  # any alarm of the night (rs_dagster.stats.drift.ALARM_METRICS)
    drift_summary: str  # what moved, in words ('' when nothing did)


class Drift(_Table):
    """Each night of a watched model × task compared with the previous night and with the last k nights,
    for the task as a whole and per grid point (scope): accuracy by a paired exact test on the shared items
    (McNemar for one night before; its exact generalisation for k), output tokens and latency by a rank test,
    and the reported server (model, fingerprint). q_value: Benjamini–Hochberg over the night's tests of the
    partition; `alarm`: the row is one of ALARM_METRICS and significant (q < alpha), or the server changed."""

    model: str
    task: str
    night: str
    comparison: str = pa.Field(isin=["previous", "baseline"])
    compared_to: str  # the night(s) compared with: `2026-01-03` or `2025-12-27..2026-01-02 (7 nights)`
    scope: str  # `task` or a point_id
    metric: str = pa.Field(isin=["accuracy", "output_tokens", "latency_s", "server"])
    n_shared: int = pa.Field(ge=0)  # items answered on both sides
    now: float | None = pa.Field(nullable=True)
    before: float | None = pa.Field(nullable=True)
    shift: float | None = pa.Field(nullable=True)  # now - before (accuracy: mean paired difference)
    shift_low: float | None = pa.Field(nullable=True)
    shift_high: float | None = pa.Field(nullable=True)
    p_value: float | None = pa.Field(nullable=True, ge=0.0, le=1.0)
    q_value: float | None = pa.Field(nullable=True, ge=0.0, le=1.0)
    alarm: bool
    detail: str
    dagster_run_id: str


class Memorisation(_Table):
    """Per model × task × tier and night: accuracy on the published items minus accuracy on fresh items
    drawn at the same points, stratified by point, with its 95% interval; `flagged` when it excludes 0."""

    model: str
    task: str
    night: str
    tier: str
    points: int = pa.Field(ge=1)
    n_published: int = pa.Field(ge=1)
    n_fresh: int = pa.Field(ge=1)
    accuracy_published: float = pa.Field(ge=0.0, le=1.0)
    accuracy_fresh: float = pa.Field(ge=0.0, le=1.0)
    gap: float = pa.Field(ge=-1.0, le=1.0)
    gap_low: float = pa.Field(ge=-1.0, le=1.0)
    gap_high: float = pa.Field(ge=-1.0, le=1.0)
    flagged: bool
    dagster_run_id: str
