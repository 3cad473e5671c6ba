"""Outcome of one sample: error (the endpoint failed; never a wrong answer), truncated (stopped by the
token limit), unparsed (complete answer with nothing the parser recognises), ambiguous (complete answer
whose final answer holds two or more different candidates, a hedge such as "5 or 7", "(A) or (B)",
"True/False": answered, never correct), correct, incorrect.

Each sample has two outcomes, like lm-evaluation-harness's strict-match and flexible-extract:
`outcome` (strict, the headline) counts an answer only when it is given in the requested form
(`STRICT_RULES`: an `ANSWER:` line or a \\boxed{}); an answer read by a lenient rule of the cascade is
`unparsed` there. `flexible_outcome` accepts any rule of the parse cascade. Both agree on error, truncated
and answered samples, so they share one denominator (answered = correct + incorrect + unparsed + ambiguous).

This module is the one definition of the outcomes, the answer phases and the accuracy rule (which
outcomes are answered, which correct), for Python (polars expressions) and for SQL (the DuckDB macros
rs_dagster.storage.sql_models renders from it), so the schemas, the runner, the statistics and the SQL
models cannot drift apart; and of SCORING_VERSION, which says which code scored a stored row.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import polars as pl

from rs_dagster.scoring.parsing import STRICT_RULES
from rs_dagster.tasks.base import Task

SCORING_VERSION = "2"
"""Version of the reading and scoring of a stored completion (its parsed answer, parse rule and outcomes):
bump it whenever parsing or scoring of a stored completion could change (a parser, a task's normalisation or
scorer, an outcome rule). scored_results keeps one row per completion and scoring version, so materializing
scored_results after a bump scores every stored completion again, without asking the endpoint, and keeps
the earlier version's rows queryable by `scoring_version`; everything that reads "the score" (points, the
trace analyses, comparisons, the SQL models through points, the explorer) reads the current version only.
"1" is every row scored before the column existed; "2" added the `ambiguous` outcome.

Read it as `outcomes.SCORING_VERSION` (the module attribute) at the time of use, not bound by a from-import,
so that one value holds everywhere in a process."""
FIRST_SCORING_VERSION = "1"
"""The scoring version of a scored_results row stored before the table had the column."""


class Outcome(StrEnum):
    CORRECT = "correct"
    INCORRECT = "incorrect"
    UNPARSED = "unparsed"
    AMBIGUOUS = "ambiguous"  # a hedge: two or more different candidate answers; answered, never correct
    TRUNCATED = "truncated"
    ERROR = "error"


class AnswerPhase(StrEnum):
    """Where a completion's answer came from (completions.answer_phase)."""

    SINGLE = "single"  # the one request: no thinking budget, or the model left its reasoning within it
    BUDGET_FORCED = "budget_forced"  # the budget closed the thought and the continued turn answered


ANSWERED = (Outcome.CORRECT, Outcome.INCORRECT, Outcome.UNPARSED, Outcome.AMBIGUOUS)
"""Samples that ended with a complete answer: accuracy's denominator (truncated and error are left out).
Unparsed and ambiguous answers count in it and are never correct."""
WITH_TEXT = (*ANSWERED, Outcome.TRUNCATED)
"""Samples the model wrote text for: every outcome but error."""


def is_answered(column: str = "outcome") -> pl.Expr:
    return pl.col(column).is_in([o.value for o in ANSWERED])


def is_correct(column: str = "outcome") -> pl.Expr:
    return pl.col(column) == Outcome.CORRECT.value


def accuracy(correct: int, answered: int) -> float | None:
    """correct / answered; None when nothing was answered (an accuracy of nothing is unknown, not 0)."""
    return correct / answered if answered else None


def accuracy_of(counts: Mapping[str, int]) -> float | None:
    """Accuracy of samples counted by outcome."""
    return accuracy(counts.get(Outcome.CORRECT, 0), sum(counts.get(o, 0) for o in ANSWERED))


@dataclass(frozen=True)
class Scored:
    """Outcomes as plain strings (an Outcome's value): polars would make a column of enum members an Enum."""

    outcome: str  # strict: only an answer in the requested form counts
    flexible_outcome: str  # any rule of the parse cascade counts
    parsed_answer: str | None
    parse_rule: str | None


def score_sample(
    task: Task, answer: str, metadata: dict[str, Any], answer_text: str | None, finish_reason: str | None, error: str | None
) -> Scored:
    """The strict and flexible outcome of one sample. An answer is credited under strict accuracy only when
    a strict rule read it and it is written in the asked form; a hedged answer is `ambiguous` (its
    candidates, joined by " | ", are the parsed answer, for the audit); a task's scorer that fails on a
    value it parsed scores it incorrect rather than failing the partition."""
    if error is not None:
        return Scored(Outcome.ERROR.value, Outcome.ERROR.value, None, None)
    parsed = task.parse(answer_text, metadata)
    shown = " | ".join(parsed.ambiguous) if parsed.is_ambiguous else parsed.value
    if finish_reason == "length":
        return Scored(Outcome.TRUNCATED.value, Outcome.TRUNCATED.value, shown, parsed.rule)
    if parsed.is_ambiguous:
        flexible = Outcome.AMBIGUOUS
    elif parsed.value is None:
        return Scored(Outcome.UNPARSED.value, Outcome.UNPARSED.value, None, parsed.rule)
    else:
        try:
            flexible = Outcome.CORRECT if task.score(parsed.value, answer, metadata) else Outcome.INCORRECT
        except (ValueError, KeyError, TypeError, OverflowError):
            flexible = Outcome.INCORRECT
    strict = flexible if parsed.rule in STRICT_RULES and parsed.in_form else Outcome.UNPARSED
    return Scored(strict.value, flexible.value, shown, parsed.rule)
