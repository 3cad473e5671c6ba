"""The explorer's views of watched models, those asked a small canary every night: a model's nights, and the
leaderboard's sections on them. A lab that never watched a model lacks their tables: the leaderboard then
leaves the sections out, and a nights route says there is no watched model."""

from __future__ import annotations

import polars as pl

from rs_dagster.explore.blocks import Block, NotFound, View, chart, choice, fmt, heading, href, interval, link, note, table, text, view
from rs_dagster.explore.queries import Tables
from rs_dagster.report.nights import accuracy_chart, usage_chart
from rs_dagster.report.reasonscore_table import tiers_of

NO_WATCHED = "no watched model (the nights table is missing or empty)"
DIGITS = {"accuracy": 3, "output_tokens": 1, "latency_s": 2}
"""Decimals of a drift test's values, by metric."""

NIGHTS = (
    "{model} answers the same small canary every night. Strict accuracy per night with its Wilson 95% interval (requests that "
    "failed are left out of n); ▼ marks a night with a drift alarm (hover it for what moved), a dashed line a night whose server "
    "reported another model or fingerprint than the night before."
)
ALARMS = (
    "Each night is compared with the night before (previous) and with the nights before it (baseline), for the task as a whole "
    "and per grid point (scope): accuracy by a paired exact test on the items answered on both sides, output tokens and latency "
    "by a rank test, and the server's reported model and fingerprint. q is Benjamini–Hochberg over the night's tests; an alarm "
    "is a significant test of a watched metric or a change of server. Shown: the alarms of each task's latest tested night."
)
MEMORISATION = (
    "Strict accuracy on the task's published items minus accuracy on fresh items drawn at the same grid points from another "
    "seed, stratified by point, with its 95% interval: a model that does better on the published items may have seen them, so "
    "a gap whose interval excludes 0 is flagged. The latest night's row of each model, task and tier (a night `eval:<salt>` "
    "is one of `rs eval --fresh-seeds`)."
)


def _signed(value: float | None, digits: int = 3) -> str:
    return "—" if value is None else f"{value:+.{digits}f}"


def _p(value: float | None) -> str:
    return "—" if value is None else f"{value:.2g}"


def watched_sections(lab: Tables) -> list[Block]:
    """For the leaderboard: each watched model with a link to its nights, and the memorisation gaps; none
    of either when the lab has no rows of them."""
    nights = lab.nights()
    watched = set(nights["model"]) if not nights.is_empty() else set()
    return [*_watched(nights), *_memorisation(lab.memorisation(), watched)]


def _watched(nights: pl.DataFrame) -> list[Block]:
    if nights.is_empty():
        return []
    summary = nights.group_by("model", maintain_order=True).agg(
        pl.col("task").n_unique().alias("tasks"), pl.col("night").n_unique().alias("nights"), pl.col("night").min().alias("first"),
        pl.col("night").max().alias("last"), pl.col("night").filter(pl.col("drifted")).n_unique().alias("drifted"),
        pl.col("night").filter(pl.col("server_changed")).n_unique().alias("server_changed"),
    )
    rows = [[r["model"], r["tasks"], r["nights"], f"{r['first']} – {r['last']}", r["drifted"], r["server_changed"],
             link("nights", href("nights", r["model"]))] for r in summary.iter_rows(named=True)]
    return [heading("Watched every night"),
            text("Models asked a small canary every night: how many nights had a drift alarm or a change of server."),
            table(["Model", "Tasks", "Nights", "First – last night", "Nights with a drift alarm", "Nights the server changed", "View"],
                  rows, "watched")]


def _memorisation(gaps: pl.DataFrame, watched: set[str]) -> list[Block]:
    if gaps.is_empty():
        return []
    tier_rank = {tier: rank for rank, tier in enumerate(tiers_of(gaps))}
    rows = [
        [link(r["model"], href("nights", r["model"])) if r["model"] in watched else r["model"], r["task"], r["tier"], r["night"], r["points"],
         f"{fmt(r['accuracy_published'])} (n={r['n_published']})", f"{fmt(r['accuracy_fresh'])} (n={r['n_fresh']})",
         f"{_signed(r['gap'])} [{_signed(r['gap_low'])}, {_signed(r['gap_high'])}]", "flagged" if r["flagged"] else "—"]
        for r in sorted(gaps.iter_rows(named=True), key=lambda r: (r["model"], r["task"], tier_rank[r["tier"]]))
    ]
    return [heading("Memorisation: published items against fresh ones"), text(MEMORISATION),
            table(["Model", "Task", "Tier", "Night", "Grid points", "Accuracy, published", "Accuracy, fresh", "Gap [95% CI]", "Flag"],
                  rows, "memorisation")]


def _alarms(drift: pl.DataFrame, model: str) -> list[Block]:
    blocks = [heading("Alarms of the latest night"), text(ALARMS)]
    if drift.is_empty():
        return [*blocks, note(f"No drift tests of {model} yet: the drift table is missing or has no rows of it (a night is tested "
                              "against the nights before it, so the first night has none).")]
    tested = drift.group_by("task", "night", maintain_order=True).agg(pl.len().alias("tests"), pl.col("alarm").any().alias("alarmed"))
    quiet = [f"{task} ({night}, {tests} tests)" for task, night, tests, alarmed in tested.rows() if not alarmed]
    if quiet:
        blocks.append(text(f"No alarm on the latest tested night of {', '.join(quiet)}."))
    rows = [_alarm_row(r) for r in drift.filter(pl.col("alarm")).iter_rows(named=True)]
    if rows:
        blocks.append(table(["Task", "Night", "Compared with", "Scope", "Metric", "Shared items", "Now", "Before", "Shift [95% CI]", "p", "q",
                             "Detail"], rows, "alarms"))
    return blocks


def _alarm_row(r: dict) -> list:
    digits = DIGITS.get(r["metric"], 3)
    shift = _signed(r["shift"], digits)
    if r["shift_low"] is not None:  # rank tests (tokens, latency) have no interval
        shift += f" [{_signed(r['shift_low'], digits)}, {_signed(r['shift_high'], digits)}]"
    return [r["task"], r["night"], f"{r['comparison']}: {r['compared_to']}", r["scope"], r["metric"], r["n_shared"], fmt(r["now"], digits),
            fmt(r["before"], digits), shift, _p(r["p_value"]), _p(r["q_value"]), r["detail"]]


def _flags(row: dict) -> str:
    return " · ".join(flag for flag, on in (("drift alarm", row["drifted"]), ("server changed", row["server_changed"])) if on) or "—"


def _every_night(nights: pl.DataFrame) -> list[Block]:
    """Per task (a choice), one row per night: accuracy, usage, what the server reported and what moved."""
    options = []
    for (task,), frame in nights.group_by("task", maintain_order=True):
        rows = [[r["night"], interval(r["accuracy"], r["ci_low"], r["ci_high"]), f"{r['correct']} / {r['n']}", r["errors"],
                 fmt(r["mean_output_tokens"], 1), fmt(r["median_latency_s"], 2), r["response_models"] or "—", r["fingerprints"] or "—",
                 _flags(r), r["drift_summary"] or "—"] for r in frame.iter_rows(named=True)]
        options.append((task, [table(["Night", "Accuracy (strict) [95% CI]", "Correct / answered", "Errors", "Mean output tokens",
                                      "Median latency (s)", "Reported model", "Fingerprint", "Flags", "What moved"], rows, "nights")]))
    return [heading("Every night"), choice("Task", options)]


def nights_view(lab: Tables, model: str) -> View:
    """One watched model's nights: accuracy per task and night, usage, the latest night's alarms and every night's row."""
    nights = lab.nights(model)
    if nights.is_empty():
        watched = lab.nights()
        known = f"watched models: {', '.join(sorted(set(watched['model'])))}" if not watched.is_empty() else NO_WATCHED
        raise NotFound(f"no nights of model {model!r}; {known}")
    blocks = [
        text(NIGHTS.format(model=model)),
        heading("Accuracy per night"), chart(accuracy_chart(nights, f"{model}: canary accuracy per night"), "nights-accuracy"),
        heading("Output tokens and latency"), chart(usage_chart(nights, f"{model}: output tokens and latency per night"), "nights-usage"),
        *_alarms(lab.latest_drift(model), model),
        *_every_night(nights),
    ]
    return view(f"Nights of {model}", [link(f"nights of {model}", href("nights", model))], blocks)
