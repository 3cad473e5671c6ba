"""Survival over output tokens (ReasonScape's "hazard" analysis): how long a model takes to answer,
and when it answers right or wrong.

time        a sample's completion_tokens (reasoning and answer together).
event       the sample finished with an answer: strict outcome correct, incorrect, unparsed or ambiguous
            (every outcome of rs_dagster.scoring.outcomes.ANSWERED is a cause of its own).
censoring   truncation (finish_reason `length`, outcome `truncated`): the model was still going at
            max_tokens, so all we know is that its answer would have come later. Samples whose
            request failed (outcome `error`) or with no token count are left out.
survival    S(t) = P(no answer within t tokens), the Kaplan-Meier estimate, with its 95% interval
            (Greenwood variance on the log(-log S) scale). Computed here in numpy, following lifelines'
            definitions (KaplanMeierFitter(alpha=0.05): its event table, with a row at t = 0 where every
            sample enters, its exponential Greenwood band, 1 where S = 1 and 0 where S = 0);
            tests/test_kaplan_meier.py holds the two equal on random data. (Importing lifelines, which
            pulls in pandas and scipy, cost every evaluation process more than the whole analysis.)
median      tokens to answer: the least t with S(t) <= 0.5, with the interval where the band of S
            crosses 0.5 (as lifelines' median_survival_time_ and median_survival_times); none ("not
            reached") when half or more of the samples are still running at the end, i.e. truncated.
bucket      per bucket [b, b + w): hazard = answers in the bucket / samples at risk at its start
hazard      (completion_tokens >= b); the same per cause (correct, incorrect, unparsed, ambiguous), which add
            up to the bucket's hazard. Truncations inside a bucket are counted but leave the risk set
            only after it. The width w is chosen from the data (bucket_width): a round number of tokens
            giving 10 to 30 buckets up to the largest token count, more of them the more samples there
            are, the same for every tier of a model and task.
cause-      the Aalen-Johansen cumulative incidence F_k(t) = sum over answer times t_j <= t of
specific    S(t_j-) d_kj / n_j for each answer kind k (correct, incorrect, unparsed, ambiguous): the probability
            of having answered *that way* within t tokens, the other kinds being competing events
            (not censored: treating them as censored would estimate a world where the model could not
            answer the other way, and would over-state each kind). F_correct + F_incorrect +
            F_unparsed + F_ambiguous + S = 1 at every t. Its 95% interval is the one lifelines'
            AalenJohansenFitter gives (Collett's delta-method variance, log(-log F) scale), computed
            here on the grouped token counts: lifelines would randomly jitter tied times of different
            kinds, while ties are the rule for integer token counts; on untied data the two agree
            (tests/test_traces.py).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import cast

import numpy as np
import polars as pl

from rs_dagster.scoring.outcomes import ANSWERED, Outcome

MIN_BUCKETS, MAX_BUCKETS = 10, 30
"""How many buckets bucket_width aims for: about sqrt(samples), within these bounds."""
ROUND_WIDTHS = (1, 2, 5, 10, 20, 25, 50)
"""The bucket widths bucket_width chooses from, times any power of ten: widths that read well on an axis."""
CAUSES = tuple(o.value for o in ANSWERED)
ALL_TIERS = "all"
"""The tier value of the curves pooled over every current-version sample of the partition."""
Z95 = 1.959963984540054

SURVIVAL_COLUMNS = {
    "model": pl.String,
    "task": pl.String,
    "tier": pl.String,
    "curve": pl.String,  # `answered`: S(t); a cause: its cumulative incidence F_k(t)
    "tokens": pl.Int64,
    "at_risk": pl.Int64,
    "events": pl.Int64,
    "censored": pl.Int64,
    "estimate": pl.Float64,
    "ci_low": pl.Float64,
    "ci_high": pl.Float64,
}

HAZARD_COLUMNS = {
    "model": pl.String,
    "task": pl.String,
    "tier": pl.String,
    "bucket_start": pl.Int64,
    "bucket_end": pl.Int64,
    "samples": pl.Int64,
    "at_risk": pl.Int64,
    "answered": pl.Int64,
    "correct": pl.Int64,
    "incorrect": pl.Int64,
    "unparsed": pl.Int64,
    "ambiguous": pl.Int64,
    "truncated": pl.Int64,
    "hazard": pl.Float64,
    "hazard_correct": pl.Float64,
    "hazard_incorrect": pl.Float64,
    "hazard_unparsed": pl.Float64,
    "hazard_ambiguous": pl.Float64,
    "survival": pl.Float64,
    "survival_ci_low": pl.Float64,
    "survival_ci_high": pl.Float64,
    "incidence_correct": pl.Float64,
    "incidence_incorrect": pl.Float64,
    "incidence_unparsed": pl.Float64,
    "incidence_ambiguous": pl.Float64,
    "median_tokens": pl.Float64,
    "median_ci_low": pl.Float64,
    "median_ci_high": pl.Float64,
}


def _finite(value: float) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


class Curves:
    """Kaplan-Meier survival and Aalen-Johansen incidence of one group of samples."""

    def __init__(self, tokens: Sequence[int], outcomes: Sequence[str]):
        if len(tokens) != len(outcomes) or not tokens:
            raise ValueError("survival needs one outcome per token count, and at least one sample")
        self.tokens = np.asarray(tokens, dtype=float)
        if not np.isfinite(self.tokens).all():
            raise ValueError("survival needs finite token counts")
        self.outcomes = list(outcomes)
        self.outcome_array = np.asarray(self.outcomes, dtype=str)
        finished = np.isin(self.outcome_array, CAUSES)
        self.times, self.at_risk, self.observed, self.censored, self._slot = _event_table(self.tokens, finished)
        self.survival, self.survival_low, self.survival_high = _kaplan_meier(self.at_risk, self.observed)
        self.median = _finite(_first_at_or_below(self.times, self.survival))
        self.median_low = _finite(_first_at_or_below(self.times, self.survival_low))
        self.median_high = _finite(_first_at_or_below(self.times, self.survival_high))
        self.incidence = {cause: self._aalen_johansen(cause) for cause in CAUSES}

    def _events_of(self, cause: str) -> np.ndarray:
        return np.bincount(self._slot[self.outcome_array == cause], minlength=len(self.times))

    def _aalen_johansen(self, cause: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(events of the cause, F_k, lower, upper) at each time of the event table."""
        d_k = self._events_of(cause)
        lagged = np.concatenate([[1.0], self.survival[:-1]])
        n, d = self.at_risk.astype(float), self.observed.astype(float)
        F = np.cumsum(lagged * d_k / n)
        # Collett's variance (as lifelines' AalenJohansenFitter._bounds), over the times t_i <= t:
        # sum (F(t) - F(t_i))^2 d_i / (n_i (n_i - d_i)) + S(t_i-)^2 d_ki (n_i - d_ki) / n_i^3
        #     - 2 (F(t) - F(t_i)) S(t_i-) d_ki / n_i^2.  Where every sample at risk answers (n_i = d_i)
        # no one is left, F stays F(t_i) from then on and the first term is 0.
        with np.errstate(divide="ignore", invalid="ignore"):
            g = np.where(n > d, d / (n * (n - d)), 0.0)
        h = lagged * d_k / n**2
        # the sums over i <= j, expanded so that each is one cumulative sum
        variance = (
            F**2 * np.cumsum(g) - 2 * F * np.cumsum(g * F) + np.cumsum(g * F**2)
            + np.cumsum(lagged**2 * d_k * (n - d_k) / n**3)
            - 2 * (F * np.cumsum(h) - np.cumsum(h * F))
        )
        bounds = [_loglog_interval(float(f), max(float(v), 0.0)) for f, v in zip(F, variance)]
        low, high = np.array([b[0] for b in bounds]), np.array([b[1] for b in bounds])
        return d_k, F, low, high

    def at(self, tokens: float) -> int:
        """Index of the last event-table time <= tokens (the step function's value there)."""
        return int(np.searchsorted(self.times, tokens, side="right")) - 1


def _event_table(durations: np.ndarray, observed: np.ndarray) -> tuple[np.ndarray, ...]:
    """(times, at_risk, observed, censored, each duration's row) as lifelines' event_table: one row per
    distinct duration, plus the row where every sample enters, at min(0, least duration); at_risk is
    counted before the row's removals, so censorings at a time are at risk for its events."""
    times = np.unique(np.append(durations, min(0.0, float(durations.min()))))
    slot = np.searchsorted(times, durations)
    removed = np.bincount(slot, minlength=len(times))
    events = np.bincount(slot[observed], minlength=len(times))
    at_risk = len(durations) - np.concatenate([[0], np.cumsum(removed)[:-1]])
    return times, at_risk, events, removed - events, slot


def _kaplan_meier(at_risk: np.ndarray, events: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(S, lower, upper) at each row of the event table, computed the way lifelines' KaplanMeierFitter
    (alpha=0.05) computes them, operation for operation, so that the median comparisons agree exactly:
    S = exp(cumsum(log(n - d) - log(n))); Greenwood's sum of d / (n (n - d)), a row where everyone at
    risk answers adding 0; the band exp(-exp(log(-log S) -/+ z sqrt(var) / log S)), 1 where that is
    undefined (S = 1, before any answer); 0 where S = 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        survival = np.exp(np.cumsum(np.log(at_risk - events) - np.log(at_risk)))
        n, d = at_risk.astype(float), events.astype(float)
        terms = d / (n * (n - d))
        variance = np.cumsum(np.where(terms == np.inf, 0.0, terms))
        v = np.log(survival)
        spread = Z95 * np.sqrt(variance) / v
        low = np.exp(-np.exp(np.log(-v) - spread))
        high = np.exp(-np.exp(np.log(-v) + spread))
    return survival, np.where(np.isnan(low), 1.0, low), np.where(np.isnan(high), 1.0, high)


def _first_at_or_below(times: np.ndarray, curve: np.ndarray, q: float = 0.5) -> float:
    """The first time the step curve is <= q (inf if it never is), as lifelines' qth_survival_time:
    a binary search of -curve for -q (the same search on the same numbers where a band is not monotone)."""
    if curve[-1] > q:
        return math.inf
    return float(times[np.searchsorted(-curve, np.array([-q]))[0]])


def _loglog_interval(estimate: float, variance: float) -> tuple[float, float]:
    """95% interval of a probability on the log(-log) scale; degenerate at 0 and 1, where it is exact.
    Total: an estimate a rounding error below 1 (an Aalen-Johansen sum of 0.9999999999999997) makes the
    standard error astronomically large, and the interval tends to [0, 1] instead of overflowing exp()."""
    if estimate <= 0.0 or estimate >= 1.0 or variance == 0.0:
        return estimate, estimate
    se = math.sqrt(variance) / (estimate * abs(math.log(estimate)))
    spread = min(Z95 * se, _MAX_EXPONENT)
    return estimate ** math.exp(spread), estimate ** math.exp(-spread)


_MAX_EXPONENT = 700.0
"""Below log(float max) = 709.78: exp() of it is finite, and any probability below 1 raised to it is 0."""


def survival_rows(curves: Curves, keys: dict[str, str]) -> list[dict]:
    at_risk, censored = curves.at_risk.tolist(), curves.censored.tolist()
    curves_by_name = [("answered", (curves.observed, curves.survival, curves.survival_low, curves.survival_high))]
    curves_by_name += [(cause, incidence) for cause, incidence in curves.incidence.items()]
    columns = [(name, *(a.tolist() for a in arrays)) for name, arrays in curves_by_name]
    rows = []
    for j, t in enumerate(curves.times.tolist()):
        base = {**keys, "tokens": int(t), "at_risk": at_risk[j], "censored": censored[j]}
        for name, events, estimate, low, high in columns:
            rows.append({**base, "curve": name, "events": events[j], "estimate": estimate[j], "ci_low": _finite(low[j]), "ci_high": _finite(high[j])})
    return rows


def bucket_width(max_tokens: float, samples: int) -> int:
    """A round bucket width (ROUND_WIDTHS times a power of ten) for token counts up to `max_tokens`: the one
    whose count of buckets from 0 to max_tokens is nearest (in ratio) to sqrt(samples) held within
    [MIN_BUCKETS, MAX_BUCKETS], among those giving that many; the wider on a tie. A few samples get about
    10 buckets, thousands 30; max_tokens 160 gets 10-token buckets (17), 4096 gets 200 or 250 (21 or 17).
    Token counts below MIN_BUCKETS - 1 cannot fill that many buckets: they get width 1."""
    top = max(0, int(max_tokens))
    target = min(MAX_BUCKETS, max(MIN_BUCKETS, round(math.sqrt(max(samples, 1)))))
    widths = sorted({w * 10**e for e in range(len(str(top)) + 1) for w in ROUND_WIDTHS})

    def buckets(width: int) -> int:
        return top // width + 1

    fitting = [w for w in widths if MIN_BUCKETS <= buckets(w) <= MAX_BUCKETS]
    if not fitting:
        return 1 if top < MIN_BUCKETS - 1 else min(widths, key=lambda w: (abs(math.log(buckets(w) / target)), -w))
    return min(fitting, key=lambda w: (abs(math.log(buckets(w) / target)), -w))


def bucket_rows(curves: Curves, keys: dict[str, str], width: int | None = None) -> list[dict]:
    """One row per bucket [b, b + width) from 0 to the bucket holding the largest token count; `width`
    chosen from the data (bucket_width) when not given."""
    tokens, outcomes = curves.tokens, curves.outcome_array
    width = width or bucket_width(float(tokens.max()), len(tokens))
    starts = np.arange(0, int(tokens.max()) + 1, width)
    # each sample's bucket: the last start <= its token count (-1 below 0); the last bucket holds the largest
    bucket = np.searchsorted(starts, tokens, side="right") - 1
    counted = bucket >= 0

    def per_bucket(outcome: str) -> list[int]:
        return np.bincount(bucket[counted & (outcomes == outcome)], minlength=len(starts)).tolist()

    at_risks = (len(tokens) - np.searchsorted(np.sort(tokens), starts, side="left")).tolist()  # tokens >= start
    by_cause = {cause: per_bucket(cause) for cause in CAUSES}
    truncated = per_bucket(Outcome.TRUNCATED.value)
    survival, low, high = curves.survival.tolist(), curves.survival_low.tolist(), curves.survival_high.tolist()
    incidence = {c: curves.incidence[c][1].tolist() for c in CAUSES}
    rows = []
    for i, start in enumerate(starts.tolist()):
        at_risk = at_risks[i]
        counts = {cause: by_cause[cause][i] for cause in CAUSES}
        answered = sum(counts.values())
        j = curves.at(start + width - 1)  # after the bucket's last token
        rows.append(
            {
                **keys,
                "bucket_start": start,
                "bucket_end": start + width,
                "samples": len(tokens),
                "at_risk": at_risk,
                "answered": answered,
                **counts,
                "truncated": truncated[i],
                "hazard": answered / at_risk if at_risk else None,
                **{f"hazard_{c}": counts[c] / at_risk if at_risk else None for c in CAUSES},
                "survival": survival[j],
                "survival_ci_low": _finite(low[j]),
                "survival_ci_high": _finite(high[j]),
                **{f"incidence_{c}": incidence[c][j] for c in CAUSES},
                "median_tokens": curves.median,
                "median_ci_low": curves.median_low,
                "median_ci_high": curves.median_high,
            }
        )
    return rows


def survival_frames(samples: pl.DataFrame, width: int | None = None) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(hazard per bucket, survival curves) per model, task and tier (`all`, and each tier named in the
    samples' `tiers` list when the column is there). The buckets are `width` tokens wide, or, when it is not
    given, as wide as bucket_width makes them for the model and task's samples (all tiers): one width for
    its tiers, so their buckets line up.

    `samples` needs model, task, outcome and completion_tokens; error samples and samples without a
    token count are left out."""
    usable = samples.filter((pl.col("outcome") != Outcome.ERROR.value) & pl.col("completion_tokens").is_not_null())
    groups: list[tuple[dict[str, str], pl.DataFrame, int]] = []
    for (model, task), frame in usable.group_by("model", "task", maintain_order=True):
        chosen = width or bucket_width(cast(int, frame["completion_tokens"].max()), frame.height)
        groups.append(({"model": model, "task": task, "tier": ALL_TIERS}, frame, chosen))
        if "tiers" in frame.columns:
            for tier in sorted({t for tiers in frame["tiers"].to_list() if tiers for t in tiers}):
                groups.append(({"model": model, "task": task, "tier": tier}, frame.filter(pl.col("tiers").list.contains(tier)), chosen))
    hazard, survival = [], []
    for keys, frame, bucket in groups:
        curves = Curves(frame["completion_tokens"].to_list(), frame["outcome"].to_list())
        hazard += bucket_rows(curves, keys, bucket)
        survival += survival_rows(curves, keys)
    return (
        pl.DataFrame(hazard, schema=HAZARD_COLUMNS).sort("tier", "bucket_start"),
        pl.DataFrame(survival, schema=SURVIVAL_COLUMNS).select(list(SURVIVAL_COLUMNS)).sort("tier", "curve", "tokens"),
    )
