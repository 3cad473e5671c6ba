"""Survival over output tokens (ReasonScape's "hazard" analysis): how long a model takes to answer,
and when it answers right or wrong.

time        a sample's completion_tokens (reasoning and answer together).
event       the sample finished with an answer: strict outcome correct, incorrect or unparsed.
censoring   truncation (finish_reason `length`, outcome `truncated`): the model was still going at
            max_tokens, so all we know is that its answer would have come later. Samples whose
            request failed (outcome `error`) or with no token count are left out.
survival    S(t) = P(no answer within t tokens), the Kaplan-Meier estimate (lifelines
            KaplanMeierFitter), with its 95% interval (Greenwood variance on the log(-log S) scale).
median      tokens to answer: the least t with S(t) <= 0.5, with the interval where the band of S
            crosses 0.5 (lifelines median_survival_times); none ("not reached") when half or more of
            the samples are still running at the end, i.e. truncated.
bucket      per 256-token bucket [b, b + 256): hazard = answers in the bucket / samples at risk at its
hazard      start (completion_tokens >= b); the same per cause (correct, incorrect, unparsed), which add
            up to the bucket's hazard. Truncations inside a bucket are counted but leave the risk set
            only after it.
cause-      the Aalen-Johansen cumulative incidence F_k(t) = sum over answer times t_j <= t of
specific    S(t_j-) d_kj / n_j for each answer kind k (correct, incorrect, unparsed): the probability
            of having answered *that way* within t tokens, the other kinds being competing events
            (not censored: treating them as censored would estimate a world where the model could not
            answer the other way, and would over-state each kind). F_correct + F_incorrect +
            F_unparsed + S = 1 at every t. Its 95% interval is the one lifelines'
            AalenJohansenFitter gives (Collett's delta-method variance, log(-log F) scale), computed
            here on the grouped token counts: lifelines would randomly jitter tied times of different
            kinds, while ties are the rule for integer token counts; on untied data the two agree
            (tests/test_traces.py).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import polars as pl

from rs_dagster.scoring.outcomes import ANSWERED, Outcome

BUCKET_TOKENS = 256
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
    "truncated": pl.Int64,
    "hazard": pl.Float64,
    "hazard_correct": pl.Float64,
    "hazard_incorrect": pl.Float64,
    "hazard_unparsed": pl.Float64,
    "survival": pl.Float64,
    "survival_ci_low": pl.Float64,
    "survival_ci_high": pl.Float64,
    "incidence_correct": pl.Float64,
    "incidence_incorrect": pl.Float64,
    "incidence_unparsed": pl.Float64,
    "median_tokens": pl.Float64,
    "median_ci_low": pl.Float64,
    "median_ci_high": pl.Float64,
}


def _finite(value: float) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


class Curves:
    """Kaplan-Meier survival and Aalen-Johansen incidence of one group of samples."""

    def __init__(self, tokens: Sequence[int], outcomes: Sequence[str]):
        from lifelines import KaplanMeierFitter
        from lifelines.utils import median_survival_times

        if len(tokens) != len(outcomes) or not tokens:
            raise ValueError("survival needs one outcome per token count, and at least one sample")
        self.tokens = np.asarray(tokens, dtype=float)
        self.outcomes = list(outcomes)
        finished = np.array([o in CAUSES for o in self.outcomes])
        km = KaplanMeierFitter(alpha=0.05).fit(self.tokens, event_observed=finished)
        table = km.event_table
        self.times = table.index.to_numpy(dtype=float)
        self.at_risk = table["at_risk"].to_numpy(dtype=int)
        self.observed = table["observed"].to_numpy(dtype=int)
        self.censored = table["censored"].to_numpy(dtype=int)
        self.survival = km.survival_function_.iloc[:, 0].reindex(table.index).to_numpy(dtype=float)
        bands = km.confidence_interval_.reindex(table.index)
        self.survival_low = bands.iloc[:, 0].to_numpy(dtype=float)
        self.survival_high = bands.iloc[:, 1].to_numpy(dtype=float)
        self.median = _finite(km.median_survival_time_)
        interval = median_survival_times(km.confidence_interval_)
        self.median_low, self.median_high = (_finite(float(v)) for v in interval.iloc[0, :2])
        self.incidence = {cause: self._aalen_johansen(cause) for cause in CAUSES}

    def _events_of(self, cause: str) -> np.ndarray:
        index = {t: i for i, t in enumerate(self.times)}
        counts = np.zeros(len(self.times), dtype=int)
        for t, outcome in zip(self.tokens, self.outcomes):
            if outcome == cause:
                counts[index[t]] += 1
        return counts

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


def _loglog_interval(estimate: float, variance: float) -> tuple[float, float]:
    """95% interval of a probability on the log(-log) scale; degenerate at 0 and 1, where it is exact."""
    if estimate <= 0.0 or estimate >= 1.0 or variance == 0.0:
        return estimate, estimate
    se = math.sqrt(variance) / (estimate * abs(math.log(estimate)))
    return estimate ** math.exp(Z95 * se), estimate ** math.exp(-Z95 * se)


def survival_rows(curves: Curves, keys: dict[str, str]) -> list[dict]:
    rows = []
    for j, t in enumerate(curves.times):
        base = {**keys, "tokens": int(t), "at_risk": int(curves.at_risk[j]), "censored": int(curves.censored[j])}
        rows.append({**base, "curve": "answered", "events": int(curves.observed[j]), "estimate": float(curves.survival[j]),
                     "ci_low": _finite(curves.survival_low[j]), "ci_high": _finite(curves.survival_high[j])})
        for cause, (d_k, F, low, high) in curves.incidence.items():
            rows.append({**base, "curve": cause, "events": int(d_k[j]), "estimate": float(F[j]), "ci_low": _finite(low[j]), "ci_high": _finite(high[j])})
    return rows


def bucket_rows(curves: Curves, keys: dict[str, str], width: int = BUCKET_TOKENS) -> list[dict]:
    """One row per bucket [b, b + width) from 0 to the bucket holding the largest token count."""
    tokens, outcomes = curves.tokens, np.array(curves.outcomes)
    rows = []
    for start in range(0, int(tokens.max()) + 1, width):
        end = start + width
        inside = (tokens >= start) & (tokens < end)
        at_risk = int((tokens >= start).sum())
        counts = {cause: int((inside & (outcomes == cause)).sum()) for cause in CAUSES}
        answered = sum(counts.values())
        j = curves.at(end - 1)  # after the bucket's last token
        rows.append(
            {
                **keys,
                "bucket_start": start,
                "bucket_end": end,
                "samples": len(tokens),
                "at_risk": at_risk,
                "answered": answered,
                **counts,
                "truncated": int((inside & (outcomes == Outcome.TRUNCATED.value)).sum()),
                "hazard": answered / at_risk if at_risk else None,
                **{f"hazard_{c}": counts[c] / at_risk if at_risk else None for c in CAUSES},
                "survival": float(curves.survival[j]),
                "survival_ci_low": _finite(curves.survival_low[j]),
                "survival_ci_high": _finite(curves.survival_high[j]),
                **{f"incidence_{c}": float(curves.incidence[c][1][j]) for c in CAUSES},
                "median_tokens": curves.median,
                "median_ci_low": curves.median_low,
                "median_ci_high": curves.median_high,
            }
        )
    return rows


def survival_frames(samples: pl.DataFrame, width: int = BUCKET_TOKENS) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(hazard per bucket, survival curves) per model, task and tier (`all`, and each tier named in the
    samples' `tiers` list when the column is there).

    `samples` needs model, task, outcome and completion_tokens; error samples and samples without a
    token count are left out."""
    usable = samples.filter((pl.col("outcome") != Outcome.ERROR.value) & pl.col("completion_tokens").is_not_null())
    groups: list[tuple[dict[str, str], pl.DataFrame]] = []
    for (model, task), frame in usable.group_by("model", "task", maintain_order=True):
        groups.append(({"model": model, "task": task, "tier": ALL_TIERS}, frame))
        if "tiers" in frame.columns:
            for tier in sorted({t for tiers in frame["tiers"].to_list() if tiers for t in tiers}):
                groups.append(({"model": model, "task": task, "tier": tier}, frame.filter(pl.col("tiers").list.contains(tier))))
    hazard, survival = [], []
    for keys, frame in groups:
        curves = Curves(frame["completion_tokens"].to_list(), frame["outcome"].to_list())
        hazard += bucket_rows(curves, keys, width)
        survival += survival_rows(curves, keys)
    return (
        pl.DataFrame(hazard, schema=HAZARD_COLUMNS).sort("tier", "bucket_start"),
        pl.DataFrame(survival, schema=SURVIVAL_COLUMNS).select(list(SURVIVAL_COLUMNS)).sort("tier", "curve", "tokens"),
    )
