"""False alarms and power of the watch's drift tests (rs_dagster.stats.drift.night_drift) and the coverage of
the memorisation gap's interval (rs_dagster.stats.memorisation.stratified_gap), on simulated canaries.

A simulated canary: two points of 150 published items each; every answer is right with probability 0.9
(independently, every night), 1% of requests fail; output tokens are an item's own length (log-normal around
600 tokens, sd 0.5 on the log scale) times a per-answer log-normal factor (sd 0.25); latency is 0.3 s plus
tokens at 50 tokens/s times a log-normal factor (sd 0.1); the server reports one model and one fingerprint.

false alarms   series of 21 stable nights, each night from the 2nd on compared by night_drift (previous night
               and the last 7): the share of task-nights with any alarm (alpha 0.01), with its exact
               (Clopper–Pearson) 95% interval.
with load      the same, latency multiplied each night by a log-normal load factor (sd 0.15, the traffic of
               a shared endpoint): the built q-values (BH over the alarm metrics, latency on its own) against
               one BH over every p-value of the night, latency's included.
power          7 stable nights then a night at accuracy 0.8 (300 items, 2 points): the share of nights where
               the task's accuracy against the 7-night baseline has q < 0.01, and where any accuracy row alarms.
coverage       stratified_gap on an honest model (4 points at accuracy 0.3, 0.5, 0.7, 0.9, 64 published and
               2 × 64 fresh items per point): the share of seeds whose interval holds 0; and on a memorising one
               (published always right, fresh at 0.6): the share flagged.

    python bench/drift_false_alarms.py [--series 100] [--power 400] [--seeds 2000]
"""

from __future__ import annotations

import argparse
import time
from datetime import date, timedelta

import numpy as np
import polars as pl

from rs_dagster.stats.drift import ALARM_METRICS, DEFAULT_ALPHA, night_drift
from rs_dagster.stats.memorisation import stratified_gap
from rs_dagster.stats.paired import benjamini_hochberg

POINTS = ("p0", "p1")
ITEMS = 150
GAP_ACCURACIES = (0.3, 0.5, 0.7, 0.9)
GAP_ITEMS = 64
GAP_FRESH_SETS = 2


def night_label(index: int, start: date = date(2026, 1, 1)) -> str:
    return f"{start + timedelta(days=index):%Y-%m-%d}"


def simulate_canary(
    rng: np.random.Generator,
    nights: int,
    accuracy: float | list[float] = 0.9,
    items: int = ITEMS,
    points: tuple[str, ...] = POINTS,
    error_rate: float = 0.01,
    fingerprints: list[str] | None = None,
    load_sd: float = 0.0,
) -> pl.DataFrame:
    """Canary rows (the canary_answers columns night_drift reads) of `nights` nights of one model × task.
    `accuracy` and `fingerprints` may be given per night."""
    accuracies = accuracy if isinstance(accuracy, list) else [accuracy] * nights
    prints = fingerprints or ["fp_a"] * nights
    ids = [f"{p}-{i:03d}" for p in points for i in range(items)]
    point_of = [p for p in points for _ in range(items)]
    n = len(ids)
    length = rng.lognormal(np.log(600), 0.5, n)  # an item's own length
    frames = []
    for k in range(nights):
        right = rng.random(n) < accuracies[k]
        failed = rng.random(n) < error_rate
        tokens = np.maximum(1, np.round(length * rng.lognormal(0.0, 0.25, n))).astype(np.int64)
        load = float(rng.lognormal(0.0, load_sd)) if load_sd else 1.0
        latency = (0.3 + tokens / 50.0) * rng.lognormal(0.0, 0.1, n) * load
        frames.append(pl.DataFrame({
            "night": [night_label(k)] * n,
            "item_set": ["published"] * n,
            "test_case_id": ids,
            "point_id": point_of,
            "tiers": [["all"]] * n,
            "outcome": np.where(failed, "error", np.where(right, "correct", "incorrect")).tolist(),
            "completion_tokens": [None if f else int(t) for f, t in zip(failed, tokens)],
            "latency_s": latency,
            "error": [("timeout" if f else None) for f in failed],
            "response_model": [(None if f else "m-1") for f in failed],
            "system_fingerprint": [(None if f else prints[k]) for f in failed],
        }, schema_overrides={"completion_tokens": pl.Int64, "error": pl.String, "response_model": pl.String,
                             "system_fingerprint": pl.String}))
    return pl.concat(frames)


def gap_counts(rng: np.random.Generator, published_accuracy: list[float] | None = None, fresh_accuracy: list[float] | None = None
               ) -> tuple[dict[str, tuple[int, int]], dict[str, tuple[int, int]]]:
    """(successes, trials) per point of a published side and a pooled fresh side (GAP_FRESH_SETS sets)."""
    pub = published_accuracy or list(GAP_ACCURACIES)
    fresh = fresh_accuracy or list(GAP_ACCURACIES)
    published = {f"p{i}": (int(rng.binomial(GAP_ITEMS, a)), GAP_ITEMS) for i, a in enumerate(pub)}
    fresh_side = {f"p{i}": (int(rng.binomial(GAP_ITEMS * GAP_FRESH_SETS, a)), GAP_ITEMS * GAP_FRESH_SETS) for i, a in enumerate(fresh)}
    return published, fresh_side


def clopper_pearson(k: int, n: int) -> tuple[float, float]:
    from scipy.stats import binomtest

    ci = binomtest(k, n).proportion_ci(0.95, method="exact")
    return float(ci.low), float(ci.high)


def _rate(k: int, n: int) -> str:
    low, high = clopper_pearson(k, n)
    return f"{k}/{n} = {k / n:.4f} (95% CI {low:.4f}–{high:.4f})"


def stable_nights(series: int, load_sd: float = 0.0, nights: int = 21) -> tuple[int, int, int, dict[str, int]]:
    """Task-nights evaluated, those with an alarm as built, those with one under a single BH over every
    p-value (latency's included), and alarm rows per metric."""
    evaluated = alarmed = alarmed_one_family = 0
    per_metric: dict[str, int] = {}
    for s in range(series):
        answers = simulate_canary(np.random.default_rng(10_000 + s), nights, load_sd=load_sd)
        for k in range(1, nights):
            rows = night_drift(answers, night_label(k))
            evaluated += 1
            alarms = rows.filter(pl.col("alarm"))
            alarmed += not alarms.is_empty()
            for metric in alarms["metric"].to_list():
                per_metric[metric] = per_metric.get(metric, 0) + 1
            tested = rows.filter(pl.col("p_value").is_not_null())
            q_all = benjamini_hochberg(tested["p_value"].to_list())
            alarmed_one_family += any(
                m in ALARM_METRICS and q < DEFAULT_ALPHA for m, q in zip(tested["metric"].to_list(), q_all)
            )
    return evaluated, alarmed, alarmed_one_family, per_metric


def power(runs: int, items: int = ITEMS) -> tuple[int, int, int]:
    """Nights (7 stable, then accuracy 0.9 → 0.8) where the task's baseline accuracy row has q < 0.01, and
    where any accuracy row alarms."""
    baseline_hits = any_hits = 0
    for s in range(runs):
        answers = simulate_canary(np.random.default_rng(20_000 + s), 8, accuracy=[0.9] * 7 + [0.8], items=items)
        rows = night_drift(answers, night_label(7))
        task = rows.filter((pl.col("metric") == "accuracy") & (pl.col("scope") == "task") & (pl.col("comparison") == "baseline"))
        baseline_hits += bool(task["q_value"][0] < DEFAULT_ALPHA)
        any_hits += bool(rows.filter((pl.col("metric") == "accuracy") & pl.col("alarm")).height)
    return runs, baseline_hits, any_hits


def coverage(seeds: int) -> tuple[int, int]:
    covered = flagged = 0
    for s in range(seeds):
        honest = stratified_gap(*gap_counts(np.random.default_rng(s)))
        covered += honest.low <= 0.0 <= honest.high
        memorising = stratified_gap(*gap_counts(np.random.default_rng(s), [1.0] * 4, [0.6] * 4))
        flagged += memorising.flagged
    return covered, flagged


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--series", type=int, default=100, help="stable 21-night series (20 task-nights each)")
    parser.add_argument("--load-series", type=int, default=50, help="series with a nightly latency load factor")
    parser.add_argument("--power", type=int, default=400, help="simulated drop nights")
    parser.add_argument("--seeds", type=int, default=2000, help="seeds of the gap's coverage")
    args = parser.parse_args()

    started = time.perf_counter()
    evaluated, alarmed, _, per_metric = stable_nights(args.series)
    took = time.perf_counter() - started
    print(f"stable model, {len(POINTS)} points × {ITEMS} items, accuracy 0.9, alpha {DEFAULT_ALPHA}, previous + 7-night baseline")
    print(f"  false alarms per task-night: {_rate(alarmed, evaluated)}"
          f"  [alarm rows by metric: {per_metric or 'none'}; {took / evaluated * 1000:.0f} ms per night_drift]")

    evaluated, alarmed, one_family, _ = stable_nights(args.load_series, load_sd=0.15)
    print("with a nightly latency load factor (log-normal sd 0.15):")
    print(f"  as built (BH over accuracy and output tokens; latency apart): {_rate(alarmed, evaluated)}")
    print(f"  one BH over every p-value, latency's included:              {_rate(one_family, evaluated)}")

    runs, baseline_hits, any_hits = power(args.power, items=ITEMS)
    print(f"power, accuracy 0.9 → 0.8 on {len(POINTS) * ITEMS} items after 7 stable nights:")
    print(f"  task accuracy vs the 7-night baseline at q < {DEFAULT_ALPHA}: {_rate(baseline_hits, runs)}")
    print(f"  any accuracy alarm of the night:                  {_rate(any_hits, runs)}")

    covered, flagged = coverage(args.seeds)
    print(f"memorisation gap, {len(GAP_ACCURACIES)} points at {', '.join(map(str, GAP_ACCURACIES))}, "
          f"{GAP_ITEMS} published + {GAP_FRESH_SETS}×{GAP_ITEMS} fresh items per point:")
    print(f"  honest model, interval holds 0 (nominal 0.95): {_rate(covered, args.seeds)}")
    print(f"  memorising model (published 1.0, fresh 0.6), flagged: {_rate(flagged, args.seeds)}")
    print(f"\n{time.perf_counter() - started:.0f} s in all")


if __name__ == "__main__":
    main()
