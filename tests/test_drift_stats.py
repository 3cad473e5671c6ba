"""Drift and memorisation statistics of the watch (rs_dagster.stats.drift, rs_dagster.stats.memorisation):
the exact exchangeability test against McNemar and against enumeration, its size and power by simulation,
night_drift and night_summary on simulated canaries (bench/drift_false_alarms.py's simulator, whose
false-alarm rate that script measures), and the stratified memorisation gap's coverage.

Figures measured by bench/drift_false_alarms.py (defaults) and the bounds held here with fixed seeds:
- false alarms of night_drift on a stable model (2 points × 150 items, accuracy 0.9, alpha 0.01): 2 of 2,000
  task-nights = 0.001 (Clopper–Pearson 95% CI 0.0001–0.0036). Over 19 compared nights, P(2 or more alarmed
  nights) <= 0.2% even at the interval's top, so the stable-series test allows at most 1.
- power, accuracy 0.9 → 0.8 on 300 items after 7 stable nights, task accuracy against the baseline at q < 0.01:
  1,825 of 2,000 = 0.9125 (CI 0.899–0.925). The test asks >= 85 of 100 nights (P(<= 84 | 0.9125) = 1.3%).
  exchangeable_test alone at p < 0.01: 0.97 (4,000 nights); the test asks >= 475 of 500.
- size: over 20,000 null nights (300 items, 7 earlier nights) P(p < 0.05) = 0.041, P(p < 0.01) = 0.0076 (the
  exact test is conservative, as McNemar's is); over 2,000 nights the test asks P(p < 0.05) in [0.025, 0.060]
  and P(p < 0.01) <= 0.016 (each bound more than 3.5 sd from the measured rate).
- the gap's interval on an honest model holds 0 in 1,910 of 2,000 seeds = 0.955 (CI 0.945–0.964); over 100 seeds
  the test asks >= 90 (P(<= 89 | 0.955) = 0.5%; >= 95 would fail 30% of seed choices at the true coverage).
"""

from __future__ import annotations

import importlib.util
import itertools
import math
import time
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from scipy.stats import mannwhitneyu

from rs_dagster.stats.drift import (
    ALARM_METRICS,
    DEFAULT_ALPHA,
    DEFAULT_BASELINE_NIGHTS,
    DRIFT_COLUMNS,
    NIGHT_COLUMNS,
    _exchangeable_p,
    drift_words,
    exchangeable_test,
    night_drift,
    night_summary,
    paired_shift,
    rank_test,
)
from rs_dagster.stats.intervals import wilson_interval
from rs_dagster.stats.memorisation import MEMORISATION_COLUMNS, Gap, memorisation_rows, stratified_gap
from rs_dagster.stats.paired import mcnemar_exact
from rs_dagster.storage import schemas

_BENCH = Path(__file__).resolve().parents[1] / "bench" / "drift_false_alarms.py"
_spec = importlib.util.spec_from_file_location("drift_false_alarms", _BENCH)
assert _spec is not None and _spec.loader is not None
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)
label = bench.night_label


def _items(b: int, c: int, both: int = 5, neither: int = 3) -> tuple[list[int], list[list[int]]]:
    """b items right before and wrong now, c the reverse, plus concordant items."""
    now = [0] * b + [1] * c + [1] * both + [0] * neither
    before = [[1]] * b + [[0]] * c + [[1]] * both + [[0]] * neither
    return now, before


# --- exchangeable_test -----------------------------------------------------------------------------


@pytest.mark.parametrize(("b", "c"), [(0, 0), (3, 3), (0, 5), (1, 9), (9, 1), (2, 8), (40, 0), (12, 25), (30, 31), (57, 80)])
def test_exchangeable_test_is_exact_mcnemar_against_one_night(b, c):
    now, before = _items(b, c)
    assert exchangeable_test(now, before) == pytest.approx(mcnemar_exact(b, c), rel=1e-9, abs=1e-15)


def test_exchangeable_test_matches_enumeration():
    """Against the Poisson-binomial by enumerating every outcome of the informative items, with uneven
    numbers of earlier answers (and two items that carry no information)."""
    rng = np.random.default_rng(7)
    before = [list(rng.integers(0, 2, size=k)) for k in (1, 2, 3, 3, 4, 5, 6, 7, 2, 5)] + [[1, 1, 1], [0, 0]]
    now = [1, 0, 1, 1, 0, 1, 1, 0, 1, 1, 1, 0]  # the last two: all right / all wrong, no information
    p = [(x + sum(b)) / (len(b) + 1) for x, b in zip(now[:10], before[:10])]
    t = sum(now[:10])
    low = high = 0.0
    for outcome in itertools.product((0, 1), repeat=10):
        weight = math.prod(pi if o else 1 - pi for o, pi in zip(outcome, p))
        total = sum(outcome)
        low += weight * (total <= t)
        high += weight * (total >= t)
    assert exchangeable_test(now, before) == pytest.approx(min(1.0, 2 * min(low, high)), rel=1e-12)


def test_exchangeable_test_rejects_bad_input_and_has_no_evidence_without_variation():
    assert exchangeable_test([], []) == 1.0
    assert exchangeable_test([1, 1, 0], [[1, 1], [1], [0, 0, 0]]) == 1.0  # every item constant: nothing to test
    with pytest.raises(ValueError):
        exchangeable_test([1, 0], [[1]])
    with pytest.raises(ValueError):
        exchangeable_test([2], [[1]])
    with pytest.raises(ValueError):
        exchangeable_test([1], [[1, 3]])


def _null_night(rng: np.random.Generator, n: int = 300, k: int = 7, accuracy: float = 0.9, tonight: float = 0.9) -> float:
    before = (rng.random((n, k)) < accuracy).sum(axis=1)
    x = (rng.random(n) < tonight).astype(np.int64)
    return _exchangeable_p(x, x + before, np.full(n, k + 1))


def test_exchangeable_test_holds_its_size_under_the_null():
    """2,000 stable nights (300 items at 0.9, 7 earlier nights): measured 0.041 below 0.05 over 20,000."""
    rng = np.random.default_rng(2024)
    p = np.array([_null_night(rng) for _ in range(2000)])
    assert 0.025 <= (p < 0.05).mean() <= 0.060
    assert (p < 0.01).mean() <= 0.016
    assert p.min() >= 0.0 and p.max() <= 1.0


def test_exchangeable_test_sees_a_ten_point_drop():
    """0.9 → 0.8 on 300 items against 7 nights at 0.9: p < 0.01 in >= 475 of 500 nights (measured 0.97)."""
    rng = np.random.default_rng(99)
    hits = sum(_null_night(rng, tonight=0.8) < 0.01 for _ in range(500))
    assert hits >= 475


def test_exchangeable_test_is_fast_on_thousands_of_items():
    rng = np.random.default_rng(3)
    n = 4000
    before = [list((rng.random(int(k)) < 0.7).astype(int)) for k in rng.integers(1, 8, size=n)]
    now = list((rng.random(n) < 0.7).astype(int))
    started = time.perf_counter()
    p = exchangeable_test(now, before)
    assert time.perf_counter() - started < 0.5
    assert 0.0 <= p <= 1.0


# --- paired_shift and rank_test --------------------------------------------------------------------


def test_paired_shift_by_hand():
    shift, low, high = paired_shift([1, 0, 1, 0], [[1, 1], [1, 0], [0, 0], [0, 1]])
    d = np.array([0.0, -0.5, 1.0, -0.5])
    half = 1.959963984540054 * d.std(ddof=1) / 2
    assert shift == pytest.approx(0.0)
    assert (low, high) == pytest.approx((-half, half))
    assert all(math.isnan(v) for v in paired_shift([], []))
    assert paired_shift([0] * 50, [[1]] * 50) == (-1.0, -1.0, -1.0)  # every item fell: clipped at −1
    one = paired_shift([1], [[0, 1]])
    assert one[0] == 0.5 and math.isnan(one[1]) and math.isnan(one[2])


def test_rank_test_is_mann_whitney_with_the_median_shift():
    now, before = [5, 7, 7, 9, 12, 3], [1, 2, 2, 4, 7, 6, 5]
    p, shift = rank_test(now, before)
    assert p == pytest.approx(mannwhitneyu(now, before, alternative="two-sided").pvalue)
    assert shift == pytest.approx(np.median(now) - np.median(before))
    assert rank_test([], [1.0])[0] == 1.0 and rank_test([1.0], [])[0] == 1.0
    assert rank_test([2.0, 2.0], [2.0, 2.0, 2.0]) == (1.0, 0.0)


# --- night_drift -----------------------------------------------------------------------------------


def _validate(frame: pl.DataFrame, table: type, **added: str) -> None:
    table.validate(frame.with_columns(**{k: pl.lit(v) for k, v in added.items()}))


def test_night_drift_with_no_earlier_night_is_an_empty_frame_of_the_schema():
    answers = bench.simulate_canary(np.random.default_rng(0), 1)
    rows = night_drift(answers, label(0))
    assert rows.is_empty() and rows.schema == pl.Schema(DRIFT_COLUMNS)
    assert night_drift(answers, "2030-01-01").is_empty()  # a night without answers
    drift_fields = set(schemas.Drift.to_schema().columns) - {"model", "task", "dagster_run_id"}
    assert set(DRIFT_COLUMNS) == drift_fields
    assert set(NIGHT_COLUMNS) == set(schemas.Nights.to_schema().columns) - {"model", "task"}
    assert set(MEMORISATION_COLUMNS) == set(schemas.Memorisation.to_schema().columns) - {"model", "task", "dagster_run_id"}


def test_the_second_night_has_no_baseline_and_rows_fit_the_schema():
    answers = bench.simulate_canary(np.random.default_rng(1), 2)
    rows = night_drift(answers, label(1))
    assert set(rows["comparison"]) == {"previous"}
    assert set(rows["compared_to"]) == {label(0)}
    assert set(rows["scope"]) == {"task", "p0", "p1"}
    assert rows.filter(pl.col("metric") == "server").height == 1
    _validate(rows, schemas.Drift, model="m", task="t", dagster_run_id="r")


def test_a_stable_model_raises_no_more_alarms_than_its_measured_rate_allows_then_a_drop_is_flagged():
    """20 stable nights (night 1 has nothing to compare): at most 1 alarmed night (measured rate 0.001 per
    task-night); night 21 at accuracy 0.7 is flagged on accuracy, on the task against both comparisons."""
    answers = bench.simulate_canary(np.random.default_rng(11), 21, accuracy=[0.9] * 20 + [0.7])
    stable = [night_drift(answers, label(k)) for k in range(1, 20)]
    alarmed = [rows["night"][0] for rows in stable if rows["alarm"].any()]
    assert len(alarmed) <= 1, alarmed
    night = stable[-1]
    assert night.filter(pl.col("comparison") == "baseline")["compared_to"][0] == f"{label(12)}..{label(18)} (7 nights)"
    assert night.height == 2 * (3 * 3 + 1)  # 2 comparisons × 3 scopes × 3 metrics, plus a server row each

    dropped = night_drift(answers, label(20))
    alarms = dropped.filter(pl.col("alarm"))
    assert set(alarms["metric"]) == {"accuracy"}
    task = alarms.filter(pl.col("scope") == "task")
    assert set(task["comparison"]) == {"previous", "baseline"}
    for row in task.iter_rows(named=True):
        assert row["shift"] < 0 and row["shift_high"] < 0 and row["q_value"] < DEFAULT_ALPHA
        assert row["now"] == pytest.approx(row["before"] + row["shift"])
        assert row["detail"].startswith(f"accuracy {row['before']:.3f} → {row['now']:.3f} on {row['n_shared']} items (−")
        assert "points, 95% CI −" in row["detail"] and ", q" in row["detail"]
    _validate(dropped, schemas.Drift, model="m", task="t", dagster_run_id="r")


def test_a_night_drift_power_of_ninety_percent_for_a_ten_point_drop():
    """0.9 → 0.8 on 300 items after 7 stable nights: the task's accuracy against the baseline at q < 0.01 in
    >= 85 of 100 simulated nights (measured 0.9125 over 2,000 by the bench)."""
    _, hits, _ = bench.power(100)
    assert hits >= 85, hits


def test_a_fingerprint_change_alone_raises_exactly_a_server_alarm():
    prints = ["fp_a"] * 9 + ["fp_b"] * 2
    answers = bench.simulate_canary(np.random.default_rng(5), 11, fingerprints=prints)
    rows = night_drift(answers, label(9))
    alarms = rows.filter(pl.col("alarm"))
    assert set(alarms["metric"]) == {"server"}
    assert alarms.height == 2  # one per comparison
    assert set(alarms["detail"]) == {"system_fingerprint fp_a → fp_b"}
    assert alarms.select(pl.col("p_value").is_null().all(), pl.col("q_value").is_null().all()).row(0) == (True, True)
    after = night_drift(answers, label(10))
    assert not after.filter(pl.col("metric") == "server")["alarm"].any()  # fp_b on both nights


def test_server_rows_only_alarm_on_what_was_reported():
    answers = bench.simulate_canary(np.random.default_rng(6), 4)
    silent = answers.with_columns(pl.lit(None, pl.String).alias("system_fingerprint"), pl.lit(None, pl.String).alias("response_model"))
    assert not night_drift(silent, label(3)).filter(pl.col("metric") == "server")["alarm"].any()  # nothing on both sides
    renamed = answers.with_columns(
        pl.when(pl.col("night") == label(3)).then(pl.lit("m-2")).otherwise(pl.col("response_model")).alias("response_model")
    ).with_columns(pl.when(pl.col("error").is_null()).then(pl.col("response_model")).alias("response_model"))
    server = night_drift(renamed, label(3)).filter(pl.col("metric") == "server")
    assert server["alarm"].all() and set(server["detail"]) == {"model m-1 → m-2"}
    outage = answers.with_columns(
        pl.when(pl.col("night") == label(3)).then(pl.lit("timeout")).otherwise(pl.col("error")).alias("error")
    )
    rows = night_drift(outage, label(3))
    assert not rows["alarm"].any()  # every request failed: nothing to compare, no alarm
    assert set(rows["metric"]) == {"server"}


def test_latency_is_reported_never_alarmed_and_kept_out_of_the_alarm_family():
    answers = bench.simulate_canary(np.random.default_rng(8), 9)
    slow = answers.with_columns(
        pl.when(pl.col("night") == label(8)).then(pl.col("latency_s") * 3).otherwise(pl.col("latency_s")).alias("latency_s")
    )
    rows = night_drift(slow, label(8))
    latency = rows.filter(pl.col("metric") == "latency_s")
    assert (latency["q_value"] < 1e-6).all() and not latency["alarm"].any()
    assert "latency_s" not in ALARM_METRICS
    same = night_drift(answers, label(8)).filter(pl.col("metric").is_in(ALARM_METRICS))
    moved = rows.filter(pl.col("metric").is_in(ALARM_METRICS))
    assert moved["q_value"].to_list() == pytest.approx(same["q_value"].to_list())  # latency's p-values change no q here


def test_output_tokens_alarm_when_the_model_writes_longer():
    answers = bench.simulate_canary(np.random.default_rng(9), 9)
    longer = answers.with_columns(
        pl.when(pl.col("night") == label(8)).then((pl.col("completion_tokens") * 1.5).round().cast(pl.Int64))
        .otherwise(pl.col("completion_tokens")).alias("completion_tokens")
    )
    alarms = night_drift(longer, label(8)).filter(pl.col("alarm"))
    assert set(alarms["metric"]) == {"output_tokens"}
    assert alarms.filter(pl.col("scope") == "task")["detail"][0].startswith("median output tokens ")


def test_errors_fresh_items_and_eval_nights_are_left_out():
    answers = bench.simulate_canary(np.random.default_rng(10), 3, error_rate=0.0)
    errors = answers.with_columns(
        pl.when((pl.col("night") == label(2)) & (pl.col("test_case_id") < "p0-010"))
        .then(pl.lit("boom")).otherwise(pl.col("error")).alias("error")
    )
    fresh = answers.filter(pl.col("night") == label(1)).with_columns(pl.lit("fresh:s:0").alias("item_set"), pl.lit("incorrect").alias("outcome"))
    evaluated = answers.filter(pl.col("night") == label(1)).with_columns(pl.lit("eval:x").alias("night"), pl.lit("incorrect").alias("outcome"))
    rows = night_drift(pl.concat([errors, fresh, evaluated]), label(2))
    task = rows.filter((pl.col("scope") == "task") & (pl.col("comparison") == "previous"))
    assert task.filter(pl.col("metric") == "accuracy")["n_shared"][0] == 290
    assert task.filter(pl.col("metric") == "output_tokens")["n_shared"][0] == 290
    assert set(rows["compared_to"]) == {label(1), f"{label(0)}..{label(1)} (2 nights)"}


# --- night_summary ---------------------------------------------------------------------------------


def test_night_summary_counts_each_night_and_carries_its_alarms():
    prints = ["fp_a"] * 3 + ["fp_b"]
    answers = bench.simulate_canary(np.random.default_rng(12), 4, accuracy=[0.9, 0.9, 0.9, 0.6], fingerprints=prints)
    drift = pl.concat([night_drift(answers, label(k)) for k in range(1, 4)])
    summary = night_summary(answers, drift)
    assert summary.schema == pl.Schema(NIGHT_COLUMNS)
    assert summary["night"].to_list() == [label(k) for k in range(4)]
    for row, (night,) in zip(summary.iter_rows(named=True), summary.select("night").iter_rows()):
        mine = answers.filter(pl.col("night") == night)
        ok = mine.filter(pl.col("error").is_null())
        assert row["n"] == ok.height and row["errors"] == mine.height - ok.height
        assert row["correct"] == ok.filter(pl.col("outcome") == "correct").height
        assert (row["ci_low"], row["ci_high"]) == pytest.approx(wilson_interval(row["correct"], row["n"]))
        assert row["mean_output_tokens"] == pytest.approx(ok["completion_tokens"].mean())
        assert row["median_latency_s"] == pytest.approx(ok["latency_s"].median())
    assert summary["fingerprints"].to_list() == ["fp_a", "fp_a", "fp_a", "fp_b"]
    assert summary["response_models"].to_list() == ["m-1"] * 4
    assert summary["server_changed"].to_list() == [False, False, False, True]
    last = summary.row(3, named=True)
    assert last["drifted"] and "system_fingerprint fp_a → fp_b" in last["drift_summary"]
    assert "task previous: accuracy " in last["drift_summary"]
    assert last["drift_summary"] == drift_words(drift.filter(pl.col("night") == label(3)))
    assert not summary.row(0, named=True)["drifted"] and summary.row(0, named=True)["drift_summary"] == ""
    _validate(summary, schemas.Nights, model="m", task="t")
    bare = night_summary(answers, pl.DataFrame())  # the asset passes a frame without columns when nothing was compared
    assert not bare["drifted"].any() and bare["server_changed"].to_list() == [False, False, False, True]


def test_defaults():
    assert DEFAULT_ALPHA == 0.01 and DEFAULT_BASELINE_NIGHTS == 7
    assert ALARM_METRICS == ("accuracy", "output_tokens")


# --- memorisation ----------------------------------------------------------------------------------


def test_stratified_gap_by_hand():
    gap = stratified_gap({"a": (8, 10), "b": (1, 10)}, {"a": (10, 20), "b": (2, 20), "c": (5, 5)})
    assert gap.points == 2 and gap.n_published == 20 and gap.n_fresh == 40
    assert gap.gap == pytest.approx(0.5 * (0.8 - 0.5) + 0.5 * (0.1 - 0.1))
    assert gap.accuracy_published - gap.accuracy_fresh == pytest.approx(gap.gap)
    t = [(9 / 12, 11 / 22), (2 / 12, 3 / 22)]
    centre = sum(0.5 * (p1 - p2) for p1, p2 in t)
    var = sum(0.25 * (p1 * (1 - p1) / 12 + p2 * (1 - p2) / 22) for p1, p2 in t)
    assert (gap.low, gap.high) == pytest.approx((centre - 1.959963984540054 * math.sqrt(var), centre + 1.959963984540054 * math.sqrt(var)))
    assert not gap.flagged
    with pytest.raises(ValueError):
        stratified_gap({"a": (1, 2)}, {"b": (1, 2)})
    with pytest.raises(ValueError):
        stratified_gap({"a": (3, 2)}, {"a": (1, 2)})
    extreme = stratified_gap({"a": (500, 500)}, {"a": (0, 500)})
    assert extreme.high <= 1.0 and extreme.gap == 1.0 and extreme.flagged
    assert isinstance(extreme, Gap)


def test_the_gap_interval_covers_an_honest_model_and_flags_a_memorising_one():
    """4 points at 0.3–0.9, 64 published + 2×64 fresh items each, 100 fixed seeds: the interval holds 0 in
    >= 90 (measured coverage 0.955 over 2,000 seeds); published always right and fresh at 0.6: flagged."""
    covered, flagged = bench.coverage(100)
    assert covered >= 90, covered
    assert flagged == 100


def _memorisation_answers() -> pl.DataFrame:
    rows = []
    for night in ("2026-01-01", "eval:s"):
        for point, tiers in (("p0", ["easy", "all"]), ("p1", ["hard", "all"]), ("p2", ["solo"])):
            sets = ["published", "fresh:s:0", "fresh:s:1"] if point != "p2" else ["published"]
            for item_set in sets:
                for i in range(10):
                    right = item_set == "published" or i < 5
                    outcome = "correct" if right else "incorrect"
                    error = "boom" if i == 9 else None
                    rows.append({"night": night, "item_set": item_set, "test_case_id": f"{item_set}-{point}-{i}", "point_id": point,
                                 "tiers": tiers, "outcome": "error" if error else outcome, "error": error})
    return pl.DataFrame(rows)


def test_memorisation_rows_per_night_and_tier():
    rows = memorisation_rows(_memorisation_answers())
    assert rows.schema == pl.Schema(MEMORISATION_COLUMNS)
    assert rows.select("night", "tier").rows() == [(n, t) for n in ("2026-01-01", "eval:s") for t in ("all", "easy", "hard")]
    easy = rows.row(1, named=True)
    assert (easy["points"], easy["n_published"], easy["n_fresh"]) == (1, 9, 18)  # errors out, fresh sets pooled
    assert easy["accuracy_published"] == 1.0 and easy["accuracy_fresh"] == pytest.approx(10 / 18)
    assert easy["gap"] == pytest.approx(1 - 10 / 18) and easy["flagged"]
    full = rows.row(0, named=True)
    assert (full["points"], full["n_published"], full["n_fresh"]) == (2, 18, 36)
    _validate(rows, schemas.Memorisation, model="m", task="t", dagster_run_id="r")
    assert memorisation_rows(_memorisation_answers().filter(pl.col("item_set") == "published")).is_empty()
