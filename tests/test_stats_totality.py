"""Every statistic is total over the inputs a lab can hold: any counts (0 and n included), shares a rounding
error from 0 or 1, any text; property-based, so an edge case that would fail an evaluation for good
(as the hazard's 0.9999999999999997 did) is found here first."""

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from rs_dagster.stats.adaptive import PrecisionLevel, items_wanted, stop_reason
from rs_dagster.stats.compression import compression_ratio
from rs_dagster.stats.intervals import excess_over_chance, truncation_ratio, wilson_interval
from rs_dagster.stats.paired import benjamini_hochberg, mcnemar_exact

counts = st.integers(min_value=0, max_value=10**7)


@given(trials=st.integers(min_value=1, max_value=10**9), share=st.floats(min_value=0.0, max_value=1.0))
def test_wilson_interval_holds_its_estimate_inside_0_1(trials, share):
    successes = min(trials, round(share * trials))
    low, high = wilson_interval(successes, trials)
    assert math.isfinite(low) and math.isfinite(high)
    assert 0.0 <= low <= successes / trials <= high <= 1.0


@given(truncated=counts, answered=counts)
def test_truncation_ratio_is_a_share_or_none(truncated, answered):
    ratio = truncation_ratio(truncated, answered)
    assert (ratio is None) == (truncated + answered == 0)
    assert ratio is None or 0.0 <= ratio <= 1.0


@given(accuracy=st.floats(min_value=0.0, max_value=1.0), chance=st.floats(min_value=0.0, max_value=1.0, exclude_max=True))
def test_excess_over_chance_is_finite_and_at_most_1(accuracy, chance):
    excess = excess_over_chance(accuracy, chance)
    assert math.isfinite(excess) and excess <= 1.0 + 1e-9


@settings(deadline=None)  # scipy.stats is imported by the first call
@given(b=st.integers(min_value=0, max_value=10**5), c=st.integers(min_value=0, max_value=10**5))
def test_mcnemar_is_a_p_value(b, c):
    assert 0.0 <= mcnemar_exact(b, c) <= 1.0


@given(st.lists(st.floats(min_value=0.0, max_value=1.0), max_size=200))
def test_benjamini_hochberg_q_values_are_p_values_at_least_as_large(p_values):
    q = benjamini_hochberg(p_values)
    assert len(q) == len(p_values) and all(p <= qi <= 1.0 for p, qi in zip(p_values, q, strict=True))


@given(
    min_n=st.integers(min_value=1, max_value=500), extra=st.integers(min_value=0, max_value=2000),
    target=st.one_of(st.none(), st.floats(min_value=1e-4, max_value=0.5)),
    answered_share=st.floats(min_value=0.0, max_value=1.0), correct_share=st.floats(min_value=0.0, max_value=1.0),
    drawn=st.integers(min_value=0, max_value=3000),
)
def test_adaptive_rounds_always_end_within_the_cap(min_n, extra, target, answered_share, correct_share, drawn):
    level = PrecisionLevel(min_n, min_n + extra, target) if target is not None and extra else PrecisionLevel(min_n, min_n)
    answered = round(answered_share * drawn)
    correct = round(correct_share * answered)
    wanted = items_wanted(correct, answered, drawn, level)
    assert wanted == drawn or drawn < wanted <= max(level.max_n, level.min_n)
    if drawn >= level.max_n:
        assert stop_reason(correct, answered, drawn, level) is not None


@given(st.one_of(st.none(), st.text(max_size=5000)))
def test_compression_ratio_of_any_text_is_positive_or_none(text):
    ratio = compression_ratio(text)
    assert ratio is None or (math.isfinite(ratio) and ratio > 0)
