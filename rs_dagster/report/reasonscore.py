"""ReasonScore views of the explorer and `rs leaderboard`: per tier, the models ranked by ReasonScore v2 with its bootstrap
interval, v1, tokens and score per token, each task's cell as ReasonScape writes it (`.58 - .62 [-.05]`:
the Wilson 95% interval of accuracy and the truncation penalty), and a radar chart of each model's
per-task score p_t.

Vega-Lite has no radar mark (its `theta` channel serves only arc and text marks), so the radar is drawn
on x/y: each task is a spoke at an equal angle, p_t the distance from the centre, one closed line per
model over polygonal rings at 0.25, 0.5, 0.75 and 1. With fewer than three tasks a radar has no area,
and the tier gets a bar chart of p_t per task instead."""

from __future__ import annotations

import math

import altair as alt
import polars as pl

from rs_dagster.report.charts import MODEL_PALETTE, interval_text
from rs_dagster.report.reasonscore_table import tiers_of
from rs_dagster.stats.reasonscore import FLOOR

RINGS = (0.25, 0.5, 0.75, 1.0)


def score_bars(scores: pl.DataFrame) -> alt.FacetChart:
    """ReasonScore v2 per model with its bootstrap 95% interval, one panel per tier. The score is already
    over chance: its floor, 10, is at or below chance on every task."""
    data = scores.select("model", "tier", "v2", "v2_low", "v2_high", "v1", "tasks", "samples", interval_text("v2_low", "v2_high", 0))
    base = alt.Chart().encode(y=alt.Y("model:N", title=None, sort="-x"))
    axis_title = "ReasonScore v2 (10–1000, bootstrap 95% interval)"
    x = alt.X("v2:Q", title=axis_title, scale=alt.Scale(domain=[0, 1000]))
    bars = base.mark_bar(color="#72b7b2").encode(
        x=x,
        tooltip=[
            alt.Tooltip("model:N"), alt.Tooltip("tier:N"), alt.Tooltip("v2:Q", title="ReasonScore v2", format=".0f"),
            alt.Tooltip("interval:N", title="bootstrap 95% interval"), alt.Tooltip("v1:Q", title="v1", format=".0f"),
            alt.Tooltip("tasks:Q"), alt.Tooltip("samples:Q", title="samples (n)"),
        ],
    )
    errors = base.mark_rule(strokeWidth=2).encode(x=alt.X("v2_low:Q", title=axis_title), x2="v2_high:Q")
    return (
        alt.layer(bars, errors, data=alt.Data(values=data.to_dicts())).properties(width=360, height=alt.Step(18))
        .facet(row=alt.Row("tier:N", title=None, sort=tiers_of(scores), header=alt.Header(labelAngle=0, labelAlign="left", labelFontWeight="bold")))
        .resolve_scale(y="independent")  # a tier lists only the models scored at it
        .properties(title=alt.TitleParams(
            "ReasonScore v2 by tier", subtitle=f"rule: bootstrap 95% interval; chance-corrected: {FLOOR * 1000:g} = at or below chance on every task"
        ))
    )


def _spoke(index: int, count: int) -> float:
    """The angle of task `index` of `count`: the first at the top, then clockwise."""
    return math.pi / 2 - 2 * math.pi * index / count


def radar(tasks: pl.DataFrame, title: str) -> alt.LayerChart:
    """Each model's per-task score p_t (v2_task) on a radar: one spoke per task, rings at RINGS."""
    names = sorted(tasks["task"].unique().to_list())
    count = len(names)
    rings = [
        {"ring": f"{r}", "order": k, "x": r * math.cos(_spoke(k % count, count)), "y": r * math.sin(_spoke(k % count, count))}
        for r in RINGS for k in range(count + 1)
    ]
    spokes = [{"task": n, "x": 0.0, "y": 0.0, "x2": math.cos(_spoke(i, count)), "y2": math.sin(_spoke(i, count))} for i, n in enumerate(names)]
    labels = []
    for i, n in enumerate(names):
        cos, sin = math.cos(_spoke(i, count)), math.sin(_spoke(i, count))
        side = "left" if cos > 0.2 else "right" if cos < -0.2 else "center"
        reach = 1.08 if side != "center" else 1.15  # clear of the ring labels on the top spoke
        labels.append({"task": n, "x": reach * cos, "y": reach * sin, "align": side})
    lines = []
    for (model,), frame in tasks.filter(pl.col("v2_task").is_not_null()).group_by("model", maintain_order=True):
        score = dict(zip(frame["task"], frame["v2_task"]))
        about = {row["task"]: _task_facts(row) for row in frame.iter_rows(named=True)}
        segment = 0
        for k in range(count + 1):  # back to the first spoke: a closed outline
            name = names[k % count]
            if name not in score:  # a task the model has no score on breaks its outline rather than cutting across
                segment += 1
                continue
            angle = _spoke(k % count, count)
            lines.append({"model": model, "segment": segment, "task": name, "order": k, "p": score[name], **about[name],
                          "x": score[name] * math.cos(angle), "y": score[name] * math.sin(angle)})
    domain = alt.Scale(domain=[-1.35, 1.35])
    x, y = alt.X("x:Q", scale=domain, axis=None), alt.Y("y:Q", scale=domain, axis=None)
    grid = alt.Chart(alt.Data(values=rings)).mark_line(color="#ccc", strokeWidth=1).encode(x=x, y=y, detail="ring:N", order="order:Q")
    axes = alt.Chart(alt.Data(values=spokes)).mark_rule(color="#ccc").encode(x=x, y=y, x2="x2:Q", y2="y2:Q")
    names_layer = alt.layer(*(  # Vega-Lite takes a text's align from the mark, not a field: one layer per side
        alt.Chart(alt.Data(values=[label for label in labels if label["align"] == side])).mark_text(fontSize=11, align=side).encode(x=x, y=y, text="task:N")
        for side in ("left", "right", "center") if any(label["align"] == side for label in labels)
    ))
    ring_labels = alt.Chart(alt.Data(values=[{"x": 0.02, "y": r, "label": f"{r:g}"} for r in RINGS])).mark_text(
        fontSize=9, color="#888", align="left", baseline="bottom"
    ).encode(x=x, y=y, text="label:N")
    select = alt.selection_point(fields=["model"], bind="legend")
    outline = alt.Chart(alt.Data(values=lines)).mark_line(point=alt.OverlayMarkDef(filled=True, size=40), strokeWidth=2).encode(
        x=x, y=y, order="order:Q", detail="segment:N",
        color=alt.Color("model:N", title="model", scale=alt.Scale(scheme=MODEL_PALETTE)),
        opacity=alt.when(select).then(alt.value(1.0)).otherwise(alt.value(0.15)),
        tooltip=[alt.Tooltip("model:N"), alt.Tooltip("task:N"), alt.Tooltip("p:Q", format=".3f", title="p_t"), *TASK_TOOLTIP],
    ).add_params(select)
    subtitle = "radius: p_t, accuracy over chance less truncation (0.01: at or below chance)"
    return (grid + axes + ring_labels + names_layer + outline).properties(
        title=alt.TitleParams(title, subtitle=subtitle), width=360, height=360, view=alt.ViewBackground(stroke=None)
    )


TASK_TOOLTIP = [
    alt.Tooltip("accuracy:Q", title="strict accuracy", format=".3f"), alt.Tooltip("interval:N", title="Wilson 95% CI"),
    alt.Tooltip("guess_chance:Q", title="chance", format=".3f"), alt.Tooltip("truncation_ratio:Q", title="truncation ratio", format=".3f"),
    alt.Tooltip("samples:Q", title="samples (n)"),
]
"""What p_t is made of, beside it in a tooltip."""


def _task_facts(row: dict) -> dict:
    """The TASK_TOOLTIP fields of a reasonscore_tasks row."""
    interval = "—" if row["ci_low"] is None else f"{row['ci_low']:.3f}–{row['ci_high']:.3f}"
    return {"accuracy": row["accuracy"], "interval": interval, "guess_chance": row["guess_chance"],
            "truncation_ratio": row["truncation_ratio"], "samples": row["samples"]}


def task_bars(tasks: pl.DataFrame, title: str) -> alt.Chart:
    """p_t per task and model as bars: the tier's view when it has fewer than three tasks."""
    rows = tasks.filter(pl.col("v2_task").is_not_null()).select("model", "task", "v2_task", "accuracy", "ci_low", "ci_high", "guess_chance", "truncation_ratio", "samples")
    data = [{"model": r["model"], "task": r["task"], "v2_task": r["v2_task"], **_task_facts(r)} for r in rows.iter_rows(named=True)]
    select = alt.selection_point(fields=["model"], bind="legend")
    return alt.Chart(alt.Data(values=data)).mark_bar().encode(
        y=alt.Y("task:N", title=None), yOffset="model:N",
        x=alt.X("v2_task:Q", title="p_t: per-task score over chance (0.01–1)", scale=alt.Scale(domain=[0, 1])),
        color=alt.Color("model:N", title="model", scale=alt.Scale(scheme=MODEL_PALETTE)),
        opacity=alt.when(select).then(alt.value(1.0)).otherwise(alt.value(0.25)),
        tooltip=[alt.Tooltip("model:N"), alt.Tooltip("task:N"), alt.Tooltip("v2_task:Q", title="p_t", format=".3f"), *TASK_TOOLTIP],
    ).add_params(select).properties(title=title, width=360)
