"""A watched model's tables for the explorer's tests, written into a lab's DuckDB file through the warehouse
as the watch assets write them (one model × task partition at a time, each frame checked by its schema):
alpha watched for five nights on arithmetic and boolean; on arithmetic its accuracy falls on the third night,
its server's fingerprint changes on the fourth and its output tokens rise on the fifth (each a drift alarm);
memorisation gaps of alpha and of beta, which is not watched. Rows, not a run of the watch assets: the views
are tested on values chosen to tell each rule apart (tests/nights_lab.py runs the real schedule)."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from rs_dagster.stats.intervals import wilson_interval
from rs_dagster.storage.schemas import Drift, Memorisation, Nights
from rs_dagster.storage.warehouse import Warehouse

WATCHED = "alpha"
TASKS = ("arithmetic", "boolean")
NIGHTS = ("2026-01-01", "2026-01-02", "2026-01-03", "2026-01-04", "2026-01-05")
ACCURACY_DROP, SERVER_CHANGE, TOKENS_RISE = NIGHTS[2], NIGHTS[3], NIGHTS[4]
SUMMARIES = {
    ACCURACY_DROP: "task previous: accuracy 0.900 → 0.400 on 20 items (−50.0 points, 95% CI −72.4 to −27.6), q=0.0010",
    SERVER_CHANGE: "task previous: system_fingerprint fp-1 → fp-2",
    TOKENS_RISE: "task previous: median output tokens 600 → 900 (+300) on 20 items, q=0.0020",
}
"""What moved on arithmetic, by night: every other night of either task is quiet."""


def night_row(task: str, night: str) -> dict:
    drifted = task == "arithmetic" and night in SUMMARIES
    correct, n = (8 if night == ACCURACY_DROP else 18) if task == "arithmetic" else 19, 20
    low, high = wilson_interval(correct, n)
    return {
        "model": WATCHED, "task": task, "night": night, "n": n, "correct": correct, "accuracy": correct / n, "ci_low": low, "ci_high": high,
        "errors": 0, "mean_output_tokens": 900.0 if drifted and night == TOKENS_RISE else 600.0, "median_latency_s": 1.25,
        "response_models": "alpha-served", "fingerprints": "fp-2" if task == "arithmetic" and night >= SERVER_CHANGE else "fp-1",
        "server_changed": task == "arithmetic" and night == SERVER_CHANGE, "drifted": drifted,
        "drift_summary": SUMMARIES[night] if drifted else "",
    }


def drift_row(task: str, night: str, metric: str, alarm: bool = False, comparison: str = "previous", **values: float) -> dict:
    earlier = NIGHTS[: NIGHTS.index(night)]
    compared_to = earlier[-1] if comparison == "previous" else f"{earlier[0]}..{earlier[-1]} ({len(earlier)} nights)"
    row = {"model": WATCHED, "task": task, "night": night, "comparison": comparison, "compared_to": compared_to, "scope": "task",
           "metric": metric, "n_shared": 20, "now": None, "before": None, "shift": None, "shift_low": None, "shift_high": None,
           "p_value": None, "q_value": None, "alarm": alarm, "detail": f"{metric} of {night}", "dagster_run_id": "run-drift"}
    return {**row, **values}


def drift_rows(task: str) -> list[dict]:
    """Some tests of the third night (an accuracy alarm on arithmetic) and of the latest (an output-token alarm)."""
    alarms = task == "arithmetic"
    return [
        drift_row(task, ACCURACY_DROP, "accuracy", alarm=alarms, now=0.4, before=0.9, shift=-0.5, shift_low=-0.724, shift_high=-0.276,
                  p_value=0.0002, q_value=0.001),
        drift_row(task, TOKENS_RISE, "accuracy", now=0.9, before=0.9, shift=0.0, shift_low=-0.1, shift_high=0.1, p_value=1.0, q_value=1.0),
        drift_row(task, TOKENS_RISE, "output_tokens", alarm=alarms, now=900.0, before=600.0, shift=300.0, p_value=0.0005, q_value=0.002),
        drift_row(task, TOKENS_RISE, "latency_s", now=1.25, before=1.2, shift=0.05, p_value=0.6, q_value=0.6),
        drift_row(task, TOKENS_RISE, "accuracy", comparison="baseline", now=0.9, before=0.88, shift=0.02, shift_low=-0.08, shift_high=0.12,
                  p_value=0.9, q_value=0.9),
    ]


def gap_row(model: str, task: str, night: str, tier: str, gap: float, low: float, high: float) -> dict:
    return {"model": model, "task": task, "night": night, "tier": tier, "points": 4, "n_published": 40, "n_fresh": 40,
            "accuracy_published": 0.5 + gap / 2, "accuracy_fresh": 0.5 - gap / 2, "gap": gap, "gap_low": low, "gap_high": high,
            "flagged": low > 0 or high < 0, "dagster_run_id": "run-memorisation"}


GAPS = [
    gap_row(WATCHED, "arithmetic", "2026-01-04", "easy", 0.05, -0.1, 0.2),
    gap_row(WATCHED, "arithmetic", "2026-01-05", "easy", 0.3, 0.12, 0.48),  # the latest night: shown, flagged
    gap_row(WATCHED, "arithmetic", "eval:zz", "medium", 0.4, 0.2, 0.6),  # undated: a dated night wins
    gap_row(WATCHED, "arithmetic", "2026-01-02", "medium", 0.0, -0.15, 0.15),
    gap_row("beta", "boolean", "eval:abc", "easy", -0.05, -0.2, 0.1),  # beta's only row
]


def write_watched(db_path: Path) -> None:
    warehouse = Warehouse(db_path)
    for task in TASKS:
        keys = {"model": WATCHED, "task": task}
        warehouse.replace_partition("nights", Nights, pl.DataFrame([night_row(task, night) for night in NIGHTS]), keys)
        warehouse.replace_partition("drift", Drift, pl.DataFrame(drift_rows(task)), keys)
    for (model, task), frame in pl.DataFrame(GAPS).partition_by("model", "task", as_dict=True).items():
        warehouse.replace_partition("memorisation", Memorisation, frame, {"model": model, "task": task})
