import math

import polars as pl
import pytest

from rs_dagster.scoring.outcomes import score_sample
from rs_dagster.scoring.quality import LIMITS, quality_shares
from rs_dagster.stats.intervals import excess_over_chance, wilson_interval
from rs_dagster.stats.points import aggregate_points
from rs_dagster.storage import schemas
from rs_dagster.storage.warehouse import validate
from rs_dagster.tasks import get_task


def test_wilson_matches_published_values():
    # Reference values: Wilson score interval, z = 1.96 (Newcombe 1998, table I: 81/263).
    low, high = wilson_interval(81, 263)
    assert math.isclose(low, 0.2553, abs_tol=5e-4) and math.isclose(high, 0.3662, abs_tol=5e-4)
    assert wilson_interval(0, 10)[0] == 0.0 and 0.25 < wilson_interval(0, 10)[1] < 0.31
    assert math.isclose(wilson_interval(10, 10)[1], 1.0)
    with pytest.raises(ValueError):
        wilson_interval(3, 2)


def test_excess_accuracy_rescales_chance_to_zero():
    assert excess_over_chance(0.5, 0.5) == 0.0
    assert excess_over_chance(1.0, 0.25) == 1.0
    assert excess_over_chance(0.625, 0.25) == 0.5


def test_points_exclude_errors_and_truncations_from_accuracy():
    outcomes = ["correct"] * 6 + ["incorrect"] * 2 + ["unparsed"] * 2 + ["truncated"] * 3 + ["error"] * 7
    scored = pl.DataFrame({"model": "m", "task": "t", "point_id": "p", "test_case_id": [f"c{i}" for i in range(20)],
                           "outcome": outcomes, "flexible_outcome": outcomes, "guess_chance": 0.5,
                           "completion_tokens": [10] * 20, "reasoning_tokens": [None] * 20,
                           "answer_phase": ["budget_forced"] * 4 + ["single"] * 9 + [None] * 7},
                          schema_overrides={"reasoning_tokens": pl.Int64})
    cases = pl.DataFrame({"point_id": ["p"], "params_json": ["{}"], "tiers": [["easy"]], "surfaces": [[]], "projections": [[]]},
                         schema_overrides={"surfaces": pl.List(pl.String), "projections": pl.List(pl.String)})
    row = aggregate_points(scored, cases).row(0, named=True)
    assert (row["n"], row["answered"], row["correct"], row["truncated"], row["errors"]) == (20, 10, 6, 3, 7)
    assert row["budget_forced"] == 4
    assert row["accuracy"] == 0.6 and row["truncation_rate"] == 0.15
    assert (row["ci_low"], row["ci_high"]) == wilson_interval(6, 10)
    assert math.isclose(row["excess_accuracy"], 0.2)


def test_strict_accuracy_counts_only_answers_in_the_requested_form():
    """Ten answered samples: 4 correct and 1 wrong in an ANSWER: line or \\boxed{}, 3 correct and 1 wrong
    read only by lenient rules, 1 with nothing parsable. Strict 4/10, flexible 7/10, in form 5/10."""
    task = get_task("arithmetic")
    texts = ["ANSWER: 5", "\\boxed{5}", "**Answer:** 5", "ANSWER: 5", "ANSWER: 6",
             "The final answer is 5.", "so\n\n5", "I think it is 5 or so", "The result is 6.", "no idea"]
    scored = [score_sample(task, "5", {}, text, "stop", None) for text in texts]
    scored += [score_sample(task, "5", {}, "ANSWER: 5", "length", None), score_sample(task, "5", {}, None, None, "HTTP 500")]
    assert [s.parse_rule for s in scored[:9]] == ["answer_line", "boxed", "answer_line", "answer_line", "answer_line",
                                                   "answer_phrase", "last_line", "last_value", "answer_phrase"]
    assert [s.outcome for s in scored] == ["correct"] * 4 + ["incorrect"] + ["unparsed"] * 5 + ["truncated", "error"]
    assert [s.flexible_outcome for s in scored] == ["correct"] * 4 + ["incorrect"] + ["correct"] * 3 + ["incorrect", "unparsed", "truncated", "error"]
    frame = pl.DataFrame({"model": "m", "task": "t", "point_id": "p", "test_case_id": [f"c{i}" for i in range(12)], "outcome": [s.outcome for s in scored],
                          "flexible_outcome": [s.flexible_outcome for s in scored], "guess_chance": 0.0,
                          "completion_tokens": [10] * 12, "reasoning_tokens": [None] * 12, "answer_phase": ["single"] * 12},
                         schema_overrides={"reasoning_tokens": pl.Int64})
    cases = pl.DataFrame({"point_id": ["p"], "params_json": ["{}"], "tiers": [["easy"]], "surfaces": [[]], "projections": [[]]},
                         schema_overrides={"surfaces": pl.List(pl.String), "projections": pl.List(pl.String)})
    row = aggregate_points(frame, cases).row(0, named=True)
    assert (row["answered"], row["correct"], row["flexible_correct"]) == (10, 4, 7)
    assert (row["accuracy"], row["flexible_accuracy"], row["format_compliance"]) == (0.4, 0.7, 0.5)
    assert (row["ci_low"], row["ci_high"]) == wilson_interval(4, 10)
    assert (row["flexible_ci_low"], row["flexible_ci_high"]) == wilson_interval(7, 10)


def _scored(strict: list[str], flexible: list[str] | None = None, rules: list[str | None] | None = None) -> pl.DataFrame:
    n = len(strict)
    return pl.DataFrame({"model": "m", "task": "t", "point_id": "p", "test_case_id": [f"c{i}" for i in range(n)],
                         "outcome": strict, "flexible_outcome": flexible or strict, "parse_rule": rules or ["answer_line"] * n,
                         "guess_chance": 0.0, "completion_tokens": [10] * n, "reasoning_tokens": [None] * n, "answer_phase": ["single"] * n},
                        schema_overrides={"reasoning_tokens": pl.Int64, "parse_rule": pl.String})


def test_points_count_ambiguous_answers_beside_unparsed_in_the_denominator_never_the_numerator():
    """Ten answered samples: 5 correct, 2 incorrect, 1 unparsed, 2 hedges ("5 or 7"). A hedge is answered and never
    right, strict or flexible: accuracy 5/10 (not 5/8), format compliance (5 + 2)/10."""
    outcomes = ["correct"] * 5 + ["incorrect"] * 2 + ["unparsed"] + ["ambiguous"] * 2 + ["truncated", "error"]
    cases = pl.DataFrame({"point_id": ["p"], "params_json": ["{}"], "tiers": [["easy"]], "surfaces": [[]], "projections": [[]]},
                         schema_overrides={"surfaces": pl.List(pl.String), "projections": pl.List(pl.String)})
    points = aggregate_points(_scored(outcomes), cases)
    validate("points", schemas.Points, points)
    row = points.row(0, named=True)
    assert (row["n"], row["answered"], row["correct"], row["incorrect"], row["unparsed"], row["ambiguous"]) == (12, 10, 5, 2, 1, 2)
    assert (row["truncated"], row["errors"]) == (1, 1)
    assert (row["accuracy"], row["flexible_accuracy"], row["format_compliance"]) == (0.5, 0.5, 0.7)
    assert (row["ci_low"], row["ci_high"]) == wilson_interval(5, 10)
    assert row["truncation_ratio"] == 1 / 11


def test_ambiguous_share_warns_above_five_percent_of_answered_samples():
    def share(frame: pl.DataFrame):
        return next(s for s in quality_shares(frame) if s.name == "ambiguous_share")

    assert [s.name for s in quality_shares(_scored(["correct"]))] == list(LIMITS)
    assert LIMITS["ambiguous_share"].warn == 0.05
    # 1 hedge in 20 answered (5%, errors and truncations left out of the denominator): within the limit
    within = share(_scored(["correct"] * 19 + ["ambiguous", "error", "truncated"]))
    assert (within.count, within.total, within.share, within.severity) == (1, 20, 0.05, None)
    # 2 in 20: a warning; a hedge only a lenient rule read (strict unparsed, flexible ambiguous) counts too
    strict = ["correct"] * 18 + ["ambiguous", "unparsed"]
    flexible = ["correct"] * 18 + ["ambiguous", "ambiguous"]
    rules = ["answer_line"] * 19 + ["last_line"]
    warned = share(_scored(strict, flexible, rules))
    assert (warned.count, warned.total, warned.share, warned.severity) == (2, 20, 0.1, "WARN")
    assert warned.detail == {"strict": 1, "flexible": 2} and warned.detail_kind == "outcome"
    assert share(_scored(["correct", "unparsed"])).severity is None
    empty = share(_scored(["correct"]).clear())
    assert (empty.count, empty.total, empty.severity) == (0, 0, None)
