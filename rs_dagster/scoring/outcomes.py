"""Outcome of one sample: error (the endpoint failed; never a wrong answer), truncated (stopped by the
token limit), unparsed (complete answer with nothing the parser recognises), correct, incorrect."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rs_dagster.tasks.base import Task


@dataclass(frozen=True)
class Scored:
    outcome: str
    parsed_answer: str | None
    parse_rule: str | None


def score_sample(
    task: Task, answer: str, metadata: dict[str, Any], answer_text: str | None, finish_reason: str | None, error: str | None
) -> Scored:
    if error is not None:
        return Scored("error", None, None)
    parsed = task.parse(answer_text, metadata)
    if finish_reason == "length":
        return Scored("truncated", parsed.value, parsed.rule)
    if parsed.value is None:
        return Scored("unparsed", None, None)
    correct = task.score(parsed.value, answer, metadata)
    return Scored("correct" if correct else "incorrect", parsed.value, parsed.rule)
