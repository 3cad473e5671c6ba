"""Data-quality rules over the scored samples of one model × task: the shares that make a measurement
suspect even when every row is valid. Each is a share of samples with the counts behind it, judged
against LIMITS; rs_dagster.defs.checks publishes them as asset checks."""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

from rs_dagster.scoring.outcomes import Outcome, is_answered
from rs_dagster.scoring.parsing import STRICT_RULES


@dataclass(frozen=True)
class Limit:
    """A share above `warn` warns; above `error` (when set) it is an error."""

    warn: float
    error: float | None = None

    def severity(self, share: float) -> str | None:
        """`ERROR`, `WARN`, or None when the share is within the limit."""
        if self.error is not None and share > self.error:
            return "ERROR"
        return "WARN" if share > self.warn else None


LIMITS: dict[str, Limit] = {
    # Answers read only by a lenient rule (answer_phrase, last_line, last_value) out of the answered
    # samples: above a quarter, strict and flexible accuracy measure different things and the template or
    # the model ignores the requested `ANSWER:` form (SmolLM2 on boolean: every answer by `last_value`).
    "lenient_parse_share": Limit(warn=0.25),
    # Hedged answers ("5 or 7", "(A) or (B)", "True/False": outcome `ambiguous`, strict or flexible) out of the
    # answered samples: never credited, so above a twentieth the model's accuracy is held down by answers it
    # would not commit to (or the parser reads a task's answers as hedges), not by wrong ones.
    "ambiguous_share": Limit(warn=0.05),
    # Endpoint failures out of all samples: errors are retried by the next run and never count as wrong,
    # so a few only shrink n; many mean the endpoint is down or rejects the requests.
    "error_share": Limit(warn=0.02, error=0.25),
    # Truncations out of the samples with an outcome (errors left out, as ReasonScore's truncation
    # ratio): above a tenth the token budget, not the model, limits accuracy.
    "truncation_share": Limit(warn=0.10),
}
"""The thresholds of every data-quality check, in one place."""


@dataclass(frozen=True)
class Share:
    name: str
    count: int
    total: int
    detail: dict[str, int] = field(default_factory=dict)  # the count broken down, e.g. by parse rule
    detail_kind: str = "rule"  # what the detail's keys are (the checks' metadata names them `KIND/KEY`)

    @property
    def share(self) -> float:
        return self.count / self.total if self.total else 0.0

    @property
    def severity(self) -> str | None:
        return LIMITS[self.name].severity(self.share)


def quality_shares(scored: pl.DataFrame) -> list[Share]:
    """The shares LIMITS judges, in its order, over scored_results rows (outcome, flexible_outcome, parse_rule)."""
    if scored.is_empty():
        return [Share(name, 0, 0) for name in LIMITS]
    outcomes = dict(scored.group_by("outcome").len().iter_rows())
    answered = scored.filter(is_answered())
    lenient = answered.filter(pl.col("parse_rule").is_not_null() & ~pl.col("parse_rule").is_in(list(STRICT_RULES)))
    by_rule = dict(lenient.group_by("parse_rule").len().sort("parse_rule").iter_rows())
    ambiguous = Outcome.AMBIGUOUS.value
    hedged = answered.filter((pl.col("outcome") == ambiguous) | (pl.col("flexible_outcome") == ambiguous))
    by_reading = {"strict": int((hedged["outcome"] == ambiguous).sum()), "flexible": int((hedged["flexible_outcome"] == ambiguous).sum())}
    errors, truncated = outcomes.get(Outcome.ERROR, 0), outcomes.get(Outcome.TRUNCATED, 0)
    return [
        Share("lenient_parse_share", lenient.height, answered.height, by_rule),
        Share("ambiguous_share", hedged.height, answered.height, by_reading, "outcome"),
        Share("error_share", errors, scored.height),
        Share("truncation_share", truncated, scored.height - errors),
    ]
