"""ReasonScore: one number per model and tier from the per-point counts, after ReasonScape
(https://reasonscape.com/docs/reasonscore, v1; https://reasonscape.com/docs/reasonscore/, v2).

Per model, tier and task t, the counts of the tier's points of t are pooled (as the leaderboard pools
them): a_t = Σ correct / Σ answered, its Wilson 95% interval [lo_t, hi_t], g_t = Σ g·n / Σ n (the
sample-weighted guess chance), τ_t = Σ truncated / (Σ answered + Σ truncated) (the truncation ratio;
errors are the endpoint's fault and stay out). A task whose samples are all errors has nothing measured
and is left out of the tier's score.

v1 (optimistic about sampling, pessimistic about truncation):
    s_t = clamp(excess(hi_t, g_t) − τ_t, FLOOR, 1),   excess(x, g) = (x − g) / (1 − g)
    (a task with nothing answered, all truncated, has τ_t = 1 and s_t = FLOOR)
    v1  = 1000 · (Π s_t)^(1/T)

v2 (ReasonScape r12: the probability of a correct, complete answer beyond chance):
    p_t = clamp((1 − τ_t) · max(0, (a_t − g_t) / (1 − g_t)), FLOOR, 1)   (a_t = 0 when nothing answered)
    v2  = 1000 · (Π p_t)^(1/T)   — the range is 10..1000 with FLOOR = 0.01
    interval: a seeded bootstrap. Each replicate redraws, for every point, its answered + truncated
    samples from Multinomial(answered + truncated; correct, answered − correct, truncated as shares),
    pools each task's points again to a*_t and τ*_t, and recomputes v2; median and 2.5/97.5 percentiles.

Score per token: score / tokens, tokens = the mean over the tier's tasks of each task's mean completion
tokens per sample (Σ mean_tokens·n / Σ n over its points; every task weighs the same, as in the score).
This is ReasonScape's score/token: below 1 whenever a model spends more than 1000 tokens per answer.

The geometric mean punishes a collapse on one task: eleven tasks at 0.95 and one at 0.05 give 618 where
an arithmetic mean gives 875.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Sequence

import numpy as np
import polars as pl
from polars._typing import PolarsDataType

from rs_dagster.stats.intervals import excess_over_chance, truncation_ratio, wilson_interval
from rs_dagster.tasks.manifold import TIERS

FLOOR = 0.01
"""Lowest per-task score, for v1 and v2 alike: a task at the floor contributes 0.01 to the product, so a
score stays in 10..1000 and one collapsed task cannot zero a model."""
SCALE = 1000.0
RESAMPLES = 1000
SEED = 0
LEVEL = 0.95

TASK_COLUMNS: dict[str, PolarsDataType] = {
    "model": pl.String, "tier": pl.String, "task": pl.String, "points": pl.Int64, "samples": pl.Int64,
    "answered": pl.Int64, "correct": pl.Int64, "truncated": pl.Int64, "errors": pl.Int64,
    "accuracy": pl.Float64, "ci_low": pl.Float64, "ci_high": pl.Float64, "guess_chance": pl.Float64,
    "excess_accuracy": pl.Float64, "excess_ci_high": pl.Float64, "truncation_ratio": pl.Float64,
    "v1_task": pl.Float64, "v2_task": pl.Float64, "mean_completion_tokens": pl.Float64,
}
"""Columns of the per-task components (table reasonscore_tasks)."""

SCORE_COLUMNS: dict[str, PolarsDataType] = {
    "model": pl.String, "tier": pl.String, "tasks": pl.Int64, "points": pl.Int64, "samples": pl.Int64,
    "v1": pl.Float64, "v2": pl.Float64, "v2_median": pl.Float64, "v2_low": pl.Float64, "v2_high": pl.Float64,
    "tokens": pl.Float64, "v1_per_token": pl.Float64, "v2_per_token": pl.Float64,
    "resamples": pl.Int64, "seed": pl.Int64,
}
"""Columns of the per model × tier scores (table reasonscore); `seed` is the bootstrap's own seed
(derived_seed(SEED, model, tier)), so bootstrap_v2(..., seed=row["seed"]) redraws the same replicates."""


def clamp(value: float, floor: float = FLOOR) -> float:
    return min(1.0, max(floor, value))


def geometric_mean(values: Iterable[float]) -> float:
    values = list(values)
    if not values:
        raise ValueError("a geometric mean needs at least one value")
    if min(values) <= 0:
        raise ValueError(f"a geometric mean needs positive values, got {min(values)}")
    return math.exp(sum(math.log(v) for v in values) / len(values))


def combine(task_scores: Iterable[float]) -> float:
    """1000 × the geometric mean of per-task scores in [FLOOR, 1]: the tier's ReasonScore."""
    return SCALE * geometric_mean(task_scores)


def v1_task_score(correct: int, answered: int, truncated: int, guess_chance: float, floor: float = FLOOR) -> float:
    """s_t = clamp(excess over chance of the Wilson upper bound − truncation ratio, floor, 1)."""
    ratio = truncation_ratio(truncated, answered)
    if ratio is None:
        raise ValueError("a task with nothing answered or truncated (all errors) has no score")
    upper = excess_over_chance(wilson_interval(correct, answered)[1], guess_chance) if answered else 0.0
    return clamp(upper - ratio, floor)


def v2_task_score(accuracy: float | None, ratio: float, guess_chance: float, floor: float = FLOOR) -> float:
    """p_t = clamp((1 − τ) · max(0, excess over chance of the accuracy), floor, 1); no accuracy counts as 0."""
    excess = max(0.0, excess_over_chance(accuracy, guess_chance)) if accuracy is not None else 0.0
    return clamp((1.0 - ratio) * excess, floor)


def _v2_vectorized(correct: np.ndarray, answered: np.ndarray, truncated: np.ndarray, guess: float, floor: float) -> np.ndarray:
    """v2_task_score over arrays of pooled counts (every entry has answered + truncated > 0)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        accuracy = np.where(answered > 0, correct / np.maximum(answered, 1), 0.0)
    ratio = truncated / (answered + truncated)
    excess = np.maximum(0.0, (accuracy - guess) / (1.0 - guess))
    return np.clip((1.0 - ratio) * excess, floor, 1.0)


def derived_seed(seed: int, *labels: str) -> int:
    """A seed for one model × tier that does not depend on which other models or tiers are scored."""
    return int.from_bytes(hashlib.sha256("|".join([str(seed), *labels]).encode()).digest()[:8], "little") >> 1  # fits a BIGINT


def bootstrap_v2(
    tasks: Sequence[tuple[Sequence[tuple[int, int, int]], float]],
    resamples: int = RESAMPLES,
    seed: int = SEED,
    floor: float = FLOOR,
) -> np.ndarray:
    """`resamples` bootstrap replicates of v2. `tasks`: per task, its points' (correct, answered,
    truncated) and its guess chance. Each point's answered + truncated samples are redrawn from a
    multinomial with the point's shares of correct, answered-but-wrong (incorrect, unparsed or ambiguous) and
    truncated; each task pools its redrawn points."""
    if resamples < 1:
        raise ValueError("the bootstrap needs at least one resample")
    rng = np.random.default_rng(seed)
    log_sum = np.zeros(resamples)
    counted = 0
    for points, guess in tasks:
        drawn = [(c, a, t) for c, a, t in points if a + t > 0]
        if not drawn:
            continue
        counted += 1
        sizes = np.array([a + t for _, a, t in drawn], dtype=np.int64)
        shares = np.array([[c, a - c, t] for c, a, t in drawn], dtype=float) / sizes[:, None]
        redrawn = rng.multinomial(sizes, shares, size=(resamples, len(drawn)))  # (resamples, points, 3)
        pooled = redrawn.sum(axis=1)
        correct, wrong, truncated = pooled[:, 0], pooled[:, 1], pooled[:, 2]
        log_sum += np.log(_v2_vectorized(correct, correct + wrong, truncated, guess, floor))
    if not counted:
        raise ValueError("no task has an answered or truncated sample")
    return SCALE * np.exp(log_sum / counted)


def tier_points(points: pl.DataFrame) -> pl.DataFrame:
    """One row per (model, tier, task, point) for every tier a point belongs to, with the counts that
    ReasonScore needs; points no tier names (surfaces and projections only) drop out."""
    needed = ["model", "task", "point_id", "tiers", "n", "answered", "correct", "truncated", "errors", "guess_chance", "mean_completion_tokens"]
    return (
        points.select(needed)
        .explode("tiers")
        .rename({"tiers": "tier"})
        .filter(pl.col("tier").is_not_null())
        .sort("model", "tier", "task", "point_id")
    )


def _tier_order(tier: str) -> tuple[int, str]:
    return (TIERS.index(tier) if tier in TIERS else len(TIERS), tier)


def task_components(rows: pl.DataFrame, floor: float = FLOOR) -> dict:
    """Pooled counts and scores of one task's points at one tier (rows of tier_points)."""
    n, answered, correct = int(rows["n"].sum()), int(rows["answered"].sum()), int(rows["correct"].sum())
    truncated, errors = int(rows["truncated"].sum()), int(rows["errors"].sum())
    guess = float((rows["guess_chance"] * rows["n"]).sum() / n)
    with_tokens = rows.filter(pl.col("mean_completion_tokens").is_not_null())
    tokens = (
        float((with_tokens["mean_completion_tokens"] * with_tokens["n"]).sum()) / float(with_tokens["n"].sum())
        if with_tokens.height and with_tokens["n"].sum() else None
    )
    ratio = truncation_ratio(truncated, answered)
    accuracy = correct / answered if answered else None
    low, high = wilson_interval(correct, answered) if answered else (None, None)
    return {
        "points": rows.height, "samples": n, "answered": answered, "correct": correct, "truncated": truncated, "errors": errors,
        "accuracy": accuracy, "ci_low": low, "ci_high": high, "guess_chance": guess,
        "excess_accuracy": excess_over_chance(accuracy, guess) if accuracy is not None else None,
        "excess_ci_high": excess_over_chance(high, guess) if high is not None else None,
        "truncation_ratio": ratio,
        "v1_task": v1_task_score(correct, answered, truncated, guess, floor) if ratio is not None else None,
        "v2_task": v2_task_score(accuracy, ratio, guess, floor) if ratio is not None else None,
        "mean_completion_tokens": tokens,
    }


def reasonscores(
    points: pl.DataFrame, resamples: int = RESAMPLES, seed: int = SEED, floor: float = FLOOR
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(scores, components) from a `points` frame: one row per model × tier (SCORE_COLUMNS) and one per
    model × tier × task (TASK_COLUMNS). A model × tier whose every task is all errors has no score row."""
    components: list[dict] = []
    scores: list[dict] = []
    by_point = tier_points(points) if points.height else None
    groups = by_point.partition_by("model", "tier", as_dict=True, maintain_order=True) if by_point is not None and by_point.height else {}
    for (model, tier) in sorted(groups, key=lambda key: (key[0], _tier_order(key[1]))):
        group = groups[(model, tier)]
        tasks = []
        for (task,), rows in sorted(group.partition_by("task", as_dict=True, maintain_order=True).items()):
            component = {"model": model, "tier": tier, "task": task, **task_components(rows, floor)}
            components.append(component)
            counts = list(zip(rows["correct"].to_list(), rows["answered"].to_list(), rows["truncated"].to_list()))
            tasks.append((component, counts))
        counted = [(c, counts) for c, counts in tasks if c["v2_task"] is not None]
        if not counted:
            continue
        tier_seed = derived_seed(seed, model, tier)
        replicates = bootstrap_v2([(counts, c["guess_chance"]) for c, counts in counted], resamples, tier_seed, floor)
        low, median, high = np.percentile(replicates, [100 * (1 - LEVEL) / 2, 50, 100 * (1 + LEVEL) / 2])
        token_means = [c["mean_completion_tokens"] for c, _ in counted]
        tokens = sum(token_means) / len(token_means) if None not in token_means else None
        v1, v2 = combine(c["v1_task"] for c, _ in counted), combine(c["v2_task"] for c, _ in counted)
        scores.append({
            "model": model, "tier": tier, "tasks": len(counted),
            "points": sum(c["points"] for c, _ in counted), "samples": sum(c["samples"] for c, _ in counted),
            "v1": v1, "v2": v2, "v2_median": float(median), "v2_low": float(low), "v2_high": float(high),
            "tokens": tokens,
            "v1_per_token": v1 / tokens if tokens else None,
            "v2_per_token": v2 / tokens if tokens else None,
            "resamples": resamples, "seed": tier_seed,
        })
    return pl.DataFrame(scores, schema=SCORE_COLUMNS), pl.DataFrame(components, schema=TASK_COLUMNS)


def cell(ci_low: float | None, ci_high: float | None, ratio: float | None) -> str:
    """A task's leaderboard cell as ReasonScape writes it: `.58 - .62 [-.05]`, the Wilson 95% interval of
    accuracy and, when anything was truncated, the truncation penalty."""
    if ratio is None:
        return "errors only"
    def short(value: float) -> str:
        text = f"{value:.2f}"
        return text.removeprefix("0")
    interval = "—" if ci_low is None or ci_high is None else f"{short(ci_low)} - {short(ci_high)}"
    return f"{interval} [-{short(ratio)}]" if ratio > 0 else interval
