"""Outcome of one sample: error (the endpoint failed; never a wrong answer), truncated (stopped by the
token limit), unparsed (complete answer with nothing the parser recognises), correct, incorrect.

Each sample has two outcomes, like lm-evaluation-harness's strict-match and flexible-extract:
`outcome` (strict, the headline) counts an answer only when it is given in the requested form
(`STRICT_RULES`: an `ANSWER:` line or a \\boxed{}); an answer read by a lenient rule of the cascade is
`unparsed` there. `flexible_outcome` accepts any rule of the cascade. Both agree on error, truncated
and answered samples, so they share one denominator (answered = correct + incorrect + unparsed).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rs_dagster.scoring.parsing import STRICT_RULES
from rs_dagster.tasks.base import Task


@dataclass(frozen=True)
class Scored:
    outcome: str  # strict: only an answer in the requested form counts
    flexible_outcome: str  # any rule of the parse cascade counts
    parsed_answer: str | None
    parse_rule: str | None


def score_sample(
    task: Task, answer: str, metadata: dict[str, Any], answer_text: str | None, finish_reason: str | None, error: str | None
) -> Scored:
    if error is not None:
        return Scored("error", "error", None, None)
    parsed = task.parse(answer_text, metadata)
    if finish_reason == "length":
        return Scored("truncated", "truncated", parsed.value, parsed.rule)
    if parsed.value is None:
        return Scored("unparsed", "unparsed", None, None)
    flexible = "correct" if task.score(parsed.value, answer, metadata) else "incorrect"
    return Scored(flexible if parsed.rule in STRICT_RULES else "unparsed", flexible, parsed.value, parsed.rule)
