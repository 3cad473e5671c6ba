"""The numpy Kaplan-Meier of rs_dagster.stats.hazard against lifelines, its independent reference (a
test dependency only): the event table, S(t), its 95% band, the median and the median's interval, on
random and degenerate inputs; and survival_frames unchanged from the lifelines-based implementation."""

import math
import subprocess
import sys

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lifelines import KaplanMeierFitter
from lifelines.utils import median_survival_times
from polars.testing import assert_frame_equal

from rs_dagster.stats import hazard
from rs_dagster.stats.hazard import CAUSES, Curves, _finite, survival_frames
from rs_dagster.storage import schemas
from rs_dagster.storage.warehouse import validate

KINDS = ("correct", "incorrect", "unparsed", "truncated")
TOL = 1e-9


def _reference(tokens, outcomes) -> dict:
    """What the lifelines-based Curves took from KaplanMeierFitter(alpha=0.05), as it stored it."""
    km = KaplanMeierFitter(alpha=0.05).fit(np.asarray(tokens, dtype=float), event_observed=[o in CAUSES for o in outcomes])
    table = km.event_table
    bands = km.confidence_interval_.reindex(table.index)
    interval = median_survival_times(km.confidence_interval_)
    return {
        "times": table.index.to_numpy(dtype=float),
        "at_risk": table["at_risk"].to_numpy(dtype=int),
        "observed": table["observed"].to_numpy(dtype=int),
        "censored": table["censored"].to_numpy(dtype=int),
        "survival": km.survival_function_.iloc[:, 0].reindex(table.index).to_numpy(dtype=float),
        "survival_low": bands.iloc[:, 0].to_numpy(dtype=float),
        "survival_high": bands.iloc[:, 1].to_numpy(dtype=float),
        "median": _finite(km.median_survival_time_),
        "median_low": _finite(float(interval.iloc[0, 0])),
        "median_high": _finite(float(interval.iloc[0, 1])),
    }


def _assert_matches_lifelines(tokens, outcomes):
    curves, expected = Curves(list(tokens), list(outcomes)), _reference(tokens, outcomes)
    assert curves.times.tolist() == expected["times"].tolist()
    for column in ("at_risk", "observed", "censored"):
        assert getattr(curves, column).tolist() == expected[column].tolist(), column
    for column in ("survival", "survival_low", "survival_high"):
        ours, theirs = getattr(curves, column), expected[column]
        assert not np.isnan(ours).any(), column
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=TOL, err_msg=column)
        assert [_finite(v) for v in ours] == pytest.approx([_finite(v) for v in theirs], abs=TOL), column
    for column in ("median", "median_low", "median_high"):
        ours, theirs = getattr(curves, column), expected[column]
        assert (ours is None and theirs is None) or (ours is not None and theirs is not None and abs(ours - theirs) <= TOL), (
            column, ours, theirs)
    return curves


def _random_case(rng: np.random.Generator) -> tuple[list, list]:
    n = int(rng.choice([1, 2, 3, 5, 10, 40, 200, 1000]))
    kind = rng.integers(4)
    if kind == 0:  # integer token counts with heavy ties
        tokens = (rng.integers(0, 12, size=n) * int(rng.choice([1, 7, 256]))).tolist()
    elif kind == 1:  # realistic token counts, truncations at max_tokens
        tokens = np.clip(rng.lognormal(6.2, 0.8, size=n).astype(int), 20, 2000).tolist()
    elif kind == 2:  # untied floats
        tokens = rng.exponential(500.0, size=n).tolist()
    else:  # floats with ties
        tokens = rng.choice(rng.exponential(500.0, size=max(1, n // 4)), size=n).tolist()
    truncated = float(rng.choice([0.0, 0.05, 0.3, 0.6, 0.9, 1.0]))
    p = [(1 - truncated) * 0.6, (1 - truncated) * 0.3, (1 - truncated) * 0.1, truncated]
    outcomes = rng.choice(KINDS, size=n, p=p).tolist()
    if kind == 1:
        tokens = [2000 if o == "truncated" else t for t, o in zip(tokens, outcomes)]
    return tokens, outcomes


@pytest.mark.parametrize("seed", range(8))
def test_random_inputs_match_lifelines(seed):
    rng = np.random.default_rng(seed)
    for _ in range(40):
        _assert_matches_lifelines(*_random_case(rng))


@pytest.mark.parametrize(
    ("tokens", "outcomes"),
    [
        pytest.param([300], ["correct"], id="one answer"),
        pytest.param([300], ["truncated"], id="one truncation"),
        pytest.param([0], ["correct"], id="one answer at 0 tokens"),
        pytest.param([0, 0, 5], ["truncated", "correct", "correct"], id="zeros"),
        pytest.param([700] * 9, ["correct"] * 9, id="all tied, all answered"),
        pytest.param([700] * 9, ["truncated"] * 9, id="all tied, all truncated"),
        pytest.param([700] * 9, ["correct", "truncated", "incorrect"] * 3, id="all tied, mixed"),
        pytest.param([10, 20, 30, 40, 50], ["correct", "incorrect", "unparsed", "correct", "incorrect"], id="all answered"),
        pytest.param([10, 20, 30, 40, 50], ["truncated"] * 5, id="all truncated"),
        pytest.param([100, 100, 200, 200, 200, 300], ["correct", "truncated", "truncated", "incorrect", "correct", "truncated"],
                     id="censorings and answers at the same time"),
        pytest.param([1, 2, 2, 3], ["correct", "correct", "truncated", "correct"], id="S = 1/2 exactly, then 0"),
        pytest.param([10, 20, 20, 30, 40, 50], ["correct", "ambiguous", "truncated", "unparsed", "ambiguous", "incorrect"],
                     id="hedged (ambiguous) answers are events"),
        pytest.param([10.5, 10.25, 3.125, 10.5], ["correct", "truncated", "incorrect", "correct"], id="floats"),
    ],
)
def test_degenerate_inputs_match_lifelines(tokens, outcomes):
    _assert_matches_lifelines(tokens, outcomes)


def test_all_answered_reaches_zero_and_all_truncated_is_not_reached():
    answered = _assert_matches_lifelines([700] * 4, ["correct"] * 4)
    assert answered.survival.tolist() == [1.0, 0.0] and answered.survival_low.tolist() == [1.0, 0.0]
    assert answered.median == answered.median_low == answered.median_high == 700
    running = _assert_matches_lifelines([700] * 4, ["truncated"] * 4)
    assert running.survival.tolist() == [1.0, 1.0] and running.survival_high.tolist() == [1.0, 1.0]
    assert running.median is running.median_low is running.median_high is None


def test_large_samples_match_lifelines():
    rng = np.random.default_rng(11)
    for _ in range(3):
        outcomes = rng.choice(KINDS, size=5000, p=[0.5, 0.25, 0.05, 0.2]).tolist()
        tokens = np.clip(rng.lognormal(6.5, 0.9, size=5000).astype(int), 20, 4000)
        _assert_matches_lifelines([4000 if o == "truncated" else int(t) for t, o in zip(tokens, outcomes)], outcomes)
        _assert_matches_lifelines(rng.exponential(800.0, size=5000).tolist(), outcomes)


# --- survival_frames against the lifelines-based implementation --------------------------------------


def _lifelines_curves_init(self, tokens, outcomes):
    """Curves.__init__ as it was with lifelines (the tables below it computed in the same way)."""
    self.tokens = np.asarray(tokens, dtype=float)
    self.outcomes = list(outcomes)
    self.outcome_array = np.asarray(self.outcomes)
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


def _loop_events_of(self, cause):
    index = {t: i for i, t in enumerate(self.times)}
    counts = np.zeros(len(self.times), dtype=int)
    for t, outcome in zip(self.tokens, self.outcomes):
        if outcome == cause:
            counts[index[t]] += 1
    return counts


def _loop_bucket_rows(curves, keys, width):
    """bucket_rows as it was: a mask over every sample for each bucket."""
    tokens, outcomes = curves.tokens, np.array(curves.outcomes)
    rows = []
    for start in range(0, int(tokens.max()) + 1, width):
        end = start + width
        inside = (tokens >= start) & (tokens < end)
        at_risk = int((tokens >= start).sum())
        counts = {cause: int((inside & (outcomes == cause)).sum()) for cause in CAUSES}
        answered = sum(counts.values())
        j = curves.at(end - 1)
        rows.append(
            {
                **keys, "bucket_start": start, "bucket_end": end, "samples": len(tokens), "at_risk": at_risk, "answered": answered,
                **counts,
                "truncated": int((inside & (outcomes == "truncated")).sum()),
                "hazard": answered / at_risk if at_risk else None,
                **{f"hazard_{c}": counts[c] / at_risk if at_risk else None for c in CAUSES},
                "survival": float(curves.survival[j]),
                "survival_ci_low": _finite(curves.survival_low[j]),
                "survival_ci_high": _finite(curves.survival_high[j]),
                **{f"incidence_{c}": float(curves.incidence[c][1][j]) for c in CAUSES},
                "median_tokens": curves.median, "median_ci_low": curves.median_low, "median_ci_high": curves.median_high,
            }
        )
    return rows


def _realistic_samples(n: int = 2002, seed: int = 3) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    outcome = rng.choice([*KINDS, "error"], size=n, p=[0.53, 0.25, 0.05, 0.15, 0.02])
    tokens = np.clip(rng.lognormal(6.2, 0.7, size=n).astype(int), 20, 2000)
    tokens[outcome == "truncated"] = 2000
    tiers = [[t] for t in rng.choice(["easy", "medium", "hard", "extreme"], size=n)]
    return pl.DataFrame({"model": "m", "task": "t", "outcome": outcome.tolist(), "completion_tokens": tokens.tolist(), "tiers": tiers})


def test_survival_frames_unchanged_from_the_lifelines_implementation(monkeypatch):
    samples = _realistic_samples()
    hazard_rows, survival_rows = survival_frames(samples)
    assert sorted(set(hazard_rows["tier"])) == ["all", "easy", "extreme", "hard", "medium"]
    with monkeypatch.context() as patch:
        patch.setattr(hazard.Curves, "__init__", _lifelines_curves_init)
        patch.setattr(hazard.Curves, "_events_of", _loop_events_of)
        patch.setattr(hazard, "bucket_rows", _loop_bucket_rows)
        expected_hazard, expected_survival = survival_frames(samples)
    assert_frame_equal(hazard_rows, expected_hazard, check_exact=True)
    assert_frame_equal(survival_rows, expected_survival, check_exact=True)
    assert hazard_rows.rows() == expected_hazard.rows() and survival_rows.rows() == expected_survival.rows()
    medians = hazard_rows.filter(pl.col("tier") == "all").row(0, named=True)
    assert medians["median_tokens"] is not None and math.isfinite(medians["median_tokens"])


def test_an_ambiguous_answer_is_a_cause_of_its_own_and_the_incidences_still_sum_to_one():
    """Hedges ("5 or 7") end a sample with an answer: events for S(t), a fifth curve F_ambiguous beside the others,
    its own hazard column, and S + the sum of every F is 1 in every bucket."""
    assert CAUSES == ("correct", "incorrect", "unparsed", "ambiguous")
    rng = np.random.default_rng(5)
    kinds = [*CAUSES, "truncated", "error"]
    outcome = rng.choice(kinds, size=600, p=[0.4, 0.2, 0.05, 0.15, 0.15, 0.05])
    tokens = np.clip(rng.lognormal(6.0, 0.7, size=600).astype(int), 10, 1500)
    tokens[outcome == "truncated"] = 1500
    samples = pl.DataFrame({"model": "m", "task": "t", "outcome": outcome.tolist(), "completion_tokens": tokens.tolist(),
                            "tiers": [["easy"] if i % 2 else ["hard"] for i in range(600)]})
    buckets, curves = survival_frames(samples)
    validate("hazard", schemas.Hazard, buckets)  # its check: answered = the sum of the causes; S + sum F = 1
    validate("survival", schemas.Survival, curves)
    pooled = buckets.filter(pl.col("tier") == "all").sort("bucket_start")
    assert pooled["ambiguous"].sum() == int((outcome == "ambiguous").sum()) > 0
    sums = pooled.select(
        causes=pl.sum_horizontal(*CAUSES),
        total=pl.sum_horizontal("survival", *(f"incidence_{c}" for c in CAUSES)),
        hazards=pl.sum_horizontal(*(f"hazard_{c}" for c in CAUSES)),
    )
    assert sums["causes"].to_list() == pooled["answered"].to_list()
    assert sums["total"].to_list() == pytest.approx([1.0] * pooled.height, abs=1e-12)
    at_risk = (pooled["at_risk"] > 0).to_list()
    assert [h for h, r in zip(pooled["hazard"].to_list(), at_risk) if r] == pytest.approx([h for h, r in zip(sums["hazards"].to_list(), at_risk) if r])
    assert pooled["hazard_ambiguous"].drop_nulls().max() > 0 and pooled["incidence_ambiguous"][-1] > 0.1
    # F_ambiguous is the Aalen-Johansen incidence of hedging, the other kinds of answer competing with it
    direct = Curves(tokens[outcome != "error"].tolist(), outcome[outcome != "error"].tolist())
    assert pooled["incidence_ambiguous"][-1] == pytest.approx(float(direct.incidence["ambiguous"][1][-1]))
    assert set(curves.filter(pl.col("tier") == "all")["curve"]) == {"answered", *CAUSES}
    # without truncation the incidences at the end are the plain shares of each kind of answer
    answered = samples.filter(pl.col("outcome").is_in(list(CAUSES)))
    final = survival_frames(answered)[0].filter(pl.col("tier") == "all").sort("bucket_start").row(-1, named=True)
    assert final["survival"] == 0.0
    for cause in CAUSES:
        assert final[f"incidence_{cause}"] == pytest.approx((answered["outcome"] == cause).mean())


def test_hazard_does_not_import_lifelines():
    code = (
        "import sys, polars as pl\n"
        "from rs_dagster.stats.hazard import survival_frames\n"
        "survival_frames(pl.DataFrame({'model': 'm', 'task': 't', 'outcome': ['correct', 'truncated'], 'completion_tokens': [5, 9]}))\n"
        "assert not {'lifelines', 'pandas', 'scipy'} & set(sys.modules), sorted({'lifelines', 'pandas', 'scipy'} & set(sys.modules))\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@settings(max_examples=300, deadline=None)
@given(
    estimate=st.one_of(st.floats(0.0, 1.0), st.sampled_from([0.9999999999999997, 1 - 1e-16, 5e-324, 1e-300])),
    variance=st.one_of(st.floats(0.0, 10.0), st.just(float("nan"))),
)
def test_the_incidence_interval_is_total_near_0_and_1(estimate, variance):
    """A cumulative incidence a rounding error below 1 made the log(-log) interval overflow exp() and failed
    the hazard asset, and with it every later evaluation of the pair (issue 22, item 7)."""
    low, high = hazard._loglog_interval(estimate, variance)
    if math.isfinite(low) and math.isfinite(high):
        assert 0.0 <= low <= estimate + 1e-12 and estimate - 1e-12 <= high <= 1.0
