"""What a run found, in words taken from its points: per model × task, the share of answers in the
requested form, where accuracy is above chance and where it is at chance, truncation, and for a
calibration model how often its intervals cover the known truth. `rs demo` ends with it."""

from __future__ import annotations

import json
from collections.abc import Callable

import polars as pl

Truth = Callable[[str, dict, float], float]
"""The known true accuracy of a calibration model at (task, params, guess chance)."""


def _label(params: dict, varying: list[str]) -> str:
    return ", ".join(f"{axis}={params[axis]}" for axis in varying) or "the point"


def _interval(row: dict) -> str:
    return f"{row['accuracy']:.2f} [{row['ci_low']:.2f}, {row['ci_high']:.2f}]"


def pair_finding(points: pl.DataFrame, truth: Truth | None = None) -> str:
    """One sentence about one model × task's points (rows of the `points` table)."""
    rows = [{**r, "params": json.loads(r["params_json"])} for r in points.filter(pl.col("accuracy").is_not_null()).iter_rows(named=True)]
    model, task = points["model"][0], points["task"][0]
    if not rows:
        return f"{model} × {task}: no answered sample (every request failed or was truncated)."
    varying = sorted(axis for axis in rows[0]["params"] if len({json.dumps(r["params"][axis]) for r in rows}) > 1)
    answered = sum(r["answered"] for r in rows)
    in_form = sum(r["correct"] + r["incorrect"] for r in rows) / answered if answered else 0.0
    truncated = sum(r["truncated"] for r in rows) / max(1, sum(r["n"] for r in rows))
    above = [r for r in rows if (r["excess_ci_low"] or 0) > 0]
    at_chance = [r for r in rows if r["ci_low"] <= r["guess_chance"] <= r["ci_high"]]
    best, worst = max(rows, key=lambda r: r["accuracy"]), min(rows, key=lambda r: r["accuracy"])
    words = [f"{model} × {task} ({sum(r['n'] for r in rows)} samples at {len(rows)} points): {in_form:.0%} of answers in the requested form"]
    if len(rows) > 1:
        words.append(f"accuracy {_interval(best)} at {_label(best['params'], varying)}, {_interval(worst)} at {_label(worst['params'], varying)}")
    else:
        words.append(f"accuracy {_interval(best)}")
    chance = rows[0]["guess_chance"]
    words.append(f"above chance ({chance:.2f}) at {len(above)} of {len(rows)} points, indistinguishable from chance at {len(at_chance)}")
    if truncated:
        words.append(f"{truncated:.0%} cut off by max_tokens")
    if truth is not None:
        covered = sum(r["ci_low"] <= truth(task, r["params"], r["guess_chance"]) <= r["ci_high"] for r in rows)
        words.append(f"the interval covers the known truth at {covered} of {len(rows)} points (95% expected)")
    return "; ".join(words) + "."


def run_finding(points: pl.DataFrame, calibration_models: set[str], truth: Truth) -> list[str]:
    """pair_finding for every model × task in `points`, the calibration models' with their truth."""
    return [
        pair_finding(pair, truth if model in calibration_models else None)
        for (model, _), pair in sorted(points.group_by("model", "task"), key=lambda g: (str(g[0][0]), str(g[0][1])))
    ]
