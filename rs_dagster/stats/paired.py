"""Paired comparison of two runs on the same items: exact McNemar per task and per grid point, with
Benjamini–Hochberg across the tests of one comparison.

A *run* is the scored samples of one model at one model version (ScoredResults rows). Two runs are
paired on (task, test_case_id, sample_index), so both answered the very same item (same task version:
the caller passes rows of the current `spec_version` only), the k-th sample of an item with the k-th.

pair            an item (sample) both runs answered: outcome correct, incorrect, unparsed or ambiguous on both
                sides. A sample that is `truncated` or an `error` on either side is excluded from the
                pairs (counted in `excluded`): it has no answer to compare, as in accuracy. So is a sample
                stored more than once under one model version (it cannot be told which answer is the run's).
correct         the strict outcome (the headline): `incorrect`, `unparsed` and `ambiguous` count as not correct
b, c            discordant pairs: b = A correct and B not, c = A not and B correct
accuracy_a/_b   correct / pairs of each run, over the paired samples only (not the point's whole accuracy)
p_value         exact McNemar: two-sided exact binomial test of b successes in b + c trials at 1/2
                (scipy.stats.binomtest); 1 when b + c = 0
q_value         Benjamini–Hochberg adjusted p over every test of one comparison (each task pooled and
                each grid point), so the rows with q <= 0.05 are claims with a false discovery rate of 5%
differs         q_value <= ALPHA
worse           differs and B's accuracy is below A's (b > c): B is significantly worse than A

Samples of one item (`--repeats K`) are paired by their index and treated as independent pairs, which
overstates the evidence when an item's samples agree with each other (as for the Wilson interval).
No dagster here: the asset, the CLI and the report share these functions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import polars as pl
from polars._typing import PolarsDataType

from rs_dagster.scoring.outcomes import is_answered, is_correct

ALPHA = 0.05
DUPLICATE = "duplicate"
"""What pair_samples reads as the outcome of a sample stored more than once under one model version: no
outcome (rs_dagster.scoring.outcomes.Outcome), so never answered and never paired."""
PAIR_KEY = ("task", "test_case_id", "sample_index")
SCORED_COLUMNS = ("model", "task", "test_case_id", "sample_index", "point_id", "outcome", "model_version", "spec_version", "dagster_run_id")

COMPARISON_SCHEMA: dict[str, PolarsDataType] = {
    "kind": pl.String,  # "models": model A vs model B (current versions); "versions": a model's previous version vs its current one
    "model_a": pl.String,
    "version_a": pl.String,
    "model_b": pl.String,
    "version_b": pl.String,
    "level": pl.String,  # "task": every paired sample of the task pooled; "point": one grid point
    "task": pl.String,
    "point_id": pl.String,  # null on task rows
    "params_json": pl.String,  # the point's parameters; null on task rows
    "pairs": pl.Int64,
    "excluded": pl.Int64,
    "correct_a": pl.Int64,
    "correct_b": pl.Int64,
    "accuracy_a": pl.Float64,
    "accuracy_b": pl.Float64,
    "b": pl.Int64,
    "c": pl.Int64,
    "p_value": pl.Float64,
    "q_value": pl.Float64,
    "differs": pl.Boolean,
    "worse": pl.Boolean,
}


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value for b and c discordant pairs (1.0 when there are none)."""
    if b < 0 or c < 0:
        raise ValueError(f"discordant counts must be non-negative, got b={b}, c={c}")
    if b + c == 0:
        return 1.0
    from scipy.stats import binomtest  # imported here: scipy.stats costs ~1 s of every `rs` start-up

    return float(min(1.0, binomtest(b, b + c, 0.5, alternative="two-sided").pvalue))


def benjamini_hochberg(p_values: Sequence[float]) -> list[float]:
    """Benjamini–Hochberg adjusted p-values (q-values), in the order given: q_(i) = min over j >= i of
    p_(j) * m / j for the p-values sorted ascending, capped at 1."""
    m = len(p_values)
    if any(not 0.0 <= p <= 1.0 for p in p_values):
        raise ValueError(f"p-values must lie in [0, 1], got {list(p_values)}")
    order = sorted(range(m), key=lambda i: p_values[i])
    q = [1.0] * m
    running = 1.0
    for rank in range(m, 0, -1):  # from the largest p down
        i = order[rank - 1]
        running = min(running, p_values[i] * m / rank)
        q[i] = min(1.0, max(p_values[i], running))  # never below its p-value (p * m / m can round a ulp under p)
    return q


def _empty() -> pl.DataFrame:
    return pl.DataFrame(schema=COMPARISON_SCHEMA)


def pair_samples(a: pl.DataFrame, b: pl.DataFrame) -> pl.DataFrame:
    """Samples present in both runs, one row per (task, test_case_id, sample_index): point_id,
    `answered` (both answered: a pair), `correct_a`, `correct_b` (strict)."""
    def side(frame: pl.DataFrame, suffix: str) -> pl.DataFrame:
        # A sample stored twice under one model version cannot be paired: it is left out, marked with
        # DUPLICATE, which is no outcome (never answered; `ambiguous` is an answered outcome now).
        return frame.group_by(*PAIR_KEY).agg(
            pl.col("point_id").first(),
            pl.when(pl.len() == 1).then(pl.col("outcome").first()).otherwise(pl.lit(DUPLICATE)).alias(f"outcome_{suffix}"),
        )

    joined = side(a, "a").join(side(b, "b").drop("point_id"), on=list(PAIR_KEY), how="inner").sort(*PAIR_KEY)
    return joined.with_columns(
        (is_answered("outcome_a") & is_answered("outcome_b")).alias("answered"),
        is_correct("outcome_a").alias("correct_a"),
        is_correct("outcome_b").alias("correct_b"),
    )


def _tests(pairs: pl.DataFrame, by: list[str]) -> pl.DataFrame:
    answered = pl.col("answered")
    return (
        pairs.group_by(by, maintain_order=True)
        .agg(
            answered.sum().cast(pl.Int64).alias("pairs"),
            (~answered).sum().cast(pl.Int64).alias("excluded"),
            (answered & pl.col("correct_a")).sum().cast(pl.Int64).alias("correct_a"),
            (answered & pl.col("correct_b")).sum().cast(pl.Int64).alias("correct_b"),
            (answered & pl.col("correct_a") & ~pl.col("correct_b")).sum().cast(pl.Int64).alias("b"),
            (answered & ~pl.col("correct_a") & pl.col("correct_b")).sum().cast(pl.Int64).alias("c"),
        )
        .filter(pl.col("pairs") > 0)
    )


def compare_runs(
    a: pl.DataFrame,
    b: pl.DataFrame,
    identity: Mapping[str, str],
    params: Mapping[str, str] | None = None,
    alpha: float = ALPHA,
) -> pl.DataFrame:
    """The paired comparison of run A with run B (scored rows of one model version each, current task
    versions): one row per task and one per grid point with at least one pair, BH over all of them.
    `identity` gives kind, model_a, version_a, model_b, version_b; `params` maps point_id to params_json."""
    if a.is_empty() or b.is_empty():
        return _empty()
    pairs = pair_samples(a, b)
    if pairs.is_empty():
        return _empty()
    tasks = _tests(pairs, ["task"]).with_columns(
        pl.lit("task").alias("level"), pl.lit(None, pl.String).alias("point_id"), pl.lit(None, pl.String).alias("params_json")
    )
    points = _tests(pairs, ["task", "point_id"]).with_columns(
        pl.lit("point").alias("level"),
        pl.col("point_id").replace_strict(dict(params or {}), default=None, return_dtype=pl.String).alias("params_json"),
    )
    rows = pl.concat([tasks.select(points.columns), points]).sort(
        "task", pl.col("level") == "point", "params_json", "point_id"  # each task's pooled row first
    )
    if rows.is_empty():
        return _empty()
    p_values = [mcnemar_exact(b_, c_) for b_, c_ in rows.select("b", "c").iter_rows()]
    q_values = benjamini_hochberg(p_values)
    rows = rows.with_columns(
        (pl.col("correct_a") / pl.col("pairs")).alias("accuracy_a"),
        (pl.col("correct_b") / pl.col("pairs")).alias("accuracy_b"),
        pl.Series("p_value", p_values, dtype=pl.Float64),
        pl.Series("q_value", q_values, dtype=pl.Float64),
        *(pl.lit(identity[k], pl.String).alias(k) for k in ("kind", "model_a", "version_a", "model_b", "version_b")),
    ).with_columns((pl.col("q_value") <= alpha).alias("differs"))
    rows = rows.with_columns((pl.col("differs") & (pl.col("b") > pl.col("c"))).alias("worse"))
    return rows.select([pl.col(name).cast(dtype) for name, dtype in COMPARISON_SCHEMA.items()])


def current_rows(scored: pl.DataFrame, model: str, version: str) -> pl.DataFrame:
    return scored.filter((pl.col("model") == model) & (pl.col("model_version") == version))


def compare_models(
    scored: pl.DataFrame, model_a: str, version_a: str, model_b: str, version_b: str, params: Mapping[str, str] | None = None
) -> pl.DataFrame:
    """Model A at version_a vs model B at version_b (normally each model's current version)."""
    identity = {"kind": "models", "model_a": model_a, "version_a": version_a, "model_b": model_b, "version_b": version_b}
    return compare_runs(current_rows(scored, model_a, version_a), current_rows(scored, model_b, version_b), identity, params)


def previous_versions(scored: pl.DataFrame, model: str, current: str, run_times: Mapping[str, float]) -> dict[str, str]:
    """Per task: the version of `model` other than `current` whose rows were scored last (latest Dagster
    run among its rows; a run the instance does not know counts as oldest, ties go to the version
    name), among the rows given (the current task versions)."""
    rows = scored.filter((pl.col("model") == model) & (pl.col("model_version") != current))
    if rows.is_empty():
        return {}
    stamped = rows.select("task", "model_version", "dagster_run_id").unique().with_columns(
        pl.col("dagster_run_id").replace_strict(dict(run_times), default=float("-inf"), return_dtype=pl.Float64).alias("at")
    )
    latest = stamped.group_by("task", "model_version").agg(pl.col("at").max()).sort("task", "at", "model_version")
    return {task: group["model_version"][-1] for (task,), group in latest.group_by("task", maintain_order=True)}


def compare_versions(
    scored: pl.DataFrame, model: str, current: str, run_times: Mapping[str, float], params: Mapping[str, str] | None = None
) -> pl.DataFrame:
    """The regression gate's comparison: per task, `model` at its previous version (A) vs its current
    version (B) on the items both answered. BH runs over the tests of one (previous, current) pair."""
    previous = previous_versions(scored, model, current, run_times)
    frames = []
    for old in sorted(set(previous.values())):
        tasks = [t for t, v in previous.items() if v == old]
        identity = {"kind": "versions", "model_a": model, "version_a": old, "model_b": model, "version_b": current}
        a = current_rows(scored, model, old).filter(pl.col("task").is_in(tasks))
        b = current_rows(scored, model, current).filter(pl.col("task").is_in(tasks))
        frames.append(compare_runs(a, b, identity, params))
    return pl.concat(frames) if frames else _empty()


def all_comparisons(
    scored: pl.DataFrame, current_versions: Mapping[str, str], run_times: Mapping[str, float], params: Mapping[str, str] | None = None
) -> pl.DataFrame:
    """Every pair of models (current versions, names in order) that share items, and every model's
    previous version vs its current one. `scored` holds rows of the current task versions only."""
    models = sorted(current_versions)
    frames = [
        compare_models(scored, a, current_versions[a], b, current_versions[b], params)
        for i, a in enumerate(models)
        for b in models[i + 1 :]
    ]
    frames += [compare_versions(scored, m, current_versions[m], run_times, params) for m in models]
    frames = [f for f in frames if not f.is_empty()]
    return pl.concat(frames) if frames else _empty()


def regressions(comparisons: pl.DataFrame) -> pl.DataFrame:
    """The rows the regression gate warns about: a model's current version significantly worse than its
    previous one (kind "versions", q <= ALPHA, b > c)."""
    if comparisons.is_empty():
        return comparisons
    return comparisons.filter((pl.col("kind") == "versions") & pl.col("worse"))
