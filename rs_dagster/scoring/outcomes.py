"""Outcome of one sample: error (the endpoint failed; never a wrong answer), truncated (stopped by the
token limit), unparsed (complete answer with nothing the parser recognises), correct, incorrect.

Each sample has two outcomes, like lm-evaluation-harness's strict-match and flexible-extract:
`outcome` (strict, the headline) counts an answer only when it is given in the requested form
(`STRICT_RULES`: an `ANSWER:` line or a \\boxed{}); an answer read by a lenient rule of the cascade is
`unparsed` there. `flexible_outcome` accepts any rule of the parse cascade. Both agree on error, truncated
and answered samples, so they share one denominator (answered = correct + incorrect + unparsed).

This module is the one definition of the outcomes, the answer phases and the accuracy rule (which
outcomes are answered, which correct), for Python (polars expressions) and for SQL (the DuckDB macros
rs_dagster.storage.sql_models renders from it), so the schemas, the runner, the statistics and the SQL
models cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import polars as pl

from rs_dagster.scoring.parsing import STRICT_RULES
from rs_dagster.tasks.base import Task


class Outcome(StrEnum):
    CORRECT = "correct"
    INCORRECT = "incorrect"
    UNPARSED = "unparsed"
    TRUNCATED = "truncated"
    ERROR = "error"


class AnswerPhase(StrEnum):
    """Where a completion's answer came from (completions.answer_phase)."""

    SINGLE = "single"  # the one request: no thinking budget, or the model left its reasoning within it
    BUDGET_FORCED = "budget_forced"  # the budget closed the thought and the continued turn answered


ANSWERED = (Outcome.CORRECT, Outcome.INCORRECT, Outcome.UNPARSED)
"""Samples that ended with a complete answer: accuracy's denominator (truncated and error are left out)."""
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
    if error is not None:
        return Scored(Outcome.ERROR.value, Outcome.ERROR.value, None, None)
    parsed = task.parse(answer_text, metadata)
    if finish_reason == "length":
        return Scored(Outcome.TRUNCATED.value, Outcome.TRUNCATED.value, parsed.value, parsed.rule)
    if parsed.value is None:
        return Scored(Outcome.UNPARSED.value, Outcome.UNPARSED.value, None, None)
    flexible = Outcome.CORRECT if task.score(parsed.value, answer, metadata) else Outcome.INCORRECT
    strict = flexible if parsed.rule in STRICT_RULES else Outcome.UNPARSED
    return Scored(strict.value, flexible.value, parsed.value, parsed.rule)
